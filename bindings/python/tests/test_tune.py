"""deissn.tune(): plans learned on an analytic model, kept by the table, used by "tuned"."""
import dataclasses

import numpy as np
import pytest

import deissn

S = 0.5  # the data: N(0, S^2) per element, so the exact eps and ODE solution are known
LINEAR = deissn.Schedule(noise="linear")


def exact_eps(x, tau):
    abar = float(LINEAR.alpha_bar(tau))
    sigma2 = 1.0 - abar
    return np.sqrt(sigma2) * x / (abar * S * S + sigma2)


def exact_solution(x1):
    """The probability-flow ODE from tau = 1 to 0 scales x by S / sd(x at tau = 1)."""
    abar = float(LINEAR.alpha_bar(1.0))
    return x1 * S / np.sqrt(abar * S * S + 1.0 - abar)


MODEL = deissn.Model.from_callable(exact_eps, time="tau")
SMALL = dict(shape=(2, 3), nfe=(3, 4), grid_steps=40, fit_samples=8, holdout_samples=8, batch=8)


@pytest.fixture(scope="module")
def tuned():
    return deissn.tune(MODEL, noise="linear", **SMALL)


def test_tune_returns_a_table_with_a_plan_per_nfe(tuned):
    plans = tuned.plans
    assert [p.nfe for p in plans] == [3, 4]
    for p in plans:
        assert isinstance(p, deissn.Plan) and len(p.taus) == p.nfe and p.taus[0] == 1.0
        assert all(a > b for a, b in zip(p.taus, p.taus[1:] + (p.tau_end,)))
        assert p.samples == 8 and 0 <= p.error_low <= p.error <= p.error_high
        assert p.error < p.best_error  # tuned on this model: better than the fixed preset
    assert tuned.info.has_sums and len(tuned) == 40  # the reference solves calibrated it


def test_plans_round_trip_through_save_and_load(tuned, tmp_path):
    tuned.save(tmp_path / "t.dsn")
    loaded = deissn.NormTable.load(tmp_path / "t.dsn")
    assert loaded.plans == tuned.plans
    assert loaded.with_plans([]).plans == [] and loaded.plans == tuned.plans
    one = loaded.copy(plans=tuned.plans[1:])
    assert one.plans == tuned.plans[1:]


def test_sampler_preset_tuned_samples_with_the_plan(tuned):
    plan = tuned.plans[1]
    sampler = deissn.Sampler.preset("tuned", 4, tuned)
    assert sampler.steps == 4
    assert sampler.table is (None if plan.method == deissn.Method.LEARNED else tuned)
    np.testing.assert_array_equal(sampler.schedule.taus, plan.taus + (plan.tau_end,))
    x = deissn.noise(123, 64, (2, 3))
    want = exact_solution(x.astype(np.float64))
    sampler.sample(MODEL, x)
    rmse = np.sqrt(np.mean((x - want) ** 2))
    # plan.error is measured against the tuner's reference solve, itself ~1e-4 from the exact
    # solution here: a learned plan can match the reference far closer than that
    assert rmse < max(5 * plan.error_high, 1e-3) and rmse < plan.best_error / 10, (rmse, plan)
    # the nearest tuned NFE below; BEST below the plans
    assert deissn.Sampler.preset("tuned", 9, tuned).steps == 4
    below = deissn.preset("tuned", 2, tuned)
    assert below.schedule["steps"] == 2 and below == deissn.preset("best", 2, tuned)


def test_a_plan_without_the_table_gets_none(tuned):
    plan = dataclasses.replace(tuned.plans[0], method=deissn.Method.DATA, uses_table=False,
                               order=1, corrector=False, weights=())
    table = tuned.with_plans([plan])
    assert table.plans == [plan]
    cfg = deissn.preset("tuned", 3, table)
    assert cfg.use_table is False and cfg.table is None and cfg.sampler["method"] == "data"
    assert deissn.Sampler.preset("tuned", 3, table).table is None
    eps = dataclasses.replace(plan, method=deissn.Method.EPS, uses_table=True)
    assert deissn.Sampler.preset("tuned", 3, tuned.with_plans([eps])).table is not None


def test_tuned_refuses_plans_of_another_noise_schedule(tuned):
    with pytest.raises(deissn.Mismatch):
        deissn.Sampler.preset("tuned", 3, tuned, noise="squaredcos_cap_v2")
    s = deissn.Sampler.preset("tuned", 3, tuned, noise="squaredcos_cap_v2",
                              allow_table_mismatch=True)
    assert s.steps == 3
    # (the header says DEISSN_E_INVALID_ARG; the library answers DEISSN_E_MISMATCH, as
    # deissn_sampler_create does for the same fault)
    with pytest.raises(deissn.Mismatch, match="another noise schedule"):
        deissn.tune(MODEL, noise="squaredcos_cap_v2", table=tuned, **SMALL)


