#!/usr/bin/python3
"""Moving a run between cutrain and PyTorch: the model (build_model rebuilds the
torch.nn.Sequential an export or checkpoint describes, Note [architecture in exports]) and the
optimizer state (Note [torch optimizer state] in include/cutrain/train/checkpoint.hpp). Weights
travel as torch.nn.Sequential state dicts (cutrain-train --export-torch / --init-from); this file
does the same for torch.optim.

    import cutrain_torch
    # cutrain -> PyTorch: cutrain-train ... --export-torch w.safetensors --export-torch-optimizer o.safetensors
    model = cutrain_torch.build_model("w.safetensors")  # modules and weights, from the file
    x = cutrain_torch.prepare(rows, "w.safetensors")     # raw CSV cells -> the model's input
    cutrain_torch.load_optimizer_state(optimizer, model, "o.safetensors")
    # PyTorch -> cutrain: then cutrain-train ... --init-from w.safetensors --init-optimizer-from o.safetensors
    cutrain_torch.save_model(model, "w.safetensors")  # or --model-from w.safetensors: no flags
    cutrain_torch.save_optimizer_state(optimizer, model, "o.safetensors")

Residual blocks are cutrain_torch.Residual(*modules): x + body(x), cutrain's nn::Residual (torch
has no such class); Residual(*modules, shortcut=[...]) is shortcut(x) + body(x), a projection
shortcut (torchvision's BasicBlock with its downsample). The optimizer's hyperparameters are not in the file: configure both sides
alike. Needs numpy and torch only (the files are safetensors, read and written here with numpy).
"""
import json
import os
import stat
import struct
import tempfile
import zlib

import numpy as np
import torch

FORMAT = "cutrain-torch-optimizer-1"
# torch.optim classes whose per-parameter state has a 'step' (SGD keeps none).
_STEPPED = ("Adagrad", "RMSprop", "Adam", "AdamW")


_DTYPES = {"F32": ("<f4", 4), "F16": ("<f2", 2), "BF16": ("<i2", 2), "I64": ("<i8", 8)}
_DATA_CRC_KEY = "cutrain.data_crc32"  # Note [data checksum] (src/io/safetensors.cpp)
_MAX_HEADER = 100 << 20  # cutrain's own limit on a header's length


def read_tensors(path, with_metadata=False, integers=False):
    """The float tensors of a safetensors file - F32, and BF16 / F16 (a 16-bit export,
    --export-dtype bf16) as torch.bfloat16 / float16 tensors - as {name: torch.Tensor} (and its
    metadata); with integers=True the I64 ones too (BatchNorm's num_batches_tracked).

    Checked as cutrain checks it before anything is used: a file that is not safetensors, a
    tensor whose bytes are not where its header says or not as many as its shape needs, and data
    that does not match the checksum cutrain writes (a damaged copy) raise ValueError naming the
    file."""
    with open(path, "rb") as f:
        raw = f.read()

    def bad(why):
        return ValueError(f"{path}: {why}")

    if len(raw) < 8:
        raise bad(f"not a safetensors file: {len(raw)} bytes, shorter than its 8-byte header length")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > min(len(raw) - 8, _MAX_HEADER):
        start = raw[:16].decode("ascii", "replace")
        raise bad(f"not a safetensors file, or a damaged one: a header of {n} bytes in a file of "
                  f"{len(raw)} (it begins {start!r})")
    try:
        header = json.loads(raw[8:8 + n])
    except (ValueError, UnicodeDecodeError):
        raise bad("not a safetensors file: its header is not JSON") from None
    if not isinstance(header, dict):
        raise bad("not a safetensors file: its header is not a JSON object")
    meta = header.pop("__metadata__", {})
    if not isinstance(meta, dict):
        raise bad("__metadata__ is not a JSON object")
    data = raw[8 + n:]
    out = {}
    for name, info in header.items():
        try:
            kind, shape, (b, e) = info["dtype"], info["shape"], info["data_offsets"]
            ok = (all(isinstance(v, int) and v >= 0 for v in [*shape, b, e]) and
                  isinstance(kind, str))
        except (TypeError, KeyError, ValueError):
            ok = False
        if not ok:
            raise bad(f"tensor {name!r}: not a tensor entry (dtype, shape, data_offsets): {info!r}")
        if not b <= e <= len(data):
            raise bad(f"tensor {name!r}: data_offsets [{b}, {e}] lie outside the {len(data)} "
                      "bytes of data (a truncated file?)")
        if kind not in _DTYPES:
            continue
        dtype, size = _DTYPES[kind]
        if e - b != size * int(np.prod(shape, dtype=np.int64)):
            raise bad(f"tensor {name!r}: {e - b} bytes for shape {shape} of {kind}")
        if kind == "I64" and not integers:
            continue
        t = torch.from_numpy(np.frombuffer(data[b:e], dtype=dtype).reshape(shape).copy())
        out[name] = t.view(torch.bfloat16) if kind == "BF16" else t  # numpy has no bfloat16
    stored = meta.get(_DATA_CRC_KEY)
    if stored is not None:
        got = f"{zlib.crc32(data) & 0xFFFFFFFF:08x}"
        if got != str(stored).lower():
            raise bad(f"the tensor data does not match its checksum (CRC-32 {got}, the header says "
                      f"{stored}): the file was damaged after it was written; use an intact copy")
    return (out, meta) if with_metadata else out


