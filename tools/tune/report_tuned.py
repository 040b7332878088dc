"""The report of tools/tune/evaluate.py: docs/data/tuned_eval.json.gz, the generated `tuned`
block of docs/quality.md and docs/img/tuned_rmse.png, from build/tune-eval/<model>.json."""
import gzip
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tools", "eval"))
import docblock  # noqa: E402
import evaluate as E  # noqa: E402

DATA = os.path.join(REPO, "docs", "data", "tuned_eval.json.gz")
PAGE = os.path.join(REPO, "docs", "quality.md")
PLOT = os.path.join(REPO, "docs", "img", "tuned_rmse.png")
ON = " on TUNED's times"
FAR = 0.25
PER_SAMPLE_MAX = 1024


def far(row):
    return sum(1 for m in row["mse"] if float(m) > FAR * FAR)


def load():
    res = {}
    for name in E.MODELS:
        p = os.path.join(E.OUT_DIR, "%s.json" % name)
        if os.path.exists(p):
            res[name] = json.load(open(p))
    return res


def cfg_label(c):
    if "plan" in c:
        return c["plan"]
    if "family" in c:
        name = {"dpm": "DPM-Solver++(%dM)", "unipc": "UniPC-%d"}[c["fn"]] % c["order"]
        return "%s %s tau_end=%g" % (name, c["grid"], c["tau_end"])
    m = E.method_label(c["method"], c["uses_table"], c["corrector"])
    return "%s %s o%d%s tau_end=%g" % (m, c["spacing"], c["order"],
                                       " lof" if c["lower_order_final"] else "", c["tau_end"])


def ratio(r, bold=True):
    s = "%.3f [%.3f, %.3f]" % (r["ratio_to_peer"], *r["ratio_ci"])
    return "**%s**" % s if bold and r["ratio_ci"][1] < 1 else s


def rm(r):
    return "%.4f [%.4f, %.4f]" % (r["rmse"], *r["ci"])


