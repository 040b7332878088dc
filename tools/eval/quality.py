#!/usr/bin/python3
"""Sample quality of DDIM, DEIS and DEIS-SN against NFE on the shipped model (docs/quality.md).

    make eval         # = /usr/bin/python3 tools/eval/quality.py            (~20 min, 2 cores)
    make eval-smoke   # = /usr/bin/python3 tools/eval/quality.py --smoke    (CI, < 2 min)

For every NFE in 5, 6, 8, 10, 15, 20 and every method (DDIM; DEIS tAB order 1-3; DEIS-SN tAB
order 1-3; quadratic spacing, tau_end 0: the reference configuration), all samples start from
the same noise, deissn.noise(SEED, N), and are drawn by the library's own loop
(Sampler.sample with the TorchScript model), in batches. Two measures:

* RMSE to the ground truth: the same ODE from the same noise solved with DEIS order 3 at
  GT_STEPS quadratic steps, on the first N_RMSE samples. Its own error is estimated by the
  difference to GT_STEPS/2 steps (printed: it must be far below the errors reported).
  The ground truth is cached in build/eval/ (keyed by the model file's hash).
* FD: the Frechet distance (tools/eval/fid.py) between N samples (clipped to [-1, 1]) and the
  10,000 test images in the features of tools/eval/fmnist_classifier.pt. Its noise: the FD of
  the two disjoint halves of the samples; its floor: the FD of N training images.

Writes build/eval/quality.json (every number), build/eval/quality_tables.md (also into the
quality block of docs/quality.md), and the plots
docs/img/quality_rmse.png, docs/img/quality_fd.png, docs/img/deis_vs_sn.png (with --smoke all
outputs go to build/eval/smoke/ instead). Results are cached per configuration in the JSON, so
an interrupted run resumes; --fresh starts over.
"""
import argparse
import hashlib
import json
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))
sys.path.insert(0, HERE)
import deissn  # noqa: E402
import fid  # noqa: E402
from docblock import replace_block  # noqa: E402

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

SEED = 2024
MODEL = os.path.join(ROOT, "models", "fmnist_unet.pt")
TABLE = os.path.join(ROOT, "tools", "eval", "fmnist_unet_table.pt")
METHODS = [  # (name, order, normalised)
    ("DDIM", 0, False),
    ("DEIS-1", 1, False), ("DEIS-2", 2, False), ("DEIS-3", 3, False),
    ("DEIS-SN-1", 1, True), ("DEIS-SN-2", 2, True), ("DEIS-SN-3", 3, True),
]


def sampler_for(steps, order, table):
    sch = deissn.Schedule(noise="linear", spacing="quadratic", steps=steps, tau_end=0.0)
    return deissn.Sampler(sch, table, order=order)


def run(model, sampler, noise, batch):
    """Samples from `noise` (copied), batch by batch."""
    x = noise.copy()
    for i in range(0, len(x), batch):
        xb = np.ascontiguousarray(x[i:i + batch])
        sampler.sample(model, xb)
        x[i:i + batch] = xb
    return x


def file_hash(path):
    with open(path, "rb") as f:
        return hashlib.sha1(f.read()).hexdigest()[:12]


def ground_truth(model, noise, steps, batch, cache_dir, key):
    path = os.path.join(cache_dir, "gt_%s_%d_%d.npy" % (key, len(noise), steps))
    if os.path.exists(path):
        return np.load(path)
    t0 = time.time()
    x = run(model, sampler_for(steps, 3, None), noise, batch)
    np.save(path, x)
    print("ground truth: %d samples, DEIS-3, %d steps: %.0f s" % (len(x), steps, time.time() - t0),
          flush=True)
    return x


def rmse(a, b):
    return float(np.sqrt(np.mean((a.astype(np.float64) - b) ** 2)))


