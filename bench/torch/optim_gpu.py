#!/usr/bin/env python3
"""PyTorch's GPU Adam on one flat fp32 tensor, next to the same-run copy roofline (bench_optim's
peer; run by scripts/gpu_check.sh). One JSON line per (variant, n): fused=True and foreach=True.
Bytes per step are counted as bench_optim counts them: 28 per parameter, 32 with the clip's
norm read (clip_grad_norm_ actually moves more: it also rewrites the gradients)."""
import argparse
import json
import sys

import torch


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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--log2", type=int, nargs="*", default=[20, 22, 24, 26])
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device", file=sys.stderr)
        return 1
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
