#!/bin/sh
# test_symbols.sh - docs/symbols.md lists exactly the symbols build/lib/libdeissn.so exports,
# each with a version. Run from the repository root after `make`.
LIB=${LIB:-build/lib/libdeissn.so}
pass=0; fail=0
ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
fix="run tools/gen-symbols-md.sh (or make symbols-md) and commit docs/symbols.md"

exported=$(nm -D --defined-only "$LIB" | awk '$2 ~ /^[TDBRV]$/ {sub(/@.*/, "", $3); print $3}' | sort -u)
[ -n "$exported" ] && ok || bad "no exported symbols found in $LIB"
listed=$(sed -n 's/^| `\([^`]*\)` | \([0-9][0-9.]*\) |$/\1/p' docs/symbols.md 2>/dev/null | sort)
[ -n "$listed" ] && ok || bad "docs/symbols.md is missing or lists no symbols; $fix"
for s in $exported; do
    printf '%s\n' "$listed" | grep -qx "$s" && ok || bad "$s is exported but not in docs/symbols.md; $fix"
done
for s in $listed; do
    printf '%s\n' "$exported" | grep -qx "$s" && ok || bad "$s is in docs/symbols.md but not exported; $fix"
done
dups=$(printf '%s\n' "$listed" | uniq -d)
[ -z "$dups" ] && ok || bad "listed twice in docs/symbols.md: $dups"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
