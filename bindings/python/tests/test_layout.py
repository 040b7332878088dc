"""The binding's hand copies of include/deissn.h, checked against the header itself.

The ctypes structs are compared with what the system C compiler makes of the header (the size
and every field's offset, printed by a generated C program), their field names and versions
with the header's text, and every declared function's parameters with its prototype. All of
it follows the header: nothing here lists a field or a size."""
import ctypes
import re
import shutil
import subprocess

import pytest

from conftest import REPO
from deissn import _lib

HEADER = REPO / "include" / "deissn.h"

# Public structs the binding does not use, with the reason; any other header struct must have
# a ctypes copy, so that a new one is not forgotten. (None at present: every one is bound.)
UNBOUND = {}

STRUCTS = [c for c in vars(_lib).values()
           if isinstance(c, type) and issubclass(c, _lib.CheckedStructure) and c._c_name_]
FUNCTIONS = {name: f for name, f in vars(_lib.lib).items() if isinstance(f, _lib._Function)}


def header_text(path):
    text = re.sub(r"/\*.*?\*/", " ", path.read_text(), flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def header_structs(text):
    """{struct name: {field name: its C type, or None for an array}} of every
    `typedef struct NAME { ... } NAME;`, fields in order."""
    out = {}
    for name, body in re.findall(r"typedef\s+struct\s+(\w+)\s*\{(.*?)\}\s*\1\s*;", text, re.S):
        fields = {}
        for decl in body.split(";"):
            decl = " ".join(decl.split())
            if not decl:
                continue
            fp = re.search(r"\(\s*\*\s*(\w+)\s*\)", decl)
            if fp:
                fields[fp.group(1)] = "pointer *"
                continue
            # "double lo, hi" declares two fields of the first one's type
            first, *more = [d.strip() for d in decl.split(",")]
            field = re.findall(r"\w+", re.sub(r"\[[^\]]*\]", "", first))[-1]
            base = first[:first.rindex(field)]
            fields[field] = None if "[" in first else base
            for d in more:
                fields[re.findall(r"\w+", re.sub(r"\[[^\]]*\]", "", d))[-1]] = \
                    None if "[" in d else base + "*" * d.count("*")
        out[name] = fields
    return out


def header_functions(text):
    """{function name: (return type, [parameter types])} of every DEISSN_API prototype."""
    out = {}
    for ret, name, params in re.findall(r"DEISSN_API\s+([^;()]*?)\b(deissn_\w+)\s*\(([^)]*)\)\s*;",
                                         text):
        types = []
        for p in params.split(","):
            p = " ".join(p.split())
            if p and p != "void":
                words = re.findall(r"\w+|\*", p)
                # "const double *tau" -> "const double *"; "uint32_t n" -> "uint32_t"
                types.append(" ".join(words[:-1]) if len(re.findall(r"\w+", p)) > 1 else p)
        out[name] = (" ".join(ret.split()), types)
    return out


def c_kind(ctype_text):
    """How a C type is passed: "pointer", or (size, signed) of an integer, or "f4"/"f8"."""
    t = ctype_text.replace("const", "").split()
    if "*" in t or t[-1].endswith("_fn"):  # pointers; the header's *_fn are function pointers
        return "pointer"
    ints = {"int8_t": (1, True), "uint8_t": (1, False), "int32_t": (4, True),
            "uint32_t": (4, False), "int64_t": (8, True), "uint64_t": (8, False),
            "int": (ctypes.sizeof(ctypes.c_int), True),
            "size_t": (ctypes.sizeof(ctypes.c_size_t), False)}
    return {"double": "f8", "float": "f4", "void": None}.get(t[-1], ints.get(t[-1], t[-1]))


def ctypes_kind(t):
    if t is None:
        return None
    code = getattr(t, "_type_", None)
    if isinstance(code, str) and code in _lib._INT_CODES:
        return (ctypes.sizeof(t), code.islower())
    if code in ("d", "f"):
        return "f%d" % ctypes.sizeof(t)
    return "pointer"  # c_void_p, c_char_p, POINTER(...), CFUNCTYPE(...)


def compile_layout(header, tmp_path):
    """{"struct": size, "struct.field": offset} as the C compiler lays out `header`'s structs."""
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler (cc) to lay out include/deissn.h with")
    lines = ["#include <stddef.h>", "#include <stdio.h>", '#include "%s"' % header,
             "int main(void) {"]
    for s in STRUCTS:
        lines.append('printf("%s %%zu\\n", sizeof(%s));' % (s._c_name_, s._c_name_))
        for f in s._fields_:
            lines.append('printf("%s.%s %%zu %%zu\\n", offsetof(%s, %s), sizeof(((%s *)0)->%s));'
                         % (s._c_name_, f[0], s._c_name_, f[0], s._c_name_, f[0]))
    lines.append("return 0; }")
    src, exe = tmp_path / "layout.c", tmp_path / "layout"
    src.write_text("\n".join(lines) + "\n")
    p = subprocess.run([cc, "-std=c99", "-o", str(exe), str(src)], capture_output=True, text=True)
    if p.returncode != 0:
        return None, p.stderr
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    return {k: tuple(int(n) for n in v) for k, *v in (ln.split() for ln in out.splitlines())}, ""


def layout_problems(header, tmp_path):
    """What differs between the ctypes copies and `header`, one line each."""
    text = header_text(header)
    structs, functions = header_structs(text), header_functions(text)
    problems = []
    bound = {s._c_name_ for s in STRUCTS}
    for name in sorted(set(structs) - bound - set(UNBOUND)):
        problems.append("%s: a public struct with no ctypes copy (nor a reason in UNBOUND)" % name)
    layout, errors = compile_layout(header, tmp_path)
    if layout is None:
        problems.append("the generated layout program does not compile against the header "
                        "(a field the ctypes copy names is gone):\n" + errors)
    for s in STRUCTS:
        c = s._c_name_
        names = [f[0] for f in s._fields_]
        if c not in structs:
            problems.append("%s: not in the header" % c)
            continue
        if names != list(structs[c]):
            problems.append("%s: the header's fields are %s, the ctypes copy's %s"
                            % (c, list(structs[c]), names))
        for f, t in s._fields_:
            if structs[c].get(f) and c_kind(structs[c][f]) != ctypes_kind(t):
                problems.append("%s.%s: %s in the header, %s in the ctypes copy"
                                % (c, f, structs[c][f], ctypes_kind(t)))
        macro = re.search(r"#define\s+%s_VERSION\s+(\d+)" % c.upper(), text)
        version = int(macro.group(1)) if macro else None
        if "version" in structs[c] and s._version_ != version:
            problems.append("%s: %s_VERSION is %s, the ctypes copy follows version %s"
                            % (c, c.upper(), version, s._version_))
        if layout is not None:
            if layout[c] != (ctypes.sizeof(s),):
                problems.append("%s: sizeof is %d in C, %d in ctypes"
                                % (c, layout[c][0], ctypes.sizeof(s)))
            for f in names:
                ours = (getattr(s, f).offset, getattr(s, f).size)
                if layout["%s.%s" % (c, f)] != ours:
                    problems.append("%s.%s: (offset, size) %s in C, %s in ctypes"
                                    % ((c, f, layout["%s.%s" % (c, f)], ours)))
    for name, f in sorted(FUNCTIONS.items()):
        if name not in functions:
            problems.append("%s: declared by the binding, not in the header" % name)
            continue
        ret, params = functions[name]
        want = [c_kind(p) for p in params]
        have = [ctypes_kind(t) for _, t in f.args]
        if want != have:
            problems.append("%s: the header's parameters are (%s), the binding's %s"
                            % (name, ", ".join(params), have))
        if c_kind(ret) != ctypes_kind(f.cfunc.restype):
            problems.append("%s: returns %s in the header, %s in the binding"
                            % (name, ret, ctypes_kind(f.cfunc.restype)))
    return problems


def test_ctypes_copies_match_the_header(tmp_path):
    assert STRUCTS and FUNCTIONS
    problems = layout_problems(HEADER, tmp_path)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("change, expect", [
    # a field added to an output struct, a parameter gone, a params or output version bump
    (("typedef struct deissn_step_info {", "typedef struct deissn_step_info { uint32_t v0;"),
     "deissn_step_info: the header's fields are"),
    (("deissn_sampler_params_init(deissn_sampler_params *params, uint32_t version)",
      "deissn_sampler_params_init(deissn_sampler_params *params)"),
     "deissn_sampler_params_init: the header's parameters"),
    (("#define DEISSN_SAMPLER_PARAMS_VERSION 4", "#define DEISSN_SAMPLER_PARAMS_VERSION 5"),
     "deissn_sampler_params: DEISSN_SAMPLER_PARAMS_VERSION is 5"),
    (("#define DEISSN_SAMPLE_STATS_VERSION 1", "#define DEISSN_SAMPLE_STATS_VERSION 2"),
     "deissn_sample_stats: DEISSN_SAMPLE_STATS_VERSION is 2"),
    (("    int32_t has_sums; ", "    uint32_t has_sums; "), "deissn_normtable_info.has_sums"),
    (("    double tau_end; ", "    float tau_end; "), "deissn_schedule_params.tau_end: (offset, size)"),
    (("    int32_t method;     /*", "    uint32_t method;     /*"),
     "deissn_sampler_params.method: uint32_t"),
    (("    double error_low, error_high;", "    double error_low; float error_high;"),
     "deissn_plan.error_high: float"),
    (("typedef struct deissn_normtable_info {", "typedef struct deissn_new { int a; } deissn_new;\n"
      "typedef struct deissn_normtable_info {"), "deissn_new: a public struct with no ctypes"),
])
def test_the_check_sees_header_changes(tmp_path, change, expect):
    """The comparison itself: each edit of a copy of the header is reported."""
    text = HEADER.read_text()
    assert change[0] in text, "the test's edit no longer applies: %r" % change[0]
    header = tmp_path / "deissn.h"
    header.write_text(text.replace(change[0], change[1], 1))
    problems = layout_problems(header, tmp_path)
    assert any(expect in p for p in problems), problems
