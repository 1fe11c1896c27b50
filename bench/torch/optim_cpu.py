#!/usr/bin/python3
"""PyTorch's CPU Adam on the machine that runs bench_optim --device cpu (bench/compare_cpu_adam.sh).

Prints one JSON line per variant: seconds per step for torch.optim.Adam (single-tensor loop and
foreach) on one flat fp32 tensor of --n elements, with --threads intra-op threads. With
--model gpt2-small|mlp-1m, the parameters are that model's tensors (bench_optim --model's twins),
and --clip adds clip_grad_norm_(max_norm=1) before each step (bench_optim --clip).
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shapes import model_shapes  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1 << 24)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-seconds", type=float, default=1.0)
    ap.add_argument("--model", default="")
    ap.add_argument("--clip", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    shapes = model_shapes(args.model) if args.model else [(args.n,)]
    params = [torch.nn.Parameter(torch.zeros(s)) for s in shapes]
    for p in params:
        p.grad = torch.sin(torch.arange(p.numel(), dtype=torch.float32) * 1e-3).reshape(p.shape) * 1e-2
    n = sum(p.numel() for p in params)
    for foreach in (False, True):
        opt = torch.optim.Adam(params, lr=1e-3, foreach=foreach)

        def step():
            if args.clip:
                torch.nn.utils.clip_grad_norm_(params, max_norm=1.0)
            opt.step()
        for _ in range(3):
            step()
        runs, t0 = 0, time.perf_counter()
        while True:
            step()
            runs += 1
            elapsed = time.perf_counter() - t0
            if elapsed >= args.min_seconds and runs >= 3:
                break
        print(json.dumps({"bench": "torch_optim_cpu", "optimizer": "adam" + ("+clip" if args.clip else ""),
                          "foreach": foreach, "model": args.model, "tensors": len(params),
                          "torch": torch.__version__, "n": n, "threads": args.threads,
                          "seconds_per_step": elapsed / runs}), flush=True)


if __name__ == "__main__":
    main()
