#!/usr/bin/env bash
# cutrain-train end to end: bad arguments exit 2 with a one-line error naming the flag; a short
# run on a Fashion-MNIST subset trains, saves, resumes and writes a report that parses.
set -uo pipefail
bin=$1
data=${2:-/usr/share/datasets/fashion-mnist}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

expect_usage_error() {  # flag-name args...
  local name=$1; shift
  out=$("$bin" "$@" 2>&1 >/dev/null)
  rc=$?
  [ $rc -eq 2 ] || fail "$* exited $rc, expected 2"
  [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] || fail "$*: expected one line, got: $out"
  printf '%s' "$out" | grep -q -- "$name" || fail "$*: message does not name $name: $out"
}
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
# CSV data: class labels (3 classes in the 2nd column, named by header) and, with --regression,
# a float target; the model's output width follows the data.
python3 - "$tmp" <<'PY' || fail "writing CSV files"
import math, random, sys
random.seed(3)
for name, rows in (("train", 600), ("test", 200)):
    with open(f"{sys.argv[1]}/cls_{name}.csv", "w") as c, open(f"{sys.argv[1]}/reg_{name}.csv", "w") as r, \
         open(f"{sys.argv[1]}/two_{name}.csv", "w") as t:
        c.write("a,label,b\n")
        r.write("a,b,y\n")
        t.write("v,a,u,b\n")  # two targets, u and v, around the features
        for _ in range(rows):
            k = random.randrange(3)
            a, b = k + random.gauss(0, 0.2), -k + random.gauss(0, 0.2)
            c.write(f"{a},{k},{b}\n")
            x1, x2 = random.uniform(-1, 1), random.uniform(-1, 1)
            r.write(f"{x1},{x2},{3 * x1 - 2 * x2 + 0.5}\n")
            t.write(f"{x1 + x2},{x1},{x1 - 2 * x2},{x2}\n")
PY
"$bin" --train-csv "$tmp/cls_train.csv" --test-csv "$tmp/cls_test.csv" --target label \
  --device cpu --hidden 16 --dropout 0 --epochs 40 --lr 0.03 --report "$tmp/cls.json" \
  --predictions "$tmp/cls_pred.csv" --export-torch "$tmp/cls_model.safetensors" >"$tmp/cls.txt" 2>&1 ||
  fail "CSV classification: $(tail -2 "$tmp/cls.txt")"
# Note [dynamic loss scale]: the same run with --loss-scale dynamic is the same run, bit for bit
# (no gradient overflows at S = 2^16), and says so in its report and metrics.
"$bin" --train-csv "$tmp/cls_train.csv" --test-csv "$tmp/cls_test.csv" --target label \
  --device cpu --hidden 16 --dropout 0 --epochs 40 --lr 0.03 --report "$tmp/cls_scaled.json" \
  --predictions "$tmp/cls_pred_scaled.csv" --loss-scale dynamic --metrics "$tmp/cls_scaled.jsonl" \
  >"$tmp/cls_scaled.txt" 2>&1 || fail "--loss-scale dynamic: $(tail -2 "$tmp/cls_scaled.txt")"
cmp -s "$tmp/cls_pred.csv" "$tmp/cls_pred_scaled.csv" ||
  fail "--loss-scale dynamic changed the predictions of an overflow-free run"
python3 - "$tmp" <<'PY' || fail "--loss-scale dynamic: report or metrics"
import json, sys
d = sys.argv[1]
plain, scaled = (json.load(open(f"{d}/{n}.json")) for n in ("cls", "cls_scaled"))
assert scaled["test_loss"] == plain["test_loss"], (scaled["test_loss"], plain["test_loss"])
assert (plain["loss_scale"], scaled["loss_scale"]) == ("off", "dynamic"), scaled
assert scaled["skipped_steps"] == 0 and plain["skipped_steps"] == 0, scaled
epochs = [json.loads(line) for line in open(f"{d}/cls_scaled.jsonl")]
assert epochs[0]["loss_scale"] == 65536 and epochs[-1]["loss_scale"] >= 65536, epochs[-1]
# Note [the step as one CUDA graph]: the report says which path ran, and why not the graph.
assert plain["step_path"].startswith("eager: the model is on the CPU"), plain["step_path"]
assert plain["graph_steps"] == 0, plain
PY
# --cuda-graph on where no graph can run: exit 2 before training, naming why.
expect_usage_error "--cuda-graph on: the model is on the CPU" --train-csv "$tmp/cls_train.csv" \
  --test-csv "$tmp/cls_test.csv" --target label --device cpu --cuda-graph on
# Note [augmentation on the device]: the images' shape is --input-shape's (1,28,28 by default,
# which 2 CSV features are not); a shift must leave part of the image; full-batch runs refuse it.
expect_usage_error "--augment-shift: must be in \\[0, 2^31 - 1\\] (got -1)" --augment-shift -1
expect_usage_error "--augment-shift: '2x' is not an integer" --augment-shift 2x
expect_usage_error "--input-shape: the default 1,28,28 must be C,H,W with C x H x W = the data's 2" \
  --train-csv "$tmp/cls_train.csv" --test-csv "$tmp/cls_test.csv" --target label --device cpu \
  --augment-flip
expect_usage_error "does not use --augment-flip" --train-csv "$tmp/cls_train.csv" \
  --test-csv "$tmp/cls_test.csv" --target label --device cpu --optimizer lbfgs --augment-flip
expect_usage_error "--input-shape shapes the convolutional model" --train-csv "$tmp/cls_train.csv" \
  --test-csv "$tmp/cls_test.csv" --target label --device cpu --input-shape 1,2,1
expect_usage_error "--augment-shift 2 must be smaller than the images' 1 pixels" \
  --train-csv "$tmp/cls_train.csv" --test-csv "$tmp/cls_test.csv" --target label --device cpu \
  --input-shape 2,1,1 --augment-shift 2
