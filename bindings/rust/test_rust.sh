#!/bin/sh
# Run the Rust bindings' tests (cargo test --offline in this workspace) and report them in
# tests/run.sh's form: FAIL/SKIP lines, then "N passed, N failed". Run from anywhere.
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v cargo >/dev/null; then
    echo "SKIP rust bindings: cargo is not installed"
    echo "0 passed, 0 failed, 1 skipped"
    exit 0
fi
# --nocapture shows the tests' own "skipped: ..." and "SKIP ..." lines.
out=$(cd "$here" && cargo test --offline -- --nocapture 2>&1); rc=$?
printf '%s\n' "$out" | sed -n -e 's/^test \(.*\) \.\.\. FAILED$/FAIL \1/p' \
    -e 's/^skipped: /SKIP /p' -e 's/^SKIP /SKIP /p'
sum() { printf '%s\n' "$out" | sed -n "s/^test result: .* \([0-9][0-9]*\) $1.*/\1/p" \
        | awk '{ n += $1 } END { print n + 0 }'; }
passed=$(sum passed); failed=$(sum failed)
if [ $rc -ne 0 ] && [ "$failed" -eq 0 ]; then
    printf '%s\n' "$out" | grep -v '^\s*$' | tail -n 20 | sed 's/^/# /'
    failed=1
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
