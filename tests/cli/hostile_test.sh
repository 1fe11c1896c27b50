#!/usr/bin/env bash
# cutrain-train against hostile inputs (the error contract, docs/errors.md): a diverged run ends
# promptly with an error, outputs never replace inputs, empty paths are refused, an unwritable
# metrics file is an error, a pipe is read or refused (never waited on forever). Each case fails
# on a tool that hangs, exits 0 or loses data.
source "$(dirname "$0")/common.sh" "$1"  # $bin, $tmp, fail (its own expect_* below)

# rc of a run limited to 60 s (124: it hung), its stderr in $tmp/err
run_limited() {
  timeout 60 "$bin" "$@" >"$tmp/out" 2>"$tmp/err"
}
expect_exit() {  # rc text args...
  local want=$1 text=$2; shift 2
  run_limited "$@"
  rc=$?
  [ $rc -eq "$want" ] || fail "$* exited $rc, expected $want: $(cat "$tmp/err")"
  [ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "$*: expected one line, got: $(cat "$tmp/err")"
  grep -qF -- "$text" "$tmp/err" || fail "$*: message does not say '$text': $(cat "$tmp/err")"
}
expect_usage_error() { expect_exit 2 "$@"; }  # a flag's value (docs/errors.md)
expect_file_error() { expect_exit 1 "$@"; }   # a file's content

python3 - "$tmp" <<'PY' || fail "writing CSV files"
import random, sys
random.seed(5)
for name, rows in (("train", 300), ("test", 100)):
    with open(f"{sys.argv[1]}/{name}.csv", "w") as f, open(f"{sys.argv[1]}/r{name}.csv", "w") as r:
        f.write("a,b,label\n")
        r.write("a,b,y\n")
        for _ in range(rows):
            k = random.randrange(3)
            f.write(f"{k + random.gauss(0, 0.3)},{random.gauss(0, 1)},{k}\n")
            a = random.gauss(0, 1)
            r.write(f"{a},{random.gauss(0, 1)},{3e38 if name == 'train' else a}\n")
PY
/usr/bin/python3 -c "
import numpy as np
np.save('$tmp/empty.npy', np.zeros((0, 2), np.float32))
np.save('$tmp/x.npy', np.random.default_rng(1).normal(size=(40, 2)).astype(np.float32))
np.save('$tmp/y.npy', (np.arange(40) % 3).astype(np.int64))" || fail "writing .npy files"
csv=(--train-csv "$tmp/train.csv" --test-csv "$tmp/test.csv" --target label --device cpu
     --hidden 8 --dropout 0)

# 1. Divergence ends the run with an error naming it, promptly (no hang), no outputs as data.
for lr in 1e30 1e6; do
  run_limited "${csv[@]}" --epochs 2 --optimizer sgd --lr "$lr" --predictions "$tmp/p.csv"
  rc=$?
  [ $rc -ne 124 ] || fail "--lr $lr: the run hung"
  [ $rc -eq 1 ] || fail "--lr $lr: exited $rc, expected 1"
  grep -q "training diverged in epoch" "$tmp/err" || fail "--lr $lr: $(cat "$tmp/err")"
  [ ! -e "$tmp/p.csv" ] || fail "--lr $lr: predictions of a diverged model were written"
done
run_limited "${csv[@]}" --epochs 1 --lr 1e30
[ $? -eq 1 ] && grep -q "diverged" "$tmp/err" || fail "adamw --lr 1e30: $(cat "$tmp/err")"
# A regression target of 3e38 overflows every squared error: every step skipped is divergence.
run_limited --train-csv "$tmp/rtrain.csv" --test-csv "$tmp/rtest.csv" --regression --device cpu \
  --hidden 8 --dropout 0 --epochs 1
[ $? -eq 1 ] && grep -q "diverged" "$tmp/err" || fail "target 3e38: $(cat "$tmp/err")"

# Weights grown huge with every gradient finite (no step skipped): outputs that overflow on the
# validation or test data are divergence too, not a NaN loss printed and predicted from.
for val in "" "--val-fraction 0.2"; do
  run_limited "${csv[@]}" --epochs 1 --schedule exponential --gamma 1e30 --lr 1e6 \
    --predictions "$tmp/p.csv" $val
  rc=$?
  [ $rc -eq 1 ] || fail "huge weights $val: exited $rc, expected 1: $(cat "$tmp/err")"
  grep -q "training diverged.*the \(validation\|trained model's test\) loss is" "$tmp/err" ||
    fail "huge weights $val: $(cat "$tmp/err")"
  [ ! -e "$tmp/p.csv" ] || fail "huge weights $val: predictions of a diverged model were written"
done

# 2. An output naming an input - directly, through a symlink or a hard link - is refused, and the
# input is left as it was.
cp "$tmp/train.csv" "$tmp/train.orig"
ln -s "$tmp/train.csv" "$tmp/link.csv"
ln "$tmp/train.csv" "$tmp/hard.csv"
for flag in --metrics --predictions --report --save --export-torch; do
  for target in "$tmp/train.csv" "$tmp/link.csv" "$tmp/hard.csv" "$tmp/../$(basename "$tmp")/train.csv"; do
    expect_usage_error "$flag '$target' is the file --train-csv reads" "${csv[@]}" --epochs 1 \
      "$flag" "$target"
  done
done
cmp -s "$tmp/train.csv" "$tmp/train.orig" || fail "the training file was modified"
"$bin" "${csv[@]}" --epochs 1 --save "$tmp/ck.safetensors" >/dev/null 2>&1 || fail "saving a checkpoint"
cp "$tmp/ck.safetensors" "$tmp/ck.orig"
expect_usage_error "--export-torch '$tmp/ck.safetensors' is the file --resume reads" "${csv[@]}" \
  --epochs 2 --resume "$tmp/ck.safetensors" --export-torch "$tmp/ck.safetensors"
expect_usage_error "--predictions '$tmp/test.csv' is the file --test-csv reads" "${csv[@]}" \
  --epochs 1 --predictions "$tmp/test.csv"
expect_usage_error "--metrics '$tmp/x.npy' is the file --train-npy reads" --train-npy \
  "$tmp/x.npy,$tmp/y.npy" --test-npy "$tmp/x.npy,$tmp/y.npy" --device cpu --metrics "$tmp/x.npy"
cmp -s "$tmp/ck.safetensors" "$tmp/ck.orig" || fail "the checkpoint was modified"
# --save over --resume is how a run continues in place: allowed.
"$bin" "${csv[@]}" --epochs 2 --resume "$tmp/ck.safetensors" --save "$tmp/ck.safetensors" \
  >/dev/null 2>"$tmp/err" || fail "--resume X --save X: $(cat "$tmp/err")"

# 19. Note [save over a run]: --save naming another run's checkpoint (the same command run again
# without --resume) or a model export, or another output naming a checkpoint, is refused and the
# file kept; --overwrite replaces it; a file of anything else is replaced as any output is.
"$bin" "${csv[@]}" --epochs 1 --save "$tmp/run1.safetensors" >/dev/null 2>&1 || fail "saving run1"
cp "$tmp/run1.safetensors" "$tmp/run1.before"
expect_usage_error "--save '$tmp/run1.safetensors' holds the checkpoint of a run trained to epoch 1" \
  "${csv[@]}" --epochs 1 --save "$tmp/run1.safetensors"
cmp -s "$tmp/run1.safetensors" "$tmp/run1.before" || fail "a refused --save changed the checkpoint"
"$bin" "${csv[@]}" --epochs 1 --export-torch "$tmp/export.safetensors" >/dev/null 2>&1 ||
  fail "exporting"
expect_usage_error "holds a model export" "${csv[@]}" --epochs 1 --save "$tmp/export.safetensors"
expect_usage_error "--export-torch '$tmp/run1.safetensors' holds the checkpoint of a run" \
  "${csv[@]}" --epochs 1 --export-torch "$tmp/run1.safetensors"
expect_usage_error "--report '$tmp/run1.safetensors' holds the checkpoint" "${csv[@]}" --epochs 1 \
  --report "$tmp/run1.safetensors"
cmp -s "$tmp/run1.safetensors" "$tmp/run1.before" || fail "a refused output changed the checkpoint"
"$bin" "${csv[@]}" --epochs 2 --save "$tmp/run1.safetensors" --overwrite >/dev/null 2>"$tmp/err" ||
  fail "--overwrite: $(cat "$tmp/err")"
cmp -s "$tmp/run1.safetensors" "$tmp/run1.before" && fail "--overwrite kept the old checkpoint"
expect_usage_error "--overwrite lets an output (--save, an export) replace a checkpoint: give one too" \
  "${csv[@]}" --epochs 1 --overwrite
echo "notes" >"$tmp/notes.safetensors"
"$bin" "${csv[@]}" --epochs 1 --save "$tmp/notes.safetensors" >/dev/null 2>"$tmp/err" ||
  fail "--save over a file that is no checkpoint: $(cat "$tmp/err")"

# Note [resume auto]: one command a restarted job repeats - a fresh start while --save's file is
# absent, a resume once it exists - ends with the weights of an uninterrupted run (a constant
# learning rate: the default schedule spans --epochs, which the first run sets to 1).
auto=("${csv[@]}" --schedule constant --save "$tmp/auto.safetensors" --resume auto)
"$bin" "${auto[@]}" --epochs 1 >"$tmp/out" 2>"$tmp/err" || fail "--resume auto, first: $(cat "$tmp/err")"
grep -q "resume auto: no checkpoint at $tmp/auto.safetensors yet" "$tmp/out" || fail "no fresh-start line"
"$bin" "${auto[@]}" --epochs 2 --export-torch "$tmp/auto_w.safetensors" >"$tmp/out" 2>"$tmp/err" ||
  fail "--resume auto, again: $(cat "$tmp/err")"
grep -q "resumed from $tmp/auto.safetensors after epoch 1" "$tmp/out" || fail "--resume auto did not resume"
"$bin" "${csv[@]}" --schedule constant --epochs 2 --export-torch "$tmp/whole_w.safetensors" \
  >/dev/null 2>&1 || fail "whole run"
cmp -s "$tmp/auto_w.safetensors" "$tmp/whole_w.safetensors" || fail "--resume auto: not the uninterrupted run's weights"
expect_usage_error "--resume auto continues the --save file when it exists: give --save" \
  "${csv[@]}" --epochs 1 --resume auto

# 8. A checkpoint resumes only the model it was written by: the same tensor shapes under another
# activation (or slope, or dropout rate) are refused - the flags' error, exit 2 - naming the
# module and where the checkpoint's own command is; the file is kept.
cp "$tmp/ck.safetensors" "$tmp/ck.before"
for change in "--activation tanh" "--activation leaky_relu"; do
  # shellcheck disable=SC2086
  run_limited "${csv[@]}" --epochs 3 --resume "$tmp/ck.safetensors" --save "$tmp/ck.safetensors" $change
  [ $? -eq 2 ] && grep -q "written by another model - its module" "$tmp/err" &&
    grep -q "describe $tmp/ck.safetensors shows the command" "$tmp/err" ||
    fail "--resume with $change: $(cat "$tmp/err")"
done
cmp -s "$tmp/ck.safetensors" "$tmp/ck.before" || fail "a refused resume modified the checkpoint"

# 9. Empty paths (an unset shell variable) are refused, naming the flag.
for flag in --resume --save --report --metrics --export-torch --predictions --init-from; do
  expect_usage_error "$flag was given an empty path" "${csv[@]}" --epochs 1 "$flag" ""
done

# 24. A file to read that is not there names the flag that gave it (--resume, --init-from and
# --model-from all take a .safetensors), before anything is read.
for flag in --resume --init-from; do
  expect_usage_error "$flag '$tmp/nothing': no such file" "${csv[@]}" --epochs 1 "$flag" \
    "$tmp/nothing"
done
expect_usage_error "--predict-csv '$tmp/nothing': no such file" "${csv[@]}" --epochs 1 \
  --predict-csv "$tmp/nothing" --predictions "$tmp/p.csv"
expect_usage_error "--model-from '$tmp/nothing': no such file" "${csv[@]:0:8}" --epochs 1 \
  --model-from "$tmp/nothing"
expect_usage_error "--train-npy '$tmp/nothing.npy': no such file" --train-npy \
  "$tmp/x.npy,$tmp/nothing.npy" --test-npy "$tmp/x.npy,$tmp/y.npy"
# A column that --categorical and --target (or --drop-columns) both claim is the flags' error.
expect_usage_error "--categorical 'label': cutrain: $tmp/train.csv: column 'label' is the label" \
  "${csv[@]}" --epochs 1 --categorical label
expect_usage_error "--categorical 'a,a': cutrain: $tmp/train.csv: categorical column 'a' given twice" \
  "${csv[@]}" --epochs 1 --categorical a,a

# 25. The full-batch optimizers train in eval mode: a fresh model with BatchNorm (the CNN's),
# whose running statistics nothing has learned, is refused naming why, not ended by BatchNorm's
# internal check; a trained one --model-from brings is fine-tuned with its statistics frozen
# (BatchNorm's eval-mode backward): its weights move, its running statistics stay.
expect_usage_error "--model cnn has BatchNorm2d layers" "${csv[@]:0:8}" --model cnn \
  --optimizer lbfgs --epochs 1
run_limited "${csv[@]}" --epochs 1 --batchnorm --export-torch "$tmp/bn.safetensors" ||
  fail "BatchNorm export: $(cat "$tmp/err")"
for opt in lbfgs newton-cg; do
  run_limited "${csv[@]:0:8}" --model-from "$tmp/bn.safetensors" --optimizer $opt --epochs 2 \
    --export-torch "$tmp/bn_$opt.safetensors" || fail "--model-from BatchNorm, $opt: $(cat "$tmp/err")"
  /usr/bin/python3 - "$tmp/bn.safetensors" "$tmp/bn_$opt.safetensors" <<'PY' || fail "$opt fine-tuning"
import json, struct, sys
def tensors(path):
    raw = open(path, 'rb').read()
    n = struct.unpack('<Q', raw[:8])[0]
    h = json.loads(raw[8:8 + n])
    h.pop('__metadata__')
    return {k: raw[8 + n + v['data_offsets'][0]:8 + n + v['data_offsets'][1]] for k, v in h.items()}
a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
stats = [k for k in a if k.endswith(('running_mean', 'running_var'))]
assert stats and all(a[k] == b[k] for k in stats), 'running statistics changed'
assert any(a[k] != b[k] for k in a if k.endswith('weight')), 'no weight moved'
PY
done

# 26. A validation fraction that holds out no sample is the flag's error (--patience and
# --monitor would have nothing to watch), as one that leaves none to train on is.
expect_usage_error "--val-fraction 0.2 of 2 training samples holds out none to validate on" \
  "${csv[@]}" --epochs 1 --train-subset 2 --val-fraction 0.2 --patience 1

# 27. Every output asked for is written, also by a run with no epoch to train: --epochs 0 saves
# the initial state (a resume from it is the run from the start), a resume at its last epoch
# saves where it stands to a new --save.
run_limited "${csv[@]}" --epochs 0 --save "$tmp/e0.safetensors" ||
  fail "--epochs 0 --save: $(cat "$tmp/err")"
[ -f "$tmp/e0.safetensors" ] || fail "--epochs 0 did not write --save"
run_limited "${csv[@]}" --epochs 2 --resume "$tmp/e0.safetensors" --save "$tmp/e2.safetensors" \
  --export-torch "$tmp/e2_export.safetensors" || fail "resume from epoch 0: $(cat "$tmp/err")"
run_limited "${csv[@]}" --epochs 2 --export-torch "$tmp/straight_export.safetensors" ||
  fail "2 epochs: $(cat "$tmp/err")"
cmp -s "$tmp/e2_export.safetensors" "$tmp/straight_export.safetensors" ||
  fail "a resume from the epoch-0 checkpoint is not the run from the start"
run_limited "${csv[@]}" --epochs 2 --resume "$tmp/e2.safetensors" --save "$tmp/e2_copy.safetensors" ||
  fail "resume at the last epoch: $(cat "$tmp/err")"
[ -f "$tmp/e2_copy.safetensors" ] || fail "a resume at its last epoch did not write --save"
# The same with a one-cycle schedule (the default CNN's), which refused --epochs 0 (a schedule
# over no step) - and so any test evaluation of an --init-from model with it.
run_limited "${csv[@]}" --epochs 0 --schedule onecycle --pct-start 0.5 --save "$tmp/e0c.safetensors" ||
  fail "--epochs 0 --schedule onecycle: $(cat "$tmp/err")"
run_limited "${csv[@]}" --epochs 2 --schedule onecycle --pct-start 0.5 --resume "$tmp/e0c.safetensors" \
  --export-torch "$tmp/e2c_export.safetensors" || fail "onecycle from epoch 0: $(cat "$tmp/err")"
run_limited "${csv[@]}" --epochs 2 --schedule onecycle --pct-start 0.5 \
  --export-torch "$tmp/straight_c_export.safetensors" || fail "2 onecycle epochs: $(cat "$tmp/err")"
cmp -s "$tmp/e2c_export.safetensors" "$tmp/straight_c_export.safetensors" ||
  fail "a one-cycle resume from the epoch-0 checkpoint is not the run from the start"

# 15. Optimizer moments without the weights they belong to.
expect_usage_error "--init-optimizer-from needs the weights" "${csv[@]}" --epochs 1 \
  --init-optimizer-from "$tmp/ck.safetensors"

# 4. A prediction file with no rows is refused, not answered with the test set's predictions.
expect_usage_error "--predict-npy '$tmp/empty.npy' has no rows" --train-npy "$tmp/x.npy,$tmp/y.npy" \
  --test-npy "$tmp/x.npy,$tmp/y.npy" --device cpu --epochs 1 --hidden 4 \
  --predict-npy "$tmp/empty.npy" --predictions "$tmp/pe.csv"
[ ! -e "$tmp/pe.csv" ] || fail "predictions written for an empty --predict-npy"

# 12. BatchNorm with a one-row last batch: refused before training with the fixes, and
# --drop-last trains.
run_limited "${csv[@]}" --epochs 1 --batchnorm --batch-size 299
[ $? -eq 1 ] && grep -q "the last batch of each epoch holds 1 row (300 rows in batches of 299)" \
  "$tmp/err" && grep -q "\-\-drop-last" "$tmp/err" || fail "BatchNorm, 1-row last batch: $(cat "$tmp/err")"
run_limited "${csv[@]}" --epochs 1 --batchnorm --batch-size 299 --drop-last ||
  fail "--drop-last: $(cat "$tmp/err")"

# 5. An implausible label is refused naming the file and the label, not trained on (bad_alloc in
# the confusion matrix later); labels a float cannot hold exactly are refused by the reader.
printf 'a,label\n0.5,0\n0.1,1\n0.7,100000\n0.2,1\n' >"$tmp/typo.csv"
expect_usage_error "--train-csv '$tmp/typo.csv' has the label 100000, which makes 100001 classes, more than --max-classes 1000" \
  --train-csv "$tmp/typo.csv" --test-csv "$tmp/typo.csv" --target label --device cpu --epochs 1
run_limited --train-csv "$tmp/typo.csv" --test-csv "$tmp/typo.csv" --target label --device cpu \
  --epochs 1 --hidden 2 --max-classes 200000 || fail "--max-classes 200000: $(cat "$tmp/err")"
printf 'a,label\n0.5,0\n0.1,1e9\n' >"$tmp/big.csv"
run_limited --train-csv "$tmp/big.csv" --test-csv "$tmp/big.csv" --target label --device cpu --epochs 1
[ $? -eq 1 ] && grep -q "big.csv:3: label 1e+09 is not below 2^24" "$tmp/err" ||
  fail "label 1e9: $(cat "$tmp/err")"

# 13. A data file with no rows is named as such before training, whichever flag gave it.
/usr/bin/python3 -c "
import numpy as np
np.save('$tmp/y0.npy', np.zeros((0,), np.int64))" || fail "writing .npy files"
expect_usage_error "--train-npy '$tmp/empty.npy' has no rows" --train-npy "$tmp/empty.npy,$tmp/y0.npy" \
  --test-npy "$tmp/x.npy,$tmp/y.npy" --device cpu --epochs 1 --val-fraction 0.1
expect_usage_error "--test-npy '$tmp/empty.npy' has no rows" --train-npy "$tmp/x.npy,$tmp/y.npy" \
  --test-npy "$tmp/empty.npy,$tmp/y0.npy" --device cpu --epochs 1

# 13. An export whose data spec does not fit its model is named before any data is read.
"$bin" "${csv[@]}" --epochs 1 --standardize --export-torch "$tmp/std.safetensors" >/dev/null 2>&1 ||
  fail "exporting a standardized model"
/usr/bin/python3 - "$tmp/std.safetensors" "$(dirname "$0")/../../tools" <<'PY' || fail "editing the export"
import json, sys
sys.path.insert(0, sys.argv[2])
import cutrain_torch
tensors, meta = cutrain_torch.read_tensors(sys.argv[1], with_metadata=True)
spec = json.loads(meta["cutrain.data"])
spec["standardize"] = {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}
meta["cutrain.data"] = json.dumps(spec)
cutrain_torch.save_tensors(sys.argv[1], tensors, meta)
PY
printf '0.5,1\n' >"$tmp/new.csv"
expect_usage_error "its data spec standardizes 3 features but the model takes 2" \
  --model-from "$tmp/std.safetensors" --predict-csv "$tmp/new.csv" --predictions "$tmp/np.csv"

# 14. Counts that would overflow the step count are refused, naming the flag.
expect_usage_error "--epochs: must be between 0 and 10^9" "${csv[@]}" --epochs 9223372036854775807

# 6. Decompression bombs: a gzipped CSV (no size in its header) stops at 200x its compressed
# size, within seconds and a bounded amount of memory; a gzipped checkpoint is refused unread.
python3 -c "import gzip,sys; open(sys.argv[1],'wb').write(gzip.compress(b'a,b,label\n' + b'0,0,0\n' * (24 << 20), 9))" \
  "$tmp/bomb.csv.gz" || fail "writing the CSV bomb"
# The memory bound (4 GB of address space) only where no sanitizer reserves its shadow memory.
# (ldd's whole output first: under pipefail, `ldd | grep -q` fails whenever grep exits before
# ldd has written everything - SIGPIPE - and the limit would then be kept under ASan.)
limit="ulimit -v 4000000"
libs=$(ldd "$bin" 2>/dev/null || true)
case "$libs" in *libasan* | *libtsan*) limit=":" ;; esac
($limit; expect_file_error "decompress it first (gunzip)" --train-csv "$tmp/bomb.csv.gz" --test-csv "$tmp/test.csv" \
  --target label --device cpu --epochs 1) || exit 1