# Residual blocks belong to --model cnn, up to 16 after each pool.
expect_usage_error "--residual-blocks shapes the convolutional model: give --model cnn" \
  --train-csv "$tmp/cls_train.csv" --test-csv "$tmp/cls_test.csv" --target label --device cpu \
  --residual-blocks 1
expect_usage_error "--residual-blocks: must be in \\[0, 16\\] (got 17)" --model cnn \
  --residual-blocks 17
# Mirroring 1 x 2 "images" swaps the two features: the classes (a ~ k, b ~ -k) are still told
# apart by |a|, so the run learns; its report says what it drew.
"$bin" --train-csv "$tmp/cls_train.csv" --test-csv "$tmp/cls_test.csv" --target label \
  --device cpu --hidden 16 --dropout 0 --epochs 40 --lr 0.03 --input-shape 1,1,2 --augment-flip \
  --report "$tmp/cls_flip.json" >"$tmp/cls_flip.txt" 2>&1 || fail "--augment-flip: $(tail -2 "$tmp/cls_flip.txt")"
python3 - "$tmp" <<'PY' || fail "--augment-flip report"
import json, sys
d = sys.argv[1]
plain, flip = (json.load(open(f"{d}/{n}.json")) for n in ("cls", "cls_flip"))
assert flip["augment"] == {"shift": 0, "flip": True}, flip["augment"]
assert plain["augment"] == {"shift": 0, "flip": False}, plain["augment"]
assert flip["test_accuracy"] > 0.95 and flip["test_loss"] != plain["test_loss"], flip
PY
# Note [16-bit values in fp32 storage]: bf16 and fp16 runs of the same recipe learn as the fp32
# run does; fp16 scales its loss unless told not to; the reports say so.
# Note [16-bit compute copy]: --rounding stochastic learns as well, and differently.
for p in bf16 fp16 "bf16 --rounding stochastic"; do
  n=${p// /}
  "$bin" --train-csv "$tmp/cls_train.csv" --test-csv "$tmp/cls_test.csv" --target label \
    --device cpu --hidden 16 --dropout 0 --epochs 40 --lr 0.03 --precision $p \
    --report "$tmp/cls_$n.json" >"$tmp/cls_$n.txt" 2>&1 || fail "--precision $p: $(tail -2 "$tmp/cls_$n.txt")"
done
python3 - "$tmp" <<'PY' || fail "--precision bf16 / fp16: reports"
import json, sys
d = sys.argv[1]
plain, bf16, fp16 = (json.load(open(f"{d}/{n}.json")) for n in ("cls", "cls_bf16", "cls_fp16"))
assert (bf16["precision"], fp16["precision"]) == ("bf16", "fp16"), (bf16, fp16)
assert (bf16["loss_scale"], fp16["loss_scale"]) == ("off", "dynamic"), (bf16, fp16)
sr = json.load(open(f"{d}/cls_bf16--roundingstochastic.json"))
for r in (bf16, fp16, sr):
    assert r["test_accuracy"] >= plain["test_accuracy"] - 0.03, (r["test_accuracy"], plain["test_accuracy"])
    assert r["test_loss"] != plain["test_loss"], "16-bit rounding changed nothing"
assert sr["test_loss"] != bf16["test_loss"], "stochastic rounding changed nothing"
PY
"$bin" --train-csv "$tmp/reg_train.csv" --test-csv "$tmp/reg_test.csv" --regression --device cpu \
  --val-csv "$tmp/reg_test.csv" --patience 50 --metrics "$tmp/reg_metrics.csv" \
  --hidden 16 --dropout 0 --epochs 30 --lr 0.01 --report "$tmp/reg.json" \
  --predictions "$tmp/reg_pred.csv" >"$tmp/reg.txt" 2>&1 ||
  fail "CSV regression: $(tail -2 "$tmp/reg.txt")"
# Two regression targets by name (--target u,v): two outputs, predictions headed by the names.
"$bin" --train-csv "$tmp/two_train.csv" --test-csv "$tmp/two_test.csv" --regression \
  --target u,v --device cpu --hidden 16 --dropout 0 --epochs 30 --lr 0.01 \
  --report "$tmp/two.json" --predictions "$tmp/two_pred.csv" >"$tmp/two.txt" 2>&1 ||
  fail "two targets: $(tail -2 "$tmp/two.txt")"
python3 - "$tmp/cls.json" "$tmp/reg.json" "$tmp" <<'PY' || fail "CSV reports"
import csv, json, sys
cls, reg = (json.load(open(p)) for p in sys.argv[1:3])
# --predictions: a row per test sample; the predicted classes give the reported accuracy and
# the probabilities sum to 1; the regression predictions give the reported MSE.
d = sys.argv[3]
pred = list(csv.DictReader(open(f"{d}/cls_pred.csv")))
truth = list(csv.DictReader(open(f"{d}/cls_test.csv")))
assert len(pred) == len(truth) == 200 and list(pred[0]) == ["class", "p0", "p1", "p2"], pred[0]
acc = sum(int(p["class"]) == int(t["label"]) for p, t in zip(pred, truth)) / len(truth)
assert abs(acc - cls["test_accuracy"]) < 1e-9, (acc, cls["test_accuracy"])
assert all(abs(sum(float(p[f"p{k}"]) for k in range(3)) - 1) < 1e-4 for p in pred)
# The report's confusion matrix and per-class figures are these predictions counted by class.
m = [[0] * 3 for _ in range(3)]
for p, t in zip(pred, truth):
    m[int(t["label"])][int(p["class"])] += 1
assert cls["test_confusion_matrix"] == m, (cls["test_confusion_matrix"], m)
f1s = []
for k, row in enumerate(cls["test_per_class"]):
    tp, support, predicted = m[k][k], sum(m[k]), sum(r[k] for r in m)
    rec, prec = tp / support if support else 0, tp / predicted if predicted else 0
    f1s.append(2 * prec * rec / (prec + rec) if prec + rec else 0)
    assert (row["class"], row["name"], row["rows"]) == (k, str(k), support), row
    assert max(abs(row["recall"] - rec), abs(row["precision"] - prec), abs(row["f1"] - f1s[-1])) < 1e-12, row
assert abs(cls["test_macro_f1"] - sum(f1s) / 3) < 1e-12, cls["test_macro_f1"]
# ROC AUC one class against the rest: the share of (class-k row, other row) pairs whose class-k
# probabilities are in order, ties half (the file's 9 digits can tie what the run did not).
aucs = []
for k, row in enumerate(cls["test_per_class"]):
    pos = [float(p[f"p{k}"]) for p, t in zip(pred, truth) if int(t["label"]) == k]
    neg = [float(p[f"p{k}"]) for p, t in zip(pred, truth) if int(t["label"]) != k]
    aucs.append(sum((a > b) + 0.5 * (a == b) for a in pos for b in neg) / (len(pos) * len(neg)))
    assert abs(row["roc_auc"] - aucs[-1]) < 1e-3, (row, aucs[-1])
assert abs(cls["test_roc_auc"] - sum(aucs) / 3) < 1e-3 and cls["test_roc_auc"] > 0.95, cls["test_roc_auc"]
pred = list(csv.DictReader(open(f"{d}/reg_pred.csv")))
truth = list(csv.DictReader(open(f"{d}/reg_test.csv")))
mse = sum((float(p["prediction"]) - float(t["y"])) ** 2 for p, t in zip(pred, truth)) / len(truth)
assert len(pred) == 200 and abs(mse - reg["test_loss"]) < 1e-5 * max(1, mse), (mse, reg["test_loss"])
two = json.load(open(f"{d}/two.json"))
pred = list(csv.DictReader(open(f"{d}/two_pred.csv")))
truth = list(csv.DictReader(open(f"{d}/two_test.csv")))
assert list(pred[0]) == ["u", "v"] and two["parameters"] == 2 * 16 + 16 + 16 * 2 + 2, (pred[0], two)
mse = sum((float(p[k]) - float(t[k])) ** 2 for p, t in zip(pred, truth) for k in "uv") / 400
assert abs(mse - two["test_loss"]) < 1e-5 * max(1, mse) and mse < 0.05, (mse, two["test_loss"])
# Per target: MSE, MAE and R^2 of these predictions (r2_score per output), named by --target.
for j, k in enumerate("uv"):
    row = two["test_per_target"][j]
    t = [float(r[k]) for r in truth]
    p = [float(r[k]) for r in pred]
    mean = sum(t) / len(t)
    sse = sum((a - b) ** 2 for a, b in zip(p, t))
    want = (sse / len(t), sum(abs(a - b) for a, b in zip(p, t)) / len(t),
            1 - sse / sum((b - mean) ** 2 for b in t))
    assert row["name"] == k and all(abs(g - w) < 1e-6 * max(1, abs(w)) for g, w in
                                    zip((row["mse"], row["mae"], row["r2"]), want)), (row, want)
# --val-csv (here the test file itself): the last epoch's validation loss is the test MSE.
last = list(csv.DictReader(open(f"{d}/reg_metrics.csv")))[-1]
assert abs(float(last["val_loss"]) - reg["test_loss"]) < 1e-5 * max(1, mse), (last, reg)
assert cls["test_accuracy"] > 0.95 and cls["parameters"] == 2 * 16 + 16 + 16 * 3 + 3, cls
# y = 3 x1 - 2 x2 + 0.5 has variance ~4.3 on this data: a learned fit is far below it.
assert "test_confusion_matrix" not in reg and "test_per_class" not in reg, reg
assert reg["test_accuracy"] is None and reg["test_loss"] < 0.05 and reg["parameters"] == 2 * 16 + 16 + 16 + 1, reg
PY
# Text labels: the same classification with the labels written as names, in an order that is
# not the sorted one: the classes are numbered by sorted name, the report and the predictions
# name them, and the results are those of the numeric run with its classes renumbered.
python3 - "$tmp" <<'PY' || fail "writing text-label CSV files"
import sys
names = {0: "zebra", 1: "ant", 2: "moose"}  # sorted: ant (0), moose (1), zebra (2)
for split in ("train", "test"):
    lines = open(f"{sys.argv[1]}/cls_{split}.csv").read().splitlines()
    with open(f"{sys.argv[1]}/txt_{split}.csv", "w") as f:
        f.write(lines[0] + "\n")
        for line in lines[1:]:
            a, k, b = line.split(",")
            f.write(f"{a},{names[int(k)]},{b}\n")
PY
"$bin" --train-csv "$tmp/txt_train.csv" --test-csv "$tmp/txt_test.csv" --target label \
  --device cpu --hidden 16 --dropout 0 --epochs 40 --lr 0.03 --report "$tmp/txt.json" \
  --predictions "$tmp/txt_pred.csv" >"$tmp/txt.txt" 2>&1 || fail "text labels: $(tail -2 "$tmp/txt.txt")"
python3 - "$tmp" <<'PY' || fail "text-label results"
import csv, json, sys
d = sys.argv[1]
txt = json.load(open(f"{d}/txt.json"))
assert [r["name"] for r in txt["test_per_class"]] == ["ant", "moose", "zebra"], txt["test_per_class"]
pred = list(csv.DictReader(open(f"{d}/txt_pred.csv")))
truth = list(csv.DictReader(open(f"{d}/txt_test.csv")))
assert list(pred[0])[:2] == ["class", "name"], pred[0]
assert all(["ant", "moose", "zebra"][int(p["class"])] == p["name"] for p in pred)
acc = sum(p["name"] == t["label"] for p, t in zip(pred, truth)) / len(truth)
assert abs(acc - txt["test_accuracy"]) < 1e-9 and acc > 0.95, (acc, txt["test_accuracy"])
PY
# --class-weights balanced: scikit-learn's n / (C count) from the training file, in label
# (sorted-name) order, printed and reported; the test loss is the weighted mean of -log p over
# the predictions file's probabilities.
"$bin" --train-csv "$tmp/txt_train.csv" --test-csv "$tmp/txt_test.csv" --target label \
  --device cpu --hidden 16 --dropout 0 --epochs 5 --lr 0.03 --class-weights balanced \
  --report "$tmp/cw.json" --predictions "$tmp/cw_pred.csv" >"$tmp/cw.txt" 2>&1 ||
  fail "class weights: $(tail -2 "$tmp/cw.txt")"
grep -q "^class weights: ant=" "$tmp/cw.txt" || fail "class weights not printed: $(head -5 "$tmp/cw.txt")"
python3 - "$tmp" <<'PY' || fail "class-weight results"
import csv, json, math, sys
d = sys.argv[1]
cw = json.load(open(f"{d}/cw.json"))
names = ["ant", "moose", "zebra"]
train = [r["label"] for r in csv.DictReader(open(f"{d}/txt_train.csv"))]
want = [len(train) / (3 * train.count(k)) for k in names]
assert all(abs(g - w) < 1e-6 * w for g, w in zip(cw["class_weights"], want)), (cw["class_weights"], want)
pred = list(csv.DictReader(open(f"{d}/cw_pred.csv")))
truth = [names.index(r["label"]) for r in csv.DictReader(open(f"{d}/txt_test.csv"))]
num = sum(want[t] * -math.log(float(p[f"p{t}"])) for p, t in zip(pred, truth))
loss = num / sum(want[t] for t in truth)
assert abs(loss - cw["test_loss"]) < 1e-4 * loss, (loss, cw["test_loss"])
PY
# By name: the classes not named keep 1 (label order: ant, moose, zebra); by label number too.
"$bin" --train-csv "$tmp/txt_train.csv" --test-csv "$tmp/txt_test.csv" --target label \
  --device cpu --hidden 16 --epochs 1 --class-weights moose=3,ant=0.5 --report "$tmp/cwn.json" \
  >/dev/null 2>&1 || fail "named class weights"
python3 -c 'import json,sys; w=json.load(open(sys.argv[1]))["class_weights"]; assert w == [0.5, 3, 1], w' \
  "$tmp/cwn.json" || fail "named class weights in the report"
expect_usage_error "--class-weights: no class 'bee' (classes: ant, moose, zebra)" \
  --train-csv "$tmp/txt_train.csv" --test-csv "$tmp/txt_test.csv" --target label --device cpu \
  --class-weights bee=2
expect_usage_error "--class-weights: '2' has no name" --train-csv "$tmp/txt_train.csv" \
  --test-csv "$tmp/txt_test.csv" --target label --device cpu --class-weights ant=1,2
expect_usage_error "--class-weights: class '0' given twice" --train-csv "$tmp/cls_train.csv" \
  --test-csv "$tmp/cls_test.csv" --target label --device cpu --class-weights 0=1,0=2
expect_usage_error "--class-weights: 2 weights for 3 classes" --train-csv "$tmp/txt_train.csv" \
  --test-csv "$tmp/txt_test.csv" --target label --device cpu --class-weights 1,2
expect_usage_error "--class-weights: '-1' is not a finite weight" --train-csv "$tmp/txt_train.csv" \
  --test-csv "$tmp/txt_test.csv" --target label --device cpu --class-weights 1,-1,2
expect_usage_error "--regression has no classes and no accuracy: remove --class-weights" \
  --train-csv "$tmp/reg_train.csv" --test-csv "$tmp/reg_test.csv" --regression --device cpu \
  --class-weights balanced
expect_usage_error "has text labels ('ant', ...) but --train-csv" --train-csv "$tmp/cls_train.csv" \
  --test-csv "$tmp/txt_test.csv" --target label --device cpu
printf 'a,label,b\n1,ant,2\n3,bee,4\n' >"$tmp/txt_bad.csv"
out=$("$bin" --train-csv "$tmp/txt_train.csv" --test-csv "$tmp/txt_bad.csv" --target label \
  --device cpu 2>&1 >/dev/null)
[ $? -eq 1 ] && printf '%s' "$out" | grep -q "label 'bee' is not one of the 3 classes (ant, moose, zebra)" ||
  fail "an unknown test label: $out"
# Note [data spec in exports]: a model file alone predicts new rows as the run that trained it
# did - its standardization statistics and class names travel in the export; no training data.
python3 -c 'import csv,sys; w=csv.writer(open(sys.argv[2],"w")); [w.writerow([r[0], r[2]]) for r in csv.reader(open(sys.argv[1]))]' \
  "$tmp/txt_test.csv" "$tmp/txt_new.csv" || fail "writing txt_new.csv"
"$bin" --train-csv "$tmp/txt_train.csv" --test-csv "$tmp/txt_test.csv" --target label \
  --device cpu --hidden 16 --dropout 0 --epochs 10 --lr 0.03 --standardize \
  --export-torch "$tmp/txt_model.safetensors" --predict-csv "$tmp/txt_new.csv" \
  --predictions "$tmp/txt_new_pred.csv" >/dev/null 2>&1 || fail "standardized text-label run"
"$bin" --device cpu --model-from "$tmp/txt_model.safetensors" --predict-csv "$tmp/txt_new.csv" \
  --predictions "$tmp/txt_new_pred2.csv" >"$tmp/alone.txt" 2>&1 ||
  fail "prediction from the model file alone: $(tail -2 "$tmp/alone.txt")"
cmp -s "$tmp/txt_new_pred.csv" "$tmp/txt_new_pred2.csv" ||
  fail "the model file alone predicts differently: $(head -3 "$tmp/txt_new_pred2.csv")"
head -1 "$tmp/txt_new_pred2.csv" | grep -q "^class,name," || fail "no class names from the file"
expect_usage_error "--epochs: --model-from with --predict-csv (or --predict-npy) and no training data only predicts" \
  --device cpu --model-from "$tmp/txt_model.safetensors" --predict-csv "$tmp/txt_new.csv" \
  --predictions "$tmp/p.csv" --epochs 3
# --categorical: the class is set by a text column ("colour") that only one-hot encoding makes
# learnable; the categories travel in the export, so the model file alone predicts new rows
# (features only, no header) as the training run did; a category training never saw is refused.
python3 - "$tmp" <<'PY' || fail "writing categorical CSV files"
import random, sys
random.seed(5)
colours = ["red", "green", "blue", "teal"]
for split, n in (("train", 400), ("test", 200)):
    with open(f"{sys.argv[1]}/col_{split}.csv", "w") as f, \
         open(f"{sys.argv[1]}/col_{split}_new.csv", "w") as g:
        f.write("noise,colour,label\n")
        for _ in range(n):
            c = random.randrange(4)
            x = round(random.gauss(0, 1), 3)
            f.write(f"{x},{colours[c]},{c % 3}\n")
            g.write(f"{x},{colours[c]}\n")
PY
"$bin" --train-csv "$tmp/col_train.csv" --test-csv "$tmp/col_test.csv" --target label \
  --categorical colour --device cpu --hidden 8 --dropout 0 --epochs 20 --lr 0.03 --standardize \
  --report "$tmp/col.json" --export-torch "$tmp/col_model.safetensors" \
  --predict-csv "$tmp/col_test_new.csv" --predictions "$tmp/col_pred.csv" >"$tmp/col.txt" 2>&1 ||
  fail "categorical run: $(tail -2 "$tmp/col.txt")"
grep -q "one-hot: colour -> 4 features (blue, green, red, teal)" "$tmp/col.txt" ||
  fail "categories not printed: $(head -4 "$tmp/col.txt")"
grep -q "samples of 5 features" "$tmp/col.txt" || fail "one-hot width: $(head -3 "$tmp/col.txt")"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["test_accuracy"] > 0.99, r["test_accuracy"]' \
  "$tmp/col.json" || fail "the categorical column was not learned"
"$bin" --device cpu --model-from "$tmp/col_model.safetensors" --predict-csv "$tmp/col_test_new.csv" \
  --predictions "$tmp/col_pred2.csv" >"$tmp/col_alone.txt" 2>&1 ||
  fail "categorical prediction from the model file: $(tail -2 "$tmp/col_alone.txt")"
cmp -s "$tmp/col_pred.csv" "$tmp/col_pred2.csv" ||
  fail "the model file alone encodes differently: $(head -3 "$tmp/col_pred2.csv")"
printf '0.5,mauve\n' >"$tmp/col_bad.csv"
out=$("$bin" --device cpu --model-from "$tmp/col_model.safetensors" --predict-csv "$tmp/col_bad.csv" \
  --predictions "$tmp/p.csv" 2>&1 >/dev/null)
[ $? -eq 1 ] && printf '%s' "$out" | grep -q "category 'mauve' is not one of the 4 known" ||
  fail "an unknown category: $out"
expect_usage_error "--categorical: only for CSV data" --data "$tmp" --device cpu --categorical a
# --impute: the colour data with a tenth of the noise feature missing (empty, NA, ?); the
# training split's median fills every split and travels in the export, so the model file alone
# fills new rows' gaps as the training run did. Without --impute a gap is an error naming it.
python3 - "$tmp" <<'PY' || fail "writing CSV files with missing values"
import sys
d = sys.argv[1]
markers = ["", "NA", "?"]
for name in ("col_train", "col_test", "col_test_new"):
    lines = open(f"{d}/{name}.csv").read().splitlines()
    with open(f"{d}/gap_{name[4:]}.csv", "w") as f:
        for i, line in enumerate(lines):
            cells = line.split(",")
            if i % 10 == 3:
                cells[0] = markers[i % 3]
            f.write(",".join(cells) + "\n")
PY
"$bin" --train-csv "$tmp/gap_train.csv" --test-csv "$tmp/gap_test.csv" --target label \
  --categorical colour --impute median --device cpu --hidden 8 --dropout 0 --epochs 20 --lr 0.03 \
  --report "$tmp/gap.json" --export-torch "$tmp/gap_model.safetensors" \
  --predict-csv "$tmp/gap_test_new.csv" --predictions "$tmp/gap_pred.csv" >"$tmp/gap.txt" 2>&1 ||
  fail "--impute run: $(tail -2 "$tmp/gap.txt")"
# Lines 3, 13, ... of each file: 40 of the 400 training rows, 20 of each 200-row test file.
grep -q "imputed: 80 missing values filled with the training split's medians" "$tmp/gap.txt" ||
  fail "imputed count: $(grep imputed "$tmp/gap.txt")"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["test_accuracy"] > 0.99, r["test_accuracy"]' \
  "$tmp/gap.json" || fail "training with imputed values"
"$bin" --device cpu --model-from "$tmp/gap_model.safetensors" --predict-csv "$tmp/gap_test_new.csv" \
  --predictions "$tmp/gap_pred2.csv" >"$tmp/gap_alone.txt" 2>&1 ||
  fail "imputing from the model file: $(tail -2 "$tmp/gap_alone.txt")"
cmp -s "$tmp/gap_pred.csv" "$tmp/gap_pred2.csv" ||
  fail "the model file alone imputes differently: $(head -3 "$tmp/gap_pred2.csv")"
out=$("$bin" --train-csv "$tmp/gap_train.csv" --test-csv "$tmp/gap_test.csv" --target label \
  --categorical colour --device cpu 2>&1 >/dev/null)
[ $? -eq 1 ] && printf '%s' "$out" | grep -q "gap_train.csv:4: column 1: missing value (''); fill it in, or impute it" ||
  fail "a gap without --impute: $out"
expect_usage_error "--impute: only for CSV data" --data "$tmp" --device cpu --impute mean
# --stratify: the held-out tenth keeps the classes' shares (the labels are c % 3 of 4 colours:
# 2 classes of a quarter, one of a half).
"$bin" --train-csv "$tmp/col_train.csv" --test-csv "$tmp/col_test.csv" --target label \
  --categorical colour --device cpu --epochs 1 --val-fraction 0.1 --stratify >"$tmp/strat.txt" 2>&1 ||
  fail "--stratify: $(tail -2 "$tmp/strat.txt")"
grep -q "data: 360 train, 40 validation" "$tmp/strat.txt" || fail "--stratify split: $(grep data: "$tmp/strat.txt")"
# --monitor val_accuracy: early stopping by accuracy (a run, and its refusals).
"$bin" --train-csv "$tmp/col_train.csv" --test-csv "$tmp/col_test.csv" --target label \
  --categorical colour --device cpu --epochs 3 --val-fraction 0.2 --patience 1 \
  --monitor val_accuracy --report "$tmp/mon.json" >"$tmp/mon.txt" 2>&1 ||
  fail "--monitor: $(tail -2 "$tmp/mon.txt")"
expect_usage_error "--monitor chooses what --patience watches: add --patience" \
  --train-csv "$tmp/col_train.csv" --test-csv "$tmp/col_test.csv" --device cpu \
  --monitor val_accuracy
expect_usage_error "--monitor val_accuracy: --regression has no accuracy" \
  --train-csv "$tmp/reg_train.csv" --test-csv "$tmp/reg_test.csv" --regression --device cpu \
  --val-fraction 0.1 --patience 2 --monitor val_accuracy
expect_usage_error "--monitor" --monitor val_f1
expect_usage_error "--stratify splits the validation data --val-fraction (or --folds) holds out" \
  --train-csv "$tmp/col_train.csv" --test-csv "$tmp/col_test.csv" --device cpu --stratify
expect_usage_error "--regression has no classes and no accuracy: remove --stratify" \
  --train-csv "$tmp/reg_train.csv" --test-csv "$tmp/reg_test.csv" --regression --device cpu \
  --val-fraction 0.1 --stratify
# --model-from rebuilds the exported model (its modules are in the file): no training, the same
# predictions byte for byte; a model that does not fit the data is refused.
"$bin" --train-csv "$tmp/cls_train.csv" --test-csv "$tmp/cls_test.csv" --target label \
  --device cpu --model-from "$tmp/cls_model.safetensors" --epochs 0 \
  --predictions "$tmp/cls_pred2.csv" >/dev/null 2>&1 || fail "--model-from run"
cmp -s "$tmp/cls_pred.csv" "$tmp/cls_pred2.csv" || fail "--model-from predicts differently"
# --predict-csv: new rows, features only (here the test file without its label column, with its
# header): the same predictions as for the test set; without --predictions, refused.
python3 -c 'import csv,sys; w=csv.writer(open(sys.argv[2],"w")); [w.writerow([r[0], r[2]]) for r in csv.reader(open(sys.argv[1]))]' \
  "$tmp/cls_test.csv" "$tmp/cls_new.csv" || fail "writing cls_new.csv"
"$bin" --train-csv "$tmp/cls_train.csv" --test-csv "$tmp/cls_test.csv" --target label \
  --device cpu --model-from "$tmp/cls_model.safetensors" --epochs 0 \
  --predict-csv "$tmp/cls_new.csv" --predictions "$tmp/cls_pred3.csv" >/dev/null 2>&1 ||
  fail "--predict-csv run"
cmp -s "$tmp/cls_pred.csv" "$tmp/cls_pred3.csv" || fail "--predict-csv predicts differently"
expect_usage_error "--predict-csv: name the file for its predictions with --predictions" \
  --device cpu --train-csv "$tmp/cls_train.csv" --test-csv "$tmp/cls_test.csv" \
  --predict-csv "$tmp/cls_new.csv"
expect_usage_error "--predict-csv '$tmp/cls_test.csv' has 3 columns but the model takes" \
  --device cpu --train-csv "$tmp/cls_train.csv" --test-csv "$tmp/cls_test.csv" --target label \
  --predict-csv "$tmp/cls_test.csv" --predictions "$tmp/p.csv"
expect_usage_error "the model maps 2 features to 3 outputs, the data has 2 features and needs 1" \
  --device cpu --train-csv "$tmp/reg_train.csv" --test-csv "$tmp/reg_test.csv" --regression \
  --model-from "$tmp/cls_model.safetensors"
expect_usage_error "(a float target? add --regression)" --device cpu --train-csv \
  "$tmp/reg_train.csv" --test-csv "$tmp/reg_test.csv"
# A column the flags choose that the file lacks is the flag's error, naming the file's columns.
expect_usage_error "--target 'nosuch': .*no column named 'nosuch' in the header (its columns: " \
  --device cpu --train-csv "$tmp/cls_train.csv" --test-csv "$tmp/cls_test.csv" --target nosuch
expect_usage_error "--target '9': .*label column index 9 is outside the" --device cpu \
  --train-csv "$tmp/cls_train.csv" --test-csv "$tmp/cls_test.csv" --target 9
expect_usage_error "--categorical 'colour': .*no column named 'colour'" --device cpu \
  --train-csv "$tmp/cls_train.csv" --test-csv "$tmp/cls_test.csv" --target label \
  --categorical colour
expect_usage_error "--val-csv and --val-fraction both give validation data" --device cpu \
  --train-csv "$tmp/reg_train.csv" --test-csv "$tmp/reg_test.csv" --val-csv "$tmp/reg_test.csv" \
  --val-fraction 0.1
expect_usage_error "--train-csv and --test-csv go together" --device cpu --train-csv "$tmp/x.csv"
expect_usage_error "--target, --regression: only for CSV data" --data "$tmp" --device cpu \
  --target y --regression

if [ ! -d "$data" ]; then
  echo "skipped: no Fashion-MNIST at $data"
  exit 77
fi
expect_usage_error "--val-fraction 0.99 leaves none of the 10 training samples" --data "$data" \
  --device cpu --train-subset 10 --val-fraction 0.99 --epochs 1
expect_usage_error "--warmup 100 is not shorter than the run (2 epochs x 4 steps)" --data "$data" \
  --device cpu --train-subset 500 --epochs 2 --warmup 100
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
"$bin" --describe "$tmp/col_model.safetensors" >"$tmp/desc2.txt" 2>&1 || fail "--describe export"
grep -qF "one-hot: feature column 2 'colour' -> 4 features (blue, green, red, teal)" "$tmp/desc2.txt" &&
  grep -qF "standardized (5 features)" "$tmp/desc2.txt" || fail "--describe export: $(cat "$tmp/desc2.txt")"
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

# Note [cross-validation]: --folds 3 scores three models, each fold held out once; preprocessing
# (median imputation, standardization, balanced class weights) is fitted on each fold's training
# part alone. Fold 1 retrained as an ordinary run (its training rows in --train-csv, its rows in
# --test-csv, the same flags) must score exactly what the cross-validation reported for it.
python3 - "$tmp" <<'PY'
import random, sys
random.seed(5)
with open(sys.argv[1] + "/cv.csv", "w") as f:
    f.write("a,b,colour,label\n")
    for i in range(240):
        y = random.randrange(3) if i % 7 else 2
        a = random.gauss(y, 0.8)
        b = "" if i % 11 == 3 else f"{random.gauss(-y, 0.8):.5f}"
        f.write(f"{a:.5f},{b},{random.choice(['red', 'blue'])},{y}\n")
PY
cv_flags=(--target label --categorical colour --impute median --standardize --class-weights balanced
          --device cpu --epochs 4 --hidden 16 --lr 0.01 --seed 3)
"$bin" --train-csv "$tmp/cv.csv" "${cv_flags[@]}" --folds 3 --stratify --report "$tmp/cv.json" \
  --predictions "$tmp/cv_pred.csv" >"$tmp/cv.txt" 2>&1 || fail "--folds: $(tail -2 "$tmp/cv.txt")"
grep -q "cross-validation over 3 folds: val loss" "$tmp/cv.txt" || fail "--folds summary: $(tail -2 "$tmp/cv.txt")"
python3 - "$tmp" <<'PY' || fail "--folds report / fold files"
import json, sys
tmp = sys.argv[1]
cv = json.load(open(tmp + "/cv.json"))["cross_validation"]
rows = cv["val_rows"]
assert sorted(r for fold in rows for r in fold) == list(range(240)), "each row in one fold"
assert all(fold == sorted(fold) for fold in rows) and {len(f) for f in rows} == {80}, rows
for key in ("val_loss", "val_accuracy"):
    v = cv[key]["per_fold"]
    mean = sum(v) / 3
    std = (sum((x - mean) ** 2 for x in v) / 3) ** 0.5
    assert abs(cv[key]["mean"] - mean) < 1e-12 and abs(cv[key]["std"] - std) < 1e-12, (key, cv[key])
lines = open(tmp + "/cv.csv").read().splitlines()
held = set(rows[1])
with open(tmp + "/fold_train.csv", "w") as t, open(tmp + "/fold_val.csv", "w") as v:
    t.write(lines[0] + "\n")
    v.write(lines[0] + "\n")
    for r, line in enumerate(lines[1:]):
        (v if r in held else t).write(line + "\n")
PY
"$bin" --train-csv "$tmp/fold_train.csv" --test-csv "$tmp/fold_val.csv" "${cv_flags[@]}" \
  --report "$tmp/fold.json" --predictions "$tmp/fold_pred.csv" >"$tmp/fold.txt" 2>&1 ||
  fail "fold 1 alone: $(tail -2 "$tmp/fold.txt")"
python3 - "$tmp" <<'PY' || fail "fold 1 retrained alone scores differently"
import json, sys
cv = json.load(open(sys.argv[1] + "/cv.json"))["cross_validation"]
alone = json.load(open(sys.argv[1] + "/fold.json"))
assert alone["test_loss"] == cv["val_loss"]["per_fold"][1], (alone["test_loss"], cv["val_loss"])
assert alone["test_accuracy"] == cv["val_accuracy"]["per_fold"][1], (alone, cv["val_accuracy"])
# --predictions with --folds: out-of-fold predictions, a row per training row in file order;
# fold 1's rows are the alone run's test predictions, byte for byte.
oof = open(sys.argv[1] + "/cv_pred.csv").read().splitlines()
fold = open(sys.argv[1] + "/fold_pred.csv").read().splitlines()
assert len(oof) == 241 and oof[0] == fold[0], (len(oof), oof[0], fold[0])
assert [oof[1 + r] for r in cv["val_rows"][1]] == fold[1:], "fold 1's out-of-fold rows"
PY
expect_usage_error "--folds trains one model per fold, scores it on the held-out fold and keeps none: remove --val-fraction, --save" \
  --train-csv "$tmp/cv.csv" --device cpu --folds 3 --val-fraction 0.1 --save "$tmp/cv.safetensors"
expect_usage_error "--folds: with a first-order optimizer" --train-csv "$tmp/cv.csv" --device cpu \
  --folds 3 --optimizer lbfgs
expect_usage_error "--folds 300 is more than the 240 training samples" --train-csv "$tmp/cv.csv" \
  --target label --categorical colour --impute mean --device cpu --folds 300
expect_usage_error "--folds: must be >= 2 (got 1)" --folds 1
expect_usage_error "--train-csv and --test-csv go together" --train-csv "$tmp/cv.csv" --device cpu

# --folds with regression: each fold's R^2, MAE and loss (the targets' mean MSE), recomputed here
# from the out-of-fold predictions and the fixture's targets.
fxr="$(cd "$(dirname "$0")/../data/npy" && pwd)"
"$bin" --train-npy "$fxr/x_f4_c.npy,$fxr/y_reg.npy" --regression --folds 2 --device cpu --epochs 3 \
  --hidden 8 --report "$tmp/cvr.json" --predictions "$tmp/cvr_pred.csv" >"$tmp/cvr.txt" 2>&1 ||
  fail "--folds --regression: $(tail -2 "$tmp/cvr.txt")"
grep -q "val R^2 .* +- .*, val MAE" "$tmp/cvr.txt" || fail "--folds --regression summary: $(tail -1 "$tmp/cvr.txt")"
python3 - "$tmp" <<'PY' || fail "--folds --regression figures"
import csv, json, sys
cv = json.load(open(sys.argv[1] + "/cvr.json"))["cross_validation"]
y = [[0.5, -1.0], [1.5, 2.0], [2.5, -3.0], [3.5, 4.0]]  # tests/data/make_npy_fixtures.py
pred = [[float(v) for v in row] for row in list(csv.reader(open(sys.argv[1] + "/cvr_pred.csv")))[1:]]
for k, rows in enumerate(cv["val_rows"]):
    r2 = mae = mse = 0.0
    for t in range(2):
        mean = sum(y[r][t] for r in rows) / len(rows)
        res = sum((y[r][t] - pred[r][t]) ** 2 for r in rows)
        tot = sum((y[r][t] - mean) ** 2 for r in rows)
        r2 += (1 - res / tot) / 2
        mae += sum(abs(y[r][t] - pred[r][t]) for r in rows) / len(rows) / 2
        mse += res / len(rows) / 2
    for key, want in (("val_r2", r2), ("val_mae", mae), ("val_loss", mse)):
        got = cv[key]["per_fold"][k]
        assert abs(got - want) <= 1e-5 * max(1.0, abs(want)), (key, k, got, want)
PY

# NumPy arrays (data::load_npy): numpy-written fixtures holding the same features as float32 in
# C order, float64 in Fortran order and big-endian float16 train, test and predict alike - the
# predictions of the last, from the exported model alone, equal the test set's byte for byte.
fx="$(cd "$(dirname "$0")/../data/npy" && pwd)"
"$bin" --train-npy "$fx/x_f4_c.npy,$fx/y_i8.npy" --test-npy "$fx/x_f8_fortran.npy,$fx/y_i8.npy" \
  --device cpu --epochs 3 --hidden 8 --standardize --export-torch "$tmp/npy_model.safetensors" \
  --predictions "$tmp/npy_pred.csv" >"$tmp/npy.txt" 2>&1 || fail "--train-npy: $(tail -2 "$tmp/npy.txt")"
grep -q "data: 4 train, 0 validation, 4 test samples of 6 features" "$tmp/npy.txt" ||
  fail "--train-npy data: $(grep data: "$tmp/npy.txt")"
"$bin" --device cpu --model-from "$tmp/npy_model.safetensors" --predict-npy "$fx/x_f2_big.npy" \
  --predictions "$tmp/npy_pred2.csv" >"$tmp/npy2.txt" 2>&1 || fail "--predict-npy: $(tail -2 "$tmp/npy2.txt")"
cmp -s "$tmp/npy_pred.csv" "$tmp/npy_pred2.csv" ||
  fail "float16 big-endian features predict differently: $(head -3 "$tmp/npy_pred2.csv")"
"$bin" --train-npy "$fx/x_f4_c.npy,$fx/y_reg.npy" --test-npy "$fx/x_u1.npy,$fx/y_reg.npy" \
  --regression --device cpu --epochs 2 --hidden 8 --report "$tmp/npy_reg.json" >/dev/null 2>&1 ||
  fail "--train-npy --regression"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert len(r["test_per_target"]) == 2, r' \
  "$tmp/npy_reg.json" || fail "--train-npy --regression: two targets"
expect_usage_error "--train-npy '$fx/x_f4_c.npy': give the features and the targets as X.npy,Y.npy" \
  --train-npy "$fx/x_f4_c.npy" --test-npy "$fx/x_f4_c.npy,$fx/y_i8.npy" --device cpu
expect_usage_error "--train-npy and --test-npy go together" --train-npy "$fx/x_f4_c.npy,$fx/y_i8.npy" \
  --device cpu
expect_usage_error "--target: only for CSV data" --train-npy "$fx/x_f4_c.npy,$fx/y_i8.npy" \
  --test-npy "$fx/x_f4_c.npy,$fx/y_i8.npy" --target 0 --device cpu
expect_usage_error "--train-npy / --test-npy and --train-csv / --test-csv both name data" \
  --train-npy "$fx/x_f4_c.npy,$fx/y_i8.npy" --test-npy "$fx/x_f4_c.npy,$fx/y_i8.npy" \
  --train-csv "$tmp/cv.csv" --test-csv "$tmp/cv.csv" --device cpu
expect_usage_error "--predict-npy and --predict-csv both name rows to predict" \
  --model-from "$tmp/npy_model.safetensors" --predict-npy "$fx/x_u1.npy" --predict-csv "$tmp/cv.csv" \
  --predictions "$tmp/p.csv" --device cpu
expect_usage_error "--test-npy has 1 features per sample but --train-npy has 6" \
  --train-npy "$fx/x_f4_c.npy,$fx/y_i8.npy" --test-npy "$fx/x_1d.npy,$fx/y_i8.npy" --device cpu
out=$("$bin" --train-npy "$fx/x_f4_c.npy,$fx/y_negative.npy" --test-npy "$fx/x_f4_c.npy,$fx/y_i8.npy" \
  --device cpu 2>&1 >/dev/null)
[ $? -eq 1 ] && printf '%s' "$out" | grep -q "y_negative.npy: label -1 of sample 1 is not a class number" ||
  fail "a negative label: $out"

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
echo "cli: ok"
