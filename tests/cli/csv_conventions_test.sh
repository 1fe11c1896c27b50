#!/usr/bin/env bash
# How CSV files are written, end to end. Note [CSV quoting]: a file written as R's write.csv writes it (every name and text
# cell quoted) with categories and class names holding commas, quotes and blanks trains with them
# by name; --predictions quotes the names it writes, so Python's csv module (and cutrain) read them
# back as they were; the export predicts a quoted file of new rows as the run did. Note [CSV
# separators]: the same files written as Excel writes them where the decimal mark is a comma (';'
# between cells, "0,5"), and as a TSV, train and predict the same bytes. Note [numbered header]:
# pandas' header of an unnamed frame, "0,1,2,...", is a header, not a sample; Note [index
# columns]: the row numbers to_csv writes without index=False are refused, not trained on.
# Note [a label column left a feature]: a first column named "label" (Kaggle's MNIST CSVs) asks
# for --target rather than training on the last pixel. --drop-columns leaves identifiers out, in
# training and in the export's predictions alike; Note [id column]: --id-column leaves one out
# and writes it beside each prediction (the test set's, new rows', the folds' out-of-fold ones).
set -uo pipefail
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
command -v python3 >/dev/null || { echo "python3 missing: skipped"; exit 77; }

python3 - "$tmp" <<'PY' || fail "writing the files"
import random, sys
random.seed(7)
cities = ['Paris, FR', 'Oslo', 'New "York"']
names = ['big, round', 'say "hi"', ' padded ']
def q(s):
    return '"' + s.replace('"', '""') + '"'
for split, rows in (("train", 300), ("test", 90)):
    # The labelled file, and its features alone (new data to predict), with CRLF line ends.
    with open(f"{sys.argv[1]}/{split}.csv", "w", newline="") as f, \
         open(f"{sys.argv[1]}/{split}_x.csv", "w", newline="") as x:
        f.write('"x","city","label"\r\n')
        x.write('"x","city"\r\n')
        for i in range(rows):
            k = i % 3
            features = f"{random.gauss(0, 1)},{q(cities[k])}"
            f.write(f"{features},{q(names[k])}\r\n")
            x.write(f"{features}\r\n")
# The same cells with ';' between them and decimal commas (quoting as before), and as a TSV.
import csv
for split in ("train", "test", "train_x", "test_x"):
    rows = list(csv.reader(open(f"{sys.argv[1]}/{split}.csv", newline="")))
    with open(f"{sys.argv[1]}/{split}_excel.csv", "w", newline="") as f:
        for i, r in enumerate(rows):
            cells = [c.replace(".", ",") if i and j == 0 else c for j, c in enumerate(r)]
            f.write(";".join(q(c) if j else c for j, c in enumerate(cells)) + "\r\n")
    with open(f"{sys.argv[1]}/{split}.tsv", "w", newline="") as f:
        csv.writer(f, delimiter="\t").writerows(rows)
PY

run() { "$bin" --device cpu --train-csv "$tmp/train.csv" --test-csv "$tmp/test.csv" --target label \
  --categorical city --epochs 20 --lr 0.01 --seed 3 "$@" >"$tmp/out" 2>&1; }
run --predictions "$tmp/p.csv" --export-torch "$tmp/m.safetensors" ||
  fail "training on the quoted file: $(tail -3 "$tmp/out")"
# The class is the city (one-hot, known only by its quoted text): learned exactly.
grep -q "test accuracy 1.0000" "$tmp/out" || fail "the quoted categories were not learned: $(grep 'test acc' "$tmp/out")"
python3 - "$tmp" <<'PY' || fail "the predictions file"
import csv, sys
rows = list(csv.reader(open(f"{sys.argv[1]}/p.csv", newline="")))
assert rows[0][:2] == ["class", "name"], rows[0]
names = ['big, round', 'say "hi"', ' padded ']
order = sorted(names)  # classes numbered by sorted name
truth = [r[2] for r in list(csv.reader(open(f"{sys.argv[1]}/test.csv", newline="")))[1:]]
assert len(rows) == 1 + len(truth), len(rows)
for r, t in zip(rows[1:], truth):
    assert r[1] == order[int(r[0])] == t, (r, t)
