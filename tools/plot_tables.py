#!/usr/bin/python3
"""Plot r(tau) of the normalization tables into docs/img/r_tau.png (`make plots`).

Run from the repository root with Debian's python3 (matplotlib):

    /usr/bin/python3 tools/plot_tables.py [out.png]

Each table is first exported to CSV by build/bin/deissn-calibrate --csv, so the plot shows
the values libdeissn itself reads (the clip applied, the knots where the library puts them),
not a re-implementation of the loader. The tables:
  - the reference's CIFAR-10 and LSUN Church tables (clip 5 and 1, as the reference uses them),
    from $DEISSN_SEED_TABLES (default ../shared/seed-tables);
  - the shipped model's table, models/fmnist_unet.dsn (made by deissn-calibrate), when it exists.
A table that is missing is skipped with a note.
"""
import csv
import math
import os
import subprocess
import sys
import tempfile

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

TOOL = os.path.join("build", "bin", "deissn-calibrate")
SEED = os.environ.get("DEISSN_SEED_TABLES") or os.path.join("..", "shared", "seed-tables")
TABLES = [  # (label, path, clip)
    ("CIFAR-10 (reference, clip 5)", os.path.join(SEED, "cifar10_Ls_score_abs.pt"), 5),
    ("LSUN Church (reference, clip 1)", os.path.join(SEED, "lsunchurch_Ls_score_abs.pt"), 1),
    ("Fashion-MNIST U-Net (shipped)", os.path.join("models", "fmnist_unet.dsn"), 0),
]


def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [float(r["tau"]) for r in rows], [float(r["r"]) for r in rows]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join("docs", "img", "r_tau.png")
    if not os.access(TOOL, os.X_OK):
        sys.exit(f"plot_tables: {TOOL} is missing; run make first")
    fig, (ax, zoom) = plt.subplots(1, 2, figsize=(11, 4.2))
    with tempfile.TemporaryDirectory() as tmp:
        for i, (label, path, clip) in enumerate(TABLES):
            if not os.path.exists(path):
                print(f"plot_tables: skipping {label}: {path} does not exist")
                continue
            csv_path = os.path.join(tmp, f"{i}.csv")
            subprocess.run([TOOL, "--csv", path, "--clip", str(clip), "--out", csv_path],
                           check=True)
            tau, r = read_csv(csv_path)
            for a in (ax, zoom):
                a.plot(tau, r, label=label, lw=1.3)
            print(f"plot_tables: {label}: {len(tau)} knots, r {r[0]:.4f} at tau {tau[0]:.4g}, "
                  f"{r[-1]:.4f} at tau 1")
    for a in (ax, zoom):
        a.axhline(math.sqrt(2 / math.pi), color="gray", ls="--", lw=0.8,
                  label="sqrt(2/pi): E|N(0,1)|")
        a.set_xlabel("tau (0 = data, 1 = noise)")
        a.grid(alpha=0.3)
    ax.set_ylabel("r(tau) = mean |eps|")
    ax.set_title("Normalization tables")
    zoom.set_xlim(0, 0.05)
    zoom.set_title("near tau = 0 (the clipped knots are flat)")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"plot_tables: wrote {out}")


if __name__ == "__main__":
    main()
