"""Loading libdeissn and declaring its C API (every function once, with argtypes/restype).

The library is looked for, in order, at:
  1. the path in the environment variable DEISSN_LIB;
  2. the build tree this package sits in: <repo>/build/lib/libdeissn.so.ABI;
  3. the system's library path (ctypes.util.find_library("deissn")).
On ELF systems the soname of what was found must be libdeissn.so.ABI (ABI below).
"""
import ctypes
import ctypes.util
import numbers
import operator
import os
from ctypes import (CFUNCTYPE, POINTER, Structure, c_char_p, c_double, c_int, c_int32,
                    c_int64, c_size_t, c_uint32, c_uint64, c_void_p)
from pathlib import Path

import numpy as np

from .errors import InvalidArgument, error_for

# The binding works with any libdeissn.so.ABI (releases under one soname only add to the ABI)
# that has every function the binding declares below; which ones are missing is said at
# import. ABI is the header's DEISSN_ABI: it has to be known before any library is loaded, and
# an installed package has no header to read it from, so it is written here and
# tests/test_version.py checks that it is the header's.
ABI = 1

c_float_p = POINTER(ctypes.c_float)
c_double_p = POINTER(c_double)

_INT_CODES = "bBhHiIlLqQ"  # the ctypes type codes of C integers (lower case: signed)


def convert(ctype, value, what):
    """`value` checked for C type `ctype`, ready for ctypes, which itself would silently wrap
    2**32 to 0, take True for 1 and end a string at its first NUL byte.

    Integers take int-like values (numpy integers too, never bool or float) within the C
    type's range; doubles take real numbers, not bool; strings (const char *) take None, str,
    bytes or a path, without NUL bytes. Other types (pointers, structs, callbacks) are left to
    ctypes. Raises TypeError, or InvalidArgument naming `what`.
    """
    code = getattr(ctype, "_type_", None)
    if not isinstance(code, str):
        return value
    if code in _INT_CODES:
        if isinstance(value, (bool, np.bool_)):
            raise TypeError("%s must be an integer, not bool" % what)
        try:
            v = operator.index(value)
        except TypeError:
            raise TypeError("%s must be an integer, not %s" % (what, type(value).__name__)) \
                from None
        bits = 8 * ctypes.sizeof(ctype)
        lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if code.islower() else \
            (0, (1 << bits) - 1)
        if not lo <= v <= hi:
            raise InvalidArgument("%s: %d is out of range for %sint%d (%d..%d)"
                                  % (what, v, "" if code.islower() else "u", bits, lo, hi))
        return v
    if code in "fd":
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            raise TypeError("%s must be a number, not %s" % (what, type(value).__name__))
        try:
            return float(value)
        except OverflowError:
            raise InvalidArgument("%s: %d is out of range for a double" % (what, value)) \
                from None
    if code == "z" and value is not None:
        if isinstance(value, (str, os.PathLike)):
            value = os.fsencode(value)
        if not isinstance(value, bytes):
            raise TypeError("%s must be a str, bytes or path, not %s"
                            % (what, type(value).__name__))
        if b"\0" in value:
            raise InvalidArgument("%s contains a NUL byte (at byte %d), which would end it "
                                  "there: %r" % (what, value.index(b"\0"), value))
    return value


class CheckedStructure(Structure):
    """A ctypes Structure whose fields are set through :func:`convert` (named by the field),
    and that refuses names that are not fields (ctypes would add a Python attribute).

    Each is a hand copy of a struct of include/deissn.h: `_c_name_` names it, and
    `_version_`, where the struct has a version field, is the DEISSN_*_VERSION the copy
    follows. tests/test_layout.py compiles the header and checks both, every field's name
    and offset, and the size. A new one carries its `_version_` (the output structs, e.g.
    deissn_step_info, are passed so: the library writes the fields of that version); params
    structs are made by :func:`default_params` instead."""

    _c_name_ = None
    _version_ = None

    def __init__(self, **fields):
        if self._version_ is not None:
            fields.setdefault("version", self._version_)
        super().__init__(**fields)

    def __setattr__(self, name, value):
        ctype = dict(type(self)._fields_).get(name)
        if ctype is None:
            raise AttributeError("%s has no field %r" % (type(self).__name__, name))
        super().__setattr__(name, convert(ctype, value, name))


