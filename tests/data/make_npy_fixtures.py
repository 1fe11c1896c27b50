#!/usr/bin/env python3
"""Writes tests/data/npy/*.npy with numpy.save / numpy.lib.format (run from the repository root:
/usr/bin/python3 tests/data/make_npy_fixtures.py). tests/data/npy_test.cpp checks cutrain's reader
against the formulas below: x = arange(24) * 0.5 - 3 shaped (4, 6) or (4, 2, 3)."""
import gzip
import os

import numpy as np

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "npy")
os.makedirs(out, exist_ok=True)
x = np.arange(24, dtype=np.float64) * 0.5 - 3  # exact in float16 too


def save(name, arr, version=None):
    path = os.path.join(out, name)
    if version is None:
        np.save(path, arr)
    else:
        with open(path, "wb") as f:
            np.lib.format.write_array(f, arr, version=version)


save("x_f4_c.npy", x.astype(np.float32).reshape(4, 2, 3))
save("x_f8_fortran.npy", np.asfortranarray(x.reshape(4, 6)))
save("x_f2_big.npy", x.reshape(4, 6).astype(">f2"))
save("x_i2_v2.npy", (x * 2).astype(np.int16).reshape(4, 6), version=(2, 0))
save("x_u1.npy", np.arange(24, dtype=np.uint8).reshape(4, 6))
save("x_1d.npy", np.array([1.5, -2.0, 3.25, 0.0], dtype=np.float32))
save("y_i8.npy", np.array([2, 0, 1, 2], dtype=np.int64))
save("y_u1_column.npy", np.array([[1], [1], [0], [3]], dtype=np.uint8))
save("y_f4_integral.npy", np.array([0.0, 1.0, 1.0, 0.0], dtype=np.float32))
save("y_bool.npy", np.array([True, False, False, True]))
save("y_reg.npy", np.array([[0.5, -1.0], [1.5, 2.0], [2.5, -3.0], [3.5, 4.0]], dtype=np.float32))
save("y_negative.npy", np.array([0, -1, 1, 2], dtype=np.int32))
save("y_fraction.npy", np.array([0.0, 1.5, 1.0, 0.0], dtype=np.float64))
save("y_three.npy", np.array([0, 1, 2], dtype=np.int32))
save("x_nan.npy", np.array([[1.0, np.nan], [0.0, 1.0]], dtype=np.float32))
save("strings.npy", np.array(["ab", "cd"]))
save("structured.npy", np.zeros(2, dtype=[("a", "<f4"), ("b", "<i4")]))
with open(os.path.join(out, "x_f4_c.npy"), "rb") as f, \
        gzip.GzipFile(os.path.join(out, "x_f4_c.npy.gz"), "wb", mtime=0) as g:
    g.write(f.read())
