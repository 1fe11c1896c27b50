#!/usr/bin/env python3
"""PyTorch on the same GPU, same model and recipe as cutrain-train's default run:
MLP 784-512-256-10 (ReLU, dropout 0.2) - or with --model cnn the default CNN of cutrain-train
--model cnn (Note [the default CNN]: two blocks of two 3x3 Conv2d + BatchNorm2d + ReLU and a 2x2
max pool, 32 and 64 channels, --residual-blocks residual blocks after each pool as cutrain-train's,
then Linear 3136-128, ReLU, dropout 0.2, Linear 128-10; 5 epochs of OneCycleLR peaking at 5e-3;
cudnn.benchmark on) -, AdamW (weight decay 1e-4 on weight matrices and kernels only), for the
MLP lr 1e-3 with cosine decay per iteration over 30 epochs (--schedule / --lr / --epochs change
either), batch 128 (the last partial batch kept), pixels / 255,
shuffled each epoch, optional global-norm clipping (--clip-norm, as cutrain-train's). The data
sits on the GPU (PyTorch's fastest setup). Two modes:
  eager   the usual loop (fused AdamW, the fastest eager optimizer);
  graphs  the whole step — forward, backward, clipping, AdamW(capturable=True) with the LR in a
          device tensor — captured once in a CUDA graph and replayed per full batch (PyTorch's
          "whole network capture"); the partial last batch runs eagerly. The warm-up steps the
          capture needs are undone (weights and optimizer state restored) so the trajectory
          matches the eager one.
--precision picks the arithmetic, as cutrain-train's --precision: fp32 (strict: TF32 off for matmuls
and cuDNN, as cutrain's fp32 - PyTorch's own default lets cuDNN use TF32), tf32 (both on), bf16 /
fp16 (torch.autocast around forward and loss, fp32 weights and AdamW; fp16 with GradScaler, eager
only: its inf check reads the host).
--target-accuracy A evaluates the test set after each epoch (not timed) and reports the training
seconds until it first reaches A. Prints one JSON line."""
import argparse
import contextlib
import gzip
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch

# cutrain_torch.Residual: cutrain's nn::Residual as a torch module (tools/cutrain_torch.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
import cutrain_torch  # noqa: E402


def read_idx(path):
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return np.frombuffer(raw[4 + 4 * ndim:], dtype=np.uint8).reshape(dims)


def load(data, split, device):
    prefix = "train" if split == "train" else "t10k"
    def find(stem):
        for ext in ("", ".gz"):
            p = os.path.join(data, f"{prefix}-{stem}{ext}")
            if os.path.exists(p):
                return p
        raise SystemExit(f"missing {prefix}-{stem}")
    x = read_idx(find("images-idx3-ubyte")).reshape(-1, 784).astype(np.float32) / 255.0
    y = read_idx(find("labels-idx1-ubyte")).astype(np.int64)
    return torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)


# cutrain-train --model cnn's defaults: epochs, schedule, peak learning rate.
CNN_DEFAULTS = (5, "onecycle", 5e-3)


