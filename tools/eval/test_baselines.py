"""Tests of the baseline samplers (tools/eval/baselines.py): DPM-Solver++ and UniPC.

    /usr/bin/python3 -m pytest -q tools/eval/test_baselines.py    (or: make check)
"""
import math
import os
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import baselines as B  # noqa: E402
from baselines import deissn  # noqa: E402


@pytest.fixture(scope="module")
def vp_linear():
    return B.VP(noise="linear")


@pytest.fixture(scope="module")
def vp_cont():
    return B.VP(noise="continuous_vp")


def noise(n, d, seed=0):
    return torch.from_numpy(deissn.noise(seed, n, (d,))).to(torch.float64)


@pytest.mark.parametrize("tau_end", [0.0, 1e-3])
@pytest.mark.parametrize("spacing", ["quadratic", "logsnr"])
def test_dpm_order1_is_ddim(vp_linear, tau_end, spacing):
    """DPM-Solver++ of order 1 is DDIM: the library's order-0 DEIS without a table on the
    same grid agrees to float32 rounding."""
    f = B.gaussian_eps_fn(vp_linear)
    x = noise(8, 16)
    if spacing == "logsnr":
        g = B.grid_logsnr(vp_linear, 10, tau_end)
    else:
        g = B.grid_from_schedule(deissn.Schedule(spacing="quadratic", steps=10, tau_end=tau_end))
    a = B.dpm_solver_pp(f, x, g, vp_linear, order=1)
    b = B.deis(f, x, g, order=0)
    assert (a - b).abs().max().item() < 2e-6 * a.abs().max().item()


def test_deis_leaves_its_input_alone(vp_linear):
    """deis() samples from a copy: a float32 x (whose numpy view needs no conversion) and a
    float64 x are unchanged afterwards, and both give the same sample."""
    f = B.gaussian_eps_fn(vp_linear)
    g = B.grid_logsnr(vp_linear, 5, 1e-3)
    x64 = noise(4, 8)
    x32 = x64.to(torch.float32)
    kept32, kept64 = x32.clone(), x64.clone()
    a = B.deis(f, x32, g, order=2)
    b = B.deis(f, x64, g, order=2)
    assert torch.equal(x32, kept32)
    assert torch.equal(x64, kept64)
    assert torch.equal(a, b)


def test_unipc_order1_without_corrector_is_ddim(vp_linear):
    f = B.gaussian_eps_fn(vp_linear)
    x = noise(4, 8)
    g = B.grid_logsnr(vp_linear, 7, 1e-3)
    a = B.unipc(f, x, g, vp_linear, order=1, use_corrector=False)
    b = B.ddim(f, x, g, vp_linear)
    assert (a - b).abs().max().item() < 1e-12


def test_final_step_to_zero_is_x0_prediction(vp_linear):
    """With tau_end = 0, lambda = inf: the last step is x = x0_pred for both samplers."""
    f = B.gaussian_eps_fn(vp_linear)
    x = noise(4, 8)
    g = B.grid_from_schedule(deissn.Schedule(spacing="quadratic", steps=8, tau_end=0.0))
    for run in (lambda gg: B.dpm_solver_pp(f, x, gg, vp_linear, order=3,
                                          lower_order_final=False),
                lambda gg: B.unipc(f, x, gg, vp_linear, order=3, lower_order_final=False)):
        assert torch.isfinite(run(g)).all()
    # DPM-Solver++: the same run stopped one step early, then the x0 prediction
    xs = B.dpm_solver_pp(f, x, g[:-1], vp_linear, order=3, lower_order_final=False)
    want = B.final_denoise(vp_linear, f, xs, g[-2])
    got = B.dpm_solver_pp(f, x, g, vp_linear, order=3, lower_order_final=False)
    assert (got - want).abs().max().item() < 1e-12


def slopes(errs, ns):
    return [math.log(errs[i] / errs[i + 1]) / math.log(ns[i + 1] / ns[i])
            for i in range(len(errs) - 1)]


