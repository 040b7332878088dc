#!/bin/sh
# test_tools.sh - the command-line tools (deissn-sample, deissn-calibrate, deissn-inspect)
# against the bad inputs of issue #12: each must be refused before any work, with exit status 2
# (a bad command line) or 1 (a failed run), a message that names the option or file, and no
# file changed. Run from the repository root; TOOLS_BIN=DIR runs other builds of the tools
# (that is how these tests were checked against the tools before the fixes).
PYTHON=${PYTHON:-/usr/bin/python3}
BIN=${TOOLS_BIN:-build/bin}
SAMPLE=$BIN/deissn-sample CAL=$BIN/deissn-calibrate INSPECT=$BIN/deissn-inspect
pass=0; fail=0; skip=0
ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# refuse STATUS REGEX CMD...: CMD exits with STATUS and its stderr matches REGEX (grep -E).
refuse() {
    want=$1 re=$2; shift 2
    "$@" > "$tmp/out" 2> "$tmp/err"; rc=$?
    if [ $rc -ne "$want" ]; then bad "$*: exit status $rc, not $want: $(head -c 300 "$tmp/err")"
    elif ! grep -Eq -- "$re" "$tmp/err"; then bad "$*: message does not match '$re': $(head -c 300 "$tmp/err")"
    else ok; fi
}

# ---- 7: every number is checked whole, in range, and the message names the option ----------
for v in 1e9 4294967297 10abc; do
    refuse 2 "^deissn-inspect: --steps: '$v' is not a whole number in 1\.\." $INSPECT --steps "$v"
done
refuse 2 "^deissn-inspect: --order: 'abc' is not a whole number in 0\.\.3" $INSPECT --order abc
refuse 2 "^deissn-inspect: --tau-end: 'abc' is not a number in \[0, 1\)" $INSPECT --tau-end abc
S="-n 1 --steps 2 --out $tmp/x.png"
refuse 2 "^deissn-sample: --steps: '4294967297' is not a whole number in 1\.\.1000$" $SAMPLE $S --steps 4294967297
refuse 2 "^deissn-sample: --order: '-1' is not a whole number in 0\.\.3$" $SAMPLE $S --order -1
refuse 2 "^deissn-sample: --shape: '1,32,32,3' is not C,H,W" $SAMPLE $S --shape 1,32,32,3
refuse 2 "^deissn-sample: --seed: '-1' is not a whole number" $SAMPLE $S --seed -1
refuse 2 "^deissn-sample: --sampler ddim is order 0" $SAMPLE $S --sampler ddim --order 3
refuse 2 "^deissn-calibrate: --samples: '1e3' is not a whole number" $CAL --model m.pt --samples 1e3
[ ! -e "$tmp/x.png" ] && ok || bad "a refused deissn-sample wrote $tmp/x.png"
# options that the mode would ignore are refused, not dropped
refuse 2 "^deissn-calibrate: --steps applies to a calibration run \(--model\), not to --merge" \
    $CAL --merge a.dsn b.dsn --steps 10 --out c.dsn
refuse 2 "^deissn-calibrate: --seed applies to a calibration run \(--model\), not to --csv" \
    $CAL --csv a.dsn --seed 1 --out a.csv
refuse 2 "^deissn-inspect: --clip applies to a --table" $INSPECT --clip 3

# ---- 1: no size product wraps ------------------------------------------------------------
# 2^52 samples of 1x32x32 floats are 2^64 bytes: the product wrapped to 0 and the run wrote
# past a 0-byte buffer.
refuse 2 "^deissn-sample: -n 4503599627370496 samples of 1x32x32 floats do not fit in memory" \
    $SAMPLE -n 4503599627370496 --batch 1 --out "$tmp/x.png"
refuse 2 "^deissn-sample: a grid of 10000000000 samples of 32x32 is 3400002x3400002 pixels" \
    $SAMPLE -n 10000000000 --out "$tmp/x.png"
refuse 2 "^deissn-calibrate: --shape: '65536,65536,65536' is not C,H,W" \
    $CAL --model m.pt --samples 1 --shape 65536,65536,65536

