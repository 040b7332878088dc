"""Noise schedules and sampling times."""
from collections import namedtuple
from ctypes import byref, c_int32, c_void_p

import numpy as np

from . import _lib
from ._common import (Handle, Method, Noise, Preset, Spacing, enum_name, input_array,
                      map_tau, to_enum)
from ._lib import c_double_p, lib
from .errors import InvalidArgument


def schedule_params(where, *, noise=None, spacing=None, steps=None, num_train_steps=None,
                    beta_start=None, beta_end=None, beta_min=0.1, beta_max=20.0, betas=None,
                    alphas_cumprod=None, taus=None, power=1.0, karras_rho=7.0,
                    tau_min_eval=None, tau_end=0.0):
    """A deissn_schedule_params from :class:`Schedule`'s keyword arguments, and the arrays it
    points into (keep them while it is used); errors name `where`."""
    p = _lib.default_params(_lib.ScheduleParams)
    if betas is not None and alphas_cumprod is not None:
        raise InvalidArgument("%s: give betas or alphas_cumprod, not both" % where)
    custom, implied = (betas, Noise.CUSTOM_BETAS) if betas is not None else \
        (alphas_cumprod, Noise.CUSTOM_ALPHAS_CUMPROD)
    if custom is not None:
        custom = input_array(custom, np.float64)
        if noise is not None and to_enum(Noise, noise, "%s: noise" % where) != implied:
            raise InvalidArgument("%s: noise=%r conflicts with the custom array" % (where, noise))
        noise = implied
        p.custom, p.custom_len = custom.ctypes.data_as(c_double_p), custom.size
        p.num_train_steps = custom.size
    if taus is not None:
        taus = input_array(taus, np.float64)
        if spacing is not None and to_enum(Spacing, spacing, "%s: spacing" % where) != Spacing.CUSTOM:
            raise InvalidArgument("%s: spacing=%r conflicts with taus" % (where, spacing))
        spacing = Spacing.CUSTOM
        p.custom_taus = taus.ctypes.data_as(c_double_p)
        if steps is not None and steps != taus.size:
            raise InvalidArgument("%s: steps=%d but %d taus" % (where, steps, taus.size))
        steps = taus.size
    p.noise = to_enum(Noise, "linear" if noise is None else noise, "%s: noise" % where)
    p.spacing = to_enum(Spacing, "quadratic" if spacing is None else spacing, "%s: spacing" % where)
    if steps is not None:
        p.steps = steps
    if num_train_steps is not None:
        p.num_train_steps = num_train_steps
    p.beta_start = beta_start or 0.0  # 0 asks for the library's default
    p.beta_end = beta_end or 0.0
    p.beta_min, p.beta_max = beta_min, beta_max
    p.power, p.karras_rho = power, karras_rho
    p.tau_min_eval = tau_min_eval or 0.0
    p.tau_end = tau_end
    return p, (custom, taus)


class Schedule(Handle):
    """A noise schedule alpha_bar(tau) plus the N + 1 sampling times tau_N > ... > tau_0.

    All arguments are keywords; the defaults are the reference's DEIS-SN setup::

        Schedule(noise="linear", spacing="quadratic", steps=10, tau_end=0.0)

    noise:           "linear", "scaled_linear", "squaredcos_cap_v2" (alias "cosine"),
                     "continuous_vp" (alias "vp"), or a :class:`Noise`; implied by `betas` /
                     `alphas_cumprod`.
    spacing:         "quadratic", "trailing", "linspace", "leading", "power" (alias "uniform"),
                     "logsnr", "karras", or a :class:`Spacing`; implied by `taus`.
    Names are the library's (``deissn_enum_value``): case and '-' vs '_' do not matter, and
    an unknown name raises :class:`InvalidArgument` listing the known ones.
    steps:           N, the number of model evaluations (default 10, or len(taus)).
    num_train_steps: T (default 1000, or the length of `betas` / `alphas_cumprod`).
    beta_start, beta_end: linear and scaled_linear betas (None: the library's defaults).
    beta_min, beta_max:   continuous_vp.
    betas, alphas_cumprod: a custom noise schedule, T values.
    taus:            custom sampling times tau_N, ..., tau_1 (strictly decreasing).
    power, karras_rho, tau_min_eval: parameters of the power, karras and logsnr spacings.
    tau_end:         tau_0, where sampling stops (default 0).

    A schedule is immutable and may be shared by threads. Raises :class:`InvalidArgument`
    for bad parameters.
    """

    _free = lib.deissn_schedule_free

    def __init__(self, **kwargs):
        p, self._arrays = schedule_params("Schedule", **kwargs)
        out = c_void_p()
        lib.deissn_schedule_create(byref(out), byref(p))  # copies the arrays
        self._adopt(out.value)

    @property
    def steps(self):
        """N, the number of model evaluations."""
        return lib.deissn_schedule_steps(self._handle)

    @property
    def num_train_steps(self):
        """T, the number of training steps of the noise schedule."""
        return lib.deissn_schedule_num_train_steps(self._handle)

    @property
    def taus(self):
        """The N + 1 sampling times tau_N, ..., tau_0 (descending), a float64 array."""
        h = self._handle
        out = np.empty(lib.deissn_schedule_steps(h) + 1)
        lib.deissn_schedule_times(h, out.ctypes.data_as(c_double_p), out.size)
        return out

    @property
    def fingerprint(self):
        """A 32-bit fingerprint of the noise schedule (tables record the one they were made for)."""
        return lib.deissn_schedule_fingerprint(self._handle)

    def alpha_bar(self, tau):
        """alpha_bar(tau) for a float or an array of tau in [0, 1] (clamped outside)."""
        return map_tau(lib.deissn_schedule_alpha_bar, self._handle, tau)

    def __repr__(self):
        if self.closed:
            return "<deissn.Schedule (closed)>"
        return "<deissn.Schedule steps=%d num_train_steps=%d fingerprint=0x%08x>" % (
            self.steps, self.num_train_steps, self.fingerprint)


