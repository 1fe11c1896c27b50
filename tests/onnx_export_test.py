#!/usr/bin/python3
"""cutrain-train --export-onnx checked by the ONNX checker and run by ONNX Runtime: every layer
kind, the data preparation inside the graph, and the whole Fashion-MNIST test set.

    /usr/bin/python3 tests/onnx_export_test.py build/bin/cutrain-train PYDEPS_DIR [DATA_DIR]

PyPI's onnx and onnxruntime are test-only dependencies, installed into PYDEPS_DIR (pip --target)
when missing; without them (no network) the test is skipped (exit 77) and says why. Each case
feeds ONNX Runtime the raw rows cutrain-train read and compares its probabilities with
cutrain-train's --predictions for the same rows: within 1e-5, the same class for every row.

1. Tables (CSV with missing cells): MLPs with each activation, BatchNorm1d and Dropout, with
   --impute and --standardize in the graph.
2. --model cnn --residual-blocks 1 on NumPy images (Unflatten, Conv2d, BatchNorm2d, MaxPool2d,
   Residual as Add, Flatten).
3. A torch.nn.Sequential written by tools/cutrain_torch.py save_model (strided, dilated and
   bias-free, depthwise and grouped convolutions, AvgPool2d with padding, AdaptiveAvgPool2d to 2x2 and to 1x1,
   LeakyReLU, GELU, SiLU, ELU, ReLU6, Hardswish, residual blocks - cutrain_torch.Residual, one inside another - as Add)
   converted by --model-from FILE --export-onnx alone.
2b. --eval-flip: the test-time flips inside the graph (Slice, Concat, ReduceMean).
4. Fashion-MNIST: raw pixels in (the scale is in the graph), all 10000 test images.
5. Random torch.nn.Sequential models (seeded): MLPs and CNNs drawn from every module cutrain
   reads, with random kernel sizes, strides, paddings, dilations, groups, biases, pooling windows,
   BatchNorm statistics, nested residual blocks and blocks with projection shortcuts, adaptive
   pooling to any size (a MatMul by the pooling matrix where the windows differ) - each read
   by --model-from, its predictions compared with PyTorch's own (within 1e-5) as well as with
   ONNX Runtime's.
"""
import csv
import gzip
import importlib
import os
import struct
import subprocess
import sys
import tempfile

BINARY, PYDEPS = sys.argv[1], sys.argv[2]
DATA = sys.argv[3] if len(sys.argv) > 3 else "/usr/share/datasets/fashion-mnist"
HERE = os.path.dirname(os.path.abspath(__file__))
PINS = ["onnx==1.17.0", "onnxruntime==1.20.1"]


def import_onnx():
    sys.path.insert(0, PYDEPS)
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        return True
    except ImportError:
        return False


if not import_onnx():
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "--target", PYDEPS, *PINS], capture_output=True, text=True, timeout=600)
    for name in [m for m in list(sys.modules) if m.split(".")[0] in ("onnx", "onnxruntime", "numpy")]:
        del sys.modules[name]
    importlib.invalidate_caches()  # the finder cached PYDEPS' listing from before the install
    if not import_onnx():
        print(f"skipped: cannot install {' '.join(PINS)} into {PYDEPS}: "
              f"{(r.stderr or r.stdout).strip().splitlines()[-1:] or ['no output']}")
        sys.exit(77)

import numpy as np  # noqa: E402  (PYDEPS' numpy: onnxruntime's)
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402

failures = []


def run(*args, expect=0):
    r = subprocess.run([BINARY, "--device", "cpu", *args], capture_output=True, text=True)
    if r.returncode != expect:
        raise SystemExit(f"cutrain-train {' '.join(args)} exited {r.returncode}:\n{r.stderr}")
    return r


def onnx_probs(path, x):
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    (name,) = [o.name for o in session.get_outputs()]
    return session.run(None, {"input": x.astype(np.float32)})[0], name, model


def cutrain_probs(predictions_csv):
    with open(predictions_csv) as f:
        rows = list(csv.reader(f))
    columns = [i for i, h in enumerate(rows[0]) if h.startswith("p")]
    return np.array([[float(r[i]) for i in columns] for r in rows[1:]], dtype=np.float64)


