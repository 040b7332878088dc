#!/usr/bin/python3
"""libdeissn against the baselines a user would otherwise write, as one table of ratios.

    make bench                                   # = /usr/bin/python3 bench/bench.py
    make bench-smoke                             # = ... bench/bench.py --smoke (CI, < 60 s)

Every row is measured in this one process, each side as the median of repeated runs, with
the two sides interleaved run by run so that load from other jobs hits both alike:

1. Coefficient setup (10, 20, 50 quadratic steps, order 3, with the model's table):
   deissn_sampler_create() called through ctypes, against the reference implementation's
   method re-implemented here (`reference_coeffs`): a 10,000-point left Riemann sum per
   interval over tau, d abar/d tau by torch autograd of the piecewise-linear abar. It computes
   the integrand once per interval, where the reference re-evaluates abar several times, so
   it is if anything faster than the original. Also the largest difference between the two
   coefficient sets, relative to each step's largest coefficient (the Riemann sum's error).
2. The step update, order 3, float32 state: deissn_step() (ctypes) against memcpy of the
   same bytes (ctypes.memmove is libc's memmove) and against the update written as in-place
   torch ops, x = psi*x + c0*e0 + ... + c3*e3, with 1 thread and with every core.
3. End to end, the shipped model, 64 samples at 10 NFE (DEIS-SN, order 3): deissn_sample()
   through the binding against 10 forward calls of the same TorchScript model alone
   (torch.jit.load, inference mode, same threads: the overhead is total/(10 forward) - 1) and
   against a Python loop that drives the model with the binding's coefficients and a torch
   update.

Without models/fmnist_unet.pt the end-to-end rows use the analytic tests/models/gaussian_eps.pt
(so they only check that the code runs: that model costs next to nothing). Without the
model's table, the reference's CIFAR-10 table ($DEISSN_SEED_TABLES or ../shared/seed-tables).
"""
import argparse
import ctypes
import os
import platform
import sys
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))
import deissn  # noqa: E402
from deissn import _lib  # noqa: E402  (raw calls: no argument checks inside the timing)

T = 1000
MODEL = os.path.join(ROOT, "models", "fmnist_unet.pt")
TABLE = os.path.join(ROOT, "tools", "eval", "fmnist_unet_table.pt")
SEED = os.environ.get("DEISSN_SEED_TABLES") or os.path.join(ROOT, "..", "shared", "seed-tables")


def median(xs):
    return float(np.median(xs))


def fmt_time(s):
    return "%.1f us" % (s * 1e6) if s < 1e-3 else "%.2f ms" % (s * 1e3) if s < 1 else "%.2f s" % s


def machine():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return "%s, %d cores, %s, Python %s, torch %s (default %d intra-op threads), numpy %s" % (
        cpu, os.cpu_count(), platform.machine(), platform.python_version(), torch.__version__,
        DEFAULT_THREADS, np.__version__)


DEFAULT_THREADS = torch.get_num_threads()


# ---- 1. coefficient setup ------------------------------------------------------------------

def load_table():
    """(path, clip, the reference's ratio array r[j] at tau = j/(n-1)) of the table in use."""
    path, clip = (TABLE, 0) if os.path.exists(TABLE) else \
        (os.path.join(SEED, "cifar10_Ls_score_abs.pt"), 5)
    d = torch.load(path, map_location="cpu")  # the CIFAR-10 file tags Ls as cuda:0
    r = (d["score_abs"].float() * d["Ls"].float().reshape(-1)).flip(0)
    r[:clip] = r[clip].clone()
    return path, clip, r


def reference_coeffs(taus_desc, ratio, order=3, n=10000):
    """The reference's method for (psi, [C_ij]) of every step, in sampling order.

    abar(tau) interpolates linearly through (k/T, abar_k) in float32 knots; its derivative
    comes from autograd, as in the reference; the integral of
        psi(tau_to, tau) * 1/2 g2(tau) / K(tau) * l_j(tau),  g2 = -dabar/dtau / abar,
        K = sigma / r(tau) (clipped at 1e-8)
    over [tau_from, tau_to] is a left Riemann sum on n points (tau_to excluded, which avoids
    the 1/sigma singularity at tau = 0)."""
    betas = torch.linspace(1e-4, 0.02, T, dtype=torch.float32)
    knots_abar = torch.cat([torch.ones(1), torch.cumprod(1 - betas, 0)])
    knots_tau = torch.linspace(0, 1, T + 1)
    ratio_tau = torch.linspace(0, 1, len(ratio))

    def interp(x, xp, fp):
        i = torch.searchsorted(xp, x.detach(), right=True).clamp(1, len(xp) - 1)
        return fp[i - 1] + (x - xp[i - 1]) / (xp[i] - xp[i - 1]) * (fp[i] - fp[i - 1])

    taus = torch.tensor(taus_desc, dtype=torch.float64)
    out = []
    for i in range(len(taus) - 1):  # step i: taus[i] -> taus[i + 1]
        t0, t1 = taus[i], taus[i + 1]
        p = min(order, i)
        grid = torch.from_numpy(np.linspace(t0.item(), t1.item(), n, endpoint=False))
        grid.requires_grad_(True)
        abar = interp(grid, knots_tau, knots_abar)
        (dabar,) = torch.autograd.grad(abar.sum(), grid)
        abar, grid = abar.detach(), grid.detach()
        abar_to = interp(t1.reshape(1), knots_tau, knots_abar)
        psi = (abar_to / abar).sqrt()
        g2 = -dabar / abar
        K = ((1 - abar).sqrt() / interp(grid, ratio_tau, ratio)).clamp(min=1e-8)
        integrand = 0.5 * psi * g2 / K
        dt = (t1 - t0) / n
        nodes = taus[i - p:i + 1].flip(0)  # tau_from, then the p previous evaluation times
        cs = []
        for j in range(p + 1):
            poly = torch.ones_like(grid)
            for k in range(p + 1):
                if k != j:
                    poly = poly * (grid - nodes[k]) / (nodes[j] - nodes[k])
            cs.append(float((integrand * poly * dt).sum()))
        out.append((float((abar_to / interp(t0.reshape(1), knots_tau, knots_abar)).sqrt()), cs))
    return out


