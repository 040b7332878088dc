use std::ffi::{c_void, CString};
use std::ptr::{self, NonNull};

use deissn_sys as sys;

use crate::error::{check, Error, ErrorKind, Result};
use crate::model::{call_progress, call_with_callbacks, Model};
use crate::names::named_enum;
use crate::{Calibrator, NormTable, Schedule, ScheduleBuilder};

/// What a model outputs (`deissn_prediction`), a sampler parameter
/// ([`SamplerParams::prediction`]): the sampler converts it to what it extrapolates.
/// Parsed from the library's names: `"epsilon"` / `"eps"`, `"sample"` / `"x0"`,
/// `"v_prediction"` / `"v"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Prediction {
    /// The noise eps.
    #[default]
    Epsilon,
    /// The clean sample x0.
    Sample,
    /// v = alpha eps - sigma x0.
    V,
}

named_enum!(Prediction, deissn_enum_DEISSN_ENUM_PREDICTION, "no such prediction", {
    Epsilon = deissn_prediction_DEISSN_PREDICT_EPSILON,
    Sample = deissn_prediction_DEISSN_PREDICT_SAMPLE,
    V = deissn_prediction_DEISSN_PREDICT_V,
});

/// Options of [`Sampler::new`]; `SamplerParams::default()` is order 3 over an eps-prediction
/// model, the reference's. Not `Copy` (since 0.4: [`SamplerParams::weights`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SamplerParams {
    /// Polynomial order 0..=3 (0 without a table is DDIM).
    pub order: u32,
    /// Lower the order of the last steps so the last is order 0 (as DPM-Solver does).
    pub lower_order_final: bool,
    /// Accept a table made for another noise schedule instead of failing with `Mismatch`.
    pub allow_table_mismatch: bool,
    /// What the polynomial extrapolates (default [`Method::Eps`], DEIS / DEIS-SN).
    pub method: Method,
    /// Correct each state with the model output evaluated there (`Method::Data` only).
    pub corrector: bool,
    /// What the model outputs, for [`Sampler::step`] and [`Sampler::sample`] alike.
    pub prediction: Prediction,
    /// [`Method::Learned`] only (required there, empty otherwise): step i's weights, row i
    /// (`[x, eps_i, eps_{i-1}, ..., eps_{i-4}]`), a row for each step of the schedule; a
    /// tuned plan's ([`Plan::weights`](crate::Plan::weights), set by [`Preset::Tuned`]).
    pub weights: Vec<[f64; 6]>,
}

impl Default for SamplerParams {
    fn default() -> Self {
        SamplerParams { order: 3, lower_order_final: false, allow_table_mismatch: false,
                        method: Method::Eps, corrector: false, prediction: Prediction::Epsilon,
                        weights: Vec::new() }
    }
}

impl SamplerParams {
    /// The params of a sampler known by name (`deissn_sampler_params_by_name`): "deis-sn",
    /// "deis", "ddim", "x0", "x0-corrector"; with whether it is meant to be given a table
    /// (true for "deis-sn" only). The other fields are the defaults.
    /// ```
    /// # fn main() -> deissn::Result<()> {
    /// let (ddim, uses_table) = deissn::SamplerParams::named("ddim")?;
    /// assert_eq!((ddim.order, uses_table), (0, false));
    /// # Ok(())
    /// # }
    /// ```
    /// Errors: `InvalidArgument` (an unknown name: the message lists the names).
    pub fn named(name: &str) -> Result<(SamplerParams, bool)> {
        let c = CString::new(name).map_err(|_| Error::new(
            ErrorKind::InvalidArgument, "SamplerParams::named: the name contains a NUL byte"))?;
        let mut p = raw_params(&SamplerParams::default());
        let mut uses_table = 0i32;
        // SAFETY: p is initialised at the crate's version; c is NUL-terminated.
        check(unsafe { sys::deissn_sampler_params_by_name(&mut p, c.as_ptr(), &mut uses_table) })?;
        Ok((from_raw_params(&p, 0), uses_table != 0))
    }
}

