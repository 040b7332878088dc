#!/bin/sh
# Regenerate the raw bindings from include/deissn.h with Debian's bindgen:
#     bindings/rust/deissn-sys/regenerate.sh [OUT]      (OUT defaults to src/bindings.rs)
# The output is committed; tests/bindings_current.rs fails when it no longer matches the header.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/src/bindings.rs}
exec bindgen "$here/../../../include/deissn.h" \
    --allowlist-function 'deissn_.*' --allowlist-type 'deissn_.*' --allowlist-var 'DEISSN_.*' \
    --size_t-is-usize --output "$out" -- -I"$here/../../../include"
