"""Baseline samplers for the evaluation tooling (not part of libdeissn's ABI).

DPM-Solver++ multistep (Lu et al. 2022, arXiv 2211.01095, Algorithm 2 and its third-order
extension) and UniPC (Zhao et al. 2023, arXiv 2302.04867: UniP-p predictor with the UniC
corrector, B(h) variant "bh2"), both in data prediction, written from the papers' update
formulas. They drive an eps-prediction model ``eps_fn(x, tau)`` (tau in [0, 1]; wrap a
TorchScript model with :func:`torchscript_eps_fn`, which calls it at the model time
t = tau*T - 1) on the noise schedule of a :class:`deissn.Schedule`, so alpha, sigma and the
model-time convention are exactly libdeissn's (alpha_bar piecewise linear in tau through the
knots (k/T, alpha_bar_k), alpha_bar(0) = 1, for the discrete schedules).

Time grids: every sampler takes a strictly decreasing grid ``taus = [tau_N, ..., tau_1,
tau_end]`` (N model evaluations, the last point is where sampling stops; tau_end is 0 or a
small positive time such as 1e-3 = 1/T, the authors' default end time for discrete models).
lambda = log(alpha/sigma) is +inf at tau = 0, so a step that ends at tau = 0 has h = inf:
the data-prediction update of order 1 then gives exactly x = x0_pred (alpha(0) = 1,
sigma(0)/sigma_s = 0), while the higher-order corrections divide by h/h_prev and are
undefined. Both samplers therefore take that final step with order 1 (which is what the
authors' code does with lower_order_final), whatever `lower_order_final` says; a grid ending at
a small tau_end > 0 keeps its order, and :func:`final_denoise` (one more model evaluation)
can then map x(tau_end) to the x0 prediction.

All arithmetic on the state is in float64 (torch); the model sees float32.
"""
import math
import os
import sys

import numpy as np
import torch

_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO = os.path.dirname(os.path.dirname(_HERE))
if os.path.join(_REPO, "bindings", "python") not in sys.path:
    sys.path.insert(0, os.path.join(_REPO, "bindings", "python"))
import deissn  # noqa: E402


class VP:
    """alpha, sigma, lambda of a deissn.Schedule's noise schedule (any sampling times).

    ``VP(deissn.Schedule(noise="linear"))`` or ``VP(noise="continuous_vp")``.
    """

    def __init__(self, schedule=None, **schedule_kwargs):
        if schedule is None:
            schedule_kwargs.setdefault("steps", 1)
            schedule = deissn.Schedule(**schedule_kwargs)
        self.schedule = schedule
        self.T = schedule.num_train_steps
        # a dense table of alpha_bar for tau_of_lambda (exact at the knots of discrete
        # schedules, where alpha_bar is piecewise linear in tau)
        grid = np.linspace(0.0, 1.0, 16 * self.T + 1)
        self._grid = grid
        self._abar_grid = schedule.alpha_bar(grid)

    def abar(self, tau):
        return self.schedule.alpha_bar(tau)

    def alpha_sigma(self, tau):
        """(alpha, sigma) as Python floats; sigma = sqrt(1 - alpha_bar)."""
        ab = float(self.schedule.alpha_bar(float(tau)))
        return math.sqrt(ab), math.sqrt(max(1.0 - ab, 0.0))

    def lam(self, tau):
        """lambda = log(alpha/sigma); +inf at tau = 0."""
        a, s = self.alpha_sigma(tau)
        return math.inf if s == 0 else math.log(a) - math.log(s)

    def tau_of_lambda(self, lam):
        """Inverse of lambda (linear interpolation of alpha_bar between dense grid points)."""
        lam = np.asarray(lam, dtype=np.float64)
        target = 1.0 / (1.0 + np.exp(-2.0 * lam))  # alpha_bar with log(alpha/sigma) = lam
        return np.interp(-target, -self._abar_grid, self._grid)

    def model_t(self, tau):
        return tau * self.T - 1.0


# ---- time grids (N + 1 points, decreasing, ending at tau_end) ----------------------------

