"""The sampler: the DEIS / DEIS-SN stepping state machine, and the full sampling loop."""
import contextlib
from collections import namedtuple
from ctypes import byref, c_int64, c_void_p

import numpy as np

from . import _lib
from ._common import (CallbackScope, Handle, Method, Prediction, callback, input_array,
                      inplace_array, to_enum)
from ._lib import c_float_p, lib
from .errors import Error, SizeMismatch, StateError

DONE = 1

StepInfo = namedtuple("StepInfo", "step steps tau model_t alpha sigma")
StepInfo.__doc__ = """Where a sampler stands: evaluate the model at `tau` (model time `model_t`
= tau*T - 1) for step `step` of `steps`; alpha = sqrt(alpha_bar(tau)), sigma = sqrt(1 - alpha_bar)."""

StepCoeffs = namedtuple("StepCoeffs",
                        "step order tau_from tau_to model_t psi c r corrector_order")
StepCoeffs.__doc__ = """The coefficients of one step from tau_from to tau_to:
x_to = psi * x_from + sum_j c[j] * eps_j / r[j], eps_0 being the newest output, j up to
order, or order + 1 where the step folds in a correction of x_from (corrector_order > 0)."""


def _info(s):
    return StepInfo(s.step, s.steps, s.tau, s.model_t, s.alpha, s.sigma)


