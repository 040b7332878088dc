#!/usr/bin/python3
"""Train the tiny Fashion-MNIST diffusion model embedded in libdeissn.

What it does
  1. Trains a small epsilon-prediction UNet on Fashion-MNIST (28x28 padded to
     32x32, values in [-1, 1]) with the DDPM linear schedule (T = 1000,
     betas = linspace(1e-4, 0.02)), AdamW + warmup/cosine LR and an EMA of
     the weights.  The network takes the integer DDPM step k = 0..999 as a
     float time t (t = tau*T - 1 in libdeissn's convention; any real t in
     [-1, 999] is accepted).
  2. Exports the EMA weights with torch.jit.script to <out>/<name>.pt
     and checks that the reloaded module gives identical output.
  3. Calibrates the DEIS-SN normalization table: a 1000-step deterministic
     DDIM run (eta = 0, tau = 1.000, 0.999, ..., 0.001 -> 0) over
     --calib-samples samples, recording the mean |eps| at every step.  Saved
     as <out>/<name>_table.pt ({'score_abs', 'Ls'}, the reference
     implementation's format, sampling order: entry 0 is tau = 1) and as
     <out>/<name>_table.csv with the raw float64 sums.
  4. Writes an 8x8 grid of the first 64 DDIM samples to
     <out>/<name>_ddim1000.png.

Cost: ~48 MFLOP per sample and forward.  On 2 shared CPU cores training took
16 min (2000 iterations, ~2 it/s single-threaded) and the calibration
(10^6 sample-forwards) 10-30 min depending on load.  The committed files in
models/ were produced with

    /usr/bin/python3 tools/train_tiny_model.py --out-dir models --seed 0 \
        --iters 2000 --threads 1

(--threads 1 trains faster than 2 threads on a machine shared with other
jobs; the calibration always uses --calib-workers single-threaded processes.)

Requires torch (CPU is enough), numpy and PIL; no torchvision.
"""
import argparse
import copy
import csv
import gzip
import math
import multiprocessing as mp
import os
import time
from functools import partial
from typing import Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

DATA_DIR = "/usr/share/datasets/fashion-mnist"
T = 1000


# ----------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------

def norm(ch: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, ch // 4), ch)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv x2 with the time embedding added in between."""

    def __init__(self, ch: int, temb: int):
        super().__init__()
        self.norm1 = norm(ch)
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.emb = nn.Linear(temb, ch)
        self.norm2 = norm(ch)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(emb)[:, :, None, None]
        return x + self.conv2(F.silu(self.norm2(h)))


class Attention(nn.Module):
    """Single-head self-attention, used at the lowest resolution only."""

    def __init__(self, ch: int):
        super().__init__()
        self.norm = norm(ch)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.proj = nn.Conv2d(ch, ch, 1)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c, h * w).unbind(1)
        a = torch.softmax(q.transpose(1, 2) @ k / math.sqrt(c), dim=-1)
        out = (v @ a.transpose(1, 2)).reshape(b, c, h, w)
        return x + self.proj(out)


class UNet(nn.Module):
    """Small epsilon-prediction UNet: forward(x [B,1,32,32], t [B] or []) -> eps.

    chs[i] is the width at resolution 32 / 2**i.  The full-resolution level
    only has the input/output convs; every lower level has one residual block
    on the way down and one on the way up, joined by an additive skip.  The
    lowest level adds self-attention and a middle residual block.
    """

    def __init__(self, chs=(16, 32, 48, 64), temb: int = 128):
        super().__init__()
        self.base = chs[0]
        self.temb_mlp = nn.Sequential(
            nn.Linear(chs[0], temb), nn.SiLU(), nn.Linear(temb, temb))
        self.conv_in = nn.Conv2d(1, chs[0], 3, padding=1)
        self.downsample = nn.ModuleList(
            [nn.Conv2d(a, b, 3, stride=2, padding=1) for a, b in zip(chs[:-1], chs[1:])])
        self.down = nn.ModuleList([ResBlock(c, temb) for c in chs[1:]])
        self.mid_attn = Attention(chs[-1])
        self.mid = ResBlock(chs[-1], temb)
        self.up = nn.ModuleList([ResBlock(c, temb) for c in chs[:0:-1]])
        self.upsample = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(b, a, 3, padding=1), nn.Upsample(scale_factor=2.0))
             for a, b in zip(chs[-2::-1], chs[:0:-1])])
        self.norm_out = norm(chs[0])
        self.conv_out = nn.Conv2d(chs[0], 1, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def time_embedding(self, t: Tensor) -> Tensor:
        half = self.base // 2
        freqs = torch.exp(-math.log(10000.0) / half *
                          torch.arange(half, dtype=torch.float32, device=t.device))
        arg = t.float()[:, None] * freqs[None, :]
        return self.temb_mlp(torch.cat([torch.sin(arg), torch.cos(arg)], dim=1))

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        if t.dim() == 0:
            t = t.expand(x.shape[0])
        emb = self.time_embedding(t)
        h = self.conv_in(x)
        skips = [h]
        for down, block in zip(self.downsample, self.down):
            h = block(down(h), emb)
            skips.append(h)
        h = self.mid(self.mid_attn(h), emb)
        for block, up in zip(self.up, self.upsample):
            h = up(block(h + skips.pop(), emb))
        return self.conv_out(F.silu(self.norm_out(h + skips.pop())))


def count_flops(model: nn.Module) -> float:
    """Multiply-accumulates x 2 of convs/linears/attention for one sample."""
    flops = [0.0]

    def hook(mod, inp, out):
        if isinstance(mod, nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
            flops[0] += 2.0 * k * out.numel()
        elif isinstance(mod, nn.Linear):
            flops[0] += 2.0 * mod.in_features * out.numel()
        elif isinstance(mod, Attention):
            _, c, h, w = inp[0].shape
            flops[0] += 2.0 * 2 * c * (h * w) ** 2

    hs = [m.register_forward_hook(hook) for m in model.modules()]
    with torch.no_grad():
        model(torch.zeros(1, 1, 32, 32), torch.zeros(1))
    for h in hs:
        h.remove()
    return flops[0]


# ----------------------------------------------------------------------------
# Data and schedule
# ----------------------------------------------------------------------------

def load_fmnist(split: str = "train") -> Tensor:
    """Fashion-MNIST images as float32 [N, 1, 32, 32] in [-1, 1], background -1."""
    with gzip.open(os.path.join(DATA_DIR, f"{split}-images-idx3-ubyte.gz")) as f:
        raw = np.frombuffer(f.read(), dtype=np.uint8, offset=16)
    x = raw.reshape(-1, 1, 28, 28).astype(np.float32) / 127.5 - 1.0
    x = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)), constant_values=-1.0)
    return torch.from_numpy(x)


