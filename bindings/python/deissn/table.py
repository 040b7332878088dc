"""Normalization tables r(tau): the mean |eps| of a model at time tau."""
import dataclasses
import os
from collections import namedtuple
from ctypes import byref, c_double, c_void_p

import numpy as np

from . import _lib
from ._common import Handle, Method, input_array, map_tau, to_enum, weights_array
from ._lib import c_double_p, c_float_p, lib
from .errors import FormatError, InvalidArgument, SizeMismatch

# The formats deissn_normtable_load() reads, for messages about files it does not.
READS = ("libdeissn's table format (.dsn, deissn-calibrate, NormTable.save) and the reference "
         "implementation's torch.save files of Ls and score_abs (.pt)")

TableInfo = namedtuple("TableInfo", "n_knots samples steps clip fingerprint has_sums")
TableInfo.__doc__ = """What is known about how a table was made (``deissn_normtable_info``):
its knots, the samples and steps of the runs that measured it (0: unknown), the knots clipped
nearest tau = 0, the schedule fingerprint (0: any) and whether it keeps calibration sums."""


@dataclasses.dataclass(frozen=True)
class Plan:
    """A tuned plan (``deissn_plan``, docs/tuning.md): how to sample the table's model with
    exactly `nfe` model evaluations, and what it is worth.

    taus: tau_N > ... > tau_1 (nfe of them), then sampling stops at `tau_end`; `method`,
    `order`, `corrector`, `lower_order_final` as in :class:`Sampler`; `uses_table`: DEIS-SN,
    normalised by the table the plan is in; `error`: the held-out RMSE on `samples` samples
    against a converged solution of the same ODE, [`error_low`, `error_high`] its 95 %
    bootstrap interval, `best_error` the same measure for the "best" preset. `weights`: a
    :attr:`Method.LEARNED` plan's per-step weights, `nfe` tuples of 6 floats (step i's weights
    of x and of the newest to the oldest eps, as ``Sampler(..., weights=...)`` takes them);
    () for the other methods."""
    nfe: int
    taus: tuple
    tau_end: float
    method: Method
    order: int
    corrector: bool
    lower_order_final: bool
    uses_table: bool
    samples: int
    error: float
    error_low: float
    error_high: float
    best_error: float
    weights: tuple = ()

    @classmethod
    def _from_c(cls, c):
        method = Method(c.method)
        weights = tuple(tuple(c.weights[i]) for i in range(c.nfe)) \
            if method == Method.LEARNED else ()
        return cls(c.nfe, tuple(c.taus[:c.nfe]), c.tau_end, method, c.order,
                   bool(c.corrector), bool(c.lower_order_final), bool(c.uses_table), c.samples,
                   c.error, c.error_low, c.error_high, c.best_error, weights)

    def _to_c(self, what):
        taus = tuple(self.taus)
        if len(taus) != self.nfe or not 1 <= self.nfe <= _lib.PLAN_MAX_NFE:
            raise InvalidArgument("%s: nfe is %r with %d taus (1..%d of them)"
                                  % (what, self.nfe, len(taus), _lib.PLAN_MAX_NFE))
        c = _lib.Plan()
        c.nfe, c.method = self.nfe, to_enum(Method, self.method, what + ": method")
        c.order, c.corrector = self.order, int(bool(self.corrector))
        c.lower_order_final, c.uses_table = int(bool(self.lower_order_final)), int(bool(self.uses_table))
        c.samples, c.tau_end, c.error = self.samples, self.tau_end, self.error
        c.error_low, c.error_high, c.best_error = self.error_low, self.error_high, self.best_error
        for i, t in enumerate(taus):
            c.taus[i] = _lib.convert(c_double, t, "%s: taus[%d]" % (what, i))
        if c.method == Method.LEARNED:
            w = weights_array(self.weights, self.nfe, what + ": weights")
            for i in range(self.nfe):
                c.weights[i][:] = w[i].tolist()
        elif self.weights is not None and len(self.weights):
            raise InvalidArgument("%s: weights are given, but method is %s: only a LEARNED "
                                  "plan has weights (give ())" % (what, Method(c.method).name))
        return c


def table_params(fingerprint=0, clip=0, metadata=None, plans=None, what="plans"):
    """A deissn_normtable_params: 0 / None mean "the source's" (metadata "" means none, plans
    [] none), and the array its plans pointer points into (keep it while p is used)."""
    p = _lib.default_params(_lib.NormTableParams)
    p.fingerprint, p.clip, p.metadata = fingerprint, clip, metadata
    if plans is None:
        return p, None
    plans = list(plans)
    array = (_lib.Plan * max(len(plans), 1))(
        *[q._to_c("%s[%d]" % (what, i)) for i, q in enumerate(plans)])
    p.plans = array
    p.n_plans = len(plans)
    return p, array