class PresetConfig(namedtuple("PresetConfig", "schedule sampler")):
    """What :func:`preset` gives: ``(schedule, sampler)``, the keyword arguments of
    :class:`Schedule` and :class:`Sampler`, which unpack as a pair, and `table`, the table to
    give the sampler: the one passed where the library says the configuration uses it
    (``use_table``), else None (``use_table`` False: it was measured without one)."""
    use_table = False
    table = None


def preset(name="best", steps=10, table=None, *, allow_table_mismatch=False,
           **schedule_kwargs):
    """The keyword arguments of a named configuration for `steps` model evaluations
    (``deissn_preset_params``), a :class:`PresetConfig`::

        cfg = deissn.preset("best", 10, table, noise="linear")
        sampler = deissn.Sampler(deissn.Schedule(**cfg.schedule), cfg.table, **cfg.sampler)

    (:meth:`Sampler.preset` does just that.) "best" is the configuration with the lowest
    worst-case error over libdeissn's two evaluation models (docs/presets.md; at some NFE
    the x0 method, which ignores the table), "reference" the DEIS-SN paper's (quadratic
    spacing, order 3), "tuned" the plan `table` carries for this model (docs/tuning.md) for
    `steps` or the nearest tuned NFE below (the schedule kwargs then hold its `taus`, and
    `steps` is the plan's NFE; the sampler kwargs of a learned plan hold its `weights`), BEST
    when the table has no plans. `name` is a
    :class:`Preset` or its name. `schedule_kwargs` describe the noise schedule
    (noise=..., beta_start=..., alphas_cumprod=...: :class:`Schedule`'s arguments), which
    the preset is computed for (a logsnr row's tau_min_eval depends on it) and which are
    returned with the sampling fields; a sampling field given there (spacing=...) replaces
    the preset's. Raises :class:`InvalidArgument` (unknown name, `steps` 0 or above T) or
    :class:`Mismatch` ("tuned": the plans were tuned for another noise schedule, unless
    `allow_table_mismatch`).
    """
    which = to_enum(Preset, name, "preset")
    sp, keep = schedule_params("preset", **schedule_kwargs)
    pp = _lib.default_params(_lib.SamplerParams)
    pp.allow_table_mismatch = int(bool(allow_table_mismatch))
    use = c_int32()
    lib.deissn_preset_params(which, steps, table._handle if table is not None else None,
                             byref(sp), byref(pp), byref(use))
    del keep  # the arrays sp pointed into, kept until the call returned
    if sp.spacing == Spacing.CUSTOM:  # a plan: its times, copied out of the table
        skw = dict(taus=np.ctypeslib.as_array(sp.custom_taus, (sp.steps,)).copy(),
                   tau_end=sp.tau_end)
    else:
        skw = dict(spacing=enum_name(Spacing(sp.spacing)), steps=sp.steps, power=sp.power,
                   karras_rho=sp.karras_rho, tau_min_eval=sp.tau_min_eval or None,
                   tau_end=sp.tau_end)
    skw.update(schedule_kwargs)
    pkw = dict(order=pp.order, lower_order_final=bool(pp.lower_order_final),
               method=enum_name(Method(pp.method)), corrector=bool(pp.corrector))
    if pp.method == Method.LEARNED:  # a learned plan: its weights, copied out of the table
        pkw["weights"] = np.ctypeslib.as_array(pp.weights, (sp.steps, _lib.PLAN_WEIGHTS)).copy()
    cfg = PresetConfig(skw, pkw)
    cfg.use_table = bool(use.value)
    cfg.table = table if cfg.use_table else None
    return cfg
