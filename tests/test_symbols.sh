#!/bin/sh
# test_symbols.sh - docs/symbols.md lists exactly the symbols build/lib/libdeissn.so exports,
# each in the version node the library gives it, and every one is versioned. Run from the
# repository root after `make`.
LIB=${LIB:-build/lib/libdeissn.so}
pass=0; fail=0
ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
fix="run tools/gen-symbols-md.sh (or make symbols-md) and commit docs/symbols.md"

exported=$(tools/exported-symbols.sh "$LIB")
[ -n "$exported" ] && ok || bad "no exported symbols found in $LIB"
listed=$(sed -n 's/^| `\([^`]*\)` | \([A-Z0-9_.-]*\) |$/\1 \2/p' docs/symbols.md 2>/dev/null | sort)
[ -n "$listed" ] && ok || bad "docs/symbols.md is missing or lists no symbols; $fix"
printf '%s\n' "$exported" | while read -r s node; do
    case "$s" in deissn_*) ;; *) echo "FAIL $s is exported: only deissn_* may be" ;; esac
    [ "$node" != "-" ] || echo "FAIL $s has no version node (lib/deissn.map)"
done > /tmp/test_symbols.$$
if [ -s /tmp/test_symbols.$$ ]; then cat /tmp/test_symbols.$$; fail=$((fail + $(wc -l < /tmp/test_symbols.$$))); else ok; fi
rm -f /tmp/test_symbols.$$
missing=$(printf '%s\n' "$exported" | grep -vxF "$listed")
[ -z "$missing" ] && ok || bad "exported but not in docs/symbols.md as such (name node): $missing; $fix"
stale=$(printf '%s\n' "$listed" | grep -vxF "$exported")
[ -z "$stale" ] && ok || bad "in docs/symbols.md but not exported so: $stale; $fix"
dups=$(printf '%s\n' "$listed" | awk '{print $1}' | uniq -d)
[ -z "$dups" ] && ok || bad "listed twice in docs/symbols.md: $dups"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
