#!/usr/bin/python3
"""Reads a safetensors file with numpy alone (the format is an 8-byte little-endian header
length, a JSON header, then raw little-endian data) and prints name, shape, dtype, sum."""
import json
import struct
import sys

import numpy as np

DTYPES = {"F32": np.float32, "I64": np.int64, "F64": np.float64}

with open(sys.argv[1], "rb") as f:
    raw = f.read()
(n,) = struct.unpack("<Q", raw[:8])
header = json.loads(raw[8:8 + n])
data = raw[8 + n:]
for name, info in header.items():
    if name == "__metadata__":
        continue
    begin, end = info["data_offsets"]
    array = np.frombuffer(data[begin:end], dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
    print(name, tuple(array.shape), array.dtype, float(array.sum()))