/// What the sampler's polynomial extrapolates (`deissn_method`); parsed from the library's
/// names ("eps", "data" or "x0", "learned").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Method {
    /// DEIS and DEIS-SN: eps / r(tau), a polynomial in tau (the reference).
    #[default]
    Eps,
    /// The data prediction x0, a polynomial in log-SNR; the table is not used.
    Data,
    /// A linear multistep step whose weights were learned on one model (a tuned plan's,
    /// docs/tuning.md): `x_next = w[0] x + w[1] eps_i + ... + w[5] eps_{i-4}` with
    /// `w = weights[i]` ([`SamplerParams::weights`]). No table, no corrector; order and
    /// lower_order_final are ignored.
    Learned,
}

named_enum!(Method, deissn_enum_DEISSN_ENUM_METHOD, "no such method", {
    Eps = deissn_method_DEISSN_METHOD_EPS,
    Data = deissn_method_DEISSN_METHOD_DATA,
    Learned = deissn_method_DEISSN_METHOD_LEARNED,
});

/// Named sampling configurations (`deissn_preset`); docs/presets.md has the measurements.
/// Parsed from the library's names ("best", "reference", "tuned").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// The configuration with the lowest error at each NFE in libdeissn's evaluation.
    Best,
    /// The DEIS-SN paper's: quadratic spacing, order 3, tau_end 0 (the structs' defaults).
    Reference,
    /// The plan tuned on this model and stored in its table ([`crate::tune`],
    /// deissn-calibrate; docs/tuning.md): the table's plan for the NFE or the nearest tuned
    /// NFE below; `Best` when the table has no plans.
    Tuned,
}

named_enum!(Preset, deissn_enum_DEISSN_ENUM_PRESET, "no such preset", {
    Best = deissn_preset_DEISSN_PRESET_BEST,
    Reference = deissn_preset_DEISSN_PRESET_REFERENCE,
    Tuned = deissn_preset_DEISSN_PRESET_TUNED,
});

impl Preset {
    /// The preset for `nfe` model evaluations, applied once to both halves
    /// (`deissn_preset_params`): `schedule` with its sampling times set (spacing, steps,
    /// power, karras_rho, tau_min_eval, tau_end, or a plan's custom times; the noise schedule
    /// and T are kept, and set them first: a log-SNR row computes its tau_min_eval from
    /// them), the sampler's params (order, lower_order_final, method, corrector, and a
    /// [`Method::Learned`] plan's weights, copied from the table; prediction
    /// is the default, epsilon: set it for other models), and whether to give `table` to
    /// [`Sampler::new`] (`use_table`: false for the rows and plans measured without one).
    /// `table` is the table the caller samples with; [`Preset::Tuned`] reads its plans (and
    /// then the schedule's steps are the plan's NFE, below `nfe` when the table has no plan
    /// for exactly `nfe`).
    ///
    /// ```
    /// # use deissn::{Noise, Preset, Sampler, Schedule};
    /// # fn main() -> deissn::Result<()> {
    /// let (schedule, params, _use_table) =
    ///     Preset::Best.apply(Schedule::builder().noise(Noise::Linear), 10, None)?;
    /// let sampler = Sampler::new(&schedule.build()?, None, &params)?;
    /// assert_eq!(sampler.steps(), 10);
    /// # Ok(())
    /// # }
    /// ```
    /// Errors: `InvalidArgument` (nfe 0 or above the training steps), `Mismatch` (`Tuned`:
    /// the plans were tuned for another noise schedule).
    pub fn apply(self, schedule: ScheduleBuilder, nfe: u32, table: Option<&NormTable>)
                 -> Result<(ScheduleBuilder, SamplerParams, bool)> {
        self.apply_to(schedule, &SamplerParams::default(), nfe, table)
    }

    /// [`Preset::apply`] starting from `params` instead of the defaults: what the preset does
    /// not set (prediction, allow_table_mismatch) is kept, and with allow_table_mismatch
    /// [`Preset::Tuned`] accepts plans tuned for another noise schedule.
    pub fn apply_to(self, schedule: ScheduleBuilder, params: &SamplerParams, nfe: u32,
                    table: Option<&NormTable>) -> Result<(ScheduleBuilder, SamplerParams, bool)> {
        let mut p = raw_params(params);
        let mut use_table = 0;
        let mut steps = 0;
        let table = table.map_or(ptr::null(), |t| t.as_ptr());
        let schedule = schedule.set_sampling(|sp| {
            // SAFETY: both structs are initialised, the table (or NULL) is alive; the call
            // writes only their sampling fields and use_table.
            check(unsafe { sys::deissn_preset_params(self.raw(), nfe, table, sp, &mut p, &mut use_table) })?;
            steps = sp.steps;
            Ok(())
        })?;
        // A learned plan's weights point into the table, alive here: steps rows of them.
        Ok((schedule, from_raw_params(&p, steps), use_table != 0))
    }
}

