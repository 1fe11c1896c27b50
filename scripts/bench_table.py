#!/usr/bin/env python3
"""Benchmark JSON (bench_* --json and bench/torch/*.py --json lines; cutrain-train --report files)
into the markdown tables of bench/RESULTS.md, the issue-9 targets, and optionally one JSON file.

    bench_table.py [--json-out summary.json] [--report label=report.json ...]
                   [--summary "machine, date, commit"] results.jsonl ...

--summary prints only RESULTS.md's first-screen table for one machine: each measure with
cutrain's figure, its peer's measured in the same run, the ratio, and the roofline where one
applies. A report labelled cnn... is the CNN's (`cutrain-train --model cnn`).
"""
import argparse
import json
import os


def read_rows(paths):
    rows = []
    for path in paths:
        if not os.path.exists(path):  # an unmatched shell glob
            continue
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError:
                        pass
    return rows


def table(header, lines):
    if not lines:
        return
    print("\n| " + " | ".join(h.lstrip(">") for h in header) + " |")
    print("|" + "|".join("---:" if h.startswith(">") else "---" for h in header) + "|")
    for line in lines:
        print("| " + " | ".join(str(c) for c in line) + " |")


def pct(x):
    return f"{100 * x:.1f}%"


def fmt_s(v):
    if v >= 1:
        return f"{v:.2f} s"
    return f"{v * 1e3:.2f} ms" if v >= 1e-3 else f"{v * 1e6:.1f} us"


