"""The same seed gives the same samples through every path: the library's loop with a
TorchScript model, the library's loop with a Python callable, and the Python step loop."""
import numpy as np
import pytest

import deissn
from conftest import gaussian_eps

SEED, N, SHAPE = 1234, 4, (1, 8, 8)


@pytest.fixture(params=[0, 3], ids=["order0", "order3"])
def setup(request):
    schedule = deissn.Schedule(spacing="quadratic", steps=10)
    table = deissn.NormTable.from_arrays([0.0, 0.05, 1.0], [0.55, 0.8, 0.8])
    return schedule, deissn.Sampler(schedule, table, order=request.param)


def callable_model(schedule):
    # t is model time tau*T - 1 (the default convention).
    return deissn.Model.from_callable(lambda x, t: gaussian_eps(schedule, (t + 1) / 1000, x))


def test_callable_equals_step_loop(setup):
    schedule, sampler = setup
    via_c = sampler.sample(callable_model(schedule), deissn.noise(SEED, N, SHAPE))
    x = deissn.noise(SEED, N, SHAPE)
    for t in sampler:
        x = sampler.step(x, gaussian_eps(schedule, t.tau, x))
    assert np.array_equal(via_c, x)  # the same float32 arithmetic: bit for bit


def test_torchscript_equals_callable(setup, torch_model_path):
    schedule, sampler = setup
    steps = []
    x = sampler.sample(deissn.Model.load(torch_model_path), deissn.noise(SEED, N, SHAPE),
                       progress=lambda step, n: steps.append((step, n)))
    assert steps == [(i, 10) for i in range(10)]
    y = sampler.sample(callable_model(schedule), deissn.noise(SEED, N, SHAPE))
    # libtorch does the update on its device with its own kernels: equal to float32 rounding.
    assert np.abs(x - y).max() <= 1e-5 * np.abs(y).max()


def test_predictions_and_time_conventions(setup):
    schedule, sampler = setup
    want = sampler.sample(callable_model(schedule), deissn.noise(SEED, N, SHAPE))

    def x0(x, tau):
        abar = schedule.alpha_bar(tau)
        return (x - np.sqrt(1 - abar) * gaussian_eps(schedule, tau, x)) / np.sqrt(abar)

    def v(x, tau):
        abar = schedule.alpha_bar(tau)
        eps = gaussian_eps(schedule, tau, x)
        return np.sqrt(abar) * eps - np.sqrt(1 - abar) * (x - np.sqrt(1 - abar) * eps) / np.sqrt(abar)

    # What the model predicts is the sampler's parameter, by any of the library's names.
    for prediction, fn in (("x0", x0), ("sample", x0), ("v", v), ("V_Prediction", v)):
        other = deissn.Sampler(schedule, sampler.table, order=max(c.order for c in sampler.coeffs()),
                               prediction=prediction)
        got = other.sample(deissn.Model.from_callable(fn, time="tau"), deissn.noise(SEED, N, SHAPE))
        assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max(), prediction
        # the step loop reads its model_out the same way
        x = deissn.noise(SEED, N, SHAPE)
        for t in other:
            x = other.step(x, fn(x, t.tau))
        assert np.abs(x - want).max() <= 1e-4 * np.abs(want).max(), prediction
