"""10,000 create/use/free cycles must not grow the process (RSS from /proc/self/statm)."""
import gc
import os

import numpy as np
import pytest

import deissn

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def cycle(explicit):
    x = np.ones((2, 3), np.float32)
    schedule = deissn.Schedule(steps=3)
    table = deissn.NormTable.from_arrays([0.0, 0.5, 1.0], [0.6, 0.8, 0.8])
    sampler = deissn.Sampler(schedule, table, order=2)
    model = deissn.Model.from_callable(lambda x, t: x * 0.5)
    sampler.sample(model, x, progress=lambda step, steps: None)
    try:
        sampler.sample(deissn.Model.from_callable(lambda x, t: 1 / 0), x)
    except ZeroDivisionError:
        pass
    if explicit:  # half the cycles close explicitly, half leave it to the garbage collector
        for obj in (model, sampler, table, schedule):
            obj.close()


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc/self/statm")
def test_no_leaks_over_10000_cycles():
    for i in range(1000):  # warm-up: allocator pools, ctypes type caches
        cycle(i % 2)
    gc.collect()
    before = rss_bytes()
    for i in range(10000):
        cycle(i % 2)
    gc.collect()
    grown = rss_bytes() - before
    assert grown < 1 << 20, "RSS grew by %d KiB over 10,000 cycles" % (grown >> 10)
