#!/usr/bin/env python3
"""The PyTorch peer of bench_conv: Conv2d (3x3, padding 1) forward + backward, input gradient
included, at the default CNN's shapes, the large one, the residual blocks', a depthwise and a
grouped one, in TFLOP/s (FLOPs = 6 B H W Co C/groups 9).
On a GPU cuDNN picks its algorithms (cudnn.benchmark=True), strict fp32 (TF32 off) unless
--precision tf32, or under torch.autocast with --precision bf16 / fp16 (bench_conv's peers for
the same flags); on the CPU oneDNN/native kernels with all threads. One JSON line per shape.
Then BatchNorm2d + ReLU forward + backward at the default CNN's two shapes (bench_conv's
"batchnorm2d" rows; cuDNN's batch norm on a GPU)."""
import argparse
import json
import os

import torch

from timing import fwd_bwd_seconds

SHAPES = [("conv1 1-32 28x28", 1, 1, 32, 28), ("conv2 32-32 28x28", 1, 32, 32, 28),
          ("conv3 32-64 14x14", 1, 32, 64, 14), ("conv4 64-64 14x14", 1, 64, 64, 14),
          ("large 64-128 14x14", 2, 64, 128, 14),
          # the residual blocks' (cutrain-train --residual-blocks) after each pool
          ("res1 32-32 14x14", 1, 32, 32, 14), ("res2 64-64 7x7", 1, 64, 64, 7),
          # MobileNet's depthwise 3x3 and a ResNeXt-like grouped one (groups: the last field)
          ("dw 64 14x14", 1, 64, 64, 14, 64), ("g8 64-64 14x14", 1, 64, 64, 14, 8)]
BN_SHAPES = [("bn+relu 32 28x28", 32, 28), ("bn+relu 64 14x14", 64, 14)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--min-seconds", type=float, default=0.2)
    ap.add_argument("--small", action="store_true", help="only the first shape (smoke tests)")
    words = list(dict.fromkeys(s[0].split()[0] for s in SHAPES + BN_SHAPES))
    ap.add_argument("--shape", nargs="+", default=[], choices=words,
                    help="only these shapes, by the first word of their names (bench_conv's)")
    ap.add_argument("--precision", choices=["fp32", "tf32", "bf16", "fp16"], default="fp32")
    a = ap.parse_args()
    dev = torch.device(a.device)
    cuda = dev.type == "cuda"
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = a.precision == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = a.precision == "tf32"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    if not cuda:  # every core, as cutrain's OpenMP loops and OpenBLAS use (torch may pick 1)
        torch.set_num_threads(os.cpu_count() or 1)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(a.precision)
    def wanted(shapes):
        shapes = shapes[:1] if a.small else shapes
        return [s for s in shapes if not a.shape or s[0].split()[0] in a.shape]

    for name, mult, c, co, hw, *grouped in wanted(SHAPES):
        batch, groups = a.batch * mult, (grouped or [1])[0]
        conv = torch.nn.Conv2d(c, co, 3, padding=1, groups=groups).to(dev)
        s = fwd_bwd_seconds(conv, (batch, c, hw, hw), (batch, co, hw, hw), dev, dtype, sync,
                            a.min_seconds)
        flops = 6.0 * batch * hw * hw * co * (c // groups) * 9
        print(json.dumps({"bench": "conv", "impl": "torch", "torch": torch.__version__,
                          "device": torch.cuda.get_device_name() if cuda else "cpu",
                          "threads": torch.get_num_threads(), "shape": name, "batch": batch,
                          "seconds_per_step": s, "tflops": flops / s * 1e-12,
                          "precision": a.precision}), flush=True)
    for name, c, hw in wanted(BN_SHAPES):
        bn = torch.nn.Sequential(torch.nn.BatchNorm2d(c), torch.nn.ReLU()).to(dev).train()
        shape = (a.batch, c, hw, hw)
        s = fwd_bwd_seconds(bn, shape, shape, dev, dtype, sync, a.min_seconds)
        print(json.dumps({"bench": "batchnorm2d", "impl": "torch", "torch": torch.__version__,
                          "device": torch.cuda.get_device_name() if cuda else "cpu",
                          "threads": torch.get_num_threads(), "shape": name, "batch": a.batch,
                          "seconds_per_step": s, "precision": a.precision}), flush=True)


if __name__ == "__main__":
    main()
