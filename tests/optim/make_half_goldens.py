#!/usr/bin/python3
"""PyTorch's rounding of float32 to bfloat16 and float16 (Tensor.to), the reference for
cutrain's 16-bit compute copy (Note [16-bit compute copy]): ties, subnormals, overflow and
random values, as float32 bits and the 16-bit bits torch produces.

    /usr/bin/python3 tests/optim/make_half_goldens.py > tests/optim/golden/half_rounding.json
"""
import json

import numpy as np
import torch

rng = np.random.default_rng(7)
values = [1.0, 1.0 + 2.0**-8, 1.0 + 3 * 2.0**-8, -1.0 - 2.0**-8, 65504.0, 65519.0, 65520.0,
          -70000.0, 2.0**-24, 2.0**-25, 1.5 * 2.0**-25, 3.0 * 2.0**-26, 2.0**-14, 0.99999 * 2.0**-14,
          1e-30, -0.0, 3.4e38, float("inf"), -float("inf")]
values += list(rng.normal(0, 1, 40)) + list(rng.normal(0, 1e-6, 20)) + list(rng.normal(0, 1e4, 20))
x = torch.tensor(values, dtype=torch.float32)
print(json.dumps({
    "float_bits": [int(v) for v in x.view(torch.int32).numpy().astype(np.uint32)],
    "bf16_bits": [int(v) for v in x.to(torch.bfloat16).view(torch.int16).numpy().astype(np.uint16)],
    "fp16_bits": [int(v) for v in x.to(torch.float16).view(torch.int16).numpy().astype(np.uint16)],
    "torch": torch.__version__,
}))