def grid_time_uniform(vp, n, tau_end):
    """DPM-Solver's "time_uniform": uniform in tau from 1 to tau_end."""
    return np.linspace(1.0, tau_end, n + 1)


def grid_time_quadratic(vp, n, tau_end):
    """DPM-Solver's "time_quadratic": uniform in sqrt(tau) from 1 to tau_end."""
    return np.linspace(1.0, math.sqrt(tau_end), n + 1) ** 2


def grid_logsnr(vp, n, tau_end, tau_min_eval=None):
    """DPM-Solver's "logSNR": uniform in lambda from tau = 1 to tau_end. With tau_end = 0
    (lambda = inf) the N evaluation times are uniform in lambda from 1 to tau_min_eval
    (default 1/T, libdeissn's logsnr spacing) and the grid ends at 0."""
    if tau_end > 0:
        lams = np.linspace(vp.lam(1.0), vp.lam(tau_end), n + 1)
        g = vp.tau_of_lambda(lams)
        g[0], g[-1] = 1.0, tau_end
        return g
    tmin = tau_min_eval or 1.0 / vp.T
    lams = np.linspace(vp.lam(1.0), vp.lam(tmin), n)
    g = vp.tau_of_lambda(lams)
    g[0], g[-1] = 1.0, tmin
    return np.append(g, 0.0)


def grid_from_schedule(schedule):
    """The grid of a deissn.Schedule (its spacing and tau_end)."""
    return np.asarray(schedule.taus, dtype=np.float64)


# ---- models -----------------------------------------------------------------------------

def torchscript_eps_fn(model, T=1000):
    """eps_fn(x, tau) for a TorchScript eps model whose forward(x, t) takes model time
    t = tau*T - 1 of shape [B]. x may be float64; the model sees float32."""
    def f(x, tau):
        t = torch.full((x.shape[0],), tau * T - 1.0, dtype=torch.float32)
        with torch.inference_mode():
            return model(x.to(torch.float32), t).to(torch.float64)
    return f


def _x0(vp, eps_fn, x, tau):
    a, s = vp.alpha_sigma(tau)
    return (x - s * eps_fn(x, tau)) / a


def final_denoise(vp, eps_fn, x, tau_end):
    """One more model evaluation: the x0 prediction (x - sigma eps) / alpha at tau_end."""
    return _x0(vp, eps_fn, x, tau_end)


def _check_grid(taus):
    taus = [float(t) for t in taus]
    if len(taus) < 2 or any(not (a > b) for a, b in zip(taus, taus[1:])) or taus[-1] < 0 \
            or taus[0] > 1:
        raise ValueError("taus must be strictly decreasing in [0, 1] with at least 2 points")
    return taus


def _step_orders(n, order, lower_order_final, taus):
    """The order of each of the n steps: warm-up (step i uses at most i + 1), lower order at
    the final steps (the k-th step from the end at most k, as the authors' code), and order 1
    for a final step to tau = 0 (h = inf)."""
    orders = []
    for i in range(n):
        p = min(order, i + 1)
        if lower_order_final:
            p = min(p, n - i)
        orders.append(p)
    if taus[-1] == 0.0:
        orders[-1] = 1
    return orders


# ---- DPM-Solver++ (multistep, data prediction) -----------------------------------------

