#!/usr/bin/env bash
# cutrain-train end to end: bad arguments exit 2 with a one-line error naming the flag; runs on
# a Fashion-MNIST subset train, save, resume and write reports that parse. CSV and NumPy data:
# tables_test.sh and folds_arrays_test.sh.
source "$(dirname "$0")/common.sh" "$1"
data=${2:-/usr/share/datasets/fashion-mnist}
expect_usage_error --optimizer --optimizer lion
expect_usage_error --lr --lr -1
expect_usage_error --data --data /nonexistent/dir
expect_usage_error --hidden --data "$tmp" --hidden 12,x --device cpu
expect_usage_error --batch-size --batch-size 0
expect_usage_error --target-accuracy --target-accuracy 1.5
expect_usage_error --bucket-mb --bucket-mb -1
expect_usage_error --checkpoint-every --data "$tmp" --checkpoint-every 10 --device cpu
expect_usage_error --accumulate --accumulate 0
expect_usage_error --precision --precision fp8
expect_usage_error "--precision fp16: the full-batch optimizers" --data "$tmp" --device cpu \
  --optimizer lbfgs --precision fp16
expect_usage_error "--precision tf32" --data "$tmp" --precision tf32 --device cpu
expect_usage_error --ema --ema 1.5
expect_usage_error "--export-dtype shapes the --export-torch file" --export-dtype bf16
expect_usage_error --export-dtype --export-torch "$tmp/w.safetensors" --export-dtype fp8
expect_usage_error --loss-scale --loss-scale static
expect_usage_error --rounding --rounding up
expect_usage_error "--rounding stochastic: the rounding of 16-bit parameters; this run computes in fp32" \
  --data "$tmp" --device cpu --rounding stochastic
expect_usage_error "does not use --loss-scale" --data "$tmp" --device cpu --optimizer lbfgs \
  --loss-scale dynamic
expect_usage_error --cuda-graph --cuda-graph sometimes
expect_usage_error "does not use --cuda-graph" --data "$tmp" --device cpu --optimizer lbfgs \
  --cuda-graph on
# Number checks say what is wanted (not CLI11's "not in range 0.000000 to 1797...") and refuse
# NaN and infinities.
expect_usage_error "--batch-size: must be > 0 (got 0)" --batch-size 0
expect_usage_error "--lr: must be a finite number (got nan)" --lr nan
expect_usage_error "--clip-norm: must be a finite number (got inf)" --clip-norm inf
expect_usage_error "--eps: '1e-8x' is not a number" --eps 1e-8x
# NaN passes every comparison-based range (CLI11's Range let --dropout nan train); every flag
# with a range refuses it.
for flag in --dropout --val-fraction --target-accuracy --bucket-mb --label-smoothing --ema \
  --beta1 --beta2 --alpha --dampening --pct-start --find-lr-min; do
  expect_usage_error "$flag: must be a finite number (got nan)" $flag nan
done
expect_usage_error "--dropout: must be in \\[0, 0.99\\] (got 1)" --dropout 1
# A float hyperparameter the float cannot hold is refused naming the flag, not as inf or 0 later.
expect_usage_error "--lr: '1e308' is too large for a float (at most 3.4e38)" --lr 1e308
expect_usage_error "--eps: '1e-320' is too small for a float (it would be 0)" --eps 1e-320
# Integers are whole numbers in their field's range: 2^64 was read as the largest int64, a
# seed of -1 as 2^64 - 1, both without a word.
expect_usage_error "--batch-size: '99999999999999999999' is too large (at most 2^63 - 1)" \
  --batch-size 99999999999999999999
expect_usage_error "--patience: '1.5' is not an integer" --patience 1.5
expect_usage_error "--augment-shift: must be in \\[0, 2^31 - 1\\] (got 3000000000)" \
  --augment-shift 3000000000
expect_usage_error "--seed: must be an integer in \\[0, 2^64 - 1\\] (got -1)" --seed -1
expect_usage_error "--seed: must be an integer in \\[0, 2^64 - 1\\] (got 18446744073709551616)" \
  --seed 18446744073709551616
