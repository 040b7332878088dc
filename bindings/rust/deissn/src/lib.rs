//! Safe Rust bindings to libdeissn: DEIS and DEIS-SN, exponential-integrator samplers for
//! diffusion models (Zhang & Chen 2022; Xia et al. 2023).
//!
//! ```no_run
//! use deissn::{Model, ModelParams, NormTable, Preset, Sampler, Schedule};
//!
//! # fn main() -> deissn::Result<()> {
//! // The measured best configuration for 10 model evaluations (Preset::Reference: the paper's),
//! // over the default noise schedule (set it on the builder: Schedule::builder().noise(...));
//! // Preset::Tuned: the plans deissn::tune stored in the model's table (docs/tuning.md).
//! let table = NormTable::load("cifar10_Ls_score_abs.pt", 5)?;
//! let (schedule, params, use_table) = Preset::Best.apply(Schedule::builder(), 10, Some(&table))?;
//! let mut sampler = Sampler::new(&schedule.build()?, use_table.then_some(&table), &params)?;
//! let model = Model::load("model.pt", &ModelParams::default())?;
//! let shape = [16, 3, 32, 32];
//! let mut x = vec![0.0f32; shape.iter().product()];
//! deissn::fill_noise(0, 0, 3 * 32 * 32, &mut x)?;
//! sampler.sample(&model, &mut x, &shape)?;
//! # Ok(())
//! # }
//! ```
//!
//! Or drive your own model step by step:
//!
//! ```no_run
//! # use deissn::*;
//! # fn f(sampler: &mut Sampler, x: &mut [f32], my_model: impl Fn(&[f32], f64) -> Vec<f32>) -> deissn::Result<()> {
//! while let Some(t) = sampler.next_step() {
//!     let eps = my_model(x, t.model_t);
//!     sampler.step(x, &eps)?; // eps: SamplerParams::prediction says what the model gives
//! }
//! # Ok(())
//! # }
//! ```
//!
//! What the model outputs is a sampler parameter ([`SamplerParams::prediction`]); TorchScript
//! models are read by the library's torch plug-in, libdeissn-torch.so.1, loaded at run time
//! ([`has_torch`]). The enums parse the library's names and aliases with `str::parse`
//! (`"cosine".parse::<Noise>()`, `"v".parse::<Prediction>()`), the same spellings as the C
//! tools, and [`SamplerParams::named`] gives the tools' samplers ("deis-sn", "ddim", ...).
//!
//! Plans are learned on a model with [`tune`]; to share its reference solves (most of its
//! cost) among processes or machines, each solves a part with [`Reference::solve`] and sends
//! [`Reference::to_bytes`]; one process reads them back ([`Reference::from_bytes`]), merges
//! them ([`Reference::merge`]) and searches ([`tune_reference`]): the plans of [`tune`]
//! exactly (docs/tuning.md).
//!
//! The library is linked through `deissn-sys` (see its build script for how it is found).
//! Thread safety follows the C header: schedules, tables, models and tuning references are
//! `Send + Sync`; a sampler and a calibrator are `Send` only.
#![warn(missing_docs)]

use std::ffi::{CStr, CString};
use std::path::Path;

use deissn_sys as sys;

mod calibrate;
mod error;
mod model;
mod names;
mod sampler;
mod schedule;
mod table;
mod tune;

pub use calibrate::{CalibrationSums, Calibrator};
pub use error::{Error, ErrorKind, Result};
pub use model::{BoxError, DType, Model, ModelParams, TimeConvention};
pub use sampler::{Method, Prediction, Preset, SampleStats, Sampler, SamplerParams, StepCoeffs,
                  StepInfo};
pub use schedule::{Noise, Schedule, ScheduleBuilder, Spacing};
pub use table::{NormTable, Plan};
pub use tune::{tune, tune_reference, tune_reference_with_progress, tune_with_progress, Reference,
               TuneParams};

/// The version of the loaded libdeissn, e.g. "0.4.0".
pub fn version() -> &'static str {
    // SAFETY: a static NUL-terminated ASCII string.
    unsafe { CStr::from_ptr(sys::deissn_version_string()) }.to_str().unwrap_or("?")
}

/// Whether TorchScript models can be loaded: the torch plug-in (libdeissn-torch.so.1, next
/// to libdeissn.so) is there and loads. Answered by the library at run time.
pub fn has_torch() -> bool {
    unsafe { sys::deissn_has_torch() == 1 }
}

/// Fill `out` with standard normal noise for the samples `first_sample`, `first_sample + 1`,
/// ... of `sample_numel` values each; sample k depends only on (seed, k), so the noise is the
/// same however samples are split into batches. Errors: `Size` when `out.len()` is not a
/// multiple of `sample_numel`.
pub fn fill_noise(seed: u64, first_sample: u64, sample_numel: usize, out: &mut [f32]) -> Result<()> {
    if sample_numel == 0 || out.len() % sample_numel != 0 {
        return Err(Error::new(ErrorKind::Size, format!(
            "fill_noise: {} values are not whole samples of {sample_numel}", out.len())));
    }
    let n = out.len() / sample_numel;
    // SAFETY: out holds n * sample_numel floats.
    error::check(unsafe { sys::deissn_fill_noise(seed, first_sample, n, sample_numel, out.as_mut_ptr()) })?;
    Ok(())
}

fn c_path(path: &Path) -> Result<CString> {
    #[cfg(unix)]
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()).to_vec();
    #[cfg(not(unix))]
    let bytes = path.to_string_lossy().into_owned().into_bytes();
    CString::new(bytes).map_err(|_| Error::new(ErrorKind::InvalidArgument,
                                               format!("{}: the path contains a NUL byte", path.display())))
}