PY
# The export alone predicts the quoted rows of new data (features only) as the run did.
"$bin" --device cpu --model-from "$tmp/m.safetensors" --predict-csv "$tmp/test_x.csv" \
  --predictions "$tmp/p2.csv" >"$tmp/out2" 2>&1 || fail "--model-from: $(tail -3 "$tmp/out2")"
cmp -s "$tmp/p.csv" "$tmp/p2.csv" || fail "the export's predictions differ from the run's"

# Separators: the Excel files train to the same predictions, byte for byte; the TSV of new rows
# predicts them too.
"$bin" --device cpu --train-csv "$tmp/train_excel.csv" --test-csv "$tmp/test_excel.csv" \
  --target label --categorical city --epochs 20 --lr 0.01 --seed 3 --csv-separator ';' \
  --csv-decimal , --predictions "$tmp/p3.csv" >"$tmp/out3" 2>&1 || fail "';' with decimal commas: $(tail -3 "$tmp/out3")"
cmp -s "$tmp/p.csv" "$tmp/p3.csv" || fail "the ';' file's predictions differ from the ',' file's"
"$bin" --device cpu --model-from "$tmp/m.safetensors" --predict-csv "$tmp/test_x.tsv" \
  --csv-separator tab --predictions "$tmp/p4.csv" >"$tmp/out4" 2>&1 || fail "TSV: $(tail -3 "$tmp/out4")"
cmp -s "$tmp/p.csv" "$tmp/p4.csv" || fail "the TSV's predictions differ"
# Read with the wrong separator, a file says which it uses; flags that cannot apply: exit 2.
"$bin" --device cpu --train-csv "$tmp/train_excel.csv" --test-csv "$tmp/test_excel.csv" \
  --target label >"$tmp/out5" 2>&1
grep -q "separated by ';': give that separator (CsvOptions::separator, cutrain-train --csv-separator ';')" "$tmp/out5" ||
  fail "the ';' file read with ',': $(tail -2 "$tmp/out5")"
expect_usage() {
  "$bin" --device cpu "${@:2}" >"$tmp/out6" 2>&1
  local rc=$?
  [ $rc -eq 2 ] && grep -q -- "$1" "$tmp/out6" || fail "${*:2}: rc $rc, $(tail -2 "$tmp/out6")"
}
expect_usage "the cells need another separator" --train-csv "$tmp/train.csv" \
  --test-csv "$tmp/test.csv" --csv-decimal ,
expect_usage "--csv-separator: only for CSV data" --csv-separator ';' --epochs 1
expect_usage "--csv-header: 'maybe' is not one of auto, yes, no" --train-csv "$tmp/train.csv" \
  --test-csv "$tmp/test.csv" --csv-header maybe

# pd.DataFrame(array).to_csv(index=False): the columns named 0..4, the label last.
python3 - "$tmp" <<'PY' || fail "writing the numbered files"
import random, sys
random.seed(11)
for split, rows in (("ntrain", 120), ("ntest", 40)):
    with open(f"{sys.argv[1]}/{split}.csv", "w") as f:
        f.write("0,1,2,3,4\n")
        for _ in range(rows):
            x = [round(random.gauss(0, 1), 3) for _ in range(4)]
            f.write(",".join(map(str, x)) + f",{int(x[0] > 0)}\n")
PY
"$bin" --device cpu --train-csv "$tmp/ntrain.csv" --test-csv "$tmp/ntest.csv" --epochs 1 \
  >"$tmp/out7" 2>&1 || fail "the numbered header: $(tail -2 "$tmp/out7")"
grep -q "data: 120 train, 0 validation, 40 test samples of 4 features" "$tmp/out7" &&
  grep -q "Linear  256 -> 2 " "$tmp/out7" || fail "the numbered header was read as a sample: $(grep -E 'data:|-> [0-9]+ ' "$tmp/out7")"
