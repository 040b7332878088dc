use std::any::Any;
use std::cell::RefCell;
use std::ffi::{c_int, c_void, CString};
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::ptr::{self, NonNull};
use std::slice;

use deissn_sys as sys;

use crate::error::{check, Error, ErrorKind, Result};

/// What a model outputs; the sampler converts it to eps.
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

impl Prediction {
    pub(crate) fn raw(self) -> i32 {
        (match self {
            Prediction::Epsilon => sys::deissn_prediction_DEISSN_PREDICT_EPSILON,
            Prediction::Sample => sys::deissn_prediction_DEISSN_PREDICT_SAMPLE,
            Prediction::V => sys::deissn_prediction_DEISSN_PREDICT_V,
        }) as i32
    }
}

/// The time argument a model is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeConvention {
    /// tau*T - 1, the reference's (DDPM-style discrete models).
    #[default]
    ModelIndex,
    /// tau in [0, 1].
    Tau,
    /// tau*1000 (score_sde continuous models).
    Tau1000,
    /// sigma/alpha (EDM/VE-style models).
    Sigma,
}

/// The precision a TorchScript model runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DType {
    /// float32.
    #[default]
    Float32,
    /// float16 (CUDA).
    Float16,
    /// bfloat16.
    BFloat16,
}

/// How to load a TorchScript model; `ModelParams::default()` is an eps-prediction model
/// called at model time tau*T - 1, on the CPU in float32.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelParams {
    /// What the model outputs.
    pub prediction: Prediction,
    /// Its time argument.
    pub time: TimeConvention,
    /// "cpu", "cuda" or "cuda:N".
    pub device: String,
    /// The precision it runs in.
    pub dtype: DType,
    /// libtorch intra-op threads; 0 = libtorch's default.
    pub threads: u32,
}

impl Default for ModelParams {
    fn default() -> Self {
        ModelParams {
            prediction: Prediction::Epsilon,
            time: TimeConvention::ModelIndex,
            device: "cpu".into(),
            dtype: DType::Float32,
            threads: 0,
        }
    }
}

/// The error type a model closure returns.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

type ModelFn = dyn Fn(&[f32], &[i64], f64, &mut [f32]) -> std::result::Result<(), BoxError>
    + Send + Sync;

/// A model for [`Sampler::sample`](crate::Sampler::sample): a TorchScript file run by
/// libtorch inside the library ([`Model::load`]), or a Rust closure ([`Model::from_fn`]).
///
/// `Send + Sync`: a loaded model may be shared by threads, and closures must be
/// `Send + Sync` to be wrapped.
pub struct Model {
    ptr: NonNull<sys::deissn_model>,
    // Boxed twice so the C side holds a thin pointer; dropped after the C model (see Drop).
    _callback: Option<Box<Box<ModelFn>>>,
}

// SAFETY: the header states models are immutable and shareable when their callback is
// thread-safe, which the Send + Sync bound on closures guarantees.
unsafe impl Send for Model {}
unsafe impl Sync for Model {}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model").field("ptr", &self.ptr).field("closure", &self._callback.is_some()).finish()
    }
}

fn raw_params(prediction: Prediction, time: TimeConvention) -> sys::deissn_model_params {
    let mut p = std::mem::MaybeUninit::uninit();
    // SAFETY: params_init fills the whole struct when given a valid pointer.
    let mut p = unsafe {
        sys::deissn_model_params_init(p.as_mut_ptr());
        p.assume_init()
    };
    p.prediction = prediction.raw();
    p.time_convention = (match time {
        TimeConvention::ModelIndex => sys::deissn_time_convention_DEISSN_TIME_MODEL_INDEX,
        TimeConvention::Tau => sys::deissn_time_convention_DEISSN_TIME_TAU,
        TimeConvention::Tau1000 => sys::deissn_time_convention_DEISSN_TIME_TAU_1000,
        TimeConvention::Sigma => sys::deissn_time_convention_DEISSN_TIME_SIGMA,
    }) as i32;
    p
}