def block(res):
    L = []
    names = [n for n in E.MODELS if n in res]
    nfes = sorted({int(k) for n in names for k in res[n]["nfe"]})
    L.append("Samples: " + "; ".join(
        "%s %d evaluation samples (seed %d), peers chosen on %d (seed %d), reference %d times "
        "(its RMSE to %d times: %.1e at 0, %.1e at 1e-3, first 8 samples)"
        % (n, res[n]["samples"], res[n]["eval_seed"], res[n]["select_samples"],
           res[n]["select_seed"], res[n]["reference_grid"], 2 * res[n]["reference_grid"],
           res[n]["reference_check"]["0.0"], res[n]["reference_check"]["0.001"]) for n in names)
              + ". The tuner used seed 0, samples 0..319.")
    L.append("")
    L.append("**TUNED / best peer** (RMSE ratio, paired bootstrap 95 % interval; bold: the "
             "interval is below 1) and BEST / best peer:")
    L.append("")
    L.append("| NFE | " + " | ".join("%s TUNED/peer | %s BEST/peer" % (n, n) for n in names) + " |")
    L.append("|---:|" + "---|---|" * len(names))
    for nfe in nfes:
        cells = []
        for n in names:
            d = res[n]["nfe"].get(str(nfe))
            if d is None:
                cells += ["-", "-"]
                continue
            cells += [ratio(d["rows"]["TUNED"]), ratio(d["rows"]["BEST"], bold=False)]
        L.append("| %d | %s |" % (nfe, " | ".join(cells)))
    L.append("")
    for n in names:
        r = res[n]
        L.append("#### %s: %s" % (n, r["what"]))
        L.append("")
        L.append("`%s`, table `%s` (sha256 %s...); %d evaluation samples. RMSE [bootstrap "
                 "95 %%]; the peers \"on TUNED's times\" run the family's better order (chosen "
                 "on the selection samples) on the plan's own times and end." % (
                     r["pt"], r["table"], r.get("table_sha256", "?")[:16], r["samples"]))
        L.append("")
        L.append("| NFE | TUNED plan | TUNED | BEST | best peer (configuration) | other family "
                 "| DPM-Solver++ on TUNED's times | UniPC on TUNED's times | tuner's hold-out "
                 "(TUNED / BEST) |")
        L.append("|---:|---|---|---|---|---|---|---|---|")
        for nfe in nfes:
            d = r["nfe"].get(str(nfe))
            if d is None:
                continue
            w = d["rows"]
            peer = d["best_peer"]
            other = [f for f in E.FAMILIES if f != peer][0]
            t = w["TUNED"]["cfg"]
            L.append("| %d | %s | %s | %s | %s (%s) | %.4f (%s) | %s | %s | %.4f / %.4f |" % (
                nfe, t["plan"], rm(w["TUNED"]), rm(w["BEST"]), rm(w[peer]),
                cfg_label(w[peer]["cfg"]), w[other]["rmse"], cfg_label(w[other]["cfg"]),
                "%.4f (%.3fx)" % (w["DPM-Solver++" + ON]["rmse"],
                                  w["DPM-Solver++" + ON]["ratio_to_peer"]),
                "%.4f (%.3fx)" % (w["UniPC" + ON]["rmse"], w["UniPC" + ON]["ratio_to_peer"]),
                t["tuner_heldout_rmse"], t["tuner_best_rmse"]))
        L.append("")
        if n.startswith("gmm"):  # heavy tails: a few samples land in another component
            L.append("Samples whose own RMSE exceeds %.2f (they end in another mixture "
                     "component than the converged solution; they dominate the RMSE): " % FAR
                     + "; ".join("%s NFE: TUNED %d, BEST %d, %s %d" % (
                         nfe, far(d["rows"]["TUNED"]), far(d["rows"]["BEST"]), d["best_peer"],
                         far(d["rows"][d["best_peer"]]))
                         for nfe, d in sorted(r["nfe"].items(), key=lambda kv: int(kv[0])))
                     + " (of %d)." % r["samples"])
            L.append("")
        tl = r.get("tuning_log")
        L.append("Evaluation: `tools/tune/evaluate.py --model %s`, %.0f s, %d "
                 "sample-evaluations. Tuning: `%s` (log `%s`): %s" % (
            n, r["seconds"], r["evaluations"], E.MODELS[n]["tune_cmd"], E.MODELS[n]["log"],
            "; ".join("`%s`" % s.strip() for s in tl) if tl else "log absent"))
        L.append("")
    fd = [n for n in names if res[n].get("fd", {}).get("nfe")]
    if fd:
        f0 = res[fd[0]]["fd"]
        L.append("**Frechet distance** (tools/eval/fid.py; %d samples of seed %d, clipped to "
                 "[-1, 1], vs the 10,000 test images; the peer is the best-RMSE configuration "
                 "of the family that won on RMSE at that NFE; \"ODE\" is the converged solution "
                 "from the same noise, what a sampler without error gets). FD - peer's: paired "
                 "bootstrap 95 %% interval (%d resamples). Background: the fraction of pixels "
                 "<= %g (the test images: %.3f). High-pass: the energy of the image minus its "
                 "3x3 blur, relative to the converged solution's at the same end. Flat background: "
                 "the FD once more with every pixel <= %g set to -1, for every sampler alike." % (
                     f0["samples"], f0["seed"], f0["boot"], f0["background"],
                     f0["data_background"], E.FLATTEN))
        L.append("")
        L.append("| model | NFE | sampler | FD | FD - peer's [95 %] | background | high-pass "
                 "| FD, flat background |")
        L.append("|---|---:|---|---:|---|---:|---:|---:|")
        for n in fd:
            for nfe, d in sorted(res[n]["fd"]["nfe"].items(), key=lambda kv: int(kv[0])):
                for key, v in d["rows"].items():
                    lab = key + (" (best peer)" if key == d["best_peer"] else "")
                    diff = ("" if key == d["best_peer"] else "%+.2f [%+.2f, %+.2f]" % (
                        v["minus_peer"], *v["minus_peer_ci"]))
                    L.append("| %s | %s | %s | %.2f | %s | %.3f | %.3f | %.2f |" % (
                        n, nfe, lab, v["fd"], diff, v["background"], v["high_pass"],
                        v["fd_flat"]))
        L.append("")
    # where TUNED does not win
    lose, tie = [], []
    for n in names:
        for nfe in nfes:
            d = res[n]["nfe"].get(str(nfe))
            if d is None:
                continue
            t = d["rows"]["TUNED"]
            if t["ratio_ci"][0] > 1:
                lose.append("%s at %d NFE (%.3fx %s, [%.3f, %.3f])" % (
                    n, nfe, t["ratio_to_peer"], d["best_peer"], *t["ratio_ci"]))
            elif t["ratio_ci"][1] >= 1:
                tie.append("%s at %d (%.3fx)" % (n, nfe, t["ratio_to_peer"]))
    L.append("Where TUNED does not win: behind the best peer with the whole interval above 1: "
             + ("; ".join(lose) if lose else "nowhere") + ". Not distinguishable from it "
             "(the interval contains 1): " + ("; ".join(tie) if tie else "nowhere") + ".")
    return "\n".join(L) + "\n"