def default_params(cls):
    """A `cls` (a params struct copy) holding the library's defaults, at `cls._version_`.

    deissn_*_init(p, cls._version_) writes the fields of the copy's version only. In case a
    library writes more (a newer libdeissn.so.ABI with a bug, or one from before the version
    argument), it writes into a scratch buffer with room to spare, the copy's part is kept,
    and its version field says the copy's version so that the library reads no further than
    the copy goes."""
    scratch = (c_double * 512)()  # 4 KiB, aligned for any field
    getattr(lib, cls._c_name_ + "_init")(ctypes.cast(scratch, POINTER(cls)), cls._version_)
    p = cls.from_buffer_copy(scratch)
    p.version = cls._version_
    return p


class ScheduleParams(CheckedStructure):
    _c_name_ = "deissn_schedule_params"
    _version_ = 1
    _fields_ = [
        ("version", c_uint32), ("noise", c_int32), ("num_train_steps", c_uint32),
        ("beta_start", c_double), ("beta_end", c_double), ("beta_min", c_double),
        ("beta_max", c_double), ("custom", c_double_p), ("custom_len", c_size_t),
        ("spacing", c_int32), ("steps", c_uint32), ("power", c_double),
        ("karras_rho", c_double), ("tau_min_eval", c_double), ("tau_end", c_double),
        ("custom_taus", c_double_p),
    ]


class SamplerParams(CheckedStructure):
    _c_name_ = "deissn_sampler_params"
    _version_ = 4
    _fields_ = [("version", c_uint32), ("order", c_uint32), ("lower_order_final", c_uint32),
                ("allow_table_mismatch", c_uint32), ("method", c_int32),
                ("corrector", c_uint32), ("prediction", c_int32), ("weights", c_double_p)]


class StepInfo(CheckedStructure):
    _c_name_ = "deissn_step_info"
    _version_ = 1
    _fields_ = [("version", c_uint32), ("step", c_uint32), ("steps", c_uint32),
                ("tau", c_double), ("model_t", c_double), ("alpha", c_double),
                ("sigma", c_double)]


class StepCoeffs(CheckedStructure):
    _c_name_ = "deissn_step_coeffs"
    _version_ = 1
    _fields_ = [("version", c_uint32), ("step", c_uint32), ("order", c_uint32),
                ("tau_from", c_double), ("tau_to", c_double), ("model_t", c_double),
                ("psi", c_double), ("c", c_double * 5), ("r", c_double * 5),
                ("corrector_order", c_uint32)]


PLAN_MAX_NFE = 64  # DEISSN_PLAN_MAX_NFE (checked by tests/test_layout.py: the taus array)
PLAN_WEIGHTS = 6  # DEISSN_PLAN_WEIGHTS (checked there too: the weights array)


class Plan(CheckedStructure):
    _c_name_ = "deissn_plan"
    _version_ = 2
    _fields_ = [("version", c_uint32), ("nfe", c_uint32), ("method", c_int32),
                ("order", c_uint32), ("corrector", c_uint32), ("lower_order_final", c_uint32),
                ("uses_table", c_uint32), ("samples", c_uint32), ("tau_end", c_double),
                ("taus", c_double * PLAN_MAX_NFE), ("error", c_double),
                ("error_low", c_double), ("error_high", c_double), ("best_error", c_double),
                ("weights", (c_double * PLAN_WEIGHTS) * PLAN_MAX_NFE)]


class NormTableParams(CheckedStructure):
    _c_name_ = "deissn_normtable_params"
    _version_ = 2
    _fields_ = [("version", c_uint32), ("fingerprint", c_uint32), ("clip", c_uint32),
                ("metadata", c_char_p), ("plans", POINTER(Plan)), ("n_plans", c_size_t)]


class NormTableInfo(CheckedStructure):
    _c_name_ = "deissn_normtable_info"
    _version_ = 1
    _fields_ = [("version", c_uint32), ("n_knots", c_size_t), ("samples", c_uint64),
                ("steps", c_uint32), ("clip", c_uint32), ("fingerprint", c_uint32),
                ("has_sums", c_int32)]


class ModelParams(CheckedStructure):
    _c_name_ = "deissn_model_params"
    _version_ = 1
    _fields_ = [("version", c_uint32), ("time_convention", c_int32), ("backend", c_char_p),
                ("device", c_char_p), ("dtype", c_int32), ("num_threads", c_int32)]


MODEL_FN = CFUNCTYPE(c_int, c_void_p, c_float_p, POINTER(c_int64), c_uint32, c_double,
                     c_float_p)
PROGRESS_FN = CFUNCTYPE(c_int, c_void_p, c_uint32, c_uint32)


