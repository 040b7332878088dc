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
    assert _lib.SONAME_MAJOR == int(header_version().split(".")[0])


def stub_library(tmp_path, version, leave_out=(), define=None):
    """A libdeissn.so.N stand-in of `version` exporting the binding's functions but
    `leave_out`: each a no-op returning 0, or the C definition `define` gives it."""
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
    src, so = tmp_path / "stub.c", tmp_path / ("libdeissn.so.%d" % major)
    src.write_text("\n".join(lines) + "\n")
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(so), str(src)], check=True)
    return so


def import_with(lib, then="print(deissn.__version__)"):
    code = "import sys; sys.path.insert(0, %r); import deissn; %s" % (
        str(REPO / "bindings" / "python"), then)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, DEISSN_LIB=str(lib)))


def test_missing_library_is_a_clear_import_error(tmp_path):
    p = import_with(tmp_path / "libdeissn.so.0")
    assert p.returncode != 0 and "set DEISSN_LIB" in p.stderr


def test_any_library_of_the_same_major_with_the_functions_is_accepted(tmp_path):
    major = _lib.SONAME_MAJOR
    p = import_with(stub_library(tmp_path, (major, 97, 3)))
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "%d.97.3" % major


def test_missing_functions_are_named(tmp_path):
    p = import_with(stub_library(tmp_path, (_lib.SONAME_MAJOR, 1, 0),
                                 leave_out=("deissn_sample", "deissn_calibrator_merge")))
    assert p.returncode != 0
    m = re.search(r"ImportError: .*lacks 2 functions this binding needs: ([\w, ]+);", p.stderr)
    assert m and sorted(m.group(1).split(", ")) == ["deissn_calibrator_merge", "deissn_sample"], \
        p.stderr


def test_another_major_version_is_refused(tmp_path):
    p = import_with(stub_library(tmp_path, (_lib.SONAME_MAJOR + 1, 0, 0)))
    assert p.returncode != 0
    assert "ImportError: " in p.stderr and "libdeissn.so.%d" % _lib.SONAME_MAJOR in p.stderr, \
        p.stderr


def test_a_newer_librarys_larger_params_struct_is_read_as_the_bindings_version(tmp_path):
    """A newer libdeissn.so.0 whose sampler params have grown (version 9, 64 bytes more):
    its params_init must not write past the binding's struct, and deissn_sampler_create must
    be told the binding's version, not the library's."""
    size = ctypes.sizeof(_lib.SamplerParams)
    so = stub_library(tmp_path, (_lib.SONAME_MAJOR, 9, 0), define={
        "deissn_sampler_params_init": (
            "#include <string.h>\n"
            "int deissn_sampler_params_init(uint32_t *p) {\n"
            "    memset(p, 0, %d + 64); p[0] = 9; p[1] = 3; return 0; }" % size),
        "deissn_schedule_create": "int deissn_schedule_create(void **out) { *out = (void *)8; "
                                  "return 0; }",
        "deissn_sampler_create": (
            "uint32_t seen_version, seen_order;\n"
            "int deissn_sampler_create(void **out, void *s, void *t, const uint32_t *p) {\n"
            "    seen_version = p[0]; seen_order = p[1]; *out = (void *)8; return 0; }")})
    p = import_with(so, then="import ctypes; deissn.Sampler(deissn.Schedule()); "
                             "c = ctypes.CDLL(%r); print(ctypes.c_uint32.in_dll(c, 'seen_version')"
                             ".value, ctypes.c_uint32.in_dll(c, 'seen_order').value)" % str(so))
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == [str(_lib.SamplerParams._version_), "3"], p.stdout
