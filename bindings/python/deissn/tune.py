"""Tuning: learning, on a model, the plans that sample it best (docs/tuning.md), in one call
or split across processes (:class:`Reference`)."""
import ctypes
from ctypes import byref, c_int64, c_size_t, c_uint64, c_void_p

from . import _lib
from ._common import CallbackScope, Handle, Prediction, progress_thunk, to_enum
from ._lib import lib
from .errors import Error, InvalidArgument
from .schedule import schedule_params
from .table import NormTable


def call_with_callbacks(fn, *args):
    """fn(*args), a library call that runs Python callbacks, inside a :class:`CallbackScope`:
    what a callback (or a signal handler: KeyboardInterrupt) raised is raised here instead
    of the library's CallbackError."""
    with CallbackScope() as scope:
        try:
            fn(*args)
        except Error:
            if scope.exc is None:
                raise
    scope.reraise()


def _params(nfe, grid_steps, fit_samples, holdout_samples, batch, seed, prediction, progress,
            what):
    """The deissn_tune_params of the keyword arguments (None: the library's default)."""
    p = _lib.default_params(_lib.TuneParams)
    lo, hi = (nfe, nfe) if not isinstance(nfe, (tuple, list)) else tuple(nfe) if len(nfe) == 2 \
        else (None, None)
    if lo is None:
        raise InvalidArgument("%s: nfe must be an int or a (min, max) pair, not %r" % (what, nfe))
    p.nfe_min, p.nfe_max = lo, hi
    for name, value in (("grid_steps", grid_steps), ("fit_samples", fit_samples),
                        ("holdout_samples", holdout_samples), ("batch", batch)):
        if value is not None:
            setattr(p, name, value)
    p.seed = seed
    p.prediction = to_enum(Prediction, prediction, "%s: prediction" % what)
    p.progress = progress_thunk(progress)
    return p


def _noise(noise, what):
    noise_kwargs = dict(noise) if isinstance(noise, dict) else dict(noise=noise)
    sp, _kept = schedule_params("%s: noise" % what, **noise_kwargs)
    return sp


def _shape(shape):
    dims = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)
    return (c_int64 * max(len(dims), 1))(*dims), len(dims)


def tune(model, noise="linear", table=None, *, shape=None, nfe=(3, 25), grid_steps=None,
         fit_samples=None, holdout_samples=None, batch=None, seed=0, prediction="epsilon",
         progress=None, reference=None):
    """Learn, for each NFE of `nfe` (an int or an inclusive range ``(min, max)``, 2..64), the
    plan that samples :class:`Model` `model` best (``deissn_tune``, docs/tuning.md), and
    return a :class:`NormTable` carrying them (:attr:`NormTable.plans`; sample with
    ``Sampler.preset("tuned", nfe, table)``).

    noise:       the model's noise schedule: a name or :class:`Noise`, or a dict of
                 :class:`Schedule`'s noise arguments (``dict(noise="linear", beta_end=0.02)``,
                 ``dict(alphas_cumprod=a)``); sampling arguments there are ignored.
    table:       a table for the model (the DEIS-SN candidates use it; the result is a copy
                 with its plans replaced), or None: the result is the table the reference
                 solves calibrated.
    shape:       one sample's shape, without the batch, e.g. (C, H, W).
    grid_steps, fit_samples, holdout_samples, batch: the reference solves' evaluation times
                 (default 400), the trajectories that choose the plans (128: half confirm) and that only
                 measure them (256), samples per model evaluation (64); None: the library's
                 default. seed: trajectory k starts from ``deissn.noise(seed, 1, shape, k)``.
    prediction:  what the model outputs ("epsilon", "sample", "v_prediction").
    progress:    called as ``progress(done, total)`` (model evaluations of a batch; the
                 search's total is an estimate, revised after each NFE); raise in it to stop. An exception a Python model or progress raises, and Ctrl-C
                 (KeyboardInterrupt), is re-raised here.
    reference:   a complete :class:`Reference` of this run (solved in parts and merged,
                 possibly elsewhere): only the search runs (``deissn_tune_reference``); the
                 run's arguments above must be the reference's, `shape` is its own.
    Costs about 2 (fit + holdout) grid_steps model evaluations. Raises
    :class:`InvalidArgument` (ranges, a table for another noise schedule),
    :class:`Mismatch` (a reference of another run), :class:`ModelError`, :class:`NonFinite`.
    """
    p = _params(nfe, grid_steps, fit_samples, holdout_samples, batch, seed, prediction,
                progress, "tune")
    sp = _noise(noise, "tune")
    out = c_void_p()
    tab = table._handle if table is not None else None
    if reference is not None:
        if not isinstance(reference, Reference):
            raise TypeError("tune: reference must be a deissn.Reference, not %s"
                            % type(reference).__name__)
        call_with_callbacks(lib.deissn_tune_reference, byref(out), model._handle, byref(sp), tab,
                            reference._handle, byref(p))
    else:
        if shape is None:
            raise InvalidArgument("tune: shape (one sample's, without the batch) is required")
        c_shape, ndim = _shape(shape)
        call_with_callbacks(lib.deissn_tune, byref(out), model._handle, byref(sp), tab, c_shape,
                            ndim, byref(p))
    return NormTable._wrap(out.value)


