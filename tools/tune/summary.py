#!/usr/bin/python3
"""Markdown tables of tools/tune/result_*.json: the hold-out comparison and the cost.

    /usr/bin/python3 tools/tune/summary.py tools/tune/result_fmnist_refined.json ...
"""
import json
import sys


def plan_label(c):
    return "%s o%d%s tau_end=%g (%s)" % (c["var"], c["order"], " lof" if c["lof"] else "",
                                         c["tau_end"], c.get("source", "grid"))


def main(paths):
    for path in paths:
        r = json.load(open(path))
        nfe = r["nfe"]
        rows = [k for k in sorted(nfe, key=int) if "holdout" in nfe[k]]
        print("\n#### %s (%s)\n" % (r["model"], path))
        if rows:
            n = nfe[rows[0]]["holdout"]["samples"]
            print("Hold-out (%d seeds, never used for a choice): RMSE [bootstrap 95%%], and the "
                  "ratio to the best peer [paired bootstrap 95%%]\n" % n)
            print("| NFE | tuned plan | tuned | BEST | best peer (configuration) | tuned / peer "
                  "| BEST / peer |")
            print("|---:|---|---|---|---|---|---|")
            for k in rows:
                h = nfe[k]["holdout"]["rows"]
                p = h[nfe[k]["holdout"]["best_peer"]]
                t, b = h["tuned"], h["BEST"]
                print("| %s | %s | %.4f [%.4f, %.4f] | %.4f [%.4f, %.4f] | %.4f (%s %s "
                      "tau_end=%g) | %s%.3f%s [%.3f, %.3f] | %.3f [%.3f, %.3f] |"
                      % (k, plan_label(nfe[k]["chosen"]), t["rmse"], *t["ci"], b["rmse"],
                         *b["ci"], p["rmse"], p["cfg"]["name"], p["cfg"]["grid"],
                         p["cfg"]["tau_end"], "**" if t["ratio_to_peer"] < 1 else "",
                         t["ratio_to_peer"], "**" if t["ratio_to_peer"] < 1 else "",
                         *t["ratio_ci"], b["ratio_to_peer"], *b["ratio_ci"]))
        tuned = [k for k in sorted(nfe, key=int) if "seconds" in nfe[k]]
        print("\nTuning cost: %.0f s, %d sample-evaluations of the model in all (NFE %s-%s, "
              "reference trajectories included)\n" % (r.get("tuning_seconds", 0),
                                                      r.get("tuning_evaluations", 0),
                                                      tuned[0], tuned[-1]))
        print("| NFE | seconds | of which surrogate | model evaluations | fit RMSE | plan |")
        print("|---:|---:|---:|---:|---:|---|")
        for k in tuned:
            e = nfe[k]
            print("| %s | %.1f | %.1f | %d | %.4f | %s |" % (k, e["seconds"], e["surrogate_seconds"],
                                                          e["evaluations"],
                                                          e["chosen"]["fit_rmse"],
                                                          plan_label(e["chosen"])))


if __name__ == "__main__":
    main(sys.argv[1:])
