#!/usr/bin/python3
"""The fair evaluation of tuned plans (issue #14): TUNED against the best DPM-Solver++ and UniPC.

Per model (the shipped fmnist model, fmnist-small, an analytic Gaussian mixture under the
cosine schedule) and per NFE:

  * TUNED: the table's plan for that NFE (listed by `deissn-inspect --table T.dsn`), run with
    the Python binding's step API on the sampler of Sampler.preset("tuned", nfe, table): the
    plan's times and method / order / corrector / lower_order_final, or a learned plan's
    weights, with the table only when the plan uses it;
  * BEST: libdeissn's fixed preset (Sampler.preset("best", nfe, table));
  * the best configuration of DPM-Solver++ (2M, 3M) and of UniPC (bh2 + UniC, order 2, 3),
    lower_order_final, on their authors' grids (logSNR, time_uniform, time_quadratic) ending at
    1e-3 or 0, chosen per NFE on SELECT_SEED samples (neither the tuner's seed 0 nor the
    evaluation's);
  * the same two families once more on TUNED's own times (order chosen the same way): how much
    of TUNED's gain is the grid and how much the method;
  * image models: the Frechet distance (tools/eval/fid.py) at 5 and 10 NFE of TUNED, BEST,
    the best peer's configuration and the converged ODE solution (what an exact sampler
    gets), --fd-samples samples of FD_SEED each, with paired bootstrap intervals of each FD's
    difference to the peer's and the diagnostics of fd_part().

Every run starts from the evaluation noise deissn.noise(EVAL_SEED, n) (the tuner used seed 0,
samples 0..319) and is scored by its RMSE, at its own end time (0 or 1e-3), to a converged
solution of the same probability-flow ODE from the same noise (DEIS order 3 on a fine grid of
evaluation times tau = 1e-3 + (1 - 1e-3) u^1.5, then the step to 0, as the tuner's reference;
its own accuracy is checked against twice as many times). Intervals: paired bootstrap 95 %
(2000 resamples of the samples) of the RMSE and of the RMSE ratio to the best peer.

    /usr/bin/python3 tools/tune/evaluate.py --model fmnist|fmnist-small|gmm-cosine [--samples N]
    /usr/bin/python3 tools/tune/evaluate.py --model fmnist --fd-only   # redo only the FDs
    /usr/bin/python3 tools/tune/evaluate.py --report     # docs/data, docs/quality.md, the plot

`make eval-tuned` runs the three models and the report. Per-model results (with every sample's
squared error, so that any ratio can be recomputed) go to build/tune-eval/<model>.json, the
report's to docs/data/tuned_eval.json.gz.
"""
import argparse
import hashlib
import json
import math
import os
import re
import subprocess
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tools", "eval"))
import baselines as B  # noqa: E402
import search  # noqa: E402
from baselines import deissn  # noqa: E402
from tune import TAU_LAST, boot_ci as boot, fine_grid, per_sample_mse  # noqa: E402

EVAL_SEED, SELECT_SEED = 12345, 54321
NFES = [4, 5, 6, 8, 10, 12, 15, 20]
OUT_DIR = os.path.join(REPO, "build", "tune-eval")
INSPECT = os.path.join(REPO, "build", "bin", "deissn-inspect")
PEER_GRIDS = ["logsnr", "time_uniform", "time_quadratic"]
PEERS = [("DPM-Solver++", "dpm", 2), ("DPM-Solver++", "dpm", 3),
         ("UniPC", "unipc", 2), ("UniPC", "unipc", 3)]
FAMILIES = ("DPM-Solver++", "UniPC")
FD_NFES, FD_SEED = [5, 10], 23456

