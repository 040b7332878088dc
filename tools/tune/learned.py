#!/usr/bin/python3
"""Research (issue #14): do LEARNED PER-STEP COEFFICIENTS beat the best DPM-Solver++ / UniPC?

A linear multistep sampler on a fixed grid tau_0 = 1 > tau_1 > ... > tau_{N-1} > tau_N = end
(N model evaluations, at tau_0 .. tau_{N-1}) whose step i is

    x_{i+1} = sum_{k<px} a_ik x_{i-k} + sum_{j<pe} b_ij eps_{i-j}      (eps_j = model(x_j, tau_j))

with (px, pe) the basis ("x1e1" = DDIM-like, "x1e2", "x1e3", "x1e4", "x2e2" which contains
DPM-Solver++(2M), "x3e3", "x1eA" = every eps so far, which contains UniPC with its corrector);
at the first steps only the history there is. The coefficients of each step are fitted by
least squares to the reference x(tau_{i+1}) of fit trajectories (noise seed 0, --fit samples,
the converged ODE solution, below):

  * "tf" (teacher-forced): the basis vectors are the reference states at the nodes and the
    model's eps there (recorded during the reference solve): no model call in the fit;
  * "ro" (rollout): the sampler is run on the fit noise step by step, and step i is fitted on
    its ACTUAL states / eps (one model call per step per fit trajectory) against x_ref(tau_{i+1}).
  * ridge: the penalty lam * sum_k G_kk (c_k - c0_k)^2 (G the normalised Gram matrix, c0 the
    DEIS coefficients of the same step: exponential integrator in rho = sigma/alpha with the
    Lagrange extrapolation of eps; 0 for the past x's); lam in LAMS chosen by 2-fold
    cross-validation on the fit trajectories only (end-to-end RMSE of the held-out half), then
    refitted on all. "lam0" is the plain least-squares fit. (The prior is DEIS "rho-AB";
    libdeissn's own DEIS, method "eps", orders its polynomial differently: its order 0 is this
    prior with one eps, i.e. DDIM, checked to 1e-7; its orders 1, 2 are not this prior.)
  * the fit trajectories' reference: evaluate.py's (DEIS-3 on the fine grid, then to 0) with
    the states at the grid nodes by a partial DEIS-3 step from the fine time above them, and the
    model's eps there; its accuracy is printed against the same with twice the times;
  * "fit-set RMSE": the rollout's own RMSE at the end on the fit trajectories (in-sample);
    "chosen X" in the summary takes, per NFE, the grid with the lowest fit-set RMSE among those
    run ("chosen2": among tuned and peer): a choice made without the evaluation data.

Grids (--grids): "tuned" = the table's plan for that NFE (its times and tau_end), "peer" = the
best peer's grid (its authors' grid and end), spacing@end = an authors' grid (logsnr@0, ...). Each variant is scored exactly as tools/tune/evaluate.py
scores TUNED (its reference solutions, peer selection on SELECT_SEED, evaluation noise
EVAL_SEED, RMSE to the converged solution at the plan's end, paired bootstrap 95 % interval of
the RMSE ratio to the best peer). The evaluation and selection seeds are never used to fit or
to choose anything here (the ridge weight is chosen on the fit seed).

    nice -n 5 /usr/bin/python3 tools/tune/learned.py --model fmnist-small|gmm-cosine|fmnist \
        [--nfe 4,5,6,8,10] [--fit 128] [--bases x1e3,x1eA] [--kinds tf,ro] [--no-cv] \
        [--grids tuned,peer,logsnr@0.001] [--tag _final]

    /usr/bin/python3 tools/tune/learned.py --summary build/learned/*.json   # the tables

Fit cost (model evaluations): the fit trajectories' reference solve (--fit x ~450, shared by
every NFE and variant; the tuner already has one) plus, for a rollout fit, N per fit
trajectory (printed as fit-evals; the ridge's cross-validation costs more); a teacher-forced fit needs
none. Reference solves are cached
under build/learned/. Output: one line per (NFE, variant) on stdout (tools/tune/log_learned.txt
is the log of the runs, with the tables) and build/learned/<model>_fit<K><tag>.json (runs with
other bases or kinds add their rows to it). tools/tune/log_learned.txt: PART 1 the final runs.
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
sys.path.insert(0, HERE)
import evaluate as EV  # noqa: E402
from evaluate import B, deissn, search, boot, per_sample_mse, fine_grid, TAU_LAST  # noqa: E402

CACHE = os.path.join(EV.REPO, "build", "learned")
FIT_SEED = 0
BASES = {"x1e1": (1, 1), "x1e2": (1, 2), "x1e3": (1, 3), "x2e2": (2, 2), "x1e4": (1, 4),
         "x3e3": (3, 3), "x1eA": (1, 99)}  # x1eA: every eps so far (contains UniPC's steps)
LAMS = [0.0, 1e-3, 1e-2, 1e-1]


def cached(name, fn):
    path = os.path.join(CACHE, name + ".npz")
    if os.path.exists(path):
        d = np.load(path)
        return {k: d[k] for k in d.files}
    out = fn()
    os.makedirs(CACHE, exist_ok=True)
    np.savez(path, **out)
    return out


def snap(g):
    """A grid with its times within 1e-12 of 1e-3 set to 1e-3 (time_quadratic's end is
    0.000999..., which would be a second node next to 1e-3 and a key missing from the
    references)."""
    g = np.asarray(g, np.float64).copy()
    g[np.abs(g - TAU_LAST) < 1e-12] = TAU_LAST
    return g


def reference_nodes(model, noise, vp, x, S, nodes):
    """evaluate.py's reference (libdeissn DEIS-3 on fine_grid(S), then to 0: the same x(0) and
    x(1e-3)) with the states at the other nodes by a partial DEIS-3 step (deis_prior, rho-AB)
    from the fine point above them, and the model's eps there (one call per node): keys
    'taus', 'X', 'E' (every node > 0), 'X0' = x(0). (Putting the nodes into the fine grid
    instead makes tiny steps where two grids' nodes nearly coincide: RMSE 1e-2 at x(0).)"""
    fg = fine_grid(S)
    want = np.unique(np.asarray([v for v in nodes if v > 0]))[::-1]
    smp = deissn.Sampler(deissn.Schedule(noise=noise, taus=fg, tau_end=0.0), None, order=3)
    xs = np.ascontiguousarray(x, dtype=np.float32).copy()
    K = len(x)
    X = np.empty((len(want), K, xs[0].size), np.float32)
    E = np.empty_like(X)
    hist = []  # (tau, eps [K, D] float64) newest last
    for info in smp:
        e = model.eps(xs, info.tau)
        k = info.step
        hist = (hist + [(float(fg[k]), e.reshape(K, -1).astype(np.float64))])[-3:]
        lo = float(fg[k + 1]) if k + 1 < len(fg) else 0.0
        xk = xs.reshape(K, -1).astype(np.float64)
        for j, t in enumerate(want):
            if t == fg[k]:
                X[j], E[j] = xk, hist[-1][1]
            elif lo < t < fg[k]:
                g = np.array([h[0] for h in hist] + [t])
                c = deis_prior(vp, g, len(hist) - 1, 1, 3)
                xt = c[0] * xk + sum(float(cj) * hist[-1 - m][1] for m, cj in enumerate(c[1:]))
                X[j] = xt
                E[j] = model.eps(X[j].reshape(xs.shape), float(t)).reshape(K, -1)
        smp.step(xs, e)
    return dict(taus=want, X=X, E=E, X0=xs.reshape(K, -1))


class RefLookup:
    def __init__(self, rec):
        self.taus, self.X, self.E, self.X0 = rec["taus"], rec["X"], rec["E"], rec["X0"]

    def _k(self, t):
        k = int(np.argmin(np.abs(self.taus - t)))
        assert abs(self.taus[k] - t) < 1e-12, t
        return k

    def x(self, t, idx=slice(None)):
        return (self.X0 if t == 0.0 else self.X[self._k(t)])[idx].astype(np.float64)

    def e(self, t, idx=slice(None)):
        return self.E[self._k(t)][idx].astype(np.float64)


def deis_prior(vp, grid, i, px, pe):
    """DEIS coefficients of step i in the basis (x_i..x_{i-px+1}, eps_i..eps_{i-pe'+1}):
    x_{i+1}/alpha_{i+1} = x_i/alpha_i + int_{rho_i}^{rho_{i+1}} P(rho) drho, P the Lagrange
    polynomial through eps at rho_i .. rho_{i-pe'+1}."""
    def rho(t):
        a, s = vp.alpha_sigma(t)
        return s / a
    pe_ = min(pe, i + 1)
    pq = min(pe_, 3)  # at most DEIS-3; the older eps get 0
    a1, _ = vp.alpha_sigma(grid[i + 1])
    a0, _ = vp.alpha_sigma(grid[i])
    r = [rho(grid[i - j]) for j in range(pq)]
    r0, r1 = rho(grid[i]), rho(grid[i + 1])
    c = [a1 / a0] + [0.0] * (min(px, i + 1) - 1)
    # integrate the Lagrange basis polynomials exactly (Gauss-Legendre, degree < 3 exact)
    gx, gw = np.polynomial.legendre.leggauss(4)
    q = 0.5 * (r1 - r0) * gx + 0.5 * (r1 + r0)
    w = 0.5 * (r1 - r0) * gw
    for j in range(pq):
        L = np.ones_like(q)
        for m in range(pq):
            if m != j:
                L *= (q - r[m]) / (r[j] - r[m])
        c.append(a1 * float(np.sum(w * L)))
    return np.array(c + [0.0] * (pe_ - pq))


def basis(xh, eh, i, px, pe):
    """The basis vectors of step i: the newest px states and pe eps (as far as history goes)."""
    return [xh[i - k] for k in range(min(px, i + 1))] + [eh[i - j] for j in range(min(pe, i + 1))]


def solve(cols, y, c0, lam):
    """argmin ||A c - y||^2/n + lam sum_k G_kk (c_k - c0_k)^2 (A's columns cols)."""
    m = len(cols)
    G = np.empty((m, m))
    g = np.empty(m)
    for a in range(m):
        g[a] = np.vdot(cols[a], y)
        for b in range(a, m):
            G[a, b] = G[b, a] = np.vdot(cols[a], cols[b])
    d = np.diag(G).copy()
    return np.linalg.solve(G + lam * np.diag(d), g + lam * d * c0)


def run(model, x, grid, coefs, px, pe, fit=None):
    """The learned sampler from x (float, [K, ...]) on grid with per-step coefficients coefs
    (list), N model calls. fit = (ref, idx, lam, vp): fit step i on the actual states against
    the reference at grid[i+1] first (rollout fit), filling coefs."""
    shape = x.shape
    K = len(x)
    xh = {0: x.reshape(K, -1).astype(np.float64)}
    eh = {}
    N = len(grid) - 1
    for i in range(N):
        eh[i] = model.eps(xh[i].astype(np.float32).reshape(shape), float(grid[i])).reshape(
            K, -1).astype(np.float64)
        cols = basis(xh, eh, i, px, pe)
        if fit is not None:
            ref, idx, lam, vp = fit
            c0 = deis_prior(vp, grid, i, px, pe)
            coefs.append(solve(cols, ref.x(float(grid[i + 1]), idx), c0, lam))
        c = coefs[i]
        xh[i + 1] = sum(float(ck) * v for ck, v in zip(c, cols))
        if px <= 3 and pe <= 3:
            xh.pop(i - 3, None)
            eh.pop(i - 3, None)
    return xh[N]


def fit_tf(ref, idx, grid, px, pe, lam, vp):
    """Teacher-forced fit: basis from the reference states / eps at the nodes."""
    N = len(grid) - 1
    xh = {i: ref.x(float(grid[i]), idx) for i in range(N)}
    eh = {i: ref.e(float(grid[i]), idx) for i in range(N)}
    out = []
    for i in range(N):
        out.append(solve(basis(xh, eh, i, px, pe), ref.x(float(grid[i + 1]), idx),
                         deis_prior(vp, grid, i, px, pe), lam))
    return out


def fit(model, xf, ref, grid, px, pe, lam, vp, kind, idx, info=None):
    """The coefficients of every step; info (a dict), rollout only: its "fit_rmse", the RMSE
    at the end of the rollout on the fit trajectories themselves (in-sample, no extra call)."""
    if kind == "tf":
        return fit_tf(ref, idx, grid, px, pe, lam, vp)
    coefs = []
    o = run(model, xf[idx], grid, coefs, px, pe, fit=(ref, idx, lam, vp))
    if info is not None:
        info["fit_rmse"] = math.sqrt(float(np.mean((o - ref.x(float(grid[-1]), idx)) ** 2)))
    return coefs


def fit_cv(model, xf, ref, grid, px, pe, vp, kind):
    """Ridge weight by 2-fold cross-validation on the fit trajectories, refit on all."""
    K = len(xf)
    halves = [np.arange(0, K // 2), np.arange(K // 2, K)]
    end = float(grid[-1])
    scores = []
    for lam in LAMS:
        tot = 0.0
        for a, b in ((0, 1), (1, 0)):
            c = fit(model, xf, ref, grid, px, pe, lam, vp, kind, halves[a])
            o = run(model, xf[halves[b]], grid, c, px, pe)
            tot += float(np.sum((o - ref.x(end, halves[b])) ** 2))
        scores.append(tot)
    lam = LAMS[int(np.argmin(scores))]
    return lam, fit(model, xf, ref, grid, px, pe, lam, vp, kind, slice(None)), scores


def summary(paths):
    """Tables of the ratios to the best peer (rows: variants, columns: NFE) of result files."""
    for path in paths:
        d = json.load(open(path))
        nfes = sorted(d["nfe"], key=int)
        print("\n%s, %d fit trajectories, %d evaluation samples: RMSE / best peer's [95 %%]"
              % (d["model"], d["fit"], d["samples"]))
        print("%-36s" % "variant" + "".join("%22s" % ("NFE " + v) for v in nfes))
        print("%-36s" % "TUNED plan" + "".join(
            "%22s" % ("%.3f [%.2f,%.2f]" % tuple(d["nfe"][v]["tuned"]["ratio"]))
            if "tuned" in d["nfe"][v] else "%22s" % "" for v in nfes))
        keys = []
        for v in nfes:
            keys += [k for k in d["nfe"][v]["rows"] if k not in keys]
        # per NFE the grid with the lowest fit-set RMSE of the rollout fit (among those run):
        # a choice without the evaluation data; "chosen2" among tuned and peer only
        for v in nfes:
            rows = d["nfe"][v]["rows"]
            for tag, allowed in (("chosen", None), ("chosen2", ("tuned", "peer"))):
                cand = {}
                for k, r in list(rows.items()):
                    g, rest = k.split(" ", 1)
                    if g.startswith("chosen") or r.get("fit_rmse") is None or (
                            allowed and g not in allowed):
                        continue
                    if rest not in cand or r["fit_rmse"] < cand[rest]["fit_rmse"]:
                        cand[rest] = dict(r, grid=g)
                for rest, r in cand.items():
                    rows["%s %s" % (tag, rest)] = r
                    if "%s %s" % (tag, rest) not in keys:
                        keys.append("%s %s" % (tag, rest))
        for k in keys:
            cells = []
            for v in nfes:
                r = d["nfe"][v]["rows"].get(k)
                cells.append("%22s" % ("%.3f [%.2f,%.2f]" % (r["ratio"], *r["ci"]) if r else ""))
            print("%-36s" % k + "".join(cells))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=list(EV.MODELS))
    ap.add_argument("--nfe", type=lambda s: [int(v) for v in s.split(",")],
                    default=[4, 5, 6, 8, 10])
    ap.add_argument("--fit", type=int, default=128, help="fit trajectories (seed 0)")
    ap.add_argument("--samples", type=int, default=None)
    ap.add_argument("--select", type=int, default=None)
    ap.add_argument("--bases", default="x1e1,x1e2,x1e3,x2e2")
    ap.add_argument("--kinds", default="tf,ro")
    ap.add_argument("--grids", default="tuned,peer",
                    help="tuned, peer and/or authors' grids as spacing@end (logsnr@0, ...)")
    ap.add_argument("--no-cv", action="store_true", help="only lam = 0")
    ap.add_argument("--no-prior", action="store_true", help="no row of the prior alone")
    ap.add_argument("--tag", default="", help="suffix of the result file's name")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--summary", nargs="*", help="print the tables of these result files")
    args = ap.parse_args()
    if args.summary is not None:
        summary(args.summary)
        return
    name = args.model
    spec = EV.MODELS[name]
    torch.set_num_threads(1)
    t0 = time.time()
    model = EV.Model(spec, args.batch)
    noise = spec["noise"]
    vp = B.VP(noise=noise)
    plans = EV.load_plans(os.path.join(EV.REPO, spec["table"]), noise)
    n, k_sel = args.samples or spec["samples"], args.select or spec["select"]
    shape = spec["shape"]
    xe = deissn.noise(EV.EVAL_SEED, n, shape)
    xs = deissn.noise(EV.SELECT_SEED, k_sel, shape)
    xf = deissn.noise(FIT_SEED, args.fit, shape)
    S = spec["grid"]

    e0 = EV.EVALS[0]
    ref_e = cached("%s_eval%d" % (name, n), lambda: {
        str(k): v for k, v in EV.reference(model, noise, xe, S).items()})
    ref_s = cached("%s_select%d" % (name, k_sel), lambda: {
        str(k): v for k, v in EV.reference(model, noise, xs, S).items()})
    ref_e = {float(k): v for k, v in ref_e.items()}
    ref_s = {float(k): v for k, v in ref_s.items()}
    print("%s: eval/select references (%d + %d samples) %d evaluations, %.0f s"
          % (name, n, k_sel, EV.EVALS[0] - e0, time.time() - t0), flush=True)

    # peers (as evaluate.py: best of each family on the selection samples, then the better
    # family on the evaluation samples) and the grids
    grids, peers, tuned = {}, {}, {}
    for nfe in args.nfe:
        pl = plans[nfe]
        grids[(nfe, "tuned")] = snap(np.append(np.asarray(pl["taus"], np.float64), pl["tau_end"]))
        sel = {}
        for fam, fn, order in EV.PEERS:
            for gname in EV.PEER_GRIDS:
                for te in (0.0, TAU_LAST):
                    g = search.baseline_grid(vp, gname, nfe, te)
                    o = EV.run_peer(model, vp, fn, order, g, xs)
                    r = math.sqrt(float(np.mean(per_sample_mse(o, ref_s[te]))))
                    if fam not in sel or r < sel[fam][0]:
                        sel[fam] = (r, dict(fn=fn, order=order, grid=gname, tau_end=te), g)
        best = None
        for fam, (r, cfg, g) in sel.items():
            m = per_sample_mse(EV.run_peer(model, vp, cfg["fn"], cfg["order"], g, xe),
                               ref_e[cfg["tau_end"]])
            if best is None or m.mean() < best[1].mean():
                best = (fam, m, cfg, g)
        peers[nfe] = best
        grids[(nfe, "peer")] = snap(best[3])
        for gname in args.grids.split(","):
            if "@" in gname:  # an authors' grid, e.g. logsnr@0, time_uniform@0.001
                sp, te = gname.split("@")
                grids[(nfe, gname)] = snap(search.baseline_grid(vp, sp, nfe, float(te)))
        o = EV.run_lib(model, noise, xe, pl["taus"], pl["tau_end"], pl["method"], pl["order"],
                       pl["lower_order_final"], pl["corrector"],
                       deissn.NormTable.load(os.path.join(EV.REPO, spec["table"]))
                       if pl["uses_table"] else None)
        mt = per_sample_mse(o, ref_e[pl["tau_end"]])
        tuned[nfe] = [math.sqrt(mt.mean() / best[1].mean()), *boot(mt, best[1])]
        print("%s NFE %2d: best peer %s %s o%d %s end %g RMSE %.4f; TUNED (%s) ratio %.3f "
              "[%.3f, %.3f]" % (name, nfe, best[0], best[2]["fn"], best[2]["order"],
                                best[2]["grid"], best[2]["tau_end"], math.sqrt(best[1].mean()),
                                EV.label_plan(pl), math.sqrt(mt.mean() / best[1].mean()),
                                *boot(mt, best[1])), flush=True)

    nodes = sorted({float(v) for g in grids.values() for v in g})
    e0 = EV.EVALS[0]
    tag = "%s_fit%d_%s" % (name, args.fit, "_".join("%g" % v for v in args.nfe))
    if args.grids != "tuned,peer":
        tag += "_" + args.grids.replace(",", "_").replace("@", "-").replace("time_", "")
    rec = cached(tag + "_v2", lambda: reference_nodes(model, noise, vp, xf, S, nodes))
    ref = RefLookup(rec)
    r8 = reference_nodes(model, noise, vp, xf[:8], 2 * S, nodes)
    d8 = np.sqrt(np.mean((rec["X"][:, :8].astype(np.float64) - r8["X"]) ** 2, axis=(1, 2)))
    print("%s: fit reference of %d trajectories (%d nodes) %d evaluations; its states at the "
          "nodes vs the same with %d times (8 samples): RMSE at most %.1e (at tau %g), %.1e at 0"
          % (name, args.fit, len(nodes), EV.EVALS[0] - e0, 2 * S, d8.max(),
             rec["taus"][int(np.argmax(d8))],
             math.sqrt(float(np.mean((rec["X0"][:8] - r8["X0"]) ** 2)))), flush=True)

    jpath = os.path.join(CACHE, "%s_fit%d%s.json" % (name, args.fit, args.tag))
    out = dict(model=name, fit=args.fit, samples=n, nfe={})
    if os.path.exists(jpath):  # runs with other bases / kinds add their rows
        prev = json.load(open(jpath))
        if prev.get("samples") == n:
            out = prev
    for nfe in args.nfe:
        fam, mp, pcfg, _ = peers[nfe]
        res = {}
        for gname in args.grids.split(","):
            grid = grids[(nfe, gname)]
            end = float(grid[-1])
            for bname in args.bases.split(","):
                px, pe = BASES[bname]
                # the prior alone (DEIS-p in this basis) as a check
                prior = [deis_prior(vp, grid, i, px, pe) for i in range(nfe)]
                variants = [("deis-prior", prior, None, None)] \
                    if px == 1 and pe <= 3 and not args.no_prior else []
                fit_rmse = {}
                for kind in args.kinds.split(","):
                    e1 = EV.EVALS[0]
                    info = {}
                    c = fit(model, xf, ref, grid, px, pe, 0.0, vp, kind, slice(None), info)
                    variants.append(("%s lam0" % kind, c, 0.0, EV.EVALS[0] - e1))
                    fit_rmse["%s lam0" % kind] = info.get("fit_rmse")
                    if not args.no_cv:
                        e1 = EV.EVALS[0]
                        lam, c, _ = fit_cv(model, xf, ref, grid, px, pe, vp, kind)
                        variants.append(("%s ridge" % kind, c, lam, EV.EVALS[0] - e1))
                for vname, c, lam, cost in variants:
                    o = run(model, xe, grid, c, px, pe)
                    m = per_sample_mse(o, ref_e[end].reshape(len(o), -1))
                    key = "%s %s %s" % (gname, bname, vname)
                    ratio = math.sqrt(m.mean() / mp.mean())
                    ci = boot(m, mp)
                    res[key] = dict(rmse=math.sqrt(m.mean()), ratio=ratio, ci=ci, lam=lam,
                                    fit_evaluations=cost, fit_rmse=fit_rmse.get(vname),
                                    coefs=[[float(v) for v in ci_] for ci_ in c])
                    print("%s NFE %2d %-5s %-4s %-10s ratio %.3f [%.3f, %.3f] RMSE %.4f%s%s"
                          % (name, nfe, gname, bname, vname, ratio, ci[0], ci[1],
                             math.sqrt(m.mean()),
                             "" if lam is None else " lam %g" % lam,
                             "" if cost is None else " fit-evals %d" % cost) +
                          ("" if fit_rmse.get(vname) is None
                           else " fit-set RMSE %.4f" % fit_rmse[vname]), flush=True)
        rows = out["nfe"].get(str(nfe), {}).get("rows", {})
        rows.update(res)
        out["nfe"][str(nfe)] = dict(peer=fam, peer_cfg=pcfg, peer_rmse=math.sqrt(mp.mean()),
                                    tuned=dict(plan=EV.label_plan(plans[nfe]), ratio=tuned[nfe]),
                                    grids={k[1]: list(map(float, v)) for k, v in grids.items()
                                           if k[0] == nfe}, rows=rows)
        with open(jpath, "w") as fh:
            json.dump(out, fh)
    print("%s: %.0f s, %d sample-evaluations" % (name, time.time() - t0, EV.EVALS[0]))


if __name__ == "__main__":
    main()