/// The C params of `params`; their `weights` point into `params.weights` (NULL when empty).
fn raw_params(params: &SamplerParams) -> sys::deissn_sampler_params {
    // SAFETY: all-zero is a valid value of the struct; params_init writes the fields of the
    // crate's version, which is all of them.
    let mut p: sys::deissn_sampler_params = unsafe { std::mem::zeroed() };
    let rc = unsafe { sys::deissn_sampler_params_init(&mut p, sys::DEISSN_SAMPLER_PARAMS_VERSION) };
    assert_eq!(rc, 0, "deissn_sampler_params_init refused the crate's version");
    p.order = params.order;
    p.lower_order_final = params.lower_order_final.into();
    p.allow_table_mismatch = params.allow_table_mismatch.into();
    p.method = params.method.raw();
    p.corrector = params.corrector.into();
    p.prediction = params.prediction.raw();
    p.weights = if params.weights.is_empty() { ptr::null() } else { params.weights.as_ptr().cast() };
    p
}

/// The [`SamplerParams`] of C params the library filled in (a preset, a sampler by name);
/// `steps` rows of weights are copied when the method is learned (a preset's: in the table).
fn from_raw_params(p: &sys::deissn_sampler_params, steps: u32) -> SamplerParams {
    let learned = p.method == sys::deissn_method_DEISSN_METHOD_LEARNED as i32;
    let weights = if learned && !p.weights.is_null() {
        // SAFETY: the library set weights to a plan's, `steps` rows of 6 (the table is alive).
        unsafe { std::slice::from_raw_parts(p.weights.cast::<[f64; 6]>(), steps as usize) }.to_vec()
    } else {
        Vec::new()
    };
    SamplerParams {
        order: p.order,
        lower_order_final: p.lower_order_final != 0,
        allow_table_mismatch: p.allow_table_mismatch != 0,
        method: Method::from_raw(p.method).unwrap_or_default(),
        corrector: p.corrector != 0,
        prediction: Prediction::from_raw(p.prediction).unwrap_or_default(),
        weights,
    }
}

/// Where a sampler stands: the model is to be evaluated at `tau` (model time `model_t` =
/// tau*T - 1) for step `step` of `steps`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepInfo {
    /// Index of the next step, 0..N-1 (N when done).
    pub step: u32,
    /// N.
    pub steps: u32,
    /// Time of the next model evaluation.
    pub tau: f64,
    /// tau*T - 1, the reference's model time.
    pub model_t: f64,
    /// sqrt(alpha_bar(tau)).
    pub alpha: f64,
    /// sqrt(1 - alpha_bar(tau)).
    pub sigma: f64,
}

/// The coefficients of step `step`, from `tau_from` to `tau_to`:
/// `x_to = psi * x_from + sum_j c[j] * d_j / r[j]`, d_0 the newest prediction (eps, or x0 with
/// [`Method::Data`]); j goes to `order`, or `order + 1` when a correction is folded in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepCoeffs {
    /// The step index.
    pub step: u32,
    /// The predictor's order.
    pub order: u32,
    /// Where the step starts.
    pub tau_from: f64,
    /// Where it ends.
    pub tau_to: f64,
    /// tau_from*T - 1.
    pub model_t: f64,
    /// alpha(tau_to) / alpha(tau_from).
    pub psi: f64,
    /// The coefficients on the normalised predictions; 0 where unused.
    pub c: [f64; 5],
    /// r at the evaluation times of c (1 without a table or with `Method::Data`; 0 unused).
    pub r: [f64; 5],
    /// The order of the correction folded into `c` (0: none).
    pub corrector_order: u32,
}

/// What a successful [`Sampler::sample`] measured (`deissn_sample_stats`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SampleStats {
    /// Model evaluations (= steps).
    pub evaluations: u32,
    /// Wall seconds inside the model's forward.
    pub model_seconds: f64,
    /// Wall seconds in everything else: updates, checks, copies.
    pub sampler_seconds: f64,
}

