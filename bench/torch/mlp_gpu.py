#!/usr/bin/env python3
"""PyTorch eager on the same GPU, same model and recipe as cutrain-train's default run:
MLP 784-512-256-10 (ReLU, dropout 0.2), AdamW lr 1e-3 (weight decay 1e-4, none on biases),
cosine decay per iteration, batch 128, pixels / 255, 30 epochs, shuffled each epoch. The data
sits on the GPU (PyTorch's fastest eager setup). Prints one JSON line: seconds per epoch,
samples/s, test accuracy."""
import argparse
import gzip
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch


def read_idx(path):
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return np.frombuffer(raw[4 + 4 * ndim:], dtype=np.uint8).reshape(dims)


def load(data, split):
    prefix = "train" if split == "train" else "t10k"
    def find(stem):
        for ext in ("", ".gz"):
            p = os.path.join(data, f"{prefix}-{stem}{ext}")
            if os.path.exists(p):
                return p
        raise SystemExit(f"missing {prefix}-{stem}")
    x = read_idx(find("images-idx3-ubyte")).reshape(-1, 784).astype(np.float32) / 255.0
    y = read_idx(find("labels-idx1-ubyte")).astype(np.int64)
    return torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.manual_seed(0)
    xtr, ytr = load(a.data, "train")
    xte, yte = load(a.data, "test")
    model = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(), torch.nn.Dropout(0.2),
                                torch.nn.Linear(512, 256), torch.nn.ReLU(), torch.nn.Dropout(0.2),
                                torch.nn.Linear(256, 10)).cuda()
    decay = [p for n, p in model.named_parameters() if n.endswith("weight")]
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias")]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 1e-4},
                             {"params": no_decay, "weight_decay": 0.0}], lr=1e-3)
    batch = 128
    steps = math.ceil(len(xtr) / batch)
    total = a.epochs * steps
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: (1 + math.cos(math.pi * k / total)) / 2)
    loss_fn = torch.nn.CrossEntropyLoss()
    times = []
    for epoch in range(a.epochs):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        model.train()
        perm = torch.randperm(len(xtr), device="cuda")
        for k in range(steps):
            idx = perm[k * batch:(k + 1) * batch]
            opt.zero_grad(set_to_none=True)
            loss_fn(model(xtr[idx]), ytr[idx]).backward()
            opt.step()
            sched.step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    model.eval()
    with torch.no_grad():
        acc = (model(xte).argmax(1) == yte).float().mean().item()
    spe = sum(times[1:]) / max(1, len(times) - 1)
    print(json.dumps({"bench": "torch_mlp_epoch", "device": torch.cuda.get_device_name(),
                      "torch": torch.__version__, "epochs": a.epochs, "seconds_per_epoch": spe,
                      "samples_per_second": len(xtr) / spe, "test_accuracy": acc}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
