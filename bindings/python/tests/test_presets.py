"""deissn.preset(): the library's named configurations, usable as keyword arguments."""
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
        skw, pkw = deissn.preset(name, 8)
        want = deissn.Sampler(deissn.Schedule(noise="squaredcos_cap_v2", **skw), table, **pkw)
        got = deissn.Sampler.preset(name, 8, table, noise="squaredcos_cap_v2")
        assert got.coeffs() == want.coeffs()
        assert got.schedule.fingerprint == want.schedule.fingerprint


def test_bad_preset_and_steps_raise():
    with pytest.raises(deissn.InvalidArgument):
        deissn.preset("fastest", 10)
    with pytest.raises(deissn.InvalidArgument, match="nfe"):
        deissn.preset("best", 0)
