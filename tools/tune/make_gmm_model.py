#!/usr/bin/python3
"""tools/tune/gmm_cosine.pt: the exact eps of tools/eval/search.py's make_gmm() (a 16-d mixture
of 12 narrow Gaussians) under the squaredcos_cap_v2 noise schedule, as a TorchScript model.

forward(x [B, 1, 4, 4] float32, t [B] float32) -> eps [B, 1, 4, 4] float32, with t = tau in
[0, 1] (deissn-calibrate --time tau). alpha_bar(tau) is libdeissn's own: its T + 1 knots at
tau = k / T (T = 1000), interpolated linearly in tau as lib/maths/schedule.c does, so the
model is the exact score of the mixture under the schedule the sampler integrates (computed
in float64, returned in float32).

    /usr/bin/python3 tools/tune/make_gmm_model.py [--out tools/tune/gmm_cosine.pt]
"""
import argparse
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tools", "eval"))
import search  # noqa: E402
from baselines import deissn  # noqa: E402

NOISE = "squaredcos_cap_v2"


class GMMEps(torch.nn.Module):
    def __init__(self, means, stds, logw, abar):
        super().__init__()
        self.register_buffer("means", means)   # [K, d] float64
        self.register_buffer("var0", stds ** 2)  # [K]
        self.register_buffer("logw", logw)     # [K]
        self.register_buffer("abar", abar)     # [T + 1], knot k at tau = k / T
        self.T = int(abar.shape[0]) - 1

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        xf = x.reshape(shape[0], -1).to(torch.float64)
        tau = t.to(torch.float64).reshape(-1).expand(shape[0]).clamp(0.0, 1.0)
        pos = tau * self.T
        k = torch.floor(pos).clamp(0, self.T - 1).to(torch.long)
        frac = pos - k.to(torch.float64)
        a0 = self.abar[k]
        a1 = self.abar[k + 1]
        ab = a0 + (a1 - a0) * frac
        ab = torch.where(frac >= 1.0, a1, ab)
        alpha = ab.sqrt()[:, None]                              # [B, 1]
        sigma = (1.0 - ab).clamp_min(0.0).sqrt()[:, None]
        var = alpha ** 2 * self.var0[None, :] + sigma ** 2      # [B, K]
        diff = xf[:, None, :] - alpha[:, :, None] * self.means[None, :, :]  # [B, K, d]
        d = xf.shape[1]
        logp = self.logw[None, :] - 0.5 * (diff ** 2).sum(-1) / var - 0.5 * d * torch.log(var)
        post = torch.softmax(logp, dim=1)
        e = sigma * (post[:, :, None] * diff / var[:, :, None]).sum(1)
        return e.to(x.dtype).reshape(shape)


def build():
    g = search.make_gmm()
    sch = deissn.Schedule(noise=NOISE, steps=1)
    T = sch.num_train_steps
    abar = torch.tensor(np.asarray(sch.alpha_bar(np.arange(T + 1) / T), np.float64))
    return GMMEps(g.means, g.stds, g.logw, abar)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(HERE, "gmm_cosine.pt"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    m = torch.jit.script(build().eval())
    # check against the mixture's own eps (baselines.GaussianMixture) at a few times
    vp = search.B.VP(noise=NOISE)
    gm = search.make_gmm()
    x = torch.from_numpy(deissn.noise(1, 8, (1, 4, 4)))
    for tau in (1.0, 0.5, 0.1, 0.01, 1e-3):
        a, s = vp.alpha_sigma(tau)
        want = gm.eps(x.to(torch.float64), a, s)
        got = m(x, torch.full((8,), tau))
        err = float((got.to(torch.float64) - want).abs().max())
        assert err < 1e-5, (tau, err)
    m.save(args.out)
    print("wrote %s" % args.out)


if __name__ == "__main__":
    main()