class TuneParams(CheckedStructure):
    _c_name_ = "deissn_tune_params"
    _version_ = 1
    _fields_ = [("version", c_uint32), ("nfe_min", c_uint32), ("nfe_max", c_uint32),
                ("grid_steps", c_uint32), ("fit_samples", c_uint32),
                ("holdout_samples", c_uint32), ("batch", c_uint32), ("seed", c_uint64),
                ("prediction", c_int32), ("progress", PROGRESS_FN), ("progress_user", c_void_p)]


class SampleStats(CheckedStructure):
    _c_name_ = "deissn_sample_stats"
    _version_ = 1
    _fields_ = [("version", c_uint32), ("evaluations", c_uint32), ("model_seconds", c_double),
                ("sampler_seconds", c_double)]


class SampleOptions(CheckedStructure):
    _c_name_ = "deissn_sample_options"
    _version_ = 1
    _fields_ = [("version", c_uint32), ("progress", PROGRESS_FN), ("progress_user", c_void_p),
                ("stats", POINTER(SampleStats)), ("calibrator", c_void_p)]


def _soname(path):
    """The DT_SONAME of ELF file `path`, or None when it is not an ELF file with one (other
    systems: the check is left out)."""
    import struct
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    if data[:4] != b"\x7fELF" or data[4] not in (1, 2) or data[5] not in (1, 2):
        return None
    wide, end = data[4] == 2, "<" if data[5] == 1 else ">"
    try:
        if wide:
            shoff, = struct.unpack_from(end + "Q", data, 0x28)
            shentsize, shnum = struct.unpack_from(end + "HH", data, 0x3A)
            sec, dyn = end + "IIQQQQIIQQ", end + "qQ"
        else:
            shoff, = struct.unpack_from(end + "I", data, 0x20)
            shentsize, shnum = struct.unpack_from(end + "HH", data, 0x2E)
            sec, dyn = end + "IIIIIIIIII", end + "iI"
        sections = [struct.unpack_from(sec, data, shoff + i * shentsize) for i in range(shnum)]
        for _, kind, _, _, offset, size, link, _, _, _ in sections:
            if kind != 6:  # SHT_DYNAMIC; link: its string table
                continue
            strtab = sections[link][4]
            for at in range(offset, offset + size, struct.calcsize(dyn)):
                tag, val = struct.unpack_from(dyn, data, at)
                if tag == 14:  # DT_SONAME
                    return data[strtab + val:data.index(b"\0", strtab + val)].decode()
    except (struct.error, IndexError, ValueError, UnicodeDecodeError):
        return None
    return None


def _candidates():
    env = os.environ.get("DEISSN_LIB")
    if env:
        # An explicit choice is not second-guessed: if it is wrong, say so.
        return [("DEISSN_LIB", env)]
    found = []
    tree = Path(__file__).resolve().parents[3] / "build" / "lib" / ("libdeissn.so.%d" % ABI)
    if tree.exists():
        found.append(("the build tree", str(tree)))
    system = ctypes.util.find_library("deissn")
    if system:
        found.append(("the system", system))
    return found


def _load():
    tried = []
    for where, path in _candidates():
        try:
            cdll = ctypes.CDLL(path)
        except OSError as e:
            tried.append("%s (%s): %s" % (path, where, e))
            continue
        # find_library() gives a bare name: the file is where the loader found it.
        soname = _soname(path if os.sep in path else _loaded_path(cdll) or path)
        if soname is not None and soname != "libdeissn.so.%d" % ABI:
            raise ImportError("deissn: %s (%s) is %s, but this binding is for libdeissn.so.%d; "
                              "use the binding that ships with that library, or set DEISSN_LIB "
                              "to a libdeissn.so.%d" % (path, where, soname, ABI, ABI))
        return cdll
    raise ImportError("deissn: cannot load libdeissn. Build it with `make` in the repository, "
                      "install it, or set DEISSN_LIB to the path of libdeissn.so.%d. Tried: "
                      % ABI + ("; ".join(tried) or "nothing found"))


def _loaded_path(cdll):
    """The path the dynamic loader opened for `cdll` (Linux: /proc/self/maps), or None."""
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.split(None, 5)[-1].strip()
                if os.path.basename(path).startswith("libdeissn.so"):
                    return path
    except OSError:
        pass
    return None


_cdll = _load()
_cdll.deissn_version_number.restype = c_uint32
_cdll.deissn_version_number.argtypes = []
_v = _cdll.deissn_version_number()


