#!/usr/bin/env python3
"""Plots a cutrain metrics file (CSV or JSON Lines, from `cutrain-train --metrics`) as a PNG:
training and validation loss, and validation accuracy, per epoch.

    python3 tools/plot_metrics.py metrics.csv out.png [--title TEXT] [--test-accuracy A]

Bad input is one line on stderr, as cutrain-train says it (docs/errors.md): exit 2 for the
arguments (an output that is the metrics file itself, a format matplotlib cannot write), 1 for
the file's content (a missing column, a value that is not a number, no epochs). The image is
written whole (Note [outputs written whole]): a temporary file beside it, renamed over it.
"""
import argparse
import csv
import json
import math
import os
import sys
import tempfile

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.backend_bases import FigureCanvasBase  # noqa: E402

COLUMNS = ("epoch", "lr", "train_loss", "val_loss", "val_accuracy")


class Refused(Exception):
    """A bad input: its message and exit status."""

    def __init__(self, message, status):
        super().__init__(message)
        self.status = status


def number(path, where, key, value):
    """A metrics value as a float: null / empty / "nan" are NaN, anything else must parse."""
    if value is None or value == "":
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise Refused(f"'{path}' {where}: {key} is {value!r}, not a number", 1)
    try:
        return float(value)
    except ValueError:
        raise Refused(f"'{path}' {where}: {key} is {value!r}, not a number", 1) from None


def load(path):
    try:
        with open(path, newline="") as f:
            text = f.read()
    except OSError as e:
        raise Refused(f"cannot read the metrics file '{path}': {e.strerror}", 2) from None
    except UnicodeDecodeError:
        raise Refused(f"'{path}' is not a text file (a cutrain-train --metrics file?)", 1) from None
    if path.endswith(".csv"):
        reader = csv.DictReader(text.splitlines())
        raw = [(f"line {reader.line_num}", row) for row in reader]
        header = reader.fieldnames or []
    else:
        raw = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                raise Refused(f"'{path}' line {n}: not a JSON object (a .jsonl metrics file?)", 1) from None
            if not isinstance(row, dict):
                raise Refused(f"'{path}' line {n}: not a JSON object (a .jsonl metrics file?)", 1)
            raw.append((f"line {n}", row))
        header = list(raw[0][1]) if raw else []
    missing = [c for c in COLUMNS if c not in header]
    if raw and missing:
        raise Refused(f"'{path}' has no column {', '.join(missing)} (a cutrain-train --metrics file?)", 1)
    if not raw:
        raise Refused(f"'{path}' holds no epochs: nothing to plot", 1)
    return [{k: number(path, where, k, row.get(k)) for k in COLUMNS} for where, row in raw]


def same_file(a, b):
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def image_format(png):
    """The image format png's extension names, or Refused when matplotlib cannot write it."""
    ext = os.path.splitext(png)[1][1:].lower()
    formats = FigureCanvasBase.get_supported_filetypes()
    if ext not in formats:
        raise Refused(f"'{png}': the extension names the image format, one of "
                      f"{', '.join(sorted(formats))}; not '{ext or '(none)'}'", 2)
    return ext


def save_whole(fig, png, ext):
    """fig into png (format ext) via a temporary file in png's directory, renamed over it."""
    directory = os.path.dirname(os.path.realpath(png)) or "."
    try:
        fd, tmp = tempfile.mkstemp(prefix=".plot-", suffix="." + ext, dir=directory)
    except OSError as e:
        raise Refused(f"cannot write '{png}': {e.strerror}", 2) from None
    umask = os.umask(0)  # mkstemp's 0600 would outlive the rename: the mode a new file gets
    os.umask(umask)
    try:
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, format=ext, dpi=110)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, os.path.realpath(png))
    except OSError as e:
        os.unlink(tmp)
        raise Refused(f"cannot write '{png}': {e.strerror}", 1) from None
    except BaseException:
        os.unlink(tmp)
        raise


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("metrics")
    ap.add_argument("png")
    ap.add_argument("--title", default="cutrain on Fashion-MNIST")
    ap.add_argument("--test-accuracy", type=float)
    a = ap.parse_args()
    if same_file(a.metrics, a.png):
        raise Refused(f"'{a.png}' is the metrics file: writing the plot there would destroy it", 2)
    ext = image_format(a.png)
    rows = load(a.metrics)
    epochs = [r["epoch"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(epochs, [r["train_loss"] for r in rows], label="train loss")
    if any(not math.isnan(r["val_loss"]) for r in rows):
        left.plot(epochs, [r["val_loss"] for r in rows], label="validation loss")
    left.set_xlabel("epoch")
    left.set_ylabel("cross-entropy")
    left.legend()
    left.grid(alpha=0.3)
    right.plot(epochs, [r["lr"] for r in rows], color="tab:gray", label="learning rate")
    right.set_xlabel("epoch")
    right.set_ylabel("learning rate")
    if any(not math.isnan(r["val_accuracy"]) for r in rows):
        acc = right.twinx()
        acc.plot(epochs, [r["val_accuracy"] for r in rows], color="tab:green", label="val accuracy")
        acc.set_ylabel("validation accuracy")
    right.grid(alpha=0.3)
    title = a.title
    if a.test_accuracy is not None:
        title += f" - test accuracy {100 * a.test_accuracy:.2f}%"
    fig.suptitle(title)
    fig.tight_layout()
    save_whole(fig, a.png, ext)


if __name__ == "__main__":
    try:
        main()
    except Refused as e:
        print(f"plot_metrics.py: error: {e}", file=sys.stderr)
        sys.exit(e.status)