def bench_setup(table, ratio, reps):
    rows = []
    lib, params = _lib.lib, _lib.default_params(_lib.SamplerParams)  # order 3
    for steps in (10, 20, 50):
        sch = deissn.Schedule(noise="linear", spacing="quadratic", steps=steps, tau_end=0.0)
        sampler = deissn.Sampler(sch, table, order=3)
        t_lib, t_ref, t_call = [], [], []
        out = ctypes.c_void_p()
        for _ in range(reps):
            t0 = time.perf_counter()
            lib.deissn_sampler_create(ctypes.byref(out), sch._handle, table._handle,
                                      ctypes.byref(params))
            t_lib.append(time.perf_counter() - t0)
            lib.deissn_sampler_free(out)
            t0 = time.perf_counter()
            lib.deissn_sampler_steps(sampler._handle)  # a ctypes call that does ~nothing
            t_call.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            ref = reference_coeffs(sch.taus, ratio)
            t_ref.append(time.perf_counter() - t0)
        err = 0.0
        for co, (psi, cs) in zip(sampler.coeffs(), ref):
            scale = max(abs(c) for c in co.c)
            err = max(err, abs(psi - co.psi) / co.psi,
                      max(abs(a - b) for a, b in zip(cs, co.c)) / scale)
        tl, tr = median(t_lib), median(t_ref)
        rows.append(("setup, %d steps, order 3, table" % steps, fmt_time(tl),
                     "reference method (Riemann 10^4, autograd): " + fmt_time(tr),
                     "%.0f" % (tr / tl),
                     "max rel. diff %.1e; ctypes call ~%s" % (err, fmt_time(median(t_call)))))
    return rows


# ---- 2. the step update --------------------------------------------------------------------

def bench_step(shape, reps):
    n = int(np.prod(shape))
    sch = deissn.Schedule(noise="linear", spacing="trailing", steps=1000)
    sampler = deissn.Sampler(sch, None, order=3)
    x = deissn.noise(1, 1, n)[0]
    out = deissn.noise(2, 1, n)[0]
    xp, op = x.ctypes.data_as(_lib.c_float_p), out.ctypes.data_as(_lib.c_float_p)
    half = 7 * n * 4 // 2  # memcpy of half the step's bytes moves all of them (read + write)
    src, dst = np.ones(half, np.uint8), np.ones(half, np.uint8)  # pages touched
    # torch: x and four eps tensors, updated with 5 in-place ops (the idiomatic version)
    tx = torch.from_numpy(deissn.noise(3, 1, shape)[0].copy())
    te = [torch.from_numpy(deissn.noise(4 + j, 1, shape)[0].copy()) for j in range(4)]
    psi, c = 0.999, (-1e-3, 2e-3, -1.5e-3, 4e-4)

    def torch_update():
        tx.mul_(psi)
        for cj, ej in zip(c, te):
            tx.add_(ej, alpha=cj)

    lib = _lib.lib

    def step():
        lib.deissn_step(sampler._handle, xp, op, n, None)

    def timed(fn):
        if sampler.info.step > 990:  # start again before the sampler is done
            sampler.reset()
            for _ in range(4):  # warm-up: the timed steps are order 3
                step()
        x[::4096] *= 0.5  # keep values tame (untimed)
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    for _ in range(4):  # warm-up: the timed steps are order 3
        step()
    # Two passes, so that torch's thread count changes once, not between runs: 1 thread with
    # memcpy, then every core.
    t_step, t_copy, t_t1, t_tn = [], [], [], []
    ncores = os.cpu_count()
    torch.set_num_threads(1)
    for _ in range(reps):
        t_step.append(timed(step))
        t_copy.append(timed(lambda: ctypes.memmove(dst.ctypes.data, src.ctypes.data, half)))
        t_t1.append(timed(torch_update))
    torch.set_num_threads(ncores)
    torch_update()
    for _ in range(reps):
        t_step.append(timed(step))
        t_tn.append(timed(torch_update))
    torch.set_num_threads(DEFAULT_THREADS)
    gbs = lambda t: "%.1f GB/s" % (7 * n * 4 / t / 1e9)  # noqa: E731
    ts, tc = median(t_step), median(t_copy)
    name = "x".join(map(str, shape))
    return [
        ("step %s, order 3" % name, "%s, %s" % (fmt_time(ts), gbs(ts)),
         "memcpy of the same bytes: %s, %s" % (fmt_time(tc), gbs(tc)), "%.2f" % (tc / ts),
         "bytes = 7 x state; ratio = fraction of memcpy speed"),
        ("", "", "torch in-place ops, 1 thread: " + fmt_time(median(t_t1)),
         "%.1f" % (median(t_t1) / ts), "x.mul_(psi), then x.add_(e_j, alpha=c_j), j = 0..3"),
        ("", "", "torch in-place ops, %d threads: %s" % (ncores, fmt_time(median(t_tn))),
         "%.1f" % (median(t_tn) / ts), ""),
    ]


