#!/bin/sh
# The evaluation baselines' tests (DPM-Solver++ and UniPC, tools/eval/test_baselines.py),
# reported in tests/run.sh's form. Needs the built library (the deissn binding).
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/../../tests/run_pytest.sh" "eval baselines" numpy,pytest,torch "$here/test_baselines.py"