def plot_metric(res, nfes, key, ylabel, path, title, logy=True, lines_at=()):
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    colors = {0: "black", 1: "tab:blue", 2: "tab:orange", 3: "tab:green"}
    for name, order, sn in METHODS:
        y = [res[name][str(n)][key] for n in nfes]
        ax.plot(nfes, y, marker="o" if sn else "s", ms=4, color=colors[order],
                ls="-" if sn or order == 0 else "--", label=name)
    for y, label, ls in lines_at:
        ax.axhline(y, color="gray", lw=0.9, ls=ls, label=label)
    ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xticks(nfes)
    ax.set_xticklabels([str(n) for n in nfes])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel("NFE (model evaluations)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_grid(rows, path, n=12):
    """rows: [(label, images [>= n, 1, 32, 32])]: one row of n samples per label."""
    fig, axes = plt.subplots(len(rows), 1, figsize=(n * 0.62 + 1.6, len(rows) * 0.72 + 0.2))
    fig.subplots_adjust(left=1.5 / (n * 0.62 + 1.6), right=0.99, top=0.98, bottom=0.02,
                        hspace=0.12)
    for ax, (label, x) in zip(axes, rows):
        strip = np.concatenate([np.pad(np.clip(x[i, 0], -1, 1), 1, constant_values=1)
                                for i in range(n)], axis=1)
        ax.imshow(strip, cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1000, help="samples per configuration (FD)")
    ap.add_argument("--n-rmse", type=int, default=128, help="samples with a ground truth")
    ap.add_argument("--gt-steps", type=int, default=1000)
    ap.add_argument("--nfe", default="5,6,8,10,15,20")
    ap.add_argument("--limit-nfe", type=int, default=50, help="NFE of the FD reference line")
    ap.add_argument("--batch", type=int, default=250)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--n-test", type=int, default=10000, help="test images for the FD")
    ap.add_argument("--model", default=MODEL)
    ap.add_argument("--table", default=TABLE)
    ap.add_argument("--smoke", action="store_true", help="a tiny run (CI): outputs in build/eval/smoke")
    ap.add_argument("--fresh", action="store_true", help="ignore cached results")
    args = ap.parse_args()
    if args.smoke:
        args.n, args.n_rmse, args.gt_steps, args.nfe, args.batch = 32, 16, 60, "5,10", 32
        args.n_test, args.threads, args.limit_nfe = 2000, 1, 20  # 2 OpenMP threads crawl on a busy 2-core runner
    nfes = [int(v) for v in args.nfe.split(",")]
    out_dir = os.path.join(ROOT, "build", "eval")
    img_dir = os.path.join(out_dir, "smoke") if args.smoke else os.path.join(ROOT, "docs", "img")
    res_dir = os.path.join(out_dir, "smoke") if args.smoke else out_dir
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(res_dir, exist_ok=True)
    if not os.path.exists(args.model):  # CI before the model is committed: the code still runs
        print("quality: %s is missing; using the analytic tests/models/gaussian_eps.pt "
              "(numbers meaningless)" % args.model)
        args.model = os.path.join(ROOT, "tests", "models", "gaussian_eps.pt")
    if not os.path.exists(args.table) and args.smoke:
        args.table = os.path.join(ROOT, "..", "shared", "seed-tables", "cifar10_Ls_score_abs.pt")
        print("quality: no model table; using %s (numbers meaningless)" % args.table)
    if not os.path.exists(args.table):  # DDIM and DEIS do not need it: do them, resume later
        print("quality: %s is missing: DEIS-SN is skipped; run again once it exists (the "
              "other results are kept)" % args.table)

    torch.set_num_threads(args.threads)
    model = deissn.Model.load(args.model, threads=args.threads)
    table, table_key = None, None
    if os.path.exists(args.table):
        table, table_key = deissn.NormTable.load(args.table, clip=0), file_hash(args.table)
    key = file_hash(args.model)
    # DEIS-SN results are also keyed by the table's hash (below), so the table may come later
    settings = dict(model=os.path.relpath(args.model, ROOT), model_sha1=key, seed=SEED, n=args.n,
                    n_rmse=args.n_rmse, gt_steps=args.gt_steps, nfe=nfes,
                    n_test=args.n_test, spacing="quadratic", tau_end=0.0)
    res_path = os.path.join(res_dir, "quality.json")
    saved = {}
    if os.path.exists(res_path) and not args.fresh:
        with open(res_path) as f:
            saved = json.load(f)
        if saved.get("settings") != settings:
            saved = {}
    res = saved.get("results", {})
    for name, _, sn in METHODS:
        if sn and res.get(name, {}).get("table_sha1") != table_key:
            res.pop(name, None)

    def save(extra):
        with open(res_path, "w") as f:
            json.dump(dict(settings=settings, results=res, extra=extra), f, indent=1)

    noise = deissn.noise(SEED, args.n, (1, 32, 32))
    # the cost of one model call, to say what the run will cost
    t0 = time.time()
    run(model, sampler_for(1, 0, None), noise[:args.batch], args.batch)
    per = (time.time() - t0) / min(args.batch, args.n)
    todo = sum(n for n in nfes) * len(METHODS) * args.n + 1.5 * args.gt_steps * args.n_rmse
    print("quality: %s, %.2f ms per sample and model call (batch %d, %d threads); "
          "at most %.0f s of sampling" % (settings["model"], per * 1e3, args.batch, args.threads,
                                          todo * per), flush=True)

    # ground truth and its convergence check
    gt = ground_truth(model, noise[:args.n_rmse], args.gt_steps, args.batch, out_dir, key)
    gt_half = ground_truth(model, noise[:args.n_rmse], args.gt_steps // 2, args.batch, out_dir,
                           key)
    gt_err = rmse(gt_half, gt)
    print("ground truth: RMSE(%d steps, %d steps) = %.2e" % (args.gt_steps // 2, args.gt_steps,
                                                            gt_err), flush=True)

    # the classifier's features of the test set and of N training images (the FD floor)
    net = fid.load_classifier()
    xte, yte = fid.load_fmnist("t10k")
    xte, yte = xte[:args.n_test], yte[:args.n_test]
    acc = fid.accuracy(net, xte, yte)
    ref = fid.stats(fid.features(net, xte))
    xtr = fid.load_fmnist("train")[0][:args.n]
    floor = fid.frechet_distance(fid.stats(fid.features(net, xtr)), ref)
    extra = dict(gt_half_rmse=gt_err, classifier_accuracy=acc, fd_train_floor=floor,
                 table=os.path.relpath(args.table, ROOT))
    print("classifier test accuracy %.4f; FD of %d training images to the test set %.3f"
          % (acc, args.n, floor), flush=True)

    # The model's own FD: the ODE solved closely (DEIS-3, LIMIT_NFE steps) on the same noise.
    # What a sampler can reach at any NFE; the rest of the FD is the model's error.
    lim = res.get("_limit")
    if not lim or lim["nfe"] != args.limit_nfe:
        x = run(model, sampler_for(args.limit_nfe, 3, None), noise, args.batch)
        feats = fid.features(net, np.clip(x, -1, 1))
        lim = res["_limit"] = dict(nfe=args.limit_nfe, rmse=rmse(x[:args.n_rmse], gt),
                                   fd=fid.frechet_distance(fid.stats(feats), ref))
        save(extra)
    print("DEIS-3 at %d NFE: RMSE %.4f, FD %.3f" % (lim["nfe"], lim["rmse"], lim["fd"]))

    grids = {}
    # without the table first, so that the table may arrive while they run
    for name, order, sn in sorted(METHODS, key=lambda m: m[2]):
        if sn and table is None:
            continue
        for nfe in nfes:
            have = res.get(name, {}).get(str(nfe))
            want_grid = order == 3 and nfe in (5, 10)
            grid_path = os.path.join(res_dir, "grid_%s_%d.npy" % (name, nfe))
            if have and (not want_grid or os.path.exists(grid_path)):
                if want_grid:
                    grids[(name, nfe)] = np.load(grid_path)
                continue
            t0 = time.time()
            x = run(model, sampler_for(nfe, order, table if sn else None), noise, args.batch)
            feats = fid.features(net, np.clip(x, -1, 1))
            h = len(x) // 2
            r = dict(rmse=rmse(x[:args.n_rmse], gt),
                     fd=fid.frechet_distance(fid.stats(feats), ref),
                     fd_half=[fid.frechet_distance(fid.stats(feats[:h]), ref),
                              fid.frechet_distance(fid.stats(feats[h:]), ref)],
                     seconds=time.time() - t0)
            res.setdefault(name, {})[str(nfe)] = r
            if sn:
                res[name]["table_sha1"] = table_key
            if want_grid:
                grids[(name, nfe)] = x[:16]
                np.save(grid_path, x[:16])
            save(extra)
            print("%-10s NFE %2d: RMSE %.4f  FD %7.3f (halves %.3f, %.3f)  %.0f s"
                  % (name, nfe, r["rmse"], r["fd"], r["fd_half"][0], r["fd_half"][1],
                     r["seconds"]), flush=True)
    save(extra)
    if table is None:
        sys.exit("quality: DEIS-SN skipped (no table): run again once %s exists" % args.table)

    # tables (markdown) and plots
    lines = []
    for key_, title, fmt in (("rmse", "RMSE to the ground truth (%d samples)" % args.n_rmse,
                              "%.4f"),
                             ("fd", "FD to the test set (%d samples vs %d)" % (args.n, args.n_test), "%.2f")):
        lines += ["", "**%s**" % title, "",
                  "| NFE | " + " | ".join(m[0] for m in METHODS) + " |",
                  "|---:|" + "---:|" * len(METHODS)]
        for nfe in nfes:
            vals = [res[m[0]][str(nfe)][key_] for m in METHODS]
            best = min(vals)
            cells = [("**" + fmt + "**") % v if v == best else fmt % v for v in vals]
            lines.append("| %d | %s |" % (nfe, " | ".join(cells)))
    spread = max(abs(res[m[0]][str(n)]["fd_half"][0] - res[m[0]][str(n)]["fd_half"][1])
                 for m in METHODS for n in nfes)
    lines += ["", "* ground truth: DEIS-3 at %d quadratic steps; RMSE to %d steps: %.2e"
              % (args.gt_steps, args.gt_steps // 2, gt_err),
              "* DEIS-3 at %d NFE (the ODE solved closely): RMSE %.4f, FD %.2f"
              % (lim["nfe"], lim["rmse"], lim["fd"]),
              "* FD noise: largest difference between the FDs of the two halves (%d samples "
              "each): %.3f; FD floor (%d training images): %.3f; classifier test accuracy %.4f"
              % (args.n // 2, spread, args.n, floor, acc)]
    with open(os.path.join(res_dir, "quality_tables.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    if not args.smoke:
        replace_block(os.path.join(ROOT, "docs", "quality.md"), "quality", "\n".join(lines))
    plot_metric(res, nfes, "rmse", "RMSE to the ground truth (pixels in [-1, 1])",
                os.path.join(img_dir, "quality_rmse.png"),
                "Error vs a %d-step solution of the same ODE, %d samples, same noise"
                % (args.gt_steps, args.n_rmse))
    plot_metric(res, nfes, "fd", "Frechet distance (classifier features)",
                os.path.join(img_dir, "quality_fd.png"),
                "FD of %d samples to the Fashion-MNIST test set" % args.n,
                lines_at=[(floor, "%d training images" % args.n, ":"),
                          (lim["fd"], "DEIS-3, %d NFE (the model's own FD)" % lim["nfe"], "--")])
    if all(k in grids for k in (("DEIS-3", 5), ("DEIS-SN-3", 5), ("DEIS-3", 10),
                                ("DEIS-SN-3", 10))) and len(gt) >= 12:
        plot_grid([("DEIS-3, 5 NFE", grids[("DEIS-3", 5)]),
                   ("DEIS-SN-3, 5 NFE", grids[("DEIS-SN-3", 5)]),
                   ("DEIS-3, 10 NFE", grids[("DEIS-3", 10)]),
                   ("DEIS-SN-3, 10 NFE", grids[("DEIS-SN-3", 10)]),
                   ("ground truth", gt)], os.path.join(img_dir, "deis_vs_sn.png"))
    print("quality: wrote %s, the plots in %s" % (os.path.relpath(res_path, ROOT),
                                                  os.path.relpath(img_dir, ROOT)))


if __name__ == "__main__":
    main()