CONVERGENCE = {
    # name: (runner, lowest acceptable slope on the finest pair, highest)
    "dpm++2m": (lambda f, x, g, vp: B.dpm_solver_pp(f, x, g, vp, order=2,
                                                   lower_order_final=False), 1.8, 2.3),
    "dpm++3m": (lambda f, x, g, vp: B.dpm_solver_pp(f, x, g, vp, order=3,
                                                   lower_order_final=False), 2.8, 4.5),
    "dpm++3m-official": (lambda f, x, g, vp: B.dpm_solver_pp(
        f, x, g, vp, order=3, lower_order_final=False, third="official"), 1.8, 2.3),
    "unipc-3": (lambda f, x, g, vp: B.unipc(f, x, g, vp, order=3, lower_order_final=False),
                2.8, 4.5),
    "unipc-2": (lambda f, x, g, vp: B.unipc(f, x, g, vp, order=2, lower_order_final=False),
                2.7, 3.5),
}


@pytest.mark.parametrize("name", list(CONVERGENCE))
def test_convergence_order(vp_cont, name):
    """Global error vs steps on the analytic Gaussian model (continuous VP schedule, logSNR
    grid from 1 to 1e-3) against the exact solution: log-log slope of the finest pair."""
    run, lo, hi = CONVERGENCE[name]
    f = B.gaussian_eps_fn(vp_cont)
    x = noise(1, 8)
    ex = B.gaussian_exact(vp_cont, x, 1e-3)
    ns = [20, 40, 80, 160]
    errs = [(run(f, x, B.grid_logsnr(vp_cont, n, 1e-3), vp_cont) - ex).abs().max().item()
            for n in ns]
    s = slopes(errs, ns)
    print(name, ["%.2e" % e for e in errs], ["%.2f" % v for v in s])
    assert lo <= s[-1] <= hi, (name, errs, s)


def test_dpm3_official_is_second_order_on_a_mixture(vp_cont):
    """The same finding on a non-Gaussian problem (a 1-D two-component mixture), against a
    4000-step third-order run: the published 3M's error falls like h^2, the Taylor 3M's
    like h^3 or faster."""
    gm = B.GaussianMixture([[-1.0], [1.5]], [0.3, 0.5], [0.4, 0.6])
    f = gm.eps_fn(vp_cont)
    x = noise(16, 1)
    ref = B.unipc(f, x, B.grid_logsnr(vp_cont, 4000, 1e-3), vp_cont, order=3,
                  lower_order_final=False)
    ns = [80, 160, 320]
    for third, lo, hi in (("official", 1.7, 2.4), ("taylor", 2.7, 4.8)):
        errs = [(B.dpm_solver_pp(f, x, B.grid_logsnr(vp_cont, n, 1e-3), vp_cont, order=3,
                                 lower_order_final=False, third=third) - ref).abs().max().item()
                for n in ns]
        s = slopes(errs, ns)
        print(third, ["%.2e" % e for e in errs], ["%.2f" % v for v in s])
        assert lo <= s[-1] <= hi, (third, errs, s)


def test_mixture_of_one_is_the_gaussian_model(vp_linear):
    gm = B.GaussianMixture(np.zeros((1, 6)), [0.5])
    f, g = gm.eps_fn(vp_linear), B.gaussian_eps_fn(vp_linear)
    x = noise(3, 6)
    for tau in (0.9, 0.3, 0.01):
        assert (f(x, tau) - g(x, tau)).abs().max().item() < 1e-12


def test_grids(vp_linear):
    g = B.grid_logsnr(vp_linear, 10, 1e-3)
    lam = np.array([vp_linear.lam(t) for t in g])
    assert len(g) == 11 and g[0] == 1.0 and g[-1] == 1e-3
    assert np.allclose(np.diff(lam), (lam[-1] - lam[0]) / 10, rtol=1e-3)
    g0 = B.grid_logsnr(vp_linear, 10, 0.0)
    assert g0[-1] == 0.0 and abs(g0[-2] - 1e-3) < 1e-12
    assert np.allclose(B.grid_time_uniform(vp_linear, 4, 0.0), [1, 0.75, 0.5, 0.25, 0])


def test_bad_arguments(vp_linear):
    f = B.gaussian_eps_fn(vp_linear)
    x = noise(1, 2)
    with pytest.raises(ValueError):
        B.dpm_solver_pp(f, x, [1.0, 0.5, 0.6], vp_linear)
    with pytest.raises(ValueError):
        B.unipc(f, x, [1.0, 0.0], vp_linear, order=4)
    with pytest.raises(ValueError):
        B.unipc(f, x, [1.0, 0.0], vp_linear, variant="bh3")