# --csv-header no reads it as data again: one more row, and its '4' a fifth class.
"$bin" --device cpu --train-csv "$tmp/ntrain.csv" --test-csv "$tmp/ntest.csv" --epochs 1 \
  --csv-header no >"$tmp/out8" 2>&1 || fail "--csv-header no: $(tail -2 "$tmp/out8")"
grep -q "data: 121 train, 0 validation, 41 test samples" "$tmp/out8" &&
  grep -q "Linear  256 -> 5 " "$tmp/out8" || fail "--csv-header no: $(grep -E 'data:|-> [0-9]+ ' "$tmp/out8")"
# The same files written with pandas' index (df.to_csv without index=False): exit 1, saying so.
for split in ntrain ntest; do
  awk -F, 'NR == 1 { print "," $0; next } { print NR - 2 "," $0 }' "$tmp/$split.csv" >"$tmp/${split}_i.csv"
done
"$bin" --device cpu --train-csv "$tmp/ntrain_i.csv" --test-csv "$tmp/ntest_i.csv" --epochs 1 >"$tmp/out9" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q "column 1 (no name) numbers the rows 0, 1, 2, ...: the index pandas' DataFrame.to_csv writes unless index=False" "$tmp/out9" ||
  fail "the index column: rc $rc, $(tail -2 "$tmp/out9")"

expect_usage "--csv-separator: ' ' is not one of ',', ';', tab, '|'" --train-csv "$tmp/train.csv" --test-csv "$tmp/test.csv" \
  --csv-separator ' '
# label first, as Kaggle's (Fashion-)MNIST CSVs: the default last column is refused, exit 2.
awk -F, 'NR == 1 { print "label,a,b,c,d"; next } { print $5 "," $1 "," $2 "," $3 "," $4 }' \
  "$tmp/ntrain.csv" >"$tmp/first.csv"
expect_usage "its column 'label' (column 1) would be a feature, the label being the last column ('d') as none was chosen: name the label column (CsvOptions::label_name; cutrain-train --target 'label', or --target -1 for the last column)" \
  --train-csv "$tmp/first.csv" --test-csv "$tmp/first.csv"
"$bin" --device cpu --train-csv "$tmp/first.csv" --test-csv "$tmp/first.csv" --target label \
  --epochs 1 >"$tmp/out10" 2>&1 || fail "--target label: $(tail -2 "$tmp/out10")"
"$bin" --device cpu --train-csv "$tmp/first.csv" --test-csv "$tmp/first.csv" --target -1 \
  --epochs 1 --regression >"$tmp/out11" 2>&1 || fail "--target -1: $(tail -2 "$tmp/out11")"
# Titanic-like: an id and a name beside the features; the export drops them from new rows too,
# whether the rows have them or not.
python3 - "$tmp" <<'PY' || fail "writing the id files"
import random, sys
random.seed(13)
for split, rows in (("idtrain", 200), ("idtest", 60)):
    with open(f"{sys.argv[1]}/{split}.csv", "w") as f, open(f"{sys.argv[1]}/{split}_new.csv", "w") as n, \
         open(f"{sys.argv[1]}/{split}_bare.csv", "w") as b:
        f.write("PassengerId,Name,a,b,Survived\n")
        n.write("PassengerId,Name,a,b\n")
        b.write("a,b\n")
        for i in range(rows):
            a, c = round(random.gauss(0, 1), 3), round(random.gauss(0, 1), 3)
            f.write(f'{i + 1},"Person, {i}",{a},{c},{int(a + c > 0)}\n')
            n.write(f'{i + 1},"Person, {i}",{a},{c}\n')
            b.write(f"{a},{c}\n")
PY
"$bin" --device cpu --train-csv "$tmp/idtrain.csv" --test-csv "$tmp/idtest.csv" --target Survived \
  --drop-columns PassengerId,Name --epochs 5 --export-torch "$tmp/id.safetensors" \
  --predict-csv "$tmp/idtest_new.csv" --predictions "$tmp/idp.csv" >"$tmp/out12" 2>&1 ||
  fail "--drop-columns: $(tail -2 "$tmp/out12")"