def summary(rows, machine):
    """The first-screen table: one row per measure, cutrain beside its same-run peer."""
    out = []

    def add(measure, ours, peer, ratio, roof="-"):
        out.append([measure, ours, peer, ratio, roof])

    # Whole runs: cutrain-train reports against mlp_gpu.py (eager, then CUDA graphs).
    for model in ("mlp", "cnn"):
        ours = [r for r in rows if r.get("bench") == "cutrain_mlp_epoch"
                and r.get("model", "mlp") == model and r.get("label", "").split("-")[0] in
                ("default", "cnn")]
        for r in ours[:1]:
            for mode in ("eager", "graphs"):
                peer = next((t for t in rows if t.get("bench") == f"torch_{model}_epoch_{mode}"
                             and not t.get("clip_norm")), None)
                if not peer:
                    continue
                name = {"mlp": "MLP 784-512-256-10", "cnn": "default CNN"}[model]
                images = round(r["seconds_per_epoch"] * r["samples_per_second"], -3)
                add(f"{name}, Fashion-MNIST: an epoch of {images:,.0f} images (test accuracy)",
                    f"{fmt_s(r['seconds_per_epoch'])} ({100 * r['test_accuracy']:.2f}%)",
                    f"PyTorch {peer['torch']} {mode}: {fmt_s(peer['seconds_per_epoch'])} "
                    f"({100 * peer['test_accuracy']:.2f}%)",
                    f"{peer['seconds_per_epoch'] / r['seconds_per_epoch']:.2f}x")
                if r.get("time_to_target_s") and peer.get("time_to_target_s"):
                    add(f"{name}: training time to {100 * peer['target_accuracy']:.0f}% test accuracy",
                        f"{r['time_to_target_s']:.2f} s", f"{peer['time_to_target_s']:.2f} s",
                        f"{peer['time_to_target_s'] / r['time_to_target_s']:.2f}x")
    # The headline runs (a label "headline..."): the default CNN in bf16, one graph a step, the
    # training set resident (and augmented, for 94%), against PyTorch's CNN with its step in a
    # CUDA graph - under bf16 autocast where that ran, else fp32 -, which aims at 93%.
    for r in rows:
        if r.get("bench") != "cutrain_mlp_epoch" or not r.get("label", "").startswith("headline"):
            continue
        peer = next((t for t in rows if t.get("bench") == "torch_cnn_epoch_graphs_bf16"), None) or \
            next((t for t in rows if t.get("bench") == "torch_cnn_epoch_graphs"), None)
        reached = r.get("time_to_target_s")
        add(f"CNN, bf16, one graph a step, resident data ({r['label']}): time to "
            f"{100 * r.get('target_accuracy', 0):.0f}% test accuracy (best {100 * r['test_accuracy']:.2f}%)",
            f"{reached:.2f} s" if reached else "not reached",
            f"PyTorch graphs, {peer.get('precision', 'fp32') if peer else ''}, to "
            f"{100 * peer['target_accuracy']:.0f}%: "
            f"{peer['time_to_target_s']:.2f} s" if peer and peer.get("time_to_target_s") else "-",
            f"{peer['time_to_target_s'] / reached:.2f}x"
            if reached and peer and peer.get("time_to_target_s") else "-")
    # The optimizer step: the largest flat Adam both measured, and the model-shaped clip sets.
    optim = [r for r in rows if r.get("bench") == "optim" and r.get("launch", "stream") == "stream"]
    torch_optim = [r for r in rows if r.get("bench") in ("torch_optim", "torch_optim_cpu")]

    def peer_of(r):
        same = [t for t in torch_optim if t["n"] == r["n"] and t.get("model") == r.get("model")
                and ("+clip" in r["optimizer"]) == ("clip" in t.get("variant", t["optimizer"]))]
        return min(same, key=lambda t: t["seconds_per_step"], default=None)

    def variant(t):
        return t.get("variant") or ("foreach" if t.get("foreach") else "for-loop")

    flat = [r for r in optim if r["optimizer"] == "adam" and not r.get("model") and peer_of(r)]
    for r in sorted(flat, key=lambda r: r["n"])[-1:]:
        t = peer_of(r)
        add(f"Adam step, 2^{r['n'].bit_length() - 1} parameters",
            fmt_s(r["seconds_per_step"]), f"torch.optim.Adam {variant(t)}: {fmt_s(t['seconds_per_step'])}",
            f"{t['seconds_per_step'] / r['seconds_per_step']:.2f}x",
            f"{pct(r['fraction_of_copy'])} of copy")
    for r in [r for r in optim if r.get("model") and r["optimizer"] == "adam+clip"]:
        t = peer_of(r)
        if t:
            add(f"clip + Adam, {r['model']} ({r['n']:,} parameters, {r.get('tensors')} tensors)",
                fmt_s(r["seconds_per_step"]),
                f"clip_grad_norm_ + Adam {variant(t)}: {fmt_s(t['seconds_per_step'])}",
                f"{t['seconds_per_step'] / r['seconds_per_step']:.2f}x",
                f"{pct(r['fraction_of_copy'])} of copy")
    # Layers against their bare GEMMs, and convolutions against PyTorch's (cuDNN / oneDNN).
    linear = sorted((r for r in rows if r.get("bench") == "layers" and r.get("layer", "linear") ==
                     "linear" and (r["in"], r["out"]) == (784, 1024) and
                     r.get("precision", "fp32") == "fp32"),
                    key=lambda r: not r.get("bias_epilogue"))  # the fused path where there is one
    for r in linear[:1]:
        if True:
            add(f"Linear 784x1024 forward + backward, batch {r['batch']}",
                fmt_s(r["seconds_per_step"]), "-", "-", f"{pct(r['fraction_of_gemm'])} of its GEMMs")
    # Note [16-bit values in fp32 storage]: the 4096 x 4096 Linear in each precision, against
    # PyTorch's (autocast for bf16 / fp16) and against cutrain's fp32, same run.
    torch_linear = {(t["in"], t["out"], t["batch"], t.get("precision", "fp32")): t for t in rows
                    if t.get("bench") == "torch_layers"}
    big = {}
    for r in rows:
        if (r.get("bench") == "layers" and r.get("layer", "linear") == "linear"
                and (r["in"], r["out"]) == (4096, 4096)):
            key = (r.get("precision", "fp32"), r["batch"])
            if key not in big or r.get("bias_epilogue"):  # the fused path where there is one
                big[key] = r
    for (precision, batch), r in sorted(big.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        t = torch_linear.get((4096, 4096, batch, precision))
        fp32 = big.get(("fp32", batch))
        add(f"Linear 4096x4096 forward + backward, batch {batch} ({precision})",
            fmt_s(r["seconds_per_step"]),
            f"PyTorch {t['torch']}: {fmt_s(t['seconds_per_step'])}" if t else "-",
            f"{t['seconds_per_step'] / r['seconds_per_step']:.2f}x" if t else "-",
            f"{fp32['seconds_per_step'] / r['seconds_per_step']:.1f}x cutrain fp32"
            if fp32 and precision != "fp32" else f"{r['tflops']:.1f} TFLOP/s")
    # Layers forward + backward against their PyTorch peer in the same run, each precision against
    # its own (Note [TF32 switch]); the roofline column is the bench's own.
    def against_torch(bench, title, roofline):
        peers = {(t["shape"], t.get("precision", "fp32")): t for t in rows
                 if t.get("bench") == bench and t.get("impl") == "torch"}
        for r in rows:
            if r.get("bench") == bench and r.get("impl") == "cutrain":
                precision = r.get("precision", "fp32")
                t = peers.get((r["shape"], precision))
                tag = "" if precision == "fp32" else f" ({precision})"
                add(f"{title(r)}, batch {r['batch']}, forward + backward{tag}",
                    fmt_s(r["seconds_per_step"]),
                    f"PyTorch {t['torch']}: {fmt_s(t['seconds_per_step'])}" if t else "-",
                    f"{t['seconds_per_step'] / r['seconds_per_step']:.2f}x" if t else "-",
                    roofline(r))
    # Note [convolutions on cuDNN]: a GPU's rows say which path ran (bench_conv's "algorithm").
    def conv_path(r):
        a = r.get("algorithm", "")
        return " on cuDNN" if a.startswith("cuDNN") else " lowered" if a.startswith("lowering") else ""
    against_torch("conv", lambda r: f"Conv2d {r['shape']}{conv_path(r)}",
                  lambda r: f"{pct(r['fraction_of_gemm'])} of its GEMMs")
    # Note [channel sums in lanes]: BatchNorm2d + ReLU, memory-bound, against the copy roofline.
    against_torch("batchnorm2d", lambda r: f"BatchNorm2d + ReLU {r['shape'][len('bn+relu '):]}",
                  lambda r: f"{pct(r['fraction_of_copy'])} of copy")
    for r in rows:
        if r.get("bench") == "step" and r.get("graph_seconds_per_step"):
            tag = "" if r.get("precision", "fp32") == "fp32" else f" ({r['precision']})"
            add(f"training step, {r['model']}, batch {r['batch']}{tag}: eager vs its CUDA graph",
                fmt_s(r["seconds_per_step"]), f"graph replay: {fmt_s(r['graph_seconds_per_step'])}",
                "-", f"{pct(r['fraction_of_graph'])} of the step is device time")
    print(f"\n**{machine}**")
    table(["measure", ">cutrain", ">peer, same run", ">cutrain speed-up", ">roofline"], out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--summary", metavar="MACHINE")
    ap.add_argument("--json-out")
    ap.add_argument("--report", action="append", default=[], help="label=cutrain-train report")
    ap.add_argument("files", nargs="*")
    a = ap.parse_args()
    rows = read_rows(a.files)
    for spec in a.report:
        label, _, path = spec.partition("=")
        if os.path.exists(path):
            with open(path) as f:
                r = json.load(f)
            r["bench"] = "cutrain_mlp_epoch"
            r["label"] = label
            r["model"] = "cnn" if label.startswith(("cnn", "headline")) else "mlp"
            rows.append(r)
    if a.summary:
        summary(rows, a.summary)
        return

    optim = [r for r in rows if r.get("bench") in ("optim", "torch_optim")]
    flat = [r for r in optim if not r.get("model")]
    # launch "graph": bench_optim --graph, the step replayed from a CUDA graph (device time).
    table(["bench", "optimizer", "variant", ">n", ">us/step", ">GB/s", ">copy GB/s", ">of copy"],
          [[r["bench"], r.get("optimizer"),
            r.get("variant", "cutrain" if r.get("launch", "stream") == "stream" else "cutrain graph"),
            r["n"],
            f"{r['seconds_per_step'] * 1e6:.1f}", f"{r['gbps']:.0f}", f"{r['copy_gbps']:.0f}",
            pct(r["fraction_of_copy"])] for r in flat])

    # Model-shaped parameter sets: cutrain clip+Adam against PyTorch's variants.
    targets = {}
    models = sorted({r["model"] for r in optim if r.get("model")})
    lines = []
    for m in models:
        ours = [r for r in optim if r.get("model") == m and r["bench"] == "optim"]
        theirs = {r["variant"]: r for r in optim if r.get("model") == m and r["bench"] == "torch_optim"}
        for r in ours:
            graph = r.get("launch", "stream") == "graph"
            # clip_path: "fused" = norm and step in one launch (Note [clip and step in one launch])
            path = {"fused": " one launch", "two-pass": " two launches"}.get(r.get("clip_path"), "")
            line = [m, r.get("tensors"), r["n"],
                    r["optimizer"] + path + (" (graph)" if graph else ""),
                    f"{r['seconds_per_step'] * 1e6:.1f}", pct(r["fraction_of_copy"])]
            peer = theirs.get("fused+clip")
            line.append(f"{peer['seconds_per_step'] * 1e6:.1f}" if peer else "-")
            line.append(f"{peer['seconds_per_step'] / r['seconds_per_step']:.2f}x" if peer else "-")
            foreach = theirs.get("foreach+clip")
            line.append(f"{foreach['seconds_per_step'] * 1e6:.1f}" if foreach else "-")
            lines.append(line)
        # The targets take cutrain's faster clip path (launched per step, not from a graph).
        best = min((r for r in ours if r["optimizer"] == "adam+clip"
                    and r.get("launch", "stream") == "stream"),
                   key=lambda r: r["seconds_per_step"], default=None)
        peer = theirs.get("fused+clip")
        if best and m == "gpt2-small" and peer:
            targets["clip+Adam 124M vs PyTorch fused (>= 1.3x)"] = (
                peer["seconds_per_step"] / best["seconds_per_step"], 1.3)
        if best and m == "mlp-1m":
            targets["1M/20-tensor step us (<= 8)"] = (best["seconds_per_step"] * 1e6, 8.0)
    table(["model", ">tensors", ">params", "cutrain", ">us/step", ">of copy", ">torch fused+clip us",
           ">speed-up", ">torch foreach+clip us"], lines)

    for r in flat:
        if r["bench"] == "optim" and r.get("optimizer") == "adam" and r["n"] == 1 << 26:
            targets["Adam 2^26 of copy (>= 0.90)"] = (r["fraction_of_copy"], 0.90)

    table(["init", ">n", ">ms", ">GB/s written", ">copy GB/s", ">of copy"],
          [[r["scheme"], r["n"], f"{r['seconds'] * 1e3:.3f}", f"{r['gbps']:.0f}",
            f"{r['copy_gbps']:.0f}", pct(r["fraction_of_copy"])]
           for r in rows if r.get("bench") == "init"])
    table(["Linear fwd+bwd", ">batch", ">us/step", ">TFLOPS", ">SGEMM TFLOPS", ">of SGEMM"],
          [[f"{r['in']}x{r['out']}" + {True: " (bias in epilogue)", False: " (bias add pass)"}.get(
              r.get("bias_epilogue"), "") + (" tf32" if r.get("precision") == "tf32" else ""),
            r["batch"], f"{r['seconds_per_step'] * 1e6:.1f}",
            f"{r['tflops']:.2f}", f"{r['gemm_tflops']:.2f}", pct(r["fraction_of_gemm"])]
           for r in rows if r.get("bench") == "layers"])
    table(["activation", ">batch", ">width", ">us fwd+bwd", ">of copy"],
          [[f"{r['layer']} ({r['device']})", r["batch"], r["width"],
            f"{r['seconds_per_step'] * 1e6:.1f}", pct(r["fraction_of_copy"])]
           for r in rows if r.get("bench") == "activation"])

    # The training step, eager and from a CUDA graph (bench_step): the graph's time is the
    # device's alone, so fraction_of_graph is the share of an eager step the device needs.
    def us(v):
        return f"{v * 1e6:.1f}" if v else "—"
    table(["training step", ">batch", ">clip", ">eager us", ">host issue us", ">graph us",
           ">fraction of graph"],
          [[f"{r['model']} ({r['device']})", r["batch"], r["clip_norm"], us(r["seconds_per_step"]),
            us(r["issue_seconds_per_step"]), us(r.get("graph_seconds_per_step")),
            pct(r["fraction_of_graph"]) if r.get("fraction_of_graph") else "—"]
           for r in rows if r.get("bench") == "step"])

    def epoch_s(r, key):
        return f"{r[key]:.4f}" if key in r else "—"
    table(["loader", ">batch", ">pipelined batches/s", ">synchronous", ">copy hidden behind compute",
           ">compute alone s", ">streamed + compute s", ">resident + compute s"],
          [[r["device"], r["batch"], f"{r['pipelined_batches_per_s']:.0f}",
            f"{r['sync_batches_per_s']:.0f}", pct(r["hidden_fraction"]),
            epoch_s(r, "compute_s"), epoch_s(r, "pipelined_with_compute_s"),
            epoch_s(r, "resident_with_compute_s")]
           for r in rows if r.get("bench") == "loader"])

    # The Fashion-MNIST MLP: cutrain-train against PyTorch eager / CUDA graphs, same recipe.
    mlp = [r for r in rows if (r.get("bench", "").endswith("mlp_epoch") or
           r.get("bench", "").startswith("torch_mlp_epoch")) and r.get("model", "mlp") == "mlp"]
    eager = {r.get("clip_norm", 0.0): r for r in mlp
             if r.get("mode") == "eager" and r.get("precision", "fp32") == "fp32"}
    lines = []
    for r in mlp:
        clip = r.get("clip_norm", 0.0) if "mode" in r else (0.0 if r.get("label") != "clip" else 1.0)
        name = f"cutrain ({r['label']})" if r["bench"] == "cutrain_mlp_epoch" else \
            f"PyTorch {r['mode']}" + ("" if r.get("precision", "fp32") == "fp32" else f" {r['precision']}")
        peer = eager.get(clip)
        speedup = peer["seconds_per_epoch"] / r["seconds_per_epoch"] if peer else None
        ttt = r.get("time_to_target_s")
        issue = r.get("issue_seconds_per_epoch")
        lines.append([name, clip, f"{r['seconds_per_epoch']:.3f}", f"{r['test_accuracy']:.4f}",
                      r.get("epochs_to_target") or "-", f"{ttt:.2f}" if ttt else "-",
                      f"{speedup:.2f}x" if speedup else "-",
                      pct(issue / r["seconds_per_epoch"]) if issue else "-"])
        if r["bench"] == "cutrain_mlp_epoch" and r.get("label", "default") == "default" and speedup:
            targets["MLP epoch vs PyTorch eager (>= 3x)"] = (speedup, 3.0)
    # host issue: the share of the epoch the host spent enqueueing steps (~100%: launch-bound).
    table(["MLP 784-512-256-10", ">clip", ">s/epoch", ">test acc", ">epochs to target",
           ">s to target", ">vs eager", ">host issue"], lines)

    if targets:
        print("\n| target | measured | goal | met |\n|---|---:|---:|---|")
        for name, (got, goal) in targets.items():
            met = got <= goal if "<=" in name else got >= goal
            print(f"| {name} | {got:.3g} | {goal:g} | {'yes' if met else 'NO'} |")
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump({"rows": rows, "targets": {k: {"measured": v[0], "goal": v[1]}
                                                 for k, v in targets.items()}}, f, indent=1)


if __name__ == "__main__":
    main()
