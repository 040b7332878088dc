#!/usr/bin/python3
"""Sample Fashion-MNIST images with the shipped demo model and DEIS-SN, and save a PNG grid.

    /usr/bin/python3 bindings/python/examples/sample_png.py [--steps 10] [-n 64] [--out samples.png]

The model (models/fmnist_unet.pt, an eps-prediction UNet on 1 x 32 x 32 images in [-1, 1])
is made by tools/train_tiny_model.py, its tuned table (models/fmnist_unet.dsn) by
deissn-calibrate (make shipped-table); pass --model/--table to use others, --table none for plain DEIS,
--sampler for another of the library's samplers by name (deis, ddim, x0, x0-corrector).
"""
import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the in-tree package
import deissn  # noqa: E402

MODELS = Path(__file__).resolve().parents[3] / "models"


def grid(x, pad=2):
    """Tile samples [n, 1, h, w] in [-1, 1] into one near-square 8-bit image."""
    n, _, h, w = x.shape
    cols = int(np.ceil(np.sqrt(n)))
    rows = -(-n // cols)
    img = np.zeros((rows * (h + pad) + pad, cols * (w + pad) + pad), np.uint8)
    pixels = np.round((np.clip(x[:, 0], -1, 1) + 1) * 127.5).astype(np.uint8)
    for k in range(n):
        r, c = divmod(k, cols)
        img[pad + r * (h + pad):][:h, pad + c * (w + pad):][:, :w] = pixels[k]
    return Image.fromarray(img)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(MODELS / "fmnist_unet.pt"))
    ap.add_argument("--table", default=str(MODELS / "fmnist_unet.dsn"),
                    help="normalization table, or 'none' for plain DEIS")
    ap.add_argument("--steps", type=int, default=10, help="model evaluations (NFE)")
    ap.add_argument("--sampler", default="deis-sn",
                    help="deis-sn (with --table), deis, ddim, x0 or x0-corrector")
    ap.add_argument("-n", type=int, default=64, help="number of samples")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shape", default="1,32,32", help="the shape of one sample")
    ap.add_argument("--out", default="fmnist_samples.png")
    args = ap.parse_args()

    for path, what in ((args.model, "model"), (args.table, "table")):
        if path != "none" and not Path(path).exists():
            sys.exit("sample_png.py: the %s %s is absent. The demo model and table are made by "
                     "tools/train_tiny_model.py and may not be in this checkout yet; pass "
                     "--model/--table to use your own." % (what, path))
    if not deissn.has_torch():
        sys.exit("sample_png.py: the torch plug-in (libdeissn-torch.so.%d) is not available "
                 "here, so TorchScript models cannot be run" % deissn.ABI)

    schedule = deissn.Schedule(noise="linear", spacing="quadratic", steps=args.steps)
    name = args.sampler
    if name.lower().replace("_", "-") == "deis-sn" and args.table == "none":
        name = "deis"  # DEIS-SN without its table is DEIS
    table = deissn.NormTable.load(args.table) if name.lower().replace("_", "-") == "deis-sn" \
        else None
    sampler = deissn.Sampler.named(name, schedule, table)
    model = deissn.Model.load(args.model)
    x = deissn.noise(args.seed, args.n, tuple(int(d) for d in args.shape.split(",")))
    sampler.sample(model, x)
    st = sampler.stats
    print("%d samples, %d model evaluations, %s: %.2f s in the model, %.3f s in the sampler" % (
        args.n, st.evaluations, name, st.model_seconds, st.sampler_seconds))
    grid(x).save(args.out)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
