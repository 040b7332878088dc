#!/bin/sh
# test_build.sh - what users of the built artifacts rely on: the header compiles as C99 and as
# C++, the shared library exports exactly the header's functions (deissn_* only) under the
# soname the header's DEISSN_ABI names, it needs nothing but libc, libm and zlib (libtorch is
# the plug-in's), every version number agrees with the header's, and `make install` followed
# by pkg-config or CMake's find_package links and runs examples/minimal.c.
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
hdr() { sed -n "s/^#define DEISSN_$1 \\([0-9]*\\)\$/\\1/p" include/deissn.h; }
abi=$(hdr ABI); version="$(hdr VERSION_MAJOR).$(hdr VERSION_MINOR).$(hdr VERSION_PATCH)"
soname=$(readelf -d "$LIB" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
[ -n "$abi" ] && [ "$soname" = "libdeissn.so.$abi" ] && ok || bad "soname is '$soname', want libdeissn.so.$abi (DEISSN_ABI)"
grep -q "^#define DEISSN_VERSION_STRING \"$version\"\$" include/deissn.h && ok ||
    bad "DEISSN_VERSION_STRING is not $version (the header's MAJOR.MINOR.PATCH)"
[ -f "build/lib/libdeissn.so.$version" ] && ok || bad "no build/lib/libdeissn.so.$version: the Makefile's VERSION is not the header's"
# libdeissn.so needs the C library, libm and zlib only.
needed=$(readelf -d "$LIB" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort | tr '\n' ' ')
extra=$(printf '%s\n' $needed | grep -vE '^(libc\.so\.6|libm\.so\.6|libz\.so\.1|ld-linux[-a-z0-9_.]*\.so\.[0-9])$' || true)
[ -z "$extra" ] && ok || bad "libdeissn.so needs more than libc, libm and zlib: $extra (all: $needed)"
for toml in bindings/rust/deissn/Cargo.toml bindings/rust/deissn-sys/Cargo.toml; do
    v=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$toml" | head -1)
    [ "$v" = "$version" ] && ok || bad "$toml has version $v, the header $version"
done

if $MAKE -s install PREFIX="$tmp/prefix" > "$tmp/install.log" 2>&1; then ok; else bad "make install failed"; cat "$tmp/install.log"; fi
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
if flags=$(pkg-config --cflags --libs deissn); then ok; else bad "pkg-config does not find deissn"; fi
if $CC -std=c99 -Wall -Wextra -Werror examples/minimal.c $flags -Wl,-rpath,"$tmp/prefix/lib" -lm -o "$tmp/minimal"; then ok; else bad "examples/minimal.c does not build against the installed library"; fi
out=$("$tmp/minimal") && case "$out" in done:*) ok ;; *) bad "minimal printed: $out" ;; esac || bad "minimal failed: $out"
if [ -f "$tmp/prefix/include/deissn.h" ] && [ -x "$tmp/prefix/bin/deissn-inspect" ]; then ok; else bad "install is missing the header or tools"; fi
if [ -f build/lib/libdeissn-torch.so.$abi ]; then
    [ -f "$tmp/prefix/lib/libdeissn-torch.so.$abi" ] && ok || bad "install is missing the torch plug-in"
fi
# CMake: a consumer project finds the installed library with find_package(deissn 0.3).
if command -v cmake > /dev/null; then
    if cmake -S tests/cmake -B "$tmp/cmake" -DCMAKE_PREFIX_PATH="$tmp/prefix" \
            -DMINIMAL_SOURCE="$PWD/examples/minimal.c" -DCMAKE_BUILD_RPATH="$tmp/prefix/lib" \
            > "$tmp/cmake.log" 2>&1 && cmake --build "$tmp/cmake" >> "$tmp/cmake.log" 2>&1; then
        ok
        out=$("$tmp/cmake/minimal") && case "$out" in done:*) ok ;; *) bad "CMake-built minimal printed: $out" ;; esac || bad "CMake-built minimal failed: $out"
    else
        bad "find_package(deissn) consumer does not configure or build:"; cat "$tmp/cmake.log"
    fi
    # The version file accepts every version of this ABI up to this one (ABI 1 began with
    # 0.3.0) and refuses the rest: a newer version, an older ABI's.
    for want in 0.3 $(echo "$version" | cut -d. -f1,2); do
        if cmake -S tests/cmake -B "$tmp/cmake-$want" -DCMAKE_PREFIX_PATH="$tmp/prefix" \
                -DMINIMAL_SOURCE="$PWD/examples/minimal.c" -DDEISSN_WANT=$want > /dev/null 2>&1
        then ok; else bad "find_package(deissn $want) refused version $version"; fi
    done
    for want in 9.0 0.2 0.99; do
        if cmake -S tests/cmake -B "$tmp/cmake-$want" -DCMAKE_PREFIX_PATH="$tmp/prefix" \
                -DMINIMAL_SOURCE="$PWD/examples/minimal.c" -DDEISSN_WANT=$want > /dev/null 2>&1
        then bad "find_package(deissn $want) accepted version $version"; else ok; fi
    done
else
    echo "SKIP CMake consumer: cmake is not installed (tools/install-deps.sh installs it)"
fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