/// The DEIS / DEIS-SN stepping state machine over a [`Schedule`], normalised by an optional
/// [`NormTable`]. All coefficients are computed by [`Sampler::new`], once.
///
/// `Send` but not `Sync`: one thread at a time, as the header requires. Stepping and
/// sampling take `&mut self`, and no `&Sampler` can reach another thread, so two threads can
/// never use one sampler at once (share one through a `Mutex` if you must). It keeps its
/// schedule and table alive inside the library, so it borrows neither.
///
/// A sampler moves to another thread:
/// ```
/// fn send<T: Send>(_: T) {}
/// # fn f(s: deissn::Sampler) {
/// send(s);
/// # }
/// ```
/// but cannot be shared by threads:
/// ```compile_fail,E0277
/// fn shared<T: Sync>() {}
/// shared::<deissn::Sampler>();
/// ```
#[derive(Debug)]
pub struct Sampler {
    ptr: NonNull<sys::deissn_sampler>,
}

// SAFETY: a sampler may move between threads; `&mut self` on every stateful method keeps it
// to one thread at a time, and without Sync no `&Sampler` crosses threads.
unsafe impl Send for Sampler {}

fn info_of(s: &sys::deissn_step_info) -> StepInfo {
    StepInfo { step: s.step, steps: s.steps, tau: s.tau, model_t: s.model_t, alpha: s.alpha,
               sigma: s.sigma }
}

impl Sampler {
    /// Create a sampler. Errors: `InvalidArgument` (order > 3; [`Method::Learned`] without a
    /// row of weights for each step, with a table or the corrector, or weights that are not
    /// finite, naming the step), `Mismatch` (the table was made for another noise schedule).
    pub fn new(schedule: &Schedule, table: Option<&NormTable>, params: &SamplerParams) -> Result<Sampler> {
        let steps = schedule.steps() as usize;
        if params.method == Method::Learned && !params.weights.is_empty()
            && params.weights.len() != steps {
            return Err(Error::new(ErrorKind::InvalidArgument, format!(
                "Sampler::new: Method::Learned with {} rows of weights for {steps} steps",
                params.weights.len())));
        }
        // The library reads steps rows of weights (checked above), NULL when empty.
        let p = raw_params(params);
        let table = table.map_or(ptr::null(), NormTable::as_ptr);
        let mut out = ptr::null_mut();
        check(unsafe { sys::deissn_sampler_create(&mut out, schedule.as_ptr(), table, &p) })?;
        Ok(Sampler { ptr: NonNull::new(out).expect("deissn_sampler_create returned NULL") })
    }

    /// N, the number of steps.
    pub fn steps(&self) -> u32 {
        unsafe { sys::deissn_sampler_steps(self.ptr.as_ptr()) }
    }

    /// Where the next model evaluation is, or `None` once the last step was taken (call
    /// [`Sampler::reset`] to start again; [`Sampler::sample`] resets by itself).
    pub fn next_step(&self) -> Option<StepInfo> {
        // SAFETY: all-zero is a valid value; the version says what the library writes.
        let mut s: sys::deissn_step_info = unsafe { std::mem::zeroed() };
        s.version = sys::DEISSN_STEP_INFO_VERSION;
        // SAFETY: a valid sampler and output; OK or DONE are the only results then.
        let rc = unsafe { sys::deissn_sampler_next(self.ptr.as_ptr(), &mut s) };
        (rc == sys::DEISSN_OK as i32).then(|| info_of(&s))
    }

    /// Take one step: `model_out` is the model's output on `x` at [`Sampler::next_step`]'s
    /// time (what it is, [`SamplerParams::prediction`] says); `x` (the whole batch, any
    /// shape) is updated in place. The first step fixes the length until [`Sampler::reset`].
    /// Errors: `NonFinite` (NaN/Inf in model_out; x and the sampler are unchanged), `Size`,
    /// `State` (already done).
    pub fn step(&mut self, x: &mut [f32], model_out: &[f32]) -> Result<()> {
        if x.len() != model_out.len() {
            return Err(Error::new(ErrorKind::Size, format!(
                "Sampler::step: model_out has {} values, x has {}", model_out.len(), x.len())));
        }
        // SAFETY: both slices hold x.len() floats; they cannot overlap (&mut and &).
        check(unsafe {
            sys::deissn_step(self.ptr.as_ptr(), x.as_mut_ptr(), model_out.as_ptr(), x.len(),
                             ptr::null_mut())
        })?;
        Ok(())
    }