class NormTable(Handle):
    """A normalization table r(tau), linear between knots, constant beyond the end knots.

    Made by :meth:`load`, :meth:`from_arrays` or :meth:`from_reference`. Call it to
    evaluate: ``table(0.5)`` or ``table(np.linspace(0, 1, 11))``. A table is immutable and
    may be shared by threads.
    """

    _free = lib.deissn_normtable_free

    @classmethod
    def load(cls, path, clip=0, *, fingerprint=0, metadata=None, **renamed):
        """Load a table file (format recognised by its first bytes).

        `clip` knots nearest tau = 0 are clipped on top of the file's own clip: the
        reference implementation's torch.save files want theirs (5 for CIFAR-10, 1 for LSUN
        Church), as in :meth:`from_reference`. `fingerprint` and `metadata` (0 / None: the
        file's) relabel the table as :meth:`copy` does.
        Raises :class:`FileError` (cannot read) or :class:`FormatError` (not a table).
        """
        if "pt_clip" in renamed:
            raise TypeError("NormTable.load(): pt_clip is now clip (and applies to every format)")
        if renamed:
            raise TypeError("NormTable.load() got an unexpected keyword argument %r"
                            % next(iter(renamed)))
        out = c_void_p()
        try:
            lib.deissn_normtable_load(byref(out), os.fsencode(path),
                                      byref(table_params(fingerprint, clip, metadata)[0]))
        except FormatError as e:
            if "libdeissn's table format" in e.message:  # the library listed them itself
                raise
            # e.g. a zip that is not a torch.save archive (.npz): say what would have been read
            raise FormatError("%s (NormTable.load reads %s)" % (e.message, READS),
                              e.status) from None
        return cls._wrap(out.value)

    @classmethod
    def from_arrays(cls, tau, r, *, fingerprint=0, clip=0, metadata=None):
        """A table from knots: `tau` strictly increasing in [0, 1], `r` finite and > 0 (after
        the `clip` knots nearest tau = 0 took the next one's value); `fingerprint` (0: any
        schedule) and `metadata` (a str) recorded with it."""
        tau, r = input_array(tau, np.float64), input_array(r, np.float64)
        if tau.size != r.size:
            raise SizeMismatch("NormTable.from_arrays: %d taus but %d values" % (tau.size, r.size))
        out = c_void_p()
        lib.deissn_normtable_create(byref(out), tau.ctypes.data_as(c_double_p),
                                    r.ctypes.data_as(c_double_p), tau.size,
                                    byref(table_params(fingerprint, clip, metadata)[0]))
        return cls._wrap(out.value)

    @classmethod
    def from_reference(cls, score_abs, Ls, clip):
        """A table from the reference implementation's `score_abs` and `Ls` arrays.

        r = reverse(score_abs * Ls), its first `clip` entries set to r[clip], entry j at
        tau = j / (n - 1). Arrays (or torch tensors) are converted to float32 if needed.
        """
        score_abs, Ls = input_array(score_abs), input_array(Ls)
        if score_abs.size != Ls.size:
            raise SizeMismatch("NormTable.from_reference: score_abs has %d values, Ls %d"
                               % (score_abs.size, Ls.size))
        out = c_void_p()
        lib.deissn_normtable_from_reference(byref(out), score_abs.ctypes.data_as(c_float_p),
                                            Ls.ctypes.data_as(c_float_p), score_abs.size,
                                            byref(table_params(clip=clip)[0]))
        return cls._wrap(out.value)

    def __call__(self, tau):
        """r(tau) for a float or an array of floats."""
        return map_tau(lib.deissn_normtable_eval, self._handle, tau)

    def __len__(self):
        return lib.deissn_normtable_size(self._handle)

    @property
    def knots(self):
        """The knots as two float64 arrays ``(tau, r)``."""
        h = self._handle
        n = lib.deissn_normtable_size(h)
        tau, r = np.empty(n), np.empty(n)
        t, v = c_double(), c_double()
        for i in range(n):
            lib.deissn_normtable_knot(h, i, byref(t), byref(v))
            tau[i], r[i] = t.value, v.value
        return tau, r

    @property
    def fingerprint(self):
        """The fingerprint of the schedule the table was made for; 0: any schedule."""
        return lib.deissn_normtable_fingerprint(self._handle)

    @property
    def metadata(self):
        """The text kept with the table ("" when none)."""
        return lib.deissn_normtable_metadata(self._handle).decode("utf-8")

    @property
    def info(self):
        """A :class:`TableInfo`: how the table was made."""
        i = _lib.NormTableInfo()
        lib.deissn_normtable_get_info(self._handle, byref(i))
        return TableInfo(i.n_knots, i.samples, i.steps, i.clip, i.fingerprint, bool(i.has_sums))

    @property
    def plans(self):
        """The tuned plans the table carries (:func:`deissn.tune`, deissn-calibrate), a list of
        :class:`Plan` in increasing nfe; [] when none."""
        h, c = self._handle, _lib.Plan()
        out = []
        for i in range(lib.deissn_normtable_plan_count(h)):
            lib.deissn_normtable_plan(h, i, byref(c))
            out.append(Plan._from_c(c))
        return out

    def copy(self, *, fingerprint=0, clip=0, metadata=None, plans=None):
        """A copy relabelled (``deissn_normtable_copy``): a new `fingerprint`, a further `clip`,
        new `metadata` ("" for none), new `plans` (:class:`Plan` objects with distinct nfe, at
        most 64; [] for none); 0 / None keep this table's. Everything else, calibration sums
        included, is the same."""
        out = c_void_p()
        p, _kept = table_params(fingerprint, clip, metadata, plans, "NormTable.copy: plans")
        lib.deissn_normtable_copy(byref(out), self._handle, byref(p))
        return type(self)._wrap(out.value)

    def with_plans(self, plans):
        """A copy whose plans are `plans` (a list of :class:`Plan`; [] for none)."""
        return self.copy(plans=list(plans))

    def with_metadata(self, metadata):
        """A copy whose metadata is `metadata` ("" or None for none)."""
        return self.copy(metadata=metadata or "")

    def save(self, path):
        """Write the table in libdeissn's own format (read back bit for bit by :meth:`load`),
        atomically: `path` never holds a partial table. Raises :class:`FileError`."""
        lib.deissn_normtable_save(self._handle, os.fsencode(path))

    def __repr__(self):
        if self.closed:
            return "<deissn.NormTable (closed)>"
        return "<deissn.NormTable knots=%d fingerprint=0x%08x plans=%d>" % (
            len(self), self.fingerprint, lib.deissn_normtable_plan_count(self._handle))