def build_model(path):
    """The torch.nn.Sequential a file cutrain wrote describes (export_torch, cutrain-train
    --export-torch, or a checkpoint: its "cutrain.modules" metadata, Note [architecture in
    exports]), with the file's weights and BatchNorm statistics loaded, in eval mode."""
    tensors, meta = read_tensors(path, with_metadata=True, integers=True)
    if "cutrain.modules" not in meta:
        raise ValueError(f"{path}: no 'cutrain.modules' metadata (written by an older cutrain?)")
    modules = json.loads(meta["cutrain.modules"])
    model = torch.nn.Sequential(*map(_build_module, modules))
    # Checkpoints name the model's tensors "layers.<i>...." beside best.*, ema.*, optim.*, trainer.*
    state = {k[len("layers."):] if k.startswith("layers.") else k: v for k, v in tensors.items()
             if not k.startswith(("best.", "ema.", "optim.", "trainer."))}
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if missing or result.unexpected_keys:
        raise ValueError(f"{path}: tensors do not match the modules (missing {missing}, "
                         f"unexpected {result.unexpected_keys})")
    return model.eval()


class Residual(torch.nn.Module):
    """x + body(x), cutrain's nn::Residual (torch has no such class): the identity shortcut of a
    ResNet block around modules that keep the shape; with `shortcut` modules, shortcut(x) +
    body(x), a projection shortcut (torchvision BasicBlock's downsample: Conv2d 1x1 with the
    body's stride + BatchNorm2d). Its modules are `body` and `shortcut`, torch.nn.Sequentials, so
    its state dict names match cutrain's ("body.0.weight", "shortcut.0.weight", ...)."""

    def __init__(self, *modules, shortcut=None):
        super().__init__()
        self.body = torch.nn.Sequential(*modules)
        self.shortcut = torch.nn.Sequential(*shortcut) if shortcut else None

    def forward(self, x):
        return (x if self.shortcut is None else self.shortcut(x)) + self.body(x)


def _build_module(m):
    """One entry of "cutrain.modules" as a torch module (a Residual builds its branches)."""
    if m["type"] == "Residual":
        shortcut = m["args"].get("shortcut")
        return Residual(*map(_build_module, m["args"]["body"]),
                        shortcut=list(map(_build_module, shortcut)) if shortcut else None)
    return getattr(torch.nn, m["type"])(**m["args"])


# What cutrain's CSV reader takes for a missing numeric value (src/data/csv_reader.cpp).
_MISSING = {"", "NA", "N/A", "n/a", "NaN", "nan", "-nan", "-NaN", "null", "NULL", "?"}