# Outputs that could not be written at the end of a run are refused before it starts.
expect_usage_error "--save: directory '$tmp/none' does not exist" --data "$tmp" --device cpu \
  --save "$tmp/none/ck.safetensors"
expect_usage_error "--report: '$tmp' is a directory" --data "$tmp" --device cpu --report "$tmp"
expect_usage_error "--export-torch and --save both name" --data "$tmp" --device cpu \
  --save "$tmp/w.safetensors" --export-torch "$tmp/./w.safetensors"
expect_usage_error "--metrics: directory '$tmp/none' does not exist" --data "$tmp" --device cpu \
  --metrics "$tmp/none/m.csv"
expect_usage_error "--metrics: '$tmp/m.txt' must end in .csv or .jsonl" --data "$tmp" --device cpu \
  --metrics "$tmp/m.txt"
# Flags that would be silently ignored are refused, each named.
expect_usage_error "does not use --clip-norm, --resume" --data "$tmp" --device cpu \
  --optimizer lbfgs --resume "$tmp/x.safetensors" --clip-norm 1
expect_usage_error "--patience stops on the validation loss" --data "$tmp" --device cpu \
  --patience 3
expect_usage_error "--optimizer adam does not use --momentum, --alpha" --data "$tmp" --device cpu \
  --optimizer adam --momentum 0.9 --alpha 0.9
expect_usage_error "--schedule cosine does not use --gamma" --data "$tmp" --device cpu --gamma 0.5
expect_usage_error "--schedule cosine does not use --pct-start" --data "$tmp" --device cpu \
  --pct-start 0.2

if [ ! -d "$data" ]; then
  echo "skipped: no Fashion-MNIST at $data"
  exit 77
fi
expect_usage_error "--val-fraction 0.99 leaves none of the 10 training samples" --data "$data" \
  --device cpu --train-subset 10 --val-fraction 0.99 --epochs 1
expect_usage_error "--warmup 100 is not shorter than the run (2 epochs x 4 steps)" --data "$data" \
  --device cpu --train-subset 500 --epochs 2 --warmup 100
# An optimizer's options that contradict each other are the flags' error (exit 2), as in torch.
expect_usage_error "--optimizer sgd: .*nesterov = true requires momentum > 0 and dampening = 0" \
  --data "$data" --device cpu --train-subset 100 --epochs 1 --optimizer sgd --nesterov
# Flags for mpirun or a GPU run elsewhere, saying they have nothing to do (one command for every
# machine), as --sync-batchnorm on one rank does.
"$bin" --data "$data" --device cpu --train-subset 100 --epochs 1 --hidden 8 --resident-data \
  --bucket-mb 4 >"$tmp/elsewhere.txt" 2>&1 || fail "--resident-data --bucket-mb: $(tail -2 "$tmp/elsewhere.txt")"
grep -qx -- "--bucket-mb: one rank, no gradient all-reduce to bucket" "$tmp/elsewhere.txt" &&
  grep -qx -- "--resident-data: on the CPU the training set is in memory already" "$tmp/elsewhere.txt" ||
  fail "--resident-data / --bucket-mb said nothing: $(head -5 "$tmp/elsewhere.txt")"
# Note [synchronized batch statistics]: refused where there is no BatchNorm; one rank says so.
expect_usage_error "--sync-batchnorm: the model has no BatchNorm layer" --data "$data" \
  --device cpu --train-subset 100 --epochs 1 --sync-batchnorm
"$bin" --data "$data" --device cpu --train-subset 100 --epochs 1 --hidden 8 --batchnorm \
  --sync-batchnorm >"$tmp/sync.log" 2>&1 || fail "--sync-batchnorm on one rank: $(tail -3 "$tmp/sync.log")"
grep -q "^--sync-batchnorm: one rank, nothing to synchronize" "$tmp/sync.log" ||
  fail "--sync-batchnorm on one rank did not say so: $(head -12 "$tmp/sync.log")"
# --schedule plateau: the lr is halved after exactly the epochs whose validation loss is not a
# new best (ReduceLROnPlateau, patience 0, relative threshold 1e-4).
"$bin" --data "$data" --device cpu --train-subset 2000 --epochs 6 --schedule plateau \
  --plateau-patience 0 --gamma 0.5 --lr 0.01 --val-fraction 0.2 --hidden 32 \
  --metrics "$tmp/plateau.csv" >/dev/null 2>&1 || fail "plateau run"