"$bin" "${csv[@]}" --epochs 1 --save "$tmp/ok.safetensors" >/dev/null 2>&1 || fail "saving"
gzip -c "$tmp/ok.safetensors" >"$tmp/ok.safetensors.gz"
expect_file_error "is gzip-compressed, and this format is read only as written" "${csv[@]}" \
  --epochs 1 --resume "$tmp/ok.safetensors.gz"

# 7. A metrics file that cannot be written (a full disk) is an error, not metrics lost.
if [ -w /dev/full ]; then
  ln -s /dev/full "$tmp/full.csv"
  run_limited "${csv[@]}" --epochs 1 --metrics "$tmp/full.csv"
  rc=$?
  [ $rc -ne 0 ] || fail "--metrics on a full disk exited 0"
  grep -q "cannot write the metrics file" "$tmp/err" || fail "full disk: $(cat "$tmp/err")"
fi
# 16. Pipes and devices (Note [reading pipes]): bash's <(...) is read like the file; a named pipe
# nothing writes is an error within seconds, not a hang; a device with no end is refused.
run_limited --train-csv <(cat "$tmp/train.csv") --test-csv <(gzip -c "$tmp/test.csv") \
  --target label --device cpu --hidden 8 --dropout 0 --epochs 1 ||
  fail "CSV through process substitution: $(cat "$tmp/err")"