def prepare(rows, path, columns=None):
    """Raw feature rows - lists of CSV cells as strings, the label column left out and no header
    row, as cutrain-train --predict-csv takes them - prepared as the run that wrote `path`
    prepared its training data (its "cutrain.data" metadata, Note [data spec in exports]): the
    one-hot columns with the training file's categories, missing values filled with its
    statistics, then the scale and the standardization, all in float32 as cutrain computes them.
    Returns a float32 tensor [rows, features] for build_model(path). Raises ValueError naming
    the row and column for a category the training file did not have, a missing value the run
    did not impute, or a cell that is not a number. `columns` (e.g. a DataFrame's names) must be
    the training file's feature columns in their order when the export records them (Note
    [feature columns by name]): the model reads features by position. Named, the columns the run
    left out (cutrain-train --drop-columns, and the --id-column) are dropped from the rows first,
    as cutrain-train --predict-csv drops them."""
    _, meta = read_tensors(path, with_metadata=True)
    spec = json.loads(meta.get("cutrain.data", '{"scale": 1, "regression": false}'))
    dropped = set(spec.get("drop_columns", []))
    if spec.get("id_column"):  # Note [id column]: the rows' ids are no feature either
        dropped.add(spec["id_column"])
    if columns is not None and dropped:
        keep = [k for k, c in enumerate(columns) if c not in dropped]
        rows = [[row[k] for k in keep] for row in rows]
        columns = [columns[k] for k in keep]
    trained = spec.get("feature_columns")
    if columns is not None and trained and list(columns) != trained:
        raise ValueError(f"columns {list(columns)} are not the training file's feature columns "
                         f"{trained}, in that order: the model reads features by position")
    one_hot = {c["column"]: c for c in spec.get("categorical", [])}
    out = []
    for r, row in enumerate(rows):
        x = []
        for k, raw in enumerate(row):
            cell = raw.strip(" \t\r")
            if k in one_hot:
                categories = one_hot[k]["categories"]
                if cell not in categories:
                    raise ValueError(f"row {r + 1}, column {k + 1} ('{one_hot[k]['name']}'): "
                                     f"category '{cell}' is not one of {categories}")
                x.extend(1.0 if c == cell else 0.0 for c in categories)
            elif cell in _MISSING:
                if "impute" not in spec:
                    raise ValueError(f"row {r + 1}, column {k + 1}: missing value '{cell}' and "
                                     f"the run imputed none")
                x.append(float("nan"))
            else:
                try:
                    x.append(float(cell))
                except ValueError:
                    raise ValueError(f"row {r + 1}, column {k + 1}: '{cell}' is not a number")
        out.append(x)
    x = np.array(out, dtype=np.float32).reshape(len(out), -1)
    if "impute" in spec:
        fill = np.array(spec["impute"], dtype=np.float32)
        x = np.where(np.isnan(x), fill, x).astype(np.float32)
    if spec["scale"] != 1:
        x *= np.float32(spec["scale"])
    if "standardize" in spec:
        mean = np.array(spec["standardize"]["mean"], dtype=np.float32)
        std = np.array(spec["standardize"]["std"], dtype=np.float32)
        x = np.where(std > 0, (x - mean) / np.where(std > 0, std, 1), x - mean).astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(x))


