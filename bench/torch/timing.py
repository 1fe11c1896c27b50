"""The timing loop the PyTorch peers of bench_layers and bench_conv share (linear.py, conv.py):
3 warm-up runs (cuDNN's algorithm search, allocator growth), then runs until `min_seconds` have
passed and at least 5 were made, each ended by `sync` (torch.cuda.synchronize, or nothing on the
CPU). Returns the mean seconds per run."""
import time


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
