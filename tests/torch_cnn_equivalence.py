#!/usr/bin/python3
"""cutrain-train --model cnn versus PyTorch: the same convolutional net from the same initial
weights over the same batches lands on the same weights and BatchNorm2d statistics; models move
between the tools and predict alike.

    /usr/bin/python3 tests/torch_cnn_equivalence.py build/bin/cutrain-train [DATA_DIR]

1. One epoch over the first 256 Fashion-MNIST training images (pixel / 255), batch 64, no
   shuffle, no dropout, constant learning rate: `--model cnn --channels 6 --hidden 16` (Unflatten,
   two Conv2d 3x3 + BatchNorm2d + ReLU, MaxPool2d 2, Flatten, Linear 1176-16, ReLU, Linear 16-10)
   against torch.nn's identical Sequential, with SGD + momentum and with AdamW + clipping. The
   float32 runs differ in summation order only, so each final tensor must agree to 1e-4 of its
   largest magnitude.
2. cutrain's export rebuilt in PyTorch (cutrain_torch.build_model) predicts the test images as
   cutrain's --predictions says.
3. A CNN trained in PyTorch, written by cutrain_torch.save_model (AvgPool2d, AdaptiveAvgPool2d
   and a bias-free strided Conv2d included), rebuilt by cutrain-train --model-from, predicts as
   PyTorch does.
4. A residual net (cutrain_torch.Residual around conv, BatchNorm2d, ReLU, a bias-free conv and
   BatchNorm2d; then around a depthwise conv, BatchNorm2d, ReLU and a grouped 1x1 conv) saved by
   save_model, trained one epoch by cutrain-train --model-from with SGD and
   momentum, lands on PyTorch's weights and statistics (as in 1); its export rebuilt by
   build_model predicts as cutrain does.
"""
import os
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
from torch_equivalence import find, read_idx  # noqa: E402  (the same argv: binary, data dir)

BINARY = sys.argv[1]
DATA = sys.argv[2] if len(sys.argv) > 2 else "/usr/share/datasets/fashion-mnist"
N, BATCH, CH, HID = 256, 64, 6, 16
torch.set_num_threads(1)


def cnn():
    """cutrain-train --model cnn --channels CH --hidden HID --dropout 0, in torch.nn"""
    nn = torch.nn
    return nn.Sequential(nn.Unflatten(1, (1, 28, 28)),
                         nn.Conv2d(1, CH, 3, padding=1), nn.BatchNorm2d(CH), nn.ReLU(),
                         nn.Conv2d(CH, CH, 3, padding=1), nn.BatchNorm2d(CH), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(CH * 14 * 14, HID), nn.ReLU(),
                         nn.Linear(HID, 10))


CASES = {
    "sgd_momentum": (["--optimizer", "sgd", "--lr", "0.05", "--momentum", "0.9",
                      "--weight-decay", "0.001"],
                     lambda g: torch.optim.SGD(g, lr=0.05, momentum=0.9), 0.001, None),
    "adamw_clip": (["--optimizer", "adamw", "--lr", "0.003", "--weight-decay", "0.01",
                    "--clip-norm", "1.0"],
                   lambda g: torch.optim.AdamW(g, lr=0.003, weight_decay=0.01), 0.01, 1.0),
}


def resnet():
    """A residual net (cutrain_torch.Residual: cutrain's nn::Residual) for --model-from"""
    nn = torch.nn
    return nn.Sequential(nn.Unflatten(1, (1, 28, 28)),
                         nn.Conv2d(1, CH, 3, padding=1), nn.BatchNorm2d(CH), nn.ReLU(),
                         cutrain_torch.Residual(nn.Conv2d(CH, CH, 3, padding=1),
                                                nn.BatchNorm2d(CH), nn.ReLU(),
                                                nn.Conv2d(CH, CH, 3, padding=1, bias=False),
                                                nn.BatchNorm2d(CH)),
                         nn.ReLU(),
                         # MobileNet's depthwise-separable block: a depthwise 3x3, then a
                         # grouped 1x1 (groups 2) in place of the dense pointwise one.
                         cutrain_torch.Residual(nn.Conv2d(CH, CH, 3, padding=1, groups=CH),
                                                nn.BatchNorm2d(CH), nn.ReLU(),
                                                nn.Conv2d(CH, CH, 1, groups=2)),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(CH * 14 * 14, 10))