grep -q "data: 200 train, 0 validation, 60 test samples of 2 features" "$tmp/out12" ||
  fail "--drop-columns: $(grep data: "$tmp/out12")"
for rows in new bare; do
  "$bin" --device cpu --model-from "$tmp/id.safetensors" --predict-csv "$tmp/idtest_$rows.csv" \
    --predictions "$tmp/idp_$rows.csv" >"$tmp/out13" 2>&1 || fail "--model-from, $rows rows: $(tail -2 "$tmp/out13")"
  cmp -s "$tmp/idp.csv" "$tmp/idp_$rows.csv" || fail "the export predicts the $rows rows otherwise"
done
# A labelled file given to predict: its label column is named, not counted.
expect_usage "--predict-csv '.*idtest.csv': its column 'Survived' is not among the model's feature columns (a, b): give those only (a label column? leave it out" \
  --model-from "$tmp/id.safetensors" --predict-csv "$tmp/idtest.csv" --predictions "$tmp/x.csv"
# ... and a test file with a column more, named too.
awk 'NR == 1 { print $0 ",Ticket"; next } { print $0 "," NR }' "$tmp/idtest.csv" >"$tmp/idtest_more.csv"
expect_usage "--test-csv '.*idtest_more.csv': its column 'Ticket' is not among the model's feature columns (a, b): give those only (an identifier the training file lacks?" \
  --train-csv "$tmp/idtrain.csv" --test-csv "$tmp/idtest_more.csv" --target Survived \
  --drop-columns PassengerId,Name
"$bin" --describe "$tmp/id.safetensors" | grep -q "dropped columns: PassengerId, Name" ||
  fail "--describe does not list the dropped columns"
expect_usage "--drop-columns 'Passenger': .*no column named 'Passenger'" --train-csv \
  "$tmp/idtrain.csv" --test-csv "$tmp/idtest.csv" --target Survived --drop-columns Passenger
expect_usage "--drop-columns: 'a,,b' names an empty column" --train-csv "$tmp/idtrain.csv" \
  --test-csv "$tmp/idtest.csv" --target Survived --drop-columns a,,b
# --id-column: the same model as --drop-columns' (the same features), each prediction after its
# row's id; the export carries the column to new rows that have it.
"$bin" --device cpu --train-csv "$tmp/idtrain.csv" --test-csv "$tmp/idtest.csv" --target Survived \
  --id-column PassengerId --drop-columns Name --epochs 5 --export-torch "$tmp/ids.safetensors" \
  --predictions "$tmp/ids.csv" >"$tmp/out14" 2>&1 || fail "--id-column: $(tail -2 "$tmp/out14")"
cut -d, -f1 "$tmp/idtest.csv" | cmp -s - <(cut -d, -f1 "$tmp/ids.csv") ||
  fail "--id-column: the first column is not the test rows' ids: $(head -2 "$tmp/ids.csv")"
cut -d, -f2- "$tmp/ids.csv" | cmp -s - "$tmp/idp.csv" ||
  fail "--id-column: predictions differ from --drop-columns'"
"$bin" --device cpu --model-from "$tmp/ids.safetensors" --predict-csv "$tmp/idtest_new.csv" \
  --predictions "$tmp/ids_new.csv" >"$tmp/out15" 2>&1 || fail "--model-from, ids: $(tail -2 "$tmp/out15")"
cmp -s "$tmp/ids.csv" "$tmp/ids_new.csv" || fail "the export's predictions lack the ids"
"$bin" --device cpu --model-from "$tmp/ids.safetensors" --predict-csv "$tmp/idtest_bare.csv" \
  --predictions "$tmp/ids_bare.csv" >"$tmp/out16" 2>&1 || fail "--model-from, no ids: $(tail -2 "$tmp/out16")"
grep -q "has no column 'PassengerId' (the training rows' ids): predictions without ids" "$tmp/out16" &&
  cmp -s "$tmp/idp.csv" "$tmp/ids_bare.csv" || fail "rows without ids: $(tail -2 "$tmp/out16")"