def one_cycle(max_lr, total, k, pct_start=0.3, div_factor=25.0, final_div_factor=1e4):
    """torch.optim.lr_scheduler.OneCycleLR's learning rate at step k (two phases, cosine), as
    cutrain's OneCycleLr computes it (steps past the last hold the final rate)."""
    initial = max_lr / div_factor
    final = initial / final_div_factor
    e1 = pct_start * total - 1.0
    step = min(k, total - 1)
    if step <= e1:
        start, end, pct = initial, max_lr, step / e1
    else:
        start, end, pct = max_lr, final, (step - e1) / (total - 1.0 - e1)
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1.0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--model", choices=("mlp", "cnn"), default="mlp")
    ap.add_argument("--residual-blocks", type=int, default=0)  # as cutrain-train's (cnn)
    ap.add_argument("--epochs", type=int, default=0)  # 0: cutrain-train's default for the model
    # 0 / "": cutrain-train's defaults for the model (Note [the default CNN])
    ap.add_argument("--lr", type=float, default=0.0)
    ap.add_argument("--schedule", choices=("", "cosine", "onecycle"), default="")
    ap.add_argument("--mode", choices=("eager", "graphs"), default="eager")
    ap.add_argument("--clip-norm", type=float, default=0.0)
    ap.add_argument("--precision", choices=("fp32", "tf32", "bf16", "fp16"), default="fp32")
    ap.add_argument("--target-accuracy", type=float, default=0.0)
    ap.add_argument("--train-subset", type=int, default=0)
    ap.add_argument("--device", default="cuda")  # cpu: a smoke test of the eager path
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--threads", type=int, default=0)  # CPU threads; 0: torch's own choice
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    cuda = dev.type == "cuda"
    if a.mode == "graphs" and not cuda:
        raise SystemExit("--mode graphs needs a CUDA device")
    if a.precision == "fp16" and (a.mode == "graphs" or not cuda):
        raise SystemExit("--precision fp16 needs --mode eager on a CUDA device (GradScaler)")
    if a.precision == "tf32" and not cuda:
        raise SystemExit("--precision tf32 needs a CUDA device")
    torch.backends.cuda.matmul.allow_tf32 = a.precision == "tf32"
    torch.backends.cudnn.allow_tf32 = a.precision == "tf32"
    half = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(a.precision)
    # Graph capture wants autocast's cast cache off (a cached cast would be a capture-time value).
    autocast = (lambda: torch.autocast(dev.type, dtype=half, cache_enabled=a.mode != "graphs")) \
        if half is not None else contextlib.nullcontext
    scaler = torch.cuda.amp.GradScaler() if a.precision == "fp16" else None
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    torch.manual_seed(0)
    xtr, ytr = load(a.data, "train", dev)
    xte, yte = load(a.data, "test", dev)
    if a.train_subset:
        xtr, ytr = xtr[:a.train_subset], ytr[:a.train_subset]
    mlp_defaults, cnn_defaults = (30, "cosine", 1e-3), CNN_DEFAULTS
    epochs, schedule, lr = mlp_defaults if a.model == "mlp" else cnn_defaults
    a.epochs, a.schedule, a.lr = a.epochs or epochs, a.schedule or schedule, a.lr or lr
    nn = torch.nn
    if a.model == "mlp":
        model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Dropout(0.2),
                              nn.Linear(512, 256), nn.ReLU(), nn.Dropout(0.2), nn.Linear(256, 10))
    else:
        torch.backends.cudnn.benchmark = True

        def conv_bn(i, o):
            return [nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU()]

        def block(i, o):  # cutrain-train --residual-blocks: ResNet-9's blocks after the pool
            return [*conv_bn(i, o), *conv_bn(o, o), nn.MaxPool2d(2),
                    *(cutrain_torch.Residual(*conv_bn(o, o), *conv_bn(o, o))
                      for _ in range(a.residual_blocks))]
        model = nn.Sequential(nn.Unflatten(1, (1, 28, 28)), *block(1, 32), *block(32, 64),
                              nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Dropout(0.2),
                              nn.Linear(128, 10))
    model = model.to(dev)
    params = list(model.parameters())
    # cutrain's groups: weight matrices and kernels decay; biases and BatchNorm's scales do not.
    decay = [p for p in params if p.dim() > 1]
    no_decay = [p for p in params if p.dim() <= 1]
    groups = [{"params": decay, "weight_decay": 1e-4}, {"params": no_decay, "weight_decay": 0.0}]
    if a.mode == "graphs":
        opt = torch.optim.AdamW(groups, lr=torch.tensor(a.lr, device=dev), capturable=True)
    else:
        opt = torch.optim.AdamW(groups, lr=a.lr, **({"fused": True} if cuda else {}))
    batch = 128
    steps = math.ceil(len(xtr) / batch)
    full = len(xtr) // batch
    total = a.epochs * steps
    if a.schedule == "cosine":
        lr_at = lambda k: a.lr * (1 + math.cos(math.pi * k / total)) / 2  # noqa: E731
    else:
        lr_at = lambda k: one_cycle(a.lr, total, k)  # noqa: E731
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(x, y):
        with autocast():
            loss = loss_fn(model(x), y)
        if scaler is not None:  # fp16: GradScaler's recipe (unscale before clipping)
            scaler.scale(loss).backward()
            if a.clip_norm > 0:
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(params, a.clip_norm)
            scaler.step(opt)
            scaler.update()
            return loss
        loss.backward()
        if a.clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(params, a.clip_norm)
        opt.step()
        return loss

    def set_lr(k):
        for g in opt.param_groups:
            if torch.is_tensor(g["lr"]):
                g["lr"].fill_(lr_at(k))
            else:
                g["lr"] = lr_at(k)

    graph = None
    if a.mode == "graphs":
        static_x = xtr[:batch].clone()
        static_y = ytr[:batch].clone()
        saved = [p.detach().clone() for p in params]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up before capture, as the CUDA-graphs docs require
            for _ in range(3):
                opt.zero_grad(set_to_none=True)
                step(static_x, static_y)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        opt.zero_grad(set_to_none=True)
        with torch.cuda.graph(graph):
            step(static_x, static_y)
        with torch.no_grad():  # undo the warm-up: same start as eager
            for p, s in zip(params, saved):
                p.copy_(s)
            for st in opt.state.values():
                for v in st.values():
                    if torch.is_tensor(v):
                        v.zero_()
        sync()

    times, accs = [], []
    k = 0
    for epoch in range(a.epochs):
        sync()
        t0 = time.perf_counter()
        model.train()
        perm = torch.randperm(len(xtr), device=dev)
        for b in range(steps):
            idx = perm[b * batch:(b + 1) * batch]
            set_lr(k)
            if graph is not None and b < full:
                static_x.copy_(xtr[idx])
                static_y.copy_(ytr[idx])
                graph.replay()
            else:
                if graph is not None:
                    for p in params:  # the graph owns these gradient tensors: zero in place
                        p.grad.zero_()
                else:
                    opt.zero_grad(set_to_none=True)
                step(xtr[idx], ytr[idx])
            k += 1
        sync()
        times.append(time.perf_counter() - t0)
        if a.target_accuracy > 0 or epoch == a.epochs - 1:
            model.eval()
            with torch.no_grad(), autocast():
                right = sum((model(xte[i:i + 2000]).argmax(1) == yte[i:i + 2000]).sum().item()
                            for i in range(0, len(xte), 2000))
                accs.append(right / len(xte))
    # The first epoch pays cuDNN's autotuning and the capture: left out when there are others.
    spe = sum(times[1:]) / (len(times) - 1) if len(times) > 1 else times[0]
    suffix = "" if a.precision == "fp32" else f"_{a.precision}"
    out = {"bench": f"torch_{a.model}_epoch_{a.mode}{suffix}", "model": a.model,
           "residual_blocks": a.residual_blocks,
           "device": torch.cuda.get_device_name() if cuda else "cpu", "torch": torch.__version__,
           "mode": a.mode, "precision": a.precision, "clip_norm": a.clip_norm, "epochs": a.epochs,
           "schedule": a.schedule, "lr": a.lr,
           "threads": torch.get_num_threads(), "seconds_per_epoch": spe,
           "samples_per_second": len(xtr) / spe, "test_accuracy": accs[-1]}
    if a.target_accuracy > 0:
        hit = next((i for i, acc in enumerate(accs) if acc >= a.target_accuracy), None)
        out.update({"target_accuracy": a.target_accuracy, "test_accuracy_per_epoch": accs,
                    "epochs_to_target": None if hit is None else hit + 1,
                    "time_to_target_s": None if hit is None else sum(times[:hit + 1])})
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
