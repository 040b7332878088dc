"""deissn: Python bindings (ctypes) for libdeissn, the DEIS / DEIS-SN diffusion sampler.

    import deissn
    schedule = deissn.Schedule(noise="linear", spacing="quadratic", steps=10)
    table = deissn.NormTable.load("cifar10_Ls_score_abs.pt", pt_clip=5)
    sampler = deissn.Sampler(schedule, table, order=3)
    x = deissn.noise(seed=0, n=16, shape=(3, 32, 32))
    x = sampler.sample(deissn.Model.load("model.pt"), x)

The library is found through $DEISSN_LIB, then the build tree this package sits in, then the
system. Every failing call raises a subclass of :class:`deissn.Error`.
"""
from ._common import DType, Method, Noise, Prediction, Spacing, Time
from ._lib import SONAME_MAJOR, lib as _clib
from .calibrate import Calibrator
from .errors import (CallbackError, ConcurrentUseError, Error, FileError, FormatError, InternalError,
                     InvalidArgument, Mismatch, ModelError, NonFinite, OutOfMemory, SizeMismatch,
                     StateError, Unsupported)
from .model import Model
from .sampler import Sampler, StepCoeffs, StepInfo, noise
from .schedule import Schedule, preset
from .table import NormTable

# The version of the loaded libdeissn (one source: the library's DEISSN_VERSION_STRING);
# the binding works with any libdeissn.so.SONAME_MAJOR that has the functions it needs.
__version__ = _clib.deissn_version_string().decode()

__all__ = [
    "Schedule", "NormTable", "Model", "Sampler", "Calibrator", "StepInfo", "StepCoeffs", "noise",
    "preset",
    "library_version", "has_torch", "Noise", "Spacing", "Prediction", "Time", "DType", "Method",
    "Error", "InvalidArgument", "OutOfMemory", "SizeMismatch", "NonFinite", "StateError",
    "FileError", "FormatError", "Unsupported", "ModelError", "CallbackError", "Mismatch",
    "InternalError", "ConcurrentUseError",
]


def library_version():
    """The version string of the loaded libdeissn, e.g. "0.2.0"."""
    return _clib.deissn_version_string().decode()


def has_torch():
    """Whether the loaded libdeissn can load TorchScript models."""
    return bool(_clib.deissn_has_torch())
