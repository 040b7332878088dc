"""Method "learned": a tuned plan's linear multistep step, its weights given to the sampler,
kept by a table's plan (save/load, copy) and used by the "tuned" preset."""
import dataclasses

import numpy as np
import pytest

import deissn
from conftest import gaussian_eps

LINEAR = deissn.Schedule(noise="linear")
MODEL = deissn.Model.from_callable(lambda x, tau: gaussian_eps(LINEAR, tau, x), time="tau")
STEPS = 5


def ddim_weights(schedule):
    """The weights that make the learned step DDIM's: x_to = (alpha_to / alpha_from) x +
    (sigma_to - alpha_to / alpha_from sigma_from) eps, no older eps."""
    ab = schedule.alpha_bar(schedule.taus)
    a, s = np.sqrt(ab), np.sqrt(1.0 - ab)
    w = np.zeros((schedule.steps, 6))
    w[:, 0] = a[1:] / a[:-1]
    w[:, 1] = s[1:] - w[:, 0] * s[:-1]
    return w


def ddim(schedule, x):
    return deissn.Sampler(schedule, order=0).sample(MODEL, x)


@pytest.fixture(scope="module")
def schedule():
    return deissn.Schedule(noise="linear", spacing="quadratic", steps=STEPS, tau_end=0.002)


@pytest.fixture(scope="module")
def plan(schedule):
    taus = schedule.taus
    return deissn.Plan(nfe=STEPS, taus=tuple(taus[:-1]), tau_end=float(taus[-1]),
                       method=deissn.Method.LEARNED, order=0, corrector=False,
                       lower_order_final=False, uses_table=False, samples=8, error=0.01,
                       error_low=0.005, error_high=0.02, best_error=0.1,
                       weights=tuple(map(tuple, ddim_weights(schedule))))


@pytest.fixture(scope="module")
def table(plan):
    base = deissn.NormTable.from_arrays([0.0, 1.0], [0.8, 1.0], fingerprint=LINEAR.fingerprint)
    return base.with_plans([plan])


def test_ddim_weights_give_ddims_samples(schedule):
    x = deissn.noise(7, 32, (2, 3))
    want = ddim(schedule, x.copy())
    got = deissn.Sampler(schedule, method="learned", weights=ddim_weights(schedule)).sample(
        MODEL, x)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def test_older_eps_terms_follow_the_formula(schedule):
    """Step i: x = w[0] x + w[1] eps_i + ... + w[5] eps_{i-4}, by the step API against numpy."""
    w = ddim_weights(schedule)
    w[:, 2:] = np.random.default_rng(0).uniform(-0.05, 0.05, (STEPS, 4))
    for i in range(min(STEPS, 4)):  # step i has x and i + 1 eps terms
        w[i, i + 2:] = 0
    sampler = deissn.Sampler(schedule, method="learned", weights=w)
    x = deissn.noise(3, 4, (2, 3))
    want, history = x.astype(np.float64), []
    for t in sampler:
        eps = gaussian_eps(LINEAR, t.tau, x)
        history.insert(0, eps.astype(np.float64))
        want = w[t.step, 0] * want + sum(w[t.step, 1 + j] * e for j, e in enumerate(history[:5]))
        sampler.step(x, eps)
        want = want.astype(np.float32).astype(np.float64)  # x is float32 between steps
    np.testing.assert_allclose(x, want, rtol=1e-5, atol=1e-6)
    c = sampler.coeffs()[3]
    assert c.psi == w[3, 0] and c.c == tuple(w[3, 1:5])  # step 3 uses 4 eps


def test_the_weights_are_copied_at_create(schedule):
    w = ddim_weights(schedule)
    sampler = deissn.Sampler(schedule, method="learned", weights=w)
    w[:] = np.nan  # the library's copy is what samples
    x = deissn.noise(7, 8, (2, 3))
    np.testing.assert_allclose(sampler.sample(MODEL, x.copy()), ddim(schedule, x), atol=1e-6)


