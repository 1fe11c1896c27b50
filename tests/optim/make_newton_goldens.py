#!/usr/bin/python3
"""The optimum of binary logistic regression on a Fashion-MNIST subset, for the exact-Newton test.

    /usr/bin/python3 tests/optim/make_newton_goldens.py [fashion-mnist dir]

Problem (the C++ twin is in tests/optim/newton_test.cpp): the first 200 training images of
class 0 (T-shirt/top, label 0) and the first 200 of class 6 (shirt, label 1), in file order,
pixels / 255; theta = [w (784), b], f = mean(log(1 + e^z) - y z) + (L2 / 2) |w|^2.
Solved independently of cutrain: torch.optim.LBFGS in float64 with the strong-Wolfe search
(which stalls near |g| ~ 5e-9), then Newton steps with PyTorch's autograd Hessian
(torch.autograd.functional.hessian) and torch.linalg.solve until |g| < 1e-12. Writes golden/newton_logistic.json (theta, loss, |g|).
"""
import gzip
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"
L2 = 1e-3
PER_CLASS = 200


def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def main():
    images = read_idx(os.path.join(DATA, "train-images-idx3-ubyte.gz")).reshape(-1, 784)
    labels = read_idx(os.path.join(DATA, "train-labels-idx1-ubyte.gz"))
    rows = np.concatenate([np.flatnonzero(labels == 0)[:PER_CLASS],
                           np.flatnonzero(labels == 6)[:PER_CLASS]])
    rows.sort()  # file order, as the C++ test selects them
    x = torch.tensor((images[rows].astype(np.float32) / np.float32(255)).astype(np.float64))
    y = torch.tensor((labels[rows] == 6).astype(np.float64))
    theta = torch.zeros(785, dtype=torch.float64, requires_grad=True)

    def loss_of(v):
        z = x @ v[:784] + v[784]
        return torch.nn.functional.softplus(z).sub(y * z).mean() + 0.5 * L2 * v[:784].square().sum()

    def loss_fn():
        return loss_of(theta)

    opt = torch.optim.LBFGS([theta], lr=1, max_iter=10000, tolerance_grad=1e-13,
                            tolerance_change=0, history_size=50, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        t = theta.detach().clone()
    for _ in range(5):
        g = torch.autograd.functional.jacobian(lambda v: loss_of(v), t)
        if float(g.norm()) < 1e-12:
            break
        h = torch.autograd.functional.hessian(lambda v: loss_of(v), t)
        t = t - torch.linalg.solve(h, g)
    with torch.no_grad():
        theta.copy_(t)
    loss = float(closure())
    gnorm = float(theta.grad.norm())
    assert gnorm < 1e-12, gnorm
    out = {"torch_version": torch.__version__, "l2": L2, "per_class": PER_CLASS,
           "classes": [0, 6], "loss": loss, "grad_norm": gnorm,
           "theta": [float(v) for v in theta.detach()]}
    with open(os.path.join(HERE, "golden", "newton_logistic.json"), "w") as f:
        json.dump(out, f, indent=0)
        f.write("\n")
    print(f"loss {loss:.17g}  |g| {gnorm:.3g}")


if __name__ == "__main__":
    main()
