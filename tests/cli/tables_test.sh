#!/usr/bin/env bash
# cutrain-train on CSV tables, end to end: class labels by number or name, regression with one or
# two targets, predictions, per-class figures, class weights, exports that predict new rows
# alone, one-hot categories, imputation, validation files, --model-from and --predict-csv; and the
# training options exercised on a small CSV task (loss scaling, the step path, augmentation,
# residual blocks, 16-bit precision). No Fashion-MNIST needed (cli_test.sh runs on it).
source "$(dirname "$0")/common.sh" "$1"
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
# An export given to --resume is the flag's mistake: the weights' flag is --init-from.
expect_usage_error "--resume '$tmp/cls_model.safetensors' holds weights without a training state" \
  --train-csv "$tmp/cls_train.csv" --test-csv "$tmp/cls_test.csv" --target label --device cpu \
  --hidden 16 --resume "$tmp/cls_model.safetensors"
# ... and weights of another model given to --init-from are its mismatch with --hidden (exit 2).
expect_usage_error "--init-from: .*tensor '0.weight' has shape \\[16, 2\\] but the model expects \\[8, 2\\]" \
  --train-csv "$tmp/cls_train.csv" --test-csv "$tmp/cls_test.csv" --target label --device cpu \
  --hidden 8 --init-from "$tmp/cls_model.safetensors"
# Note [validation split on resume]: a resume holds out the rows the checkpoint's run held out,
# or is refused naming the flags that did; the same flags resume.
cls=(--train-csv "$tmp/cls_train.csv" --test-csv "$tmp/cls_test.csv" --target label --device cpu --hidden 16)
"$bin" "${cls[@]}" --val-fraction 0.2 --epochs 1 --save "$tmp/split.safetensors" >"$tmp/split.txt" 2>&1 ||
  fail "--val-fraction --save: $(tail -2 "$tmp/split.txt")"
"$bin" "${cls[@]}" --epochs 1 --save "$tmp/nosplit.safetensors" >"$tmp/split.txt" 2>&1 ||
  fail "--save: $(tail -2 "$tmp/split.txt")"
for change in "--val-fraction 0.3" "--val-fraction 0.2 --seed 1" "--val-fraction 0.2 --stratify" ""; do
  # shellcheck disable=SC2086 # the change's flags, split
  expect_usage_error "--resume: the checkpoint held its validation rows out with --val-fraction 0.2 --seed 0 and this run .*; resume with --val-fraction 0.2 --seed 0 (" \
    "${cls[@]}" $change --epochs 2 --save "$tmp/split.safetensors" --resume "$tmp/split.safetensors"
done
expect_usage_error "--resume: the checkpoint held no validation rows out (no --val-fraction) and this run holds them out with --val-fraction 0.1 --seed 0: it would train on rows" \
  "${cls[@]}" --val-fraction 0.1 --epochs 2 --save "$tmp/nosplit.safetensors" --resume "$tmp/nosplit.safetensors"
"$bin" "${cls[@]}" --val-fraction 0.2 --epochs 2 --save "$tmp/split.safetensors" \
  --resume "$tmp/split.safetensors" >"$tmp/split.txt" 2>&1 || fail "resuming the split: $(tail -2 "$tmp/split.txt")"
# Note [arithmetic on resume]: a resume with another thread count says its bits will differ and
# how to repeat them; with the checkpoint's thread count it says nothing.
OMP_NUM_THREADS=1 "$bin" "${cls[@]}" --epochs 1 --save "$tmp/threads.safetensors" \
  >"$tmp/threads.txt" 2>&1 || fail "--save: $(tail -2 "$tmp/threads.txt")"
OMP_NUM_THREADS=2 "$bin" "${cls[@]}" --epochs 2 --save "$tmp/threads.safetensors" \
  --resume "$tmp/threads.safetensors" >"$tmp/threads.txt" 2>&1 || fail "resume: $(tail -2 "$tmp/threads.txt")"
grep -qF "note: --resume: the checkpoint was trained on cpu (1 OpenMP threads) and this run computes on cpu (2 OpenMP threads)" "$tmp/threads.txt" &&
  grep -qF "set OMP_NUM_THREADS to the checkpoint's thread count to repeat them" "$tmp/threads.txt" ||
  fail "a resume on another thread count: no note: $(head -3 "$tmp/threads.txt")"
