"""Models: TorchScript files run by the library, or Python callables."""
import os
from ctypes import byref, c_void_p

import numpy as np

from . import _lib
from ._common import DType, Handle, Time, callback, moved_argument, to_enum
from ._lib import lib


def _params(where, time, device=None, dtype=DType.FLOAT32, threads=0, backend=None):
    p = _lib.default_params(_lib.ModelParams)
    p.time_convention = to_enum(Time, time, "%s: time" % where)
    p.backend = backend
    p.device = device
    p.dtype = to_enum(DType, dtype, "%s: dtype" % where)
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

    Made by :meth:`load` (a model file, run inside the library by a backend plug-in:
    TorchScript by libdeissn-torch.so) or :meth:`from_callable` (a Python function). What the
    model outputs is not the model's business but the sampler's: ``Sampler(...,
    prediction=...)``. A loaded model may be shared by threads.
    """

    _free = lib.deissn_model_free
    _callback = None

    @classmethod
    def load(cls, path, device="cpu", *, time="model_index", threads=0, dtype="float32",
             backend=None, **moved):
        """Load a model file through a backend plug-in; the default, "torch", reads a
        TorchScript file whose ``forward(x, t)`` takes x ``[B, ...]`` and t ``[B]``.

        device:  "cpu", "cuda" or "cuda:N".
        time:    its time argument: "model_index" (tau*T - 1), "tau", "tau_1000", "sigma".
        threads: libtorch intra-op threads; 0 leaves libtorch's setting alone (which is
                 process-global: see deissn_model_params in the header).
        dtype:   "float32", "float16" or "bfloat16", the precision it runs in.
        backend: the plug-in (libdeissn-NAME.so.1, found next to libdeissn.so); None: "torch".
        Raises :class:`FileError`, :class:`ModelError`, or :class:`Unsupported` (the plug-in
        is absent or cannot be loaded: :func:`deissn.has_torch` says so beforehand; a device
        it cannot use). ``prediction=`` is now the sampler's: a TypeError says so.
        """
        moved_argument("Model.load", moved)
        p = _params("Model.load", time, device, dtype, threads, backend)
        out = c_void_p()
        lib.deissn_model_load(byref(out), os.fsencode(path), byref(p))
        return cls._wrap(out.value)

    @classmethod
    def from_callable(cls, fn, *, time="model_index", **moved):
        """Wrap ``fn(x, t) -> prediction`` as a model (what the prediction is, the sampler's
        `prediction` says; ``prediction=`` here raises a TypeError saying so).

        `x` is a read-only float32 array of the batch's shape that is valid only during the
        call (copy it to keep it); `t` is a float in the `time` convention. The result may
        be any array-like (a torch tensor too) of x's shape; it is copied into the library's
        buffer as float32. An exception raised by `fn` stops the sampling and is re-raised
        by :meth:`Sampler.sample`.
        """
        moved_argument("Model.from_callable", moved)
        p = _params("Model.from_callable", time)
        cb = _Callback(fn)
        out = c_void_p()
        lib.deissn_model_from_callback(byref(out), cb.thunk, None, byref(p))
        model = cls._wrap(out.value, keep=(cb,))  # the thunk must outlive the C model
        model._callback = cb
        return model

    def __repr__(self):
        kind = "callable" if self._callback else "file"
        return "<deissn.Model %s%s>" % (kind, " (closed)" if self.closed else "")
