//! Tuning: learning, on a model, the plans that sample it best (docs/tuning.md).
use std::ffi::c_void;
use std::fmt;
use std::ptr::{self, NonNull};

use deissn_sys as sys;

use crate::error::{check, Error, ErrorKind, Result};
use crate::model::{call_progress, call_with_callbacks};
use crate::{Model, NormTable, Prediction, ScheduleBuilder};

/// What [`tune`] measures and searches (`deissn_tune_params`); [`Default`] is the library's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TuneParams {
    /// The NFE range to tune, 2 <= nfe_min <= nfe_max <= 64 (default 3..=25).
    pub nfe_min: u32,
    /// See `nfe_min`.
    pub nfe_max: u32,
    /// Evaluation times of the reference solves (default 400).
    pub grid_steps: u32,
    /// Reference trajectories that choose the plans: half search, half confirm against BEST
    /// (default 128).
    pub fit_samples: u32,
    /// Further trajectories that only measure them (default 256).
    pub holdout_samples: u32,
    /// Samples per model evaluation in the reference solves (default 64).
    pub batch: u32,
    /// Trajectory k starts from `fill_noise(seed, k, ...)` (default 0).
    pub seed: u64,
    /// What the model outputs (default epsilon).
    pub prediction: Prediction,
}

fn raw_default() -> sys::deissn_tune_params {
    // SAFETY: all-zero is a valid value (numbers, NULLs); params_init writes the crate's version.
    let mut p: sys::deissn_tune_params = unsafe { std::mem::zeroed() };
    let rc = unsafe { sys::deissn_tune_params_init(&mut p, sys::DEISSN_TUNE_PARAMS_VERSION) };
    assert_eq!(rc, 0, "deissn_tune_params_init refused the crate's version");
    p
}

impl Default for TuneParams {
    fn default() -> Self {
        let p = raw_default();
        TuneParams { nfe_min: p.nfe_min, nfe_max: p.nfe_max, grid_steps: p.grid_steps,
                     fit_samples: p.fit_samples, holdout_samples: p.holdout_samples,
                     batch: p.batch, seed: p.seed,
                     prediction: Prediction::from_raw(p.prediction).unwrap_or_default() }
    }
}

/// Learn, for each NFE of `params`' range, the plan that samples `model` best
/// (`deissn_tune`), and return a table carrying them ([`NormTable::plans`]; sample with
/// [`Preset::Tuned`](crate::Preset::Tuned)). `noise` is the model's noise schedule (its
/// sampling fields are ignored); `table` a table for the model (the result is a copy with its
/// plans replaced), or `None` (the result is the table the reference solves calibrated);
/// `shape` one sample's shape, without the batch. Costs about 2 (fit + holdout) grid_steps
/// model evaluations. Errors: `InvalidArgument` (ranges), `Mismatch` (a table for another
/// noise schedule), `Model`, `NonFinite`, `Callback` (a model closure's error, with its
/// message); a model closure's panic resumes here.
pub fn tune(model: &Model, noise: &ScheduleBuilder, table: Option<&NormTable>, shape: &[usize],
            params: &TuneParams) -> Result<NormTable> {
    tune_with_progress(model, noise, table, shape, params, |_, _| true)
}

/// [`tune`], calling `progress(done, total)` (model evaluations of a batch) as it goes;
/// return false from it to stop (a `Callback` error).
pub fn tune_with_progress<P>(model: &Model, noise: &ScheduleBuilder, table: Option<&NormTable>,
                             shape: &[usize], params: &TuneParams, mut progress: P)
                             -> Result<NormTable>
where
    P: FnMut(u32, u32) -> bool,
{
    let dims = c_shape(shape);
    let mut out = ptr::null_mut();
    let table = table.map_or(ptr::null(), |t| t.as_ptr());
    // SAFETY: call_tune keeps the params, the noise schedule's arrays and the progress closure
    // alive for the call, the shape outlives it; the model is used by this thread only during it.
    call_tune(params, &mut progress, noise, |p, sp| unsafe {
        sys::deissn_tune(&mut out, model.as_ptr(), sp, table, dims.as_ptr(), dims.len() as u32, p)
    })?;
    NormTable::from_raw(0, out)
}

/// Make the tuning call `f` with `params` as `deissn_tune_params` (`progress` its callback)
/// and `noise` as `deissn_schedule_params`, both alive, with the noise schedule's arrays and
/// the closure, for the call; a callback's error or panic as [`call_with_callbacks`] gives it.
fn call_tune(params: &TuneParams, progress: &mut dyn FnMut(u32, u32) -> bool,
             noise: &ScheduleBuilder,
             f: impl FnOnce(&sys::deissn_tune_params, &sys::deissn_schedule_params) -> i32)
             -> Result<()> {
    let mut p = raw_default();
    p.nfe_min = params.nfe_min;
    p.nfe_max = params.nfe_max;
    p.grid_steps = params.grid_steps;
    p.fit_samples = params.fit_samples;
    p.holdout_samples = params.holdout_samples;
    p.batch = params.batch;
    p.seed = params.seed;
    p.prediction = params.prediction.raw();
    let mut progress = progress;
    p.progress = Some(call_progress);
    p.progress_user = &mut progress as *mut &mut dyn FnMut(u32, u32) -> bool as *mut c_void;
    noise.with_raw(|sp| call_with_callbacks(|| f(&p, sp)))
}

