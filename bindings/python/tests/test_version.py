"""Which libdeissn the binding accepts, and where deissn.__version__ comes from."""
import ctypes
import os
import re
import shutil
import subprocess
import sys

import pytest

import deissn
from conftest import REPO
from deissn import _lib

HEADER = (REPO / "include" / "deissn.h").read_text()


def header_version():
    parts = [int(re.search(r"#define DEISSN_VERSION_%s (\d+)" % p, HEADER).group(1))
             for p in ("MAJOR", "MINOR", "PATCH")]
    string = re.search(r'#define DEISSN_VERSION_STRING "([^"]+)"', HEADER).group(1)
    assert string == "%d.%d.%d" % tuple(parts)
    return string


def test_version_is_the_loaded_librarys_and_the_headers():
    assert deissn.__version__ == deissn.library_version() == header_version()


def test_abi_is_the_headers_and_the_soname_of_the_loaded_library():
    assert _lib.ABI == deissn.ABI == int(re.search(r"#define DEISSN_ABI (\d+)", HEADER).group(1))
    assert _lib._soname(_lib._loaded_path(_lib._cdll)) == "libdeissn.so.%d" % _lib.ABI


def stub_library(tmp_path, version, leave_out=(), define=None, abi=None):
    """A libdeissn.so.ABI stand-in (soname libdeissn.so.`abi`, default the binding's) of
    `version` exporting the binding's functions but `leave_out`: each a no-op returning 0, or
    the C definition `define` gives it."""
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler (cc) to build a stand-in libdeissn with")
    major, minor, patch = version
    lines = ["#include <stdint.h>",
             "uint32_t deissn_version_number(void) { return %d; }" % (major * 10000 + minor * 100
                                                                     + patch),
             'const char *deissn_version_string(void) { return "%d.%d.%d"; }' % version]
    define = define or {}
    lines += define.values()
    for name in sorted(n for n in vars(_lib.lib) if n.startswith("deissn_")):
        if name not in leave_out and name not in define and name not in (
                "deissn_version_number", "deissn_version_string"):
            lines.append("int %s(void) { return 0; }" % name)
    abi = _lib.ABI if abi is None else abi
    src, so = tmp_path / "stub.c", tmp_path / ("libdeissn.so.%d" % abi)
    src.write_text("\n".join(lines) + "\n")
    subprocess.run([cc, "-shared", "-fPIC", "-Wl,-soname,libdeissn.so.%d" % abi, "-o", str(so),
                    str(src)], check=True)
    return so


def import_with(lib, then="print(deissn.__version__)"):
    code = "import sys; sys.path.insert(0, %r); import deissn; %s" % (
        str(REPO / "bindings" / "python"), then)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, DEISSN_LIB=str(lib)))


def test_missing_library_is_a_clear_import_error(tmp_path):
    p = import_with(tmp_path / ("libdeissn.so.%d" % _lib.ABI))
    assert p.returncode != 0 and "set DEISSN_LIB" in p.stderr


def test_any_library_of_the_same_soname_with_the_functions_is_accepted(tmp_path):
    p = import_with(stub_library(tmp_path, (0, 97, 3)))
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "0.97.3"


def test_missing_functions_are_named(tmp_path):
    p = import_with(stub_library(tmp_path, (0, 3, 0),
                                 leave_out=("deissn_sample", "deissn_calibrator_merge")))
    assert p.returncode != 0
    m = re.search(r"ImportError: .*lacks 2 functions this binding needs: ([\w, ]+);", p.stderr)
    assert m and sorted(m.group(1).split(", ")) == ["deissn_calibrator_merge", "deissn_sample"], \
        p.stderr


@pytest.mark.parametrize("abi", [_lib.ABI - 1, _lib.ABI + 1])
def test_another_soname_is_refused(tmp_path, abi):
    p = import_with(stub_library(tmp_path, (0, 9, 0), abi=abi))
    assert p.returncode != 0
    assert re.search(r"ImportError: .* is libdeissn\.so\.%d, but this binding is for "
                     r"libdeissn\.so\.%d" % (abi, _lib.ABI), p.stderr), p.stderr


def test_a_newer_librarys_larger_params_struct_is_read_as_the_bindings_version(tmp_path):
    """A newer libdeissn.so.ABI whose sampler params have grown (version 9, 64 bytes more)
    and whose params_init writes all of them, whatever version it is asked for: it must not
    write past the binding's struct, it must be asked for the binding's version, and
    deissn_sampler_create must be told the binding's version, not the library's."""
    size = ctypes.sizeof(_lib.SamplerParams)
    so = stub_library(tmp_path, (0, 9, 0), define={
        "deissn_sampler_params_init": (
            "#include <string.h>\n"
            "uint32_t asked_version;\n"
            "int deissn_sampler_params_init(uint32_t *p, uint32_t version) {\n"
            "    asked_version = version;\n"
            "    memset(p, 0, %d + 64); p[0] = 9; p[1] = 3; return 0; }" % size),
        "deissn_schedule_create": "int deissn_schedule_create(void **out) { *out = (void *)8; "
                                  "return 0; }",
        "deissn_sampler_create": (
            "uint32_t seen_version, seen_order;\n"
            "int deissn_sampler_create(void **out, void *s, void *t, const uint32_t *p) {\n"
            "    seen_version = p[0]; seen_order = p[1]; *out = (void *)8; return 0; }")})
    p = import_with(so, then="import ctypes; deissn.Sampler(deissn.Schedule()); "
                             "c = ctypes.CDLL(%r); print(*(ctypes.c_uint32.in_dll(c, n).value for n "
                             "in ('asked_version', 'seen_version', 'seen_order')))" % str(so))
    assert p.returncode == 0, p.stderr
    v = str(_lib.SamplerParams._version_)
    assert p.stdout.split() == [v, v, "3"], p.stdout
