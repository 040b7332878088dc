#!/bin/sh
# Run test programs, show their output, and add up their "N passed, N failed[, N skipped]"
# lines into one final line of the same form. Exits non-zero if any test failed or crashed.
passed=0; failed=0; skipped=0; status=0
for t in "$@"; do
    name=$(basename "$t")
    echo "== $name"
    out=$("$t" 2>&1); rc=$?
    printf '%s\n' "$out" | grep -v '^[0-9]* passed, [0-9]* failed' | grep -E '^(FAIL|SKIP|#)' || true
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
    p=$(printf '%s' "$line" | sed -n 's/^\([0-9]*\) passed.*/\1/p')
    f=$(printf '%s' "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
    s=$(printf '%s' "$line" | sed -n 's/.* \([0-9]*\) skipped.*/\1/p')
    if [ -z "$line" ] || { [ $rc -ne 0 ] && [ "${f:-0}" -eq 0 ]; }; then
        # crashed, or exited non-zero without reporting a failure: count it as one
        printf '%s\n' "$out" | tail -n 20
        echo "$name: exit status $rc without a failure report"
        f=$((${f:-0} + 1))
    fi
    [ -n "$line" ] && echo "$name: $line"
    passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0})); skipped=$((skipped + ${s:-0}))
    [ "${f:-0}" -ne 0 ] && status=1
done
echo
if [ $skipped -gt 0 ]; then echo "$passed passed, $failed failed, $skipped skipped"
else echo "$passed passed, $failed failed"; fi
exit $status
