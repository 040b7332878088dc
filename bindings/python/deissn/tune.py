"""Tuning: learning, on a model, the plans that sample it best (docs/tuning.md)."""
from ctypes import byref, c_int64, c_void_p

from . import _lib
from ._common import CallbackScope, Prediction, progress_thunk, to_enum
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


def tune(model, noise="linear", table=None, *, shape, nfe=(3, 25), grid_steps=None,
         fit_samples=None, holdout_samples=None, batch=None, seed=0, prediction="epsilon",
         progress=None):
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
    progress:    called as ``progress(done, total)`` (model evaluations of a batch); raise in
                 it to stop. An exception a Python model or progress raises, and Ctrl-C
                 (KeyboardInterrupt), is re-raised here.
    Costs about 2 (fit + holdout) grid_steps model evaluations. Raises
    :class:`InvalidArgument` (ranges, a table for another noise schedule),
    :class:`ModelError`, :class:`NonFinite`.
    """
    p = _lib.default_params(_lib.TuneParams)
    lo, hi = (nfe, nfe) if not isinstance(nfe, (tuple, list)) else tuple(nfe) if len(nfe) == 2 \
        else (None, None)
    if lo is None:
        raise InvalidArgument("tune: nfe must be an int or a (min, max) pair, not %r" % (nfe,))
    p.nfe_min, p.nfe_max = lo, hi
    for name, value in (("grid_steps", grid_steps), ("fit_samples", fit_samples),
                        ("holdout_samples", holdout_samples), ("batch", batch)):
        if value is not None:
            setattr(p, name, value)
    p.seed = seed
    p.prediction = to_enum(Prediction, prediction, "tune: prediction")
    p.progress = progress_thunk(progress)
    noise_kwargs = dict(noise) if isinstance(noise, dict) else dict(noise=noise)
    sp, _kept = schedule_params("tune: noise", **noise_kwargs)
    dims = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)
    c_shape = (c_int64 * max(len(dims), 1))(*dims)
    out = c_void_p()
    call_with_callbacks(lib.deissn_tune, byref(out), model._handle, byref(sp),
                        table._handle if table is not None else None, c_shape, len(dims),
                        byref(p))
    return NormTable._wrap(out.value)