def compare(what, onnx_path, x, predictions_csv, want_output="probabilities"):
    got, name, model = onnx_probs(onnx_path, x)
    ours = cutrain_probs(predictions_csv)
    worst = float(np.max(np.abs(got - ours)))
    agree = float(np.mean(got.argmax(1) == ours.argmax(1)))
    ops = sorted({n.op_type for n in model.graph.node})
    print(f"{what}: {len(x)} rows, probabilities within {worst:.2g}, classes agree on "
          f"{agree:.2%}; ops {', '.join(ops)}")
    if name != want_output or got.shape != ours.shape or worst > 1e-5 or agree < 1.0:
        failures.append(f"{what}: output {name} {got.shape} vs {ours.shape}, worst {worst:.3g}, "
                        f"agree {agree:.4%}")
    return model


def tables(tmp):
    rng = np.random.default_rng(3)
    n = 240
    y = rng.integers(0, 3, n)
    x = np.stack([y + rng.normal(0, 0.4, n), rng.normal(5, 3, n), y * 10 + rng.normal(0, 2, n)], 1)
    x[rng.random(x.shape) < 0.05] = np.nan  # missing cells: the graph fills them
    path = os.path.join(tmp, "t.csv")
    with open(path, "w") as f:
        f.write("a,b,c,label\n")
        for row, label in zip(x, y):
            f.write(",".join("NA" if np.isnan(v) else f"{v:.6g}" for v in row) + f",{label}\n")
    raw = np.array([[np.nan if v == "NA" else float(v) for v in line.split(",")[:3]]
                    for line in open(path).read().splitlines()[1:]])
    for act in ("relu", "leaky_relu", "tanh", "sigmoid", "gelu", "silu"):
        out, pred = os.path.join(tmp, f"{act}.onnx"), os.path.join(tmp, f"{act}.csv")
        run("--train-csv", path, "--test-csv", path, "--target", "label", "--impute", "median",
            "--standardize", "--hidden", "16,8", "--activation", act, "--batchnorm",
            "--dropout", "0.1", "--epochs", "3", "--predictions", pred, "--export-onnx", out,
            "--onnx-softmax")
        compare(f"MLP {act}, BatchNorm1d, Dropout, impute + standardize", out, raw, pred)


def cnn(tmp):
    rng = np.random.default_rng(4)
    x = rng.random((96, 1, 12, 12), dtype=np.float32)
    y = (x[:, 0, :6].mean((1, 2)) > x[:, 0, 6:].mean((1, 2))).astype(np.int64)
    np.save(os.path.join(tmp, "x.npy"), x)
    np.save(os.path.join(tmp, "y.npy"), y)
    xy = f"{tmp}/x.npy,{tmp}/y.npy"
    out, pred = os.path.join(tmp, "cnn.onnx"), os.path.join(tmp, "cnn.csv")
    run("--train-npy", xy, "--test-npy", xy, "--model", "cnn", "--channels", "4", "--hidden", "8",
        "--residual-blocks", "1", "--input-shape", "1,12,12", "--epochs", "2", "--batch-size", "32", "--predictions", pred,
        "--export-onnx", out, "--onnx-softmax")
    compare("--model cnn --residual-blocks 1", out, x.reshape(96, -1), pred)


def flips(tmp):
    """--eval-flip: the graph holds the test-time flips (Note [test-time flips]), so ONNX Runtime
    gives what --predictions wrote; the export of the same model without them does not. Images of
    3 x 6 x 5 (W odd: a middle column stays) whose class is where the brighter half lies (left or
    right): a flip-trained model can only tell by the mirror-asymmetric details."""
    rng = np.random.default_rng(6)
    x = rng.random((80, 3, 6, 5), dtype=np.float32)
    y = (x[:, :, :, :2].mean((1, 2, 3)) > x[:, :, :, 3:].mean((1, 2, 3))).astype(np.int64)
    np.save(os.path.join(tmp, "fx.npy"), x)
    np.save(os.path.join(tmp, "fy.npy"), y)
    xy = f"{tmp}/fx.npy,{tmp}/fy.npy"
    common = ["--train-npy", xy, "--test-npy", xy, "--model", "cnn", "--channels", "4",
              "--hidden", "8", "--input-shape", "3,6,5", "--epochs", "2", "--batch-size", "16",
              "--augment-flip", "--seed", "3"]
    out, pred = os.path.join(tmp, "flips.onnx"), os.path.join(tmp, "flips.csv")
    plain = os.path.join(tmp, "flips_plain.onnx")
    run(*common, "--eval-flip", "--predictions", pred, "--export-onnx", out, "--onnx-softmax")
    model = compare("--eval-flip", out, x.reshape(80, -1), pred)
    ops = {n.op_type for n in model.graph.node}
    if not {"Slice", "Concat", "ReduceMean"} <= ops:
        failures.append(f"--eval-flip: the graph lacks the flips: {sorted(ops)}")
    run(*common, "--export-onnx", plain, "--onnx-softmax")  # the same training, no flips
    got, _, _ = onnx_probs(plain, x.reshape(80, -1))
    worst = float(np.max(np.abs(got - cutrain_probs(pred))))
    if worst < 1e-4:
        failures.append(f"--eval-flip: the export without flips predicts the same ({worst:.2g})")