def torch_epoch(start, make_opt, wd, clip, x, y, dtype):
    """One epoch of PyTorch from `start`'s weights in `dtype` (tensors as float32)."""
    state = torch_reference.torch_epoch(start, make_opt, wd, clip, x, y, BATCH, dtype)
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def predicts_alike(what, model, x, predictions_csv):
    """model's eval-mode softmax on x against cutrain's --predictions file: probabilities within
    1e-5, the same class for at least 99.9% of the rows"""
    with torch.no_grad():
        probs = torch.softmax(model(torch.from_numpy(x)), 1).numpy()
    ours = np.loadtxt(predictions_csv, delimiter=",", skiprows=1)
    worst = float(np.max(np.abs(probs - ours[:, 1:])))
    agree = float(np.mean(probs.argmax(1) == ours[:, 0]))
    print(f"{what}: probabilities within {worst:.3g}, classes agree on {agree:.4%}")
    if worst > 1e-5 or agree < 0.999:
        print(f"FAILED: {what}: the two tools predict differently")
        return False
    return True


def relative(got, ref):
    return float(np.max(np.abs(got - ref)) / max(float(np.max(np.abs(ref))), 1e-12))


def agrees(name, ours, t32, t64):
    """cutrain's tensors (named "layers.<k>") against PyTorch's float32 and float64 epochs"""
    # Each tensor within 1e-4 of PyTorch's float32 run - or, where float32 rounding alone
    # is visible, as close to PyTorch's float64 run as PyTorch's own float32 run is (a
    # convolution's bias before BatchNorm2d has a gradient of pure rounding noise, which
    # Adam normalizes to full-size steps in either float32 run).
    worst = 0.0
    for k, v in t32.items():
        if not v.is_floating_point():
            continue
        got, ref = ours["layers." + k].numpy(), t64[k].numpy()
        near = relative(got, v.numpy())
        if near <= 1e-4:
            worst = max(worst, near)
            continue
        ours64, theirs64 = relative(got, ref), relative(v.numpy(), ref)
        print(f"{name}: {k}: {near:.3g} from PyTorch float32; from float64: cutrain "
              f"{ours64:.3g}, PyTorch float32 {theirs64:.3g}")
        if ours64 > max(1e-4, 2 * theirs64):
            print(f"FAILED: {name}: cutrain's epoch differs from PyTorch's")
            return False
    print(f"{name}: max relative difference {worst:.3g} (tensors within 1e-4)")
    return True


