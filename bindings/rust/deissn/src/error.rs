use std::ffi::CStr;
use std::fmt;

use deissn_sys as sys;

/// What kind of failure a libdeissn call reported (its `DEISSN_E_*` status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// An out-of-range value, bad parameters, a buffer of the wrong length.
    InvalidArgument,
    /// An allocation failed.
    OutOfMemory,
    /// A buffer size or shape does not match, or overflows.
    Size,
    /// The model produced NaN or Inf; the state is unchanged.
    NonFinite,
    /// A call out of sequence, e.g. a step after the last one.
    State,
    /// A file could not be opened, read or written.
    Io,
    /// A file is corrupt, truncated or not of the expected kind.
    Format,
    /// Not available in this build (no libtorch, no CUDA, ...).
    Unsupported,
    /// The model failed or returned the wrong shape or dtype.
    Model,
    /// A callback (a model closure, a progress function) stopped the call.
    Callback,
    /// A table made for another noise schedule.
    Mismatch,
    /// A bug in libdeissn.
    Internal,
    /// A status this crate does not know (from a newer library).
    Other(i32),
}

impl ErrorKind {
    /// The kind of a negative status code.
    pub fn from_status(status: i32) -> ErrorKind {
        match status {
            sys::DEISSN_E_INVALID_ARG => ErrorKind::InvalidArgument,
            sys::DEISSN_E_NOMEM => ErrorKind::OutOfMemory,
            sys::DEISSN_E_SIZE => ErrorKind::Size,
            sys::DEISSN_E_NONFINITE => ErrorKind::NonFinite,
            sys::DEISSN_E_STATE => ErrorKind::State,
            sys::DEISSN_E_IO => ErrorKind::Io,
            sys::DEISSN_E_FORMAT => ErrorKind::Format,
            sys::DEISSN_E_UNSUPPORTED => ErrorKind::Unsupported,
            sys::DEISSN_E_MODEL => ErrorKind::Model,
            sys::DEISSN_E_CALLBACK => ErrorKind::Callback,
            sys::DEISSN_E_MISMATCH => ErrorKind::Mismatch,
            sys::DEISSN_E_INTERNAL => ErrorKind::Internal,
            other => ErrorKind::Other(other),
        }
    }

    /// The C status code (`DEISSN_E_*`).
    pub fn status(self) -> i32 {
        match self {
            ErrorKind::InvalidArgument => sys::DEISSN_E_INVALID_ARG,
            ErrorKind::OutOfMemory => sys::DEISSN_E_NOMEM,
            ErrorKind::Size => sys::DEISSN_E_SIZE,
            ErrorKind::NonFinite => sys::DEISSN_E_NONFINITE,
            ErrorKind::State => sys::DEISSN_E_STATE,
            ErrorKind::Io => sys::DEISSN_E_IO,
            ErrorKind::Format => sys::DEISSN_E_FORMAT,
            ErrorKind::Unsupported => sys::DEISSN_E_UNSUPPORTED,
            ErrorKind::Model => sys::DEISSN_E_MODEL,
            ErrorKind::Callback => sys::DEISSN_E_CALLBACK,
            ErrorKind::Mismatch => sys::DEISSN_E_MISMATCH,
            ErrorKind::Internal => sys::DEISSN_E_INTERNAL,
            ErrorKind::Other(s) => s,
        }
    }
}

/// A failed libdeissn call: its kind and the library's message, which names the argument,
/// file or value at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

/// `Result<T, deissn::Error>`.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error { kind, message: message.into() }
    }

    /// The error for a negative status, with the calling thread's `deissn_last_error()`.
    fn from_last(status: i32) -> Error {
        // SAFETY: deissn_last_error never returns NULL and the string lives until the next
        // failing call on this thread; it is copied at once.
        let msg = unsafe { CStr::from_ptr(sys::deissn_last_error()) };
        Error::new(ErrorKind::from_status(status), msg.to_string_lossy())
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The C status code (`DEISSN_E_*`).
    pub fn status(&self) -> i32 {
        self.kind.status()
    }

    /// The library's message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SAFETY: deissn_status_string returns a static string for any code.
        let name = unsafe { CStr::from_ptr(sys::deissn_status_string(self.status())) };
        write!(f, "{}: {}", name.to_string_lossy(), self.message)
    }
}

impl std::error::Error for Error {}

/// Turn a status into `Ok(status)` (OK or DONE) or the thread's last error.
pub(crate) fn check(status: i32) -> Result<i32> {
    if status < 0 {
        Err(Error::from_last(status))
    } else {
        Ok(status)
    }
}
