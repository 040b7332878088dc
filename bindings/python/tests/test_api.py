"""The Pythonic surface: constructors, properties, tables, noise, iteration, lifetimes."""
import gc

import numpy as np
import pytest

import deissn
from conftest import REPO


def test_schedule_keywords_and_enums():
    s = deissn.Schedule(noise="linear", spacing="quadratic", steps=10, tau_end=0.0)
    assert s.steps == 10 and s.num_train_steps == 1000
    assert np.allclose(s.taus, [1, .81, .64, .49, .36, .25, .16, .09, .04, .01, 0])
    same = deissn.Schedule(noise=deissn.Noise.LINEAR, spacing=deissn.Spacing.QUADRATIC)
    assert same.fingerprint == s.fingerprint
    assert s.alpha_bar(0.0) == 1.0
    assert s.alpha_bar(np.array([0.0, 1.0])).shape == (2,)
    custom = deissn.Schedule(taus=[0.9, 0.5, 0.1], tau_end=0.01)
    assert custom.steps == 3 and np.allclose(custom.taus, [0.9, 0.5, 0.1, 0.01])
    betas = np.linspace(1e-4, 0.02, 1000, dtype=np.float32)
    assert deissn.Schedule(betas=betas).num_train_steps == 1000
    with pytest.raises(deissn.InvalidArgument, match="conflicts"):
        deissn.Schedule(betas=betas, noise="scaled_linear")


def test_table_from_arrays_and_knots():
    t = deissn.NormTable.from_arrays([0.0, 0.5, 1.0], [0.5, 1.0, 1.0])
    assert len(t) == 3 and t.fingerprint == 0
    assert t(0.25) == pytest.approx(0.75)
    assert np.allclose(t(np.array([[0.0, 0.25], [0.5, 2.0]])), [[0.5, 0.75], [1.0, 1.0]])
    tau, r = t.knots
    assert tau.dtype == np.float64 and np.array_equal(tau, [0, 0.5, 1]) and np.array_equal(r, [0.5, 1, 1])


def test_table_from_reference_matches_load():
    import torch
    d = torch.load(REPO / "tests" / "data" / "tiny_table.pt")
    sa, ls = d["score_abs"].abs() + 1, d["Ls"].abs() + 1  # torch tensors go through NumPy
    t = deissn.NormTable.from_reference(sa, ls, 1)
    r = (sa.double() * ls.double()).flip(0).numpy()
    r[0] = r[1]
    assert np.array_equal(t.knots[1], r)
    assert np.allclose(t.knots[0], np.linspace(0, 1, 4))


def test_noise_depends_only_on_seed_and_index():
    a = deissn.noise(7, 5, (2, 3))
    assert a.shape == (5, 2, 3) and a.dtype == np.float32
    assert np.array_equal(deissn.noise(7, 2, (2, 3), first_sample=3), a[3:])
    assert not np.array_equal(deissn.noise(8, 5, (2, 3)), a)
    assert deissn.noise(1, 3, 4).shape == (3, 4)


def test_iteration_protocol():
    schedule = deissn.Schedule(steps=4)
    sampler = deissn.Sampler(schedule, order=2)
    x = np.ones(3, np.float32)
    seen = []
    for t in sampler:
        assert isinstance(t, deissn.StepInfo)
        assert t.alpha == pytest.approx(np.sqrt(schedule.alpha_bar(t.tau)))
        assert t.model_t == pytest.approx(t.tau * 1000 - 1)
        seen.append(t.step)
        assert sampler.step(x, np.zeros(3, np.float32)) is x
    assert seen == [0, 1, 2, 3] and sampler.done and sampler.info.step == 4
    # A new loop starts a new run, of any batch size.
    assert len([sampler.step(np.ones(2, np.float32), np.zeros(2)) for _ in sampler]) == 4
    with pytest.raises(deissn.StateError, match="step\\(\\) was not called"):
        for t in sampler:
            pass


def test_torch_tensors_share_memory():
    import torch
    sampler = deissn.Sampler(deissn.Schedule(steps=2), order=0)
    x = torch.ones(2, 3)
    eps = torch.zeros(2, 3, dtype=torch.float64)  # converted once
    for t in sampler:
        assert sampler.step(x, eps) is x
    assert float(x[0, 0]) != 1.0  # updated in place