TORCH_MODEL = r'''
import sys, torch
sys.path.insert(0, sys.argv[2])
import cutrain_torch
torch.manual_seed(0)
nn = torch.nn
m = nn.Sequential(nn.Unflatten(1, (2, 16, 16)),
                  nn.Conv2d(2, 6, 3, stride=2, padding=2, dilation=2, bias=False),
                  nn.BatchNorm2d(6), nn.LeakyReLU(0.1),
                  cutrain_torch.Residual(nn.Conv2d(6, 6, 3, padding=1), nn.BatchNorm2d(6),
                                         nn.ReLU(), cutrain_torch.Residual(
                                             nn.Conv2d(6, 6, 3, padding=1, groups=6),
                                             nn.Conv2d(6, 6, 1, groups=2))),
                  nn.AvgPool2d(3, stride=1, padding=1), nn.Conv2d(6, 5, (3, 1), padding=(1, 0)),
                  nn.GELU(), nn.AdaptiveAvgPool2d(2), nn.MaxPool2d(2, stride=1, padding=1),
                  nn.SiLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, 7),
                  nn.BatchNorm1d(7), nn.Tanh(), nn.Dropout(0.3), nn.Linear(7, 6), nn.ELU(0.7),
                  nn.Linear(6, 6), nn.ReLU6(), nn.Linear(6, 6), nn.Hardswish(), nn.Linear(6, 4))
with torch.no_grad():
    for bn in (m[2], m[4].body[1], m[14]):
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.2, 0.2)
m.eval()
cutrain_torch.save_model(m, sys.argv[1])
'''


