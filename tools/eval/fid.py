#!/usr/bin/python3
"""Frechet distance in the feature space of a small Fashion-MNIST classifier.

FD = |mu1 - mu2|^2 + tr(C1 + C2 - 2 (C1^1/2 C2 C1^1/2)^1/2), the FID formula with the
128-d penultimate layer of tools/eval/fmnist_classifier.pt (tools/eval/train_classifier.py)
in place of Inception's pool3. Numbers are comparable with each other, not with FID papers.

    /usr/bin/python3 tools/eval/fid.py A.npy [B.npy]     # FD of samples A (and B) vs the test set

A .npy holds images [N, 1, 32, 32] (or [N, 32, 32]) in [-1, 1]. Used as a module by
tools/eval/quality.py.
"""
import gzip
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
DATA_DIR = "/usr/share/datasets/fashion-mnist"
CLASSIFIER = os.path.join(HERE, "fmnist_classifier.pt")


def load_fmnist(split="t10k"):
    """(images float32 [N, 1, 32, 32] in [-1, 1], background -1 (28x28 padded), labels)."""
    with gzip.open(os.path.join(DATA_DIR, "%s-images-idx3-ubyte.gz" % split)) as f:
        x = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(os.path.join(DATA_DIR, "%s-labels-idx1-ubyte.gz" % split)) as f:
        y = np.frombuffer(f.read(), dtype=np.uint8, offset=8).astype(np.int64)
    x = np.pad(x.astype(np.float32) / 127.5 - 1.0, ((0, 0), (0, 0), (2, 2), (2, 2)),
               constant_values=-1.0)
    return x, y


def load_classifier(path=CLASSIFIER):
    return torch.jit.load(path).eval()


def features(net, images, batch=1000):
    """Penultimate-layer features [N, 128] (float64) of images in [-1, 1]."""
    out = []
    with torch.inference_mode():
        for i in range(0, len(images), batch):
            x = torch.from_numpy(np.ascontiguousarray(images[i:i + batch], np.float32))
            out.append(net.features(x.reshape(-1, 1, 32, 32)).double().numpy())
    return np.concatenate(out)


def accuracy(net, images, labels, batch=1000):
    with torch.inference_mode():
        pred = torch.cat([net(torch.from_numpy(images[i:i + batch])).argmax(1)
                          for i in range(0, len(images), batch)])
    return float((pred.numpy() == labels).mean())


def stats(feats):
    return feats.mean(0), np.cov(feats, rowvar=False)


def _sqrt_psd(a):
    """Square root of a symmetric PSD matrix by eigendecomposition (negative rounding noise in
    the eigenvalues clipped to 0)."""
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(s1, s2):
    """FD between Gaussians (mu, C). tr((C1 C2)^1/2) = tr((C1^1/2 C2 C1^1/2)^1/2): the product
    inside is symmetric PSD, so an eigendecomposition suffices (no scipy)."""
    (m1, c1), (m2, c2) = s1, s2
    r1 = _sqrt_psd(c1)
    covmean = np.trace(_sqrt_psd(r1 @ c2 @ r1))
    return float(np.sum((m1 - m2) ** 2) + np.trace(c1) + np.trace(c2) - 2 * covmean)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    torch.set_num_threads(1)
    net = load_classifier()
    ref = stats(features(net, load_fmnist("t10k")[0]))
    for path in sys.argv[1:]:
        x = np.load(path)
        print("%s: %d samples, FD to the test set %.3f"
              % (path, len(x), frechet_distance(stats(features(net, x)), ref)))


if __name__ == "__main__":
    main()
