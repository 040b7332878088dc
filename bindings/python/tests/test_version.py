"""Which libdeissn the binding accepts, and where deissn.__version__ comes from."""
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


def stub_library(tmp_path, version, leave_out=()):
    """A libdeissn.so.N stand-in of `version` exporting the binding's functions but
    `leave_out` (each a no-op returning 0)."""
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler (cc) to build a stand-in libdeissn with")
    major, minor, patch = version
    lines = ["#include <stdint.h>",
             "uint32_t deissn_version_number(void) { return %d; }" % (major * 10000 + minor * 100
                                                                     + patch),
             'const char *deissn_version_string(void) { return "%d.%d.%d"; }' % version]
    for name in sorted(n for n in vars(_lib.lib) if n.startswith("deissn_")):
        if name not in leave_out and name not in ("deissn_version_number",
                                                  "deissn_version_string"):
            lines.append("int %s(void) { return 0; }" % name)
    src, so = tmp_path / "stub.c", tmp_path / ("libdeissn.so.%d" % major)
    src.write_text("\n".join(lines) + "\n")
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(so), str(src)], check=True)
    return so


def import_with(lib):
    code = "import sys; sys.path.insert(0, %r); import deissn; print(deissn.__version__)" % str(
        REPO / "bindings" / "python")
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
