"""Every failing call raises the deissn.Error subclass of its status, with the C message."""
import numpy as np
import pytest

import deissn
from conftest import MODELS


def test_invalid_argument():
    with pytest.raises(deissn.InvalidArgument, match="steps 0") as e:
        deissn.Schedule(steps=0)
    assert e.value.status == -1 and isinstance(e.value, ValueError)
    with pytest.raises(deissn.InvalidArgument, match="order"):
        deissn.Sampler(deissn.Schedule(), order=4)
    with pytest.raises(deissn.InvalidArgument, match="unknown spacing 'cubic'"):
        deissn.Schedule(spacing="cubic")
    with pytest.raises(deissn.InvalidArgument, match="knot 2"):
        deissn.NormTable.from_arrays([0.0, 0.5, 0.4], [1.0, 1.0, 1.0])


def test_file_and_format_errors(tmp_path):
    with pytest.raises(deissn.FileError, match="no_such_table.pt") as e:
        deissn.NormTable.load(tmp_path / "no_such_table.pt")
    assert e.value.status == -6 and isinstance(e.value, OSError)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"certainly not a table")
    with pytest.raises(deissn.FormatError, match="junk.pt"):
        deissn.NormTable.load(junk)


@pytest.mark.parametrize("name, write", [
    ("r.npz", lambda p: np.savez(p, r=np.ones(3))),  # a zip, but not torch.save's
    ("r.csv", lambda p: p.write_text("tau,r\n0,1\n")),
])
def test_a_file_of_another_format_says_which_formats_load_reads(tmp_path, name, write):
    path = tmp_path / name
    write(path)
    with pytest.raises(deissn.FormatError) as e:
        deissn.NormTable.load(path)
    message = str(e.value)
    assert name in message and "libdeissn's table format" in message, message
    assert "torch.save" in message, message


def test_model_errors(torch_model_path):
    with pytest.raises(deissn.ModelError, match="no_forward"):
        deissn.Model.load(MODELS / "no_forward.pt")
    with pytest.raises(deissn.FileError):
        deissn.Model.load(MODELS / "absent.pt")
    with pytest.raises(deissn.InvalidArgument):
        deissn.Model.load(torch_model_path, device="toaster")


def test_size_state_and_nonfinite():
    sampler = deissn.Sampler(deissn.Schedule(steps=2))
    x = np.ones(4, np.float32)
    with pytest.raises(deissn.SizeMismatch, match="3 elements"):
        sampler.step(x, np.zeros(3, np.float32))
    bad = np.zeros(4, np.float32)
    bad[2] = np.nan
    with pytest.raises(deissn.NonFinite, match="element 2"):
        sampler.step(x, bad)
    assert (x == 1).all() and sampler.info.step == 0  # unchanged, so the caller may retry
    sampler.step(x, np.zeros(4, np.float32))
    with pytest.raises(deissn.SizeMismatch):
        sampler.step(np.ones(5, np.float32), np.zeros(5, np.float32))
    sampler.step(x, np.zeros(4, np.float32))
    assert sampler.done
    with pytest.raises(deissn.StateError):
        sampler.step(x, np.zeros(4, np.float32))


def test_mismatch():
    # 1000 reference entries record the reference schedule (linear, T = 1000).
    ref = deissn.NormTable.from_reference(np.ones(1000), np.ones(1000), 0)
    assert ref.fingerprint == deissn.Schedule().fingerprint
    with pytest.raises(deissn.Mismatch, match="schedule") as e:
        deissn.Sampler(deissn.Schedule(noise="scaled_linear"), ref)
    assert e.value.status == -11
    deissn.Sampler(deissn.Schedule(noise="scaled_linear"), ref, allow_table_mismatch=True)


def test_in_place_arrays_are_never_copied():
    sampler = deissn.Sampler(deissn.Schedule(steps=2))
    eps = np.zeros(4, np.float32)
    with pytest.raises(TypeError, match="float32, not float64"):
        sampler.step(np.ones(4), eps)
    with pytest.raises(ValueError, match="C-contiguous"):
        sampler.step(np.ones(8, np.float32)[::2], eps)
    ro = np.ones(4, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        sampler.step(ro, eps)
    with pytest.raises(TypeError, match="numpy array"):
        sampler.step([1.0, 2.0, 3.0, 4.0], eps)


def test_closed_objects():
    s = deissn.Schedule()
    s.close()
    s.close()
    with pytest.raises(deissn.InvalidArgument, match="closed"):
        s.steps
    with pytest.raises(deissn.InvalidArgument, match="closed"):
        deissn.Sampler(s)


def test_callback_exceptions_are_re_raised():
    sampler = deissn.Sampler(deissn.Schedule(steps=5))

    def broken(x, t):
        if t < 500:
            raise KeyError("model blew up at t=%g" % t)
        return np.zeros_like(x)

    x = deissn.noise(1, 2, 3)
    before = x.copy()
    with pytest.raises(KeyError, match="blew up"):
        sampler.sample(deissn.Model.from_callable(broken), x)
    assert (x == before).all()  # a failing deissn_sample leaves x as it was

    wrong = deissn.Model.from_callable(lambda x, t: np.zeros(x.size + 1))
    with pytest.raises(ValueError, match="returned shape"):
        sampler.sample(wrong, x)

    class Stop(Exception):
        pass

    def progress(step, steps):
        if step == 2:
            raise Stop
    with pytest.raises(Stop):
        sampler.sample(deissn.Model.from_callable(lambda x, t: x * 0), x, progress=progress)


def test_error_message_is_the_library_message():
    try:
        deissn.Schedule(steps=2000)
    except deissn.Error as e:
        assert e.message == str(e) and "deissn_schedule_create" in e.message
