"""Loading libdeissn and declaring its C API (every function once, with argtypes/restype).

The library is looked for, in order, at:
  1. the path in the environment variable DEISSN_LIB;
  2. the build tree this package sits in: <repo>/build/lib/libdeissn.so.0;
  3. the system's library path (ctypes.util.find_library("deissn")).
"""
import ctypes
import ctypes.util
import os
from ctypes import (CFUNCTYPE, POINTER, Structure, c_char_p, c_double, c_int, c_int32,
                    c_int64, c_size_t, c_uint32, c_uint64, c_void_p)
from pathlib import Path

from .errors import error_for

# The binding speaks the ABI of libdeissn MAJOR.MINOR; any patch release will do.
ABI_VERSION = (0, 2)

c_float_p = POINTER(ctypes.c_float)
c_double_p = POINTER(c_double)


class ScheduleParams(Structure):
    _fields_ = [
        ("version", c_uint32), ("noise", c_int32), ("num_train_steps", c_uint32),
        ("beta_start", c_double), ("beta_end", c_double), ("beta_min", c_double),
        ("beta_max", c_double), ("custom", c_double_p), ("custom_len", c_size_t),
        ("spacing", c_int32), ("steps", c_uint32), ("power", c_double),
        ("karras_rho", c_double), ("tau_min_eval", c_double), ("tau_end", c_double),
        ("custom_taus", c_double_p),
    ]


class SamplerParams(Structure):
    _fields_ = [("version", c_uint32), ("order", c_uint32), ("lower_order_final", c_uint32),
                ("allow_table_mismatch", c_uint32), ("method", c_int32),
                ("corrector", c_uint32)]


class StepInfo(Structure):
    _fields_ = [("step", c_uint32), ("steps", c_uint32), ("tau", c_double),
                ("model_t", c_double), ("alpha", c_double), ("sigma", c_double)]


class StepCoeffs(Structure):
    _fields_ = [("step", c_uint32), ("order", c_uint32), ("tau_from", c_double),
                ("tau_to", c_double), ("model_t", c_double), ("psi", c_double),
                ("c", c_double * 5), ("r", c_double * 5), ("corrector_order", c_uint32)]


class ModelParams(Structure):
    _fields_ = [("version", c_uint32), ("prediction", c_int32), ("time_convention", c_int32),
                ("device", c_char_p), ("dtype", c_int32), ("num_threads", c_int32)]


MODEL_FN = CFUNCTYPE(c_int, c_void_p, c_float_p, POINTER(c_int64), c_uint32, c_double,
                     c_float_p)
PROGRESS_FN = CFUNCTYPE(c_int, c_void_p, c_uint32, c_uint32)


class SampleOptions(Structure):
    _fields_ = [("version", c_uint32), ("progress", PROGRESS_FN), ("progress_user", c_void_p),
                ("model_seconds", c_double), ("sampler_seconds", c_double),
                ("calibrator", c_void_p)]


def _candidates():
    env = os.environ.get("DEISSN_LIB")
    if env:
        # An explicit choice is not second-guessed: if it is wrong, say so.
        return [("DEISSN_LIB", env)]
    found = []
    tree = Path(__file__).resolve().parents[3] / "build" / "lib" / "libdeissn.so.0"
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
            return ctypes.CDLL(path)
        except OSError as e:
            tried.append("%s (%s): %s" % (path, where, e))
    raise ImportError("deissn: cannot load libdeissn. Build it with `make` in the repository, "
                      "install it, or set DEISSN_LIB to the path of libdeissn.so.0. Tried: "
                      + ("; ".join(tried) or "nothing found"))


lib = _load()
lib.deissn_version_number.restype = c_uint32
lib.deissn_version_number.argtypes = []
_v = lib.deissn_version_number()
if (_v // 10000, _v // 100 % 100) != ABI_VERSION:
    raise ImportError("deissn: %s is libdeissn %d.%d.%d, but this binding was written for %d.%d.x; "
                      "use the binding that ships with that library, or set DEISSN_LIB to a "
                      "%d.%d library" % (lib._name, _v // 10000, _v // 100 % 100, _v % 100,
                                         *ABI_VERSION, *ABI_VERSION))


def _check(status, func, args):
    """errcheck for functions returning a status: raise on errors, pass OK/DONE through."""
    if status < 0:
        raise error_for(status, lib.deissn_last_error().decode("utf-8", "replace"))
    return status


def _declare(name, restype, *argtypes):
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)