def from_torch(tmp):
    saved = os.path.join(tmp, "torch.safetensors")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # Debian's numpy for torch
    r = subprocess.run(["/usr/bin/python3", "-c", TORCH_MODEL, saved,
                        os.path.join(HERE, "..", "tools")], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        print(f"case 3 skipped: no PyTorch for save_model ({r.stderr.strip().splitlines()[-1:]})")
        return
    x = np.random.default_rng(5).normal(size=(50, 2 * 16 * 16)).astype(np.float32)
    np.save(os.path.join(tmp, "tx.npy"), x)
    out, pred = os.path.join(tmp, "torch.onnx"), os.path.join(tmp, "torch.csv")
    run("--model-from", saved, "--export-onnx", out, "--onnx-softmax")
    run("--model-from", saved, "--predict-npy", os.path.join(tmp, "tx.npy"), "--predictions", pred)
    compare("torch.nn model by --model-from alone", out, x, pred)


# Case 5's models: for seed in [first, last), a random torch.nn.Sequential in eval mode saved by
# save_model as m{seed}.safetensors, its input x{seed}.npy and PyTorch's probabilities
# p{seed}.npy (float64 softmax of its float32 logits).
RANDOM_MODELS = r'''
import os, random, sys, numpy as np, torch
sys.path.insert(0, sys.argv[2])
import cutrain_torch
nn = torch.nn
out, first, last = sys.argv[1], int(sys.argv[3]), int(sys.argv[4])

def activation(r):
    return r.choice([nn.ReLU(), nn.LeakyReLU(0.2), nn.Tanh(), nn.Sigmoid(), nn.GELU(), nn.SiLU(),
                     nn.ReLU6(), nn.Hardswish(), nn.ELU(0.7)])

def conv_layers(r, c, h, w, keep, depth):
    layers = []
    for _ in range(r.randint(2, 5) if depth == 0 else r.randint(1, 3)):
        kind = r.choice([0, 0, 1, 2] if keep else [0, 0, 0, 1, 2, 3, 4, 5, 6])
        if kind == 0:
            kh, kw = r.choice([1, 3]) if keep else r.randint(1, 3), r.choice([1, 3]) if keep else r.randint(1, 3)
            dh, dw = (r.randint(1, 2) if kh > 1 else 1), (r.randint(1, 2) if kw > 1 else 1)
            if keep:
                co, sh, sw, ph, pw = c, 1, 1, (kh - 1) * dh // 2, (kw - 1) * dw // 2
            else:
                co, sh, sw = r.randint(1, 5), r.randint(1, 2), r.randint(1, 2)
                ph, pw = r.randint(0, (kh - 1) * dh // 2), r.randint(0, (kw - 1) * dw // 2)
            oh, ow = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
            if oh < 1 or ow < 1:
                continue
            g = 1
            if r.random() < 0.4:  # grouped, or depthwise (with a channel multiplier of 1 or 2)
                if not keep and r.random() < 0.5:
                    co = c * r.randint(1, 2)
                groups = [g for g in range(2, c + 1) if c % g == 0 and co % g == 0]
                g = r.choice(groups) if groups else 1
            layers.append(nn.Conv2d(c, co, (kh, kw), stride=(sh, sw), padding=(ph, pw),
                                    dilation=(dh, dw), groups=g, bias=r.random() < 0.7))
            c, h, w = co, oh, ow
        elif kind == 1:
            layers.append(nn.BatchNorm2d(c, eps=r.choice([1e-5, 1e-3]), momentum=0.2,
                                         affine=r.random() < 0.8))
        elif kind == 2:
            layers.append(activation(r))
        elif kind == 3 and min(h, w) >= 2:
            k = 2 if min(h, w) < 3 else r.randint(2, 3)
            s, p = r.randint(1, 2), r.randint(0, k // 2)
            pool = nn.MaxPool2d(k, stride=s, padding=p) if r.random() < 0.5 else nn.AvgPool2d(k, stride=s, padding=p)
            layers.append(pool)
            h, w = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        elif kind == 4 and depth < 2:
            body, _, _, _ = conv_layers(r, c, h, w, True, depth + 1)
            if body:
                layers.append(cutrain_torch.Residual(*body))
        elif kind == 5 and depth == 0:
            layers.append(nn.Dropout(0.3))
        elif kind == 6 and depth == 0:  # a projection shortcut: BasicBlock with its downsample
            co, s = r.randint(1, 5), r.randint(1, 2)
            body = [nn.Conv2d(c, co, 3, stride=s, padding=1, bias=r.random() < 0.5)]
            if r.random() < 0.5:
                body += [nn.BatchNorm2d(co, momentum=0.2), activation(r)]
            body.append(nn.Conv2d(co, co, 3, padding=1))
            shortcut = [nn.Conv2d(c, co, 1, stride=s, bias=r.random() < 0.5)]
            if r.random() < 0.5:
                shortcut.append(nn.BatchNorm2d(co, momentum=0.2))
            layers.append(cutrain_torch.Residual(*body, shortcut=shortcut))
            c, h, w = co, (h - 1) // s + 1, (w - 1) // s + 1
    return layers, c, h, w

for seed in range(first, last):
    r = random.Random(seed)
    torch.manual_seed(seed)
    if r.random() < 0.5:
        cin, hin, win = r.randint(1, 3), r.randint(3, 9), r.randint(3, 9)
        features = cin * hin * win
        layers, c, h, w = conv_layers(r, cin, hin, win, False, 0)
        if r.random() < 0.5:  # to 1x1, or to sizes whose windows differ or overlap (a MatMul)
            h, w = (1, 1) if r.random() < 0.5 else (r.randint(1, h), r.randint(1, w))
            layers.append(nn.AdaptiveAvgPool2d((h, w)))
        m = nn.Sequential(nn.Unflatten(1, (cin, hin, win)), *layers, nn.Flatten(),
                          nn.Linear(c * h * w, r.randint(2, 5), bias=r.random() < 0.8))
    else:
        features = r.randint(2, 12)
        f, layers = features, []
        for _ in range(r.randint(1, 4)):
            kind = r.randrange(4)
            if kind == 0:
                o = r.randint(1, 12)
                layers.append(nn.Linear(f, o, bias=r.random() < 0.8))
                f = o
            elif kind == 1:
                layers.append(nn.BatchNorm1d(f, eps=r.choice([1e-5, 1e-3]), affine=r.random() < 0.8))
            elif kind == 2:
                layers.append(activation(r))
            else:
                layers.append(nn.Dropout(0.1))
        m = nn.Sequential(*layers, nn.Linear(f, r.randint(2, 5)))
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
                if mod.affine:
                    mod.weight.uniform_(0.5, 1.5)
                    mod.bias.uniform_(-0.2, 0.2)
    m.eval()
    cutrain_torch.save_model(m, os.path.join(out, f"m{seed}.safetensors"))
    x = np.random.default_rng(seed).normal(size=(7, features)).astype(np.float32)
    np.save(os.path.join(out, f"x{seed}.npy"), x)
    with torch.no_grad():
        logits = m(torch.from_numpy(x)).double()
    np.save(os.path.join(out, f"p{seed}.npy"), torch.softmax(logits, 1).numpy())
'''


def random_models(tmp, first=1, last=41):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # Debian's numpy for torch
    r = subprocess.run(["/usr/bin/python3", "-c", RANDOM_MODELS, tmp,
                        os.path.join(HERE, "..", "tools"), str(first), str(last)],
                       capture_output=True, text=True, env=env)
    if r.returncode != 0:
        tail = r.stderr.strip().splitlines()[-1:]
        if "No module named 'torch'" in r.stderr:
            print(f"case 5 skipped: no PyTorch for save_model ({tail})")
            return
        failures.append(f"random models: the generator failed: {r.stderr.strip()[-2000:]}")
        return
    worst_torch = 0.0
    for seed in range(first, last):
        saved, x_path = os.path.join(tmp, f"m{seed}.safetensors"), os.path.join(tmp, f"x{seed}.npy")
        out, pred = os.path.join(tmp, f"m{seed}.onnx"), os.path.join(tmp, f"m{seed}.csv")
        run("--model-from", saved, "--export-onnx", out, "--onnx-softmax")
        run("--model-from", saved, "--predict-npy", x_path, "--predictions", pred)
        ours, want = cutrain_probs(pred), np.load(os.path.join(tmp, f"p{seed}.npy"))
        gap = float(np.max(np.abs(ours - want)))
        worst_torch = max(worst_torch, gap)
        if ours.shape != want.shape or gap > 1e-5:
            failures.append(f"random model {seed}: cutrain's probabilities {ours.shape} differ from "
                            f"PyTorch's {want.shape} by {gap:.3g}")
        compare(f"random model {seed}", out, np.load(x_path), pred)
    print(f"random models {first}-{last - 1}: cutrain within {worst_torch:.2g} of PyTorch")


def read_idx(stem):
    for ext in ("", ".gz"):
        p = os.path.join(DATA, stem + ext)
        if os.path.exists(p):
            with (gzip.open if ext else open)(p, "rb") as f:
                raw = f.read()
            dims = struct.unpack(">" + "I" * raw[3], raw[4:4 + 4 * raw[3]])
            return np.frombuffer(raw[4 + 4 * raw[3]:], dtype=np.uint8).reshape(dims)
    return None


def fashion_mnist(tmp):
    images = read_idx("t10k-images-idx3-ubyte")
    if images is None:
        print(f"case 4 skipped: no Fashion-MNIST at {DATA}")
        return
    out, pred = os.path.join(tmp, "fm.onnx"), os.path.join(tmp, "fm.csv")
    run("--data", DATA, "--hidden", "64", "--epochs", "1", "--train-subset", "3000",
        "--predictions", pred, "--export-onnx", out, "--onnx-softmax")
    model = compare("Fashion-MNIST MLP, raw pixels in", out,
                    images.reshape(10000, -1).astype(np.float32), pred)
    meta = {p.key: p.value for p in model.metadata_props}
    if '"Ankle boot"' not in meta.get("cutrain.classes", "") or "cutrain.data" not in meta:
        failures.append(f"Fashion-MNIST: metadata lacks the classes or the data spec: {list(meta)}")


def refusals(tmp):
    r = run("--onnx-softmax", expect=2)
    if "give --export-onnx" not in r.stderr:
        failures.append(f"--onnx-softmax alone: {r.stderr.strip()}")
    r = run("--model-from", os.path.join(tmp, "cnn.onnx"), "--export-onnx",
            os.path.join(tmp, "nowhere", "x.onnx"), expect=2)
    if "nowhere" not in r.stderr:
        failures.append(f"an unwritable --export-onnx: {r.stderr.strip()}")


def main():
    print(f"onnx {onnx.__version__}, onnxruntime {ort.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        tables(tmp)
        cnn(tmp)
        flips(tmp)
        from_torch(tmp)
        random_models(tmp)
        fashion_mnist(tmp)
        refusals(tmp)
    for f in failures:
        print("FAILED:", f)
    print("ok" if not failures else f"{len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
