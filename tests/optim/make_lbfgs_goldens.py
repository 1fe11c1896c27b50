#!/usr/bin/python3
"""L-BFGS goldens from torch.optim.LBFGS (line_search_fn=None) on softmax regression.

    /usr/bin/python3 tests/optim/make_lbfgs_goldens.py

Problem (the C++ twin is in tests/optim/lbfgs_test.cpp): 64 samples of 20 features
x[i, j] = unit(11, 20 i + j), labels i % 3, weights W [3, 20] = 0.1 unit(12, k), bias zero,
mean cross-entropy. Writes golden/lbfgs.json: per configuration, the parameters [W, b] and the
returned loss after each of 4 step() calls.
"""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_goldens import unit  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    x = torch.tensor(np.array([[unit(11, 20 * i + j) for j in range(20)] for i in range(64)],
                              dtype=np.float32))
    y = torch.tensor([i % 3 for i in range(64)])
    out = {"torch_version": torch.__version__, "cases": {}}
    for name, opts in {"default": dict(lr=1.0, max_iter=5, history_size=4),
                       "lr_half_long_history": dict(lr=0.5, max_iter=7, history_size=10),
                       "strong_wolfe": dict(lr=1.0, max_iter=6, history_size=5,
                                            line_search_fn="strong_wolfe")}.items():
        lin = torch.nn.Linear(20, 3)
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(np.array([np.float32(0.1) * unit(12, k) for k in range(60)],
                                                   dtype=np.float32).reshape(3, 20)))
            lin.bias.zero_()
        opt = torch.optim.LBFGS(lin.parameters(), **opts)

        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(lin(x), y)
            loss.backward()
            return loss

        steps = []
        for _ in range(4):
            loss = float(opt.step(closure))
            params = torch.cat([lin.weight.detach().flatten(), lin.bias.detach()])
            steps.append({"loss": loss, "params": [float(v) for v in params]})
        out["cases"][name] = {"options": opts, "steps": steps,
                              "func_evals": opt.state[opt._params[0]]["func_evals"]}
    with open(os.path.join(HERE, "golden", "lbfgs.json"), "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
