"""Shared plumbing: the handle base class, the enums, and the array conversion rules."""
import enum
from ctypes import c_void_p

import numpy as np

from .errors import InvalidArgument


class Noise(enum.IntEnum):
    """How alpha_bar is defined (``deissn_noise``)."""
    LINEAR = 0
    SCALED_LINEAR = 1
    SQUAREDCOS_CAP_V2 = 2
    CUSTOM_BETAS = 3
    CUSTOM_ALPHAS_CUMPROD = 4
    CONTINUOUS_VP = 5


class Spacing(enum.IntEnum):
    """How the sampling times are chosen (``deissn_spacing``)."""
    QUADRATIC = 0
    TRAILING = 1
    LINSPACE = 2
    LEADING = 3
    POWER = 4
    LOGSNR = 5
    KARRAS = 6
    CUSTOM = 7


class Prediction(enum.IntEnum):
    """What a model outputs (``deissn_prediction``); also accepted: "eps", "x0", "v"."""
    EPSILON = 0
    SAMPLE = 1
    V = 2


class Method(enum.IntEnum):
    """What the sampler extrapolates (``deissn_method``): EPS (DEIS / DEIS-SN) or DATA (x0)."""
    EPS = 0
    DATA = 1


class Time(enum.IntEnum):
    """The time argument a model is given (``deissn_time_convention``)."""
    MODEL_INDEX = 0
    TAU = 1
    TAU_1000 = 2
    SIGMA = 3


class DType(enum.IntEnum):
    """The dtype a TorchScript model runs in (``deissn_dtype``)."""
    FLOAT32 = 0
    FLOAT16 = 1
    BFLOAT16 = 2


_ALIASES = {Prediction: {"eps": "epsilon", "x0": "sample"},
            DType: {"float": "float32", "half": "float16", "fp16": "float16", "bf16": "bfloat16"}}


def to_enum(cls, value, what):
    """An enum member from a member, its int value or its name (case-insensitive)."""
    if isinstance(value, str):
        name = _ALIASES.get(cls, {}).get(value.lower(), value).upper()
        if name in cls.__members__:
            return cls[name]
        raise InvalidArgument("%s: unknown value %r; expected one of %s" % (
            what, value, ", ".join(repr(m.lower()) for m in cls.__members__)))
    try:
        return cls(value)
    except ValueError:
        raise InvalidArgument("%s: unknown value %r" % (what, value)) from None


def map_tau(fn, handle, tau):
    """fn(handle, t) for a float tau, or elementwise over an array of tau (same shape)."""
    if np.ndim(tau) == 0:
        return fn(handle, tau)
    tau = np.asarray(tau, dtype=np.float64)
    return np.array([fn(handle, t) for t in tau.flat]).reshape(tau.shape)


def inplace_array(x, what):
    """The float32 C-contiguous writable ndarray behind `x`, sharing its memory.

    Arrays updated in place are never copied, so anything else is refused: converting
    would update the copy and leave the caller's array unchanged. Torch CPU tensors are
    accepted through ``.numpy()``, which shares their memory.
    """
    a = x.numpy() if not isinstance(x, np.ndarray) and hasattr(x, "numpy") else x
    if not isinstance(a, np.ndarray):
        raise TypeError("%s must be a numpy array (float32, C-contiguous) or a torch CPU "
                        "tensor, not %s" % (what, type(x).__name__))
    if a.dtype != np.float32:
        raise TypeError("%s is updated in place, so it must be float32, not %s; convert it "
                        "once with np.ascontiguousarray(x, dtype=np.float32)" % (what, a.dtype))
    if not a.flags.c_contiguous:
        raise ValueError("%s is updated in place, so it must be C-contiguous; copy it once "
                         "with np.ascontiguousarray(x)" % what)
    if not a.flags.writeable:
        raise ValueError("%s is updated in place, but it is read-only" % what)
    return a


def input_array(x, dtype=np.float32):
    """`x` as a C-contiguous array of `dtype`: shared when it already is one, else copied once."""
    return np.ascontiguousarray(x, dtype=dtype)


class Handle:
    """Owns one reference to a C object; released by close(), `with`, or garbage collection."""

    _free = None  # the deissn_*_free function, set by subclasses
    _ptr = None

    def __init__(self):
        raise TypeError("%s objects are made by its class methods" % type(self).__name__)

    @classmethod
    def _wrap(cls, ptr, keep=()):
        self = object.__new__(cls)
        self._ptr = ptr
        # Python objects the C object refers to (callbacks) or that users expect to stay
        # reachable from it (its schedule and table), in addition to the C refcounts.
        self._keep = keep
        return self

    @property
    def _handle(self):
        if not self._ptr:
            raise InvalidArgument("this %s is closed" % type(self).__name__)
        return c_void_p(self._ptr)

    @property
    def closed(self):
        """True after close()."""
        return not self._ptr

    def close(self):
        """Release the C object now (objects that depend on it keep it alive). Idempotent."""
        ptr, self._ptr = self._ptr, None
        if ptr:
            type(self)._free(ptr)
        self._keep = ()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()
