"""Calibration: measuring a model's normalization table r(tau), mergeable across processes."""
import contextlib
from ctypes import POINTER, byref, c_int64, c_uint64, c_void_p

import numpy as np

from ._common import Handle, input_array
from ._lib import c_float_p, lib
from .errors import SizeMismatch
from .table import NormTable, table_params


class Calibrator(Handle):
    """Accumulates, per step of a sampling run, the sum of |eps| and how many values it was.

    ``Calibrator(schedule)`` for runs over `schedule`'s steps (typically 1000, trailing);
    pass it to :meth:`Sampler.sample` (``calibrator=``) or :meth:`add` eps yourself, then
    :meth:`finish` into a :class:`NormTable`. The sums are integers (|eps| in fixed point
    with 24 fractional bits), so however the samples are split into batches or processes,
    merged calibrators hold the same bits: reduce :attr:`sums` across processes (e.g. an
    all_reduce of int64 tensors) and :meth:`add_sums` the result. One thread at a time: a
    call while another is using it (a sampling it was passed to included) raises
    :class:`ConcurrentUseError`.
    """

    _free = lib.deissn_calibrator_free
    _exclusive = True

    def __init__(self, schedule):
        out = c_void_p()
        lib.deissn_calibrator_create(byref(out), schedule._handle)  # copies the step times
        self._adopt(out.value)

    @classmethod
    def from_table(cls, table):
        """A calibrator holding the sums `table` was made from (a table made by
        :meth:`finish`), to go on accumulating or merge it with others."""
        out = c_void_p()
        lib.deissn_calibrator_from_table(byref(out), table._handle)
        return cls._wrap(out.value)

    @property
    def steps(self):
        """N, the number of steps."""
        return lib.deissn_calibrator_steps(self._handle)

    def add(self, step, eps, samples=0):
        """Add the eps (any shape; converted once to float32 if it is not) used at `step`;
        `samples` is added to the sample count (pass the batch size once per batch)."""
        eps = input_array(eps)
        with self._using() as h:
            lib.deissn_calibrator_add(h, step, eps.ctypes.data_as(c_float_p), eps.size, samples)

    def merge(self, other):
        """Add `other`'s sums, counts and samples to this calibrator."""
        with self._using() as h, \
                (contextlib.nullcontext(h) if other is self else other._using()) as o:
            lib.deissn_calibrator_merge(h, o)

    @property
    def sums(self):
        """The raw state ``(sums, counts, samples)``: int64 and uint64 arrays of N values
        (sampling order) and an int."""
        n = self.steps
        sums, counts, samples = np.empty(n, np.int64), np.empty(n, np.uint64), c_uint64()
        with self._using() as h:
            lib.deissn_calibrator_get_sums(h, sums.ctypes.data_as(POINTER(c_int64)),
                                           counts.ctypes.data_as(POINTER(c_uint64)), n,
                                           byref(samples))
        return sums, counts, samples.value

    def add_sums(self, sums, counts, samples=0):
        """Add raw sums and counts (N values each, as from :attr:`sums` of other calibrators,
        e.g. after an all_reduce) and `samples`. Integers of other widths are converted."""
        sums, counts = input_array(sums, np.int64), input_array(counts, np.uint64)
        if sums.size != counts.size:
            raise SizeMismatch("Calibrator.add_sums: %d sums but %d counts"
                               % (sums.size, counts.size), -3)
        with self._using() as h:
            lib.deissn_calibrator_add_sums(h, sums.ctypes.data_as(POINTER(c_int64)),
                                           counts.ctypes.data_as(POINTER(c_uint64)), sums.size,
                                           samples)

    def finish(self, clip=0, metadata=None, *, fingerprint=0):
        """Make the table: r = mean |eps| per step at its time, the `clip` knots nearest
        tau = 0 set to the next one's value, `metadata` (a str) kept with it, the fingerprint
        the calibrator's schedule's unless `fingerprint` is given. The calibrator is
        unchanged. Raises :class:`StateError` when a step has no values yet."""
        out = c_void_p()
        p, _ = table_params(fingerprint, clip, metadata)
        with self._using() as h:
            lib.deissn_calibrator_finish(byref(out), h, byref(p))
        return NormTable._wrap(out.value)

    def __repr__(self):
        if self.closed:
            return "<deissn.Calibrator (closed)>"
        return "<deissn.Calibrator steps=%d samples=%d>" % (self.steps, self.sums[2])