fn c_shape(shape: &[usize]) -> Vec<i64> {
    shape.iter().map(|&d| d as i64).collect()
}

/// The reference solves of a tuning run, or a part of them (`deissn_reference`): what
/// [`tune`] computes first, split by trajectory so that processes or machines can share the
/// work (docs/tuning.md).
///
/// ```no_run
/// # use deissn::*;
/// # fn f(model: &Model, parts_from_workers: Vec<Vec<u8>>) -> deissn::Result<()> {
/// let params = TuneParams::default(); // 128 + 256 trajectories, batches of 64
/// let noise = Schedule::builder();
/// // on each worker: a share of the trajectories, starting at a multiple of params.batch
/// let part = Reference::solve(model, &noise, &[3, 32, 32], &params, 0, Some(128))?;
/// let data: Vec<u8> = part.to_bytes(); // send it to one process, which does
/// let parts = parts_from_workers.iter().map(|d| Reference::from_bytes(d))
///                               .collect::<deissn::Result<Vec<_>>>()?;
/// let whole = Reference::merge(&parts.iter().collect::<Vec<_>>())?;
/// let table = tune_reference(model, &noise, None, &whole, &params)?; // tune()'s plans
/// # Ok(())
/// # }
/// ```
///
/// A reference holds exact sums, so merged parts have the bits of one whole solve, in any
/// order of merging, and give the plans of [`tune`] with the same params on the same model.
/// Immutable once made, so it may be shared by threads (`Send + Sync`):
/// ```
/// fn shared<T: Send + Sync>() {}
/// shared::<deissn::Reference>();
/// ```
pub struct Reference {
    ptr: NonNull<sys::deissn_reference>,
}

// SAFETY: the header states a reference is immutable once made and any thread may read it;
// no method mutates it.
unsafe impl Send for Reference {}
unsafe impl Sync for Reference {}

impl Reference {
    fn wrap(rc: i32, out: *mut sys::deissn_reference) -> Result<Reference> {
        check(rc)?;
        Ok(Reference { ptr: NonNull::new(out).expect("libdeissn returned a NULL reference") })
    }

    /// Solve trajectories `first .. first + count - 1` (`None`: to the last) of the run that
    /// [`tune`] with `params` makes (`fit_samples + holdout_samples` trajectories, trajectory
    /// k starting from `fill_noise(params.seed, k, ...)`); `model`, `noise` and `shape` as for
    /// [`tune`]. Split work at multiples of `params.batch`: then every trajectory is evaluated
    /// in the batch a whole solve evaluates it in, and a model whose output depends on its
    /// batch still gives the whole solve's bits. Errors: `InvalidArgument` (`Some(0)`, a range
    /// beyond the run, params as for [`tune`]), `Model`, `NonFinite`, `Callback` (a model
    /// closure's error, with its message); a model closure's panic resumes here.
    pub fn solve(model: &Model, noise: &ScheduleBuilder, shape: &[usize], params: &TuneParams,
                 first: u64, count: Option<u64>) -> Result<Reference> {
        Reference::solve_with_progress(model, noise, shape, params, first, count, |_, _| true)
    }

    /// [`Reference::solve`], calling `progress(done, total)` (model evaluations of a batch,
    /// of this part) as it goes; return false from it to stop (a `Callback` error).
    pub fn solve_with_progress<P>(model: &Model, noise: &ScheduleBuilder, shape: &[usize],
                                  params: &TuneParams, first: u64, count: Option<u64>,
                                  mut progress: P) -> Result<Reference>
    where
        P: FnMut(u32, u32) -> bool,
    {
        let count = match count {
            Some(0) => return Err(Error::new(ErrorKind::InvalidArgument,
                "Reference::solve: count is Some(0) (None: to the last trajectory)")),
            Some(n) => n,
            None => 0,
        };
        let dims = c_shape(shape);
        let mut out = ptr::null_mut();
        // SAFETY: call_tune keeps the params, the noise schedule's arrays and the progress
        // closure alive for the call, the shape outlives it; the model is used by this thread
        // only during it.
        call_tune(params, &mut progress, noise, |p, sp| unsafe {
            sys::deissn_reference_solve(&mut out, model.as_ptr(), sp, dims.as_ptr(),
                                        dims.len() as u32, p, first, count)
        })?;
        Reference::wrap(0, out)
    }

