"""deissn: Python bindings (ctypes) for libdeissn, the DEIS / DEIS-SN diffusion sampler.

    import deissn
    schedule = deissn.Schedule(noise="linear", spacing="quadratic", steps=10)
    table = deissn.NormTable.load("cifar10_Ls_score_abs.pt", clip=5)
    sampler = deissn.Sampler(schedule, table, order=3)
    x = deissn.noise(seed=0, n=16, shape=(3, 32, 32))
    x = sampler.sample(deissn.Model.load("model.pt"), x)

    tuned = deissn.tune(model, noise="linear", shape=(3, 32, 32))  # plans for this model
    sampler = deissn.Sampler.preset("tuned", 8, tuned)

The library is found through $DEISSN_LIB, then the build tree this package sits in, then the
system. Every failing call raises a subclass of :class:`deissn.Error`.
"""
from ._common import DType, Method, Noise, Prediction, Preset, Spacing, Time
from ._lib import ABI, lib as _clib
from .calibrate import Calibrator
from .errors import (CallbackError, ConcurrentUseError, Error, FileError, FormatError, InternalError,
                     InvalidArgument, Mismatch, ModelError, NonFinite, OutOfMemory, SizeMismatch,
                     StateError, Unsupported)
from .model import Model
from .sampler import SampleStats, Sampler, StepCoeffs, StepInfo, noise
from .schedule import PresetConfig, Schedule, preset
from .table import NormTable, Plan, TableInfo
from .tune import Reference, tune

# The version of the loaded libdeissn (one source: the library's DEISSN_VERSION_STRING);
# the binding works with any libdeissn.so.ABI that has the functions it needs.
__version__ = _clib.deissn_version_string().decode()

__all__ = [
    "Schedule", "NormTable", "Model", "Sampler", "Calibrator", "StepInfo", "StepCoeffs",
    "SampleStats", "TableInfo", "Plan", "PresetConfig", "Reference", "noise", "preset", "tune",
    "ABI",
    "library_version", "has_torch", "Noise", "Spacing", "Prediction", "Time", "DType", "Method",
    "Preset",
    "Error", "InvalidArgument", "OutOfMemory", "SizeMismatch", "NonFinite", "StateError",
    "FileError", "FormatError", "Unsupported", "ModelError", "CallbackError", "Mismatch",
    "InternalError", "ConcurrentUseError",
]


def library_version():
    """The version string of the loaded libdeissn, e.g. "0.4.0"."""
    return _clib.deissn_version_string().decode()


def has_torch():
    """Whether TorchScript models can be loaded: the torch plug-in (libdeissn-torch.so.1, next
    to libdeissn.so) is there and loads. Answered by the library at run time."""
    return bool(_clib.deissn_has_torch())
