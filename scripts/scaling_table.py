#!/usr/bin/env python3
"""Simulated weak scaling of cutrain's data parallelism (docs/multi-gpu.md).

Each step: compute (forward, backward, optimizer; measured on one GPU) then one ring all-reduce
of the gradient arena, 4 bytes per parameter, not overlapped with compute. The ring's cost
(alpha-beta model, as nccl-tests reports it):
    t_allreduce = alpha + 2 (W - 1) / W * bytes / busbw
where busbw is the bus bandwidth nccl-tests prints (the per-link rate the ring sustains).
Weak scaling keeps the per-rank batch, so efficiency = t_compute / (t_compute + t_allreduce).

    python3 scripts/scaling_table.py [--step-ms 0.277] [--params 535818]

Defaults: the main job on an H100 as first measured (0.13 s/epoch over 469 steps = 0.277 ms/step,
2026-11-26; 535,818 parameters) - a conservative step: the epoch is 0.080 s since (0.171 ms/step,
bench/RESULTS.md), which makes the all-reduce's share larger. Links (assumed published figures, not measured here): NVLink within a node,
busbw 370 GB/s (the ring's effective NVLink rate on H100 per NCCL's maintainers), alpha 15 us;
across nodes, 400 Gb/s InfiniBand per GPU, busbw 45 GB/s (90% of line rate), alpha 40 us.
"""
import argparse


def allreduce_s(world, nbytes, busbw_gbs, alpha_us):
    if world == 1:
        return 0.0
    return alpha_us * 1e-6 + 2 * (world - 1) / world * nbytes / (busbw_gbs * 1e9)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--step-ms", type=float, default=0.277)
    ap.add_argument("--params", type=int, default=535818)
    ap.add_argument("--per-node", type=int, default=8)
    ap.add_argument("--nvlink-busbw", type=float, default=370.0)
    ap.add_argument("--nvlink-alpha-us", type=float, default=15.0)
    ap.add_argument("--ib-busbw", type=float, default=45.0)
    ap.add_argument("--ib-alpha-us", type=float, default=40.0)
    a = ap.parse_args()
    nbytes = 4 * a.params
    t_c = a.step_ms * 1e-3
    print(f"all-reduce payload: {nbytes / 1e6:.2f} MB per step; compute {a.step_ms:.3f} ms/step\n")
    print("| ranks | link | all-reduce (us) | step (ms) | efficiency | samples/s (x one GPU) |")
    print("|---:|---|---:|---:|---:|---:|")
    for world in (1, 2, 4, 8, 16, 32, 64):
        if world <= a.per_node:
            link, t = "NVLink", allreduce_s(world, nbytes, a.nvlink_busbw, a.nvlink_alpha_us)
        else:  # the inter-node ring is the bottleneck
            link, t = "InfiniBand", allreduce_s(world, nbytes, a.ib_busbw, a.ib_alpha_us)
        eff = t_c / (t_c + t)
        print(f"| {world} | {link if world > 1 else '-'} | {t * 1e6:.1f} | {(t_c + t) * 1e3:.3f} | "
              f"{eff * 100:.1f}% | {world * eff:.1f}x |")


if __name__ == "__main__":
    main()