def dpm_solver_pp(eps_fn, x, taus, vp, order=2, lower_order_final=True, third="taylor",
                  callback=None):
    """DPM-Solver++(order)M from x at taus[0] to taus[-1]; len(taus) - 1 model evaluations.

    With s the previous and t the next time, h = lambda_t - lambda_s, phi_1 = expm1(-h),
    D the data predictions x0 at the previous times (newest first), r_k = h_k / h:
      order 1: x_t = sigma_t/sigma_s x_s - alpha_t phi_1 D_0                      (DDIM)
      order 2: ... - alpha_t phi_1 / 2 * (D_0 - D_1) / r_0                   (Algorithm 2)
      order 3: x_t = sigma_t/sigma_s x_s - alpha_t phi_1 D_0 + alpha_t phi_2 D1 - k alpha_t phi_3 D2
               phi_2 = phi_1/h + 1, phi_3 = phi_2/h - 1/2, D1 = D1_0 + r_0/(r_0+r_1) (D1_0 - D1_1),
               D2 = (D1_0 - D1_1)/(r_0 + r_1), D1_k = (D_k - D_{k+1}) / r_k.
    D1 estimates h x0'(lambda_s) and D2 estimates h^2 x0''(lambda_s) / 2; the exact integral of
    the Taylor term, alpha_t int_0^h e^{u-h} u^2/2 du x0'' = -alpha_t h^2 phi_3 x0'', needs
    k = 2 (third="taylor", the default: third order, measured slope 3-4 on the Gaussian model).
    The authors' published code (dpm_solver_pytorch.py, and diffusers) uses k = 1
    (third="official"): its global error falls only like h^2 (tools/eval/test_baselines.py).
    """
    taus = _check_grid(taus)
    if order not in (1, 2, 3):
        raise ValueError("order must be 1, 2 or 3")
    if third not in ("taylor", "official"):
        raise ValueError("third must be 'taylor' or 'official'")
    n = len(taus) - 1
    orders = _step_orders(n, order, lower_order_final, taus)
    x = x.to(torch.float64)
    lams = [vp.lam(t) for t in taus]
    hist = []  # (lambda, x0) newest last
    for i in range(n):
        s, t = taus[i], taus[i + 1]
        a_s, sig_s = vp.alpha_sigma(s)
        a_t, sig_t = vp.alpha_sigma(t)
        m0 = (x - sig_s * eps_fn(x, s)) / a_s
        hist.append((lams[i], m0))
        hist = hist[-3:]
        p = orders[i]
        h = lams[i + 1] - lams[i]
        phi_1 = math.expm1(-h)  # -1 at h = inf
        ratio = sig_t / sig_s
        x_new = ratio * x - a_t * phi_1 * m0
        if p >= 2:
            h0 = lams[i] - hist[-2][0]
            r0 = h0 / h
            D1_0 = (m0 - hist[-2][1]) / r0
            if p == 2:
                x_new = x_new - 0.5 * a_t * phi_1 * D1_0
            else:
                h1 = hist[-2][0] - hist[-3][0]
                r1 = h1 / h
                D1_1 = (hist[-2][1] - hist[-3][1]) / r1
                D1 = D1_0 + (r0 / (r0 + r1)) * (D1_0 - D1_1)
                D2 = (D1_0 - D1_1) / (r0 + r1)
                phi_2 = phi_1 / h + 1.0
                phi_3 = phi_2 / h - 0.5
                k = 2.0 if third == "taylor" else 1.0
                x_new = x_new + a_t * phi_2 * D1 - k * a_t * phi_3 * D2
        x = x_new
        if callback:
            callback(i, x)
    return x


def ddim(eps_fn, x, taus, vp):
    """DDIM = DPM-Solver++ of order 1 (and DPM-Solver-1)."""
    return dpm_solver_pp(eps_fn, x, taus, vp, order=1)


# ---- UniPC (bh2, data prediction, UniC corrector) ---------------------------------------

def _unipc_coeffs(rks, hh, order, variant):
    """R (order x order) and b of UniPC: R[i-1, k] = r_k^(i-1), b_i = (i-1)! h phi_{i+1}(h) / B(h)
    with hh = -h (data prediction)."""
    h_phi_1 = math.expm1(hh)
    if variant == "bh1":
        B_h = hh
    elif variant == "bh2":
        B_h = math.expm1(hh)
    else:
        raise ValueError("variant must be bh1 or bh2")
    h_phi_k = h_phi_1 / hh - 1.0
    fact = 1
    R, b = [], []
    for i in range(1, order + 1):
        R.append([rk ** (i - 1) for rk in rks])
        b.append(h_phi_k * fact / B_h)
        fact *= i + 1
        h_phi_k = h_phi_k / hh - 1.0 / fact
    return np.array(R, dtype=np.float64), np.array(b, dtype=np.float64), h_phi_1, B_h