def main():
    if not os.path.isdir(DATA):
        print(f"skipped: no Fashion-MNIST at {DATA} (apt-get install dataset-fashion-mnist)")
        return 77
    x = read_idx(find("train-images-idx3-ubyte"))[:N].reshape(N, -1).astype(np.float32) / 255.0
    y = read_idx(find("train-labels-idx1-ubyte"))[:N].astype(np.int64)
    test_x = read_idx(find("t10k-images-idx3-ubyte")).reshape(10000, -1).astype(np.float32) / 255
    torch.manual_seed(0)
    start = cnn()
    init = {"layers." + k: v.clone() for k, v in start.state_dict().items()}
    with tempfile.TemporaryDirectory() as tmp:
        init_path = os.path.join(tmp, "init.safetensors")
        cutrain_torch.save_tensors(init_path, init)
        for name, (flags, make_opt, wd, clip) in CASES.items():
            out = os.path.join(tmp, name + ".safetensors")
            subprocess.run([BINARY, "--data", DATA, "--device", "cpu", "--model", "cnn",
                            "--channels", str(CH), "--hidden", str(HID), "--dropout", "0",
                            "--schedule", "constant", "--no-shuffle", "--epochs", "1",
                            "--batch-size", str(BATCH), "--train-subset", str(N),
                            "--init-from", init_path, "--save", out] + flags,
                           check=True, stdout=subprocess.DEVNULL)
            ours = cutrain_torch.read_tensors(out)
            t32, t64 = torch_epoch(start, make_opt, wd, clip, x, y, torch.float32), \
                torch_epoch(start, make_opt, wd, clip, x, y, torch.float64)
            if not agrees(name, ours, t32, t64):
                return 1

        # 2. cutrain's export, rebuilt in PyTorch, predicts what cutrain predicted.
        exported = os.path.join(tmp, "cnn_export.safetensors")
        predictions = os.path.join(tmp, "cnn.csv")
        subprocess.run([BINARY, "--data", DATA, "--device", "cpu", "--model", "cnn",
                        "--channels", "4,8", "--hidden", "12", "--epochs", "1",
                        "--train-subset", "512", "--export-torch", exported,
                        "--predictions", predictions],
                       check=True, stdout=subprocess.DEVNULL)
        if not predicts_alike("build_model of cutrain's CNN", cutrain_torch.build_model(exported),
                              test_x, predictions):
            return 1

        # 4. A residual net: PyTorch's initial model by save_model, trained one epoch by
        # cutrain-train --model-from, lands where PyTorch's epoch does.
        torch.manual_seed(1)
        res_start = resnet()
        res_init = os.path.join(tmp, "resnet_init.safetensors")
        cutrain_torch.save_model(res_start, res_init)
        flags, make_opt, wd, clip = CASES["sgd_momentum"]
        out = os.path.join(tmp, "resnet.safetensors")
        subprocess.run([BINARY, "--data", DATA, "--device", "cpu", "--model-from", res_init,
                        "--schedule", "constant", "--no-shuffle", "--epochs", "1",
                        "--batch-size", str(BATCH), "--train-subset", str(N), "--save", out] +
                       flags, check=True, stdout=subprocess.DEVNULL)
        if not agrees("residual sgd_momentum", cutrain_torch.read_tensors(out),
                      torch_epoch(res_start, make_opt, wd, clip, x, y, torch.float32),
                      torch_epoch(res_start, make_opt, wd, clip, x, y, torch.float64)):
            return 1
        # ... and its export, rebuilt in PyTorch, predicts what cutrain predicts.
        exported, predictions = (os.path.join(tmp, "resnet_export.safetensors"),
                                 os.path.join(tmp, "resnet.csv"))
        subprocess.run([BINARY, "--data", DATA, "--device", "cpu", "--model-from", res_init,
                        "--epochs", "1", "--train-subset", "512", "--export-torch", exported,
                        "--predictions", predictions], check=True, stdout=subprocess.DEVNULL)
        if not predicts_alike("build_model of cutrain's residual net",
                              cutrain_torch.build_model(exported), test_x, predictions):
            return 1

        # 3. A PyTorch CNN, saved for cutrain, predicts in cutrain as in PyTorch.
        torch.manual_seed(4)
        nn = torch.nn
        theirs = nn.Sequential(nn.Unflatten(1, (1, 28, 28)), nn.Conv2d(1, 5, 5, stride=2,
                                                                       bias=False),
                               nn.BatchNorm2d(5), nn.GELU(), nn.AvgPool2d(3, stride=1, padding=1),
                               nn.Conv2d(5, 7, (3, 2), dilation=(1, 2)), nn.SiLU(),
                               nn.MaxPool2d(2, 1), nn.AdaptiveAvgPool2d((3, 2)), nn.Flatten(),
                               nn.Linear(42, 10))
        opt = torch.optim.Adam(theirs.parameters(), lr=0.003)
        for s in range(0, N, BATCH):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(theirs(torch.from_numpy(x[s:s + BATCH])),
                                              torch.from_numpy(y[s:s + BATCH])).backward()
            opt.step()
        theirs.eval()
        saved = os.path.join(tmp, "from_torch.safetensors")
        cutrain_torch.save_model(theirs, saved)
        predictions = os.path.join(tmp, "from_torch.csv")
        subprocess.run([BINARY, "--data", DATA, "--device", "cpu", "--model-from", saved,
                        "--epochs", "0", "--predictions", predictions],
                       check=True, stdout=subprocess.DEVNULL)
        if not predicts_alike("--model-from a PyTorch CNN", theirs, test_x, predictions):
            return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