# ---- 3: an output that is an input is refused, compared by device and inode ---------------
# unchanged FILE COPY: FILE still has the bytes of COPY.
unchanged() { cmp -s "$1" "$2" && ok || bad "$1 was changed"; }
GAUSS=tests/models/gaussian_eps.pt
cp tools/eval/fmnist_unet_table.pt "$tmp/t.pt" && cp "$tmp/t.pt" "$tmp/t.orig"
refuse 2 "^deissn-calibrate: --out $tmp/./t.pt is the same file as --csv $tmp/t.pt" \
    $CAL --csv "$tmp/t.pt" --out "$tmp/./t.pt"
unchanged "$tmp/t.pt" "$tmp/t.orig"
cp $GAUSS "$tmp/m.pt" && cp $GAUSS "$tmp/m.orig" && ln "$tmp/m.pt" "$tmp/m-hardlink.pt"
refuse 2 "^deissn-sample: --out $tmp/m-hardlink.pt is the same file as --model $tmp/m.pt" \
    $SAMPLE --model "$tmp/m.pt" --sampler deis -n 1 --steps 2 --out "$tmp/m-hardlink.pt"
unchanged "$tmp/m.pt" "$tmp/m.orig"
refuse 2 "^deissn-sample: --out $tmp/t.pt is the same file as --table $tmp/t.pt" \
    $SAMPLE --table "$tmp/t.pt" -n 1 --steps 2 --out "$tmp/t.pt"
unchanged "$tmp/t.pt" "$tmp/t.orig"
refuse 2 "^deissn-calibrate: --out $tmp/m.pt is the same file as --model $tmp/m.pt" \
    $CAL --model "$tmp/m.pt" --samples 1 --steps 2 --shape 1,2,2 --out "$tmp/m.pt"
unchanged "$tmp/m.pt" "$tmp/m.orig"

