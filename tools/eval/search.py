#!/usr/bin/python3
"""Search libdeissn's options against DPM-Solver++ and UniPC (docs/presets.md).

For every NFE, every configuration samples the same initial noise and is scored by the RMSE to
a converged ground truth of the same probability-flow ODE from the same noise (libdeissn DEIS
order 3 with 1000 trailing steps, i.e. one step per knot of alpha_bar; checked against 500
steps), at the configuration's own end time (tau_end = 0: x(0); tau_end = 1e-3: x(1e-3)).
"vs x(0)" also scores every run against x(0), so that stopping early is charged for the part of
the trajectory it skips. Runs with a final denoise spend one of their NFE on the x0 prediction
at tau_end (libdeissn has no such option: it is done here, in Python), and are scored vs x(0).

libdeissn configurations: spacing (quadratic, trailing, uniform = power 1, logsnr, karras) x
order 1-3 x lower_order_final x tau_end (0, 1e-3) x table (DEIS-SN) or not. Baselines
(tools/eval/baselines.py): DPM-Solver++ 2M/3M and UniPC-3 (bh2, UniC) on the grids their
authors use (logSNR, time_uniform, time_quadratic from 1 to tau_end), with and without
lower_order_final, ending at 1e-3 (their default for discrete models), at 0, or at 1e-3 plus a
final denoise ("denoise_to_zero").

    /usr/bin/python3 tools/eval/search.py [--model fmnist|gmm] [--samples N] [--fd-samples N]

Writes build/eval/presets_<model>.json (every run) and prints the summary tables; with
--plot, docs/img/presets_rmse.png from the JSON files present. `make eval-presets` runs both
models and the plot.
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
sys.path.insert(0, HERE)
import baselines as B  # noqa: E402
from baselines import deissn  # noqa: E402

OUT_DIR = os.environ.get("DEISSN_EVAL_OUT", os.path.join(REPO, "build", "eval"))
NFES = [5, 6, 8, 10, 15, 20]
FD_NFES = [5, 10]
SPACINGS = ["quadratic", "trailing", "uniform", "logsnr", "karras"]
TAU_ENDS = [0.0, 1e-3]
LIB_METHODS = ["deis-sn", "deis", "deis-x0"]
GROUPS = LIB_METHODS + ["dpm++", "unipc"]
SEED = 2024
TABLE_SAMPLES, TABLE_STEPS = 8, 500  # fmnist's fallback table (the shipped one is absent)


# ---- models -------------------------------------------------------------------------------

# name: (TorchScript eps model, its table). "fmnist" is the shipped model; "fmnist-small" the
# second model, trained differently to guard against tuning the presets to one network:
#   tools/train_tiny_model.py --name fmnist_small --seed 1 --widths 12,24,32,48 --iters 2000 \
#       --threads 1 --calib-samples 0
#   deissn-calibrate --model fmnist_small.pt --samples 512 --batch 128 --seed 0 \
#       --out fmnist_small_table.dsn
IMAGE_MODELS = {
    "fmnist": (os.path.join(REPO, "models", "fmnist_unet.pt"),
               os.path.join(REPO, "tools", "eval", "fmnist_unet_table.pt")),
    "fmnist-small": (os.path.join(HERE, "fmnist_small.pt"),
                     os.path.join(HERE, "fmnist_small_table.dsn")),
}


def make_gmm():
    """A fixed 16-d mixture of 12 narrow Gaussians (data in about [-1, 1], component standard
    deviations 0.03-0.15, so the score changes fast near tau = 0 as an image model's does)."""
    g = torch.Generator().manual_seed(7)
    K, d = 12, 16
    means = (torch.rand(K, d, generator=g, dtype=torch.float64) * 1.6 - 0.8)
    stds = 0.03 + 0.12 * torch.rand(K, generator=g, dtype=torch.float64)
    weights = 0.5 + torch.rand(K, generator=g, dtype=torch.float64)
    return B.GaussianMixture(means, stds, weights)


def calibrate_table(eps_fn, vp, shape, n=2000, seed=99, steps=1000):
    """r(tau) = mean |eps| along `steps`-step trailing DDIM runs (what deissn-calibrate
    measures), as a table with a knot per step (no clip)."""
    sched = deissn.Schedule(spacing="trailing", steps=steps)
    taus = sched.taus
    x = torch.from_numpy(deissn.noise(seed, n, shape)).to(torch.float64)
    r = []
    for i in range(steps):
        e = eps_fn(x, taus[i])
        r.append(e.abs().mean().item())
        a_s, s_s = vp.alpha_sigma(taus[i])
        a_t, s_t = vp.alpha_sigma(taus[i + 1])
        x = a_t * (x - s_s * e) / a_s + s_t * e
    tau = taus[:-1][::-1].copy()
    return deissn.NormTable.from_arrays(tau, np.array(r[::-1]))


def load_model(name, vp):
    if name == "gmm":
        gm = make_gmm()
        f = gm.eps_fn(vp)
        return dict(name="gmm", eps_fn=f, shape=(16,), table=calibrate_table(f, vp, (16,)),
                    table_name="calibrated here (2000 samples, 1000 trailing DDIM steps)",
                    forward_model=None)
    path, tpath = IMAGE_MODELS[name]
    if not os.path.exists(path):
        sys.exit("search: %s is not there yet" % path)
    net = torch.jit.load(path).eval()
    f = B.torchscript_eps_fn(net, vp.T)
    if name != "fmnist":
        table, tname = deissn.NormTable.load(tpath), os.path.relpath(tpath, REPO)
    elif os.path.exists(tpath):
        table, tname = deissn.NormTable.load(tpath, clip=0), os.path.relpath(tpath, REPO)
    else:  # not shipped yet: measure one here (as deissn-calibrate would, fewer samples)
        cpath = os.path.join(OUT_DIR, "fmnist_table_search.dtab")
        if os.path.exists(cpath):
            table = deissn.NormTable.load(cpath)
        else:
            os.makedirs(OUT_DIR, exist_ok=True)
            table = calibrate_table(batched(f, 256), vp, (1, 32, 32), n=TABLE_SAMPLES,
                                    steps=TABLE_STEPS)
            table.save(cpath)
        tname = "%s (%d samples, %d trailing DDIM steps, no clip; the shipped table was not " \
                "there yet)" % (os.path.relpath(cpath, REPO), TABLE_SAMPLES, TABLE_STEPS)
    print("table:", tname, flush=True)
    return dict(name=name, eps_fn=f, shape=(1, 32, 32), table=table, table_name=tname,
                forward_model=net)


def setup(args):
    """The noise schedule and args.model, its eps evaluated in batches of args.batch."""
    torch.set_num_threads(args.threads)
    vp = B.VP(noise="linear")
    m = load_model(args.model, vp)
    m["eps_fn"] = batched(m["eps_fn"], args.batch)
    return vp, m


def batched(eps_fn, batch):
    """eps_fn evaluated in chunks of `batch` samples."""
    def f(x, tau):
        if x.shape[0] <= batch:
            return eps_fn(x, tau)
        return torch.cat([eps_fn(x[i:i + batch], tau) for i in range(0, x.shape[0], batch)])
    return f


# ---- ground truth -------------------------------------------------------------------------


def ground_truth(m, vp, x, steps=1000):
    """x(1e-3) and x(0): DEIS order 3 (float32 state) evaluated at `steps` times uniform from
    tau = 1 to 1e-3 (for 1000 steps: every knot k/T of alpha_bar), then the step to 0."""
    evals = np.linspace(1.0, 1e-3, steps)
    sched = deissn.Schedule(noise="linear", taus=evals, tau_end=0.0)
    out = {}
    sampler = deissn.Sampler(sched, None, order=3)
    xs = np.ascontiguousarray(x.numpy(), dtype=np.float32)
    for info in sampler:
        e = m["eps_fn"](torch.from_numpy(xs).to(torch.float64), info.tau)
        if info.step == steps - 1:
            out[1e-3] = torch.from_numpy(xs.copy()).to(torch.float64)
        sampler.step(xs, e.to(torch.float32).numpy())
    out[0.0] = torch.from_numpy(xs.copy()).to(torch.float64)
    return out


def cached_ground_truth(m, vp, x, tag, steps=1000):
    os.makedirs(OUT_DIR, exist_ok=True)
    path = os.path.join(OUT_DIR, "gt_%s.pt" % tag)
    if os.path.exists(path):
        d = torch.load(path)
        if d["x_init"].shape == x.shape and torch.equal(d["x_init"], x):
            return d["gt"], d["check"]
    t0 = time.time()
    gt = ground_truth(m, vp, x, steps)
    t1 = time.time()
    k = min(len(x), 16 if steps >= 1000 else 4)  # convergence check on a subset: half the steps
    half = ground_truth(m, vp, x[:k], steps // 2)
    check = {str(te): rmse(half[te], gt[te][:k]) for te in gt}
    check["steps"], check["check_steps"], check["check_samples"] = steps, steps // 2, k
    check["seconds"] = t1 - t0
    check["x0_vs_x1e-3"] = rmse(gt[0.0], gt[1e-3])
    torch.save(dict(x_init=x, gt=gt, check=check), path)
    return gt, check


def rmse(a, b):
    return float(torch.sqrt(torch.mean((a.to(torch.float64) - b.to(torch.float64)) ** 2)))


# ---- configurations -----------------------------------------------------------------------


def library_grid(vp, spacing, steps, tau_end):
    """The libdeissn schedule of a configuration (None: not expressible)."""
    kw = dict(noise="linear", steps=steps, tau_end=tau_end)
    if spacing == "uniform":
        return deissn.Schedule(spacing="power", power=1.0, **kw)
    if spacing.startswith("power"):  # e.g. power2.5: tau = tau_end + (1 - tau_end) (k/N)^2.5
        return deissn.Schedule(spacing="power", power=float(spacing[5:]), **kw)
    if spacing in ("logsnr", "karras") and tau_end > 0:
        # evaluation times end at tau_min_eval: one logSNR step above tau_end
        return deissn.Schedule(spacing=spacing, tau_min_eval=2 * tau_end if spacing == "karras"
                               else float(B.grid_logsnr(vp, steps, tau_end)[-2]), **kw)
    return deissn.Schedule(spacing=spacing, **kw)


def library_configs(spacings=SPACINGS, orders=(1, 2, 3), no_sn_spacings=None, denoise=False,
                    methods=("deis-sn", "deis", "deis-x0")):
    """libdeissn's configurations: DEIS-SN (the table), DEIS (no table), and "deis-x0"
    (DEISSN_METHOD_DATA, with and without the corrector); with `denoise`, DEIS-SN of the
    highest order stopping at tau_end = 1e-3 is also tried with a final denoise (done here:
    the library has none)."""
    for method in methods:
        for spacing in (spacings if method == "deis-sn" or no_sn_spacings is None
                        else no_sn_spacings):
            for tau_end in TAU_ENDS:
                for order in orders:
                    for lof in ((False, True) if order > 0 else (False,)):
                        for dn in ((False, True) if denoise and method == "deis-sn"
                                   and tau_end > 0 and order == max(orders) else (False,)):
                            for corr in ((False, True) if method == "deis-x0" else (False,)):
                                yield dict(method=method, spacing=spacing, tau_end=tau_end,
                                           order=order, lof=lof, denoise=dn, corrector=corr)


def baseline_grid(vp, spacing, n, tau_end):
    if spacing == "logsnr":
        return B.grid_logsnr(vp, n, tau_end)
    if spacing == "time_uniform":
        return B.grid_time_uniform(vp, n, tau_end)
    if spacing == "time_quadratic":
        return B.grid_time_quadratic(vp, n, tau_end)
    return B.grid_from_schedule(library_grid(vp, spacing, n, tau_end))  # libdeissn's grids


BASELINE_SPACINGS = ["logsnr", "time_uniform", "time_quadratic"]


def baseline_configs(spacings=BASELINE_SPACINGS, ends=("1e-3", "0", "1e-3+denoise"),
                     all_lof=True):
    """The baselines; lower_order_final (the authors' default) is always tried, without it
    only at tau_end > 0 without denoise unless all_lof."""
    ends = [(float(e.split("+")[0]), e.endswith("+denoise")) for e in ends]
    for method, order, third in (("dpm++", 2, None), ("dpm++", 3, "taylor"),
                                 ("dpm++", 3, "official"), ("unipc", 3, None),
                                 ("unipc", 2, None)):
        for spacing in spacings:
            for tau_end, denoise in ends:
                for lof in ((True, False) if all_lof or (tau_end > 0 and not denoise)
                            else (True,)):
                    yield dict(method=method, order=order, third=third, spacing=spacing,
                               tau_end=tau_end, denoise=denoise, lof=lof)


def run_config(m, vp, cfg, nfe, x):
    """The samples of one configuration at `nfe` model evaluations, and the end time."""
    f = m["eps_fn"]
    steps = nfe - 1 if cfg["denoise"] else nfe
    if cfg["method"] in LIB_METHODS:
        sched = library_grid(vp, cfg["spacing"], steps, cfg["tau_end"])
        table = m["table"] if cfg["method"] == "deis-sn" else None

        out = B.deis(f, x, None, table=table, order=cfg["order"],
                     lower_order_final=cfg["lof"], schedule=sched,
                     method="data" if cfg["method"] == "deis-x0" else "eps",
                     corrector=cfg.get("corrector", False))
    else:
        g = baseline_grid(vp, cfg["spacing"], steps, cfg["tau_end"])
        if cfg["method"] == "dpm++":
            out = B.dpm_solver_pp(f, x, g, vp, order=cfg["order"], lower_order_final=cfg["lof"],
                                  third=cfg["third"] or "taylor")
        else:
            out = B.unipc(f, x, g, vp, order=cfg["order"], lower_order_final=cfg["lof"])
    if cfg["denoise"]:
        out = B.final_denoise(vp, f, out, cfg["tau_end"])
        return out, 0.0
    return out, cfg["tau_end"]


def label(cfg):
    if cfg["method"] in LIB_METHODS:
        s = "%s %s o%d%s%s tau_end=%g" % (cfg["method"], cfg["spacing"], cfg["order"],
                                          " lof" if cfg["lof"] else "",
                                          " +corr" if cfg.get("corrector") else "", cfg["tau_end"])
    else:
        name = {"dpm++": "DPM-Solver++(%dM)" % cfg["order"],
                "unipc": "UniPC-%d" % cfg["order"]}[cfg["method"]]
        if cfg.get("third") == "official":
            name += "-official"
        s = "%s %s%s tau_end=%g" % (name, cfg["spacing"], " lof" if cfg["lof"] else "",
                                    cfg["tau_end"])
    return s + (" +denoise" if cfg["denoise"] else "")


# ---- Frechet distance (fmnist only, tools/eval/fid.py) -------------------------------------


def fd_scorer():
    try:
        import fid
    except ImportError:
        return None
    if not os.path.exists(fid.CLASSIFIER):
        return None
    net = fid.load_classifier()
    ref = fid.stats(fid.features(net, fid.load_fmnist("t10k")[0]))

    def score(images):
        return fid.frechet_distance(fid.stats(fid.features(net, images.numpy())), ref)
    return score


# ---- main ---------------------------------------------------------------------------------


def group(cfg):
    return cfg["method"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="fmnist", choices=list(IMAGE_MODELS) + ["gmm"])
    ap.add_argument("--samples", type=int, default=None,
                    help="samples scored by RMSE (default: 48 fmnist, 2000 gmm)")
    ap.add_argument("--fd-samples", type=int, default=0,
                    help="fmnist: samples for the Frechet distance of each method's best "
                         "configuration at NFE 5 and 10 (0: no FD)")
    ap.add_argument("--nfe", default=",".join(map(str, NFES)))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--quick", action="store_true", help="libdeissn's configurations only")
    ap.add_argument("--spacings", default=",".join(SPACINGS),
                    help="libdeissn spacings to try (also powerP, e.g. power2.5)")
    ap.add_argument("--baseline-spacings", default=",".join(BASELINE_SPACINGS),
                    help="grids for the baselines: logsnr, time_uniform, time_quadratic (the "
                         "authors'), or any libdeissn spacing")
    ap.add_argument("--gt-steps", type=int, default=1000,
                    help="ground-truth steps (checked against half as many)")
    ap.add_argument("--stage1", default="",
                    help="NFEs at which every configuration runs (default: all); at the others "
                         "only the --shortlist best of each method group and the presets")
    ap.add_argument("--shortlist", type=int, default=3)
    ap.add_argument("--orders", default="1,2,3", help="libdeissn orders to try")
    ap.add_argument("--lib-methods", default=",".join(LIB_METHODS),
                    help="libdeissn methods: deis-sn, deis (no table), deis-x0 "
                         "(DEISSN_METHOD_DATA, with and without the corrector), or none")
    ap.add_argument("--no-sn-spacings", default=None,
                    help="libdeissn spacings tried without the table (default: --spacings)")
    ap.add_argument("--baseline-lof-end-only", action="store_true",
                    help="baselines without lower_order_final only when stopping at 1e-3")
    ap.add_argument("--lib-denoise", action="store_true",
                    help="also libdeissn (DEIS-SN, highest order, tau_end 1e-3) + final denoise")
    ap.add_argument("--baseline-ends", default="1e-3,0,1e-3+denoise",
                    help="where the baselines stop")
    ap.add_argument("--tag", default="", help="suffix of the output file name")
    ap.add_argument("--merge", default=None,
                    help="only merge presets_<model><tag>.json for these comma-separated tags "
                         "into presets_<model>.json")
    ap.add_argument("--fd", type=int, default=0,
                    help="only add to presets_<model>.json the FD (this many samples) at NFE 5 "
                         "and 10 of each method's best configuration and of BEST")
    ap.add_argument("--select", action="store_true",
                    help="stage 2: run the candidates of the merged search on --samples fresh "
                         "samples (presets_<model>_select.json)")
    ap.add_argument("--confirm", action="store_true",
                    help="stage 3: run BEST and each method's stage-2 best on --samples other "
                         "fresh samples (presets_<model>_confirm.json)")
    ap.add_argument("--stage", default="", help="--choose on this stage's files (_select)")
    ap.add_argument("--choose", action="store_true",
                    help="only print, per NFE, the configuration with the lowest worst ratio "
                         "to the best baseline over the models (the BEST preset)")
    ap.add_argument("--plot", action="store_true", help="only draw docs/img/presets_rmse.png")
    ap.add_argument("--report", action="store_true",
                    help="only rewrite the generated tables of docs/quality.md")
    args = ap.parse_args()
    if args.merge is not None:
        return merge(args.model, args.merge.split(","))
    if args.choose:
        return choose(args.stage)
    if args.select:
        return select(args)
    if args.confirm:
        return confirm(args)
    if args.fd:
        vp, m = setup(args)
        res = json.load(open(result_path(args.model)))
        res["fd"] = frechet(m, vp, res["rows"], args.fd)
        with open(result_path(args.model), "w") as fh:
            json.dump(res, fh, indent=1)
        return None
    if args.plot:
        return plot()
    if args.report:
        return write_docs()
    vp, m = setup(args)
    n = args.samples or (2000 if args.model == "gmm" else 48)
    x = torch.from_numpy(deissn.noise(SEED, n, m["shape"])).to(torch.float64)

    t0 = time.time()
    m["eps_fn"](x, 0.5)
    print("forward: %.1f ms per sample (batch of %d)" % (1e3 * (time.time() - t0) / n, n),
          flush=True)
    gt, check = cached_ground_truth(m, vp, x, "%s_%d_%d" % (m["name"], n, args.gt_steps),
                                    args.gt_steps)
    print("ground truth: %d vs %d steps (%d samples) RMSE %s; RMSE(x(0), x(1e-3)) = %.3g"
          % (check["steps"], check["check_steps"], check["check_samples"],
             {k: "%.2g" % v for k, v in check.items() if k in ("0.0", "0.001")},
             check["x0_vs_x1e-3"]), flush=True)

    nfes = [int(v) for v in args.nfe.split(",")]
    cfgs = list(library_configs(
        args.spacings.split(","), [int(v) for v in args.orders.split(",")],
        args.no_sn_spacings.split(",") if args.no_sn_spacings else None,
        args.lib_denoise, [m for m in args.lib_methods.split(",") if m not in ("", "none")]
    )) + (
        [] if args.quick else list(baseline_configs(args.baseline_spacings.split(","),
                                                    args.baseline_ends.split(","),
                                                    not args.baseline_lof_end_only)))
    stage1 = [int(v) for v in args.stage1.split(",")] if args.stage1 else nfes
    rows = []
    t_start = time.time()

    def run_all(nfe, cfgs):
        for cfg in cfgs:
            try:
                out, te = run_config(m, vp, cfg, nfe, x)
            except deissn.InvalidArgument as e:  # e.g. tau_end above the last evaluation
                rows.append(dict(cfg, nfe=nfe, error=str(e)))
                continue
            ok = bool(torch.isfinite(out).all())
            rows.append(dict(cfg, nfe=nfe, label=label(cfg),
                             rmse=rmse(out, gt[te]) if ok else float("inf"),
                             rmse_x0=rmse(out, gt[0.0]) if ok else float("inf")))
        print("NFE %d done: %d configurations (%.0f s)" % (nfe, len(cfgs), time.time() - t_start),
              flush=True)

    for nfe in [k for k in nfes if k in stage1]:
        run_all(nfe, cfgs)
    rest = [k for k in nfes if k not in stage1]
    if rest:
        short = shortlist(rows, cfgs, args.shortlist)
        print("stage 2: %d configurations: %s" % (len(short), "; ".join(label(c) for c in short)),
              flush=True)
        for nfe in rest:
            run_all(nfe, short)

    result = dict(model=m["name"], samples=n, seed=SEED, ground_truth_check=check, rows=rows,
                  table=m["table_name"],
                  command=" ".join([os.path.relpath(sys.argv[0], REPO)] + sys.argv[1:]))
    if args.fd_samples and m["name"] != "gmm":
        result["fd"] = frechet(m, vp, rows, args.fd_samples)
    path = os.path.join(OUT_DIR, "presets_%s%s.json" % (m["name"], args.tag))
    with open(path, "w") as fh:
        json.dump(result, fh, indent=1)
    summarize(result)
    print("wrote", os.path.relpath(path, REPO))


CFG_KEYS = ("method", "spacing", "tau_end", "order", "lof", "denoise", "third", "corrector")


def same_cfg(a, b):
    # rows of older runs have no "corrector": absent, None and False are the same
    return all((a.get(k) or False) == (b.get(k) or False) for k in CFG_KEYS)


def shortlist(rows, cfgs, k):
    """Stage 2 of the search: per method group, the k configurations with the lowest mean
    log RMSE over the stage-1 NFEs, and the REFERENCE and BEST presets' configurations."""
    scored = []
    for cfg in cfgs:
        rs = [r for r in rows if same_cfg(r, cfg) and "rmse" in r]
        if rs and all(math.isfinite(r["rmse"]) for r in rs):
            scored.append((sum(math.log(r["rmse"]) for r in rs) / len(rs), cfg))
    out = []
    for grp in GROUPS:
        g = sorted([sc for sc in scored if group(sc[1]) == grp], key=lambda sc: sc[0])
        out += [cfg for _, cfg in g[:k]]
    for preset in (0, 1):
        for nfe in NFES:
            c = preset_config(preset, nfe)
            for cfg in cfgs:  # the preset's, and the same without the table
                if any(same_cfg(cfg, dict(c, method=m)) for m in (c["method"], "deis")) \
                        and not any(same_cfg(cfg, o) for o in out):
                    out.append(cfg)
    return out


def best_rows(rows, nfe, pred):
    c = [r for r in rows if r["nfe"] == nfe and "rmse" in r and pred(r)]
    return sorted(c, key=lambda r: r["rmse"])


def frechet(m, vp, rows, n_fd):
    score = fd_scorer()
    if score is None:
        print("FD: tools/eval/fmnist_classifier.pt is not there; skipped")
        return None
    out = []
    x = torch.from_numpy(deissn.noise(SEED + 1, n_fd, m["shape"])).to(torch.float64)
    for nfe in FD_NFES:
        for grp in GROUPS + ["BEST"]:
            best = [preset_row(rows, nfe, 0)] if grp == "BEST" else \
                best_rows(rows, nfe, lambda r: group(r) == grp)
            if not best or not best[0]:
                continue
            cfg = {k: best[0][k] for k in CFG_KEYS if k in best[0]}
            t0 = time.time()
            s, _ = run_config(m, vp, cfg, nfe, x)
            fd = score(s.clamp(-1, 1).to(torch.float32))
            out.append(dict(nfe=nfe, group=grp, label=best[0]["label"], fd=fd, samples=n_fd))
            print("FD NFE %d %-8s %-50s %.3f (%.0f s)" % (nfe, grp, best[0]["label"], fd,
                                                          time.time() - t0), flush=True)
    return out


def summarize(result):
    rows = result["rows"]
    nfes = sorted({r["nfe"] for r in rows})
    print("\n%s, %d samples: best RMSE per NFE (vs the ground truth at the same end time)"
          % (result["model"], result["samples"]))
    print("| NFE | %s |" % " | ".join(GROUPS))
    print("|---|%s" % ("---|" * len(GROUPS)))
    for nfe in nfes:
        cells = []
        for grp in GROUPS:
            b = best_rows(rows, nfe, lambda r: group(r) == grp)
            cells.append("%.4g (%s)" % (b[0]["rmse"], b[0]["label"]) if b else "-")
        print("| %d | %s |" % (nfe, " | ".join(cells)))


def preset_config(preset, nfe):
    """The configuration deissn_preset_params() gives, in this script's terms."""
    skw, pkw = deissn.preset({0: "best", 1: "reference"}[preset], nfe)
    spacing = skw["spacing"]
    if spacing == "power":
        spacing = "uniform" if skw["power"] == 1 else "power%g" % skw["power"]
    method = "deis-x0" if pkw["method"] == "data" else "deis-sn"
    return dict(method=method, spacing=spacing, order=pkw["order"],
                lof=pkw["lower_order_final"], tau_end=skw["tau_end"],
                corrector=pkw["corrector"])


def preset_row(rows, nfe, preset):
    """The row of `preset`'s configuration at `nfe`, or None."""
    c = preset_config(preset, nfe)
    return next((r for r in rows if r["nfe"] == nfe and "rmse" in r and same_cfg(r, c)), None)


MODELS = ["fmnist", "fmnist-small"]  # the models the presets are chosen and reported on


def result_path(name):
    return os.path.join(OUT_DIR, "presets_%s.json" % name)


def merge(name, tags):
    """presets_<name>.json from the runs presets_<name><tag>.json (same noise and ground
    truth; a configuration run twice keeps its last row). The FD is computed afterwards, on
    the merged rows (--fd)."""
    out = None
    for tag in tags:
        res = json.load(open(result_path(name + tag)))
        if out is None:
            out = dict(res, rows=[], commands=[], fd=None)
        if (res["samples"], res["seed"]) != (out["samples"], out["seed"]):
            sys.exit("merge: %s%s has other samples or seed" % (name, tag))
        out["rows"] = [r for r in out["rows"] if not any(
            r["nfe"] == q["nfe"] and same_cfg(r, q) for q in res["rows"])] + res["rows"]
        out["commands"].append(res["command"])
    out.pop("command", None)
    with open(result_path(name), "w") as fh:
        json.dump(out, fh, indent=1)
    print("wrote %s (%d rows)" % (os.path.relpath(result_path(name), REPO), len(out["rows"])))


def ranked_lib(results, nfe):
    """libdeissn configurations run on every model at `nfe`, by their worst ratio to the
    model's best baseline: [(worst, {model: (ratio, row)})], best first. Karras stopping at
    tau_end > 0 is left out: a preset row holds no tau_min_eval for it (logsnr's is computed
    by deissn_preset_params as here)."""
    scores = {}
    for m, rows in results.items():
        base = best_baseline(rows, nfe)
        for r in rows:
            if r["nfe"] == nfe and r["method"] in ("deis-sn", "deis-x0") and "rmse" in r \
                    and not r["denoise"] and not (r["spacing"] == "karras" and r["tau_end"] > 0):
                key = tuple(r.get(k) or False for k in CFG_KEYS)
                scores.setdefault(key, {})[m] = (r["rmse"] / base, r)
    full = [(max(v[0] for v in d.values()), d) for d in scores.values() if len(d) == len(results)]
    return sorted(full, key=lambda t: t[0])


def stage_rows(args, cfgs_by_nfe, tag, seed):
    """Run the given configurations per NFE on args.samples fresh samples (noise seed `seed`,
    their own ground truth) and write presets_<model><tag>.json."""
    vp, m = setup(args)
    x = torch.from_numpy(deissn.noise(seed, args.samples, m["shape"])).to(torch.float64)
    gt, check = cached_ground_truth(m, vp, x, "%s_%d_%d_seed%d" % (
        m["name"], args.samples, args.gt_steps, seed), args.gt_steps)
    rows = []
    for nfe, cfgs in sorted(cfgs_by_nfe.items()):
        for cfg in cfgs:
            out, te = run_config(m, vp, cfg, nfe, x)
            ok = bool(torch.isfinite(out).all())
            rows.append(dict(cfg, nfe=nfe, label=label(cfg),
                             rmse=rmse(out, gt[te]) if ok else float("inf")))
        print("NFE %d: %d configurations" % (nfe, len(cfgs)), flush=True)
    res = dict(model=m["name"], samples=args.samples, seed=seed, ground_truth_check=check,
               rows=rows, command=" ".join([os.path.relpath(sys.argv[0], REPO)] + sys.argv[1:]))
    with open(result_path(m["name"] + tag), "w") as fh:
        json.dump(res, fh, indent=1)
    print("wrote", os.path.relpath(result_path(m["name"] + tag), REPO))


def cfg_of(row):
    return {k: row[k] for k in CFG_KEYS if k in row}


def select(args, k=8):
    """Stage 2: the search's (32-sample) RMSEs are noisy at the level of these ratios, so the
    choice is made on fresh samples among candidates: per NFE, the k libdeissn configurations
    with the lowest worst-case ratio and the 4 best of each baseline method on either model."""
    results = {m: json.load(open(result_path(m)))["rows"] for m in MODELS}
    cands = {}
    for nfe in sorted({r["nfe"] for r in results[MODELS[0]]}):
        lib = [cfg_of(next(iter(d.values()))[1]) for _, d in ranked_lib(results, nfe)[:k]]
        base = []
        for rows in results.values():
            for g in ("dpm++", "unipc"):
                base += [cfg_of(r) for r in best_rows(rows, nfe, lambda r, g=g: group(r) == g)[:4]]
        uniq = []
        for c in lib + base:
            if not any(same_cfg(c, u) for u in uniq):
                uniq.append(c)
        cands[nfe] = uniq
    stage_rows(args, cands, "_select", SEED + 2)


def confirm(args):
    """Stage 3: BEST (as lib/preset.c has it) and each method's best configuration of stage 2,
    on another set of fresh samples: the numbers reported, free of the selection's bias."""
    rows = json.load(open(result_path(args.model + "_select")))["rows"]
    cands = {}
    for nfe in sorted({r["nfe"] for r in rows}):
        best = preset_config(0, nfe)
        cs = [dict(best, denoise=False, third=None)]
        for g in ("deis-sn", "deis-x0", "dpm++", "unipc"):
            b = best_rows(rows, nfe, lambda r, g=g: group(r) == g)
            if b and not any(same_cfg(cfg_of(b[0]), c) for c in cs):
                cs.append(cfg_of(b[0]))
        cands[nfe] = cs
    stage_rows(args, cands, "_confirm", SEED + 3)


def best_baseline(rows, nfe):
    b = best_rows(rows, nfe, lambda r: r["method"] in ("dpm++", "unipc"))
    return b[0]["rmse"] if b else math.inf


def choose(stage=""):
    """Per NFE, the libdeissn configuration whose worst ratio to the best baseline over the
    models is lowest (among those run on every model at that NFE): the BEST preset. stage
    "_select" chooses on the stage-2 samples (presets.sh does), "" on the search's."""
    results = {m: json.load(open(result_path(m + stage)))["rows"] for m in MODELS}
    nfes = sorted(set.intersection(*({r["nfe"] for r in rows} for rows in results.values())))
    for nfe in nfes:
        for rank, (worst, d) in enumerate(ranked_lib(results, nfe)[:3]):  # runners-up too
            print("%s %-52s worst ratio %.3f  (%s)" % (
                "NFE %2d:" % nfe if rank == 0 else "       ", next(iter(d.values()))[1]["label"],
                worst, ", ".join("%s %.3f" % (m, v[0]) for m, v in sorted(d.items()))))


def ratio_rows(results, nfes, picks):
    """A markdown table: per model and pick, the RMSE over the best baseline's at each NFE
    (bold below 1). A pick is (label, None) for the BEST preset or (label, methods) for the
    best row of those methods."""
    out = ["| | " + " | ".join("NFE %d" % k for k in nfes) + " |", "|---|" + "---|" * len(nfes)]
    for name, res in results.items():
        rows = res["rows"]
        for what, methods in picks:
            cells = []
            for k in nfes:
                r = preset_row(rows, k, 0) if methods is None else (
                    best_rows(rows, k, lambda r: r["method"] in methods) or [None])[0]
                v = r["rmse"] / best_baseline(rows, k) if r else None
                cells.append("-" if v is None else ("**%.3f**" if v < 1 else "%.3f") % v)
            out.append("| %s, %s | %s |" % (name, what, " | ".join(cells)))
    return out


def report_markdown():
    """The generated part of docs/quality.md: per model and NFE, libdeissn's BEST preset
    against the best DPM-Solver++ and UniPC configuration, and the FD at NFE 5 and 10."""
    results = {m: json.load(open(result_path(m))) for m in MODELS
               if os.path.exists(result_path(m))}
    nfes = sorted({r["nfe"] for res in results.values() for r in res["rows"]})
    out = []
    confirmed = {m: json.load(open(result_path(m + "_confirm"))) for m in MODELS
                 if os.path.exists(result_path(m + "_confirm"))}
    if confirmed:
        n = next(iter(confirmed.values()))["samples"]
        out += ["**The reported result** (stage 3: %d fresh samples per model, noise seed %d, "
                "not used for any choice): RMSE over that of the best baseline configuration "
                "(the best DPM-Solver++ and the best UniPC configuration of stage 2, rerun "
                "here); bold: libdeissn wins.\n" % (n, SEED + 3)]
        out += ratio_rows(confirmed, nfes, (
            ("BEST", None), ("DEIS-SN, stage 2's best", ("deis-sn",)),
            ("x0, stage 2's best", ("deis-x0",))))
        out += ["", "The search itself (stage 1, the 32 samples every configuration ran on):\n"]
    out += ["RMSE over the best baseline's RMSE (DPM-Solver++ or UniPC, best configuration at that "
            "NFE); bold: libdeissn wins.\n"]
    out += ratio_rows(results, nfes, (("BEST", None),
                                      ("best libdeissn configuration", tuple(LIB_METHODS))))
    out.append("")
    for name, res in results.items():
        rows = res["rows"]
        out.append("#### %s (%d samples)\n" % (name, res["samples"]))
        out.append("| NFE | preset BEST | BEST / best baseline | best DPM-Solver++ | best UniPC "
                   "| best DEIS-SN (eps) | what SN adds (DEIS-SN / DEIS, best of each) "
                   "| REFERENCE preset |")
        out.append("|---|---|---|---|---|---|---|---|")
        for nfe in sorted({r["nfe"] for r in rows}):
            best = preset_row(rows, nfe, 0)
            ref = preset_row(rows, nfe, 1)
            grp = {g: best_rows(rows, nfe, lambda r, g=g: group(r) == g) for g in GROUPS}
            base = best_baseline(rows, nfe)
            cell = lambda r: "%.4g (%s)" % (r["rmse"], r["label"]) if r else "-"  # noqa: E731
            first = lambda g: grp[g][0] if grp[g] else None  # noqa: E731
            sn = "%.3f" % (first("deis-sn")["rmse"] / first("deis")["rmse"]) \
                if first("deis-sn") and first("deis") else "-"
            ratio = best["rmse"] / base if best else None
            out.append("| %d | %s | %s | %s | %s | %s | %s | %s |" % (
                nfe, cell(best), "-" if ratio is None else
                ("**%.3f**" if ratio < 1 else "%.3f") % ratio,
                cell(first("dpm++")), cell(first("unipc")), cell(first("deis-sn")), sn,
                "%.4g" % ref["rmse"] if ref else "-"))
        if res.get("fd"):
            out.append("\nFrechet distance at NFE 5 and 10 of each method's best-RMSE "
                       "configuration (%d samples vs the 10,000 test images):\n"
                       % res["fd"][0]["samples"])
            out.append("| NFE | method | configuration | FD |")
            out.append("|---|---|---|---|")
            for r in res["fd"]:
                out.append("| %d | %s | %s | %.2f |" % (r["nfe"], r["group"], r["label"], r["fd"]))
        out.append("")
    return "\n".join(out)


def write_docs():
    from docblock import replace_block
    replace_block(os.path.join(REPO, "docs", "quality.md"), "presets", report_markdown())


def plot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    files = [(name, result_path(name)) for name in MODELS if os.path.exists(result_path(name))]
    fig, axes = plt.subplots(1, len(files), figsize=(6 * len(files), 4.2), squeeze=False)
    for ax, (name, p) in zip(axes[0], files):
        res = json.load(open(p))
        rows = res["rows"]
        nfes = sorted({r["nfe"] for r in rows})
        series = [("deis-sn", "DEIS-SN best", "C3"), ("deis-x0", "libdeissn x0 best", "C4"),
                  ("dpm++", "DPM-Solver++ best", "C0"), ("unipc", "UniPC best", "C2")]
        for grp, lab, col in series:
            ys = [best_rows(rows, k, lambda r: group(r) == grp) for k in nfes]
            ax.plot(nfes, [y[0]["rmse"] if y else np.nan for y in ys], "o-", color=col, label=lab)
        for preset, style, col, lab in ((0, "--", "black", "preset BEST"),
                                        (1, ":", "gray", "preset REFERENCE (quadratic, o3)")):
            ys = [preset_row(rows, k, preset) for k in nfes]
            ax.plot(nfes, [y["rmse"] if y else np.nan for y in ys], linestyle=style, color=col,
                    marker="s", label=lab)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(nfes)
        ax.set_xticklabels([str(k) for k in nfes])
        ax.set_xlabel("NFE")
        ax.set_ylabel("RMSE to the converged ODE solution")
        ax.set_title("%s (%d samples)" % (name, res["samples"]))
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    out = os.path.join(REPO, "docs", "img", "presets_rmse.png")
    fig.savefig(out, dpi=110)
    print("wrote", os.path.relpath(out, REPO))


if __name__ == "__main__":
    main()