# The torch.nn modules cutrain has, and the arguments that describe each (load_model reads them).
_MODULE_ARGS = {
    torch.nn.Linear: lambda m: {"in_features": m.in_features, "out_features": m.out_features,
                                "bias": m.bias is not None},
    torch.nn.BatchNorm1d: lambda m: {"num_features": m.num_features, "eps": m.eps,
                                     "momentum": m.momentum, "affine": m.affine,
                                     "track_running_stats": m.track_running_stats},
    torch.nn.ReLU: lambda m: {},
    torch.nn.LeakyReLU: lambda m: {"negative_slope": m.negative_slope},
    torch.nn.Tanh: lambda m: {},
    torch.nn.Sigmoid: lambda m: {},
    torch.nn.GELU: lambda m: {"approximate": getattr(m, "approximate", "none")},
    torch.nn.SiLU: lambda m: {},
    torch.nn.ReLU6: lambda m: {},
    torch.nn.Hardswish: lambda m: {},
    torch.nn.ELU: lambda m: {"alpha": m.alpha},
    torch.nn.Dropout: lambda m: {"p": m.p},
    torch.nn.Conv2d: lambda m: {"in_channels": m.in_channels, "out_channels": m.out_channels,
                                "kernel_size": list(m.kernel_size), "stride": list(m.stride),
                                "padding": list(m.padding), "dilation": list(m.dilation),
                                "groups": m.groups, "bias": m.bias is not None,
                                "padding_mode": m.padding_mode},
    torch.nn.MaxPool2d: lambda m: {"kernel_size": _pair(m.kernel_size), "stride": _pair(m.stride),
                                   "padding": _pair(m.padding), "dilation": _pair(m.dilation),
                                   "ceil_mode": m.ceil_mode, "return_indices": m.return_indices},
    torch.nn.AvgPool2d: lambda m: {"kernel_size": _pair(m.kernel_size), "stride": _pair(m.stride),
                                   "padding": _pair(m.padding), "ceil_mode": m.ceil_mode,
                                   "count_include_pad": m.count_include_pad,
                                   "divisor_override": m.divisor_override},
    torch.nn.AdaptiveAvgPool2d: lambda m: {"output_size": _pair(m.output_size)},
    torch.nn.BatchNorm2d: lambda m: {"num_features": m.num_features, "eps": m.eps,
                                     "momentum": m.momentum, "affine": m.affine,
                                     "track_running_stats": m.track_running_stats},
    torch.nn.Flatten: lambda m: {"start_dim": m.start_dim, "end_dim": m.end_dim},
    torch.nn.Unflatten: lambda m: {"dim": m.dim, "unflattened_size": list(m.unflattened_size)},
}


def _pair(v):
    """torch's int-or-tuple size arguments as [h, w] (None stays None: a pool's stride)"""
    if v is None:
        return None
    return list(v) if isinstance(v, (tuple, list)) else [v, v]


def save_model(model, path):
    """Writes a torch.nn.Sequential - its state dict and its modules as "cutrain.modules"
    metadata - for cutrain to rebuild (train::load_model, cutrain-train --model-from). Raises
    ValueError for a module cutrain does not have or a setting it does not support (BatchNorm
    with momentum=None or without running statistics, GELU's tanh approximation)."""
    if not isinstance(model, torch.nn.Sequential):
        raise TypeError("save_model: a torch.nn.Sequential is needed")
    modules = [_describe(m, str(i)) for i, m in enumerate(model)]
    save_tensors(path, model.state_dict(), {"format": "pt", "cutrain.modules": json.dumps(modules)})


def _describe(m, where):
    """A module as an entry of "cutrain.modules" (`where`: its position, "3" or "3.body.1")."""
    if isinstance(m, Residual):
        args = {"body": [_describe(b, f"{where}.body.{j}") for j, b in enumerate(m.body)]}
        if m.shortcut is not None:
            args["shortcut"] = [_describe(b, f"{where}.shortcut.{j}")
                                for j, b in enumerate(m.shortcut)]
        return {"type": "Residual", "args": args}
    describe = _MODULE_ARGS.get(type(m))
    if isinstance(m, torch.nn.SyncBatchNorm):  # Note [synchronized batch statistics]
        raise ValueError(f"module {where}: torch.nn.SyncBatchNorm: save the model before "
                         "convert_sync_batchnorm (its BatchNorm1d / BatchNorm2d layers); cutrain "
                         "synchronizes BatchNorm over the ranks itself (cutrain-train "
                         "--sync-batchnorm under mpirun)")
    if describe is None:
        raise ValueError(f"module {where}: torch.nn.{type(m).__name__} is not a cutrain layer "
                         f"(cutrain has {', '.join(t.__name__ for t in _MODULE_ARGS)}, "
                         "and cutrain_torch.Residual)")
    args = describe(m)
    if (isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)) and
            (m.momentum is None or not m.track_running_stats)):
        raise ValueError(f"module {where}: {type(m).__name__} needs running statistics and a "
                         "momentum")
    if isinstance(m, torch.nn.GELU) and args["approximate"] != "none":
        raise ValueError(f"module {where}: cutrain's GELU is the exact (erf) one")
    return {"type": type(m).__name__, "args": args}


