"""Calibration: the Calibrator wrapper, and the distributed example against one process."""
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

import deissn
from conftest import MODELS, REPO

EXAMPLE = REPO / "bindings" / "python" / "examples" / "calibrate_distributed.py"
ARGS = ["--shape", "1,4,4", "--samples", "6", "--steps", "20", "--clip", "1", "--seed", "3"]


def test_split_does_not_change_the_sums():
    schedule = deissn.Schedule(spacing="trailing", steps=20)
    sampler = deissn.Sampler(schedule)
    model = deissn.Model.from_callable(lambda x, t: np.tanh(x))
    whole, parts = deissn.Calibrator(schedule), [deissn.Calibrator(schedule) for _ in range(3)]
    sampler.sample(model, deissn.noise(5, 6, 8), calibrator=whole)
    for k, part in enumerate(parts):
        sampler.sample(model, deissn.noise(5, 2, 8, first_sample=2 * k), calibrator=part)
    merged = deissn.Calibrator(schedule)
    for part in parts:
        merged.merge(part)
    reduced = deissn.Calibrator(schedule)
    reduced.add_sums(sum(p.sums[0] for p in parts), sum(p.sums[1] for p in parts), 6)
    for c in (merged, reduced):
        for a, b in zip(c.sums, whole.sums):
            assert np.array_equal(a, b)
    table = whole.finish(clip=1, metadata="test")
    assert table.metadata == "test" and len(table) == 20
    again = deissn.Calibrator.from_table(table)
    assert np.array_equal(again.sums[0], whole.sums[0])


def test_calibrator_errors():
    schedule = deissn.Schedule(spacing="trailing", steps=4)
    c = deissn.Calibrator(schedule)
    with pytest.raises(deissn.StateError):
        c.finish()
    with pytest.raises(deissn.NonFinite):
        c.add(0, [1.0, np.inf])
    with pytest.raises(deissn.InvalidArgument):
        c.add(4, [1.0])
    with pytest.raises(deissn.Mismatch):
        c.merge(deissn.Calibrator(deissn.Schedule(spacing="trailing", steps=5)))


TUNE_ARGS = ["--tune", "--shape", "1,4,4", "--nfe", "3-4", "--grid-steps", "24", "--fit", "6",
             "--holdout", "4", "--seed", "3"]


def example_cmd(out, launcher, batch, args=ARGS):
    return [*launcher, str(EXAMPLE), "--model", str(MODELS / "gaussian_eps.pt"),
            "--out", str(out), "--batch", str(batch), *args]


def run_example(out, launcher, batch, args=ARGS):
    done = subprocess.run(example_cmd(out, launcher, batch, args), cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return out.read_bytes()


# What torchrun's rendezvous says under a torch built without libuv (Debian 13's 2.6), whose
# TCPStore torchrun >= 2.4 asks for libuv in.
NO_LIBUV = "use_libuv was requested but PyTorch was build without libuv support"


def start_workers(out, world, batch, args):
    """The `world` workers of the example as torchrun would start them, without torchrun: the
    env:// variables init_process_group("gloo") reads, and USE_LIBUV=0 for its TCPStore.
    Returns each worker's (status, log)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workers = []
    for rank in range(world):
        env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                   WORLD_SIZE=str(world), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world),
                   USE_LIBUV="0")
        workers.append(subprocess.Popen(example_cmd(out, [sys.executable], batch, args), cwd=REPO,
                                        env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True))
    try:
        logs = [w.communicate(timeout=300)[0] for w in workers]
    finally:
        for w in workers:
            w.kill()
    return [(w.returncode, log) for w, log in zip(workers, logs)]


def run_workers(out, world, batch, args=ARGS):
    """start_workers(), once more on another port if a worker failed: the port is chosen free
    and then released, so another process may take it before the store binds it (seen once
    on a loaded machine). A second failure fails the test with both attempts' logs."""
    first = start_workers(out, world, batch, args)
    results = first if all(rc == 0 for rc, _ in first) else start_workers(out, world, batch, args)
    for rank, (rc, log) in enumerate(results):
        assert rc == 0, "worker %d of %d: status %d\n%s\n(the first attempt: %s)" % (
            rank, world, rc, log, first)
    return out.read_bytes()


def test_two_workers_write_the_single_process_table(tmp_path, torch_model_path):
    pytest.importorskip("torch.distributed.run")
    # --redirects/--tee 1: torch 1.13's default ("0") fails to parse on Python 3.11.
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc_per_node=2", "--redirects", "1", "--tee", "1", "--monitor_interval", "0.2"]
    cmd = example_cmd(tmp_path / "two.dtab", torchrun, batch=2)
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    if done.returncode != 0 and NO_LIBUV in done.stdout + done.stderr:
        two = run_workers(tmp_path / "two.dtab", 2, batch=2)   # torchrun cannot start here
    else:
        assert done.returncode == 0, done.stdout + done.stderr
        two = (tmp_path / "two.dtab").read_bytes()
    single = run_example(tmp_path / "one.dtab", [sys.executable], batch=4)  # another split
    assert single == two


def test_workers_started_without_torchrun_write_the_single_process_table(tmp_path,
                                                                          torch_model_path):
    pytest.importorskip("torch.distributed")
    two = run_workers(tmp_path / "two.dtab", 2, batch=2)
    single = run_example(tmp_path / "one.dtab", [sys.executable], batch=3)
    assert single == two


def test_two_workers_tune_the_single_process_plans(tmp_path, torch_model_path):
    """--tune: each worker solves its whole batches of the reference, rank 0 merges and
    searches; the table, plans included, is the single process's, byte for byte."""
    pytest.importorskip("torch.distributed")
    two = run_workers(tmp_path / "two.dsn", 2, batch=2, args=TUNE_ARGS)
    single = run_example(tmp_path / "one.dsn", [sys.executable], batch=2, args=TUNE_ARGS)
    assert single == two
    plans = deissn.NormTable.load(tmp_path / "two.dsn").plans
    assert [p.nfe for p in plans] == [3, 4] and all(p.samples == 4 for p in plans)
