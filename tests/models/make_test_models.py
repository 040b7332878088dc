#!/usr/bin/python3
"""Write the small TorchScript models used by tests/test_torch.c into tests/models/.

Run from anywhere (Debian's python3 has torch 1.13; the first python3 on PATH may not):

    /usr/bin/python3 tests/models/make_test_models.py [out_dir]

out_dir defaults to the directory of this script. Every model takes forward(x, t) with x of
shape [B, ...] and t of shape [B] in the model-time convention t = tau*T - 1 (T = 1000).

Good models (the analytic eps of data ~ N(0, s^2 I), s = 0.5, under the linear DDPM schedule;
tests compare them with the same function computed in C):
  gaussian_eps.pt  eps = sigma x / (abar s^2 + sigma^2), sigma^2 = 1 - abar
  gaussian_x0.pt   the same model as a sample (x0) prediction: x0 = (x - sigma eps) / alpha
  gaussian_v.pt    the same model as a v prediction: v = alpha eps - sigma x0
                   (= (eps - sigma x) / alpha, so that eps = sigma x + alpha v)
alpha_bar(tau) interpolates linearly through the knots (k/T, abar_k), abar_0 = 1, where abar_k is
the float32 cumulative product of 1 - linspace(1e-4, 0.02, 1000) (float32), as the reference does.
The arithmetic is float64; the output is float32.

Bad models (each must be rejected with a precise status):
  no_forward.pt    a script module whose only method is `predict`
  wrong_arity.pt   forward(x)
  wrong_shape.pt   returns x flattened to [B, numel/B]
  wrong_dtype.pt   returns an int64 tensor of x's shape
  returns_nan.pt   returns NaN once t < 500 (finite before)
  not_a_model.pt   a torch.save'd tensor: a valid zip archive, but not TorchScript
  huge_output.pt   returns 3.4e38 everywhere: finite, but the state overflows float32
  float64_huge.pt  returns 1e300 in float64: finite there, not in float32
  needs_cond.pt    forward(x, t, c) with c required: libdeissn passes only (x, t)

Models that misbehave in ways the sampler must survive (samples equal gaussian_eps.pt's):
  edits_input.pt   gaussian_eps.pt that then zeroes its input in place (x.mul_(0))
  default_arg.pt   gaussian_eps.pt with a third argument that has a default, forward(x, t, c=1)
"""
import os
import sys

import torch
from torch import Tensor

T = 1000
S = 0.5  # data std; written as s^2 = 0.25 in forward (TorchScript cannot close over globals)


def abar_knots() -> Tensor:
    betas = torch.linspace(1e-4, 0.02, T, dtype=torch.float32)
    abar = torch.cumprod(1.0 - betas, dim=0)
    return torch.cat([torch.ones(1, dtype=torch.float32), abar]).double()


def interp_abar(knots: Tensor, t: Tensor) -> Tensor:
    """alpha_bar at model time t: tau = (t + 1)/1000, linear between the knots k/1000."""
    tau = (t.to(torch.float64) + 1.0) / 1000.0
    pos = (tau * 1000.0).clamp(0.0, 1000.0)
    k = pos.floor().clamp(max=999.0)
    frac = pos - k
    ki = k.long()
    return knots[ki] * (1.0 - frac) + knots[ki + 1] * frac


class Gaussian(torch.nn.Module):
    """Analytic prediction; `kind` 0 = eps, 1 = x0, 2 = v."""

    def __init__(self, kind: int):
        super().__init__()
        self.kind = kind
        self.register_buffer("knots", abar_knots())

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        # Keep the knots in float64 even if the caller converted the module (they are
        # float32 values, so a float32 buffer loses nothing).
        knots = self.knots.to(torch.float64)
        abar = interp_abar(knots, t)
        shape = [x.shape[0]] + [1] * (x.dim() - 1)
        abar = abar.reshape(shape)
        sigma2 = 1.0 - abar
        sigma = sigma2.sqrt()
        alpha = abar.sqrt()
        xd = x.to(torch.float64)
        eps = sigma * xd / (abar * 0.25 + sigma2)  # s^2 = 0.25
        if self.kind == 1:
            out = (xd - sigma * eps) / alpha
        elif self.kind == 2:
            out = (eps - sigma * xd) / alpha
        else:
            out = eps
        return out.to(torch.float32)


class NoForward(torch.nn.Module):
    @torch.jit.export
    def predict(self, x: Tensor, t: Tensor) -> Tensor:
        return x


class WrongArity(torch.nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x


class WrongShape(torch.nn.Module):
    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        return x.reshape(x.shape[0], -1)


class WrongDtype(torch.nn.Module):
    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        return x.to(torch.int64)


class ReturnsNan(torch.nn.Module):
    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        if bool((t < 500.0).any()):
            return x * float("nan")
        return 0.5 * x


class HugeOutput(torch.nn.Module):
    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        return torch.full_like(x, 3.4e38)


class Float64Huge(torch.nn.Module):
    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        return torch.full_like(x, 1e300, dtype=torch.float64)


class NeedsCond(torch.nn.Module):
    def forward(self, x: Tensor, t: Tensor, c: Tensor) -> Tensor:
        return x * c


class EditsInput(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = Gaussian(0)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        out = self.inner(x, t)
        x.mul_(0.0)
        t.mul_(0.0)
        return out


class DefaultArg(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = Gaussian(0)

    def forward(self, x: Tensor, t: Tensor, scale: float = 1.0) -> Tensor:
        return self.inner(x, t) * scale


def main() -> None:
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    os.makedirs(out_dir, exist_ok=True)
    modules = {
        "gaussian_eps.pt": Gaussian(0),
        "gaussian_x0.pt": Gaussian(1),
        "gaussian_v.pt": Gaussian(2),
        "no_forward.pt": NoForward(),
        "wrong_arity.pt": WrongArity(),
        "wrong_shape.pt": WrongShape(),
        "wrong_dtype.pt": WrongDtype(),
        "returns_nan.pt": ReturnsNan(),
        "huge_output.pt": HugeOutput(),
        "float64_huge.pt": Float64Huge(),
        "needs_cond.pt": NeedsCond(),
        "edits_input.pt": EditsInput(),
        "default_arg.pt": DefaultArg(),
    }
    for name, module in modules.items():
        path = os.path.join(out_dir, name)
        torch.jit.save(torch.jit.script(module.eval()), path)
        print(f"wrote {path} ({os.path.getsize(path)} bytes)")
    path = os.path.join(out_dir, "not_a_model.pt")
    torch.save(torch.arange(16, dtype=torch.float32), path)
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")

    # Self-check: the three parametrisations describe the same eps.
    m = {k: torch.jit.load(os.path.join(out_dir, f"gaussian_{k}.pt")) for k in ("eps", "x0", "v")}
    torch.manual_seed(0)
    x = torch.randn(3, 1, 4, 4)
    t = torch.tensor([999.0, 692.889, 0.0])
    abar = torch.jit.script(interp_abar)(abar_knots(), t).reshape(3, 1, 1, 1)
    alpha, sigma = abar.sqrt(), (1.0 - abar).sqrt()
    eps = m["eps"](x, t).double()
    eps_x0 = (x.double() - alpha * m["x0"](x, t).double()) / sigma
    eps_v = sigma * x.double() + alpha * m["v"](x, t).double()
    assert (eps - eps_x0).abs().max() < 1e-5, (eps - eps_x0).abs().max()
    assert (eps - eps_v).abs().max() < 1e-5, (eps - eps_v).abs().max()


if __name__ == "__main__":
    main()