def plot(res):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = [n for n in E.MODELS if n in res]
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.6), squeeze=False)
    for ax, n in zip(axes[0], names):
        nf = sorted(int(k) for k in res[n]["nfe"])
        for key, lab, st in (("TUNED", "TUNED", "o-"), ("BEST", "BEST", "s--"),
                             ("peer", "best peer", "^-")):
            ys, lo, hi = [], [], []
            for v in nf:
                d = res[n]["nfe"][str(v)]
                row = d["rows"][d["best_peer"] if key == "peer" else key]
                ys.append(row["rmse"])
                lo.append(row["rmse"] - row["ci"][0])
                hi.append(row["ci"][1] - row["rmse"])
            ax.errorbar(nf, ys, yerr=[lo, hi], fmt=st, label=lab, capsize=2, ms=4)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(nf)
        ax.set_xticklabels([str(v) for v in nf])
        ax.set_xlabel("NFE")
        ax.set_ylabel("RMSE to the converged ODE solution")
        ax.set_title("%s (%d samples)" % (n, res[n]["samples"]))
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(PLOT, dpi=110)
    print("wrote %s" % os.path.relpath(PLOT, REPO))


def main():
    res = load()
    if not res:
        raise SystemExit("no results in %s (tools/tune/evaluate.py --model M)" % E.OUT_DIR)
    for n, r in res.items():  # the tuning's cost as its log says now
        r["tuning_log"] = E.tuning_cost(os.path.join(REPO, E.MODELS[n]["log"])) or r["tuning_log"]

    def small(o, keep):
        """Every sample's squared error to 4 significant digits where there are at most
        PER_SAMPLE_MAX samples (build/tune-eval/ keeps them all); else the count far off."""
        if isinstance(o, dict):
            if "mse" in o and not keep:
                o = dict(o, mse=None, samples_far=far(o))
            return {k: (["%.4g" % v for v in x] if k == "mse" and x else small(x, keep))
                    for k, x in o.items()}
        if isinstance(o, list):
            return [small(v, keep) for v in o]
        return o
    res_small = {n: small(r, r["samples"] <= PER_SAMPLE_MAX) for n, r in res.items()}
    os.makedirs(os.path.dirname(DATA), exist_ok=True)
    with gzip.GzipFile(DATA, "wb", mtime=0) as fh:
        fh.write(json.dumps(res_small, indent=0, sort_keys=True).encode())
    print("wrote %s" % os.path.relpath(DATA, REPO))
    docblock.replace_block(PAGE, "tuned", block(res))
    plot(res)


if __name__ == "__main__":
    main()