class Reference(Handle):
    """The reference solves of a tuning run, or a part of them (``deissn_reference``): what
    :func:`tune` first computes, split by trajectory so that workers can share it.

        part = deissn.Reference.solve(model, shape=(1, 28, 28), first=0, count=128)
        data = part.to_bytes()                     # send it to one process, which does
        ref = deissn.Reference.merge([deissn.Reference.from_bytes(d) for d in datas])
        table = deissn.tune(model, reference=ref)  # the plans one process would find

    Merged parts hold the bits of one whole solve (exact sums), so the plans are those of
    :func:`tune` with the same arguments. Immutable; threads may share one.
    """

    _free = lib.deissn_reference_free

    @classmethod
    def solve(cls, model, noise="linear", *, shape, first=0, count=None, grid_steps=None,
              fit_samples=None, holdout_samples=None, batch=None, seed=0,
              prediction="epsilon", progress=None):
        """Solve trajectories first .. first + count - 1 (None: to the last) of the run that
        :func:`tune` with the same arguments makes (fit_samples + holdout_samples in all).
        Split work at multiples of `batch` (default 64): then every sample is evaluated in
        the batch a whole solve evaluates it in, and a model whose output depends on its
        batch still gives the whole solve's bits. Raises as :func:`tune` does."""
        p = _params(3, grid_steps, fit_samples, holdout_samples, batch, seed, prediction,
                    progress, "Reference.solve")
        sp = _noise(noise, "Reference.solve")
        c_shape, ndim = _shape(shape)
        first = _lib.convert(c_uint64, first, "Reference.solve: first")
        if count is not None and _lib.convert(c_uint64, count, "Reference.solve: count") == 0:
            raise InvalidArgument("Reference.solve: count is 0 (None: to the last trajectory)")
        count = 0 if count is None else count
        out = c_void_p()
        call_with_callbacks(lib.deissn_reference_solve, byref(out), model._handle, byref(sp),
                            c_shape, ndim, byref(p), first, count)
        return cls._wrap(out.value)

    @classmethod
    def merge(cls, parts):
        """One reference from parts of one run (any order; disjoint, together contiguous).
        Raises :class:`Mismatch` (another run, overlapping or missing trajectories)."""
        parts = list(parts)
        for i, part in enumerate(parts):
            if not isinstance(part, Reference):
                raise TypeError("Reference.merge: parts[%d] is a %s, not a deissn.Reference"
                                % (i, type(part).__name__))
        arr = (c_void_p * max(len(parts), 1))(*[p._handle.value for p in parts])
        out = c_void_p()
        lib.deissn_reference_merge(byref(out), arr, len(parts))
        return cls._wrap(out.value)

    @classmethod
    def from_bytes(cls, data):
        """A reference from :meth:`to_bytes`' bytes (bytes, bytearray, memoryview or a uint8
        numpy array). Raises :class:`FormatError` (not a reference, truncated, corrupt)."""
        buf = bytes(memoryview(data).cast("B")) if not isinstance(data, bytes) else data
        out = c_void_p()
        lib.deissn_reference_from_bytes(byref(out), buf, len(buf))
        return cls._wrap(out.value)

    def to_bytes(self):
        """The reference as bytes (docs/reference-format.md): the same on every platform."""
        size = c_size_t()
        lib.deissn_reference_to_bytes(self._handle, None, 0, byref(size))
        buf = ctypes.create_string_buffer(size.value)
        lib.deissn_reference_to_bytes(self._handle, buf, size.value, byref(size))
        return buf.raw[:size.value]

    @property
    def range(self):
        """(first, count, total): the trajectories held, of the run's total."""
        first, count, total = c_uint64(), c_uint64(), c_uint64()
        lib.deissn_reference_range(self._handle, byref(first), byref(count), byref(total))
        return first.value, count.value, total.value

    def __repr__(self):
        first, count, total = self.range
        return "<deissn.Reference trajectories %d..%d of %d>" % (first, first + count - 1, total)