class Sampler(Handle):
    """Walks a :class:`Schedule` with DEIS, or DEIS-SN when given a :class:`NormTable`.

    ``Sampler(schedule, table=None, order=3, lower_order_final=False, method="eps",
    corrector=False)``; order is 0..3 (0 without a table is DDIM). method "eps" is DEIS /
    DEIS-SN (the polynomial is through eps / r(tau)); "data" extrapolates the data prediction
    x0 in log-SNR instead and ignores the table; ``corrector=True`` (method "data" only)
    corrects each state with the model output evaluated there (one order higher, no extra
    evaluations). All coefficients are computed here, once.

    Two ways to sample. With your own model call::

        for t in sampler:                    # t is a StepInfo; starts a new run
            x = sampler.step(x, my_model(x, t.model_t))

    or the whole loop in the library with a :class:`Model`::

        x = sampler.sample(model, x)

    The sampler keeps `schedule` and `table` alive. It is used by one thread at a time: a
    call while another thread's call is using it (or from a callback of its own sample())
    raises :class:`ConcurrentUseError` rather than waiting, and does nothing.
    Raises :class:`InvalidArgument` (order > 3) or :class:`Mismatch` (the table was made for
    another noise schedule; pass ``allow_table_mismatch=True`` to accept it).
    """

    _free = lib.deissn_sampler_free
    _exclusive = True

    def __init__(self, schedule, table=None, *, order=3, lower_order_final=False,
                 method="eps", corrector=False, allow_table_mismatch=False):
        p = _lib.default_params(_lib.SamplerParams)
        p.order = order
        p.lower_order_final = int(bool(lower_order_final))
        p.method = to_enum(Method, method, "method")
        p.corrector = int(bool(corrector))
        p.allow_table_mismatch = int(bool(allow_table_mismatch))
        out = c_void_p()
        lib.deissn_sampler_create(byref(out), schedule._handle,
                                  table._handle if table is not None else None, byref(p))
        self._adopt(out.value)
        self.schedule, self.table = schedule, table

    @classmethod
    def preset(cls, name="best", steps=10, table=None, **schedule_kwargs):
        """The sampler of a named configuration for `steps` model evaluations, the
        recommended way to make one::

            sampler = deissn.Sampler.preset("best", 10, table)

        "best" is the configuration measured best (docs/presets.md), "reference" the DEIS-SN
        paper's. `schedule_kwargs` describe the noise schedule (noise=..., beta_start=...,
        alphas_cumprod=...; default linear, T = 1000); see :func:`deissn.preset`."""
        from .schedule import Schedule, preset
        skw, pkw = preset(name, steps)
        skw.update(schedule_kwargs)
        return cls(Schedule(**skw), table, **pkw)

    @property
    def steps(self):
        """N, the number of steps (model evaluations)."""
        return lib.deissn_sampler_steps(self._handle)

    def _next(self):
        s = _lib.StepInfo()
        with self._using() as h:
            return lib.deissn_sampler_next(h, byref(s)), s

    @property
    def info(self):
        """The :class:`StepInfo` of the next model evaluation (step == steps when done)."""
        return _info(self._next()[1])

    @property
    def done(self):
        """True once the last step was taken."""
        return self._next()[0] == DONE

    def reset(self):
        """Rewind to step 0 for a new batch (of any size)."""
        with self._using() as h:
            lib.deissn_sampler_reset(h)

    def __iter__(self):
        """Start a new run (reset) and yield a :class:`StepInfo` per step; call
        :meth:`step` once for each. Stops after the last step."""
        self.reset()
        while True:
            status, s = self._next()
            if status == DONE:
                return
            yield _info(s)
            if self._next()[1].step == s.step:
                raise StateError("Sampler: step() was not called for step %d" % s.step, -5)

    def step(self, x, model_out, prediction="epsilon"):
        """Take one step and return `x`, updated in place.

        x:          the state, float32, C-contiguous and writable (numpy array or torch CPU
                    tensor), any shape; never copied.
        model_out:  the model's output on x at :attr:`info`'s time, as many elements as x;
                    converted once to float32 if it is not (the sampler copies what it keeps).
        prediction: "epsilon", "sample" (x0) or "v".
        Raises :class:`NonFinite` (NaN/Inf in model_out; x and the sampler are unchanged),
        :class:`SizeMismatch`, :class:`StateError` (already done).
        """
        xa = inplace_array(x, "x")
        out = input_array(model_out)
        if out.size != xa.size:
            raise SizeMismatch("Sampler.step: model_out has %d elements, x has %d"
                               % (out.size, xa.size), -3)
        prediction = to_enum(Prediction, prediction, "prediction")
        with self._using() as h:
            lib.deissn_step(h, xa.ctypes.data_as(c_float_p), out.ctypes.data_as(c_float_p),
                            xa.size, prediction, None)
        return x

    def sample(self, model, x, progress=None, calibrator=None):
        """Run the whole sampling of :class:`Model` `model` on `x` and return `x`.

        x holds the initial noise (float32, C-contiguous, writable, shape [batch, ...]) and is
        overwritten with the samples; on error it is left as it was. progress, if given, is
        called as ``progress(step, steps)`` after each step; raise in it to stop. Exceptions
        raised by a Python model or by progress are re-raised here, and so is Ctrl-C
        (KeyboardInterrupt), at the latest after the step in progress, with x as it was. A :class:`Calibrator`,
        if given, receives every step's eps once the whole sampling has succeeded.
        """
        xa = inplace_array(x, "x")
        shape = (c_int64 * xa.ndim)(*xa.shape)
        opts = _lib.SampleOptions(version=_lib.SampleOptions._version_)
        # Always a progress callback: it gives Python control between steps, so that a
        # signal (Ctrl-C) is handled then even while a TorchScript model runs.
        def call_progress(user, step, steps):
            if progress is not None:
                progress(step, steps)
            return 0
        opts.progress = _lib.PROGRESS_FN(callback(call_progress))
        with contextlib.ExitStack() as held:
            h = held.enter_context(self._using())
            if calibrator is not None:
                opts.calibrator = held.enter_context(calibrator._using())
            scope = held.enter_context(CallbackScope())
            try:
                lib.deissn_sample(h, model._handle, xa.ctypes.data_as(c_float_p), shape,
                                  xa.ndim, byref(opts))
            except Error:
                if scope.exc is None:
                    raise
        scope.reraise()
        return x

    def coeffs(self):
        """The coefficients of every step, a list of :class:`StepCoeffs` (c and r trimmed to
        the entries the step uses)."""
        h = self._handle
        out, c = [], _lib.StepCoeffs()
        for i in range(lib.deissn_sampler_steps(h)):
            lib.deissn_sampler_coeffs(h, i, byref(c))
            k = max(c.order, c.corrector_order) + 1
            out.append(StepCoeffs(c.step, c.order, c.tau_from, c.tau_to, c.model_t, c.psi,
                                  tuple(c.c[:k]), tuple(c.r[:k]), c.corrector_order))
        return out

    def __repr__(self):
        if self.closed:
            return "<deissn.Sampler (closed)>"
        return "<deissn.Sampler steps=%d table=%s>" % (self.steps, self.table is not None)


def noise(seed, n, shape, first_sample=0):
    """Standard normal noise for samples first_sample .. first_sample + n - 1, as a float32
    array of shape ``(n, *shape)``.

    Sample k depends only on (seed, k), so a sample is the same whatever batch it is drawn in
    and on every platform: split a run across processes by sample index.
    """
    shape = (shape,) if np.ndim(shape) == 0 else tuple(shape)
    out = np.empty((n,) + shape, dtype=np.float32)
    lib.deissn_fill_noise(seed, first_sample, n, int(np.prod(shape, dtype=np.int64)),
                          out.ctypes.data_as(c_float_p))
    return out
