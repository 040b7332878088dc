"""Shared plumbing: the handle base class, the enums (named by the library), and the array
conversion rules."""
import contextlib
import enum
import signal
import threading
from ctypes import byref, c_int32, c_void_p

import numpy as np

from . import _lib
from ._lib import PROGRESS_FN, lib
from .errors import ConcurrentUseError, InvalidArgument


def _named(kind):
    """Class decorator: the deissn_enum kind an enum's names are read with (an attribute set
    after the class is made, as a class body would make it a member)."""
    def mark(cls):
        cls._deissn_kind = kind
        return cls
    return mark


@_named(0)  # DEISSN_ENUM_NOISE
class Noise(enum.IntEnum):
    """How alpha_bar is defined (``deissn_noise``)."""
    LINEAR = 0
    SCALED_LINEAR = 1
    SQUAREDCOS_CAP_V2 = 2
    CUSTOM_BETAS = 3
    CUSTOM_ALPHAS_CUMPROD = 4
    CONTINUOUS_VP = 5


@_named(1)  # DEISSN_ENUM_SPACING
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


@_named(2)  # DEISSN_ENUM_METHOD
class Method(enum.IntEnum):
    """What the sampler extrapolates (``deissn_method``): EPS (DEIS / DEIS-SN) or DATA (x0);
    LEARNED is a linear multistep step whose weights a tuned plan learned on one model."""
    EPS = 0
    DATA = 1
    LEARNED = 2


@_named(3)  # DEISSN_ENUM_PREDICTION
class Prediction(enum.IntEnum):
    """What a model outputs (``deissn_prediction``), a sampler parameter."""
    EPSILON = 0
    SAMPLE = 1
    V = 2


@_named(4)  # DEISSN_ENUM_TIME
class Time(enum.IntEnum):
    """The time argument a model is given (``deissn_time_convention``)."""
    MODEL_INDEX = 0
    TAU = 1
    TAU_1000 = 2
    SIGMA = 3


@_named(5)  # DEISSN_ENUM_DTYPE
class DType(enum.IntEnum):
    """The dtype a model plug-in runs in (``deissn_dtype``)."""
    FLOAT32 = 0
    FLOAT16 = 1
    BFLOAT16 = 2


@_named(6)  # DEISSN_ENUM_PRESET
class Preset(enum.IntEnum):
    """A named sampling configuration (``deissn_preset``)."""
    BEST = 0
    REFERENCE = 1
    TUNED = 2


def to_enum(cls, value, what):
    """An enum member from a member, its int value or a name, which the library reads
    (``deissn_enum_value``: its canonical names and aliases, case and '-'/'_' aside), so that
    one spelling holds in C, the tools and every binding. Raises :class:`InvalidArgument`
    naming `what`, with the library's message listing the names."""
    if isinstance(value, str):
        out = c_int32()
        try:
            lib.deissn_enum_value(cls._deissn_kind, value, byref(out))
        except InvalidArgument as e:
            raise InvalidArgument("%s: %s" % (what, e.message), e.status) from None
        return cls(out.value)
    if isinstance(value, (bool, float)):
        raise TypeError("%s must be a name or a %s, not %s" % (what, cls.__name__,
                                                                type(value).__name__))
    try:
        return cls(value)
    except ValueError:
        raise InvalidArgument("%s: unknown value %r" % (what, value)) from None


def enum_name(member):
    """The library's canonical name of enum member `member` (``deissn_enum_name``)."""
    return lib.deissn_enum_name(type(member)._deissn_kind, int(member)).decode()


def moved_argument(where, kwargs):
    """Refuse the keyword arguments in `kwargs` (the ``**`` of `where`): ``prediction``, which
    ABI 1 made a sampler parameter, with where it went; anything else as Python would."""
    if "prediction" in kwargs:
        raise TypeError("%s() no longer takes prediction: what the model outputs is a sampler "
                        "parameter now, Sampler(schedule, ..., prediction=%r)"
                        % (where, kwargs["prediction"]))
    if kwargs:
        raise TypeError("%s() got an unexpected keyword argument %r" % (where, next(iter(kwargs))))


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


