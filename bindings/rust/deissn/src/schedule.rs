use std::ptr::{self, NonNull};

use deissn_sys as sys;

use crate::error::{check, Result};
use crate::names::named_enum;

/// How alpha_bar, the cumulative product of 1 - beta, is defined. Custom schedules are given
/// with [`ScheduleBuilder::betas`] or [`ScheduleBuilder::alphas_cumprod`]. Parsed from the
/// library's names (`"linear"`, `"squaredcos_cap_v2"` or `"cosine"`, `"vp"`, ...) with
/// `str::parse`:
/// ```
/// # use deissn::Noise;
/// assert_eq!("cosine".parse::<Noise>().unwrap(), Noise::SquaredCosCapV2);
/// assert_eq!(Noise::SquaredCosCapV2.to_string(), "squaredcos_cap_v2");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Noise {
    /// Betas linear from beta_start (1e-4) to beta_end (0.02), in float32, like the reference.
    #[default]
    Linear,
    /// Betas = linspace(sqrt(start), sqrt(end), T)^2 (defaults 0.00085, 0.012).
    ScaledLinear,
    /// The cosine schedule, betas capped at 0.999.
    SquaredCosCapV2,
    /// Continuous-time VP-linear between beta_min and beta_max.
    ContinuousVp,
}

/// How the sampling times tau_N > ... > tau_1 are chosen. Custom times are given with
/// [`ScheduleBuilder::taus`]. Parsed from the library's names (`"uniform"` is `Power`, whose
/// default power 1 is uniform).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Spacing {
    /// t = (round(arange(T, 0, -T/N)) / T)^2 * T - 1: the reference's DEIS-SN default.
    #[default]
    Quadratic,
    /// t = round(arange(T, 0, -T/N)) - 1.
    Trailing,
    /// t = int(linspace(0, T - 1, N)), reversed.
    Linspace,
    /// t = arange(0, N) * (T // N), reversed.
    Leading,
    /// tau_k = tau_end + (1 - tau_end) (k/N)^power.
    Power,
    /// Uniform in log(alpha/sigma) from tau = 1 to tau_min_eval.
    LogSnr,
    /// EDM's spacing with exponent karras_rho.
    Karras,
}

named_enum!(Noise, deissn_enum_DEISSN_ENUM_NOISE,
            "a custom noise schedule: give its values with ScheduleBuilder::betas or alphas_cumprod", {
    Linear = deissn_noise_DEISSN_NOISE_LINEAR,
    ScaledLinear = deissn_noise_DEISSN_NOISE_SCALED_LINEAR,
    SquaredCosCapV2 = deissn_noise_DEISSN_NOISE_SQUAREDCOS_CAP_V2,
    ContinuousVp = deissn_noise_DEISSN_NOISE_CONTINUOUS_VP,
});

named_enum!(Spacing, deissn_enum_DEISSN_ENUM_SPACING,
            "custom times: give them with ScheduleBuilder::taus", {
    Quadratic = deissn_spacing_DEISSN_SPACING_QUADRATIC,
    Trailing = deissn_spacing_DEISSN_SPACING_TRAILING,
    Linspace = deissn_spacing_DEISSN_SPACING_LINSPACE,
    Leading = deissn_spacing_DEISSN_SPACING_LEADING,
    Power = deissn_spacing_DEISSN_SPACING_POWER,
    LogSnr = deissn_spacing_DEISSN_SPACING_LOGSNR,
    Karras = deissn_spacing_DEISSN_SPACING_KARRAS,
});

/// A noise schedule alpha_bar(tau) and the N + 1 sampling times tau_N > ... > tau_0.
///
/// Immutable, so it may be shared by threads (`Send + Sync`). Samplers keep their schedule
/// alive inside the library, so a `Schedule` may be dropped before them.
#[derive(Debug)]
pub struct Schedule {
    ptr: NonNull<sys::deissn_schedule>,
}

// SAFETY: the header states schedules are immutable after creation and shareable by threads.
unsafe impl Send for Schedule {}
unsafe impl Sync for Schedule {}