python3 - "$tmp/plateau.csv" <<'PY' || fail "plateau schedule"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
lr = [float(r["lr"]) for r in rows]
val = [float(r["val_loss"]) for r in rows]
best, cuts = float("inf"), 0
for e in range(len(rows) - 1):
    worse = not val[e] < best * (1 - 1e-4)
    best = min(best, val[e])
    cuts += worse
    assert abs(lr[e + 1] - lr[e] * (0.5 if worse else 1)) < 1e-9, (e, lr, val)
assert lr[0] == 0.01 or abs(lr[0] - 0.01) < 1e-9, lr
PY
# restore_best when the patience never runs out: the run ends after epoch 9, whose validation
# loss is worse than epoch 8's; the final test figures are those of epoch 8's weights (the
# per-epoch test accuracies say so independently) and the report names the epoch.
"$bin" --data "$data" --device cpu --train-subset 1000 --val-fraction 0.5 --patience 20 \
  --epochs 9 --dropout 0 --optimizer adam --lr 0.003 --hidden 256 --schedule constant \
  --target-accuracy 0.99 --report "$tmp/best.json" --metrics "$tmp/best.csv" >"$tmp/best.txt" 2>&1 ||
  fail "restore_best run: $(tail -2 "$tmp/best.txt")"
grep -q "finished after epoch 9; the weights of epoch" "$tmp/best.txt" || fail "no restore line"
python3 - "$tmp/best.json" "$tmp/best.csv" <<'PY' || fail "restore_best report"
import csv, json, sys
r = json.load(open(sys.argv[1]))
val = [float(row["val_loss"]) for row in csv.DictReader(open(sys.argv[2]))]
best = min(range(len(val)), key=val.__getitem__) + 1
assert len(val) == 9 and best < 9 and r["best_epoch"] == best and not r["stopped_early"], (r, val)
assert r["test_accuracy"] == r["test_accuracy_per_epoch"][best - 1] != r["test_accuracy_per_epoch"][-1], r
PY
# --find-lr: the range test's curve in the report, its suggestion below where it diverged; flags
# a range test would ignore are refused, and so are its own flags without it.
"$bin" --data "$data" --device cpu --train-subset 2000 --hidden 32 --find-lr --find-lr-steps 60 \
  --report "$tmp/lr.json" >"$tmp/lr.txt" 2>&1 || fail "--find-lr: $(tail -2 "$tmp/lr.txt")"
grep -q "suggested --lr" "$tmp/lr.txt" || fail "--find-lr printed no suggestion"
python3 - "$tmp/lr.json" <<'PY' || fail "--find-lr report"
import json, math, sys
f = json.load(open(sys.argv[1]))["lr_finder"]
lrs = f["lrs"]
assert 2 < len(lrs) <= 60 and abs(lrs[0] - 1e-7) < 1e-20, lrs[:2]
assert all(abs(math.log(b / a) - math.log(1e8) / 59) < 1e-9 for a, b in zip(lrs, lrs[1:])), lrs
assert f["diverged"] == (len(lrs) < 60) and 1e-7 < f["suggested_lr"] < lrs[-1], f
PY
expect_usage_error "--find-lr measures the loss against the lr and trains nothing: remove --epochs, --save" \
  --data "$tmp" --device cpu --find-lr --epochs 3 --save "$tmp/x.safetensors"
# --find-lr would ignore a checkpoint to continue (--init-from gives it weights) and the
# batch-order flags: they are refused too.
expect_usage_error "--find-lr measures the loss against the lr and trains nothing: remove --resume, --no-shuffle, --drop-last" \
  --data "$tmp" --device cpu --find-lr --resume "$tmp/x.safetensors" --no-shuffle --drop-last
expect_usage_error "--find-lr-steps: only with --find-lr" --data "$tmp" --device cpu --find-lr-steps 10
expect_usage_error "--find-lr-min must be below --find-lr-max" --data "$tmp" --device cpu \
  --find-lr --find-lr-min 1 --find-lr-max 0.5
