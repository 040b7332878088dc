use std::any::Any;
use std::cell::RefCell;
use std::ffi::{c_int, c_void, CString};
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::ptr::{self, NonNull};
use std::slice;

use deissn_sys as sys;

use crate::error::{check, Error, ErrorKind, Result};
use crate::names::named_enum;

/// The time argument a model is given; parsed from the library's names ("model_index" or
/// "t", "tau", "tau_1000" or "tau1000", "sigma").
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

named_enum!(TimeConvention, deissn_enum_DEISSN_ENUM_TIME, "no such time convention", {
    ModelIndex = deissn_time_convention_DEISSN_TIME_MODEL_INDEX,
    Tau = deissn_time_convention_DEISSN_TIME_TAU,
    Tau1000 = deissn_time_convention_DEISSN_TIME_TAU_1000,
    Sigma = deissn_time_convention_DEISSN_TIME_SIGMA,
});

/// The precision a loaded model runs in; parsed from the library's names ("float32",
/// "fp16", "half", "bf16", ...).
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

named_enum!(DType, deissn_enum_DEISSN_ENUM_DTYPE, "no such dtype", {
    Float32 = deissn_dtype_DEISSN_DTYPE_FLOAT32,
    Float16 = deissn_dtype_DEISSN_DTYPE_FLOAT16,
    BFloat16 = deissn_dtype_DEISSN_DTYPE_BFLOAT16,
});

/// How to load a model file; `ModelParams::default()` is a TorchScript model called at model
/// time tau*T - 1, on the CPU in float32. What the model outputs is a sampler parameter,
/// [`SamplerParams::prediction`](crate::SamplerParams::prediction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelParams {
    /// The backend plug-in that reads the file (libdeissn-NAME.so.1, found next to
    /// libdeissn.so); `None`: "torch" (TorchScript, libdeissn-torch.so).
    pub backend: Option<String>,
    /// Its time argument.
    pub time: TimeConvention,
    /// "cpu", "cuda" or "cuda:N".
    pub device: String,
    /// The precision it runs in.
    pub dtype: DType,
    /// libtorch intra-op threads; 0 leaves libtorch's setting alone. The setting is
    /// process-global (see `deissn_model_params` in the header).
    pub threads: u32,
}

impl Default for ModelParams {
    fn default() -> Self {
        ModelParams {
            backend: None,
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

fn raw_params(time: TimeConvention) -> sys::deissn_model_params {
    // SAFETY: all-zero is a valid value (numbers, NULL pointers); params_init writes the
    // fields of the crate's version, which is all of them.
    let mut p: sys::deissn_model_params = unsafe { std::mem::zeroed() };
    let rc = unsafe { sys::deissn_model_params_init(&mut p, sys::DEISSN_MODEL_PARAMS_VERSION) };
    assert_eq!(rc, 0, "deissn_model_params_init refused the crate's version");
    p.time_convention = time.raw();
    p
}

fn c_string(what: &str, s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::new(ErrorKind::InvalidArgument,
                                           format!("Model::load: the {what} contains a NUL byte")))
}

impl Model {
    /// Load a model file through a backend plug-in (`params.backend`; the default, "torch",
    /// reads a TorchScript file whose `forward(x, t)` takes x `[B, ...]` and t `[B]`).
    /// Errors: `Io`, `Model` (not TorchScript, wrong signature), `Unsupported` (the plug-in is
    /// absent or cannot be loaded, see [`has_torch`](crate::has_torch); a device it cannot
    /// use), `InvalidArgument` (a bad device string, an unknown backend).
    pub fn load(path: impl AsRef<Path>, params: &ModelParams) -> Result<Model> {
        let path = crate::c_path(path.as_ref())?;
        let device = c_string("device", &params.device)?;
        let backend = params.backend.as_deref().map(|b| c_string("backend", b)).transpose()?;
        let mut p = raw_params(params.time);
        p.device = device.as_ptr();
        p.backend = backend.as_ref().map_or(ptr::null(), |b| b.as_ptr());
        p.dtype = params.dtype.raw();
        p.num_threads = i32::try_from(params.threads).unwrap_or(i32::MAX);
        let mut out = ptr::null_mut();
        // SAFETY: path, device, backend and p outlive the call; the library copies the names.
        check(unsafe { sys::deissn_model_load(&mut out, path.as_ptr(), &p) })?;
        Ok(Model { ptr: NonNull::new(out).expect("deissn_model_load returned NULL"), _callback: None })
    }

    /// Wrap a closure `f(x, shape, t, out)` as a model: it writes the prediction for the batch
    /// `x` (of `shape`, C order, shape\[0\] the batch size) at time `t` (in `time`'s
    /// convention) into `out`; what the prediction is, the sampler's
    /// [`SamplerParams::prediction`](crate::SamplerParams::prediction) says.
    ///
    /// Returning `Err` stops the sampling with an [`ErrorKind::Callback`] error that carries
    /// the closure's message; a panic in the closure is resumed by `Sampler::sample`.
    pub fn from_fn<F>(time: TimeConvention, f: F) -> Result<Model>
    where
        F: Fn(&[f32], &[i64], f64, &mut [f32]) -> std::result::Result<(), BoxError>
            + Send + Sync + 'static,
    {
        let callback: Box<Box<ModelFn>> = Box::new(Box::new(f));
        let user = &*callback as *const Box<ModelFn> as *mut c_void;
        let p = raw_params(time);
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

/// `call` (a library call that runs the crate's callbacks) made with nothing pending, and
/// its status checked: a callback's panic resumes here, its error joins the message.
pub(crate) fn call_with_callbacks(call: impl FnOnce() -> i32) -> crate::Result<()> {
    take_pending();
    let rc = call();
    match (crate::error::check(rc), take_pending()) {
        (Ok(_), _) => Ok(()),
        (Err(_), Some(Pending::Panic(payload))) => panic::resume_unwind(payload),
        (Err(e), Some(Pending::Error(msg))) => {
            Err(crate::Error::new(e.kind(), format!("{}: {msg}", e.message())))
        }
        (Err(e), None) => Err(e),
    }
}

/// The progress trampoline: `user` is a `&mut &mut dyn FnMut(done, total) -> bool` (false:
/// stop), alive for the call it is given to.
pub(crate) unsafe extern "C" fn call_progress(user: *mut c_void, done: u32, total: u32) -> c_int {
    // SAFETY: `user` is the &mut &mut dyn FnMut set up by the caller for this call.
    let f = &mut *(user as *mut &mut dyn FnMut(u32, u32) -> bool);
    match panic::catch_unwind(AssertUnwindSafe(|| f(done, total))) {
        Ok(go_on) => c_int::from(!go_on),
        Err(payload) => {
            set_pending(Pending::Panic(payload));
            1
        }
    }
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
