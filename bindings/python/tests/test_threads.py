"""A Sampler or Calibrator is used by one thread at a time (the C header's rule): concurrent use
raises deissn.ConcurrentUseError instead of giving wrong samples."""
import threading

import numpy as np
import pytest

import deissn


def blocking_model():
    """A model whose first call waits until released: the sampling stays in progress."""
    inside, release = threading.Event(), threading.Event()

    def fn(x, t):
        inside.set()
        release.wait(10)
        return np.zeros_like(x)
    return deissn.Model.from_callable(fn), inside, release


def test_use_during_another_threads_sampling_is_refused():
    schedule = deissn.Schedule(spacing="trailing", steps=4)
    sampler = deissn.Sampler(schedule, order=2)
    cal = deissn.Calibrator(schedule)
    model, inside, release = blocking_model()
    x = deissn.noise(0, 2, 8)
    done = []
    worker = threading.Thread(target=lambda: done.append(sampler.sample(model, x, calibrator=cal)))
    worker.start()
    try:
        assert inside.wait(10)
        y = deissn.noise(1, 2, 8)
        for use in (lambda: sampler.sample(model, y), sampler.reset, lambda: sampler.info,
                    lambda: sampler.step(y, y), lambda: next(iter(sampler)), sampler.close,
                    lambda: cal.add(0, y, 2), lambda: cal.sums, lambda: cal.finish(),
                    lambda: deissn.Calibrator(schedule).merge(cal)):
            with pytest.raises(deissn.ConcurrentUseError, match="in use by another thread"):
                use()
        assert sampler.steps == 4 and not sampler.closed  # immutable properties stay usable
    finally:
        release.set()
        worker.join()
    assert done and done[0] is x and cal.sums[2] == 2  # the first sampling was not disturbed
    sampler.reset()  # free again


def test_a_callback_cannot_use_the_sampler_it_runs_in():
    sampler = deissn.Sampler(deissn.Schedule(steps=3), order=1)
    model = deissn.Model.from_callable(lambda x, t: np.zeros_like(x))
    x = deissn.noise(0, 1, 4)
    x0 = x.copy()
    with pytest.raises(deissn.ConcurrentUseError, match="its own sample"):
        sampler.sample(model, x, progress=lambda step, steps: sampler.reset())
    assert np.array_equal(x, x0)


def test_threads_sharing_a_sampler_never_get_wrong_samples():
    schedule = deissn.Schedule(spacing="trailing", steps=8)
    sampler = deissn.Sampler(schedule, order=3)

    def fn(x, t):
        threading.Event().wait(0.0005)  # let the other threads run in the middle of a sampling
        return 0.1 * x
    model = deissn.Model.from_callable(fn)
    expected = [sampler.sample(model, deissn.noise(i, 1, 64)).copy() for i in range(4)]
    wrong, refused, ok = [], [], []

    def work(i):
        for _ in range(25):
            try:
                x = sampler.sample(model, deissn.noise(i, 1, 64))
            except deissn.ConcurrentUseError:
                refused.append(i)
                continue
            (ok if np.array_equal(x, expected[i]) else wrong).append(i)
    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not wrong, "%d of %d samplings wrong" % (len(wrong), len(wrong) + len(ok))
    assert refused and ok