def schedule() -> Tensor:
    betas = torch.linspace(1e-4, 0.02, T, dtype=torch.float32)
    return torch.cumprod(1 - betas, 0)


# ----------------------------------------------------------------------------
# Training and export
# ----------------------------------------------------------------------------

def train(args, model: UNet) -> UNet:
    data = load_fmnist("train")
    abar = schedule()
    gen = torch.Generator().manual_seed(args.seed)
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    warmup = min(200, args.iters // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: min(1.0, (i + 1) / warmup)
                                              * 0.5 * (1 + math.cos(math.pi * i / args.iters)))
    perm, pos, run_loss, t0 = torch.randperm(len(data), generator=gen), 0, 0.0, time.time()
    for it in range(args.iters):
        if pos + args.batch > len(data):
            perm, pos = torch.randperm(len(data), generator=gen), 0
        x0 = data[perm[pos:pos + args.batch]]
        pos += args.batch
        k = torch.randint(0, T, (x0.shape[0],), generator=gen)
        eps = torch.randn(x0.shape, generator=gen)
        a = abar[k].view(-1, 1, 1, 1)
        xk = a.sqrt() * x0 + (1 - a).sqrt() * eps
        loss = F.mse_loss(model(xk, k.float()), eps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        decay = min(args.ema, (1 + it) / (10 + it))
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.lerp_(pm, 1 - decay)
        run_loss += loss.item()
        if (it + 1) % args.log_every == 0 or it + 1 == args.iters:
            el = time.time() - t0
            print(f"it {it + 1:6d}/{args.iters}  loss {run_loss / args.log_every:.4f}  "
                  f"lr {sched.get_last_lr()[0]:.2e}  {(it + 1) / el:.2f} it/s  {el / 60:.1f} min",
                  flush=True)
            run_loss = 0.0
    print(f"training done in {(time.time() - t0) / 60:.1f} min", flush=True)
    return ema


def export(ema: UNet, path: str) -> torch.jit.ScriptModule:
    scripted = torch.jit.script(ema.eval())
    torch.jit.save(scripted, path)
    loaded = torch.jit.load(path)
    x = torch.randn(7, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([0.0, 1.5, 100.0, 500.25, 692.889, 998.0, 999.0])
    with torch.inference_mode():
        ref, out = ema(x, t), loaded(x, t)
        assert torch.equal(ref, out), "reloaded TorchScript module differs"
        assert torch.equal(loaded(x[:1], torch.tensor(-1.0)), ema(x[:1], torch.tensor([-1.0])))
        for b in (1, 256):
            assert loaded(torch.randn(b, 1, 32, 32), torch.full((b,), 10.0)).shape == (b, 1, 32, 32)
    print(f"exported {path} ({os.path.getsize(path) / 1e6:.2f} MB), reload check OK", flush=True)
    return loaded


def bench(model, threads: int) -> float:
    x, t = torch.randn(64, 1, 32, 32), torch.full((64,), 500.0)
    with torch.inference_mode():
        for _ in range(3):
            model(x, t)
        t0 = time.time()
        for _ in range(10):
            model(x, t)
    dt = (time.time() - t0) / 10
    print(f"forward batch 64: {dt * 1e3:.1f} ms ({threads} threads); "
          f"64 samples x 10 evals: {dt * 10:.2f} s", flush=True)
    return dt


# ----------------------------------------------------------------------------
# DEIS-SN normalization table (1000-step DDIM)
# ----------------------------------------------------------------------------

def ddim_batch(path: str, x: Tensor) -> Tuple[Tensor, Tensor]:
    """1000-step DDIM (eta = 0) from noise x; returns per-step sum |eps| and x at tau = 0."""
    torch.set_num_threads(1)
    model = torch.jit.load(path).eval()
    knots = torch.cat([torch.ones(1, dtype=torch.float64), schedule().double()])
    sums = torch.zeros(T, dtype=torch.float64)
    with torch.inference_mode():
        for step, j in enumerate(range(T, 0, -1)):  # tau = j/1000 -> (j-1)/1000
            eps = model(x, torch.full((x.shape[0],), float(j - 1))).double()
            sums[step] = eps.abs().sum()
            a, a_next = knots[j], knots[j - 1]  # abar(j/1000) = alphas_cumprod[j-1]
            x0 = (x.double() - (1 - a).sqrt() * eps) / a.sqrt()
            x = (a_next.sqrt() * x0 + (1 - a_next).sqrt() * eps).float()
    return sums, x


def calibrate(args, path: str) -> Tensor:
    """DEIS-SN table: mean |eps| at each step of a 1000-step DDIM run.

    Batches run in --calib-workers single-threaded processes (robust on a
    shared machine); the result does not depend on the worker count.
    """
    noise = torch.randn(args.calib_samples, 1, 32, 32,
                        generator=torch.Generator().manual_seed(args.seed + 1))
    batches = list(noise.split(args.calib_batch))
    t0 = time.time()
    with mp.get_context("spawn").Pool(args.calib_workers) as pool:
        results = []
        for i, res in enumerate(pool.imap(partial(ddim_batch, path), batches)):
            results.append(res)
            print(f"calibration batch {i + 1}/{len(batches)} done, "
                  f"{(time.time() - t0) / 60:.1f} min", flush=True)
    sums = torch.stack([s for s, _ in results]).sum(0)
    first = results[0][1][:64]
    count = noise.numel()
    r = sums / count
    torch.save({"score_abs": r.float(), "Ls": torch.ones(T, dtype=torch.float32)},
               os.path.join(args.out_dir, args.name + "_table.pt"))
    with open(os.path.join(args.out_dir, args.name + "_table.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "tau", "model_t", "sum_abs_eps", "count", "mean_abs_eps"])
        for step in range(T):
            j = T - step
            w.writerow([step, repr(j / T), j - 1, repr(sums[step].item()), count,
                        repr(r[step].item())])
    save_grid(first, os.path.join(args.out_dir, args.name + "_ddim1000.png"))
    for tau in (1.0, 0.5, 0.1, 0.01, 0.001):
        print(f"r(tau={tau}) = {r[T - round(tau * T)].item():.6f}")
    print(f"r min {r.min().item():.6f}  max {r.max().item():.6f}", flush=True)
    return r


def save_grid(x: Tensor, path: str, nrow: int = 8, pad: int = 2) -> None:
    from PIL import Image
    img = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()[:, 0]
    h, w = img.shape[1:]
    rows = math.ceil(len(img) / nrow)
    grid = np.zeros((rows * (h + pad) + pad, nrow * (w + pad) + pad), dtype=np.uint8)
    for i, im in enumerate(img):
        r, c = divmod(i, nrow)
        grid[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = im
    Image.fromarray(grid, mode="L").save(path)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out-dir", default="models")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--iters", type=int, default=2000)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--calib-samples", type=int, default=1000)
    p.add_argument("--calib-batch", type=int, default=250)
    p.add_argument("--calib-workers", type=int, default=2)
    p.add_argument("--skip-train", action="store_true",
                   help="reuse <out-dir>/<name>.pt and only redo the table")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--log-every", type=int, default=100)
    p.add_argument("--widths", default="16,32,48,64",
                   help="channels per resolution 32,16,8,4 (comma-separated)")
    p.add_argument("--name", default="fmnist_unet",
                   help="file stem of the outputs in --out-dir")
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    os.makedirs(args.out_dir, exist_ok=True)
    path = os.path.join(args.out_dir, args.name + ".pt")

    if args.skip_train:
        model = torch.jit.load(path).eval()
    else:
        net = UNet(chs=tuple(int(c) for c in args.widths.split(",")))
        print(f"UNet: {sum(p.numel() for p in net.parameters())} params, "
              f"{count_flops(net) / 1e6:.1f} MFLOP/sample", flush=True)
        model = export(train(args, net), path)
    bench(model, args.threads)
    if args.calib_samples > 0:
        calibrate(args, path)


if __name__ == "__main__":
    main()
