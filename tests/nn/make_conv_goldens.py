#!/usr/bin/python3
"""Forward and backward values of the convolutional layers, from PyTorch in float64.

    /usr/bin/python3 tests/nn/make_conv_goldens.py      (Debian's python3-torch)

Writes tests/nn/golden/conv.json. Inputs, parameters and upstream gradients are float32 values
(what cutrain computes with); the references are computed from them in float64, so a test's
tolerance measures cutrain's float32 rounding alone. Each case: the module (torch class name and
arguments, as cutrain's torch_args() writes them), x [N, C, H, W], y, dy, dx, the parameters and
their gradients, buffers before and after, flattened row-major.
"""
import json
import os

import torch

torch.manual_seed(2024)
HERE = os.path.dirname(os.path.abspath(__file__))


def flat(t):
    # 10 significant digits: exact for the float32 inputs, and far below the tests' tolerance
    # for the float64 references.
    return [float(f"{v:.10g}") for v in t.detach().reshape(-1).tolist()]


def f32(t):
    """float32-representable values, held in float64"""
    return t.float().double()


def case(module_type, args, x, train=True, int_inputs=False):
    module = getattr(torch.nn, module_type)(**args).double()
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(f32(torch.randn_like(p) * 0.5))
        if hasattr(module, "running_mean") and module.running_mean is not None:
            module.running_mean.copy_(f32(torch.randn_like(module.running_mean)))
            module.running_var.copy_(f32(torch.rand_like(module.running_var) + 0.5))
    module.train(train)
    before = {"buffer_in." + n: flat(b) for n, b in module.named_buffers() if b.is_floating_point()}
    x = x.double().clone().requires_grad_(True)
    y = module(x)
    dy = f32(torch.randn_like(y))
    y.backward(dy)
    c = {"type": module_type, "args": args, "train": train, "x": flat(x),
         "x_shape": list(x.shape), "y": flat(y), "y_shape": list(y.shape), "dy": flat(dy),
         "dx": flat(x.grad)}
    for n, p in module.named_parameters():
        c["param." + n] = flat(p)
        c["grad." + n] = flat(p.grad)
    c.update(before)
    for n, b in module.named_buffers():
        if b.is_floating_point():
            c["buffer." + n] = flat(b)
    return c