# Full-batch L-BFGS writes its report and weights too (its objective class-weighted here).
"$bin" --data "$data" --device cpu --train-subset 300 --hidden 16 --optimizer lbfgs --epochs 2 \
  --class-weights balanced \
  --report "$tmp/lbfgs.json" --export-torch "$tmp/lbfgs.safetensors" >/dev/null 2>&1 ||
  fail "lbfgs run"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["optimizer"]=="lbfgs" and r["full_batch_steps"]==2 and 0<r["test_accuracy"]<=1 and len(r["test_per_class"])==10 and len(r["class_weights"])==10, r' \
  "$tmp/lbfgs.json" || fail "lbfgs report"
[ -s "$tmp/lbfgs.safetensors" ] || fail "lbfgs --export-torch wrote nothing"
# A batch larger than the data set is one full batch per epoch (buffers sized by the data).
"$bin" --data "$data" --device cpu --train-subset 500 --batch-size 1000000000000 --epochs 2 \
  --hidden 16 >"$tmp/full.txt" 2>&1 || fail "full batch: $(tail -2 "$tmp/full.txt")"
"$bin" --data "$data" --device cpu --train-subset 3000 --epochs 1 --hidden 64 \
  --save "$tmp/ck.safetensors" --metrics "$tmp/m.jsonl" >/dev/null 2>&1 || fail "first run"
"$bin" --data "$data" --device cpu --train-subset 3000 --epochs 2 --hidden 64 \
  --resume "$tmp/ck.safetensors" --report "$tmp/report.json" --target-accuracy 0.5 \
  >"$tmp/out.txt" 2>&1 || fail "resume"
grep -q "resumed from" "$tmp/out.txt" || fail "no resume line"
# A checkpoint of another model or optimizer: exit 2, the first module that differs named, and
# where the checkpoint's own command is.
expect_usage_error "--resume: .*written by another model - its module 0 is .*\"out_features\":64.*this model's is .*\"out_features\":32.*--describe $tmp/ck.safetensors shows the command" \
  --data "$data" --device cpu --train-subset 3000 --epochs 2 --hidden 32 \
  --resume "$tmp/ck.safetensors"
expect_usage_error "--resume: .*optimizer is 'AdamW' but the run uses SGD" --data "$data" \
  --device cpu --train-subset 3000 --epochs 2 --hidden 64 --optimizer sgd \
  --resume "$tmp/ck.safetensors"
expect_usage_error "--resume: .*give the same loss options .*--describe" --data "$data" \
  --device cpu --train-subset 3000 --epochs 2 --hidden 64 --label-smoothing 0.1 \
  --resume "$tmp/ck.safetensors"
# --describe: what a file holds, without training data.
"$bin" --describe "$tmp/ck.safetensors" >"$tmp/desc.txt" 2>&1 || fail "--describe: $(cat "$tmp/desc.txt")"
for want in "cutrain checkpoint" "Linear  784 -> 64" "784 features -> 10 classes (logits)" \
            "scaled by 0.00392156886" "trained: to the end of epoch 1, 24 optimizer steps, optimizer AdamW" "command: "; do
  grep -qF "$want" "$tmp/desc.txt" || fail "--describe lacks '$want': $(cat "$tmp/desc.txt")"
done
expect_usage_error "--describe prints a model file and exits: give it alone" \
  --describe "$tmp/ck.safetensors" --epochs 2
python3 - "$tmp/report.json" <<'PY' || fail "report"
import json, sys
r = json.load(open(sys.argv[1]))
for k in ("test_accuracy", "test_loss", "train_loss", "epochs", "seconds_per_epoch",
          "samples_per_second", "device"):
    assert k in r, k
