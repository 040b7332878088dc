#!/bin/sh
# The evaluation tools' tests: the baselines (DPM-Solver++ and UniPC, test_baselines.py) and
# the recorded preset search against lib/preset.c and docs/quality.md (test_presets_data.py),
# reported in tests/run.sh's form. Needs the built library (the deissn binding).
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/../../tests/run_pytest.sh" "eval tools" numpy,pytest,torch "$here/test_baselines.py" \
    "$here/test_presets_data.py"
