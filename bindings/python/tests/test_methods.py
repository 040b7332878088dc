"""Sampler(method=..., corrector=...): the x0 method, its corrector, and their refusals."""
import numpy as np
import pytest

import deissn


def gaussian_eps(x, info, s=0.5):
    return info.sigma * x / (info.alpha ** 2 * s * s + info.sigma ** 2)


def run(sampler, n=64):
    x = deissn.noise(3, n, (4,))
    for info in sampler:
        sampler.step(x, gaussian_eps(x, info))
    return x


def exact(tau_end, n=64, s=0.5):
    # Gaussian data: x / sqrt(alpha^2 s^2 + sigma^2) is constant along the ODE.
    schedule = deissn.Schedule(noise="linear", steps=1)
    ab1, ab0 = schedule.alpha_bar(1.0), schedule.alpha_bar(tau_end)
    return deissn.noise(3, n, (4,)) * np.sqrt((ab0 * s * s + 1 - ab0) / (ab1 * s * s + 1 - ab1))


def test_every_method_converges_on_gaussian_data():
    # to tau_end = 1e-3: METHOD_DATA's step to tau = 0 is order 0 (x = x0), first order there
    for method, corrector in (("eps", False), ("data", False), ("data", True)):
        errs = []
        for steps in (20, 100):
            schedule = deissn.Schedule(noise="linear", spacing="trailing", steps=steps,
                                       tau_end=1e-3)
            # a polynomial in log-SNR extrapolated over the long last step diverges: the data
            # method wants lower_order_final, as DPM-Solver++ does
            sampler = deissn.Sampler(schedule, order=2, method=method, corrector=corrector,
                                     lower_order_final=method == "data")
            errs.append(float(np.abs(run(sampler) - exact(1e-3)).max()))
        assert errs[1] < 5e-3 and errs[1] < errs[0] / 5, (method, corrector, errs)


def test_coeffs_show_the_folded_correction():
    schedule = deissn.Schedule(noise="linear", spacing="trailing", steps=6)
    c = deissn.Sampler(schedule, order=2, method="data", corrector=True).coeffs()
    assert [k.corrector_order for k in c] == [0, 1, 2, 3, 3, 3]
    assert len(c[3].c) == 4 and c[-1].psi == 0.0 and c[-1].c[0] == 1.0  # x = x0 at tau = 0
    assert all(r == 1.0 for k in c for r in k.r)                       # no table in x0 space


def test_corrector_needs_the_data_method_and_bad_names_raise():
    schedule = deissn.Schedule(noise="linear", steps=6)
    with pytest.raises(deissn.InvalidArgument, match="corrector"):
        deissn.Sampler(schedule, corrector=True)
    with pytest.raises(deissn.InvalidArgument, match="Sampler: method: unknown method 'ode'"):
        deissn.Sampler(schedule, method="ode")
    # "x0" is the library's alias of "data"
    assert deissn.Sampler(schedule, method="x0").coeffs() == \
        deissn.Sampler(schedule, method="data").coeffs()
    with pytest.raises(deissn.InvalidArgument, match="calibrator"):
        model = deissn.Model.from_callable(lambda x, t: np.zeros_like(x))
        cal = deissn.Calibrator(schedule)
        sampler = deissn.Sampler(schedule, method="data")
        sampler.sample(model, deissn.noise(0, 2, (4,)), calibrator=cal)