assert r["epochs"] == 1, r["epochs"]          # one more epoch after resuming at 1
# The run's rate: an epoch's seconds times it are the epoch's 3000 samples.
assert abs(r["seconds_per_epoch"] * r["samples_per_second"] - 3000) < 1e-6 * 3000, r
assert 0.6 < r["test_accuracy"] <= 1.0, r["test_accuracy"]
# Time to accuracy: the one epoch run reaches 50%; its per-epoch accuracy is the final one.
assert r["epochs_to_target"] == 2 and 0 < r["time_to_target_s"] < 60, r
assert r["test_accuracy_per_epoch"] == [r["test_accuracy"]], r
# Fashion-MNIST's classes by name; the confusion matrix's trace is the test accuracy.
names = [row["name"] for row in r["test_per_class"]]
assert names[0] == "T-shirt/top" and names[9] == "Ankle boot" and len(names) == 10, names
m = r["test_confusion_matrix"]
assert sum(map(sum, m)) == 10000 and sum(m[k][k] for k in range(10)) == round(r["test_accuracy"] * 10000), m
PY

# Over several epochs the report's rate is the run's (all samples over all seconds), not a mean
# of the epochs' rates, so that the mean epoch's seconds times it are an epoch's samples.
"$bin" --data "$data" --device cpu --train-subset 1000 --epochs 3 --hidden 16 \
  --report "$tmp/rate.json" >/dev/null 2>&1 || fail "rate run"
python3 -c 'import json, sys; r = json.load(open(sys.argv[1]))
assert abs(r["seconds_per_epoch"] * r["samples_per_second"] - 1000) < 1e-6 * 1000, r' \
  "$tmp/rate.json" || fail "the report's samples_per_second is not the run's rate"

# --drop-last: the schedule spans the steps that run (1000 rows in batches of 128: 7 an epoch, not
# 8), so the cosine's last step is the formula's step T - 1 of T = 14; a batch larger than the
# data leaves none (refused); the largest batch is one batch of all the rows, not zero.
"$bin" --data "$data" --device cpu --train-subset 1000 --epochs 2 --hidden 16 --drop-last \
  --min-lr 1e-4 --metrics "$tmp/dl.csv" >/dev/null 2>&1 || fail "--drop-last run"
python3 - "$tmp/dl.csv" <<'PY' || fail "--drop-last: the schedule's length"
import csv, math, sys
rows = list(csv.DictReader(open(sys.argv[1])))
t, T = 13, 14
want = 1e-4 + (1e-3 - 1e-4) * (1 + math.cos(math.pi * t / T)) / 2
assert abs(float(rows[1]["lr"]) - want) < 1e-6 * want, (rows[1]["lr"], want)
PY
expect_usage_error "--drop-last with --batch-size 2000 leaves no full batch of the 1000 training rows" \
  --data "$data" --device cpu --train-subset 1000 --drop-last --batch-size 2000
"$bin" --data "$data" --device cpu --train-subset 1000 --epochs 1 --hidden 16 \
  --batch-size 9223372036854775807 --report "$tmp/huge.json" >/dev/null 2>&1 || fail "batch 2^63 - 1"
python3 -c 'import json, math, sys; r = json.load(open(sys.argv[1]))
assert math.isfinite(r["train_loss"]) and r["test_accuracy"] > 0.1, r' "$tmp/huge.json" ||
  fail "batch 2^63 - 1 trained nothing"

# --max-classes bounds IDX labels as it bounds CSV and NumPy ones (it was ignored for --data).
expect_usage_error "--data '$data' has the label 9, which makes 10 classes, more than --max-classes 9" \
  --data "$data" --device cpu --train-subset 1000 --max-classes 9
# A schedule the flags make impossible is their error (exit 2): one-cycle over 3 steps.
expect_usage_error "--schedule onecycle: cutrain: OneCycleLr: pct_start = 0.3 of 3 steps" \
  --data "$data" --device cpu --train-subset 300 --epochs 1 --schedule onecycle
# --step-size counts epochs: less than one step is refused (it rounded to a decay at every step),
# and a size past int64 never decays (it was undefined, and decayed at every step).
expect_usage_error "--step-size 1e-30 epochs is less than one step (an epoch is 8 steps)" \
  --data "$data" --device cpu --train-subset 1000 --schedule step --step-size 1e-30
"$bin" --data "$data" --device cpu --train-subset 1000 --epochs 2 --hidden 16 --schedule step \
  --step-size 1e300 --metrics "$tmp/step.csv" >/dev/null 2>&1 || fail "--step-size 1e300 run"
