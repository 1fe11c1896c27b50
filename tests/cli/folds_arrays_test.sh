#!/usr/bin/env bash
# cutrain-train's k-fold cross-validation (scored against ordinary runs of each fold and the
# out-of-fold predictions) and NumPy arrays (dtypes, orders, byte orders; exports predicting new
# arrays alone). No Fashion-MNIST needed.
source "$(dirname "$0")/common.sh" "$1"
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
# uint8 pixels (x_u1: 0 to 23) are trained as stored, and the log says so; --standardize quiets it.
"$bin" --train-npy "$fx/x_u1.npy,$fx/y_i8.npy" --test-npy "$fx/x_u1.npy,$fx/y_i8.npy" --device cpu \
  --epochs 1 --hidden 8 >"$tmp/npy_u1.txt" 2>&1 || fail "uint8 features: $(tail -2 "$tmp/npy_u1.txt")"
grep -q "note: --train-npy's features are whole numbers 0 to 23, trained as stored" "$tmp/npy_u1.txt" ||
  fail "no note for uint8 features: $(grep -E 'data:|note' "$tmp/npy_u1.txt")"
! grep -q "note:" "$tmp/npy.txt" || fail "a note for standardized features"
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
echo "folds and arrays: ok"