class _Function:
    """A C function whose scalar arguments go through :func:`convert`, named in errors as
    "function: argument"."""

    def __init__(self, name, argnames, restype, argtypes, errcheck=None):
        self.name, self.cfunc = name, getattr(_cdll, name)  # present: checked by _bind()
        self.cfunc.restype, self.cfunc.argtypes = restype, list(argtypes)
        if errcheck is not None:
            self.cfunc.errcheck = errcheck
        names = argnames.split()
        assert len(names) == len(argtypes), name
        self.args = list(zip(["%s: %s" % (name, n) for n in names], argtypes))

    def __call__(self, *args):
        if len(args) != len(self.args):
            raise TypeError("%s takes %d arguments, not %d" % (self.name, len(self.args), len(args)))
        return self.cfunc(*[convert(t, v, what) for (what, t), v in zip(self.args, args)])


class _API:
    """The declared C functions, as attributes named like them."""


lib = _API()


def _check(status, func, args):
    """errcheck for functions returning a status: raise on errors, pass OK/DONE through."""
    if status < 0:
        raise error_for(status, _cdll.deissn_last_error().decode("utf-8", "replace"))
    return status


_DECLARED = []  # the _Function arguments of every declaration, bound by _bind()


def _declare(name, argnames, restype, *argtypes):
    """Declare C function `name` with its arguments' names (space-separated) and types."""
    _DECLARED.append((name, argnames, restype, argtypes, None))


def _status(name, argnames, *argtypes):
    """Declare a function that returns a status, so that it raises on error."""
    _DECLARED.append((name, argnames, c_int32, argtypes, _check))