mkfifo "$tmp/silent.csv"
expect_file_error "'$tmp/silent.csv' is a pipe that gave no data" --train-csv "$tmp/silent.csv" \
  --test-csv "$tmp/test.csv" --target label --device cpu --epochs 1
expect_file_error "'$tmp/silent.csv' is a pipe that gave no data" --describe "$tmp/silent.csv"
# A model file --describe or --model-from reads twice (its modules, then its tensors): through a
# pipe the second read finds it drained, and says so.
expect_file_error "or it was read already: give a file" --describe <(cat "$tmp/ck.safetensors")
expect_file_error "'/dev/zero' is a device or socket, not a file or a pipe" --train-csv /dev/zero \
  --test-csv "$tmp/test.csv" --target label --device cpu --epochs 1

# 17. An output whose directory takes no new file - even where permission bits (root) say it
# would - is refused before training, not after it.
expect_usage_error "--report: cannot create files in '/proc'" "${csv[@]}" --epochs 1 \
  --report /proc/report.json
# 18. Outputs written whole (Note [outputs written whole]): a report or predictions file that
# cannot be finished (here: a 1 KiB file size limit, the write failing with EFBIG) leaves the
# previous one as it was, not truncated.
for flag in --report --predictions; do
  printf 'the previous run\n' >"$tmp/prev.out"
  cp "$tmp/prev.out" "$tmp/prev.orig"
  (trap '' XFSZ; ulimit -f 1; run_limited "${csv[@]}" --epochs 1 "$flag" "$tmp/prev.out")
  rc=$?
  [ $rc -eq 1 ] && grep -q -- "$flag: writing" "$tmp/err" || fail "$flag, size limit: rc $rc: $(cat "$tmp/err")"
  cmp -s "$tmp/prev.out" "$tmp/prev.orig" || fail "$flag: a failed write damaged the previous file"
