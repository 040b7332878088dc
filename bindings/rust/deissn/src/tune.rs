//! Tuning: learning, on a model, the plans that sample it best (docs/tuning.md).
use std::ffi::c_void;
use std::ptr;

use deissn_sys as sys;

use crate::error::Result;
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
    let mut p = raw_default();
    p.nfe_min = params.nfe_min;
    p.nfe_max = params.nfe_max;
    p.grid_steps = params.grid_steps;
    p.fit_samples = params.fit_samples;
    p.holdout_samples = params.holdout_samples;
    p.batch = params.batch;
    p.seed = params.seed;
    p.prediction = params.prediction.raw();
    let mut progress: &mut dyn FnMut(u32, u32) -> bool = &mut progress;
    p.progress = Some(call_progress);
    p.progress_user = &mut progress as *mut &mut dyn FnMut(u32, u32) -> bool as *mut c_void;
    let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
    let mut out = ptr::null_mut();
    let table = table.map_or(ptr::null(), |t| t.as_ptr());
    // SAFETY: the params, the noise schedule's arrays, the shape and the progress closure
    // outlive the call; the model is used by this thread only during it.
    noise.with_raw(|sp| call_with_callbacks(|| unsafe {
        sys::deissn_tune(&mut out, model.as_ptr(), sp, table, dims.as_ptr(), dims.len() as u32, &p)
    }))?;
    NormTable::from_raw(0, out)
}
