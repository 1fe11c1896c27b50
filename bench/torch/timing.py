"""The timing loop the PyTorch peers of bench_layers and bench_conv share (linear.py, conv.py):
3 warm-up runs (cuDNN's algorithm search, allocator growth), then runs until `min_seconds` have
passed and at least 5 were made, each ended by `sync` (torch.cuda.synchronize, or nothing on the
CPU). Returns the mean seconds per run; fwd_bwd_seconds times a layer's forward + backward."""
import time

import torch


def seconds_per_run(step, sync, min_seconds):
    for _ in range(3):
        step()
    sync()
    runs, t0 = 0, time.perf_counter()
    while True:
        step()
        runs += 1
        sync()
        if time.perf_counter() - t0 >= min_seconds and runs >= 5:
            return (time.perf_counter() - t0) / runs


def fwd_bwd_seconds(module, x_shape, y_shape, dev, dtype, sync, min_seconds):
    """Seconds per forward + backward of `module` (input gradient included) on random data,
    under torch.autocast(dtype) when dtype is given."""
    x = torch.randn(*x_shape, device=dev, requires_grad=True)
    dy = torch.randn(*y_shape, device=dev, dtype=dtype or torch.float32)

    def step():
        x.grad = None
        module.zero_grad(set_to_none=True)
        with torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None):
            y = module(x)
        y.backward(dy)
    return seconds_per_run(step, sync, min_seconds)