# ---- 8: deissn-inspect prints valid JSON whatever the table's path ------------------------
# A quote, a backslash, a tab and a newline must come back as the same string; a byte that
# is not UTF-8 as U+FFFD.
for name in 'we"ird.pt' 'back\slash.pt' "$(printf 'tab\tnew\nline.pt')" "$(printf 'latin\377.pt')"; do
    cp models/fmnist_unet.dsn "$tmp/$name"
    if ! $INSPECT --steps 3 --table "$tmp/$name" > "$tmp/plan.json" 2> "$tmp/err"; then
        bad "deissn-inspect --table '$name' failed: $(cat "$tmp/err")"; continue
    fi
    got=$(TABLE="$tmp/$name" $PYTHON -c '
import json, os, sys
d = json.load(open(sys.argv[1], "rb"))
want = os.fsencode(os.environ["TABLE"]).decode("utf-8", "replace")
print("ok" if d["table"] == want and len(d["steps_plan"]) == 3 else "table %r, want %r" % (d["table"], want))' \
        "$tmp/plan.json" 2>&1)
    [ "$got" = ok ] && ok || bad "deissn-inspect --table '$name': $got"
done

# ---- 11: deissn-sample and deissn-calibrate check the output before the model is loaded -----
# (the missing model would be the first error otherwise)
refuse 1 "^deissn-sample: --out /nonexistent/dir/o.png: cannot create it in /nonexistent/dir: No such file or directory" \
    $SAMPLE --model "$tmp/missing.pt" --sampler deis -n 1 --out /nonexistent/dir/o.png
refuse 1 "^deissn-sample: --out $tmp: is a directory" \
    $SAMPLE --model "$tmp/missing.pt" --sampler deis -n 1 --out "$tmp"
refuse 2 "^deissn-sample: --shape 2,8,8: a PNG holds 1 \(gray\) or 3 \(RGB\) channels, not 2" \
    $SAMPLE --model "$tmp/missing.pt" --sampler deis -n 1 --shape 2,8,8 --out "$tmp/x.png"
refuse 1 "^deissn-calibrate: --out /nonexistent/dir/t.dsn: cannot create it in /nonexistent/dir: No such file or directory" \
    $CAL --model "$tmp/missing.pt" --samples 1 --out /nonexistent/dir/t.dsn

# ---- 6: --merge adds up parts of one run only, each sample once ---------------------------
# The parts are made with the analytic Gaussian model; meta FILE KEY prints a key of the run
# record in FILE's metadata (through deissn-inspect's JSON).
meta() {
    $INSPECT --steps 2 --table "$1" 2>/dev/null | $PYTHON -c '
import json, sys
d = json.load(sys.stdin)
rec = dict(l.split("=", 1) for l in d["table_metadata"].splitlines())
print(rec.get(sys.argv[1], "(none)"), d["table_samples"])' "$2" 2>&1
}
part() { # part OUT ARGS...: a 10-step calibration of 1x4x4 samples
    out=$1; shift
    $CAL --model $GAUSS --steps 10 --shape 1,4,4 "$@" --out "$out" > /dev/null 2>&1 || bad "part $out ($*) failed"
}
part "$tmp/p0.dsn" --samples 4
part "$tmp/p1.dsn" --samples 4 --first 4
part "$tmp/all.dsn" --samples 8
part "$tmp/seed1.dsn" --samples 4 --seed 1
part "$tmp/wide.dsn" --samples 4 --first 8 --shape 1,4,8
$CAL --model tests/models/gaussian_x0.pt --steps 10 --shape 1,4,4 --samples 4 --first 8 \
    --out "$tmp/x0.dsn" > /dev/null 2>&1 || bad "part x0.dsn failed"
[ "$(meta "$tmp/p1.dsn" samples)" = "0:4-8 4" ] && ok || bad "p1.dsn records samples $(meta "$tmp/p1.dsn" samples)"
[ "$(meta "$tmp/p1.dsn" shape)" = "1,4,4 4" ] && ok || bad "p1.dsn records shape $(meta "$tmp/p1.dsn" shape)"
refuse 0 "merged 2 tables" $CAL --merge "$tmp/p0.dsn" "$tmp/p1.dsn" --out "$tmp/m.dsn"
[ "$(meta "$tmp/m.dsn" samples)" = "0:0-8 8" ] && ok || bad "merged samples: $(meta "$tmp/m.dsn" samples)"
[ "$(meta "$tmp/m.dsn" sample_count)" = "8 8" ] && ok || bad "merged sample_count: $(meta "$tmp/m.dsn" sample_count)"
# 4 + 4 samples merged are 8 samples in one run, to the last bit
$CAL --csv "$tmp/m.dsn" --out "$tmp/m.csv" && $CAL --csv "$tmp/all.dsn" --out "$tmp/all.csv" &&
    cmp -s "$tmp/m.csv" "$tmp/all.csv" && ok || bad "merged 4 + 4 differs from 8 samples"
# other seeds are other samples
$CAL --merge "$tmp/p0.dsn" "$tmp/seed1.dsn" --out "$tmp/s.dsn" 2> "$tmp/err" &&
    [ "$(meta "$tmp/s.dsn" samples)" = "0:0-4,1:0-4 8" ] && ok ||
    bad "two seeds: $(cat "$tmp/err") $(meta "$tmp/s.dsn" samples)"
refuse 1 "^deissn-calibrate: --merge: $tmp/p0.dsn and $tmp/wide.dsn are from different runs: shape is 1,4,4 in $tmp/p0.dsn and 1,4,8 in $tmp/wide.dsn" \
    $CAL --merge "$tmp/p0.dsn" "$tmp/wide.dsn" --out "$tmp/bad.dsn"
refuse 1 "^deissn-calibrate: --merge: $tmp/p0.dsn and $tmp/x0.dsn are from different runs: model_(bytes|crc32) is" \
    $CAL --merge "$tmp/p0.dsn" "$tmp/x0.dsn" --out "$tmp/bad.dsn"
refuse 1 "^deissn-calibrate: --merge: $tmp/p0.dsn and $tmp/p0.dsn are the same file" \
    $CAL --merge "$tmp/p0.dsn" "$tmp/p0.dsn" --out "$tmp/bad.dsn"
cp "$tmp/p0.dsn" "$tmp/p0-copy.dsn"
refuse 1 "^deissn-calibrate: --merge: $tmp/p0.dsn and $tmp/p0-copy.dsn hold the same samples \(seed 0, samples 0-3 and 0-3\)" \
    $CAL --merge "$tmp/p0.dsn" "$tmp/p0-copy.dsn" --out "$tmp/bad.dsn"
refuse 1 "^deissn-calibrate: --merge: $tmp/m.dsn and $tmp/p1.dsn hold the same samples" \
    $CAL --merge "$tmp/m.dsn" "$tmp/p1.dsn" --out "$tmp/bad.dsn"
refuse 1 "^deissn-calibrate: --merge: $tmp/t.pt has no record of the run that made it" \
    $CAL --merge "$tmp/p0.dsn" "$tmp/t.pt" --out "$tmp/bad.dsn"
[ ! -e "$tmp/bad.dsn" ] && ok || bad "a refused --merge wrote $tmp/bad.dsn"
# a model path that is not UTF-8, and a note with a newline, are escaped in the record
odd="$tmp/$(printf 'm\377\\x.pt')"
cp $GAUSS "$odd"
$CAL --model "$odd" --steps 10 --shape 1,4,4 --samples 2 --metadata "$(printf 'a\nb')" \
    --out "$tmp/odd.dsn" 2> "$tmp/err" &&
    [ "$(meta "$tmp/odd.dsn" model)" = "$tmp/m\\xff\\\\x.pt 2" ] &&
    [ "$(meta "$tmp/odd.dsn" note)" = 'a\nb 2' ] && ok ||
    bad "odd names: $(cat "$tmp/err") $(meta "$tmp/odd.dsn" model) $(meta "$tmp/odd.dsn" note)"
refuse 0 "merged 2 tables" $CAL --merge "$tmp/p0.dsn" "$tmp/wide.dsn" --force-merge --out "$tmp/forced.dsn"
[ "$(meta "$tmp/forced.dsn" shape)" = "mixed 8" ] && ok || bad "forced merge records shape $(meta "$tmp/forced.dsn" shape)"

# ---- tuning in parts: --part K/N files, --references merges and searches ------------------
# The table (record, r(tau), plans) is the one-process run's, byte for byte.
TUNE="--model $GAUSS --shape 1,4,4 --nfe 3-4 --grid-steps 24 --fit 6 --holdout 4 --batch 2"
$CAL $TUNE --out "$tmp/one.dsn" > /dev/null 2>&1 || bad "tuning in one run failed"
for k in 1 2 3; do
    refuse 0 "wrote $tmp/part$k.dref in .* s: reference trajectories" \
        $CAL $TUNE --part $k/3 --out "$tmp/part$k.dref"
done
refuse 0 "wrote $tmp/three.dsn" $CAL $TUNE --references "$tmp/part3.dref" "$tmp/part1.dref" \
    "$tmp/part2.dref" --out "$tmp/three.dsn"
cmp -s "$tmp/one.dsn" "$tmp/three.dsn" && ok || bad "tuned in 3 parts differs from one run"
# The tool searches one NFE at a time (to time each); its plans and r(tau) are the library's
# one search over the whole range (deissn_tune through the binding), bit for bit.
PYTHONPATH=bindings/python $PYTHON -c '
import sys
import numpy as np
import deissn
tool = deissn.NormTable.load(sys.argv[1])
lib = deissn.tune(deissn.Model.load(sys.argv[2]), shape=(1, 4, 4), nfe=(3, 4), grid_steps=24,
                  fit_samples=6, holdout_samples=4, batch=2)
same = tool.plans == lib.plans and all(np.array_equal(a, b) for a, b in zip(tool.knots, lib.knots))
sys.exit(0 if same and len(tool.plans) == 2 else 1)' "$tmp/one.dsn" "$GAUSS" 2> "$tmp/err" &&
    ok || bad "the tool's plans differ from deissn_tune()'s: $(cat "$tmp/err")"
refuse 1 "deissn-calibrate: merging the references: .*leave out trajectories 2..5" \
    $CAL $TUNE --references "$tmp/part1.dref" "$tmp/part3.dref" --out "$tmp/x.dsn"
refuse 1 "deissn-calibrate: tuning: .*params->seed is not the reference's" \
    $CAL $TUNE --seed 1 --references "$tmp/part1.dref" "$tmp/part2.dref" "$tmp/part3.dref" \
    --out "$tmp/x.dsn"
head -c 100 "$tmp/part1.dref" > "$tmp/short.dref"
refuse 1 "deissn-calibrate: --references $tmp/short.dref: deissn_reference_from_bytes: truncated" \
    $CAL $TUNE --references "$tmp/short.dref" --out "$tmp/x.dsn"
refuse 2 "deissn-calibrate: --part \\(K\\): '4' is not a whole number in 1..3" $CAL $TUNE --part 4/3
refuse 2 "deissn-calibrate: --part 1/6: the run's 5 batches of 2 leave this part none" \
    $CAL $TUNE --part 1/6
refuse 2 "deissn-calibrate: --part solves a part, --references tunes" \
    $CAL $TUNE --part 1/2 --references "$tmp/part1.dref"
refuse 2 "deissn-calibrate: --references applies to a calibration run" \
    $CAL --merge "$tmp/p0.dsn" --references "$tmp/part1.dref" --out "$tmp/x.dsn"

# ---- a learned plan (METHOD_LEARNED): the tools name it, print its weights, sample with it ---
# The binding writes a table whose 4-NFE plan has the tuned times and the weights that make each
# step DDIM's (so --sampler ddim on those times must give the same PNG), beside a 3-NFE plan
# that is not learned.
PYTHONPATH=bindings/python $PYTHON -c '
import dataclasses, sys
import numpy as np
import deissn
table = deissn.NormTable.load(sys.argv[1])
plan = table.plans[1]
s = deissn.Schedule(noise="linear", taus=plan.taus, tau_end=plan.tau_end)
ab = s.alpha_bar(s.taus)
a, sig = np.sqrt(ab), np.sqrt(1 - ab)
w = np.zeros((plan.nfe, 6))
w[:, 0] = a[1:] / a[:-1]
w[:, 1] = sig[1:] - w[:, 0] * sig[:-1]
learned = dataclasses.replace(plan, method=deissn.Method.LEARNED, order=0, uses_table=False,
                              weights=tuple(map(tuple, w)))
other = dataclasses.replace(table.plans[0], method=deissn.Method.DATA, order=1,
                            uses_table=False, corrector=False, weights=())
table.with_plans([other, learned]).save(sys.argv[2])
np.save(sys.argv[3], w)' "$tmp/one.dsn" "$tmp/learned.dsn" "$tmp/w.npy" 2> "$tmp/err" ||
    bad "writing a table with a learned plan: $(cat "$tmp/err")"
if $INSPECT --preset tuned --steps 4 --table "$tmp/learned.dsn" > "$tmp/learned.json" 2> "$tmp/err"; then
    got=$($PYTHON -c '
import json, sys
import numpy as np
d = json.load(open(sys.argv[1]))
plan = d["plans"][1]
w = np.load(sys.argv[2])
checks = [d["method"] == "learned", d["table_used"] is False, plan["method"] == "learned",
          "weights" not in d["plans"][0], np.array(plan["weights"]).tobytes() == w.tobytes(),
          [s["psi"] for s in d["steps_plan"]] == w[:, 0].tolist()]
print("ok" if all(checks) else "checks %s" % checks)' "$tmp/learned.json" "$tmp/w.npy" 2>&1)
    [ "$got" = ok ] && ok || bad "deissn-inspect of a learned plan: $got"
else
    bad "deissn-inspect --preset tuned of a learned plan failed: $(cat "$tmp/err")"
fi
LEARNED="--model $GAUSS --table $tmp/learned.dsn --steps 4 -n 4 --shape 1,4,4"
$SAMPLE $LEARNED --out "$tmp/learned.png" > "$tmp/out" 2> "$tmp/err" &&
    grep -q "sampler  learned (the plan's weights), tuned times, 4 model evaluations (preset tuned)" \
    "$tmp/out" && grep -q "table    $tmp/learned.dsn (not used by this sampler)" "$tmp/out" &&
    ok || bad "deissn-sample with a learned plan says: $(cat "$tmp/out" "$tmp/err")"
$SAMPLE $LEARNED --sampler ddim --out "$tmp/ddim.png" > /dev/null 2> "$tmp/err" &&
    cmp -s "$tmp/learned.png" "$tmp/ddim.png" && ok ||
    bad "a learned plan with DDIM's weights samples other images than DDIM on its times"
refuse 2 "^deissn-sample: --spacing: the plan tuned for 4 NFE is learned" \
    $SAMPLE $LEARNED --spacing quadratic --out "$tmp/x.png"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
