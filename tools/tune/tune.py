#!/usr/bin/python3
"""Tuned plans (issue #14): learn, per NFE, the sampling plan with the lowest error on THIS model.

A plan is the N evaluation times tau_N = 1 > ... > tau_1 (free, not a named spacing), the end
time tau_end (0 or 1e-3), the method (DEIS-SN = METHOD_EPS with the table, DEIS = METHOD_EPS
without, METHOD_DATA with or without the corrector), the order and lower_order_final.

The search (tools/tune/README.md has the algorithm in words; tools/tune/log_*.txt the runs):
  1. reference trajectories: DEIS order 3 on a fine grid of S evaluation times
     (tau = 1e-3 + (1 - 1e-3) u^2, u uniform, so denser near 0), then the step to 0, from
     K_fit seeds; x and eps recorded at every grid time (x also at 0).
  2. the Gram matrix of all recorded vectors (x_i, eps_i): the teacher-forced local error of
     ANY linear step (the library's own coefficients, deissn_sampler_coeffs) from the true
     state at a grid node to another node is a quadratic form in it: no model call.
  3. DP over the grid (GITS-style): the N times with the lowest sum of local RMSEs of the
     order-0 exponential step (DDIM), from tau = 1 to each end.
  4. per (method, order, lower_order_final, end): coordinate descent over the grid nodes on
     the teacher-forced multistep surrogate (sum over steps of the local RMSE of the actual
     step, with the actual coefficients and the true history at the plan's nodes).
  5. the few best plans by surrogate, and BEST's configuration, run for real (model calls)
     on the fit seeds; the lowest true RMSE at the plan's end time wins.
  6. hold-out: the chosen plan, BEST, and the best DPM-Solver++ / UniPC configuration (chosen
     on the fit seeds) measured on other seeds against their converged reference, with a
     paired bootstrap 95% interval.

    /usr/bin/python3 tools/tune/tune.py --model fmnist [--fit 64] [--hold 256]
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tools", "eval"))
sys.path.insert(0, os.path.join(REPO, "bindings", "python"))
import baselines as B  # noqa: E402
import search  # noqa: E402
import deissn  # noqa: E402

MODELS = {
    "fmnist": (os.path.join(REPO, "models", "fmnist_unet.pt"),
               os.path.join(REPO, "tools", "eval", "fmnist_unet_table.pt")),
    "fmnist-small": (os.path.join(REPO, "tools", "eval", "fmnist_small.pt"),
                     os.path.join(REPO, "tools", "eval", "fmnist_small_table.dsn")),
}
FIT_SEED, HOLD_SEED = 3001, 3002
TAU_LAST = 1e-3
VARIANTS = [  # name, method, uses table, corrector
    ("deis-sn", "eps", True, False),
    ("deis", "eps", False, False),
    ("x0", "data", False, False),
    ("x0+corr", "data", False, True),
]
EVALS = [0]  # model evaluations (sample-evaluations) so far


class Model:
    def __init__(self, name, batch):
        path, tpath = MODELS[name]
        self.net = torch.jit.load(path).eval()
        self.table = deissn.NormTable.load(tpath, clip=0)
        self.batch = batch

    def eps(self, x, tau):
        """eps for float32 x (B, 1, 32, 32) at tau, float32."""
        out = np.empty_like(x)
        with torch.inference_mode():
            for i in range(0, len(x), self.batch):
                xb = torch.from_numpy(x[i:i + self.batch])
                t = torch.full((len(xb),), tau * 1000 - 1.0, dtype=torch.float32)
                out[i:i + self.batch] = self.net(xb, t).numpy()
        EVALS[0] += len(x)
        return out


def fine_grid(S):
    """S evaluation times from 1 to 1e-3, uniform in u with tau = 1e-3 + (1 - 1e-3) u^1.5
    (power 2 puts points so close near 1e-3 that DEIS-3's last step to 0 extrapolates far:
    measured, 400 points of power 1.5 agree with 1000 uniform steps to 6e-4 RMSE)."""
    u = np.linspace(1.0, 0.0, S)
    return TAU_LAST + (1.0 - TAU_LAST) * u ** 1.5


def recorded(S):
    """The grid nodes a plan may use (recorded): tau = 1 and every other one down to 1e-3."""
    return np.array([0] + list(range(S - 1 - 2 * ((S - 2) // 2), S, 2)))


def reference(model, x, taus, record):
    """DEIS-3 on the evaluation times `taus`, then to 0. record (indices into taus): (X [M+1,
    K, D], E [M, K, D]) float32 at those times (X[M] = x(0)); else only x(1e-3) and x(0)."""
    sch = deissn.Schedule(noise="linear", taus=taus, tau_end=0.0)
    smp = deissn.Sampler(sch, None, order=3)
    xs = np.ascontiguousarray(x, dtype=np.float32).copy()
    S, K = len(taus), len(x)
    if record is not None:
        pos = {int(v): j for j, v in enumerate(record)}
        X = np.empty((len(record) + 1, K, xs[0].size), np.float32)
        E = np.empty((len(record), K, xs[0].size), np.float32)
    for info in smp:
        e = model.eps(xs, info.tau)
        if record is not None and info.step in pos:
            X[pos[info.step]] = xs.reshape(K, -1)
            E[pos[info.step]] = e.reshape(K, -1)
        if info.step == S - 1:
            x_last = xs.copy()
        smp.step(xs, e)
    if record is not None:
        X[-1] = xs.reshape(K, -1)
        return X, E
    return {TAU_LAST: x_last.astype(np.float64), 0.0: xs.astype(np.float64)}


class Surrogate:
    """Teacher-forced local errors of linear steps between grid nodes, from the Gram matrix
    of the recorded vectors: basis index i = x at node i (0..S), S+1+i = eps at node i."""

    def __init__(self, X, E, taus, vp, table):
        self.S = len(taus)
        self.nodes = np.append(taus, 0.0)
        V = np.concatenate([X, E], axis=0).reshape(2 * self.S + 1, -1).astype(np.float64)
        self.G = V @ V.T
        self.n = X.shape[1] * X.shape[2]
        self.vp, self.table = vp, table
        self.alpha = np.array([vp.alpha_sigma(t)[0] for t in self.nodes])
        self.sigma = np.array([vp.alpha_sigma(t)[1] for t in self.nodes])
        self.calls = 0

    def x(self, i):
        return {i: 1.0}

    def d(self, i, method, r):
        """The step's datum at node i as basis weights: eps/r or x0."""
        if method == "eps":
            return {self.S + 1 + i: 1.0 / r}
        return {i: 1.0 / self.alpha[i], self.S + 1 + i: -self.sigma[i] / self.alpha[i]}

    def rms(self, w):
        idx = np.fromiter(w.keys(), int)
        v = np.fromiter(w.values(), float)
        q = v @ self.G[np.ix_(idx, idx)] @ v
        return math.sqrt(max(q, 0.0) / self.n)

    def ddim_costs(self):
        """cost[i, k]: RMSE of the order-0 exponential step from node i to node k > i."""
        S = self.S
        a, s, G = self.alpha, self.sigma, self.G
        cost = np.full((S + 1, S + 1), np.inf)
        for i in range(S):
            k = np.arange(i + 1, S + 1)
            p = a[k] / a[i]
            c = s[k] - p * s[i]  # x_k ~ p x_i + c e_i
            ei = S + 1 + i
            q = (p * p * G[i, i] + c * c * G[ei, ei] + G[k, k] + 2 * p * c * G[i, ei]
                 - 2 * p * G[i, k] - 2 * c * G[ei, k])
            cost[i, k] = np.sqrt(np.maximum(q, 0) / self.n)
        return cost

    def plan_error(self, nodes, end, method, table, order, lof, corr):
        """Sum over steps of the local RMSE of the actual steps of the plan (eval nodes
        `nodes`, increasing indices, then node `end`) from the true states."""
        self.calls += 1
        taus = self.nodes[nodes]
        try:
            sch = deissn.Schedule(noise="linear", taus=taus, tau_end=float(self.nodes[end]))
            smp = deissn.Sampler(sch, table, order=order, lower_order_final=lof,
                                 method=method, corrector=corr)
        except deissn.InvalidArgument:
            return math.inf
        tot = 0.0
        path = list(nodes) + [end]
        for i, c in enumerate(smp.coeffs()):
            w = {path[i]: c.psi}
            w[path[i + 1]] = w.get(path[i + 1], 0.0) - 1.0
            for j, cj in enumerate(c.c):
                for b, v in self.d(path[i - j], method, c.r[j] if method == "eps" else 1.0).items():
                    w[b] = w.get(b, 0.0) + cj * v
            tot += self.rms(w)
        return tot


