"""Normalization tables r(tau): the mean |eps| of a model at time tau."""
import os
from ctypes import byref, c_double, c_void_p

import numpy as np

from ._common import Handle, input_array, map_tau
from ._lib import c_double_p, c_float_p, lib
from .errors import SizeMismatch


class NormTable(Handle):
    """A normalization table r(tau), linear between knots, constant beyond the end knots.

    Made by :meth:`load`, :meth:`from_arrays` or :meth:`from_reference`. Call it to
    evaluate: ``table(0.5)`` or ``table(np.linspace(0, 1, 11))``. A table is immutable and
    may be shared by threads.
    """

    _free = lib.deissn_normtable_free

    @classmethod
    def load(cls, path, pt_clip=0):
        """Load a table file (format recognised by its first bytes).

        For the reference implementation's torch.save files, `pt_clip` entries nearest
        tau = 0 are clipped as in :meth:`from_reference` (5 for CIFAR-10, 1 for LSUN Church).
        Raises :class:`FileError` (cannot read) or :class:`FormatError` (not a table).
        """
        out = c_void_p()
        lib.deissn_normtable_load(byref(out), os.fsencode(path), pt_clip)
        return cls._wrap(out.value)

    @classmethod
    def from_arrays(cls, tau, r):
        """A table from knots: `tau` strictly increasing in [0, 1], `r` finite and > 0."""
        tau, r = input_array(tau, np.float64), input_array(r, np.float64)
        if tau.size != r.size:
            raise SizeMismatch("NormTable.from_arrays: %d taus but %d values" % (tau.size, r.size))
        out = c_void_p()
        lib.deissn_normtable_create(byref(out), tau.ctypes.data_as(c_double_p),
                                    r.ctypes.data_as(c_double_p), tau.size)
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
                                            Ls.ctypes.data_as(c_float_p), score_abs.size, clip)
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

    def save(self, path):
        """Write the table in libdeissn's own format (read back bit for bit by :meth:`load`),
        atomically: `path` never holds a partial table. Raises :class:`FileError`."""
        lib.deissn_normtable_save(self._handle, os.fsencode(path))

    def __repr__(self):
        if self.closed:
            return "<deissn.NormTable (closed)>"
        return "<deissn.NormTable knots=%d fingerprint=0x%08x>" % (len(self), self.fingerprint)