def _status(name, *argtypes):
    """Declare a function that returns a status, so that it raises on error."""
    _declare(name, c_int32, *argtypes)
    getattr(lib, name).errcheck = _check


P = POINTER
_declare("deissn_version_string", c_char_p)
_declare("deissn_has_torch", c_int32)
_declare("deissn_status_string", c_char_p, c_int32)
_declare("deissn_last_error", c_char_p)

_status("deissn_schedule_params_init", P(ScheduleParams))
_status("deissn_schedule_create", P(c_void_p), P(ScheduleParams))
_declare("deissn_schedule_free", None, c_void_p)
_declare("deissn_schedule_steps", c_uint32, c_void_p)
_declare("deissn_schedule_num_train_steps", c_uint32, c_void_p)
_status("deissn_schedule_times", c_void_p, c_double_p, c_size_t)
_declare("deissn_schedule_alpha_bar", c_double, c_void_p, c_double)
_declare("deissn_schedule_fingerprint", c_uint32, c_void_p)

_status("deissn_normtable_create", P(c_void_p), c_double_p, c_double_p, c_size_t)
_status("deissn_normtable_from_reference", P(c_void_p), c_float_p, c_float_p,
         c_size_t, c_uint32)
_declare("deissn_normtable_free", None, c_void_p)
_declare("deissn_normtable_eval", c_double, c_void_p, c_double)
_declare("deissn_normtable_size", c_size_t, c_void_p)
_status("deissn_normtable_knot", c_void_p, c_size_t, c_double_p, c_double_p)
_declare("deissn_normtable_fingerprint", c_uint32, c_void_p)
_status("deissn_normtable_load", P(c_void_p), c_char_p, c_uint32)

_status("deissn_sampler_params_init", P(SamplerParams))
_status("deissn_preset_params", c_int32, c_uint32, P(ScheduleParams), P(SamplerParams))
_status("deissn_sampler_create", P(c_void_p), c_void_p, c_void_p, P(SamplerParams))
_declare("deissn_sampler_free", None, c_void_p)
_declare("deissn_sampler_steps", c_uint32, c_void_p)
_status("deissn_sampler_next", c_void_p, P(StepInfo))
_status("deissn_step", c_void_p, c_float_p, c_float_p, c_size_t, c_int32, P(StepInfo))
_status("deissn_sampler_reset", c_void_p)
_status("deissn_sampler_coeffs", c_void_p, c_uint32, P(StepCoeffs))

_status("deissn_model_params_init", P(ModelParams))
_status("deissn_model_from_callback", P(c_void_p), MODEL_FN, c_void_p, P(ModelParams))
_status("deissn_model_load", P(c_void_p), c_char_p, P(ModelParams))
_declare("deissn_model_free", None, c_void_p)
_status("deissn_sample", c_void_p, c_void_p, c_float_p, P(c_int64), c_uint32,
         P(SampleOptions))

_status("deissn_fill_noise", c_uint64, c_uint64, c_size_t, c_size_t, c_float_p)

_status("deissn_normtable_save", c_void_p, c_char_p)
_declare("deissn_normtable_metadata", c_char_p, c_void_p)

_status("deissn_calibrator_create", P(c_void_p), c_void_p)
_status("deissn_calibrator_from_table", P(c_void_p), c_void_p)
_declare("deissn_calibrator_free", None, c_void_p)
_declare("deissn_calibrator_steps", c_uint32, c_void_p)
_status("deissn_calibrator_add", c_void_p, c_uint32, c_float_p, c_size_t, c_uint64)
_status("deissn_calibrator_merge", c_void_p, c_void_p)
_status("deissn_calibrator_get_sums", c_void_p, P(c_int64), P(c_uint64), c_size_t, P(c_uint64))
_status("deissn_calibrator_add_sums", c_void_p, P(c_int64), P(c_uint64), c_size_t, c_uint64)
_status("deissn_calibrator_finish", P(c_void_p), c_void_p, c_uint32, c_char_p)
