"""The sampler: the DEIS / DEIS-SN stepping state machine, and the full sampling loop."""
import contextlib
import ctypes
from collections import namedtuple
from ctypes import byref, c_int32, c_int64, c_void_p

import numpy as np

from . import _lib
from ._common import (CallbackScope, Handle, Method, Prediction, enum_name, input_array,
                      inplace_array, moved_argument, progress_thunk, to_enum, weights_array)
from ._lib import c_double_p, c_float_p, lib
from .errors import Error, InvalidArgument, SizeMismatch, StateError

DONE = 1

StepInfo = namedtuple("StepInfo", "step steps tau model_t alpha sigma")
StepInfo.__doc__ = """Where a sampler stands: evaluate the model at `tau` (model time `model_t`
= tau*T - 1) for step `step` of `steps`; alpha = sqrt(alpha_bar(tau)), sigma = sqrt(1 - alpha_bar)."""

StepCoeffs = namedtuple("StepCoeffs",
                        "step order tau_from tau_to model_t psi c r corrector_order")
StepCoeffs.__doc__ = """The coefficients of one step from tau_from to tau_to:
x_to = psi * x_from + sum_j c[j] * eps_j / r[j], eps_0 being the newest output, j up to
order, or order + 1 where the step folds in a correction of x_from (corrector_order > 0)."""


SampleStats = namedtuple("SampleStats", "evaluations model_seconds sampler_seconds")
SampleStats.__doc__ = """What a successful :meth:`Sampler.sample` measured
(``deissn_sample_stats``): model evaluations, and wall seconds inside the model and in
everything else (updates, checks, copies)."""


def _info(s):
    return StepInfo(s.step, s.steps, s.tau, s.model_t, s.alpha, s.sigma)


