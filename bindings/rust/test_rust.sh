#!/bin/sh
# Run the Rust bindings' tests (cargo test --offline in this workspace) and report them in
# tests/run.sh's form: FAIL/SKIP lines, then "N passed, N failed, N skipped". Run from anywhere.
#
# A test that cannot run returns early after printing "skipped: TEST: WHY"; cargo counts it
# as passed, so it is moved from passed to skipped here. A test that runs but leaves some of
# its cases out prints "SKIP TEST: case ...: WHY" for each, and each counts as one skip.
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v cargo >/dev/null; then
    echo "SKIP rust bindings: cargo is not installed"
    echo "0 passed, 0 failed, 1 skipped"
    exit 0
fi
# --nocapture shows the tests' own "skipped: ..." and "SKIP ..." lines; --no-fail-fast runs
# the other test binaries after one fails, so that all are counted.
out=$(cd "$here" && cargo test --offline --no-fail-fast -- --nocapture 2>&1); rc=$?
printf '%s\n' "$out" | sed -n -e 's/^test \(.*\) \.\.\. FAILED$/FAIL \1/p' \
    -e '/^SKIP /p' -e 's/^skipped: /SKIP /p'
sum() { printf '%s\n' "$out" | sed -n "s/^test result: .* \([0-9][0-9]*\) $1.*/\1/p" \
        | awk '{ n += $1 } END { print n + 0 }'; }
lines() { printf '%s\n' "$out" | grep -c "^$1" ; }
passed=$(sum passed); failed=$(sum failed)
skipped_tests=$(lines 'skipped: '); skipped_cases=$(lines 'SKIP ')
passed=$((passed - skipped_tests)); [ $passed -ge 0 ] || passed=0
if [ $rc -ne 0 ] && [ "$failed" -eq 0 ]; then
    printf '%s\n' "$out" | grep -v '^\s*$' | tail -n 20 | sed 's/^/# /'
    failed=1
fi
echo "$passed passed, $failed failed, $((skipped_tests + skipped_cases)) skipped"
[ "$failed" -eq 0 ]
