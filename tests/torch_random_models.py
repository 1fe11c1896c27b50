#!/usr/bin/python3
"""Random architectures, cutrain against PyTorch: seeded random torch.nn.Sequentials of every
layer cutrain has - Conv2d (rectangular kernels, strides, padding, dilation, groups, with and
without bias), BatchNorm2d/1d (eps, momentum, affine), the nine activations, MaxPool2d and
AvgPool2d (kernel, stride, padding), AdaptiveAvgPool2d (output sizes that divide the input and
that do not), residual blocks (identity and projection shortcuts), Flatten, Linear, Dropout -
over small images of 1 to 3 channels, written by cutrain_torch.save_model and rebuilt by
cutrain-train --model-from:

1. each predicts (eval mode) what PyTorch predicts: probabilities within 1e-5;
2. each without Dropout, trained one epoch from the same weights over the same batches - by SGD
   with momentum, or AdamW with gradient clipping -, lands on PyTorch's weights and BatchNorm
   statistics (each tensor within 1e-4 of PyTorch's float32 epoch, or as close to its float64
   epoch as PyTorch's float32 one is).

A differential check of shape handling and layer combinations that the per-layer goldens do not
cover. `--count N --seed S` widen it (the test's default: 120 models, seed 1).

    /usr/bin/python3 tests/torch_random_models.py build/bin/cutrain-train [--count N] [--seed S]
        [--device cuda]   (the GPU check runs it on the GPU: cuDNN's and the kernels' paths)
"""
import argparse
import os
import random
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
except ImportError as e:  # CTest's SKIP_RETURN_CODE
    print(f"skipped: {e} (apt-get install python3-torch)")
    sys.exit(77)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cutrain_torch  # noqa: E402
import torch_reference  # noqa: E402

ROWS, BATCH, CLASSES = 48, 16, 5
nn = torch.nn


def activation(r):
    return r.choice([nn.ReLU(), nn.LeakyReLU(r.choice([0.01, 0.2])), nn.Tanh(), nn.Sigmoid(),
                     nn.GELU(), nn.SiLU(), nn.ReLU6(), nn.Hardswish(),
                     nn.ELU(r.choice([1.0, 0.5]))])


def conv(r, c, co=None, keep=False):
    """A random Conv2d from c channels; keep: stride 1 and the padding that keeps the size"""
    co = co or r.choice([2, 3, 4, 6, 8])
    g = r.choice([d for d in range(1, min(c, co) + 1) if c % d == 0 and co % d == 0])
    if keep:
        k, d = r.choice([1, 3, 5]), r.choice([1, 1, 2])
        return nn.Conv2d(c, co, k, padding=(k - 1) * d // 2, dilation=d, groups=g,
                         bias=r.random() < 0.7)
    k = (r.choice([1, 2, 3, 5]), r.choice([1, 2, 3]))
    d = (r.choice([1, 1, 2]), r.choice([1, 1, 2]))
    s = (r.choice([1, 1, 2, 3]), r.choice([1, 1, 2]))
    p = (r.randint(0, (k[0] - 1) * d[0]), r.randint(0, (k[1] - 1) * d[1]))
    return nn.Conv2d(c, co, k, stride=s, padding=p, dilation=d, groups=g, bias=r.random() < 0.7)


def batchnorm2d(r, c):
    return nn.BatchNorm2d(c, eps=r.choice([1e-5, 1e-3]), momentum=r.choice([0.1, 0.3]),
                          affine=r.random() < 0.8)