/// Parameters of a [`Schedule`]; start from [`Schedule::builder`]. The defaults are the
/// reference's DEIS-SN setup: linear noise, T = 1000, quadratic spacing, 10 steps, tau_end 0.
#[derive(Debug, Clone)]
pub struct ScheduleBuilder {
    raw: sys::deissn_schedule_params,
    custom: Option<(sys::deissn_noise, Vec<f64>)>,
    taus: Option<Vec<f64>>,
}

impl ScheduleBuilder {
    /// The noise schedule (default [`Noise::Linear`]); replaces custom betas.
    pub fn noise(mut self, noise: Noise) -> Self {
        self.raw.noise = noise.raw();
        self.custom = None;
        self
    }
    /// A custom noise schedule of T = `betas.len()` betas in (0, 1).
    pub fn betas(mut self, betas: Vec<f64>) -> Self {
        self.custom = Some((sys::deissn_noise_DEISSN_NOISE_CUSTOM_BETAS, betas));
        self
    }
    /// A custom noise schedule of T decreasing alpha_bar values in (0, 1].
    pub fn alphas_cumprod(mut self, alphas_cumprod: Vec<f64>) -> Self {
        self.custom = Some((sys::deissn_noise_DEISSN_NOISE_CUSTOM_ALPHAS_CUMPROD, alphas_cumprod));
        self
    }
    /// The spacing of the sampling times (default [`Spacing::Quadratic`]); replaces custom taus.
    pub fn spacing(mut self, spacing: Spacing) -> Self {
        self.raw.spacing = spacing.raw();
        self.taus = None;
        self
    }
    /// Custom sampling times tau_N, ..., tau_1 (strictly decreasing); sets steps to their count.
    pub fn taus(mut self, taus: Vec<f64>) -> Self {
        self.taus = Some(taus);
        self
    }
    /// N, the number of model evaluations (default 10).
    pub fn steps(mut self, steps: u32) -> Self {
        self.raw.steps = steps;
        self
    }
    /// T, the number of training steps (default 1000; custom betas set it to their length).
    pub fn num_train_steps(mut self, t: u32) -> Self {
        self.raw.num_train_steps = t;
        self
    }
    /// The first and last beta of the linear and scaled-linear schedules.
    pub fn beta_range(mut self, beta_start: f64, beta_end: f64) -> Self {
        self.raw.beta_start = beta_start;
        self.raw.beta_end = beta_end;
        self
    }
    /// beta_min and beta_max of the continuous VP schedule (default 0.1, 20).
    pub fn vp_betas(mut self, beta_min: f64, beta_max: f64) -> Self {
        self.raw.beta_min = beta_min;
        self.raw.beta_max = beta_max;
        self
    }
    /// The exponent of [`Spacing::Power`] (default 1: uniform in tau).
    pub fn power(mut self, power: f64) -> Self {
        self.raw.power = power;
        self
    }
    /// rho of [`Spacing::Karras`] (default 7).
    pub fn karras_rho(mut self, rho: f64) -> Self {
        self.raw.karras_rho = rho;
        self
    }
    /// tau_1 for [`Spacing::LogSnr`] and [`Spacing::Karras`] (default 1/T).
    pub fn tau_min_eval(mut self, tau: f64) -> Self {
        self.raw.tau_min_eval = tau;
        self
    }
    /// tau_0, where sampling stops (default 0).
    pub fn tau_end(mut self, tau: f64) -> Self {
        self.raw.tau_end = tau;
        self
    }
    /// The C params with the custom arrays pointed to, for `f` (the arrays outlive the call).
    pub(crate) fn with_raw<R>(&self, f: impl FnOnce(&mut sys::deissn_schedule_params) -> R) -> R {
        let mut p = self.raw;
        if let Some((kind, values)) = &self.custom {
            p.noise = *kind as i32;
            p.custom = values.as_ptr();
            p.custom_len = values.len();
            p.num_train_steps = values.len() as u32;
        }
        if let Some(taus) = &self.taus {
            p.spacing = sys::deissn_spacing_DEISSN_SPACING_CUSTOM as i32;
            p.custom_taus = taus.as_ptr();
            p.steps = taus.len() as u32;
        }
        f(&mut p)
    }

