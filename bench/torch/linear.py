#!/usr/bin/env python3
"""The PyTorch peer of bench_layers: torch.nn.Linear forward + backward (weight, bias and input
gradients) at bench_layers' shapes, in TFLOP/s (FLOPs = 6 B in out). fp32 is strict (TF32 off),
tf32 sets allow_tf32, bf16 / fp16 run under torch.autocast (fp32 weights, 16-bit GEMMs) - the
peers of bench_layers --precision. One JSON line per shape."""
import argparse
import json
import os

import torch

from timing import fwd_bwd_seconds

SHAPES = [(784, 1024), (1024, 1024), (1024, 10), (4096, 4096)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--min-seconds", type=float, default=0.2)
    ap.add_argument("--small", action="store_true", help="only the first shape (smoke tests)")
    ap.add_argument("--precision", choices=["fp32", "tf32", "bf16", "fp16"], default="fp32")
    a = ap.parse_args()
    dev = torch.device(a.device)
    cuda = dev.type == "cuda"
    torch.backends.cuda.matmul.allow_tf32 = a.precision == "tf32"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    if not cuda:  # every core, as cutrain's OpenMP loops and OpenBLAS use (torch may pick 1)
        torch.set_num_threads(os.cpu_count() or 1)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(a.precision)
    for fan_in, fan_out in SHAPES[:1] if a.small else SHAPES:
        layer = torch.nn.Linear(fan_in, fan_out).to(dev)
        s = fwd_bwd_seconds(layer, (a.batch, fan_in), (a.batch, fan_out), dev, dtype, sync,
                            a.min_seconds)
        flops = 6.0 * a.batch * fan_in * fan_out
        print(json.dumps({"bench": "torch_layers", "layer": "linear", "torch": torch.__version__,
                          "device": torch.cuda.get_device_name() if cuda else "cpu",
                          "threads": torch.get_num_threads(), "in": fan_in, "out": fan_out,
                          "batch": a.batch, "seconds_per_step": s, "tflops": flops / s * 1e-12,
                          "precision": a.precision}), flush=True)


if __name__ == "__main__":
    main()
