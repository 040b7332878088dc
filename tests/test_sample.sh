#!/bin/sh
# test_sample.sh - deissn-sample end to end with the shipped model and table: a PNG of the
# right size that decodes; the same seed gives the same bytes; sample k does not depend on the
# batch it is drawn in; bad options fail with a message. Run from the repository root.
PYTHON=${PYTHON:-/usr/bin/python3}
BIN=build/bin/deissn-sample
pass=0; fail=0; skip=0
ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

if [ ! -f models/fmnist_unet.pt ] || [ ! -f models/fmnist_unet.dsn ]; then
    echo "SKIP test_sample: the shipped model is not in models/"
    echo "0 passed, 0 failed, 1 skipped"; exit 0
fi
if ! $BIN -n 4 --steps 5 --out "$tmp/a.png" > "$tmp/out.txt" 2>&1; then
    bad "deissn-sample -n 4 --steps 5 failed: $(cat "$tmp/out.txt")"
else
    ok
    # the shipped table has plans: the default is the 5-NFE plan tuned on the model, reported
    grep -q "sampler .*(preset tuned)" "$tmp/out.txt" && grep -q "plan .*tuned for 5 NFE: held-out RMSE" "$tmp/out.txt" &&
        grep -q "model .* s" "$tmp/out.txt" && ok || bad "report: $(cat "$tmp/out.txt")"
    # 4 samples of 32x32 in a 2x2 grid with 2-pixel gutters: 70x70 gray
    size=$($PYTHON -c "from PIL import Image; im = Image.open('$tmp/a.png'); im.load(); print(im.size[0], im.size[1], im.mode)" 2>&1)
    [ "$size" = "70 70 L" ] && ok || bad "PNG size/mode: $size"
    $BIN -n 4 --steps 5 --out "$tmp/b.png" > /dev/null 2>&1 && cmp -s "$tmp/a.png" "$tmp/b.png" && ok || bad "same seed, different bytes"
    $BIN -n 4 --steps 5 --seed 1 --out "$tmp/c.png" > /dev/null 2>&1 && ! cmp -s "$tmp/a.png" "$tmp/c.png" && ok || bad "another seed gives the same image"
fi
# The noise and the sampler are batch-independent bit for bit (test_torch checks that on an
# analytic TorchScript model); a real network is not quite: libtorch's convolutions block
# the batch differently, which moves a few pixels by one gray level. Allow exactly that.
$BIN -n 16 --steps 5 --batch 4 --out "$tmp/b4.png" > "$tmp/b.txt" 2>&1 &&
    $BIN -n 16 --steps 5 --batch 16 --out "$tmp/b16.png" >> "$tmp/b.txt" 2>&1 && ok || bad "batched runs failed: $(cat "$tmp/b.txt")"
diff=$($PYTHON -c "
from PIL import Image
import numpy as np
a = np.asarray(Image.open('$tmp/b4.png'), dtype=int); b = np.asarray(Image.open('$tmp/b16.png'), dtype=int)
d = abs(a - b)
verdict = 'ok' if d.max() <= 1 and (d > 0).mean() < 1e-3 else 'bad'
print(verdict, 'max', d.max(), 'gray level(s), in a fraction', (d > 0).mean(), 'of the pixels')" 2>&1)
echo "# batch 4 vs batch 16: $diff"
case "$diff" in ok*) ok ;; *) bad "batch 4 and batch 16 differ by more than rounding: $diff" ;; esac
# A table records its model's settings: a conflicting one is refused, naming both.
$BIN --prediction v -n 1 --steps 2 --out "$tmp/x.png" > "$tmp/err.txt" 2>&1
[ $? -eq 2 ] && grep -q "prediction v_prediction differs from prediction=epsilon recorded in the table" "$tmp/err.txt" &&
    ok || bad "--prediction v against the shipped table: $(cat "$tmp/err.txt")"
$BIN --noise cosine -n 1 --steps 2 --out "$tmp/x.png" > "$tmp/err.txt" 2>&1
[ $? -eq 2 ] && grep -q "noise squaredcos_cap_v2 differs from noise=linear" "$tmp/err.txt" &&
    ok || bad "--noise cosine against the shipped table: $(cat "$tmp/err.txt")"
# Between tuned NFE the plan below is used, and said so; BEST when asked.
$BIN -n 1 --steps 30 --out "$tmp/x.png" > "$tmp/out30.txt" 2>&1 &&
    grep -q "tuned for 25 NFE (the nearest below)" "$tmp/out30.txt" && ok || bad "--steps 30: $(cat "$tmp/out30.txt")"
$BIN -n 1 --steps 5 --preset best --out "$tmp/x.png" > "$tmp/outb.txt" 2>&1 &&
    grep -q "(preset best)" "$tmp/outb.txt" && ! grep -q "plan " "$tmp/outb.txt" && ok || bad "--preset best: $(cat "$tmp/outb.txt")"
for args in "--steps 0" "--order 4" "--sampler euler" "--model /nonexistent.pt" \
            "--table /nonexistent.dsn" "--preset tuned --table tools/eval/fmnist_unet_table.pt" \
            "--preset fastest" "--sampler deis --corrector" "--shape 1,x"; do
    if $BIN $args -n 1 --out "$tmp/x.png" > "$tmp/err.txt" 2>&1; then bad "'$args' succeeded"
    elif grep -q "deissn-sample: " "$tmp/err.txt"; then ok
    else bad "'$args': no message: $(cat "$tmp/err.txt")"; fi
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