done
# ... and a pipe or device is written in place, never renamed over (as root, --save /dev/null
# would have replaced the device node with a regular file).
mkfifo "$tmp/export.fifo"
cat "$tmp/export.fifo" >"$tmp/export.got" &
reader=$!
run_limited "${csv[@]}" --epochs 1 --export-torch "$tmp/export.fifo" ||
  fail "--export-torch to a named pipe: $(cat "$tmp/err")"
wait $reader
[ -p "$tmp/export.fifo" ] || fail "--export-torch replaced the named pipe with a file"
[ "$(head -c 8 "$tmp/export.got" | od -An -tu8 | tr -d ' ')" -gt 0 ] 2>/dev/null ||
  fail "--export-torch through a pipe: nothing arrived"
"$bin" --describe "$tmp/export.got" >/dev/null 2>"$tmp/err" || fail "the piped export: $(cat "$tmp/err")"
# This process's stdout is written where it points (here a file), after what was printed; the
# link /dev/stdout stays a link; a link's target is replaced and the link kept.
run_limited "${csv[@]}" --epochs 1 --report /dev/stdout --export-onnx /dev/fd/1 ||
  fail "--report /dev/stdout: $(cat "$tmp/err")"
[ ! -e /dev/stdout ] || [ -L /dev/stdout ] || fail "/dev/stdout is no longer a link"
grep -q "test accuracy" "$tmp/out" && grep -q '"test_accuracy"' "$tmp/out" ||
  fail "--report /dev/stdout: the report or the log is missing from stdout"