def conv_grid():
    """A deterministic walk through the grid C_in/C_out in {1, 3, 8}, k in {1, 3, 5}, stride 1/2,
    padding 0/1/2, dilation 1/2, odd H/W, batch 1 and 3: every value of every axis appears, with
    the neighbours of each (not all 648 combinations)."""
    chans, ks, strides, pads, dils, batches = [1, 3, 8], [1, 3, 5], [1, 2], [0, 1, 2], [1, 2], [1, 3]
    out = []
    i = 0
    for cin in chans:
        for cout in chans:
            for k in ks:
                s = strides[i % 2]
                p = pads[(i // 2) % 3]
                d = dils[(i // 3) % 2]
                n = batches[(i // 5) % 2]
                h, w = (5, 7) if i % 3 else (7, 5)
                i += 1
                if (h + 2 * p - d * (k - 1) - 1) < 0 or (w + 2 * p - d * (k - 1) - 1) < 0:
                    continue
                out.append((cin, cout, k, s, p, d, n, h, w, i % 4 != 0))
    return out


def main():
    cases = {}
    for cin, cout, k, s, p, d, n, h, w, bias in conv_grid():
        name = f"conv_{cin}_{cout}_k{k}_s{s}_p{p}_d{d}_n{n}_{h}x{w}" + ("" if bias else "_nobias")
        args = {"in_channels": cin, "out_channels": cout, "kernel_size": [k, k], "stride": [s, s],
                "padding": [p, p], "dilation": [d, d], "bias": bias}
        cases[name] = case("Conv2d", args, f32(torch.randn(n, cin, h, w)))
    # Rectangular kernel, stride, padding and dilation.
    args = {"in_channels": 2, "out_channels": 4, "kernel_size": [3, 2], "stride": [2, 1],
            "padding": [1, 0], "dilation": [1, 2], "bias": True}
    cases["conv_rect"] = case("Conv2d", args, f32(torch.randn(2, 2, 9, 6)))
    # Max pooling with ties (small integers) and overlapping windows; padding.
    ties = torch.randint(0, 3, (2, 3, 7, 7)).double()
    cases["maxpool_2"] = case("MaxPool2d", {"kernel_size": [2, 2], "stride": [2, 2],
                                            "padding": [0, 0]}, ties)
    cases["maxpool_3s2p1"] = case("MaxPool2d", {"kernel_size": [3, 3], "stride": [2, 2],
                                                "padding": [1, 1]}, ties)
    cases["maxpool_3s1"] = case("MaxPool2d", {"kernel_size": [3, 3], "stride": [1, 1],
                                              "padding": [0, 0]}, f32(torch.randn(2, 2, 6, 5)))
    cases["avgpool_2"] = case("AvgPool2d", {"kernel_size": [2, 2], "stride": [2, 2],
                                            "padding": [0, 0]}, f32(torch.randn(2, 3, 7, 6)))
    cases["avgpool_3s2p1"] = case("AvgPool2d", {"kernel_size": [3, 3], "stride": [2, 2],
                                                "padding": [1, 1]}, f32(torch.randn(2, 2, 7, 7)))
    cases["adaptive_1"] = case("AdaptiveAvgPool2d", {"output_size": [1, 1]},
                               f32(torch.randn(3, 4, 5, 7)))
    cases["adaptive_2x3"] = case("AdaptiveAvgPool2d", {"output_size": [2, 3]},
                                 f32(torch.randn(2, 2, 5, 7)))
    xb = f32(torch.randn(4, 3, 5, 6) * 2 + 1)
    bn = {"num_features": 3, "eps": 1e-5, "momentum": 0.1, "affine": True}
    cases["batchnorm2d_train"] = case("BatchNorm2d", bn, xb)
    cases["batchnorm2d_eval"] = case("BatchNorm2d", bn, xb, train=False)
    cases["batchnorm2d_noaffine"] = case(
        "BatchNorm2d", {"num_features": 3, "eps": 1e-3, "momentum": 0.3, "affine": False}, xb)
    # Grouped and depthwise convolutions (last: the cases above keep their random draws). Both
    # CPU paths are covered: stride 1 (the implicit GEMM) and strided (the lowering).
    grouped = [  # (name, in, out, groups, kernel, stride, padding, dilation, bias, x shape)
        ("conv_g2_4_6_k3_p1", 4, 6, 2, [3, 3], [1, 1], [1, 1], [1, 1], True, (3, 4, 5, 7)),
        ("conv_depthwise_3_k3_s2_p1", 3, 3, 3, [3, 3], [2, 2], [1, 1], [1, 1], False, (2, 3, 7, 6)),
        ("conv_depthwise_x3_2_6_k5_p2_d2", 2, 6, 2, [5, 5], [1, 1], [2, 2], [2, 2], True,
         (2, 2, 9, 8)),
        ("conv_g4_8_4_k1", 8, 4, 4, [1, 1], [1, 1], [0, 0], [1, 1], True, (3, 8, 5, 5)),
        ("conv_g2_rect", 4, 4, 2, [3, 2], [2, 1], [1, 0], [1, 2], True, (2, 4, 9, 6)),
    ]
    for name, cin, cout, groups, k, s, p, d, bias, shape in grouped:
        args = {"in_channels": cin, "out_channels": cout, "kernel_size": k, "stride": s,
                "padding": p, "dilation": d, "groups": groups, "bias": bias}
        cases[name] = case("Conv2d", args, f32(torch.randn(*shape)))
    with open(os.path.join(HERE, "golden", "conv.json"), "w") as f:
        json.dump({"torch_version": torch.__version__, "dtype": "float64", "cases": cases}, f,
                  separators=(",", ":"))
    print(f"{len(cases)} cases")


if __name__ == "__main__":
    main()
