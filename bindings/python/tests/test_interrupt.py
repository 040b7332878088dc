"""Ctrl-C during Sampler.sample(): KeyboardInterrupt reaches the caller, promptly, x unchanged.

Each case runs in a subprocess (it sends SIGINT to itself) that prints one JSON line."""
import json
import subprocess
import sys

import pytest

from conftest import MODELS, REPO

PRELUDE = r"""
import json, os, signal, sys, threading, time
import numpy as np
sys.path.insert(0, %r)
import deissn

# A shell that starts the tests in the background leaves SIGINT ignored, and Python then keeps
# it so: restore the default KeyboardInterrupt, which is what these tests are about.
signal.signal(signal.SIGINT, signal.default_int_handler)

def interrupt_after(seconds):
    threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGINT)).start()

def run(sampler, model, x):
    x0 = x.copy()
    t0 = time.perf_counter()
    try:
        sampler.sample(model, x)
        got = "returned"
    except KeyboardInterrupt:
        got = "KeyboardInterrupt"
    except BaseException as e:
        got = "%%s: %%s" %% (type(e).__name__, e)
    return dict(got=got, seconds=time.perf_counter() - t0,
                unchanged=bool(np.array_equal(x, x0, equal_nan=True)))
""" % str(REPO / "bindings" / "python")

# A Python model that is cheap next to the library's step on a large x, so that the signal
# mostly arrives while C code runs and Python sees it on entering the next callback: that is
# where ctypes used to lose the KeyboardInterrupt and return an uninitialised int.
CALLBACK = PRELUDE + r"""
n = 1 << 21
sampler = deissn.Sampler(deissn.Schedule(spacing="trailing", steps=40), order=3)
out = np.full((1, n), 0.1, np.float32)
started = threading.Event()
def fn(x, t):
    started.set()
    return out
model = deissn.Model.from_callable(fn)
results = []
for trial in range(6):
    started.clear()
    x = deissn.noise(trial, 1, n)
    threading.Thread(target=lambda: (started.wait(), time.sleep(0.004 * (trial + 1)),
                                     os.kill(os.getpid(), signal.SIGINT))).start()
    results.append(run(sampler, model, x))
print(json.dumps(results))
"""

TORCH = PRELUDE + r"""
model = deissn.Model.load(%r, threads=1)
sampler = deissn.Sampler(deissn.Schedule(spacing="trailing", steps=1000), order=3)
x = deissn.noise(0, 4, (3, 64, 64))
t0 = time.perf_counter()
sampler.sample(model, x.copy())
full = time.perf_counter() - t0
interrupt_after(full / 4)
r = run(sampler, model, x)
r["full"] = full
print(json.dumps([r]))
""" % str(MODELS / "gaussian_eps.pt")


def run_script(script):
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1]), p.stderr


def test_sigint_during_a_python_model_sampling():
    results, stderr = run_script(CALLBACK)
    for r in results:
        assert r["got"] == "KeyboardInterrupt" and r["unchanged"], (results, stderr)
    assert "Exception ignored" not in stderr


def test_sigint_during_a_torchscript_sampling(torch_model_path):
    (r,), stderr = run_script(TORCH)
    assert r["got"] == "KeyboardInterrupt", (r, stderr)
    assert r["unchanged"], r
    # Python gets control between steps: the run stops soon after the signal (sent at a
    # quarter of the full run's time), not at its end.
    assert r["seconds"] < 0.6 * r["full"], r


# deissn.tune() on a Python model: the same progress-callback wrapper as sample().
TUNE = PRELUDE + r"""
sch = deissn.Schedule(noise="linear")
started = threading.Event()
def fn(x, tau):
    started.set()
    abar = float(sch.alpha_bar(tau))
    return np.sqrt(1 - abar) * x / (abar * 0.25 + 1 - abar)
model = deissn.Model.from_callable(fn, time="tau")
threading.Thread(target=lambda: (started.wait(), time.sleep(0.05),
                                 os.kill(os.getpid(), signal.SIGINT))).start()
t0 = time.perf_counter()
try:
    deissn.tune(model, shape=(4,), nfe=(3, 25), grid_steps=400, fit_samples=64,
                holdout_samples=256, batch=8)
    got = "returned"
except KeyboardInterrupt:
    got = "KeyboardInterrupt"
except BaseException as e:
    got = "%s: %s" % (type(e).__name__, e)
print(json.dumps([dict(got=got, seconds=time.perf_counter() - t0)]))
"""


def test_sigint_during_tune():
    (r,), stderr = run_script(TUNE)
    assert r["got"] == "KeyboardInterrupt", (r, stderr)
    assert r["seconds"] < 5, r  # stopped at the signal, not after the whole tuning
    assert "Exception ignored" not in stderr
