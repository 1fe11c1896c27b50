#!/usr/bin/python3
"""Generates the optimizer and LR-schedule golden files with PyTorch on the CPU.

Run with Debian's python3-torch (apt-get install python3-torch):
    /usr/bin/python3 tests/optim/make_goldens.py
It reads tests/optim/golden/cases.json and writes, per case, golden/<name>.bin: float32
little-endian arrays [params after step `checkpoint_step`][params after `steps`][each state
after `steps`, in the order manifest.json lists][for "clip" cases: the norm that
torch.nn.utils.clip_grad_norm_ returned at each step], and golden/manifest.json,
golden/schedules.json.

Inputs are reproducible without random generators (see tests/optim/golden_inputs.hpp, the C++
twin of `unit` and `grad` below): the model is two tensors, w [48, 40] and b [70], flattened in
that order into 1990 values; the gradient of element i at step t is a hashed value of one of
eight kinds chosen by i % 8 (exact zeros, tiny, large, sign-flipping, ordinary).
"""
import json
import math
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "golden")
W_SHAPE, B_SIZE = (48, 40), 70
N = W_SHAPE[0] * W_SHAPE[1] + B_SIZE
M64 = (1 << 64) - 1


def mix(x):
    x &= M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def unit(seed, i):
    """A value in [-1, 1) with 24 significant bits: exact in float32."""
    u = mix(seed * 0x9E3779B97F4A7C15 + i) >> 40
    return np.float32((2 * u - (1 << 24)) / float(1 << 24))


def initial_params():
    return np.array([unit(1, i) for i in range(N)], dtype=np.float32)


def grad(t, i):
    kind = i % 8
    f32 = np.float32
    if kind == 0:
        return f32(0.0)
    if kind == 1:
        return f32(unit(1000 + t, i) * f32(1e-6))
    if kind == 2:
        return f32(unit(1000 + t, i) * f32(1e3))
    if kind == 3:
        return f32(unit(7, i) * f32(1.0 if t % 2 == 0 else -1.0))
    return unit(1000 + t, i)


def f32(x):
    return float(np.float32(x))


def make_optimizer(kind, opts, params, groups):
    o = {k: (f32(v) if isinstance(v, float) else v) for k, v in opts.items()}
    if "beta1" in o or "beta2" in o:
        o["betas"] = (o.pop("beta1", f32(0.9)), o.pop("beta2", f32(0.999)))
    o.setdefault("lr", 0.0)
    if kind in ("adam", "adamw"):
        o.setdefault("betas", (f32(0.9), f32(0.999)))
        o.setdefault("eps", f32(1e-8))
        if kind == "adamw":
            o.setdefault("weight_decay", f32(1e-2))
    if kind == "rmsprop":
        o.setdefault("alpha", f32(0.99))
        o.setdefault("eps", f32(1e-8))
    if kind == "adagrad":
        o.setdefault("eps", f32(1e-10))
    if groups:
        param_groups = [{"params": [params[0]]},
                        {"params": [params[1]], "weight_decay": 0.0, "lr": o["lr"] * 0.5}]
    else:
        param_groups = [{"params": params}]
    cls = {"sgd": torch.optim.SGD, "adagrad": torch.optim.Adagrad,
           "rmsprop": torch.optim.RMSprop, "adam": torch.optim.Adam,
           "adamw": torch.optim.AdamW}[kind]
    extra = {} if kind == "adagrad" else {"foreach": False}
    return cls(param_groups, **o, **extra), o


STATE_ORDER = {
    "sgd": ["momentum_buffer"], "adagrad": ["sum"],
    "rmsprop": ["square_avg", "grad_avg", "momentum_buffer"],
    "adam": ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"],
    "adamw": ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"],
}