impl Model {
    /// Load a TorchScript model whose `forward(x, t)` takes x `[B, ...]` and t `[B]`.
    /// Errors: `Io`, `Model` (not TorchScript, wrong signature), `Unsupported` (a library built
    /// without libtorch, a device it cannot use), `InvalidArgument` (a bad device string).
    pub fn load(path: impl AsRef<Path>, params: &ModelParams) -> Result<Model> {
        let path = crate::c_path(path.as_ref())?;
        let device = CString::new(params.device.as_str()).map_err(|_| {
            Error::new(ErrorKind::InvalidArgument, "Model::load: the device contains a NUL byte")
        })?;
        let mut p = raw_params(params.prediction, params.time);
        p.device = device.as_ptr();
        p.dtype = (match params.dtype {
            DType::Float32 => sys::deissn_dtype_DEISSN_DTYPE_FLOAT32,
            DType::Float16 => sys::deissn_dtype_DEISSN_DTYPE_FLOAT16,
            DType::BFloat16 => sys::deissn_dtype_DEISSN_DTYPE_BFLOAT16,
        }) as i32;
        p.num_threads = i32::try_from(params.threads).unwrap_or(i32::MAX);
        let mut out = ptr::null_mut();
        // SAFETY: path, device and p outlive the call; the library copies the device name.
        check(unsafe { sys::deissn_model_load(&mut out, path.as_ptr(), &p) })?;
        Ok(Model { ptr: NonNull::new(out).expect("deissn_model_load returned NULL"), _callback: None })
    }

    /// Wrap a closure `f(x, shape, t, out)` as a model: it writes the prediction for the batch
    /// `x` (of `shape`, C order, shape\[0\] the batch size) at time `t` into `out`.
    ///
    /// Returning `Err` stops the sampling with an [`ErrorKind::Callback`] error that carries
    /// the closure's message; a panic in the closure is resumed by `Sampler::sample`.
    pub fn from_fn<F>(prediction: Prediction, time: TimeConvention, f: F) -> Result<Model>
    where
        F: Fn(&[f32], &[i64], f64, &mut [f32]) -> std::result::Result<(), BoxError>
            + Send + Sync + 'static,
    {
        let callback: Box<Box<ModelFn>> = Box::new(Box::new(f));
        let user = &*callback as *const Box<ModelFn> as *mut c_void;
        let p = raw_params(prediction, time);
        let mut out = ptr::null_mut();
        // SAFETY: `user` points into `callback`, which the Model owns and drops after the C
        // model is freed.
        check(unsafe { sys::deissn_model_from_callback(&mut out, Some(call_model), user, &p) })?;
        Ok(Model {
            ptr: NonNull::new(out).expect("deissn_model_from_callback returned NULL"),
            _callback: Some(callback),
        })
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::deissn_model {
        self.ptr.as_ptr()
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        unsafe { sys::deissn_model_free(self.ptr.as_ptr()) }
    }
}

/// What a callback left behind when it told the library to stop.
pub(crate) enum Pending {
    Error(String),
    Panic(Box<dyn Any + Send>),
}

thread_local! {
    // Callbacks run on the thread that called deissn_sample, which collects this at once.
    static PENDING: RefCell<Option<Pending>> = const { RefCell::new(None) };
}

pub(crate) fn set_pending(p: Pending) {
    PENDING.with(|cell| *cell.borrow_mut() = Some(p));
}

pub(crate) fn take_pending() -> Option<Pending> {
    PENDING.with(|cell| cell.borrow_mut().take())
}

unsafe extern "C" fn call_model(user: *mut c_void, x: *const f32, shape: *const i64, ndim: u32,
                                t: f64, out: *mut f32) -> c_int {
    // SAFETY: `user` is the Box<ModelFn> given to deissn_model_from_callback; x and out hold
    // prod(shape) floats and do not overlap (the library's contract).
    let f = &*(user as *const Box<ModelFn>);
    let shape = slice::from_raw_parts(shape, ndim as usize);
    let n = shape.iter().product::<i64>() as usize;
    let (x, out) = (slice::from_raw_parts(x, n), slice::from_raw_parts_mut(out, n));
    // A panic must not unwind into C: catch it here, resume it once the library returns.
    match panic::catch_unwind(AssertUnwindSafe(|| f(x, shape, t, out))) {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => {
            set_pending(Pending::Error(e.to_string()));
            1
        }
        Err(payload) => {
            set_pending(Pending::Panic(payload));
            1
        }
    }
}
