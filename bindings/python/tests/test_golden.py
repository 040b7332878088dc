"""Every case of tests/data/deis_sn_golden.json through the Python binding."""
import numpy as np
import pytest

import deissn
from conftest import gaussian_eps, golden_cases, seed_table

CASES = golden_cases()


def case_id(c):
    return "%s-nfe%d-order%d-%s" % (c["spacing"], c["nfe"], c["order"], c["table"] or "none")


@pytest.fixture(params=CASES, ids=[case_id(c) for c in CASES])
def case(request):
    c = request.param
    table = seed_table(c["table"], c["clip_normalizer_steps"]) if c["table"] else None
    schedule = deissn.Schedule(noise=c["schedule"], spacing=c["spacing"], steps=c["nfe"])
    with deissn.Sampler(schedule, table, order=c["order"]) as sampler:
        yield c, schedule, sampler


def test_coefficients(case):
    c, _, sampler = case
    coeffs = sampler.coeffs()
    assert len(coeffs) == c["nfe"]
    for got, want in zip(coeffs, c["steps"]):
        assert got.tau_from == pytest.approx(want["t_from"], rel=1e-7, abs=1e-12)
        assert got.tau_to == pytest.approx(want["t_to"], rel=1e-7, abs=1e-12)
        assert got.model_t == pytest.approx(want["model_t"], rel=1e-12, abs=1)
        assert got.psi == pytest.approx(want["exact_psi"], rel=1e-6)
        exact = np.array(want["exact_C"])
        assert len(got.c) == len(exact)
        # Higher-order coefficients multiply differences and can be tiny: compare to the
        # step's largest coefficient.
        err = np.abs(np.array(got.c) - exact).max() / np.abs(exact).max()
        assert err <= 1e-9, "step %d: C %s, exact %s" % (got.step, got.c, exact)


def test_trajectory(case):
    c, schedule, sampler = case
    x = np.array(c["x_init"], dtype=np.float32)
    for t, want in zip(sampler, c["exact_trajectory"]):
        x = sampler.step(x, gaussian_eps(schedule, t.tau, x, c["analytic_gaussian_std"]))
        want = np.array(want)
        err = np.abs(x - want).max() / np.abs(want).max()
        assert err <= 1e-6, "step %d: x %s, exact %s" % (t.step, x, want)
    assert sampler.done