    /// Let `set` (a preset, [`Preset::apply`](crate::Preset::apply)) write the sampling fields
    /// of the full params (the noise schedule, custom arrays included, as this builder has
    /// it) and keep them: custom times when it gave them (copied: they may point into a
    /// table), else the spacing's parameters. Nothing changes when `set` fails.
    pub(crate) fn set_sampling(mut self, set: impl FnOnce(&mut sys::deissn_schedule_params) -> Result<()>)
                               -> Result<Self> {
        let p = self.with_raw(|p| set(p).map(|()| *p))?;
        let custom = p.spacing == sys::deissn_spacing_DEISSN_SPACING_CUSTOM as i32;
        self.taus = if custom && !p.custom_taus.is_null() {
            // SAFETY: the preset set custom_taus to `steps` times (in the table, alive here).
            Some(unsafe { std::slice::from_raw_parts(p.custom_taus, p.steps as usize) }.to_vec())
        } else {
            None
        };
        let r = &mut self.raw;
        r.spacing = p.spacing;
        r.steps = p.steps;
        r.power = p.power;
        r.karras_rho = p.karras_rho;
        r.tau_min_eval = p.tau_min_eval;
        r.tau_end = p.tau_end;
        Ok(self)
    }

    /// Create the schedule. Errors: [`ErrorKind::InvalidArgument`](crate::ErrorKind) for bad
    /// parameters, with a message naming the parameter.
    pub fn build(&self) -> Result<Schedule> {
        let mut out = ptr::null_mut();
        // SAFETY: p and the arrays it points to outlive the call, which copies them.
        check(self.with_raw(|p| unsafe { sys::deissn_schedule_create(&mut out, p) }))?;
        Ok(Schedule { ptr: NonNull::new(out).expect("deissn_schedule_create returned NULL") })
    }
}

impl Schedule {
    /// A builder with the defaults (linear noise, quadratic spacing, 10 steps).
    pub fn builder() -> ScheduleBuilder {
        // SAFETY: all-zero is a valid value of the struct (numbers and NULL pointers), and
        // params_init writes the fields of the crate's version, which is all of them.
        let mut raw: sys::deissn_schedule_params = unsafe { std::mem::zeroed() };
        let rc = unsafe { sys::deissn_schedule_params_init(&mut raw, sys::DEISSN_SCHEDULE_PARAMS_VERSION) };
        assert_eq!(rc, 0, "deissn_schedule_params_init refused the crate's version");
        ScheduleBuilder { raw, custom: None, taus: None }
    }

    pub(crate) fn as_ptr(&self) -> *const sys::deissn_schedule {
        self.ptr.as_ptr()
    }

    /// N, the number of model evaluations.
    pub fn steps(&self) -> u32 {
        unsafe { sys::deissn_schedule_steps(self.as_ptr()) }
    }

    /// T, the number of training steps.
    pub fn num_train_steps(&self) -> u32 {
        unsafe { sys::deissn_schedule_num_train_steps(self.as_ptr()) }
    }

    /// The N + 1 sampling times tau_N, ..., tau_0, descending.
    pub fn times(&self) -> Vec<f64> {
        let mut taus = vec![0.0; self.steps() as usize + 1];
        // SAFETY: taus has room for N + 1 values, which is all the call writes.
        let rc = unsafe { sys::deissn_schedule_times(self.as_ptr(), taus.as_mut_ptr(), taus.len()) };
        debug_assert_eq!(rc, 0);
        taus
    }

    /// alpha_bar(tau) for tau in [0, 1] (clamped outside).
    pub fn alpha_bar(&self, tau: f64) -> f64 {
        unsafe { sys::deissn_schedule_alpha_bar(self.as_ptr(), tau) }
    }

    /// The 32-bit fingerprint of the noise schedule (tables record the one they were made for).
    pub fn fingerprint(&self) -> u32 {
        unsafe { sys::deissn_schedule_fingerprint(self.as_ptr()) }
    }
}

impl Drop for Schedule {
    fn drop(&mut self) {
        unsafe { sys::deissn_schedule_free(self.ptr.as_ptr()) }
    }
}