MODELS = {
    "fmnist": dict(pt="models/fmnist_unet.pt", table="models/fmnist_unet.dsn",
                   log="models/fmnist_unet.tune.log", noise="linear", time="model_index",
                   shape=(1, 32, 32), grid=400, samples=1024, select=32, fd=True,
                   what="the shipped model (Fashion-MNIST U-Net, linear schedule)",
                   tune_cmd="make shipped-table (deissn-calibrate --model models/fmnist_unet.pt "
                            "--out models/fmnist_unet.dsn: NFE 3-25, 128 fit (64 search, 64 confirm) + 256 hold-out)"),
    "fmnist-small": dict(pt="tools/eval/fmnist_small.pt", table="tools/tune/fmnist_small_tuned.dsn",
                         log="tools/tune/fmnist_small_tuned.log", noise="linear",
                         time="model_index", shape=(1, 32, 32), grid=400, samples=1024,
                         select=32, fd=True,
                         what="a smaller U-Net trained differently (tools/eval/fmnist_small.pt)",
                         tune_cmd="deissn-calibrate --model tools/eval/fmnist_small.pt "
                                  "--out tools/tune/fmnist_small_tuned.dsn --nfe 4-20"),
    "gmm-cosine": dict(pt="tools/tune/gmm_cosine.pt", table="tools/tune/gmm_cosine_tuned.dsn",
                       log="tools/tune/gmm_cosine_tuned.log", noise="squaredcos_cap_v2",
                       time="tau", shape=(1, 4, 4), grid=500, samples=16384, select=512,
                       what="the exact eps of a 16-d Gaussian mixture, cosine schedule, t = tau",
                       tune_cmd="deissn-calibrate --model tools/tune/gmm_cosine.pt --out "
                                "tools/tune/gmm_cosine_tuned.dsn --noise squaredcos_cap_v2 "
                                "--time tau --shape 1,4,4 --nfe 4-20"),
}
EVALS = [0]


class Model:
    def __init__(self, spec, batch):
        self.net = torch.jit.load(os.path.join(REPO, spec["pt"])).eval()
        self.time = spec["time"]
        self.batch = batch

    def eps(self, x, tau):
        """eps for float32 x [B, ...] at tau, float32 numpy."""
        out = np.empty_like(x)
        t = tau * 1000.0 - 1.0 if self.time == "model_index" else tau
        with torch.inference_mode():
            for i in range(0, len(x), self.batch):
                xb = torch.from_numpy(x[i:i + self.batch])
                tt = torch.full((len(xb),), t, dtype=torch.float32)
                out[i:i + self.batch] = self.net(xb, tt).numpy()
        EVALS[0] += len(x)
        return out

    def eps_fn(self):
        def f(xt, tau):
            x = np.ascontiguousarray(xt.to(torch.float32).numpy())
            return torch.from_numpy(self.eps(x, float(tau))).to(torch.float64)
        return f


def reference(model, noise, x, S):
    """DEIS-3 on S fine-grid evaluation times, then to 0: {1e-3: x(1e-3), 0: x(0)}, float64."""
    taus = fine_grid(S)
    smp = deissn.Sampler(deissn.Schedule(noise=noise, taus=taus, tau_end=0.0), None, order=3)
    xs = np.ascontiguousarray(x, dtype=np.float32).copy()
    for info in smp:
        e = model.eps(xs, info.tau)
        if info.step == S - 1:
            x_last = xs.copy()
        smp.step(xs, e)
    return {TAU_LAST: x_last.astype(np.float64), 0.0: xs.astype(np.float64)}


def run_lib(model, noise, x, taus, tau_end, method, order, lof, corr, table):
    sch = deissn.Schedule(noise=noise, taus=np.asarray(taus, np.float64), tau_end=float(tau_end))
    smp = deissn.Sampler(sch, table, order=order, lower_order_final=lof, method=method,
                         corrector=corr)
    xs = np.ascontiguousarray(x, dtype=np.float32).copy()
    for info in smp:
        smp.step(xs, model.eps(xs, info.tau))
    return xs.astype(np.float64)


def run_tuned(model, noise, x, nfe, table):
    """The table's plan for exactly `nfe` through the library's own TUNED preset, which passes
    everything the plan holds (a learned plan's weights too) and the table only where the plan
    uses it."""
    smp = deissn.Sampler.preset("tuned", nfe, table, noise=noise)
    if smp.steps != nfe:
        raise SystemExit("the table has no plan for NFE %d (TUNED gave the %d-NFE one)"
                         % (nfe, smp.steps))
    xs = np.ascontiguousarray(x, dtype=np.float32).copy()
    for info in smp:
        smp.step(xs, model.eps(xs, info.tau))
    return xs.astype(np.float64)