def test_dependants_keep_parents_alive():
    schedule = deissn.Schedule(steps=3)
    table = deissn.NormTable.from_arrays([0.0, 1.0], [0.5, 0.8])
    sampler = deissn.Sampler(schedule, table)
    assert sampler.schedule is schedule and sampler.table is table
    schedule.close()  # the C refcount keeps the sampler's schedule
    table.close()
    del schedule, table
    gc.collect()
    assert len(sampler.coeffs()) == 3
    x = np.ones(2, np.float32)
    for t in sampler:
        sampler.step(x, np.full(2, 0.1, np.float32))
    assert np.isfinite(x).all()


def test_context_managers():
    with deissn.Schedule() as s, deissn.Sampler(s) as sp:
        assert sp.steps == 10
    assert s.closed and sp.closed
    assert "closed" in repr(sp)


def test_coeffs_ddim_closed_form():
    schedule = deissn.Schedule(steps=10)
    for c in deissn.Sampler(schedule, order=0).coeffs():
        a0, a1 = np.sqrt(schedule.alpha_bar(c.tau_from)), np.sqrt(schedule.alpha_bar(c.tau_to))
        s0, s1 = np.sqrt(1 - a0 ** 2), np.sqrt(1 - a1 ** 2)
        assert c.order == 0 and c.r == (1.0,)
        assert c.c[0] == pytest.approx(a1 * (s1 / a1 - s0 / a0), rel=1e-12)


def test_import_with_torch_loaded_first():
    import subprocess
    import sys
    code = "import torch, deissn; print(deissn.has_torch())"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO / "bindings" / "python",
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() in ("True", "False")


def test_prediction_moved_to_the_sampler_says_where():
    for call in (lambda: deissn.Model.from_callable(lambda x, t: x, prediction="v"),
                 lambda: deissn.Model.load("model.pt", prediction="v"),
                 lambda: deissn.Sampler(deissn.Schedule()).step(
                     np.zeros(2, np.float32), np.zeros(2), prediction="v")):
        with pytest.raises(TypeError, match=r"no longer takes prediction: .*"
                                            r"Sampler\(schedule, \.\.\., prediction='v'\)"):
            call()
    with pytest.raises(TypeError, match="pt_clip is now clip"):
        deissn.NormTable.load("t.pt", pt_clip=5)


def test_sample_stats_are_kept_on_success_only():
    schedule = deissn.Schedule(steps=5)
    sampler = deissn.Sampler(schedule)
    assert sampler.stats is None
    model = deissn.Model.from_callable(lambda x, t: 0.5 * x)
    sampler.sample(model, deissn.noise(0, 2, 4))
    st = sampler.stats
    assert isinstance(st, deissn.SampleStats) and st.evaluations == 5
    assert st.model_seconds > 0 and st.sampler_seconds > 0

    def failing(x, t):
        raise RuntimeError("no")
    with pytest.raises(RuntimeError):
        sampler.sample(deissn.Model.from_callable(failing), deissn.noise(0, 2, 4))
    assert sampler.stats is st


def test_table_params_fingerprint_clip_metadata(tmp_path):
    t = deissn.NormTable.from_arrays([0.0, 0.5, 1.0], [9.0, 2.0, 3.0], clip=1,
                                     fingerprint=0x1234, metadata="made here")
    assert t.knots[1].tolist() == [2.0, 2.0, 3.0]
    assert t.info == deissn.TableInfo(3, 0, 0, 1, 0x1234, False)
    assert t.metadata == "made here"
    # copy: 0 / None keep the source's, metadata "" clears it
    c = t.copy(clip=2)
    assert (c.fingerprint, c.metadata, c.info.clip) == (0x1234, "made here", 2)
    assert c.knots[1].tolist() == [3.0, 3.0, 3.0]
    assert t.with_metadata("relabelled").metadata == "relabelled"
    assert t.with_metadata(None).metadata == ""
    assert t.copy(fingerprint=7).fingerprint == 7
    path = tmp_path / "t.dtab"
    t.save(path)
    back = deissn.NormTable.load(path)
    assert back.knots[1].tolist() == t.knots[1].tolist() and back.metadata == "made here"
    # load's clip goes on top of the file's own, and its labels replace the file's
    more = deissn.NormTable.load(path, clip=2, metadata="loaded", fingerprint=9)
    assert (more.info.clip, more.metadata, more.fingerprint) == (2, "loaded", 9)
    assert more.knots[1].tolist() == [3.0, 3.0, 3.0]
