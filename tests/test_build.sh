#!/bin/sh
# test_build.sh - what users of the built artifacts rely on: the header compiles as C99 and as
# C++, the shared library exports exactly the header's functions (deissn_* only) under the
# soname libdeissn.so.0, and `make install` + pkg-config links and runs examples/minimal.c.
# Run from the repository root after `make`; CC, CXX and MAKE may be set.
CC=${CC:-cc}; CXX=${CXX:-c++}; MAKE=${MAKE:-make}
LIB=build/lib/libdeissn.so
pass=0; fail=0
ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

printf '#include "deissn.h"\n#include "deissn.h"\nint main(void) { return deissn_version_number() == 0; }\n' > "$tmp/h.c"
if $CC -std=c99 -Wall -Wextra -Wpedantic -Werror -Iinclude -c "$tmp/h.c" -o "$tmp/c99.o"; then ok; else bad "header does not compile as C99"; fi
cp "$tmp/h.c" "$tmp/h.cpp"
if $CXX -std=c++11 -Wall -Wextra -Wpedantic -Werror -Iinclude -c "$tmp/h.cpp" -o "$tmp/cxx.o"; then ok; else bad "header does not compile as C++11"; fi
if nm "$tmp/cxx.o" | grep -q ' U deissn_version_number$'; then ok; else bad "C++ sees mangled names (extern \"C\" missing)"; fi

exported=$(nm -D --defined-only "$LIB" | awk '$2 == "T" || $2 == "D" || $2 == "B" {print $3}' | sed 's/@.*//' | sort)
others=$(printf '%s\n' "$exported" | grep -v '^deissn_' || true)
if [ -z "$others" ]; then ok; else bad "exported symbols outside deissn_*: $others"; fi
declared=$(sed -n 's/^DEISSN_API [^(]*[ *]\(deissn_[a-z0-9_]*\)(.*/\1/p' include/deissn.h | sort)
[ -n "$declared" ] && ok || bad "no DEISSN_API declarations found in include/deissn.h"
for f in $declared; do
    printf '%s\n' "$exported" | grep -qx "$f" && ok || bad "$f is declared but not exported"
done
for f in $exported; do
    printf '%s\n' "$declared" | grep -qx "$f" && ok || bad "$f is exported but not declared in deissn.h"
done
soname=$(readelf -d "$LIB" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
[ "$soname" = "libdeissn.so.0" ] && ok || bad "soname is '$soname', want libdeissn.so.0"

if $MAKE -s install PREFIX="$tmp/prefix" > "$tmp/install.log" 2>&1; then ok; else bad "make install failed"; cat "$tmp/install.log"; fi
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
if flags=$(pkg-config --cflags --libs deissn); then ok; else bad "pkg-config does not find deissn"; fi
if $CC -std=c99 -Wall -Wextra -Werror examples/minimal.c $flags -Wl,-rpath,"$tmp/prefix/lib" -lm -o "$tmp/minimal"; then ok; else bad "examples/minimal.c does not build against the installed library"; fi
out=$("$tmp/minimal") && case "$out" in done:*) ok ;; *) bad "minimal printed: $out" ;; esac || bad "minimal failed: $out"
if [ -f "$tmp/prefix/include/deissn.h" ] && [ -x "$tmp/prefix/bin/deissn-inspect" ]; then ok; else bad "install is missing the header or tools"; fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