ln -s "$tmp/target.json" "$tmp/link.json"
run_limited "${csv[@]}" --epochs 1 --report "$tmp/link.json" || fail "--report via a link: $(cat "$tmp/err")"
[ -L "$tmp/link.json" ] && grep -q '"test_accuracy"' "$tmp/target.json" ||
  fail "--report via a link: the link was replaced or its target not written"
# 19. Outputs through pipes (Note [writing to pipes]): a named pipe that nothing reads is an error
# after a bounded wait, not a hang after training; --save refuses a pipe (it is rewritten every
# epoch and read back by --resume); a reader that leaves mid-write costs that output only - not the
# process (SIGPIPE) nor the outputs after it (Note [every output written]).
mkfifo "$tmp/unread.csv" "$tmp/unread.out"
expect_file_error "'$tmp/unread.csv' is a pipe that no process reads" "${csv[@]}" --epochs 1 \
  --metrics "$tmp/unread.csv"
expect_usage_error "--save: '$tmp/unread.out' is a pipe" "${csv[@]}" --epochs 1 --save "$tmp/unread.out"
rm -f "$tmp/after.json" "$tmp/after.csv"
run_limited "${csv[@]}" --epochs 1 --predictions "$tmp/unread.out" --export-torch >(true) \
  --export-onnx "$tmp/after.onnx" --report "$tmp/after.json"