def unipc(eps_fn, x, taus, vp, order=3, variant="bh2", lower_order_final=True,
          use_corrector=True, callback=None):
    """UniPC-p with the UniC corrector (data prediction), from x at taus[0] to taus[-1];
    len(taus) - 1 model evaluations.

    Step from s to t of order p, h = lambda_t - lambda_s, with the previous data predictions
    m_k at lambda_k (r_k = (lambda_k - lambda_s)/h < 0, D_k = (m_k - m_s)/r_k, k = 1..p-1):
      predictor (UniP-p): x_t = sigma_t/sigma_s x_s - alpha_t (e^{-h} - 1) m_s
                                - alpha_t B(h) sum_k a_k D_k,
        with a solving R_{p-1} a = b_{p-1} (a = 1/2 for p = 2);
      corrector (UniC-p): evaluate m_t = model(x_t) once; with r_p = 1, D_p = m_t - m_s,
        x_t^c = sigma_t/sigma_s x_s - alpha_t (e^{-h} - 1) m_s - alpha_t B(h) sum_{k=1..p} c_k D_k,
        c solving R_p c = b_p (c = 1/2 for p = 1);
      R_p[i, k] = r_k^i, b_i = i! h phi_{i+1}(h) / B(h) (i = 1..p), B(h) = e^{-h} - 1 (bh2).
    m_t (the model at the uncorrected x_t) is reused as the history of the next step, so the
    corrector costs no evaluation; the final step has no corrector.
    """
    taus = _check_grid(taus)
    if order not in (1, 2, 3):
        raise ValueError("order must be 1, 2 or 3")
    if variant not in ("bh1", "bh2"):
        raise ValueError("variant must be bh1 or bh2")
    n = len(taus) - 1
    orders = _step_orders(n, order, lower_order_final, taus)
    x = x.to(torch.float64)
    lams = [vp.lam(t) for t in taus]
    a0, s0 = vp.alpha_sigma(taus[0])
    hist = [(lams[0], (x - s0 * eps_fn(x, taus[0])) / a0)]  # (lambda, x0), newest last
    for i in range(n):
        s, t = taus[i], taus[i + 1]
        _, sig_s = vp.alpha_sigma(s)
        a_t, sig_t = vp.alpha_sigma(t)
        p = orders[i]
        lam_s, m_s = hist[-1]
        h = lams[i + 1] - lam_s
        hh = -h
        rks, D1s = [], []
        for k in range(1, p):
            lam_k, m_k = hist[-(k + 1)]
            rk = (lam_k - lam_s) / h
            rks.append(rk)
            D1s.append((m_k - m_s) / rk)
        rks.append(1.0)
        ratio = sig_t / sig_s
        last = i == n - 1
        if math.isinf(h):  # the final step to tau = 0 (order 1): x = alpha(0) m_s = m_s
            x_pred = ratio * x + a_t * m_s
        else:
            R, b, h_phi_1, B_h = _unipc_coeffs(rks, hh, p, variant)
            x_lin = ratio * x - a_t * h_phi_1 * m_s
            if D1s:
                rhos_p = np.array([0.5]) if p == 2 else np.linalg.solve(R[:-1, :-1], b[:-1])
                pred = sum(float(r) * d for r, d in zip(rhos_p, D1s))
                x_pred = x_lin - a_t * B_h * pred
            else:
                x_pred = x_lin
        if last:
            x = x_pred
        else:
            a_t_, sig_t_ = a_t, sig_t
            m_t = (x_pred - sig_t_ * eps_fn(x_pred, t)) / a_t_
            if use_corrector:
                rhos_c = np.array([0.5]) if p == 1 else np.linalg.solve(R, b)
                corr = sum(float(r) * d for r, d in zip(rhos_c[:-1], D1s)) if D1s else 0.0
                x = x_lin - a_t * B_h * (corr + float(rhos_c[-1]) * (m_t - m_s))
            else:
                x = x_pred
            hist.append((lams[i + 1], m_t))
            hist = hist[-3:]
        if callback:
            callback(i, x)
    return x