def test_tune_with_a_table_keeps_its_knots(tuned):
    table = deissn.NormTable.from_arrays([0.0, 1.0], [0.5, 0.9], fingerprint=LINEAR.fingerprint)
    out = deissn.tune(MODEL, noise=dict(noise="linear"), table=table, **dict(SMALL, nfe=3))
    assert [p.nfe for p in out.plans] == [3] and out.knots[1].tolist() == [0.5, 0.9]


def test_bad_plans_and_arguments_raise(tuned):
    plan = tuned.plans[0]
    bad = deissn.Plan(**dict(vars(plan), taus=plan.taus[:-1]))
    with pytest.raises(deissn.InvalidArgument, match=r"plans\[0\]"):
        tuned.with_plans([bad])
    with pytest.raises(deissn.InvalidArgument):  # two plans for one nfe
        tuned.with_plans([plan, plan])
    with pytest.raises(deissn.InvalidArgument):
        deissn.tune(MODEL, **dict(SMALL, nfe=(5, 3)))
    with pytest.raises(deissn.InvalidArgument, match="nfe"):
        deissn.tune(MODEL, **dict(SMALL, nfe=(3, 4, 5)))


def test_progress_and_model_exceptions_reach_the_caller():
    calls = []
    deissn.tune(MODEL, progress=lambda done, total: calls.append((done, total)),
                **dict(SMALL, nfe=3))
    assert calls and calls[-1][0] <= calls[-1][1]

    class Stop(Exception):
        pass

    def stop(done, total):
        raise Stop()
    with pytest.raises(Stop):
        deissn.tune(MODEL, progress=stop, **SMALL)

    def interrupt(done, total):
        if done > 3:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        deissn.tune(MODEL, progress=interrupt, **SMALL)


# ---- Reference: the run split across processes -------------------------------------------

RUN = dict(grid_steps=40, fit_samples=8, holdout_samples=8, batch=4)


def test_parts_merged_are_the_whole_solve_and_tune_to_its_plans(tuned):
    whole = deissn.Reference.solve(MODEL, shape=(2, 3), **RUN)
    assert whole.range == (0, 16, 16)
    parts = [deissn.Reference.solve(MODEL, shape=(2, 3), first=f, count=c, **RUN)
             for f, c in ((8, None), (0, 4), (4, 4))]
    assert [p.range for p in parts] == [(8, 8, 16), (0, 4, 16), (4, 4, 16)]
    # as workers would: bytes over the wire, merged in any order
    merged = deissn.Reference.merge(deissn.Reference.from_bytes(bytearray(p.to_bytes()))
                                    for p in parts)
    assert merged.to_bytes() == whole.to_bytes()
    run = dict(RUN, batch=8)  # batch only shapes the solves
    table = deissn.tune(MODEL, nfe=(3, 4), reference=merged, **run)
    assert table.plans == deissn.tune(MODEL, shape=(2, 3), nfe=(3, 4), **RUN).plans
    assert table.plans == tuned.plans  # SMALL is the same run with batch 8


def test_reference_errors():
    part = deissn.Reference.solve(MODEL, shape=(2, 3), count=4, **RUN)
    with pytest.raises(deissn.InvalidArgument, match="merge every part"):
        deissn.tune(MODEL, nfe=3, reference=part, **RUN)
    with pytest.raises(deissn.InvalidArgument, match="count is 0"):
        deissn.Reference.solve(MODEL, shape=(2, 3), count=0, **RUN)
    with pytest.raises(deissn.InvalidArgument, match="0..15"):
        deissn.Reference.solve(MODEL, shape=(2, 3), first=16, **RUN)
    with pytest.raises(deissn.Mismatch, match="overlap"):
        deissn.Reference.merge([part, part])
    with pytest.raises(TypeError, match="parts\\[1\\]"):
        deissn.Reference.merge([part, b"bytes"])
    with pytest.raises(deissn.FormatError, match="not a libdeissn tuning reference"):
        deissn.Reference.from_bytes(b"PK\x03\x04" + bytes(200))
    data = part.to_bytes()
    with pytest.raises(deissn.FormatError, match="truncated"):
        deissn.Reference.from_bytes(data[:-1])
    whole = deissn.Reference.merge([part, deissn.Reference.solve(MODEL, shape=(2, 3), first=4,
                                                                 **RUN)])
    with pytest.raises(deissn.Mismatch, match="params->seed"):
        deissn.tune(MODEL, nfe=3, reference=whole, **dict(RUN, seed=1))
