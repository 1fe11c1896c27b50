#!/usr/bin/env python3
"""PyTorch's GPU Adam on one flat fp32 tensor, next to the same-run copy roofline (bench_optim's
peer; run by scripts/gpu_check.sh). One JSON line per (variant, n): fused=True and foreach=True.
Bytes per step are counted as bench_optim counts them: 28 per parameter, 32 with the clip's
norm read (clip_grad_norm_ actually moves more: it also rewrites the gradients)."""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shapes import model_shapes  # noqa: E402


def timed(fn, min_ms=50.0):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    runs = 5
    while True:
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(runs):
            fn()
        stop.record()
        stop.synchronize()
        ms = start.elapsed_time(stop)
        if ms >= min_ms:
            return ms / runs * 1e-3
        runs *= 2


def model_bench(model):
    shapes = model_shapes(model)
    n = sum(int(np.prod(s)) for s in shapes)
    src = torch.empty(28 * n // 8, dtype=torch.float32, device="cuda")
    dst = torch.empty_like(src)
    copy_gbps = 28 * n / timed(lambda: dst.copy_(src)) * 1e-9
    del src, dst
    for variant in ("fused", "foreach", "fused+clip", "foreach+clip"):
        params = [torch.nn.Parameter(torch.zeros(s, device="cuda")) for s in shapes]
        for p in params:
            p.grad = torch.randn_like(p) * 1e-2
        opt = torch.optim.Adam(params, lr=1e-3, **{variant.split("+")[0]: True})
        if variant.endswith("+clip"):
            def step():
                torch.nn.utils.clip_grad_norm_(params, max_norm=1.0)
                opt.step()
        else:
            step = opt.step
        s = timed(step)
        b = (32 if variant.endswith("+clip") else 28) * n
        print(json.dumps({"bench": "torch_optim", "optimizer": "adam", "variant": variant,
                          "model": model, "tensors": len(shapes), "torch": torch.__version__,
                          "device": torch.cuda.get_device_name(), "n": n,
                          "seconds_per_step": s, "bytes_per_step": b, "gbps": b / s * 1e-9,
                          "copy_gbps": copy_gbps, "fraction_of_copy": b / s * 1e-9 / copy_gbps}),
              flush=True)
        del opt, params


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--log2", type=int, nargs="*", default=[20, 22, 24, 26])
    ap.add_argument("--model", nargs="*", default=[], help="gpt2-small and/or mlp-1m")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device", file=sys.stderr)
        return 1
    for model in args.model:
        model_bench(model)
    for k in args.log2:
        n = 1 << k
        src = torch.empty(28 * n // 8, dtype=torch.float32, device="cuda")
        dst = torch.empty_like(src)
        copy_s = timed(lambda: dst.copy_(src))
        del src, dst
        copy_gbps = 28 * n / copy_s * 1e-9
        for variant in ("fused", "foreach", "fused+clip"):
            p = torch.nn.Parameter(torch.zeros(n, device="cuda"))
            p.grad = torch.randn(n, device="cuda") * 1e-2
            opt = torch.optim.Adam([p], lr=1e-3, **{variant.split("+")[0]: True})
            if variant.endswith("+clip"):
                def step():
                    torch.nn.utils.clip_grad_norm_([p], max_norm=1.0)
                    opt.step()
                s = timed(step)
            else:
                s = timed(opt.step)
            bytes_per_step = (32 if variant.endswith("+clip") else 28) * n
            gbps = bytes_per_step / s * 1e-9
            print(json.dumps({"bench": "torch_optim", "optimizer": "adam", "variant": variant,
                              "torch": torch.__version__, "device": torch.cuda.get_device_name(),
                              "n": n, "seconds_per_step": s, "bytes_per_step": bytes_per_step,
                              "gbps": gbps, "copy_gbps": copy_gbps,
                              "fraction_of_copy": gbps / copy_gbps}), flush=True)
            del opt, p
    return 0


if __name__ == "__main__":
    sys.exit(main())
