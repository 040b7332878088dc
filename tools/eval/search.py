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

OUT_DIR = os.path.join(REPO, "build", "eval")
NFES = [5, 6, 8, 10, 15, 20]
FD_NFES = [5, 10]
SPACINGS = ["quadratic", "trailing", "uniform", "logsnr", "karras"]
TAU_ENDS = [0.0, 1e-3]
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
               os.path.join(REPO, "models", "fmnist_unet_table.pt")),
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
        table, tname = deissn.NormTable.load(tpath, pt_clip=0), os.path.relpath(tpath, REPO)
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


def library_configs(spacings=SPACINGS, orders=(1, 2, 3), no_sn_spacings=None, denoise=False):
    """libdeissn's configurations; with `denoise`, DEIS-SN of the highest order stopping at
    tau_end = 1e-3 is also tried with a final denoise (done here: the library has none)."""
    for sn in (True, False):
        for spacing in (spacings if sn or no_sn_spacings is None else no_sn_spacings):
            for tau_end in TAU_ENDS:
                for order in orders:
                    for lof in ((False, True) if order > 0 else (False,)):
                        for dn in ((False, True) if denoise and sn and tau_end > 0
                                   and order == max(orders) else (False,)):
                            yield dict(method="deis-sn" if sn else "deis", spacing=spacing,
                                       tau_end=tau_end, order=order, lof=lof, denoise=dn)


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
    if cfg["method"] in ("deis", "deis-sn"):
        sched = library_grid(vp, cfg["spacing"], steps, cfg["tau_end"])
        table = m["table"] if cfg["method"] == "deis-sn" else None
        out = B.deis(f, x, None, table=table, order=cfg["order"],
                     lower_order_final=cfg["lof"], schedule=sched)
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
    if cfg["method"].startswith("deis"):
        s = "%s %s o%d%s tau_end=%g" % (cfg["method"], cfg["spacing"], cfg["order"],
                                        " lof" if cfg["lof"] else "", cfg["tau_end"])
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
    if cfg["method"] == "deis-sn":
        return "deis-sn"
    if cfg["method"] == "deis":
        return "deis"
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
    ap.add_argument("--no-sn-spacings", default=None,
                    help="libdeissn spacings tried without the table (default: --spacings)")
    ap.add_argument("--baseline-lof-end-only", action="store_true",
                    help="baselines without lower_order_final only when stopping at 1e-3")
    ap.add_argument("--lib-denoise", action="store_true",
                    help="also libdeissn (DEIS-SN, highest order, tau_end 1e-3) + final denoise")
    ap.add_argument("--baseline-ends", default="1e-3,0,1e-3+denoise",
                    help="where the baselines stop")
    ap.add_argument("--tag", default="", help="suffix of the output file name")
    ap.add_argument("--plot", action="store_true", help="only draw docs/img/presets_rmse.png")
    ap.add_argument("--report", action="store_true",
                    help="only print the markdown tables of docs/presets.md from the JSON files")
    args = ap.parse_args()
    if args.plot:
        return plot()
    if args.report:
        return report()
    torch.set_num_threads(args.threads)
    vp = B.VP(noise="linear")
    m = load_model(args.model, vp)
    m["eps_fn"] = batched(m["eps_fn"], args.batch)
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
        args.lib_denoise)) + (
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


CFG_KEYS = ("method", "spacing", "tau_end", "order", "lof", "denoise", "third")


def same_cfg(a, b):
    return all(a.get(k) == b.get(k) for k in CFG_KEYS)


def shortlist(rows, cfgs, k):
    """Stage 2 of the search: per method group, the k configurations with the lowest mean
    log RMSE over the stage-1 NFEs, and the REFERENCE and BEST presets' configurations."""
    scored = []
    for cfg in cfgs:
        rs = [r for r in rows if same_cfg(r, cfg) and "rmse" in r]
        if rs and all(math.isfinite(r["rmse"]) for r in rs):
            scored.append((sum(math.log(r["rmse"]) for r in rs) / len(rs), cfg))
    out = []
    for grp in ("deis-sn", "deis", "dpm++", "unipc"):
        g = sorted([sc for sc in scored if group(sc[1]) == grp], key=lambda sc: sc[0])
        out += [cfg for _, cfg in g[:k]]
    for preset in (0, 1):
        for nfe in NFES:
            c = preset_config(preset, nfe)
            for cfg in cfgs:
                if cfg["method"] in ("deis-sn", "deis") and not cfg["denoise"] and all(
                        cfg[key] == c[key] for key in ("spacing", "order", "lof", "tau_end")) \
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
        for grp in ("deis-sn", "deis", "dpm++", "unipc"):
            best = best_rows(rows, nfe, lambda r: group(r) == grp)
            if not best:
                continue
            cfg = {k: best[0][k] for k in ("method", "spacing", "tau_end", "order", "lof",
                                           "denoise", "third") if k in best[0]}
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
    print("| NFE | libdeissn (DEIS-SN) | DEIS (no table) | DPM-Solver++ | UniPC |")
    print("|---|---|---|---|---|")
    for nfe in nfes:
        cells = []
        for grp in ("deis-sn", "deis", "dpm++", "unipc"):
            b = best_rows(rows, nfe, lambda r: group(r) == grp)
            cells.append("%.4g (%s)" % (b[0]["rmse"], b[0]["label"]) if b else "-")
        print("| %d | %s |" % (nfe, " | ".join(cells)))


SPACING_NAMES = {0: "quadratic", 1: "trailing", 2: "linspace", 3: "leading", 4: "power",
                 5: "logsnr", 6: "karras"}


def preset_config(preset, nfe):
    """The configuration deissn_preset_params() gives (called through ctypes: the Python
    binding does not wrap it yet), in this script's terms."""
    import ctypes
    from deissn import _lib as L
    sp, mp = L.ScheduleParams(), L.SamplerParams()
    L.lib.deissn_schedule_params_init(ctypes.byref(sp))
    L.lib.deissn_sampler_params_init(ctypes.byref(mp))
    f = L.lib.deissn_preset_params
    f.restype = ctypes.c_int32
    f.argtypes = [ctypes.c_int32, ctypes.c_uint32, ctypes.c_void_p, ctypes.c_void_p]
    if f(preset, nfe, ctypes.byref(sp), ctypes.byref(mp)) != 0:
        raise RuntimeError("deissn_preset_params failed")
    spacing = SPACING_NAMES[sp.spacing]
    if spacing == "power":
        spacing = "uniform" if sp.power == 1 else "power%g" % sp.power
    return dict(spacing=spacing, order=mp.order, lof=bool(mp.lower_order_final),
                tau_end=sp.tau_end, tau_min_eval=sp.tau_min_eval)


def preset_row(rows, nfe, preset, method="deis-sn"):
    c = preset_config(preset, nfe)
    for r in rows:
        if r["nfe"] == nfe and r["method"] == method and "rmse" in r and not r["denoise"] \
                and r["spacing"] == c["spacing"] and r["order"] == c["order"] \
                and r["lof"] == c["lof"] and r["tau_end"] == c["tau_end"]:
            return r
    return None


def report():
    """Markdown tables for docs/presets.md from build/eval/presets_*.json."""
    for name in ("fmnist", "gmm"):
        p = os.path.join(OUT_DIR, "presets_%s.json" % name)
        if not os.path.exists(p):
            continue
        res = json.load(open(p))
        rows = res["rows"]
        print("\n### %s (%d samples; `%s`)\n" % (name, res["samples"], res["command"]))
        print("| NFE | preset BEST (DEIS-SN) | best libdeissn | best DPM-Solver++ | best UniPC "
              "| BEST / best baseline | same config without SN | REFERENCE |")
        print("|---|---|---|---|---|---|---|---|")
        for nfe in sorted({r["nfe"] for r in rows}):
            best = preset_row(rows, nfe, 0)
            nosn = preset_row(rows, nfe, 0, method="deis")
            ref = preset_row(rows, nfe, 1)
            lib = best_rows(rows, nfe, lambda r: r["method"] in ("deis", "deis-sn"))
            dpm = best_rows(rows, nfe, lambda r: r["method"] == "dpm++")
            uni = best_rows(rows, nfe, lambda r: r["method"] == "unipc")
            base = min(dpm[0]["rmse"] if dpm else math.inf, uni[0]["rmse"] if uni else math.inf)
            cell = lambda r: "%.4g (%s)" % (r["rmse"], r["label"]) if r else "-"  # noqa: E731
            print("| %d | %s | %s | %s | %s | %s | %s | %s |" % (
                nfe, "%.4g" % best["rmse"] if best else "-", cell(lib[0] if lib else None),
                cell(dpm[0] if dpm else None), cell(uni[0] if uni else None),
                "%.3f" % (best["rmse"] / base) if best and base < math.inf else "-",
                "%.4g" % nosn["rmse"] if nosn else "-", "%.4g" % ref["rmse"] if ref else "-"))
        if res.get("fd"):
            print("\nFrechet distance (%d samples each):\n" % res["fd"][0]["samples"])
            print("| NFE | configuration | FD |")
            print("|---|---|---|")
            for r in res["fd"]:
                print("| %d | %s | %.3f |" % (r["nfe"], r["label"], r["fd"]))


def plot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    files = [(name, os.path.join(OUT_DIR, "presets_%s.json" % name)) for name in ("fmnist", "gmm")]
    files = [(n, p) for n, p in files if os.path.exists(p)]
    fig, axes = plt.subplots(1, len(files), figsize=(6 * len(files), 4.2), squeeze=False)
    for ax, (name, p) in zip(axes[0], files):
        res = json.load(open(p))
        rows = res["rows"]
        nfes = sorted({r["nfe"] for r in rows})
        preset = {str(k): (preset_row(rows, k, 0) or {}).get("rmse") for k in nfes}
        series = [("deis-sn", "libdeissn best (DEIS-SN)", "C3"), ("deis", "DEIS best (no table)",
                  "C1"), ("dpm++", "DPM-Solver++ best", "C0"), ("unipc", "UniPC best", "C2")]
        for grp, lab, col in series:
            ys = [best_rows(rows, k, lambda r: group(r) == grp) for k in nfes]
            ax.plot(nfes, [y[0]["rmse"] if y else np.nan for y in ys], "o-", color=col, label=lab)
        if preset:
            ys = [preset.get(str(k)) for k in nfes]
            ax.plot(nfes, [y if y is not None else np.nan for y in ys], "k--", label="preset BEST")
        ref = [preset_row(rows, k, 1) for k in nfes]
        ax.plot(nfes, [y["rmse"] if y else np.nan for y in ref], ":", color="gray",
                label="preset REFERENCE (quadratic, o3)")
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
