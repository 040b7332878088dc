#!/bin/sh
# Regenerate the raw bindings from include/deissn.h with Debian's bindgen:
#     bindings/rust/deissn-sys/regenerate.sh [OUT]      (OUT defaults to src/bindings.rs)
# The output is committed; tests/bindings_current.rs fails when its declarations no longer
# match the header's (by any bindgen: Debian 12's 0.60 or Debian 13's 0.71).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/src/bindings.rs}
# size_t as usize: an option up to bindgen 0.60, the only behaviour from 0.61 on (0.71 refuses
# the option).
usize=""
bindgen --help 2>&1 | grep -q -- '--size_t-is-usize' && usize=--size_t-is-usize
exec bindgen "$here/../../../include/deissn.h" \
    --allowlist-function 'deissn_.*' --allowlist-type 'deissn_.*' --allowlist-var 'DEISSN_.*' \
    $usize --output "$out" -- -I"$here/../../../include"
