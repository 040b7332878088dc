#!/bin/sh
# run_pytest.sh NAME MODULES PATH... - run pytest on PATH with $PYTHON (default
# /usr/bin/python3) and report in tests/run.sh's form: FAIL/SKIP lines, then
# "N passed, N failed, N skipped". MODULES (comma-separated) must import, else one named skip.
name=$1; modules=$2; shift 2
PYTHON=${PYTHON:-/usr/bin/python3}
if ! "$PYTHON" -c "import $modules" 2>/dev/null; then
    echo "SKIP $name: $PYTHON lacks one of $modules (set PYTHON)"
    echo "0 passed, 0 failed, 1 skipped"
    exit 0
fi
out=$("$PYTHON" -m pytest -q -rfEs -p no:cacheprovider "$@" 2>&1); rc=$?
printf '%s\n' "$out" | sed -n -e 's/^FAILED /FAIL /p' -e 's/^ERROR /FAIL /p' \
    -e 's/^SKIPPED \[[0-9]*\] /SKIP /p'
summary=$(printf '%s\n' "$out" | tail -n 1)
count() { printf '%s' "$summary" | grep -oE "[0-9]+ $1" | grep -oE '^[0-9]+' || echo 0; }
passed=$(count passed); failed=$(( $(count failed) + $(count error) )); skipped=$(count skipped)
if [ $rc -ne 0 ] && [ $failed -eq 0 ]; then
    printf '%s\n' "$out" | tail -n 20 | sed 's/^/# /'
    failed=1
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