def best_config(nfe, noise, table_path):
    """libdeissn's BEST preset at nfe as (times, end, settings), from `deissn-inspect --preset
    best` (the library's own deissn_preset_params; the Python binding's preset() is not yet
    on the library's current signature)."""
    doc = inspect_json(["--preset", "best", "--steps", str(nfe), "--schedule", noise,
                        "--table", table_path])
    steps = doc["steps_plan"]
    cfg = dict(spacing=doc["spacing"], method=doc["method"], order=doc["order"],
               corrector=doc["corrector"], lower_order_final=doc["lower_order_final"],
               uses_table=doc["table_used"])
    return [s["tau_from"] for s in steps], steps[-1]["tau_to"], cfg


def run_peer(model, vp, fn, order, grid, x):
    xt = torch.from_numpy(np.asarray(x, np.float64))
    if fn == "dpm":
        out = B.dpm_solver_pp(model.eps_fn(), xt, grid, vp, order=order, lower_order_final=True)
    else:
        out = B.unipc(model.eps_fn(), xt, grid, vp, order=order, lower_order_final=True)
    return out.numpy()


def inspect_json(argv):
    p = subprocess.run([INSPECT] + argv, capture_output=True, text=True)
    if p.returncode:
        raise SystemExit("deissn-inspect %s: %s" % (" ".join(argv), p.stderr.strip()))
    return json.loads(p.stdout)


def load_plans(table_path, noise):
    """The table's plans, from deissn-inspect's JSON: {nfe: plan dict}."""
    doc = inspect_json(["--table", table_path, "--schedule", noise, "--steps", "10"])
    plans = doc.get("plans") or []
    if not plans:
        raise SystemExit("%s has no tuned plans (deissn-calibrate --model M --out %s)"
                         % (table_path, table_path))
    return {int(pl["nfe"]): pl for pl in plans}


def tuning_cost(log_path):
    """deissn-calibrate's total time line from its log (None when absent)."""
    if not os.path.exists(log_path):
        return None
    text = open(log_path, errors="replace").read()
    lines = []
    for ln in text.splitlines():
        m = re.match(r"deissn-calibrate: wrote (\S+) in ([0-9.]+) s", ln)
        if m:
            lines.append("%s s wall (deissn-calibrate's total)" % m.group(2))
        m = re.match(r"\s*User time \(seconds\): ([0-9.]+)", ln)
        if m:
            lines.append("%s s CPU (user, /usr/bin/time)" % m.group(1))
    return lines or None


def method_label(method, uses_table, corrector):
    """A sampler's name in the report, from deissn-inspect's method name (deissn_enum_name)."""
    if method == "data":
        return "x0+corr" if corrector else "x0"
    if method == "eps":
        return "deis-sn" if uses_table else "deis"
    return method  # "learned": the plan's weights


def label_plan(pl):
    m = method_label(pl["method"], pl["uses_table"], pl["corrector"])
    if pl["method"] == "learned":  # no order: the weights are the method
        return "%s tau_end=%g" % (m, pl["tau_end"])
    return "%s o%d%s tau_end=%g" % (m, pl["order"], " lof" if pl["lower_order_final"] else "",
                                    pl["tau_end"])