python3 -c 'import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert [round(float(r["lr"]), 9) for r in rows] == [1e-3, 1e-3], rows' "$tmp/step.csv" ||
  fail "--step-size 1e300 decayed"

# Note [gradient accumulation]: batches of 32, 4 per step (94 batches: 24 steps an epoch); with
# Note [weight averaging] the test set is the average's.
"$bin" --data "$data" --device cpu --train-subset 3000 --epochs 2 --hidden 64 --batch-size 32 \
  --accumulate 4 --lr 0.004 --ema 0.9 --metrics "$tmp/acc.csv" >/dev/null 2>&1 ||
  fail "accumulated, averaged run"
python3 - "$tmp/acc.csv" <<'PY' || fail "accumulated metrics"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) == 2 and float(rows[1]["train_loss"]) < float(rows[0]["train_loss"]), rows
PY


# Note [stop on a signal]: SIGINT during a long run saves a mid-epoch checkpoint and exits 130;
# resuming it goes on from the next batch.
"$bin" --data "$data" --device cpu --train-subset 3000 --epochs 100000 --hidden 64 \
  --save "$tmp/int.safetensors" --checkpoint-every 7 >"$tmp/int.txt" 2>&1 &
pid=$!
for _ in $(seq 100); do [ -f "$tmp/int.safetensors" ] && break; sleep 0.2; done
[ -f "$tmp/int.safetensors" ] || { kill -9 $pid; fail "no periodic checkpoint within 20 s"; }
kill -INT $pid
wait $pid
rc=$?
[ $rc -eq 130 ] || fail "SIGINT: exit $rc, expected 130: $(tail -3 "$tmp/int.txt")"
line=$(grep "^interrupted after epoch" "$tmp/int.txt") || fail "no interrupted line"
epoch=$(printf '%s' "$line" | sed -E 's/^interrupted after epoch ([0-9]+).*/\1/')
# Mid-epoch (as a stop usually lands), the rest of the epoch needs the order it was drawn in:
# another batch size is the flags' error (exit 2), naming the change.
if printf '%s' "$line" | grep -q " and batch "; then
  expect_usage_error "--resume: .*this run changes it (batch_size 128 -> 64).*--describe" \
    --data "$data" --device cpu --train-subset 3000 --epochs $((epoch + 1)) --hidden 64 \
    --batch-size 64 --resume "$tmp/int.safetensors"
fi
"$bin" --data "$data" --device cpu --train-subset 3000 --epochs $((epoch + 1)) --hidden 64 \
  --resume "$tmp/int.safetensors" >"$tmp/int2.txt" 2>&1 || fail "resume after SIGINT"
grep -q "resumed from .* after epoch $epoch" "$tmp/int2.txt" || fail "resume line: $(cat "$tmp/int2.txt")"
# A hangup (the ssh connection dropped) stops and saves as SIGINT does, exit 129; under nohup
# (SIGHUP ignored when the run starts) the run goes on.
hup_run() {
  "$@" "$bin" --data "$data" --device cpu --train-subset 3000 --epochs 100000 --hidden 64 \
    --save "$tmp/hup.safetensors" --overwrite --checkpoint-every 7 >"$tmp/hup.txt" 2>&1 &
  pid=$!
  for _ in $(seq 100); do [ -f "$tmp/hup.safetensors" ] && break; sleep 0.2; done
  [ -f "$tmp/hup.safetensors" ] || { kill -9 $pid; fail "no periodic checkpoint within 20 s"; }
  kill -HUP $pid
}
hup_run
wait $pid
rc=$?
[ $rc -eq 129 ] && grep -q "^interrupted after epoch" "$tmp/hup.txt" ||
  fail "SIGHUP: exit $rc, expected 129 after saving: $(tail -3 "$tmp/hup.txt")"
rm -f "$tmp/hup.safetensors"
hup_run nohup
sleep 1
kill -0 $pid 2>/dev/null || fail "under nohup a hangup stopped the run: $(tail -3 "$tmp/hup.txt")"
kill -9 $pid
wait $pid 2>/dev/null
echo "cli: ok"