def save_tensors(path, tensors, metadata=None):
    """{name: tensor} as F32 safetensors (non-float entries such as num_batches_tracked are
    skipped)."""
    header, offset, blobs = {}, 0, []
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    for name, t in tensors.items():
        if not torch.is_floating_point(t):
            continue
        b = np.ascontiguousarray(t.detach().cpu().numpy(), dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    data = b"".join(blobs)
    # Note [data checksum]: cutrain checks the data against it before loading anything.
    header.setdefault("__metadata__", {})[_DATA_CRC_KEY] = f"{zlib.crc32(data) & 0xFFFFFFFF:08x}"
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    write_whole(path, struct.pack("<Q", len(text)) + text + data)


def write_whole(path, data):
    """`data` to `path` as cutrain writes its files (Note [outputs written whole], Note [writing
    over links and devices]): a temporary file beside the target, synced and renamed over it, so
    a failure leaves the previous file; a link is followed (the link stays), a device or pipe
    is written in place."""
    target = os.path.realpath(path)
    if os.path.exists(target) and not stat.S_ISREG(os.stat(target).st_mode):
        with open(target, "wb") as f:
            f.write(data)
        return
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(target) or ".",
                               prefix="." + os.path.basename(target) + ".tmp.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _index(optimizer):
    params = [p for g in optimizer.param_groups for p in g["params"]]
    return {id(p): i for i, p in enumerate(params)}


def load_optimizer_state(optimizer, model, path):
    """Loads a file written by cutrain (export_torch_optimizer) into `optimizer`, whose
    parameters are `model`'s (a torch.nn.Sequential numbered as cutrain's layers)."""
    tensors, meta = read_tensors(path, with_metadata=True)
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: format {meta.get('format')!r} is not {FORMAT}")
    kind = type(optimizer).__name__
    if meta.get("optimizer") != kind:
        raise ValueError(f"{path}: state of cutrain's {meta.get('optimizer')}, not {kind}")
    step = int(meta["step"])
    index = _index(optimizer)
    state = {}
    used = 0
    if step > 0:
        for name, p in model.named_parameters():
            entries = {key[len(name) + 1:]: value for key, value in tensors.items()
                       if key.startswith(name + ".") and "." not in key[len(name) + 1:]}
            if not entries:
                if kind == "SGD":  # without momentum torch.optim.SGD keeps no tensors
                    continue
                raise ValueError(f"{path}: no state for parameter {name}")
            used += len(entries)
            if kind in _STEPPED:
                entries["step"] = torch.tensor(float(step))
            state[index[id(p)]] = entries
    if used != len(tensors):
        raise ValueError(f"{path}: {len(tensors) - used} tensor(s) match no parameter of the model")
    sd = optimizer.state_dict()
    optimizer.load_state_dict({"state": state, "param_groups": sd["param_groups"]})


def save_optimizer_state(optimizer, model, path):
    """Writes `optimizer`'s state for cutrain (cutrain-train --init-optimizer-from)."""
    kind = type(optimizer).__name__
    index = _index(optimizer)
    tensors, steps = {}, set()
    for name, p in model.named_parameters():
        st = optimizer.state.get(p, {})
        for key, value in st.items():
            if key == "step":
                steps.add(int(float(value)))
            elif torch.is_tensor(value):
                tensors[f"{name}.{key}"] = value
        if not st and index.get(id(p)) is None:
            raise ValueError(f"parameter {name} is not in the optimizer")
    if len(steps) > 1:
        raise ValueError(f"parameters took different numbers of steps {sorted(steps)}: cutrain "
                         "keeps one count for the whole model")
    # SGD keeps no count: its momentum buffers exist from the first step on, which is all
    # cutrain needs to know (the first step seeds the buffer with the gradient).
    step = steps.pop() if steps else (1 if tensors else 0)
    save_tensors(path, tensors, {"format": FORMAT, "optimizer": kind, "step": step})