rc=$?
[ $rc -eq 1 ] || fail "outputs through pipes: exited $rc, expected 1: $(cat "$tmp/err")"
grep -q -- "--predictions: '$tmp/unread.out' is a pipe that no process reads" "$tmp/err" &&
  grep -q -- "--export-torch: writing '/dev/fd/[0-9]*' failed: Broken pipe" "$tmp/err" &&
  grep -q "2 outputs could not be written (--predictions, --export-torch" "$tmp/err" ||
  fail "outputs through pipes: $(cat "$tmp/err")"
[ -s "$tmp/after.onnx" ] && grep -q '"test_accuracy"' "$tmp/after.json" ||
  fail "outputs through pipes: the outputs after the failed ones were not written"
# The log's reader leaving (`| head`) costs the log, not the run (it exited 141 by SIGPIPE).
rm -f "$tmp/after.json"
timeout 60 "$bin" "${csv[@]}" --epochs 1 --report "$tmp/after.json" 2>/dev/null | true
rc=${PIPESTATUS[0]}
[ $rc -eq 0 ] && grep -q '"test_accuracy"' "$tmp/after.json" ||
  fail "a log whose reader left: exited $rc"
# 20. Note [one run per checkpoint]: a run whose --save another process is writing (here a
# holder of its lock, as a duplicate of the command would be) is refused before its first step,
# the checkpoint left as it was; a run that finishes leaves no lock file beside its checkpoint.
if command -v flock >/dev/null; then
  "$bin" "${csv[@]}" --epochs 1 --save "$tmp/shared.safetensors" >/dev/null 2>&1 || fail "saving shared"
  [ ! -e "$tmp/.shared.safetensors.lock" ] || fail "a finished run left its lock file"
  cp "$tmp/shared.safetensors" "$tmp/shared.orig"
  flock -o "$tmp/.shared.safetensors.lock" sleep 30 >/dev/null 2>&1 &
  holder=$!
  # (up to 30 s for the holder to take the lock: a loaded machine starts processes slowly)
  for _ in $(seq 300); do flock -n "$tmp/.shared.safetensors.lock" true || break; sleep 0.1; done
  expect_file_error "checkpoint_path '$tmp/shared.safetensors' is being written by another run" \
    "${csv[@]}" --epochs 2 --save "$tmp/shared.safetensors" --resume auto
  cmp -s "$tmp/shared.safetensors" "$tmp/shared.orig" || fail "the refused run changed the checkpoint"
  pkill -P $holder sleep 2>/dev/null  # flock ends with its command
  wait $holder 2>/dev/null