def pool(r, h, w):
    kind = r.choice(["max", "avg", "adaptive"])
    if kind == "adaptive":  # output sizes that divide the input, and that do not
        return nn.AdaptiveAvgPool2d((r.randint(1, h), r.randint(1, w)))
    k = (r.randint(1, min(3, h)), r.randint(1, min(3, w)))
    s = r.choice([None, (r.randint(1, 3), r.randint(1, 2))])
    p = (r.randint(0, k[0] // 2), r.randint(0, k[1] // 2))
    return (nn.MaxPool2d if kind == "max" else nn.AvgPool2d)(k, stride=s, padding=p)


def residual(r, c):
    """x + body(x), or a projection shortcut (1x1 Conv2d with the body's stride + BatchNorm2d)"""
    if r.random() < 0.5:
        return cutrain_torch.Residual(conv(r, c, c, keep=True), batchnorm2d(r, c), activation(r),
                                      conv(r, c, c, keep=True))
    co, s = r.choice([c, 2 * c]), r.choice([1, 2])
    return cutrain_torch.Residual(nn.Conv2d(c, co, 3, stride=s, padding=1), batchnorm2d(r, co),
                                  activation(r),
                                  shortcut=[nn.Conv2d(c, co, 1, stride=s, bias=False),
                                            batchnorm2d(r, co)])


def random_model(r, dropout):
    """A Sequential from flat rows of C x H x W features to CLASSES logits, and that C, H, W"""
    c, h, w = r.choice([1, 2, 3]), r.randint(6, 14), r.randint(6, 14)
    modules = [nn.Unflatten(1, (c, h, w))]
    shape = (c, h, w)
    for _ in range(r.randint(1, 4)):
        kind = r.choice(["conv", "conv", "bn", "act", "pool", "residual"])
        made = {"conv": lambda: conv(r, shape[0]), "bn": lambda: batchnorm2d(r, shape[0]),
                "act": lambda: activation(r), "pool": lambda: pool(r, shape[1], shape[2]),
                "residual": lambda: residual(r, shape[0])}[kind]()
        with torch.no_grad():
            try:
                out = nn.Sequential(*modules, made).eval()(torch.zeros(1, c * h * w)).shape[1:]
            except RuntimeError:  # a window larger than the input: draw another
                continue
        if min(out) < 1:
            continue
        modules.append(made)
        shape = tuple(out)
    modules.append(nn.Flatten())
    features = shape[0] * shape[1] * shape[2]
    if r.random() < 0.5:
        hidden = r.choice([7, 12])
        modules += [nn.Linear(features, hidden, bias=r.random() < 0.8)]
        if r.random() < 0.4:
            modules.append(nn.BatchNorm1d(hidden, momentum=r.choice([0.1, 0.3])))
        modules.append(activation(r))
        if dropout:
            modules.append(nn.Dropout(r.choice([0.1, 0.5])))
        features = hidden
    modules.append(nn.Linear(features, CLASSES))
    return nn.Sequential(*modules), c * h * w


def relative(got, ref):
    # Relative to the tensor's largest magnitude, but at least 0.01: a BatchNorm after another
    # has running means of pure rounding noise (~1e-9), which no two summation orders share.
    return float(np.max(np.abs(got - ref)) / max(float(np.max(np.abs(ref))), 1e-2))


# The optimizers an epoch is trained with (models alternate): cutrain-train's flags, and
# torch.optim's optimizer, weight decay on the weights of dimension > 1 (cutrain's decay group),
# the clipping norm. Adam's eps is 1e-3: random nets hold parameters whose gradient is zero but
# for float32 rounding (a bias before BatchNorm, a BatchNorm's shift before another), which eps
# 1e-8 would turn into full-size steps of noise that no two summation orders share.
OPTIMIZERS = [
    (["--optimizer", "sgd", "--lr", "0.05", "--momentum", "0.9", "--weight-decay", "0"],
     lambda g: torch.optim.SGD(g, lr=0.05, momentum=0.9), 0.0, None),
    (["--optimizer", "adamw", "--lr", "0.003", "--eps", "1e-3", "--weight-decay", "0.01",
      "--clip-norm", "1"],
     lambda g: torch.optim.AdamW(g, lr=0.003, eps=1e-3, weight_decay=0.01), 0.01, 1.0),
]


def torch_epoch(model, optimizer, x, y, dtype):
    """One epoch, PyTorch's, from `model` in `dtype`: its floating-point state, as doubles"""
    _, make, decay, clip = optimizer
    state = torch_reference.torch_epoch(model, make, decay, clip, x, y, BATCH, dtype)
    return {k: v.double() for k, v in state.items() if v.is_floating_point()}


def trains_alike(what, ours, t32, t64):
    """cutrain's tensors ("layers.<k>") against PyTorch's float32 and float64 epochs"""
    for k, v in t32.items():
        got, ref32, ref64 = ours["layers." + k].double().numpy(), v.numpy(), t64[k].numpy()
        near = relative(got, ref32)
        if near <= 1e-4:
            continue
        ours64, theirs64 = relative(got, ref64), relative(ref32, ref64)
        if ours64 > max(1e-4, 2 * theirs64):
            print(f"FAILED: {what}: {k}: {near:.3g} from PyTorch's float32 epoch; from its float64 "
                  f"one: cutrain {ours64:.3g}, PyTorch float32 {theirs64:.3g}")
            return False
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--count", type=int, default=120)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="cutrain's (PyTorch's reference: the CPU)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(a.count):
            seed = a.seed * 100003 + i
            r = random.Random(seed)
            torch.manual_seed(seed)
            train = i % 2 == 0  # every other model also trains (without Dropout)
            model, features = random_model(r, dropout=not train)
            what = f"model {i} (seed {seed}): {model}".replace("\n", " ")
            rng = np.random.default_rng(seed)
            x = rng.random((ROWS, features), dtype=np.float32)
            y = rng.integers(0, CLASSES, ROWS).astype(np.int64)
            xs, ys = os.path.join(tmp, "x.npy"), os.path.join(tmp, "y.npy")
            np.save(xs, x)
            np.save(ys, y)
            saved = os.path.join(tmp, f"m{i}.safetensors")
            cutrain_torch.save_model(model, saved)
            # 1. Predictions, eval mode.
            predictions = os.path.join(tmp, f"p{i}.csv")
            run = subprocess.run([a.binary, "--device", a.device, "--model-from", saved,
                                  "--predict-npy", xs, "--predictions", predictions],
                                 capture_output=True, text=True)
            if run.returncode != 0:
                print(f"FAILED: {what}: cutrain-train exited {run.returncode}: {run.stderr}")
                failed += 1
                continue
            with torch.no_grad():
                probs = torch.softmax(model.eval()(torch.from_numpy(x)), 1).numpy()
            ours = np.loadtxt(predictions, delimiter=",", skiprows=1)
            worst = float(np.max(np.abs(probs - ours[:, 1:])))
            if worst > 1e-5:
                print(f"FAILED: {what}: probabilities differ by up to {worst:.3g}")
                failed += 1
                continue
            if not train:
                print(f"model {i}: predictions within {worst:.2g}")
                continue
            # 2. One epoch from the same weights.
            optimizer = OPTIMIZERS[i // 2 % len(OPTIMIZERS)]
            out = os.path.join(tmp, f"t{i}.safetensors")
            run = subprocess.run([a.binary, "--device", a.device, "--model-from", saved,
                                  "--train-npy", f"{xs},{ys}", "--test-npy", f"{xs},{ys}",
                                  "--schedule", "constant", "--no-shuffle", "--epochs", "1",
                                  "--batch-size", str(BATCH), "--save", out] + optimizer[0],
                                 capture_output=True, text=True)
            if run.returncode != 0:
                print(f"FAILED: {what}: training exited {run.returncode}: {run.stderr}")
                failed += 1
                continue
            if not trains_alike(what, cutrain_torch.read_tensors(out),
                                torch_epoch(model, optimizer, x, y, torch.float32),
                                torch_epoch(model, optimizer, x, y, torch.float64)):
                failed += 1
                continue
            print(f"model {i}: predictions within {worst:.2g}; an epoch of {optimizer[0][1]} lands "
                  "on PyTorch's")
    if failed:
        print(f"FAILED: {failed} of {a.count} models")
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
