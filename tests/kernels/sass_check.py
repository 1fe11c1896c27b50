#!/usr/bin/env python3
"""The memory-bound kernels' machine code, checked without a GPU.

    python3 tests/kernels/sass_check.py build/lib/libcutrain.so [CUDA_BIN_DIR]

cuobjdump + nvdisasm disassemble libcutrain's SASS for every architecture it carries (sm_80,
sm_90). For each element-wise kernel the check asserts what its bandwidth depends on:
  - 16-byte global loads and stores (LDG.E.128 / STG.E.128) for each array it streams - the
    vector path of kernels/common/vec.cuh; llm.c measured 1.55 -> 3.4 TB/s from this alone;
  - no local memory (LDL / STL) in ANY kernel: a spill or a runtime-indexed array would put a
    round trip to DRAM into every iteration.
A kernel that went scalar (a lost alignment path, an unvectorized rewrite) fails here, on the
CPU machine, long before a GPU run shows the bandwidth drop. Exit 77 (skipped) when the tools
are missing: `pip install nvidia-cuda-cuobjdump nvidia-cuda-nvdisasm` (scripts/install_deps.sh
does).
"""
import glob
import os
import re
import shutil
import subprocess
import sys
import sysconfig

# kernel name (demangled, substring) -> (128-bit loads, 128-bit stores) at least: one per
# array the vector loop streams.
EXPECTED = {
    "optimizer_step_kernel<cutrain::rules::Adam>": (5, 4),      # p g m v vmax / p m v vmax
    "optimizer_step_kernel<cutrain::rules::Rmsprop>": (5, 4),   # p g sq buf avg / p sq buf avg
    "optimizer_step_kernel<cutrain::rules::Adagrad>": (3, 2),   # p g sum / p sum
    "optimizer_step_kernel<cutrain::rules::Sgd>": (3, 2),       # p g buf / p buf
    # Note [clip and step in one launch]: the same arrays, R vectors per thread (R = 1 here).
    "clip_step_kernel<cutrain::rules::Adam, 1>": (5, 4),
    "clip_step_kernel<cutrain::rules::Rmsprop, 1>": (5, 4),
    "clip_step_kernel<cutrain::rules::Adagrad, 1>": (3, 2),
    "clip_step_kernel<cutrain::rules::Sgd, 1>": (3, 2),
    "zip_kernel<cutrain::kernels::(anonymous namespace)::AxpyOp>": (2, 1),
    "zip_kernel<cutrain::kernels::(anonymous namespace)::LerpOp>": (2, 1),
    "map_kernel<cutrain::kernels::(anonymous namespace)::ScaleOp>": (1, 1),
    "map_kernel<cutrain::kernels::(anonymous namespace)::AffineOp>": (1, 1),
    "map_kernel<cutrain::kernels::(anonymous namespace)::ClipValueOp>": (1, 1),
    "map_kernel<cutrain::kernels::(anonymous namespace)::FillOp>": (0, 1),
    "norm_kernel": (1, 0),
    "activation_forward_kernel": (1, 1),
    "activation_backward_kernel": (3, 1),
    "add_bias_kernel": (2, 1),
    "dropout_forward_kernel": (1, 2),    # x / mask y (the uniforms are computed, not read)
    "binary_kernel<cutrain::kernels::(anonymous namespace)::MultiplyOp>": (2, 1),
    "binary_kernel<cutrain::kernels::(anonymous namespace)::AddOp>": (2, 1),  # a residual's sum
    "gather_rows_kernel<uint4>": (1, 1),
}


def find_tool(name, cuda_bin):
    dirs = [cuda_bin] if cuda_bin else []
    dirs += os.environ.get("PATH", "").split(os.pathsep) + ["/usr/local/cuda/bin"]
    patterns = [os.path.join(sysconfig.get_paths()["purelib"], "nvidia", "cu*", "bin"),
                os.path.expanduser("~/.local/lib/python3*/site-packages/nvidia/cu*/bin"),
                os.path.expanduser("~/.pyenv/versions/*/lib/python3*/site-packages/nvidia/cu*/bin"),
                "/usr/local/lib/python3*/dist-packages/nvidia/cu*/bin"]
    for pattern in patterns:
        dirs += sorted(glob.glob(pattern), reverse=True)
    for d in dirs:
        path = os.path.join(d, name)
        if d and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return shutil.which(name)


def kernels(sass):
    """{(arch, mangled name): body} from cuobjdump -sass output."""
    out, arch = {}, "?"
    chunks = re.split(r"^\s*(arch = sm_\d+|Function : \S+)\s*$", sass, flags=re.M)
    name = None
    for chunk in chunks:
        if chunk.startswith("arch = "):
            arch = chunk.split("= ")[1]
        elif chunk.startswith("Function : "):
            name = chunk.split(": ")[1]
        elif name is not None:
            out[(arch, name)] = out.get((arch, name), "") + chunk
            name = None
    return out


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    library, cuda_bin = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "")
    cuobjdump, nvdisasm = find_tool("cuobjdump", cuda_bin), find_tool("nvdisasm", cuda_bin)
    if not cuobjdump or not nvdisasm:
        print("skipped: cuobjdump and nvdisasm not found "
              "(pip install nvidia-cuda-cuobjdump nvidia-cuda-nvdisasm)")
        return 77
    env = dict(os.environ, PATH=os.path.dirname(nvdisasm) + os.pathsep + os.environ["PATH"])
    sass = subprocess.run([cuobjdump, "-sass", library], env=env, check=True,
                          capture_output=True, text=True).stdout
    found = kernels(sass)
    mangled = sorted({name for _, name in found})
    demangled = dict(zip(mangled, subprocess.run(["c++filt"], input="\n".join(mangled),
                                                  capture_output=True, text=True,
                                                  check=True).stdout.splitlines()))
    archs = sorted({arch for arch, _ in found})
    failures, checked = [], 0
    for (arch, name), body in sorted(found.items()):
        pretty = demangled.get(name, name)
        local = re.findall(r"\b(LDL|STL)\b", body)
        if local:
            failures.append(f"{arch} {pretty}: {len(local)} local-memory accesses (LDL/STL)")
        for key, (loads, stores) in EXPECTED.items():
            if key not in pretty:
                continue
            checked += 1
            got_loads = len(re.findall(r"\bLDG\.E\.128\b", body))
            got_stores = len(re.findall(r"\bSTG\.E\.128\b", body))
            line = (f"{arch} {key}: {got_loads} LDG.E.128 (>= {loads}), "
                    f"{got_stores} STG.E.128 (>= {stores})")
            print(line)
            if got_loads < loads or got_stores < stores:
                failures.append(line)
    missing = [k for k in EXPECTED if not any(k in demangled.get(n, n) for _, n in found)]
    if missing:
        failures.append(f"kernels not found in {library}: {missing}")
    print(f"{len(found)} kernel images over {archs}, {checked} vector checks")
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        return 1
    print("sass check: every streamed array moves in 16-byte vectors, no local memory")
    return 0


if __name__ == "__main__":
    sys.exit(main())
