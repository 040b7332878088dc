"""deissn.preset(): the library's named configurations, usable as keyword arguments."""
import numpy as np
import pytest

import deissn


def test_reference_is_the_papers_configuration():
    skw, pkw = deissn.preset("reference", 10)
    assert skw["spacing"] == "quadratic" and skw["steps"] == 10 and skw["tau_end"] == 0
    assert pkw == {"order": 3, "lower_order_final": False, "method": "eps", "corrector": False}


@pytest.mark.parametrize("nfe", [5, 10, 20])
def test_best_builds_a_sampler_with_the_requested_steps(nfe):
    skw, pkw = deissn.preset("best", nfe)
    sampler = deissn.Sampler(deissn.Schedule(**skw), **pkw)
    coeffs = sampler.coeffs()
    assert len(coeffs) == nfe
    # the plan follows the preset: the last step's order drops with lower_order_final, and
    # for the data method when it ends at tau = 0
    last_is_0 = pkw["lower_order_final"] or (pkw["method"] == "data" and skw["tau_end"] == 0)
    assert coeffs[-1].order == (0 if last_is_0 else min(pkw["order"], nfe - 1))


def test_sampler_preset_is_the_preset_kwargs():
    table = deissn.NormTable.from_arrays([0.0, 1.0], [0.5, 0.8])
    for name in ("best", "reference"):
        cfg = deissn.preset(name, 8, table, noise="squaredcos_cap_v2")
        want = deissn.Sampler(deissn.Schedule(**cfg.schedule), cfg.table, **cfg.sampler)
        got = deissn.Sampler.preset(name, 8, table, noise="squaredcos_cap_v2")
        assert got.coeffs() == want.coeffs()
        assert got.schedule.fingerprint == want.schedule.fingerprint


def test_bad_preset_and_steps_raise():
    with pytest.raises(deissn.InvalidArgument):
        deissn.preset("fastest", 10)
    with pytest.raises(deissn.InvalidArgument, match="nfe"):
        deissn.preset("best", 0)


def test_preset_is_computed_for_the_noise_schedule():
    # issue #14: BEST at 15 is logsnr ending at tau_end > 0; its tau_min_eval depends on the
    # noise schedule (the C function's answer for the cosine schedule, not the linear one's)
    cos = deissn.preset("best", 15, noise="squaredcos_cap_v2").schedule
    lin = deissn.preset("best", 15).schedule
    assert cos["spacing"] == "logsnr" and cos["noise"] == "squaredcos_cap_v2"
    assert cos["tau_min_eval"] == pytest.approx(0.0057423, abs=1e-6)
    assert lin["tau_min_eval"] == pytest.approx(0.0030187, abs=1e-6)
    s = deissn.Sampler.preset("best", 15, None, noise="squaredcos_cap_v2")
    assert s.schedule.taus[-2] == pytest.approx(cos["tau_min_eval"], rel=1e-12)


def test_the_table_goes_only_where_the_library_says():
    table = deissn.NormTable.from_arrays([0.0, 1.0], [0.5, 0.8])
    for nfe in (5, 6, 8, 10, 15, 20):
        cfg = deissn.preset("best", nfe, table)
        assert cfg.use_table == (cfg.sampler["method"] == "eps")
        assert cfg.table is (table if cfg.use_table else None)
        assert deissn.Sampler.preset("best", nfe, table).table is cfg.table
    assert deissn.preset("reference", 10, table).table is table


def test_logsnr_and_uniform_spacings_work():
    taus = deissn.Schedule(spacing="logsnr", steps=10, tau_end=1e-3).taus
    assert len(taus) == 11 and taus[0] == 1.0 and taus[-1] == 1e-3
    assert np.all(np.diff(taus) < 0)
    np.testing.assert_allclose(deissn.Schedule(spacing="uniform", steps=10).taus,
                               np.linspace(1, 0, 11), atol=1e-15)