def run_case(case, steps, checkpoint):
    p0 = initial_params()
    w = torch.tensor(p0[: W_SHAPE[0] * W_SHAPE[1]].reshape(W_SHAPE), requires_grad=True)
    b = torch.tensor(p0[W_SHAPE[0] * W_SHAPE[1]:], requires_grad=True)
    opt, o = make_optimizer(case["optimizer"], case["options"], [w, b], case.get("groups", False))
    base_lrs = [g["lr"] for g in opt.param_groups]
    gamma = case.get("lr_gamma_per_step")
    clip = case.get("clip")
    out, norms = [], []
    for t in range(1, steps + 1):
        g = np.array([grad(t, i) for i in range(N)], dtype=np.float32)
        w.grad = torch.tensor(g[: w.numel()].reshape(W_SHAPE))
        b.grad = torch.tensor(g[w.numel():])
        if gamma is not None:
            for grp, base in zip(opt.param_groups, base_lrs):
                grp["lr"] = f32(base * gamma ** (t - 1))
        if clip is not None:
            norm_type = float(clip["norm_type"])
            norms.append(float(torch.nn.utils.clip_grad_norm_(
                [w, b], max_norm=f32(clip["max_norm"]), norm_type=norm_type)))
        opt.step()
        if t == checkpoint:
            out.append(torch.cat([w.detach().flatten(), b.detach()]).numpy().copy())
    out.append(torch.cat([w.detach().flatten(), b.detach()]).numpy().copy())
    states = []
    for name in STATE_ORDER[case["optimizer"]]:
        if name in opt.state[w] and torch.is_tensor(opt.state[w][name]):
            states.append(name)
            out.append(torch.cat([opt.state[w][name].flatten(), opt.state[b][name]]).numpy())
    if clip is not None:  # clip_grad_norm_'s returned pre-clip norm of every step
        out.append(np.array(norms, dtype=np.float32))
    return np.concatenate(out).astype("<f4"), states


def schedules():
    """LR sequences of torch.optim.lr_scheduler for tests/optim/schedule_test.cpp."""
    def seq(make, n, metrics=None):
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=0.1)
        sched = make(opt)
        values = []
        for k in range(n):
            values.append(opt.param_groups[0]["lr"])
            opt.step()
            if metrics is not None:
                sched.step(metrics[k])
            else:
                sched.step()
        return values

    S = torch.optim.lr_scheduler
    plateau_metrics = [1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.8, 0.85, 0.85, 0.85, 0.85, 0.85,
                       0.85, 0.85, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7]
    return {
        "step": seq(lambda o: S.StepLR(o, step_size=7, gamma=0.5), 40),
        "multistep": seq(lambda o: S.MultiStepLR(o, milestones=[5, 12, 30], gamma=0.3), 40),
        "exponential": seq(lambda o: S.ExponentialLR(o, gamma=0.93), 40),
        "cosine": seq(lambda o: S.CosineAnnealingLR(o, T_max=25, eta_min=0.001), 25),
        "cosine_restarts": seq(lambda o: S.CosineAnnealingWarmRestarts(o, T_0=5, T_mult=2,
                                                                     eta_min=0.002), 40),
        "warmup_exponential": seq(lambda o: S.ChainedScheduler([
            S.LinearLR(o, start_factor=0.25, total_iters=6), S.ExponentialLR(o, gamma=0.95)]), 30),
        "linear_decay": seq(lambda o: S.LinearLR(o, start_factor=1.0, end_factor=0.05,
                                                 total_iters=20), 30),
        "plateau": seq(lambda o: S.ReduceLROnPlateau(o, factor=0.5, patience=2, cooldown=1,
                                                     min_lr=0.01), len(plateau_metrics),
                       plateau_metrics),
        "plateau_metrics": plateau_metrics,
        "onecycle": seq(lambda o: S.OneCycleLR(o, max_lr=0.1, total_steps=40,
                                               cycle_momentum=False), 40),
        "onecycle_linear_three_phase": seq(lambda o: S.OneCycleLR(
            o, max_lr=0.2, total_steps=33, pct_start=0.25, anneal_strategy="linear",
            div_factor=10, final_div_factor=100, three_phase=True, cycle_momentum=False), 33),
    }


def main():
    with open(os.path.join(GOLDEN, "cases.json")) as f:
        spec = json.load(f)
    manifest = {"torch_version": torch.__version__, "cases": {}}
    for case in spec["cases"]:
        data, states = run_case(case, spec["steps"], spec["checkpoint_step"])
        data.tofile(os.path.join(GOLDEN, case["name"] + ".bin"))
        manifest["cases"][case["name"]] = {"states": states}
        print(f"{case['name']}: {len(states)} states", file=sys.stderr)
    with open(os.path.join(GOLDEN, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    with open(os.path.join(GOLDEN, "schedules.json"), "w") as f:
        json.dump(schedules(), f, indent=1)


if __name__ == "__main__":
    main()