def _bind():
    """Make the declared functions attributes of `lib`, or say which the library lacks."""
    missing = [d[0] for d in _DECLARED if not hasattr(_cdll, d[0])]
    if missing:
        raise ImportError("deissn: %s (libdeissn %s) lacks %d function%s this binding needs: %s; "
                          "it is older than the binding: use a newer libdeissn.so.%d or the "
                          "binding that ships with it" % (
                              _cdll._name, "%d.%d.%d" % (_v // 10000, _v // 100 % 100, _v % 100),
                              len(missing), "s" if len(missing) > 1 else "", ", ".join(missing),
                              ABI))
    for d in _DECLARED:
        setattr(lib, d[0], _Function(*d))


P = POINTER
_declare("deissn_version_string", "", c_char_p)
_declare("deissn_has_torch", "", c_int32)
_declare("deissn_status_string", "status", c_char_p, c_int32)
_declare("deissn_last_error", "", c_char_p)
_declare("deissn_enum_name", "kind value", c_char_p, c_int32, c_int32)
_status("deissn_enum_value", "kind name value", c_int32, c_char_p, P(c_int32))

_status("deissn_schedule_params_init", "params version", P(ScheduleParams), c_uint32)
_status("deissn_schedule_create", "out params", P(c_void_p), P(ScheduleParams))
_declare("deissn_schedule_free", "schedule", None, c_void_p)
_declare("deissn_schedule_steps", "schedule", c_uint32, c_void_p)
_declare("deissn_schedule_num_train_steps", "schedule", c_uint32, c_void_p)
_status("deissn_schedule_times", "schedule taus n", c_void_p, c_double_p, c_size_t)
_declare("deissn_schedule_alpha_bar", "schedule tau", c_double, c_void_p, c_double)
_declare("deissn_schedule_fingerprint", "schedule", c_uint32, c_void_p)

_status("deissn_normtable_params_init", "params version", P(NormTableParams), c_uint32)
_status("deissn_normtable_create", "out tau r n params", P(c_void_p), c_double_p, c_double_p,
        c_size_t, P(NormTableParams))
_status("deissn_normtable_from_reference", "out score_abs Ls n params", P(c_void_p), c_float_p,
        c_float_p, c_size_t, P(NormTableParams))
_status("deissn_normtable_copy", "out table params", P(c_void_p), c_void_p, P(NormTableParams))
_declare("deissn_normtable_free", "table", None, c_void_p)
_declare("deissn_normtable_eval", "table tau", c_double, c_void_p, c_double)
_declare("deissn_normtable_size", "table", c_size_t, c_void_p)
_status("deissn_normtable_knot", "table i tau r", c_void_p, c_size_t, c_double_p, c_double_p)
_declare("deissn_normtable_fingerprint", "table", c_uint32, c_void_p)
_status("deissn_normtable_get_info", "table info", c_void_p, P(NormTableInfo))
_declare("deissn_normtable_plan_count", "table", c_size_t, c_void_p)
_status("deissn_normtable_plan", "table i plan", c_void_p, c_size_t, P(Plan))
_status("deissn_normtable_load", "out path params", P(c_void_p), c_char_p, P(NormTableParams))

_status("deissn_sampler_params_init", "params version", P(SamplerParams), c_uint32)
_status("deissn_sampler_params_by_name", "params name uses_table", P(SamplerParams), c_char_p,
        P(c_int32))
_status("deissn_preset_params", "preset nfe table schedule sampler use_table", c_int32, c_uint32,
        c_void_p, P(ScheduleParams), P(SamplerParams), P(c_int32))
_status("deissn_sampler_create", "out schedule table params", P(c_void_p), c_void_p, c_void_p,
        P(SamplerParams))
_declare("deissn_sampler_free", "sampler", None, c_void_p)
_declare("deissn_sampler_steps", "sampler", c_uint32, c_void_p)
_status("deissn_sampler_next", "sampler info", c_void_p, P(StepInfo))
_status("deissn_step", "sampler x model_out n info", c_void_p, c_float_p, c_float_p, c_size_t,
        P(StepInfo))
_status("deissn_sampler_reset", "sampler", c_void_p)
_status("deissn_sampler_coeffs", "sampler i out", c_void_p, c_uint32, P(StepCoeffs))

_status("deissn_model_params_init", "params version", P(ModelParams), c_uint32)
_status("deissn_model_from_callback", "out fn user params", P(c_void_p), MODEL_FN, c_void_p,
        P(ModelParams))
_status("deissn_model_load", "out path params", P(c_void_p), c_char_p, P(ModelParams))
_declare("deissn_model_free", "model", None, c_void_p)
_status("deissn_sample_options_init", "options version", P(SampleOptions), c_uint32)
_status("deissn_sample", "sampler model x shape ndim options", c_void_p, c_void_p, c_float_p,
        P(c_int64), c_uint32, P(SampleOptions))

_status("deissn_tune_params_init", "params version", P(TuneParams), c_uint32)
_status("deissn_tune", "out model noise table sample_shape sample_ndim params", P(c_void_p),
        c_void_p, P(ScheduleParams), c_void_p, P(c_int64), c_uint32, P(TuneParams))
_status("deissn_reference_solve", "out model noise sample_shape sample_ndim params first count",
        P(c_void_p), c_void_p, P(ScheduleParams), P(c_int64), c_uint32, P(TuneParams), c_uint64,
        c_uint64)
_status("deissn_reference_merge", "out parts n_parts", P(c_void_p), P(c_void_p), c_size_t)
_status("deissn_reference_range", "ref first count total", c_void_p, P(c_uint64), P(c_uint64),
        P(c_uint64))
_status("deissn_reference_to_bytes", "ref buf capacity size", c_void_p, c_void_p, c_size_t,
        P(c_size_t))
_status("deissn_reference_from_bytes", "out data size", P(c_void_p), c_void_p, c_size_t)
_declare("deissn_reference_free", "ref", None, c_void_p)
_status("deissn_tune_reference", "out model noise table ref params", P(c_void_p), c_void_p,
        P(ScheduleParams), c_void_p, c_void_p, P(TuneParams))

_status("deissn_fill_noise", "seed first_sample n_samples sample_numel out", c_uint64, c_uint64,
        c_size_t, c_size_t, c_float_p)

_status("deissn_normtable_save", "table path", c_void_p, c_char_p)
_declare("deissn_normtable_metadata", "table", c_char_p, c_void_p)

_status("deissn_calibrator_create", "out schedule", P(c_void_p), c_void_p)
_status("deissn_calibrator_from_table", "out table", P(c_void_p), c_void_p)
_declare("deissn_calibrator_free", "calibrator", None, c_void_p)
_declare("deissn_calibrator_steps", "calibrator", c_uint32, c_void_p)
_status("deissn_calibrator_add", "calibrator step eps n samples", c_void_p, c_uint32, c_float_p,
        c_size_t, c_uint64)
_status("deissn_calibrator_merge", "calibrator other", c_void_p, c_void_p)
_status("deissn_calibrator_get_sums", "calibrator sums counts n samples", c_void_p, P(c_int64),
        P(c_uint64), c_size_t, P(c_uint64))
_status("deissn_calibrator_add_sums", "calibrator sums counts n samples", c_void_p, P(c_int64),
        P(c_uint64), c_size_t, c_uint64)
_status("deissn_calibrator_finish", "out calibrator params", P(c_void_p), c_void_p,
        P(NormTableParams))

_bind()