expect_usage "--id-column 'PassengerId': --predict-csv '.*idtest_bare.csv' has no such column in its header" \
  --model-from "$tmp/ids.safetensors" --predict-csv "$tmp/idtest_bare.csv" --predictions "$tmp/x.csv" \
  --id-column PassengerId
"$bin" --describe "$tmp/ids.safetensors" | grep -q "id column: PassengerId" ||
  fail "--describe does not name the id column"
"$bin" --device cpu --train-csv "$tmp/idtrain.csv" --target Survived --id-column PassengerId \
  --drop-columns Name --folds 3 --epochs 1 --predictions "$tmp/oof.csv" >"$tmp/out17" 2>&1 ||
  fail "--folds with --id-column: $(tail -2 "$tmp/out17")"
cut -d, -f1 "$tmp/idtrain.csv" | cmp -s - <(cut -d, -f1 "$tmp/oof.csv") ||
  fail "--folds: the out-of-fold predictions are not after the training rows' ids"
expect_usage "--id-column 'Survived': .*column 'Survived' is the label or a target; it cannot also be the id column" \
  --train-csv "$tmp/idtrain.csv" --test-csv "$tmp/idtest.csv" --target Survived --id-column Survived
expect_usage "--id-column 'Name': .*column 'Name' is dropped; it cannot also be the id column" \
  --train-csv "$tmp/idtrain.csv" --test-csv "$tmp/idtest.csv" --target Survived \
  --drop-columns Name --id-column Name
expect_usage "--id-column: only for CSV data" --id-column PassengerId --epochs 1
# A feature column numbering the rows is said (not refused: a day number can be a feature), and
# a text id names the flags that leave it out.
grep -q "numbers the rows" "$tmp/out14" && fail "--id-column: a note on a column left out"
"$bin" --device cpu --train-csv "$tmp/idtrain.csv" --test-csv "$tmp/idtest.csv" --target Survived \
  --drop-columns Name --epochs 1 >"$tmp/out18" 2>&1 || fail "PassengerId kept: $(tail -2 "$tmp/out18")"
grep -q "note: --train-csv's column 'PassengerId' numbers the rows from 1, trained as a feature: an identifier? leave it out with --id-column" "$tmp/out18" ||
  fail "no note on PassengerId: $(grep -m1 note "$tmp/out18")"
"$bin" --device cpu --train-csv "$tmp/idtrain.csv" --test-csv "$tmp/idtest.csv" --target Survived \
  --drop-columns PassengerId --epochs 1 >"$tmp/out19" 2>&1
[ $? -eq 1 ] && grep -q "'Person, 0' is not a finite number (categories? .*; ids or free text? leave it out: --id-column, --drop-columns)" "$tmp/out19" ||
  fail "a text column: $(tail -1 "$tmp/out19")"
# Note [classes without a training sample]: 1-based labels (R's, MATLAB's) and a class only the
# test file has are said; -1/+1 labels are refused naming the mapping.
awk 'BEGIN { print "a,b,y"; for (i = 0; i < 40; i++) print i % 5 "," (i * 7) % 3 "," 1 + i % 2 }' \
  >"$tmp/onebased.csv"
awk -F, 'NR > 1 && NR % 9 == 0 { print $1 "," $2 ",3"; next } { print }' "$tmp/onebased.csv" \
  >"$tmp/extra_class.csv"
"$bin" --device cpu --train-csv "$tmp/onebased.csv" --test-csv "$tmp/onebased.csv" --epochs 1 \
  >"$tmp/out20" 2>&1 || fail "1-based labels: $(tail -2 "$tmp/out20")"
grep -q "note: --train-csv '.*onebased.csv' has no sample of class 0, its labels running from 1 to 2: 1-based labels" "$tmp/out20" ||
  fail "no note on 1-based labels: $(grep -m1 note "$tmp/out20")"
