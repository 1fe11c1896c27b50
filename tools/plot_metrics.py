#!/usr/bin/env python3
"""Plots a cutrain metrics file (CSV or JSON Lines, from `cutrain-train --metrics`) as a PNG:
training and validation loss, and validation accuracy, per epoch.

    python3 tools/plot_metrics.py metrics.csv out.png [--title TEXT] [--test-accuracy A]
"""
import argparse
import csv
import json
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(path):
    if path.endswith(".csv"):
        with open(path) as f:
            return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [{k: (math.nan if v is None else float(v)) for k, v in r.items()} for r in rows]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("metrics")
    ap.add_argument("png")
    ap.add_argument("--title", default="cutrain on Fashion-MNIST")
    ap.add_argument("--test-accuracy", type=float)
    a = ap.parse_args()
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
    fig.savefig(a.png, dpi=110)


if __name__ == "__main__":
    main()