class Sampler(Handle):
    """Walks a :class:`Schedule` with DEIS, or DEIS-SN when given a :class:`NormTable`.

    ``Sampler(schedule, table=None, order=3, lower_order_final=False, method="eps",
    corrector=False, prediction="epsilon")``; order is 0..3 (0 without a table is DDIM).
    method "eps" is DEIS / DEIS-SN (the polynomial is through eps / r(tau)); "data" (alias
    "x0") extrapolates the data prediction x0 in log-SNR instead and ignores the table;
    ``corrector=True`` (method "data" only) corrects each state with the model output
    evaluated there (one order higher, no extra evaluations); "learned" is a tuned plan's linear
    multistep step, x_next = w[0] x + w[1] eps_i + ... + w[5] eps_{i-4} at step i, whose
    ``weights`` (an array of shape (steps, 6), finite; copied here) are required, and which
    takes no table, no corrector and ignores order (:meth:`preset` "tuned" passes a learned
    plan's). prediction is what the model
    outputs, for :meth:`step` and :meth:`sample` alike: "epsilon" (alias "eps"), "sample"
    (alias "x0") or "v_prediction" (alias "v"), or a :class:`Prediction`. Names are the
    library's (``deissn_enum_value``). All coefficients are computed here, once.
    :meth:`named` makes the samplers known by name ("deis-sn", "ddim", ...).

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
    stats = None  # the SampleStats of the last successful sample()

    def __init__(self, schedule, table=None, *, order=3, lower_order_final=False,
                 method="eps", corrector=False, prediction="epsilon",
                 allow_table_mismatch=False, weights=None):
        p = _lib.default_params(_lib.SamplerParams)
        p.order = order
        p.lower_order_final = int(bool(lower_order_final))
        p.method = to_enum(Method, method, "Sampler: method")
        p.corrector = int(bool(corrector))
        p.prediction = to_enum(Prediction, prediction, "Sampler: prediction")
        p.allow_table_mismatch = int(bool(allow_table_mismatch))
        w = None  # the array p.weights points into, alive until the library has copied it
        if p.method == Method.LEARNED:
            if weights is None:
                raise InvalidArgument("Sampler: method 'learned' needs weights (an array of "
                                      "shape (steps, 6): a tuned plan's)")
            w = weights_array(weights, schedule.steps, "Sampler: weights")
            p.weights = w.ctypes.data_as(c_double_p)
        elif weights is not None:
            raise InvalidArgument("Sampler: weights are given, but method is %r: only method "
                                  "'learned' takes weights" % enum_name(Method(p.method)))
        self._create(schedule, table, p)
        del w

    def _create(self, schedule, table, p):
        out = c_void_p()
        lib.deissn_sampler_create(byref(out), schedule._handle,
                                  table._handle if table is not None else None, byref(p))
        self._adopt(out.value)
        self.schedule, self.table = schedule, table

    @classmethod
    def named(cls, name, schedule, table=None, *, prediction="epsilon",
              allow_table_mismatch=False):
        """The sampler known by `name` (``deissn_sampler_params_by_name``): "deis-sn" (give it
        a `table`), "deis", "ddim", "x0", "x0-corrector". A table given to a sampler that does
        not use one, or none to "deis-sn", raises :class:`InvalidArgument`; an unknown name
        raises it with the library's list of names."""
        p = _lib.default_params(_lib.SamplerParams)
        uses_table = c_int32()
        try:
            lib.deissn_sampler_params_by_name(byref(p), name, byref(uses_table))
        except InvalidArgument as e:
            raise InvalidArgument("Sampler.named: %s" % e.message, e.status) from None
        if bool(uses_table.value) != (table is not None):
            raise InvalidArgument("Sampler.named: %r %s" % (
                name, "needs a table" if uses_table.value else "does not use a table"))
        p.prediction = to_enum(Prediction, prediction, "Sampler.named: prediction")
        p.allow_table_mismatch = int(bool(allow_table_mismatch))
        self = object.__new__(cls)
        self._create(schedule, table, p)
        return self

    @classmethod
    def preset(cls, name="best", steps=10, table=None, *, prediction="epsilon",
               allow_table_mismatch=False, **schedule_kwargs):
        """The sampler of a named configuration for `steps` model evaluations, the
        recommended way to make one::

            sampler = deissn.Sampler.preset("best", 10, table)
            sampler = deissn.Sampler.preset("tuned", 10, table)   # the model's own plan

        "best" is the configuration measured best (docs/presets.md), "reference" the DEIS-SN
        paper's, "tuned" the plan `table` carries (docs/tuning.md: :func:`deissn.tune`).
        `schedule_kwargs` describe the noise schedule (noise=..., beta_start=...,
        alphas_cumprod=...; default linear, T = 1000), the preset is computed for it, and
        prediction=... is the model's output; see :func:`deissn.preset`. The sampler gets
        `table` only where the configuration was measured with it (the library's
        ``use_table``): an x0 row or a plan without the table gets none (its :attr:`table`
        is None). A learned plan (method "learned") passes its weights, copied out of
        `table`."""
        from .schedule import Schedule, preset
        cfg = preset(name, steps, table, allow_table_mismatch=allow_table_mismatch,
                     **schedule_kwargs)
        return cls(Schedule(**cfg.schedule), cfg.table, prediction=prediction,
                   allow_table_mismatch=allow_table_mismatch, **cfg.sampler)

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

    def step(self, x, model_out, **moved):
        """Take one step and return `x`, updated in place.

        x:          the state, float32, C-contiguous and writable (numpy array or torch CPU
                    tensor), any shape; never copied.
        model_out:  the model's output on x at :attr:`info`'s time, as many elements as x
                    (what it is, the sampler's `prediction` says); converted once to float32
                    if it is not (the sampler copies what it keeps).
        Raises :class:`NonFinite` (NaN/Inf in model_out; x and the sampler are unchanged),
        :class:`SizeMismatch`, :class:`StateError` (already done).
        """
        moved_argument("Sampler.step", moved)
        xa = inplace_array(x, "x")
        out = input_array(model_out)
        if out.size != xa.size:
            raise SizeMismatch("Sampler.step: model_out has %d elements, x has %d"
                               % (out.size, xa.size), -3)
        with self._using() as h:
            lib.deissn_step(h, xa.ctypes.data_as(c_float_p), out.ctypes.data_as(c_float_p),
                            xa.size, None)
        return x

    def sample(self, model, x, progress=None, calibrator=None):
        """Run the whole sampling of :class:`Model` `model` on `x` and return `x`.

        x holds the initial noise (float32, C-contiguous, writable, shape [batch, ...]) and is
        overwritten with the samples; on error it is left as it was. progress, if given, is
        called as ``progress(step, steps)`` after each step; raise in it to stop. Exceptions
        raised by a Python model or by progress are re-raised here, and so is Ctrl-C
        (KeyboardInterrupt), at the latest after the step in progress, with x as it was. A :class:`Calibrator`,
        if given, receives every step's eps once the whole sampling has succeeded.
        After a successful call :attr:`stats` holds its :class:`SampleStats`.
        """
        xa = inplace_array(x, "x")
        shape = (c_int64 * xa.ndim)(*xa.shape)
        opts = _lib.default_params(_lib.SampleOptions)
        stats = _lib.SampleStats()
        opts.stats = ctypes.pointer(stats)
        opts.progress = progress_thunk(progress)  # always one: Ctrl-C is handled between steps
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
        self.stats = SampleStats(stats.evaluations, stats.model_seconds, stats.sampler_seconds)
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