def evaluate(name, args):
    spec = MODELS[name]
    torch.set_num_threads(1)
    t0 = time.time()
    model = Model(spec, args.batch)
    noise = spec["noise"]
    vp = B.VP(noise=noise)
    table_path = os.path.join(REPO, spec["table"])
    plans = load_plans(table_path, noise)
    table = deissn.NormTable.load(table_path)
    n, k_sel = args.samples or spec["samples"], args.select or spec["select"]
    nfes = [v for v in (args.nfe or NFES)]
    shape = spec["shape"]
    xe = deissn.noise(EVAL_SEED, n, shape)
    xs = deissn.noise(SELECT_SEED, k_sel, shape)
    out = dict(model=name, what=spec["what"], pt=spec["pt"], table=spec["table"], noise=noise,
               time=spec["time"], shape=list(shape), eval_seed=EVAL_SEED, samples=n,
               select_seed=SELECT_SEED, select_samples=k_sel, reference_grid=spec["grid"],
               table_sha256=hashlib.sha256(open(table_path, "rb").read()).hexdigest(),
               tuning_log=tuning_cost(os.path.join(REPO, spec["log"])), nfe={})
    path = os.path.join(OUT_DIR, "%s.json" % name)
    os.makedirs(OUT_DIR, exist_ok=True)
    if args.fd_only:  # the RMSE part as the last full run wrote it, for this very table
        if not os.path.exists(path):
            raise SystemExit("--fd-only: no %s (run without --fd-only first)" % path)
        prev = json.load(open(path))
        if prev.get("table_sha256") != out["table_sha256"]:
            raise SystemExit("--fd-only: %s was made with another %s (run without --fd-only)"
                             % (path, spec["table"]))
        out = prev

    if not args.fd_only:
        # the converged references, and their own accuracy (twice the times, the first 8 samples)
        ta = time.time()
        ref_e = reference(model, noise, xe, spec["grid"])
        ref_s = reference(model, noise, xs, spec["grid"])
        k = min(8, n)
        fine = reference(model, noise, xe[:k], 2 * spec["grid"])
        out["reference_check"] = {
            str(te): math.sqrt(float(np.mean(per_sample_mse(ref_e[te][:k], fine[te]))))
            for te in (0.0, TAU_LAST)}
        out["reference_seconds"] = time.time() - ta
        print("%s: references of %d + %d samples (%d times) in %.0f s; RMSE to %d times "
              "(%d samples): %.2e at 0, %.2e at 1e-3" % (
                  name, n, k_sel, spec["grid"], out["reference_seconds"], 2 * spec["grid"], k,
                  out["reference_check"]["0.0"], out["reference_check"][str(TAU_LAST)]), flush=True)

        for nfe in nfes:
            tn = time.time()
            e0 = EVALS[0]
            pl = plans.get(nfe)
            if pl is None:
                print("%s: no plan for NFE %d in %s, skipped" % (name, nfe, spec["table"]))
                continue
            if pl["tau_end"] not in (0.0, TAU_LAST) or len(pl["taus"]) != nfe:
                raise SystemExit("plan for NFE %d: tau_end %g / %d times not handled"
                                 % (nfe, pl["tau_end"], len(pl["taus"])))
            tuned_grid = np.append(np.asarray(pl["taus"], np.float64), pl["tau_end"])

            # peers: the best configuration of each family on the selection samples
            sel = {}
            for fam, fn, order in PEERS:
                for gname in PEER_GRIDS + ["tuned"]:
                    for te in ((0.0, TAU_LAST) if gname != "tuned" else (pl["tau_end"],)):
                        g = tuned_grid if gname == "tuned" else search.baseline_grid(vp, gname, nfe,
                                                                                     te)
                        o = run_peer(model, vp, fn, order, g, xs)
                        r = math.sqrt(float(np.mean(per_sample_mse(o, ref_s[te]))))
                        key = (fam, gname == "tuned")
                        if key not in sel or r < sel[key][0]:
                            sel[key] = (r, dict(family=fam, fn=fn, order=order, grid=gname,
                                                tau_end=te), g)
            rows = {}
            for (fam, on_tuned), (r, cfg, g) in sel.items():
                o = run_peer(model, vp, cfg["fn"], cfg["order"], g, xe)
                rows[fam + (" on TUNED's times" if on_tuned else "")] = dict(
                    cfg=cfg, select_rmse=r, mse=per_sample_mse(o, ref_e[cfg["tau_end"]]))
            o = run_tuned(model, noise, xe, nfe, table)
            rows["TUNED"] = dict(cfg=dict(plan=label_plan(pl), taus=pl["taus"],
                                          tuner_heldout_rmse=pl["heldout_rmse"],
                                          tuner_heldout_interval=pl["heldout_interval"],
                                          tuner_heldout_samples=pl["heldout_samples"],
                                          tuner_best_rmse=pl["best_rmse"]),
                                 mse=per_sample_mse(o, ref_e[pl["tau_end"]]))
            btaus, bend, bcfg = best_config(nfe, noise, table_path)
            o = run_lib(model, noise, xe, btaus, bend, bcfg["method"], bcfg["order"],
                        bcfg["lower_order_final"], bcfg["corrector"],
                        table if bcfg["uses_table"] else None)
            rows["BEST"] = dict(cfg=dict(bcfg, taus=btaus, tau_end=bend),
                                mse=per_sample_mse(o, ref_e[bend]))
            peer = min(FAMILIES, key=lambda f: rows[f]["mse"].mean())
            res = {}
            for key, v in rows.items():
                m = v["mse"]
                res[key] = dict(cfg=v["cfg"], rmse=float(np.sqrt(m.mean())), ci=boot(m),
                                ratio_to_peer=float(np.sqrt(m.mean() / rows[peer]["mse"].mean())),
                                ratio_ci=boot(m, rows[peer]["mse"]),
                                mse=[float(a) for a in m],
                                **({"select_rmse": v["select_rmse"]} if "select_rmse" in v else {}))
            out["nfe"][str(nfe)] = dict(best_peer=peer, rows=res, seconds=time.time() - tn,
                                        evaluations=EVALS[0] - e0)
            t, b = res["TUNED"], res["BEST"]
            print("%s NFE %2d: TUNED %.4f (%s) / %s %.4f = %.3f [%.3f, %.3f]; BEST %.3f; "
                  "peers on TUNED's times: %s; %.0f s" % (
                      name, nfe, t["rmse"], t["cfg"]["plan"], peer, res[peer]["rmse"],
                      t["ratio_to_peer"], *t["ratio_ci"], b["ratio_to_peer"],
                      ", ".join("%s %.4f" % (f, res[f + " on TUNED's times"]["rmse"])
                                for f in FAMILIES), time.time() - tn), flush=True)
            out["seconds"] = time.time() - t0
            out["evaluations"] = EVALS[0]
            with open(path, "w") as fh:
                json.dump(out, fh)
    if spec.get("fd") and args.fd_samples:
        tf, e0 = time.time(), EVALS[0]
        fd_part(name, spec, model, vp, table, plans, out, args)
        out["fd"]["seconds"] = time.time() - tf
        out["fd"]["evaluations"] = EVALS[0] - e0
        with open(path, "w") as fh:
            json.dump(out, fh)
    print("%s: %.0f s, %d sample-evaluations; wrote %s" % (name, time.time() - t0, EVALS[0],
                                                         os.path.relpath(path)))