"$bin" --device cpu --train-csv "$tmp/onebased.csv" --test-csv "$tmp/extra_class.csv" --epochs 1 \
  >"$tmp/out21" 2>&1 || fail "a test-only class: $(tail -2 "$tmp/out21")"
grep -q "has no sample of classes 0, 3 (of 0 to 3): the model cannot learn to predict them" "$tmp/out21" ||
  fail "no note on a test-only class: $(grep -m1 note "$tmp/out21")"
"$bin" --device cpu --train-csv "$tmp/idtrain.csv" --test-csv "$tmp/idtest.csv" --target Survived \
  --drop-columns Name --epochs 1 2>/dev/null | grep -q "no sample of class" && fail "a note for classes all trained"
awk -F, 'NR == 1 { print; next } { print $1 "," $2 "," ($3 == 1 ? 1 : -1) }' "$tmp/onebased.csv" >"$tmp/pm.csv"
"$bin" --device cpu --train-csv "$tmp/pm.csv" --test-csv "$tmp/pm.csv" --epochs 1 >"$tmp/out22" 2>&1
[ $? -eq 1 ] && grep -q "label -1 is not a non-negative integer (labels -1 and 1, an SVM's? map them to the classes 0 and 1" "$tmp/out22" &&
  ! grep -q "add --regression" "$tmp/out22" || fail "-1/+1 labels: $(tail -1 "$tmp/out22")"
# Note [data spec on resume]: a checkpoint resumes only on data prepared as it was trained on.
"$bin" --device cpu --train-csv "$tmp/idtrain.csv" --test-csv "$tmp/idtest.csv" --target Survived \
  --drop-columns PassengerId,Name --epochs 1 --save "$tmp/ck.safetensors" >"$tmp/out23" 2>&1 ||
  fail "--save: $(tail -2 "$tmp/out23")"
awk -F, 'NR == 1 { print "PassengerId,Name,b,a,Survived"; next } { print }' "$tmp/idtrain.csv" \
  >"$tmp/swapped.csv"  # the header of a file whose columns moved: a and b change places
expect_usage "--resume: .*trained on data prepared otherwise - this run gives feature columns b, a where the checkpoint's were a, b" \
  --train-csv "$tmp/swapped.csv" --test-csv "$tmp/swapped.csv" --target Survived \
  --drop-columns PassengerId,Name --epochs 2 --save "$tmp/ck.safetensors" --resume "$tmp/ck.safetensors"
expect_usage "--resume: .*features standardized where the checkpoint's were not" \
  --train-csv "$tmp/idtrain.csv" --test-csv "$tmp/idtest.csv" --target Survived --standardize \
  --drop-columns PassengerId,Name --epochs 2 --save "$tmp/ck.safetensors" --resume "$tmp/ck.safetensors"
"$bin" --device cpu --train-csv "$tmp/idtrain.csv" --test-csv "$tmp/idtest.csv" --target Survived \
  --id-column PassengerId --drop-columns Name --epochs 2 --save "$tmp/ck.safetensors" \
  --resume "$tmp/ck.safetensors" >"$tmp/out24" 2>&1 || fail "resuming with the same features: $(tail -2 "$tmp/out24")"
# ... and weights trained further read the columns they were trained on (Note [feature columns by
# name]): --model-from's export and --init-from's checkpoint alike.
for flag in --model-from --init-from; do
  expect_usage "--train-csv '.*swapped.csv' (training $flag '.*' further): its feature column 1 is 'b' where the training file had 'a'" \
    --train-csv "$tmp/swapped.csv" --test-csv "$tmp/swapped.csv" --target Survived \
    --drop-columns PassengerId,Name --epochs 1 "$flag" "$tmp/id.safetensors"
done
"$bin" --device cpu --train-csv "$tmp/idtrain.csv" --test-csv "$tmp/idtest.csv" --target Survived \
  --drop-columns PassengerId,Name --epochs 1 --model-from "$tmp/id.safetensors" >"$tmp/out25" 2>&1 ||
  fail "--model-from with its own columns: $(tail -2 "$tmp/out25")"
echo "csv conventions: ok"