OMP_NUM_THREADS=2 "$bin" "${cls[@]}" --epochs 3 --save "$tmp/threads.safetensors" \
  --resume "$tmp/threads.safetensors" >"$tmp/threads.txt" 2>&1 || fail "resume: $(tail -2 "$tmp/threads.txt")"
grep -q "note: --resume: the checkpoint was trained on" "$tmp/threads.txt" &&
  fail "a resume on the same thread count: $(grep note "$tmp/threads.txt")"
# Note [schedule span on resume]: a resume that spreads the default cosine schedule over more
# epochs than the checkpoint's run says where its learning rate comes from; the same span, or a
# schedule that spans nothing, says nothing.
"$bin" "${cls[@]}" --epochs 1 --save "$tmp/span.safetensors" >"$tmp/span.txt" 2>&1 ||
  fail "--save: $(tail -2 "$tmp/span.txt")"
"$bin" "${cls[@]}" --epochs 2 --save "$tmp/span.safetensors" --resume "$tmp/span.safetensors" \
  >"$tmp/span.txt" 2>&1 || fail "resume: $(tail -2 "$tmp/span.txt")"
grep -qF "note: --resume: the checkpoint's run spread its cosine schedule over 1 epochs and this run spreads it over 2" "$tmp/span.txt" ||
  fail "a resume over more epochs: no note: $(head -3 "$tmp/span.txt")"
"$bin" "${cls[@]}" --epochs 3 --schedule constant --save "$tmp/span.safetensors" \
  --resume "$tmp/span.safetensors" >"$tmp/span.txt" 2>&1 || fail "resume: $(tail -2 "$tmp/span.txt")"
grep -q "note: --resume" "$tmp/span.txt" && fail "a constant schedule's resume: $(grep note "$tmp/span.txt")"
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
# --model cnn without a block was an MLP under the CNN's name.
expect_usage_error "--channels: empty; --model cnn needs at least one block" --train-csv \
  "$tmp/cls_train.csv" --test-csv "$tmp/cls_test.csv" --target label --device cpu --model cnn \
  --channels '' --input-shape 1,1,2
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
# Note [test-time flips]: the same images as the augmentation's, refused where it is.
expect_usage_error "--input-shape: the default 1,28,28 must be C,H,W with C x H x W = the data's 2" \
  --train-csv "$tmp/cls_train.csv" --test-csv "$tmp/cls_test.csv" --target label --device cpu \
  --eval-flip
expect_usage_error "does not use --eval-flip" --train-csv "$tmp/cls_train.csv" \
  --test-csv "$tmp/cls_test.csv" --target label --device cpu --optimizer lbfgs --eval-flip
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
# The same run evaluated with test-time flips: the same training (no validation to judge), a
# test evaluation of the mean over both orders of the features.
"$bin" --train-csv "$tmp/cls_train.csv" --test-csv "$tmp/cls_test.csv" --target label \
  --device cpu --hidden 16 --dropout 0 --epochs 40 --lr 0.03 --input-shape 1,1,2 --augment-flip \
  --eval-flip --report "$tmp/cls_flip_eval.json" >"$tmp/cls_flip_eval.txt" 2>&1 ||
  fail "--eval-flip: $(tail -2 "$tmp/cls_flip_eval.txt")"
grep -q "^evaluate: each image's outputs averaged with its mirror image's" "$tmp/cls_flip_eval.txt" ||
  fail "--eval-flip: the run does not say how it evaluates"
