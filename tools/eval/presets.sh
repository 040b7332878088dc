#!/bin/sh
# Regenerate the preset search behind docs/quality.md ("against DPM-Solver++ and UniPC") and
# docs/presets.md: for each model, every libdeissn configuration and every baseline
# configuration at NFE 5 and 10; at 6, 8, 15 and 20 every baseline configuration and
# libdeissn's configurations without karras spacing (stage 1, 32 samples); the choice of BEST
# among the best candidates on 256 fresh samples (stage 2); BEST and each method's best on
# 256 other samples (stage 3) and the FD; the tables and the plot. About an hour per model on
# one core (the two models run one after the other); `make eval-presets` runs it.
# (The run recorded in docs/ was made in pieces with the same settings: see docs/presets.md.)
#
# SMOKE=1 runs the same pipeline on a few samples into build/eval/smoke/ and leaves docs/
# alone (a check that the script works, in minutes).
set -eu
cd "$(dirname "$0")/../.."
PY=${PYTHON:-/usr/bin/python3}
S=tools/eval/search.py
N1=32 N2=256 GT=500 FD=1000 NFE1=5,10 NFE2=6,8,15,20
if [ "${SMOKE:-0}" = 1 ]; then
    N1=4 N2=4 GT=40 FD=64 NFE1=5 NFE2=6
    export DEISSN_EVAL_OUT=build/eval/smoke
fi
for m in fmnist fmnist-small; do
    $PY $S --model $m --samples $N1 --gt-steps $GT --threads 1 \
        --spacings quadratic,trailing,uniform,power1.25,power1.5,power1.75,power2,logsnr,karras \
        --orders 1,2,3 --nfe $NFE1 --tag _all --baseline-lof-end-only \
        --baseline-spacings logsnr,time_uniform,time_quadratic,power1.5
    $PY $S --model $m --samples $N1 --gt-steps $GT --threads 1 --quick \
        --lib-methods deis-sn,deis,deis-x0 --orders 1,2,3 --nfe $NFE2 --tag _focus \
        --spacings quadratic,trailing,uniform,power1.25,power1.5,power1.75,power2,logsnr
    $PY $S --model $m --samples $N1 --gt-steps $GT --threads 1 --lib-methods none \
        --baseline-spacings logsnr,time_uniform,time_quadratic,power1.5 --baseline-lof-end-only \
        --nfe $NFE2 --tag _bfocus
    $PY $S --model $m --merge _all,_focus,_bfocus
done
# Stage 2: 32 samples rank the configurations but leave their ratios uncertain by tens of
# percent, so the choice is made among the best candidates on 256 fresh samples...
for m in fmnist fmnist-small; do
    $PY $S --model $m --select --samples $N2 --gt-steps $GT --threads 1
done
$PY $S --choose --stage _select   # compare with BEST in lib/preset.c
# ...and stage 3 reports BEST and each method's best on 256 other samples, plus the FD.
for m in fmnist fmnist-small; do
    $PY $S --model $m --confirm --samples $N2 --gt-steps $GT --threads 1
    $PY $S --model $m --fd $FD --threads 1
done
[ "${SMOKE:-0}" = 1 ] && exit 0
$PY $S --report      # docs/quality.md
$PY $S --plot        # docs/img/presets_rmse.png