FD_BOOT = 400    # bootstrap resamples of the FD differences
BACKGROUND = -0.99  # a pixel this dark counts as background (62.5 % of the test images' pixels)
FLATTEN = -0.9      # the diagnostic FD sets every pixel this dark to -1 (the test images: 1.8 %
                    # of their pixels lie between -0.99 and -0.9)


def high_pass_energy(img):
    """Per-sample energy of img minus its 3x3 box blur (edge-padded): fine detail and noise."""
    a = img.reshape(len(img), img.shape[-2], img.shape[-1])
    p = np.pad(a, ((0, 0), (1, 1), (1, 1)), mode="edge")
    blur = sum(p[:, i:i + a.shape[1], j:j + a.shape[2]] for i in range(3) for j in range(3)) / 9
    return ((a - blur) ** 2).sum(axis=(1, 2))


def fd_part(name, spec, model, vp, table, plans, out, args):
    """Frechet distance (tools/eval/fid.py) at FD_NFES of TUNED, BEST and the best peer's
    configuration (chosen above by RMSE), args.fd_samples samples of FD_SEED each, clipped to
    [-1, 1], against the 10,000 Fashion-MNIST test images; and of the converged ODE solution
    from the same noise (at 0 and at 1e-3), the FD a sampler that solves the ODE exactly gets.
    Each FD comes with the paired bootstrap 95 % interval of its difference to the best peer's
    (FD_BOOT resamples of the samples, the same indices for both) and two diagnostics: the
    fraction of background pixels (<= BACKGROUND) and the high-pass energy relative to the
    converged solution's, and the FD once more with every pixel <= FLATTEN set to -1 (the
    same for every sampler: does the ranking survive a clean background?)."""
    import fid
    net = fid.load_classifier()
    data = fid.load_fmnist("t10k")[0]
    ref = fid.stats(fid.features(net, data))
    noise = spec["noise"]
    x = deissn.noise(FD_SEED, args.fd_samples, spec["shape"])
    table_path = os.path.join(REPO, spec["table"])
    tf = time.time()
    ode = reference(model, noise, x, spec["grid"])
    out["fd"] = dict(samples=args.fd_samples, seed=FD_SEED, boot=FD_BOOT, background=BACKGROUND,
                     data_background=float((data <= BACKGROUND).mean()),
                     ode_seconds=time.time() - tf, nfe={})
    rng = np.random.default_rng(0)
    idx = rng.integers(0, args.fd_samples, (FD_BOOT, args.fd_samples))

    ode_high_pass = {te: high_pass_energy(np.clip(ode[te], -1, 1)).sum() for te in ode}

    def measure(img, te):
        img = np.clip(img, -1.0, 1.0).astype(np.float32)
        f = fid.features(net, img)
        flat = np.where(img <= FLATTEN, np.float32(-1.0), img)
        return dict(f=f, tau_end=te, fd=float(fid.frechet_distance(fid.stats(f), ref)),
                    fd_flat=float(fid.frechet_distance(fid.stats(fid.features(net, flat)), ref)),
                    background=float((img <= BACKGROUND).mean()),
                    high_pass=float(high_pass_energy(img).sum() / ode_high_pass[te]))
    odes = {"ODE to 0": measure(ode[0.0], 0.0), "ODE to 1e-3": measure(ode[TAU_LAST], TAU_LAST)}
    for nfe in FD_NFES:
        d = out["nfe"].get(str(nfe))
        if d is None or nfe not in plans:
            continue
        tf = time.time()
        btaus, bend, bcfg = best_config(nfe, noise, table_path)
        peer = d["best_peer"]
        pc = d["rows"][peer]["cfg"]
        runs = {
            "TUNED": (plans[nfe]["tau_end"], lambda: run_tuned(model, noise, x, nfe, table)),
            "BEST": (bend, lambda: run_lib(model, noise, x, btaus, bend, bcfg["method"],
                                           bcfg["order"], bcfg["lower_order_final"],
                                           bcfg["corrector"],
                                           table if bcfg["uses_table"] else None)),
            peer: (pc["tau_end"], lambda: run_peer(model, vp, pc["fn"], pc["order"],
                                                   search.baseline_grid(vp, pc["grid"], nfe,
                                                                        pc["tau_end"]), x)),
        }
        got = {key: measure(f(), te) for key, (te, f) in runs.items()}
        got.update(odes)
        fp = got[peer]["f"]
        boot_peer = [fid.frechet_distance(fid.stats(fp[i]), ref) for i in idx]
        row = {}
        for key, m in got.items():
            diff = [fid.frechet_distance(fid.stats(m["f"][i]), ref) - b
                    for i, b in zip(idx, boot_peer)]
            row[key] = dict(fd=m["fd"], minus_peer=m["fd"] - got[peer]["fd"],
                            minus_peer_ci=[float(np.percentile(diff, 2.5)),
                                           float(np.percentile(diff, 97.5))],
                            fd_flat=m["fd_flat"], background=m["background"],
                            high_pass=m["high_pass"], tau_end=m["tau_end"])
        out["fd"]["nfe"][str(nfe)] = dict(best_peer=peer, rows=row)
        print("%s FD NFE %d (%d samples): %s; %.0f s" % (
            name, nfe, args.fd_samples, ", ".join(
                "%s %.2f (%+.2f [%+.2f, %+.2f])" % (k, v["fd"], v["minus_peer"],
                                                   *v["minus_peer_ci"])
                for k, v in row.items()), time.time() - tf), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=list(MODELS))
    ap.add_argument("--samples", type=int, default=None,
                    help="evaluation samples (default: the model's, 1024 or 16384)")
    ap.add_argument("--select", type=int, default=None,
                    help="samples that choose the peers' configurations (default 32)")
    ap.add_argument("--nfe", type=lambda s: [int(v) for v in s.split(",")], default=None)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--fd-samples", type=int, default=1000,
                    help="image models: samples per Frechet distance at NFE 5 and 10 (0: none)")
    ap.add_argument("--fd-only", action="store_true",
                    help="redo only the Frechet distances (keeps the RMSE part of the last run "
                         "on the same table)")
    ap.add_argument("--report", action="store_true",
                    help="docs/data/tuned_eval.json.gz, the docs/quality.md block, the plot")
    args = ap.parse_args()
    if args.report:
        import report_tuned
        report_tuned.main()
    elif args.model:
        evaluate(args.model, args)
    else:
        ap.error("--model or --report")


if __name__ == "__main__":
    main()
