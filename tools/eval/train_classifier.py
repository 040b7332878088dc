#!/usr/bin/python3
"""Train the small Fashion-MNIST CNN whose features tools/eval/fid.py measures distances in.

    /usr/bin/python3 tools/eval/train_classifier.py [--epochs 4] [--out tools/eval/fmnist_classifier.pt]

Input: 32x32 (28x28 padded with -1), values in [-1, 1], as the diffusion model's samples.
Three conv-BN-ReLU-maxpool stages (32, 64, 128 channels), global average pooling, a 128-unit
hidden layer (the features: `features(x)`) and a linear classifier. About 0.6 MB of weights,
a few minutes per epoch on one core. Reproducible: fixed seed, one thread, no augmentation.
Writes a TorchScript module (forward(x) -> logits, features(x) -> [N, 128]) and prints the
test accuracy.
"""
import argparse
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from fid import CLASSIFIER, accuracy, load_fmnist


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(a, b, 3, padding=1)
                                    for a, b in ((1, 32), (32, 64), (64, 128))])
        self.norms = nn.ModuleList([nn.BatchNorm2d(c) for c in (32, 64, 128)])
        self.hidden = nn.Linear(128, 128)
        self.out = nn.Linear(128, 10)

    @torch.jit.export
    def features(self, x):
        for conv, norm in zip(self.convs, self.norms):
            x = F.max_pool2d(F.relu(norm(conv(x))), 2)  # 32 -> 16 -> 8 -> 4
        return F.relu(self.hidden(x.mean((2, 3))))

    def forward(self, x):
        return self.out(self.features(x))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=CLASSIFIER)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)  # reproducible summation order
    xtr, ytr = load_fmnist("train")
    xte, yte = load_fmnist("t10k")
    xtr_t, ytr_t = torch.from_numpy(xtr), torch.from_numpy(ytr)
    net = Classifier()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    steps = args.epochs * (len(xtr) // args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    gen = torch.Generator().manual_seed(args.seed)
    t0 = time.time()
    for epoch in range(args.epochs):
        net.train()
        perm = torch.randperm(len(xtr), generator=gen)
        for k in range(len(xtr) // args.batch):
            idx = perm[k * args.batch:(k + 1) * args.batch]
            loss = F.cross_entropy(net(xtr_t[idx]), ytr_t[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        net.eval()
        print("epoch %d: loss %.3f, test accuracy %.4f (%.0f s)"
              % (epoch + 1, loss.item(), accuracy(net, xte, yte), time.time() - t0), flush=True)
    script = torch.jit.script(net.eval())
    script.save(args.out)
    print("wrote %s (%d bytes); test accuracy %.4f"
          % (args.out, os.path.getsize(args.out), accuracy(torch.jit.load(args.out), xte, yte)))


if __name__ == "__main__":
    main()