def weights_array(weights, steps, what):
    """`weights`, the weights of a :attr:`Method.LEARNED` sampler or plan with `steps` steps,
    as a C-contiguous float64 array of shape (steps, 6) (row i: step i's DEISSN_PLAN_WEIGHTS
    weights of x and of the newest to the oldest eps), shared when it already is one. The C
    side reads steps * 6 doubles, so anything else is refused: :class:`InvalidArgument`
    naming `what` (the shape, or the first weight that is not finite)."""
    try:
        w = np.ascontiguousarray(weights, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise InvalidArgument("%s must be %d rows of %d numbers: %s"
                              % (what, steps, _lib.PLAN_WEIGHTS, e)) from None
    if w.shape != (steps, _lib.PLAN_WEIGHTS):
        raise InvalidArgument("%s has shape %s; a %d-step learned sampler takes (%d, %d): step "
                              "i's weights of x and of the newest to the oldest eps"
                              % (what, w.shape, steps, steps, _lib.PLAN_WEIGHTS))
    bad = np.argwhere(~np.isfinite(w))
    if bad.size:
        i, j = bad[0]
        # float(): NumPy 2 writes a numpy scalar as np.float64(nan)
        raise InvalidArgument("%s[%d][%d] is %r: weights must be finite"
                              % (what, i, j, float(w[i, j])))
    return w


class Handle:
    """Owns one reference to a C object; released by close(), `with`, or garbage collection.

    Subclasses with ``_exclusive = True`` (samplers, calibrators: "one thread at a time" in
    the header) are used through :meth:`_using`, which holds a non-blocking lock for the call
    and raises :class:`ConcurrentUseError` when another call holds it.
    """

    _free = None  # the deissn_*_free function, set by subclasses
    _ptr = None
    _exclusive = False

    def __init__(self):
        raise TypeError("%s objects are made by its class methods" % type(self).__name__)

    def _adopt(self, ptr, keep=()):
        self._ptr = ptr
        # Python objects the C object refers to (callbacks) or that users expect to stay
        # reachable from it (its schedule and table), in addition to the C refcounts.
        self._keep = keep
        self._lock, self._owner = threading.Lock(), None

    @classmethod
    def _wrap(cls, ptr, keep=()):
        self = object.__new__(cls)
        self._adopt(ptr, keep)
        return self

    @property
    def _handle(self):
        if not self._ptr:
            raise InvalidArgument("this %s is closed" % type(self).__name__)
        return c_void_p(self._ptr)

    @contextlib.contextmanager
    def _using(self):
        """The handle, this object held for the duration (exclusive classes only)."""
        if not self._lock.acquire(blocking=False):
            owner = self._owner
            raise ConcurrentUseError(
                "%s is in use by %s; a %s is used by one thread at a time (make one per "
                "thread)" % (type(self).__name__, "a callback of its own sample()"
                             if owner == threading.get_ident() else "another thread",
                             type(self).__name__))
        try:
            self._owner = threading.get_ident()
            yield self._handle
        finally:
            self._owner = None
            self._lock.release()

    @property
    def closed(self):
        """True after close()."""
        return not self._ptr

    def close(self):
        """Release the C object now (objects that depend on it keep it alive). Idempotent."""
        if self._exclusive and self._ptr:
            with self._using():
                ptr, self._ptr = self._ptr, None
        else:
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


_calls = threading.local()  # .call: the CallbackScope of the library call on this thread


class CallbackScope:
    """A library call that runs Python callbacks (``with CallbackScope() as scope: ...``).

    ctypes cannot carry an exception through C: when a callback raises, it prints "Exception
    ignored" and hands C an uninitialised int. So every callback made by :func:`callback`
    catches BaseException, keeps the first one here and returns 1 (stop); later callbacks
    return 1 at once. A signal handler may raise at any bytecode, even on entering a callback
    before its ``try`` (that is how Ctrl-C was lost), so while the scope is active on the main
    thread each Python signal handler runs inside a wrapper that keeps what it raises here
    (KeyboardInterrupt from the default SIGINT handler) instead. After the call,
    :meth:`reraise` raises the kept exception itself; the library has already undone the
    call's effects (deissn_sample() restores x when a callback fails).
    """

    def __init__(self):
        self.exc = None
        self._handlers = {}

    def keep(self, exc):
        if self.exc is None:
            self.exc = exc

    def _guard(self, handler):
        def guarded(signum, frame):
            try:
                handler(signum, frame)
            except BaseException as e:
                self.keep(e)
        return guarded

    def __enter__(self):
        self._outer = getattr(_calls, "call", None)
        _calls.call = self
        if threading.current_thread() is threading.main_thread():
            for sig in signal.valid_signals():
                try:
                    handler = signal.getsignal(sig)
                except (OSError, ValueError):
                    continue
                if callable(handler):
                    self._handlers[sig] = handler
                    signal.signal(sig, self._guard(handler))
        return self

    def __exit__(self, *exc):
        for sig, handler in self._handlers.items():
            signal.signal(sig, handler)
        self._handlers = {}
        _calls.call = self._outer

    def reraise(self):
        """Raise the exception a callback or signal handler raised, if any."""
        if self.exc is not None:
            exc, self.exc = self.exc, None
            raise exc


def callback(fn):
    """`fn` made safe to call from C inside a :class:`CallbackScope`: it returns what `fn`
    returns, or 1 without calling `fn` once the scope is stopping, or 1 after keeping the
    exception `fn` raised."""
    def thunk(*args):
        scope = getattr(_calls, "call", None)
        if scope is None or scope.exc is not None:
            return 1  # called outside any scope (never, for deissn_sample), or stopping
        try:
            return fn(*args)
        except BaseException as e:
            scope.keep(e)
            return 1
    return thunk


def progress_thunk(progress):
    """A PROGRESS_FN calling ``progress(done, total)`` (if not None) inside a
    :class:`CallbackScope`. A long call always gets one, even without `progress`: it gives
    Python control between steps, so that a signal (Ctrl-C) is handled then even while a
    model (TorchScript) runs in C."""
    def call_progress(user, done, total):
        if progress is not None:
            progress(done, total)
        return 0
    return PROGRESS_FN(callback(call_progress))
