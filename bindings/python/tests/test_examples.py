"""The sampling example runs, and says clearly when the demo model is absent."""
import subprocess
import sys

from PIL import Image

from conftest import REPO

EXAMPLE = REPO / "bindings" / "python" / "examples" / "sample_png.py"


def test_sample_png(tmp_path, torch_model_path):
    out = tmp_path / "grid.png"
    done = subprocess.run([sys.executable, str(EXAMPLE), "--model", str(torch_model_path),
                           "--table", "none", "-n", "4", "--shape", "1,8,8", "--out", str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert Image.open(out).size == (2 * 10 + 2, 2 * 10 + 2)


def test_absent_model_is_reported(tmp_path):
    done = subprocess.run([sys.executable, str(EXAMPLE), "--model", str(tmp_path / "no.pt")],
                          capture_output=True, text=True)
    assert done.returncode != 0 and "is absent" in done.stderr