# ---- libdeissn on the same footing -------------------------------------------------------

def deis(eps_fn, x, taus, table=None, order=3, lower_order_final=False, noise="linear",
         schedule=None, method="eps", corrector=False):
    """libdeissn's DEIS / DEIS-SN on the grid `taus` (CUSTOM spacing, tau_end = taus[-1]) or
    on `schedule`, driving eps_fn step by step from a copy of x (x is left as it is).
    Returns float64."""
    if schedule is None:
        schedule = deissn.Schedule(noise=noise, taus=np.asarray(taus[:-1], dtype=np.float64),
                                   tau_end=float(taus[-1]))
    sampler = deissn.Sampler(schedule, table, order=order, lower_order_final=lower_order_final,
                             method=method, corrector=corrector)
    # A copy always: for a float32 CPU x the numpy view would be x's own memory, and the
    # steps below update xs in place.
    xs = np.array(x.detach().cpu().numpy(), dtype=np.float32, order="C", copy=True)
    for info in sampler:
        eps = eps_fn(torch.from_numpy(xs).to(torch.float64), info.tau)
        sampler.step(xs, eps.to(torch.float32).numpy())
    return torch.from_numpy(xs).to(torch.float64)


# ---- analytic models ---------------------------------------------------------------------

def gaussian_eps_fn(vp, s=0.5):
    """Data ~ N(0, s^2 I): eps = sigma x / (abar s^2 + sigma^2)."""
    def f(x, tau):
        ab = float(vp.abar(float(tau)))
        sig = math.sqrt(max(1.0 - ab, 0.0))
        return sig * x / (ab * s * s + sig * sig)
    return f


def gaussian_exact(vp, x1, tau, s=0.5, tau_start=1.0):
    """The probability-flow ODE's exact solution for the Gaussian model."""
    ab, ab1 = float(vp.abar(tau)), float(vp.abar(tau_start))
    return x1 * math.sqrt(ab * s * s + 1 - ab) / math.sqrt(ab1 * s * s + 1 - ab1)


class GaussianMixture:
    """Data from a mixture of isotropic Gaussians in d dimensions: weights w_k, means mu_k
    (K x d), standard deviations c_k. With x_tau = alpha x0 + sigma z the score is exact:
      p(x | k) = N(alpha mu_k, (alpha^2 c_k^2 + sigma^2) I),
      eps = sigma * sum_k post_k (x - alpha mu_k) / (alpha^2 c_k^2 + sigma^2)."""

    def __init__(self, means, stds, weights=None):
        self.means = torch.as_tensor(means, dtype=torch.float64)
        K = self.means.shape[0]
        self.stds = torch.as_tensor(stds, dtype=torch.float64).reshape(K)
        w = torch.ones(K, dtype=torch.float64) if weights is None else \
            torch.as_tensor(weights, dtype=torch.float64)
        self.logw = torch.log(w / w.sum())

    def eps(self, x, alpha, sigma):
        """x: [B, d] (or [B, ...] flattened); float64."""
        shape = x.shape
        x = x.reshape(shape[0], -1).to(torch.float64)
        var = alpha ** 2 * self.stds ** 2 + sigma ** 2          # [K]
        diff = x[:, None, :] - alpha * self.means[None, :, :]   # [B, K, d]
        d = x.shape[1]
        logp = self.logw - 0.5 * (diff ** 2).sum(-1) / var - 0.5 * d * torch.log(var)
        post = torch.softmax(logp, dim=1)                        # [B, K]
        e = sigma * (post[:, :, None] * diff / var[None, :, None]).sum(1)
        return e.reshape(shape)

    def eps_fn(self, vp):
        def f(x, tau):
            a, s = vp.alpha_sigma(float(tau))
            return self.eps(x, a, s)
        return f

    def sample(self, n, generator=None):
        K, d = self.means.shape
        k = torch.multinomial(self.logw.exp(), n, replacement=True, generator=generator)
        z = torch.randn(n, d, dtype=torch.float64, generator=generator)
        return self.means[k] + self.stds[k, None] * z
