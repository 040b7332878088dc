"""Exceptions: one class per libdeissn status code, all derived from :class:`Error`."""

__all__ = [
    "Error", "InvalidArgument", "OutOfMemory", "SizeMismatch", "NonFinite", "StateError",
    "FileError", "FormatError", "Unsupported", "ModelError", "CallbackError", "Mismatch",
    "InternalError", "ConcurrentUseError",
]


class Error(Exception):
    """A libdeissn call failed.

    ``status`` is the negative ``DEISSN_E_*`` code and ``message`` the text of
    ``deissn_last_error()``, which names the argument, file or value at fault.
    Subclasses also derive from the closest built-in exception, so ``except ValueError``
    catches a bad argument whether Python or the library noticed it.
    """

    status = None

    def __init__(self, message, status=None):
        super().__init__(message)
        if status is not None:
            self.status = status
        self.message = message


class InvalidArgument(Error, ValueError):
    """DEISSN_E_INVALID_ARG: an out-of-range value, bad parameters, a closed object."""
    status = -1


class OutOfMemory(Error, MemoryError):
    """DEISSN_E_NOMEM: an allocation failed."""
    status = -2


class SizeMismatch(Error, ValueError):
    """DEISSN_E_SIZE: a buffer size or shape does not match, or overflows."""
    status = -3


class NonFinite(Error, ArithmeticError):
    """DEISSN_E_NONFINITE: the model produced NaN or Inf; the state is unchanged."""
    status = -4


class StateError(Error, RuntimeError):
    """DEISSN_E_STATE: a call out of sequence, e.g. a step after the last one."""
    status = -5


class ConcurrentUseError(StateError):
    """A :class:`Sampler` or :class:`Calibrator` used while another call is using it (another
    thread, or a callback of its own sample()). Raised by the binding, which enforces the
    header's "one thread at a time": the call does nothing. Use one object per thread."""


class FileError(Error, OSError):
    """DEISSN_E_IO: a file could not be opened, read or written."""
    status = -6


class FormatError(Error, ValueError):
    """DEISSN_E_FORMAT: a file is corrupt, truncated or not of the expected kind."""
    status = -7


class Unsupported(Error, NotImplementedError):
    """DEISSN_E_UNSUPPORTED: not available in this build (no libtorch, no CUDA, ...)."""
    status = -8


class ModelError(Error, RuntimeError):
    """DEISSN_E_MODEL: the model failed or returned the wrong shape or dtype."""
    status = -9


class CallbackError(Error, RuntimeError):
    """DEISSN_E_CALLBACK: a callback stopped the call.

    When the callback was Python code, its own exception is re-raised instead, so this
    is only seen for callbacks that report failure without raising.
    """
    status = -10


class Mismatch(Error, ValueError):
    """DEISSN_E_MISMATCH: inputs of another noise schedule or run (a table, a calibrator, a
    tuning reference)."""
    status = -11


class InternalError(Error, RuntimeError):
    """DEISSN_E_INTERNAL: a bug in libdeissn; please report it."""
    status = -12


_BY_STATUS = {cls.status: cls for cls in (
    InvalidArgument, OutOfMemory, SizeMismatch, NonFinite, StateError, FileError, FormatError,
    Unsupported, ModelError, CallbackError, Mismatch, InternalError)}


def error_for(status, message):
    """The exception for a negative status (codes unknown to this binding give Error)."""
    return _BY_STATUS.get(status, Error)(message, status)