fi
# 21. A training file with one class (the wrong --target) trained a model whose loss and gradient
# are 0 and reported test accuracy 1; it is refused, naming the file and the label.
python3 -c 'import random; random.seed(1); print("a,label"); [print(f"{random.gauss(0, 1)},ant") for _ in range(50)]' \
  >"$tmp/one_class.csv"
expect_usage_error "--train-csv '$tmp/one_class.csv': every one of its 50 labels is 'ant'" \
  --train-csv "$tmp/one_class.csv" --test-csv "$tmp/one_class.csv" --target label --device cpu
# 22. Note [feature columns by name]: a file whose header names the training file's feature
# columns in another order was tested or predicted by position, silently wrong; it is refused,
# naming the first column that differs. The same columns in the same order pass.
head -1 "$tmp/train.csv" | grep -qx "a,b,label" || fail "the fixture's header changed"
awk -F, 'BEGIN { OFS = "," } { print $2, $1, $3 }' "$tmp/test.csv" >"$tmp/swapped.csv"
expect_usage_error "--test-csv '$tmp/swapped.csv': its feature column 1 is 'b' where the training file had 'a'" \
  --train-csv "$tmp/train.csv" --test-csv "$tmp/swapped.csv" --target label --device cpu
cut -d, -f1,2 "$tmp/test.csv" >"$tmp/new.csv"
awk -F, 'BEGIN { OFS = "," } { print $2, $1 }' "$tmp/new.csv" >"$tmp/new_swapped.csv"
run_limited "${csv[@]}" --epochs 1 --export-torch "$tmp/ab.safetensors" || fail "export: $(cat "$tmp/err")"
expect_usage_error "--predict-csv '$tmp/new_swapped.csv': its feature column 1 is 'b'" \
  --model-from "$tmp/ab.safetensors" --predict-csv "$tmp/new_swapped.csv" \
  --predictions "$tmp/p.csv" --device cpu
