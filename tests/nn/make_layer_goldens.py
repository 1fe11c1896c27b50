#!/usr/bin/python3
"""Forward and backward values of every layer and loss, from PyTorch on the CPU.

    /usr/bin/python3 tests/nn/make_layer_goldens.py     (Debian's python3-torch)

Writes tests/nn/golden/layers.json: for each case its inputs (x, parameters, upstream gradient
dy) and PyTorch's outputs (y, dx, parameter gradients, updated buffers), flattened row-major.
"""
import json
import os

import torch

torch.manual_seed(1234)
HERE = os.path.dirname(os.path.abspath(__file__))


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def layer_case(module, x, **extra):
    x = x.clone().requires_grad_(True)
    y = module(x)
    dy = torch.randn_like(y)
    y.backward(dy)
    case = {"x": flat(x), "x_shape": list(x.shape), "y": flat(y), "dy": flat(dy),
            "dx": flat(x.grad)}
    for name, p in module.named_parameters():
        case["param." + name] = flat(p)
        case["grad." + name] = flat(p.grad)
    for name, b in module.named_buffers():
        if b.dtype.is_floating_point:
            case["buffer." + name] = flat(b)
    case.update(extra)
    return case


def main():
    cases = {}
    x = torch.randn(4, 5)
    cases["linear"] = layer_case(torch.nn.Linear(5, 3), x)
    cases["linear_nobias"] = layer_case(torch.nn.Linear(5, 3, bias=False), x)
    xa = torch.tensor([[-3.0, -1.0, -1e-3, 0.0, 1e-3, 2.5], [10.0, -10.0, 0.5, -0.5, 4.0, -4.0],
                       [0.1, 0.2, 0.3, -0.7, 1.5, -2.2], [30.0, -30.0, 0.0, 6.0, -6.0, 0.05]])
    for name, module in [("relu", torch.nn.ReLU()), ("leaky_relu", torch.nn.LeakyReLU(0.1)),
                         ("tanh", torch.nn.Tanh()), ("sigmoid", torch.nn.Sigmoid()),
                         ("gelu", torch.nn.GELU()), ("silu", torch.nn.SiLU())]:
        cases[name] = layer_case(module, xa)
    bn = torch.nn.BatchNorm1d(5, eps=1e-5, momentum=0.1)
    with torch.no_grad():
        bn.weight.copy_(torch.randn(5))
        bn.bias.copy_(torch.randn(5))
    xb = torch.randn(8, 5) * 3 + 1
    before = {"buffer_in.running_mean": flat(bn.running_mean),
              "buffer_in.running_var": flat(bn.running_var)}
    cases["batchnorm_train"] = layer_case(bn, xb, **before)
    bn.eval()
    xe = torch.randn(6, 5)
    with torch.no_grad():
        ye = bn(xe)
    cases["batchnorm_eval"] = {"x": flat(xe), "x_shape": [6, 5], "y": flat(ye),
                               "param.weight": flat(bn.weight), "param.bias": flat(bn.bias),
                               "buffer.running_mean": flat(bn.running_mean),
                               "buffer.running_var": flat(bn.running_var)}

    logits = torch.tensor([[1000.0, 999.0, -1000.0, 0.0], [0.5, -0.25, 3.0, 2.0],
                           [-50.0, -51.0, -49.0, -50.5], [1e-3, 0.0, -1e-3, 7.0],
                           [88.0, 89.0, 90.0, 91.0]])
    labels = torch.tensor([0, 2, 1, 3, 0])
    for eps in (0.0, 0.1):
        lg = logits.clone().requires_grad_(True)
        loss = torch.nn.CrossEntropyLoss(label_smoothing=eps)(lg, labels)
        loss.backward()
        cases[f"cross_entropy_{eps}"] = {"x": flat(logits), "x_shape": [5, 4],
                                         "labels": labels.tolist(), "eps": eps,
                                         "loss": float(loss), "dx": flat(lg.grad)}
    # Class weights (one of them 0: its row counts for nothing), with and without smoothing.
    weights = torch.tensor([0.5, 2.0, 0.0, 1.25])
    for eps in (0.0, 0.1):
        lg = logits.clone().requires_grad_(True)
        loss = torch.nn.CrossEntropyLoss(weight=weights, label_smoothing=eps)(lg, labels)
        loss.backward()
        cases[f"cross_entropy_weighted_{eps}"] = {
            "x": flat(logits), "x_shape": [5, 4], "labels": labels.tolist(), "eps": eps,
            "weights": weights.tolist(), "loss": float(loss), "dx": flat(lg.grad)}
    out = torch.randn(3, 4, requires_grad=True)
    target = torch.randn(3, 4)
    loss = torch.nn.MSELoss()(out, target)
    loss.backward()
    cases["mse"] = {"x": flat(out), "x_shape": [3, 4], "target": flat(target),
                    "loss": float(loss), "dx": flat(out.grad)}

    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 5),
                                torch.nn.Tanh(), torch.nn.Linear(5, 3))
    xs = torch.randn(7, 6)
    ys = torch.tensor([0, 1, 2, 1, 0, 2, 2])
    loss = torch.nn.CrossEntropyLoss()(model(xs), ys)
    loss.backward()
    seq = {"x": flat(xs), "x_shape": [7, 6], "labels": ys.tolist(), "loss": float(loss)}
    for name, p in model.named_parameters():
        seq["param." + name] = flat(p)
        seq["grad." + name] = flat(p.grad)
    cases["sequential_mlp"] = seq
    # Added later, last, so that the cases above keep their random draws: ReLU6, Hardswish and ELU
    # on inputs at and around their kinks (0 and 6; -3 and 3; 0) and far out.
    xk = torch.tensor([[-3.0, -3.0001, -2.9999, 3.0, 3.0001, 2.9999], [0.0, 6.0, 6.0001, 5.9999,
                       -1e-3, 1e-3], [-30.0, 30.0, -0.5, 0.5, -7.0, 1e-6],
                       [-1e-6, 4.5, -4.5, 1.25, -1.25, 80.0]])
    # Hardswish's gradient at exactly 3 is where PyTorch disagrees with itself (its CPU vector
    # path gives dy, its scalar path and CUDA kernel 1.5 dy): its case moves those two inputs off
    # the kink (layers_test checks cutrain's 1.5 dy, the formula's, on its own).
    xh = torch.where(xk.abs() == 3.0, xk * 1.0002, xk)
    for name, module, x in [("relu6", torch.nn.ReLU6(), xk), ("hardswish", torch.nn.Hardswish(), xh),
                            ("elu", torch.nn.ELU(), xk), ("elu_alpha", torch.nn.ELU(alpha=0.3), xk)]:
        cases[name] = layer_case(module, x)
    with open(os.path.join(HERE, "golden", "layers.json"), "w") as f:
        json.dump({"torch_version": torch.__version__, "cases": cases}, f)


if __name__ == "__main__":
    main()