# ---- 3. end to end -------------------------------------------------------------------------

def bench_end_to_end(path, table, batch, reps, threads):
    torch.set_num_threads(threads)
    sch = deissn.Schedule(noise="linear", spacing="quadratic", steps=10, tau_end=0.0)
    sampler = deissn.Sampler(sch, table, order=3)
    coeffs = sampler.coeffs()
    model = deissn.Model.load(path, threads=threads)
    net = torch.jit.load(path).eval()
    x0 = deissn.noise(0, batch, (1, 32, 32))

    def forward_only():
        xt = torch.from_numpy(x0)
        for co in coeffs:
            net(xt, torch.full((batch,), co.model_t))

    def python_loop():
        # the DEIS-SN scheduler as a user would write it over the binding's coefficients;
        # history holds eps / r at its evaluation time, newest first
        xt, hist = torch.from_numpy(x0.copy()), []
        for co in coeffs:
            eps = net(xt, torch.full((batch,), co.model_t))
            hist = [eps.div_(co.r[0])] + hist[:3]
            xt.mul_(co.psi)
            for j in range(co.order + 1):
                xt.add_(hist[j], alpha=co.c[j])
        return xt

    t_lib, t_fwd, t_py = [], [], []
    with torch.inference_mode():
        forward_only()  # warm-up (TorchScript profiling runs, allocations)
        sampler.sample(model, x0.copy())
        for _ in range(reps):
            x = x0.copy()
            t0 = time.perf_counter()
            sampler.sample(model, x)
            t1 = time.perf_counter()
            forward_only()
            t2 = time.perf_counter()
            xp = python_loop()
            t3 = time.perf_counter()
            t_lib.append(t1 - t0)
            t_fwd.append(t2 - t1)
            t_py.append(t3 - t2)
    agree = float(np.abs(xp.numpy() - x).max())
    torch.set_num_threads(DEFAULT_THREADS)
    tl, tf, tp = median(t_lib), median(t_fwd), median(t_py)
    what = "%d samples, 10 NFE, %d thread%s" % (batch, threads, "s" if threads > 1 else "")
    name = os.path.relpath(path, ROOT)
    return [
        ("deissn_sample: " + what, fmt_time(tl), "10 x forward alone: " + fmt_time(tf),
         "%.3f" % (tf / tl), "overhead = total/(10 forward) - 1 = %+.1f%%; %s"
         % (100 * (tl / tf - 1), name)),
        ("", "", "Python loop + torch update: " + fmt_time(tp),
         "%.3f" % (tp / tl), "same samples to %.1e (max abs. difference)" % agree),
    ]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny repetition counts (CI)")
    ap.add_argument("--model", default=MODEL, help="TorchScript model for the end-to-end rows")
    ap.add_argument("--threads", default="1,%d" % os.cpu_count(),
                    help="torch thread counts for the end-to-end rows")
    args = ap.parse_args()
    setup_reps, step_reps, e2e_reps, batch = (3, 5, 1, 8) if args.smoke else (21, 101, 7, 64)

    path, clip, ratio = load_table()
    table = deissn.NormTable.load(path, clip=clip)
    print("machine: " + machine())
    print("table: %s (clip %d)%s" % (os.path.relpath(path, ROOT), clip,
                                    "; SMOKE RUN: numbers are not meaningful" if args.smoke
                                    else ""))
    rows = bench_setup(table, ratio, setup_reps)
    for shape in ((64, 3, 32, 32), (4, 4, 128, 128)):
        rows += bench_step(shape, step_reps)
    model = args.model if os.path.exists(args.model) else \
        os.path.join(ROOT, "tests", "models", "gaussian_eps.pt")
    for threads in sorted({int(t) for t in args.threads.split(",")}):
        rows += bench_end_to_end(model, table, batch, e2e_reps, threads)

    head = ("what", "libdeissn", "baseline", "time ratio baseline/libdeissn", "notes")
    print("\n| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
