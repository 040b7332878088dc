"""Every integer, float and string handed to the library is checked before ctypes converts it:
ctypes would silently wrap 2**32 to 0, turn True into 1 and cut a path at a NUL byte."""
import numpy as np
import pytest

import deissn

SCHEDULE = dict(steps=10)


@pytest.mark.parametrize("value", [2 ** 32, 2 ** 32 + 3, -1])
def test_out_of_range_struct_field_names_it(value):
    s = deissn.Schedule(**SCHEDULE)
    with pytest.raises(deissn.InvalidArgument, match=r"order.*%d.*uint32" % value):
        deissn.Sampler(s, order=value)
    with pytest.raises(deissn.InvalidArgument, match=r"steps.*%d.*uint32" % value):
        deissn.Schedule(steps=value)


@pytest.mark.parametrize("value", [True, 3.0, np.float32(3), "3"])
def test_non_integer_struct_field_is_a_type_error(value):
    s = deissn.Schedule(**SCHEDULE)
    with pytest.raises(TypeError, match="order"):
        deissn.Sampler(s, order=value)
    with pytest.raises(TypeError, match="num_train_steps"):
        deissn.Schedule(num_train_steps=value)
    # numpy integers are integers
    s = deissn.Schedule(steps=np.int64(12), num_train_steps=np.uint16(1000))
    assert s.steps == 12
    assert deissn.Sampler(s, order=np.int32(2)).steps == 12


def test_float_fields_take_real_numbers_only():
    assert deissn.Schedule(spacing="power", power=2).steps == 10  # an int is a number
    with pytest.raises(TypeError, match="power"):
        deissn.Schedule(spacing="power", power=True)
    with pytest.raises(TypeError, match="tau_end"):
        deissn.Schedule(tau_end="0.1")
    with pytest.raises(deissn.InvalidArgument, match="beta_max"):
        deissn.Schedule(noise="continuous_vp", beta_max=10 ** 400)


def test_out_of_range_function_arguments_name_them(tmp_path):
    with pytest.raises(deissn.InvalidArgument, match="seed"):
        deissn.noise(seed=-1, n=1, shape=4)
    with pytest.raises(deissn.InvalidArgument, match="seed"):
        deissn.noise(seed=2 ** 64, n=1, shape=4)
    with pytest.raises(TypeError, match="first_sample"):
        deissn.noise(seed=0, n=1, shape=4, first_sample=1.0)
    with pytest.raises(deissn.InvalidArgument, match="clip"):
        deissn.NormTable.load(tmp_path / "t", clip=2 ** 32)
    table = deissn.NormTable.from_arrays([0.0, 1.0], [1.0, 2.0])
    cal = deissn.Calibrator(deissn.Schedule(spacing="trailing", steps=4))
    with pytest.raises(deissn.InvalidArgument, match="step"):
        cal.add(2 ** 32, np.ones(3))
    with pytest.raises(deissn.InvalidArgument, match="samples"):
        cal.add(0, np.ones(3), samples=-1)
    with pytest.raises(deissn.InvalidArgument, match="nfe"):
        deissn.preset("best", 2 ** 32 + 10)
    del table


def test_paths_and_strings_with_nul_are_refused(tmp_path):
    table = deissn.NormTable.from_arrays([0.0, 1.0], [1.0, 2.0])
    good = tmp_path / "t.dsn"
    with pytest.raises(ValueError, match="path.*NUL"):
        table.save(str(good) + "\0.tmp")
    assert not good.exists()  # not written to the truncated path
    table.save(good)
    with pytest.raises(ValueError, match="path.*NUL"):
        deissn.NormTable.load(str(good) + "\0junk")
    with pytest.raises(ValueError, match="path.*NUL"):
        deissn.Model.load(str(good).encode() + b"\0x")
    with pytest.raises(ValueError, match="device.*NUL"):
        deissn.Model.load(good, device="cpu\0cuda")
    cal = deissn.Calibrator(deissn.Schedule(spacing="trailing", steps=2))
    cal.add(0, np.ones(3), 1)
    cal.add(1, np.ones(3))
    with pytest.raises(ValueError, match="metadata.*NUL"):
        cal.finish(metadata="a\0b")


def test_struct_fields_are_checked_by_name():
    from deissn import _lib
    p = _lib.SamplerParams()
    with pytest.raises(AttributeError, match="ordr"):
        p.ordr = 3  # a typo is not a new attribute