python3 - "$tmp" <<'PY' || fail "--augment-flip / --eval-flip reports"
import json, sys
d = sys.argv[1]
plain, flip, both = (json.load(open(f"{d}/{n}.json")) for n in ("cls", "cls_flip", "cls_flip_eval"))
assert flip["augment"] == {"shift": 0, "flip": True}, flip["augment"]
assert plain["augment"] == {"shift": 0, "flip": False}, plain["augment"]
assert flip["test_accuracy"] > 0.95 and flip["test_loss"] != plain["test_loss"], flip
assert not flip["eval_flip"] and both["eval_flip"], (flip["eval_flip"], both["eval_flip"])
assert both["train_loss"] == flip["train_loss"], (both["train_loss"], flip["train_loss"])
assert both["test_loss"] != flip["test_loss"] and both["test_accuracy"] > 0.95, both
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
# --describe: an export says how its data is prepared.
"$bin" --describe "$tmp/col_model.safetensors" >"$tmp/desc2.txt" 2>&1 || fail "--describe export"
grep -qF "one-hot: feature column 2 'colour' -> 4 features (blue, green, red, teal)" "$tmp/desc2.txt" &&
  grep -qF "standardized (5 features)" "$tmp/desc2.txt" || fail "--describe export: $(cat "$tmp/desc2.txt")"
grep -qxF "  feature columns: noise, colour" "$tmp/desc2.txt" ||
  fail "--describe: the feature columns: $(cat "$tmp/desc2.txt")"
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
# Note [test-time flips]: a model file predicts alone with the flips its run predicted with - the
# same file - and without them otherwise; its ONNX conversion holds them.
"$bin" --train-csv "$tmp/cls_train.csv" --test-csv "$tmp/cls_test.csv" --target label \
  --device cpu --hidden 16 --dropout 0 --epochs 40 --lr 0.03 --input-shape 1,1,2 --augment-flip \
  --eval-flip --predict-csv "$tmp/cls_new.csv" --predictions "$tmp/flip_pred.csv" \
  --export-torch "$tmp/flip_model.safetensors" >/dev/null 2>&1 || fail "--eval-flip --predict-csv"
"$bin" --device cpu --model-from "$tmp/flip_model.safetensors" --predict-csv "$tmp/cls_new.csv" \
  --predictions "$tmp/flip_pred2.csv" --eval-flip --input-shape 1,1,2 --export-onnx \
  "$tmp/flip.onnx" >"$tmp/flip_pred2.txt" 2>&1 || fail "--model-from --eval-flip: $(tail -2 "$tmp/flip_pred2.txt")"
cmp -s "$tmp/flip_pred.csv" "$tmp/flip_pred2.csv" || fail "--eval-flip predicts differently alone"
grep -q "with test-time flips" "$tmp/flip_pred2.txt" || fail "--model-from --eval-flip: not said"
"$bin" --device cpu --model-from "$tmp/flip_model.safetensors" --predict-csv "$tmp/cls_new.csv" \
  --predictions "$tmp/flip_pred3.csv" >/dev/null 2>&1 || fail "--model-from without --eval-flip"
cmp -s "$tmp/flip_pred.csv" "$tmp/flip_pred3.csv" && fail "--eval-flip: the same predictions without"
expect_usage_error "--input-shape: the default 1,28,28 must be C,H,W with C x H x W = the data's 2" \
  --device cpu --model-from "$tmp/flip_model.safetensors" --predict-csv "$tmp/cls_new.csv" \
  --predictions "$tmp/p.csv" --eval-flip
expect_usage_error "--predict-csv: name the file for its predictions with --predictions" \
  --device cpu --train-csv "$tmp/cls_train.csv" --test-csv "$tmp/cls_test.csv" \
  --predict-csv "$tmp/cls_new.csv"
# A labelled file given to predict: its label column named (by the header), or counted.
expect_usage_error "--predict-csv '$tmp/cls_test.csv': its column 'label' is not among the model's feature columns (a, b)" \
  --device cpu --train-csv "$tmp/cls_train.csv" --test-csv "$tmp/cls_test.csv" --target label \
  --predict-csv "$tmp/cls_test.csv" --predictions "$tmp/p.csv"
tail -n +2 "$tmp/cls_test.csv" >"$tmp/cls_test_rows.csv"
expect_usage_error "--predict-csv '$tmp/cls_test_rows.csv' has 3 columns but the model takes" \
  --device cpu --train-csv "$tmp/cls_train.csv" --test-csv "$tmp/cls_test.csv" --target label \
  --predict-csv "$tmp/cls_test_rows.csv" --predictions "$tmp/p.csv"
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
echo "tables: ok"
