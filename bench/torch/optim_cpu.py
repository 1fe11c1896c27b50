#!/usr/bin/python3
"""PyTorch's CPU Adam on the machine that runs bench_optim --device cpu (bench/compare_cpu_adam.sh).

Prints one JSON line per variant: seconds per step for torch.optim.Adam (single-tensor loop and
foreach) on one flat fp32 tensor of --n elements, with --threads intra-op threads.
"""
import argparse
import json
import time

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1 << 24)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-seconds", type=float, default=1.0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    p = torch.nn.Parameter(torch.zeros(args.n))
    p.grad = torch.sin(torch.arange(args.n, dtype=torch.float32) * 1e-3) * 1e-2
    for foreach in (False, True):
        opt = torch.optim.Adam([p], lr=1e-3, foreach=foreach)
        for _ in range(3):
            opt.step()
        runs, t0 = 0, time.perf_counter()
        while True:
            opt.step()
            runs += 1
            elapsed = time.perf_counter() - t0
            if elapsed >= args.min_seconds and runs >= 3:
                break
        print(json.dumps({"bench": "torch_optim_cpu", "optimizer": "adam", "foreach": foreach,
                          "torch": torch.__version__, "n": args.n, "threads": args.threads,
                          "seconds_per_step": elapsed / runs}), flush=True)


if __name__ == "__main__":
    main()