    /// Rewind to step 0 for a new batch (of any size).
    pub fn reset(&mut self) {
        unsafe { sys::deissn_sampler_reset(self.ptr.as_ptr()) };
    }

    /// The coefficients of step `i`. Errors: `InvalidArgument` (i >= N).
    pub fn coeffs(&self, i: u32) -> Result<StepCoeffs> {
        // SAFETY: all-zero is a valid value; the version says what the library writes.
        let mut c: sys::deissn_step_coeffs = unsafe { std::mem::zeroed() };
        c.version = sys::DEISSN_STEP_COEFFS_VERSION;
        check(unsafe { sys::deissn_sampler_coeffs(self.ptr.as_ptr(), i, &mut c) })?;
        Ok(StepCoeffs { step: c.step, order: c.order, tau_from: c.tau_from, tau_to: c.tau_to,
                        model_t: c.model_t, psi: c.psi, c: c.c, r: c.r,
                        corrector_order: c.corrector_order })
    }

    /// Run a whole sampling with `model`: `x` holds the initial noise of `shape` (shape\[0\]
    /// the batch) and receives the samples; on error it is left as it was. Returns what the
    /// sampling measured.
    pub fn sample(&mut self, model: &Model, x: &mut [f32], shape: &[usize]) -> Result<SampleStats> {
        self.run(model, x, shape, None, None)
    }

    /// [`Sampler::sample`], adding each step's eps to `calibrator` (whose schedule must have
    /// this sampler's step times, and the sampler `Method::Eps`) once the whole sampling has
    /// succeeded. Errors: as `sample`, and `Mismatch`, `InvalidArgument` for those.
    pub fn sample_calibrated(&mut self, model: &Model, x: &mut [f32], shape: &[usize],
                             calibrator: &mut Calibrator) -> Result<SampleStats> {
        self.run(model, x, shape, None, Some(calibrator))
    }

    /// [`Sampler::sample`], calling `progress(step, steps)` after each step; return false
    /// from it to stop (a `Callback` error).
    pub fn sample_with_progress<P>(&mut self, model: &Model, x: &mut [f32], shape: &[usize],
                                   mut progress: P) -> Result<SampleStats>
    where
        P: FnMut(u32, u32) -> bool,
    {
        self.run(model, x, shape, Some(&mut progress), None)
    }

    fn run(&mut self, model: &Model, x: &mut [f32], shape: &[usize],
           progress: Option<&mut dyn FnMut(u32, u32) -> bool>,
           calibrator: Option<&mut Calibrator>) -> Result<SampleStats> {
        let numel = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        if numel != Some(x.len()) {
            return Err(Error::new(ErrorKind::Size, format!(
                "Sampler::sample: shape {shape:?} does not hold the {} values of x", x.len())));
        }
        let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        // SAFETY: all-zero is a valid value (NULLs); options_init writes the crate's version.
        let mut opts: sys::deissn_sample_options = unsafe { std::mem::zeroed() };
        check(unsafe { sys::deissn_sample_options_init(&mut opts, sys::DEISSN_SAMPLE_OPTIONS_VERSION) })?;
        let mut stats: sys::deissn_sample_stats = unsafe { std::mem::zeroed() };
        stats.version = sys::DEISSN_SAMPLE_STATS_VERSION;
        opts.stats = &mut stats;
        opts.calibrator = calibrator.map_or(ptr::null_mut(), |c| c.as_mut_ptr());
        // The trampoline gets a thin pointer to the fat `&mut dyn FnMut`.
        let mut progress = progress;
        if let Some(p) = progress.as_mut() {
            opts.progress = Some(call_progress);
            opts.progress_user = p as *mut &mut dyn FnMut(u32, u32) -> bool as *mut c_void;
        }
        // SAFETY: x holds prod(shape) floats (checked above); opts, stats and the progress
        // closure outlive the call.
        call_with_callbacks(|| unsafe {
            sys::deissn_sample(self.ptr.as_ptr(), model.as_ptr(), x.as_mut_ptr(), dims.as_ptr(),
                               dims.len() as u32, &opts)
        })?;
        Ok(SampleStats { evaluations: stats.evaluations, model_seconds: stats.model_seconds,
                         sampler_seconds: stats.sampler_seconds })
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        unsafe { sys::deissn_sampler_free(self.ptr.as_ptr()) }
    }
}