run_limited --model-from "$tmp/ab.safetensors" --predict-csv "$tmp/new.csv" \
  --predictions "$tmp/p.csv" --device cpu || fail "the same columns: $(cat "$tmp/err")"
# 23. Note [CSV text is UTF-8]: a path is bytes, not always UTF-8 (a Latin-1 "deja.csv"); the
# command line holding it went into the checkpoint's and the report's JSON, and nlohmann's strict
# UTF-8 check ended the run. Such a byte is written as U+FFFD; the outputs are whole and parse.
latin=$(printf "$tmp/d\\xe9j\\xe0.csv")
cp "$tmp/train.csv" "$latin"
run_limited --train-csv "$latin" --test-csv "$tmp/test.csv" --target label --device cpu --epochs 1 \
  --save "$tmp/latin.safetensors" --report "$tmp/latin.json" ||
  fail "a path that is not UTF-8: $(cat "$tmp/err")"
python3 -c 'import json, sys; r = json.load(open(sys.argv[1], encoding="utf-8")); assert "\ufffd" in json.dumps(r, ensure_ascii=False), r' \
  "$tmp/latin.json" || fail "the report of a run with a path that is not UTF-8"
run_limited --describe "$tmp/latin.safetensors" || fail "--describe: $(cat "$tmp/err")"
# 28. Note [flags without training]: predicting with --model-from alone, or converting it to
# ONNX, took the training flags and ignored them without a word (--lr, --precision, --seed ...),
# and an --export-onnx beside --predictions exited 0 without its file. Each such flag is the
# flags' error, naming it; the ONNX file is written after the predictions.
for flag in "--lr 0.1" "--precision bf16" "--seed 3" "--ema 0.9" "--clip-norm 1"; do
  expect_usage_error "${flag% *}: --model-from with --predict-csv (or --predict-npy) and no training data only predicts" \
    --model-from "$tmp/ab.safetensors" --predict-csv "$tmp/new.csv" --predictions "$tmp/p.csv" $flag
  expect_usage_error "${flag% *}: --model-from with --export-onnx and no training data only converts" \
    --model-from "$tmp/ab.safetensors" --export-onnx "$tmp/ab.onnx" $flag
done
rm -f "$tmp/p.csv" "$tmp/ab.onnx"
run_limited --model-from "$tmp/ab.safetensors" --predict-csv "$tmp/new.csv" --predictions "$tmp/p.csv" \
  --export-onnx "$tmp/ab.onnx" --device cpu || fail "predictions and ONNX: $(cat "$tmp/err")"
[ -s "$tmp/p.csv" ] && [ -s "$tmp/ab.onnx" ] || fail "--predictions with --export-onnx: a file missing"
echo "hostile inputs: ok"
