"""Models: TorchScript files run by the library, or Python callables."""
import os
from ctypes import byref, c_void_p

import numpy as np

from . import _lib
from ._common import DType, Handle, Prediction, Time, callback, to_enum
from ._lib import lib


def _params(prediction, time, device=None, dtype=DType.FLOAT32, threads=0):
    p = _lib.default_params(_lib.ModelParams)
    p.prediction = to_enum(Prediction, prediction, "prediction")
    p.time_convention = to_enum(Time, time, "time")
    p.device = device.encode() if device else None
    p.dtype = to_enum(DType, dtype, "dtype")
    p.num_threads = threads
    return p


class _Callback:
    """The C-callable side of a Python model. It holds no reference to the Model, so the
    Model's finaliser is not part of a reference cycle. What `fn` raises is kept by the
    :class:`CallbackScope` of the sampling that called it, on that thread."""

    def __init__(self, fn):
        self.fn = fn
        self.thunk = _lib.MODEL_FN(callback(self.call))

    def call(self, user, x, shape, ndim, t, out):
        shp = tuple(shape[:ndim])
        xa = np.ctypeslib.as_array(x, shape=shp)
        xa.flags.writeable = False  # the sampler's state: the model must not change it
        res = np.asarray(self.fn(xa, t))
        if res.shape != shp:
            raise ValueError("the model returned shape %s for an input of shape %s"
                             % (res.shape, shp))
        np.ctypeslib.as_array(out, shape=shp)[...] = res
        return 0


class Model(Handle):
    """Something that maps (x, t) to a prediction, for :meth:`Sampler.sample`.

    Made by :meth:`load` (a TorchScript file, run by libtorch inside the library) or
    :meth:`from_callable` (a Python function). A loaded model may be shared by threads.
    """

    _free = lib.deissn_model_free
    _callback = None

    @classmethod
    def load(cls, path, device="cpu", prediction="epsilon", time="model_index", threads=0,
             dtype="float32"):
        """Load a TorchScript model whose ``forward(x, t)`` takes x ``[B, ...]`` and t ``[B]``.

        device:     "cpu", "cuda" or "cuda:N".
        prediction: what the model outputs: "epsilon", "sample" (x0) or "v".
        time:       its time argument: "model_index" (tau*T - 1), "tau", "tau_1000", "sigma".
        threads:    libtorch intra-op threads; 0 = libtorch's default.
        dtype:      "float32", "float16" or "bfloat16", the precision it runs in.
        Raises :class:`FileError`, :class:`ModelError`, or :class:`Unsupported` (a library
        built without libtorch, or a device it cannot use).
        """
        p = _params(prediction, time, device, dtype, threads)
        out = c_void_p()
        lib.deissn_model_load(byref(out), os.fsencode(path), byref(p))
        return cls._wrap(out.value)

    @classmethod
    def from_callable(cls, fn, prediction="epsilon", time="model_index"):
        """Wrap ``fn(x, t) -> prediction`` as a model.

        `x` is a read-only float32 array of the batch's shape that is valid only during the
        call (copy it to keep it); `t` is a float in the `time` convention. The result may
        be any array-like (a torch tensor too) of x's shape; it is copied into the library's
        buffer as float32. An exception raised by `fn` stops the sampling and is re-raised
        by :meth:`Sampler.sample`.
        """
        cb = _Callback(fn)
        p = _params(prediction, time)
        out = c_void_p()
        lib.deissn_model_from_callback(byref(out), cb.thunk, None, byref(p))
        model = cls._wrap(out.value, keep=(cb,))  # the thunk must outlive the C model
        model._callback = cb
        return model

    def __repr__(self):
        kind = "callable" if self._callback else "torchscript"
        return "<deissn.Model %s%s>" % (kind, " (closed)" if self.closed else "")
