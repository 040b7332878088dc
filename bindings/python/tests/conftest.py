"""Shared fixtures. Run from anywhere: /usr/bin/python3 -m pytest -q bindings/python/tests"""
import json
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "bindings" / "python"))

GOLDEN = REPO / "tests" / "data" / "deis_sn_golden.json"
MODELS = REPO / "tests" / "models"


def seed_tables_dir():
    """$DEISSN_SEED_TABLES, else ../shared/seed-tables next to the repository (as the C tests)."""
    return Path(os.environ.get("DEISSN_SEED_TABLES", REPO.parent / "shared" / "seed-tables"))


def seed_table(name, clip):
    """The reference table `name` (e.g. "cifar10"), or a pytest skip naming the missing file."""
    import deissn
    path = seed_tables_dir() / ("%s_Ls_score_abs.pt" % name)
    if not path.exists():
        pytest.skip("reference table %s is absent (set DEISSN_SEED_TABLES)" % path)
    return deissn.NormTable.load(path, clip=clip)


def golden_cases():
    return json.loads(GOLDEN.read_text())["cases"]


def gaussian_eps(schedule, tau, x, s=0.5):
    """The analytic model for data ~ N(0, s^2 I): eps = sigma x / (abar s^2 + sigma^2),
    computed in double from float32 x and rounded to float32, as the C tests do."""
    import numpy as np
    abar = schedule.alpha_bar(tau)
    sigma = np.sqrt(1.0 - abar)
    return (sigma * x.astype(np.float64) / (abar * s * s + sigma * sigma)).astype(np.float32)


@pytest.fixture
def torch_model_path():
    import deissn
    if not deissn.has_torch():
        pytest.skip("the torch plug-in (libdeissn-torch.so.1) is not available: deissn.has_torch() is False")
    return MODELS / "gaussian_eps.pt"
