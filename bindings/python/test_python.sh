#!/bin/sh
# The Python binding's tests, reported in tests/run.sh's form. Run from anywhere.
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/../../tests/run_pytest.sh" "python bindings" numpy,pytest "$here/tests"
