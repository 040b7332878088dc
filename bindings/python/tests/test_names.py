"""Enum names are the library's (deissn_enum_value / deissn_enum_name): canonical names and
aliases alike, in every place a name is taken, and an unknown name is refused with the
library's message listing the names."""
import numpy as np
import pytest

import deissn
from deissn import _common


def test_noise_by_canonical_name_and_alias():
    want = deissn.Schedule(noise=deissn.Noise.SQUAREDCOS_CAP_V2).alpha_bar(0.5)
    for name in ("squaredcos_cap_v2", "cosine", "COSINE", "squaredcos-cap-v2"):
        assert deissn.Schedule(noise=name).alpha_bar(0.5) == want, name
    assert deissn.Schedule(noise="vp").fingerprint == \
        deissn.Schedule(noise="continuous_vp").fingerprint


def test_spacing_aliases():
    # "uniform" is power with its default power 1; "log_snr" is logsnr.
    assert np.array_equal(deissn.Schedule(spacing="uniform").taus,
                          deissn.Schedule(spacing="power", power=1.0).taus)
    assert np.array_equal(deissn.Schedule(spacing="log_snr").taus,
                          deissn.Schedule(spacing="logsnr").taus)


@pytest.mark.parametrize("name, want", [
    ("epsilon", deissn.Prediction.EPSILON), ("eps", deissn.Prediction.EPSILON),
    ("sample", deissn.Prediction.SAMPLE), ("x0", deissn.Prediction.SAMPLE),
    ("v_prediction", deissn.Prediction.V), ("v", deissn.Prediction.V),
])
def test_prediction_names(name, want):
    assert _common.to_enum(deissn.Prediction, name, "prediction") is want
    deissn.Sampler(deissn.Schedule(), prediction=name)


def test_other_enums_take_the_librarys_names():
    assert _common.to_enum(deissn.Method, "x0", "method") is deissn.Method.DATA
    assert _common.to_enum(deissn.Time, "tau1000", "time") is deissn.Time.TAU_1000
    assert _common.to_enum(deissn.DType, "bf16", "dtype") is deissn.DType.BFLOAT16
    assert _common.to_enum(deissn.Preset, "Reference", "preset") is deissn.Preset.REFERENCE
    assert deissn.preset("best", 10) == deissn.preset(deissn.Preset.BEST, 10)


def test_canonical_names_come_from_the_library():
    assert _common.enum_name(deissn.Noise.SQUAREDCOS_CAP_V2) == "squaredcos_cap_v2"
    assert _common.enum_name(deissn.Prediction.V) == "v_prediction"
    # every member of every enum has a name there, and reads back as itself
    for cls in (deissn.Noise, deissn.Spacing, deissn.Method, deissn.Prediction, deissn.Time,
                deissn.DType, deissn.Preset):
        for member in cls:
            assert _common.to_enum(cls, _common.enum_name(member), "x") is member


@pytest.mark.parametrize("make, start", [
    (lambda: deissn.Schedule(noise="cosinus"),
     "Schedule: noise: unknown noise schedule 'cosinus' (known: linear, scaled_linear, "
     "squaredcos_cap_v2,"),
    (lambda: deissn.Schedule(spacing="even"), "Schedule: spacing: unknown spacing 'even' (known: "
     "quadratic,"),
    (lambda: deissn.Sampler(deissn.Schedule(), prediction="noise"),
     "Sampler: prediction: unknown prediction type 'noise' (known: epsilon, sample, v_prediction)"),
    (lambda: deissn.Sampler(deissn.Schedule(), method="ode"), "Sampler: method: unknown method"),
    (lambda: deissn.Model.from_callable(lambda x, t: x, time="seconds"),
     "Model.from_callable: time: unknown time convention 'seconds' (known: model_index,"),
    (lambda: deissn.preset("fastest"), "preset: unknown preset 'fastest' (known: best, reference, tuned)"),
    (lambda: deissn.Sampler.named("dpm", deissn.Schedule()),
     "Sampler.named: deissn_sampler_params_by_name: unknown sampler 'dpm' (known: deis-sn,"),
])
def test_unknown_names_raise_the_librarys_message(make, start):
    with pytest.raises(deissn.InvalidArgument) as e:
        make()
    assert str(e.value).startswith(start), str(e.value)


def test_samplers_by_name():
    schedule = deissn.Schedule(steps=6)
    table = deissn.NormTable.from_arrays([0.0, 1.0], [0.5, 0.9])
    ddim = deissn.Sampler.named("ddim", schedule)
    assert all(c.order == 0 for c in ddim.coeffs())
    assert ddim.coeffs() == deissn.Sampler(schedule, order=0).coeffs()
    assert deissn.Sampler.named("deis-sn", schedule, table).coeffs() == \
        deissn.Sampler(schedule, table).coeffs()
    assert deissn.Sampler.named("x0-corrector", schedule).coeffs() == \
        deissn.Sampler(schedule, method="data", corrector=True).coeffs()
    with pytest.raises(deissn.InvalidArgument, match="'deis-sn' needs a table"):
        deissn.Sampler.named("deis-sn", schedule)
    with pytest.raises(deissn.InvalidArgument, match="'ddim' does not use a table"):
        deissn.Sampler.named("ddim", schedule, table)
