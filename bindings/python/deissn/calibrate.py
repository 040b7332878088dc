"""Calibration: measuring a model's normalization table r(tau), mergeable across processes."""
from ctypes import POINTER, byref, c_int64, c_uint64, c_void_p

import numpy as np

from ._common import Handle, input_array
from ._lib import c_float_p, lib
from .errors import SizeMismatch
from .table import NormTable


class Calibrator(Handle):
    """Accumulates, per step of a sampling run, the sum of |eps| and how many values it was.

    ``Calibrator(schedule)`` for runs over `schedule`'s steps (typically 1000, trailing);
    pass it to :meth:`Sampler.sample` (``calibrator=``) or :meth:`add` eps yourself, then
    :meth:`finish` into a :class:`NormTable`. The sums are integers (|eps| in fixed point
    with 24 fractional bits), so however the samples are split into batches or processes,
    merged calibrators hold the same bits: reduce :attr:`sums` across processes (e.g. an
    all_reduce of int64 tensors) and :meth:`add_sums` the result. One thread at a time.
    """

    _free = lib.deissn_calibrator_free

    def __init__(self, schedule):
        out = c_void_p()
        lib.deissn_calibrator_create(byref(out), schedule._handle)  # copies the step times
        self._ptr, self._keep = out.value, ()

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
        lib.deissn_calibrator_add(self._handle, step, eps.ctypes.data_as(c_float_p), eps.size,
                                  samples)

    def merge(self, other):
        """Add `other`'s sums, counts and samples to this calibrator."""
        lib.deissn_calibrator_merge(self._handle, other._handle)

    @property
    def sums(self):
        """The raw state ``(sums, counts, samples)``: int64 and uint64 arrays of N values
        (sampling order) and an int."""
        h = self._handle
        n = lib.deissn_calibrator_steps(h)
        sums, counts, samples = np.empty(n, np.int64), np.empty(n, np.uint64), c_uint64()
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
        lib.deissn_calibrator_add_sums(self._handle, sums.ctypes.data_as(POINTER(c_int64)),
                                       counts.ctypes.data_as(POINTER(c_uint64)), sums.size,
                                       samples)

    def finish(self, clip=0, metadata=None):
        """Make the table: r = mean |eps| per step at its time, the `clip` knots nearest
        tau = 0 set to the next one's value, `metadata` (a str) kept with it. The calibrator
        is unchanged. Raises :class:`StateError` when a step has no values yet."""
        out = c_void_p()
        lib.deissn_calibrator_finish(byref(out), self._handle, clip,
                                     metadata.encode() if metadata else None)
        return NormTable._wrap(out.value)

    def __repr__(self):
        if self.closed:
            return "<deissn.Calibrator (closed)>"
        return "<deissn.Calibrator steps=%d samples=%d>" % (self.steps, self.sums[2])