    /// One reference from parts of one run, in any order; the parts are unchanged. Errors:
    /// `InvalidArgument` (no parts), `Mismatch` (another run: the message names the field
    /// and the parts; overlapping or missing trajectories: it names them).
    pub fn merge(parts: &[&Reference]) -> Result<Reference> {
        let raw: Vec<*const sys::deissn_reference> =
            parts.iter().map(|r| r.ptr.as_ptr() as *const _).collect();
        let mut out = ptr::null_mut();
        // SAFETY: raw holds parts.len() live references, which the call only reads.
        let rc = unsafe { sys::deissn_reference_merge(&mut out, raw.as_ptr(), raw.len()) };
        Reference::wrap(rc, out)
    }

    /// A reference from [`Reference::to_bytes`]' bytes, checked before use. Errors: `Format`
    /// (not a reference, a newer format version, truncated or corrupt bytes: the message
    /// names the byte offset or the field).
    pub fn from_bytes(data: &[u8]) -> Result<Reference> {
        let mut out = ptr::null_mut();
        // SAFETY: data holds data.len() bytes, which the call only reads.
        let rc = unsafe {
            sys::deissn_reference_from_bytes(&mut out, data.as_ptr() as *const c_void, data.len())
        };
        Reference::wrap(rc, out)
    }

    /// The reference as bytes: little-endian, with a CRC-32, the same on every platform
    /// (docs/reference-format.md).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut size = 0usize;
        // SAFETY: a NULL buffer with capacity 0 asks the size.
        check(unsafe {
            sys::deissn_reference_to_bytes(self.ptr.as_ptr(), ptr::null_mut(), 0, &mut size)
        }).expect("deissn_reference_to_bytes refused to give a size");
        let mut buf = vec![0u8; size];
        // SAFETY: buf holds size bytes; the reference is immutable, so its size is the same.
        check(unsafe {
            sys::deissn_reference_to_bytes(self.ptr.as_ptr(), buf.as_mut_ptr() as *mut c_void,
                                           buf.len(), &mut size)
        }).expect("deissn_reference_to_bytes refused a buffer of its size");
        buf.truncate(size);
        buf
    }

    /// `(first, count, total)`: the trajectories held, `first .. first + count - 1`, of the
    /// run's `total`. [`tune_reference`] takes a reference with `first` 0 and `count` total.
    pub fn range(&self) -> (u64, u64, u64) {
        let (mut first, mut count, mut total) = (0, 0, 0);
        // SAFETY: a live reference and three valid outputs.
        let rc = unsafe {
            sys::deissn_reference_range(self.ptr.as_ptr(), &mut first, &mut count, &mut total)
        };
        debug_assert_eq!(rc, 0);
        (first, count, total)
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (first, count, total) = self.range();
        write!(f, "Reference {{ first: {first}, count: {count}, total: {total} }}")
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        unsafe { sys::deissn_reference_free(self.ptr.as_ptr()) }
    }
}

/// The search half of [`tune`] (`deissn_tune_reference`): the plans for `params.nfe_min ..=
/// nfe_max` from a complete `reference` (merged parts, possibly solved elsewhere), on the
/// `model` it was solved on (the search runs candidate plans on it) and its `noise` schedule;
/// `table` as for [`tune`] (`None`: the table the reference's calibration sums make).
/// `params.grid_steps`, `fit_samples`, `holdout_samples`, `seed` and `prediction` must be the
/// reference's (`batch` is not used). [`tune`] is [`Reference::solve`] of every trajectory
/// and then this, so the plans are the same. Errors: `InvalidArgument` (ranges, an
/// incomplete reference: its range named), `Mismatch` (params, noise or table of another
/// run: the field named), `Model`, `NonFinite`, `Callback`; a model closure's panic resumes
/// here.
pub fn tune_reference(model: &Model, noise: &ScheduleBuilder, table: Option<&NormTable>,
                      reference: &Reference, params: &TuneParams) -> Result<NormTable> {
    tune_reference_with_progress(model, noise, table, reference, params, |_, _| true)
}

/// [`tune_reference`], calling `progress(done, total)` (NFEs searched) as it goes; return
/// false from it to stop (a `Callback` error).
pub fn tune_reference_with_progress<P>(model: &Model, noise: &ScheduleBuilder,
                                       table: Option<&NormTable>, reference: &Reference,
                                       params: &TuneParams, mut progress: P) -> Result<NormTable>
where
    P: FnMut(u32, u32) -> bool,
{
    let mut out = ptr::null_mut();
    let table = table.map_or(ptr::null(), |t| t.as_ptr());
    // SAFETY: call_tune keeps the params, the noise schedule's arrays and the progress closure
    // alive for the call; the reference is only read; the model is used by this thread only
    // during it.
    call_tune(params, &mut progress, noise, |p, sp| unsafe {
        sys::deissn_tune_reference(&mut out, model.as_ptr(), sp, table, reference.ptr.as_ptr(), p)
    })?;
    NormTable::from_raw(0, out)
}