def dp(cost, N, end):
    """The N evaluation nodes 0 = n_N < ... < n_1 < end minimising the sum of cost[i, k]."""
    M = cost.shape[0]
    D = np.full((N + 1, M), np.inf)
    arg = np.zeros((N + 1, M), int)
    D[0, 0] = 0.0  # 0 steps taken, at node 0 (tau = 1)
    for n in range(1, N + 1):
        tot = D[n - 1][:, None] + cost  # from i to k
        arg[n] = np.argmin(tot, axis=0)
        D[n] = tot[arg[n], np.arange(M)]
    path = [end]
    for n in range(N, 0, -1):
        path.append(arg[n][path[-1]])
    path = path[::-1]
    return path[:-1], D[N, end]


def descend(sur, nodes, end, var, order, lof, max_sweeps=4):
    _, method, use_table, corr = var
    table = sur.table if use_table else None

    def f(n):
        return sur.plan_error(n, end, method, table, order, lof, corr)
    nodes = list(nodes)
    best = f(nodes)
    N = len(nodes)
    step = max(1, sur.S // (4 * N))
    while True:
        for _ in range(max_sweeps):
            improved = False
            for i in range(1, N):  # node 0 (tau = 1) is fixed
                lo = nodes[i - 1] + 1
                hi = (nodes[i + 1] if i + 1 < N else end) - 1
                for cand in (nodes[i] - step, nodes[i] + step):
                    if lo <= cand <= hi:
                        trial = nodes[:i] + [cand] + nodes[i + 1:]
                        v = f(trial)
                        if v < best:
                            best, nodes, improved = v, trial, True
            if not improved:
                break
        if step == 1:
            return nodes, best
        step = max(1, step // 2)


def run_plan(model, x, taus, tau_end, var, order, lof, table):
    _, method, use_table, corr = var
    sch = deissn.Schedule(noise="linear", taus=np.asarray(taus, np.float64), tau_end=tau_end)
    smp = deissn.Sampler(sch, table if use_table else None, order=order, lower_order_final=lof,
                         method=method, corrector=corr)
    xs = np.ascontiguousarray(x, dtype=np.float32).copy()
    for info in smp:
        smp.step(xs, model.eps(xs, info.tau))
    return xs.astype(np.float64)


def best_candidate(nfe):
    """BEST preset's configuration at nfe as a plan (its times are then free like any)."""
    skw, pkw = deissn.preset("best", nfe)
    sch = deissn.Schedule(noise="linear", **skw)
    taus = np.asarray(sch.taus, np.float64)
    var = ("x0+corr" if pkw["corrector"] else "x0") if pkw["method"] == "data" else "deis-sn"
    return dict(val=float("nan"), nodes=None, taus=[float(t) for t in taus[:-1]],
                tau_end=float(taus[-1]), var=var, order=pkw["order"],
                lof=pkw["lower_order_final"], source="BEST")


def refine(c, vp, err, fracs=(0.25, 0.08)):
    """Coordinate descent of the plan's evaluation times tau_{N-1}..tau_1 (tau_N stays at the
    start) on the TRUE error err(taus) (model runs): each time moves a fraction f of the way
    to a neighbour in log-SNR (the last one's later neighbour is tau_end, or for tau_end = 0
    a virtual node one log-SNR gap beyond), both directions tried, a move kept when it lowers
    err; one sweep per f in `fracs`. Returns (taus, err, trials)."""
    taus = list(c["taus"])
    best = err(taus)
    trials = 1
    lam = lambda t: vp.lam(t)  # noqa: E731
    for f in fracs:
        for i in range(1, len(taus)):
            li = lam(taus[i])
            lprev = lam(taus[i - 1])
            if i + 1 < len(taus):
                lnext = lam(taus[i + 1])
            elif c["tau_end"] > 0:
                lnext = lam(c["tau_end"])
            else:
                lnext = li + (li - lprev)
            for target in (lprev, lnext):
                t = float(vp.tau_of_lambda(li + f * (target - li)))
                trial = taus[:i] + [t] + taus[i + 1:]
                if not all(a > b for a, b in zip(trial, trial[1:])) or trial[-1] <= c["tau_end"]:
                    continue
                try:
                    v = err(trial)
                except deissn.InvalidArgument:
                    continue
                trials += 1
                if v < best:
                    best, taus = v, trial
                    break
    return taus, best, trials


def per_sample_mse(a, b):
    return ((a - b) ** 2).reshape(len(a), -1).mean(axis=1)


def boot_ci(mse, ref_mse=None, n=2000, seed=0):
    """95% bootstrap interval of RMSE (or of the RMSE ratio to ref, paired)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(mse), (n, len(mse)))
    r = np.sqrt(mse[idx].mean(axis=1))
    if ref_mse is not None:
        r = r / np.sqrt(ref_mse[idx].mean(axis=1))
    return float(np.percentile(r, 2.5)), float(np.percentile(r, 97.5))


PEER_GRIDS = search.BASELINE_SPACINGS + ["power1.5"]


def peer_configs():
    for name, fn, order, kw in (("DPM-Solver++(2M)", "dpm", 2, {}),
                                ("DPM-Solver++(3M)", "dpm", 3, {}),
                                ("UniPC-2", "unipc", 2, {}), ("UniPC-3", "unipc", 3, {})):
        for grid in PEER_GRIDS:
            for tau_end in (1e-3, 0.0):
                yield dict(name=name, fn=fn, order=order, grid=grid, tau_end=tau_end)


def run_peer(model, vp, cfg, nfe, x):
    g = search.baseline_grid(vp, cfg["grid"], nfe, cfg["tau_end"])  # as tools/eval/search.py

    def f(xt, tau):
        return torch.from_numpy(model.eps(np.ascontiguousarray(xt.to(torch.float32).numpy()),
                                          tau)).to(torch.float64)
    xt = torch.from_numpy(np.asarray(x, np.float64))
    if cfg["fn"] == "dpm":
        out = B.dpm_solver_pp(f, xt, g, vp, order=cfg["order"], lower_order_final=True)
    else:
        out = B.unipc(f, xt, g, vp, order=cfg["order"], lower_order_final=True)
    return out.numpy()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="fmnist", choices=list(MODELS))
    ap.add_argument("--fit", type=int, default=64, help="fit seeds (reference trajectories)")
    ap.add_argument("--hold", type=int, default=256, help="held-out seeds")
    ap.add_argument("--grid", type=int, default=400,
                    help="fine-grid evaluation times S (every other one is a plan node)")
    ap.add_argument("--nfe-tune", default="3-25")
    ap.add_argument("--nfe-report", default="4,5,6,8,10,12,15,20")
    ap.add_argument("--sel", type=int, default=8,
                    help="fit seeds on which every variant's plan is run for real")
    ap.add_argument("--top", type=int, default=3,
                    help="plans then run on all the fit seeds, with BEST's")
    ap.add_argument("--refine", type=int, default=8,
                    help="fit seeds of the true-error refinement of the chosen plan (0: none)")
    ap.add_argument("--refine-plans", type=int, default=2,
                    help="how many of the best fit plans the refinement starts from")
    ap.add_argument("--no-named-starts", dest="named_starts", action="store_false",
                    help="without the peers' grids (time_uniform, logsnr, power 1.5 to 1e-3) "
                         "with the x0 methods, order 2-3, lower_order_final, as candidates")
    ap.add_argument("--peers-from", default=None,
                    help="a result JSON whose peer configurations to reuse (no peer search)")
    ap.add_argument("--peer-fit", type=int, default=32, help="fit seeds for the peers' choice")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--check-gt", type=int, default=8,
                    help="seeds whose fine-grid reference is checked against 1000 steps")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    if "-" in args.nfe_tune:
        a, b = args.nfe_tune.split("-")
        nfes = list(range(int(a), int(b) + 1))
    else:
        nfes = [int(v) for v in args.nfe_tune.split(",")]
    report = [int(v) for v in args.nfe_report.split(",")]
    model = Model(args.model, args.batch)
    vp = B.VP(noise="linear")
    out = dict(model=args.model, args=vars(args), nfe={})
    shape = (1, 32, 32)

    # 1. reference trajectories on the fine grid (the fit seeds)
    t0 = time.time()
    taus = fine_grid(args.grid)
    xfit = deissn.noise(FIT_SEED, args.fit, shape)
    rec = recorded(args.grid)
    X, E = reference(model, xfit, taus, record=rec)
    t_ref = time.time() - t0
    print("reference: %d fit seeds x %d grid times (%d recorded): %.1f s (%d evaluations)"
          % (args.fit, args.grid, len(rec), t_ref, EVALS[0]), flush=True)
    if args.check_gt:
        k = args.check_gt
        e0 = EVALS[0]
        gt = B.deis(lambda x, t: torch.from_numpy(model.eps(
            np.ascontiguousarray(x.to(torch.float32).numpy()), t)).to(torch.float64),
            torch.from_numpy(xfit[:k].copy()), np.append(np.linspace(1, 1e-3, 1000), 0.0), order=3)
        err = math.sqrt(float(np.mean((X[-1][:k].astype(np.float64)
                                       - gt.numpy().reshape(k, -1)) ** 2)))
        out["ref_check"] = dict(seeds=k, rmse_vs_1000_steps=err)
        print("reference check: RMSE(%d-point grid, 1000 uniform steps) at tau 0 = %.2e "
              "(%d seeds)" % (args.grid, err, k), flush=True)
        EVALS[0] = e0  # not part of the tuning's cost

    # 2.-5. the search
    t1 = time.time()
    sur = Surrogate(X, E, taus[rec], vp, model.table)
    cost = sur.ddim_costs()
    t_gram = time.time() - t1
    print("Gram matrix and DDIM local costs: %.1f s" % t_gram, flush=True)
    M = len(rec)
    ends = {0.0: M, TAU_LAST: M - 1}
    x_true = {0.0: X[M].astype(np.float64), TAU_LAST: X[M - 1].astype(np.float64)}
    plans = {}
    for nfe in nfes:
        ts = time.time()
        e0 = EVALS[0]
        cands = []
        for tau_end, end in ends.items():
            init, _ = dp(cost, nfe, end)
            for var in VARIANTS:
                for order in (1, 2, 3):
                    for lof in (False, True):
                        nodes, val = descend(sur, init, end, var, order, lof)
                        cands.append(dict(val=val, nodes=[int(v) for v in nodes],
                                          taus=[float(sur.nodes[v]) for v in nodes],
                                          tau_end=tau_end, var=var[0], order=order, lof=lof))
        t_sur = time.time() - ts
        # every variant's plan run for real on the first --sel fit seeds; the --top best
        # and BEST's configuration on all the fit seeds
        def true_rmse(c, k):
            var = next(v for v in VARIANTS if v[0] == c["var"])
            xs = run_plan(model, xfit[:k], c["taus"], c["tau_end"], var, c["order"], c["lof"],
                          model.table)
            return math.sqrt(float(np.mean(per_sample_mse(xs.reshape(k, -1),
                                                          x_true[c["tau_end"]][:k]))))
        if args.named_starts:  # the peers' grids with libdeissn's x0 methods, as candidates
            for grid in ("time_uniform", "logsnr", "power1.5"):
                g = search.baseline_grid(vp, grid, nfe, TAU_LAST)
                for vname in ("x0", "x0+corr"):
                    for order in (2, 3):
                        cands.append(dict(val=float("nan"), nodes=None,
                                          taus=[float(t) for t in g[:-1]], tau_end=TAU_LAST,
                                          var=vname, order=order, lof=True, source=grid))
        for c in cands:
            c["sel_rmse"] = (true_rmse(c, args.sel) if math.isfinite(c["val"])
                             or c.get("source") else math.inf)
        cands.sort(key=lambda c: c["sel_rmse"])
        top = []
        for c in cands:  # distinct plans (lof and the order coincide at low NFE)
            if not any(t["sel_rmse"] == c["sel_rmse"] and t["taus"] == c["taus"] for t in top):
                top.append(c)
        top = top[:args.top] + [best_candidate(nfe)]
        for c in top:
            c["fit_rmse"] = true_rmse(c, args.fit)
        ranked = sorted(top, key=lambda c: c["fit_rmse"])
        chosen = dict(ranked[0])
        for start in ranked[:args.refine_plans] if args.refine else []:
            start = dict(start)
            var = next(v for v in VARIANTS if v[0] == start["var"])
            k = args.refine

            def err(taus_):
                xs = run_plan(model, xfit[:k], taus_, start["tau_end"], var, start["order"],
                              start["lof"], model.table)
                return float(np.mean(per_sample_mse(xs.reshape(k, -1),
                                                    x_true[start["tau_end"]][:k])))
            new, _, trials = refine(start, vp, err)
            trial = dict(start, taus=new, source="refined from %s" % start.get("source", "grid"))
            trial["fit_rmse"] = true_rmse(trial, args.fit)
            if trial["fit_rmse"] < chosen["fit_rmse"]:
                chosen = dict(trial, refine_trials=trials, unrefined_fit_rmse=start["fit_rmse"])
        t_all = time.time() - ts
        plans[nfe] = chosen
        out["nfe"][str(nfe)] = dict(chosen=chosen, top=top, seconds=t_all,
                                    surrogate_seconds=t_sur, evaluations=EVALS[0] - e0,
                                    surrogate_calls=len(cands))
        print("NFE %2d: %-8s o%d%s tau_end=%g%s surrogate %.4f fit RMSE %.4f (top: %s) %.1f s "
              "(%.1f s surrogate), %d evaluations"
              % (nfe, chosen["var"], chosen["order"], " lof" if chosen["lof"] else "",
                 chosen["tau_end"], " (%s)" % chosen.get("source", "grid"), chosen["val"], chosen["fit_rmse"],
                 ", ".join("%s o%d%s %g: %.4f/%.4f" % (c["var"], c["order"],
                                                       " lof" if c["lof"] else "", c["tau_end"],
                                                       c["val"], c["fit_rmse"]) for c in top),
                 t_all, t_sur, EVALS[0] - e0), flush=True)
    t_tune = time.time() - t0
    out["tuning_seconds"] = t_tune
    out["tuning_evaluations"] = EVALS[0]
    print("tuning: %.0f s in all (reference %.0f s), %d model evaluations (sample-evaluations)"
          % (t_tune, t_ref, EVALS[0]), flush=True)
    save(out, args)

    # 6. hold-out: tuned vs BEST vs the best peer configuration (chosen on the fit seeds)
    if not args.hold:
        return
    t2 = time.time()
    xh = deissn.noise(HOLD_SEED, args.hold, shape)
    cache = os.path.join(REPO, "build", "tune", "holdref_%s_%d_%d.npz" % (args.model, args.hold,
                                                                        args.grid))
    if os.path.exists(cache):
        z = np.load(cache)
        ref_h = {TAU_LAST: z["a"], 0.0: z["b"]}
    else:
        ref_h = reference(model, xh, taus, record=None)
        os.makedirs(os.path.dirname(cache), exist_ok=True)
        np.savez(cache, a=ref_h[TAU_LAST], b=ref_h[0.0])
    print("hold-out reference: %d seeds %.0f s" % (args.hold, time.time() - t2), flush=True)
    xpf = xfit[:args.peer_fit]
    tf = {k: v[:args.peer_fit] for k, v in x_true.items()}
    for nfe in report:
        row = {}
        # peers: best configuration of each on the fit seeds
        prior = None
        if args.peers_from:
            prior = json.load(open(args.peers_from))["nfe"][str(nfe)]["holdout"]["rows"]
        for fam in ("DPM-Solver++", "UniPC"):
            best = None
            if prior:
                cfg = prior[fam]["cfg"]
                best = (prior[fam]["fit_rmse"], cfg)
            for cfg in ([] if prior else peer_configs()):
                if not cfg["name"].startswith(fam):
                    continue
                o = run_peer(model, vp, cfg, nfe, xpf).reshape(len(xpf), -1)
                r = math.sqrt(float(np.mean(per_sample_mse(o, tf[cfg["tau_end"]]))))
                if best is None or r < best[0]:
                    best = (r, cfg)
            o = run_peer(model, vp, best[1], nfe, xh).reshape(len(xh), -1)
            row[fam] = dict(cfg=best[1], fit_rmse=best[0],
                            mse=per_sample_mse(o, ref_h[best[1]["tau_end"]].reshape(len(xh), -1)))
        # BEST preset, and the tuned plan
        for name, c in (("BEST", best_candidate(nfe)), ("tuned", plans[nfe])):
            var = next(v for v in VARIANTS if v[0] == c["var"])
            o = run_plan(model, xh, c["taus"], c["tau_end"], var, c["order"], c["lof"],
                         model.table)
            row[name] = dict(mse=per_sample_mse(o.reshape(len(xh), -1),
                                                ref_h[c["tau_end"]].reshape(len(xh), -1)))
        peer = min(("DPM-Solver++", "UniPC"), key=lambda f: row[f]["mse"].mean())
        res = {}
        for k, v in row.items():
            m = v["mse"]
            res[k] = dict(rmse=float(np.sqrt(m.mean())), ci=boot_ci(m),
                          ratio_to_peer=float(np.sqrt(m.mean() / row[peer]["mse"].mean())),
                          ratio_ci=boot_ci(m, row[peer]["mse"]),
                          **{kk: vv for kk, vv in v.items() if kk != "mse"})
        out["nfe"].setdefault(str(nfe), {})["holdout"] = dict(samples=args.hold, best_peer=peer,
                                                              rows=res)
        print("hold-out NFE %2d (%d seeds): tuned %.4f [%.4f, %.4f] ratio %.3f [%.3f, %.3f] | "
              "BEST %.4f ratio %.3f [%.3f, %.3f] | %s %.4f (%s %s tau_end=%g) | other %.4f"
              % (nfe, args.hold, res["tuned"]["rmse"], *res["tuned"]["ci"],
                 res["tuned"]["ratio_to_peer"], *res["tuned"]["ratio_ci"],
                 res["BEST"]["rmse"], res["BEST"]["ratio_to_peer"], *res["BEST"]["ratio_ci"],
                 peer, res[peer]["rmse"], res[peer]["cfg"]["name"], res[peer]["cfg"]["grid"],
                 res[peer]["cfg"]["tau_end"],
                 res["UniPC" if peer == "DPM-Solver++" else "DPM-Solver++"]["rmse"]),
              flush=True)
        save(out, args)


def save(out, args):
    path = args.out or os.path.join(HERE, "result_%s.json" % args.model)
    with open(path, "w") as f:
        json.dump(out, f, indent=1, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))


if __name__ == "__main__":
    main()