def test_bad_weights_are_refused_by_name(schedule):
    w = ddim_weights(schedule)
    nan = w.copy()
    nan[2, 4] = np.nan
    cases = [(nan, r"Sampler: weights\[2\]\[4\] is nan"),
             (w[:-1], r"Sampler: weights has shape \(4, 6\).*\(5, 6\)"),
             (w[:, :5], r"Sampler: weights has shape \(5, 5\)"),
             (w.ravel(), r"Sampler: weights has shape \(30,\)"),
             ([["a"] * 6] * STEPS, "Sampler: weights must be 5 rows of 6 numbers"),
             (None, "method 'learned' needs weights")]
    for bad, message in cases:
        with pytest.raises(deissn.InvalidArgument, match=message):
            deissn.Sampler(schedule, method="learned", weights=bad)
    with pytest.raises(deissn.InvalidArgument, match="only method 'learned' takes weights"):
        deissn.Sampler(schedule, method="eps", weights=w)
    table = deissn.NormTable.from_arrays([0.0, 1.0], [1.0, 1.0])
    with pytest.raises(deissn.InvalidArgument, match="takes no table"):
        deissn.Sampler(schedule, table, method="learned", weights=w)


def test_a_learned_plan_round_trips_bit_for_bit(table, plan, tmp_path):
    assert table.plans == [plan]  # exact: the floats are the ones given
    table.save(tmp_path / "t.dsn")
    loaded = deissn.NormTable.load(tmp_path / "t.dsn")
    assert loaded.plans == [plan]
    got = np.array(loaded.plans[0].weights)
    assert got.tobytes() == np.array(plan.weights).tobytes()
    assert loaded.copy(plans=loaded.plans).plans == [plan]
    loaded.save(tmp_path / "again.dsn")
    assert (tmp_path / "again.dsn").read_bytes() == (tmp_path / "t.dsn").read_bytes()
    # a plan of another method has no weights, and a table mixing both keeps each as it is
    other = dataclasses.replace(plan, nfe=3, taus=plan.taus[:3], method=deissn.Method.EPS,
                                weights=())
    mixed = table.with_plans([other, plan])
    mixed.save(tmp_path / "mixed.dsn")
    assert deissn.NormTable.load(tmp_path / "mixed.dsn").plans == [other, plan]


def test_tuned_preset_samples_with_the_learned_plan(table, plan, schedule):
    cfg = deissn.preset("tuned", STEPS, table)
    assert cfg.sampler["method"] == "learned" and cfg.table is None and not cfg.use_table
    assert cfg.sampler["weights"].tobytes() == np.array(plan.weights).tobytes()
    sampler = deissn.Sampler.preset("tuned", STEPS, table)
    assert sampler.table is None and sampler.steps == STEPS
    np.testing.assert_array_equal(sampler.schedule.taus, schedule.taus)
    x = deissn.noise(11, 32, (2, 3))
    want = ddim(schedule, x.copy())
    np.testing.assert_allclose(sampler.sample(MODEL, x), want, rtol=0, atol=1e-6)
    # the weights are the preset's own copy: the table may go
    own = deissn.preset("tuned", 9, table.copy())  # the nearest plan below
    assert own.schedule["taus"].size == STEPS
    deissn.Sampler(deissn.Schedule(**own.schedule), own.table, **own.sampler)


def test_bad_plan_weights_are_refused_by_name(plan, table):
    nan = [list(r) for r in plan.weights]
    nan[1][0] = float("inf")
    cases = [(dataclasses.replace(plan, weights=tuple(map(tuple, nan))),
              r"plans\[0\]: weights\[1\]\[0\] is inf"),
             (dataclasses.replace(plan, weights=plan.weights[1:]),
              r"plans\[0\]: weights has shape \(4, 6\)"),
             (dataclasses.replace(plan, weights=()), r"plans\[0\]: weights has shape \(0,\)"),
             (dataclasses.replace(plan, method=deissn.Method.EPS),
              r"plans\[0\]: weights are given, but method is EPS")]
    for bad, message in cases:
        with pytest.raises(deissn.InvalidArgument, match=message):
            table.with_plans([bad])
    assert table.plans == [plan]  # nothing changed


def test_weights_for_eps_before_step_0_are_refused(schedule):
    w = ddim_weights(schedule)
    w[1, 3] = 0.1  # step 1 has eps_1 and eps_0 only
    with pytest.raises(deissn.InvalidArgument, match="step 1 give weight 3"):
        deissn.Sampler(schedule, method="learned", weights=w)
