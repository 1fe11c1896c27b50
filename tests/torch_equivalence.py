#!/usr/bin/python3
"""cutrain-train versus PyTorch: same initial weights, same data order, same optimizer; the
final weights must agree to <= 1e-4 relative (to each tensor's largest magnitude).

    /usr/bin/python3 tests/torch_equivalence.py build/bin/cutrain-train [DATA_DIR]

One epoch over the first 512 Fashion-MNIST training images (pixel / 255), batch 64, no shuffle,
no dropout, constant learning rate, an MLP 784-32-16-10 with ReLU; weight decay is off for
biases (cutrain's no-decay group) and on for weights. Configurations: plain SGD (no state), SGD
with Nesterov momentum, centered RMSProp, AdaGrad, AdamW with gradient clipping.

Gradient accumulation (Note [gradient accumulation]): cutrain with batches of 16 and
`--accumulate 4` over 500 images against PyTorch's recipe, each micro-batch's loss scaled by its
share of the step's rows before backward and a step every 4 micro-batches (the last step has
16 + 16 + 16 + 4 rows).

Class weights with label smoothing (`--class-weights`, one of them 0, `--label-smoothing 0.1`)
against CrossEntropyLoss(weight=, label_smoothing=), Adam.

Weight averaging (Note [weight averaging]): `--ema 0.9` against the average PyTorch's
AveragedModel with get_ema_multi_avg_fn keeps - a copy after the first step, then
ema.lerp_(p, 1 - decay) after each - written out as that recurrence (PyTorch 1.13 predates
get_ema_multi_avg_fn); cutrain exports the averaged weights.

Regression from CSV files (`--train-csv --regression`): the same MLP with one output trained
with mean squared error against torch.nn.MSELoss, Adam with weight decay on the weights only.

Raw CSV cells prepared in Python from an export's data spec (cutrain_torch.prepare: one-hot,
imputed, standardized) give the rebuilt model cutrain's own predictions for them.

The model rebuilt in PyTorch from an export's architecture metadata (cutrain_torch.build_model,
Note [architecture in exports]) predicts what cutrain predicted, BatchNorm and GELU included; and
a model trained in PyTorch, written by cutrain_torch.save_model and rebuilt by cutrain-train
--model-from, predicts what PyTorch predicts.

Then the optimizer state (Note [torch optimizer state], tools/cutrain_torch.py): cutrain's
exported state must equal torch.optim's after the same epoch (same tolerance, same step count),
and a second epoch continued across the tools - PyTorch from cutrain's weights and state, and
cutrain from PyTorch's - must land where PyTorch's own second epoch does.
"""
import gzip
import os
import struct
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
except ImportError as e:  # CTest's SKIP_RETURN_CODE
    print(f"skipped: {e} (apt-get install python3-torch)")
    sys.exit(77)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import cutrain_torch  # noqa: E402

BINARY = sys.argv[1]
DATA = sys.argv[2] if len(sys.argv) > 2 else "/usr/share/datasets/fashion-mnist"
N, BATCH, HIDDEN = 512, 64, (32, 16)


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return np.frombuffer(raw[4 + 4 * ndim:], dtype=np.uint8).reshape(dims)


def find(stem):
    for ext in ("", ".gz"):
        p = os.path.join(DATA, stem + ext)
        if os.path.exists(p):
            return p
    raise SystemExit(f"missing {stem} in {DATA}")


def save_safetensors(path, arrays):
    cutrain_torch.save_tensors(path, {k: torch.from_numpy(v) for k, v in arrays.items()})


def load_safetensors(path):
    return {k: t.numpy() for k, t in cutrain_torch.read_tensors(path).items()}


CASES = {
    "sgd_plain": (["--optimizer", "sgd", "--lr", "0.1", "--weight-decay", "0"],
                  lambda groups: torch.optim.SGD(groups, lr=0.1), 0.0, None),
    "sgd_nesterov": (["--optimizer", "sgd", "--lr", "0.05", "--momentum", "0.9", "--nesterov",
                      "--weight-decay", "0.001"],
                     lambda groups: torch.optim.SGD(groups, lr=0.05, momentum=0.9, nesterov=True),
                     0.001, None),
    "rmsprop_centered": (["--optimizer", "rmsprop", "--lr", "0.001", "--alpha", "0.9",
                          "--centered", "--weight-decay", "0"],
                         lambda groups: torch.optim.RMSprop(groups, lr=0.001, alpha=0.9,
                                                            centered=True, eps=1e-8),
                         0.0, None),
    "adagrad": (["--optimizer", "adagrad", "--lr", "0.01", "--weight-decay", "0.0001"],
                lambda groups: torch.optim.Adagrad(groups, lr=0.01, eps=1e-10), 0.0001, None),
    "adamw_clip": (["--optimizer", "adamw", "--lr", "0.002", "--weight-decay", "0.01",
                    "--clip-norm", "0.5"],
                   lambda groups: torch.optim.AdamW(groups, lr=0.002, weight_decay=0.01),
                   0.01, 0.5),
}


def relative(got, ref):
    return float(np.max(np.abs(got - ref)) / max(float(np.max(np.abs(ref))), 1e-12))


def main():
    if not os.path.isdir(DATA):
        print(f"skipped: no Fashion-MNIST at {DATA} (apt-get install dataset-fashion-mnist)")
        return 77
    x = read_idx(find("train-images-idx3-ubyte"))[:N].reshape(N, -1).astype(np.float32) / 255.0
    y = read_idx(find("train-labels-idx1-ubyte"))[:N].astype(np.int64)
    torch.manual_seed(0)
    sizes = (784,) + HIDDEN + (10,)
    init = {}
    layer = 0
    for i in range(len(sizes) - 1):
        lin = torch.nn.Linear(sizes[i], sizes[i + 1])
        init[f"layers.{layer}.weight"] = lin.weight.detach().numpy().copy()
        init[f"layers.{layer}.bias"] = lin.bias.detach().numpy().copy()
        layer += 2  # Linear, ReLU

    def make_model(weights, widths=sizes):  # weights: {"0.weight": array, ...}
        mods = []
        for i in range(len(widths) - 1):
            mods.append(torch.nn.Linear(widths[i], widths[i + 1]))
            if i < len(widths) - 2:
                mods.append(torch.nn.ReLU())
        model = torch.nn.Sequential(*mods)
        with torch.no_grad():
            params = dict(model.named_parameters())
            for k, v in weights.items():
                params[k].copy_(torch.as_tensor(np.array(v)))
        return model

    def make_optimizer(model, make_opt, wd):
        weights = [p for n, p in model.named_parameters() if n.endswith("weight")]
        biases = [p for n, p in model.named_parameters() if n.endswith("bias")]
        return make_opt([{"params": weights, "weight_decay": wd},
                         {"params": biases, "weight_decay": 0.0}])

    def torch_epoch(model, opt, clip):
        loss_fn = torch.nn.CrossEntropyLoss()
        for start in range(0, N, BATCH):
            xb = torch.from_numpy(x[start:start + BATCH])
            yb = torch.from_numpy(y[start:start + BATCH])
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()

    def worst_weights(model, ours, prefix="layers."):
        return max(relative(ours[prefix + n], p.detach().numpy())
                   for n, p in model.named_parameters())

    worst_all = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        init_path = os.path.join(tmp, "init.safetensors")
        save_safetensors(init_path, init)
        for name, (flags, make_opt, wd, clip) in CASES.items():
            out = os.path.join(tmp, name + ".safetensors")
            opt_out = os.path.join(tmp, name + ".optim.safetensors")
            common = [BINARY, "--data", DATA, "--device", "cpu",
                      "--hidden", ",".join(map(str, HIDDEN)), "--dropout", "0",
                      "--schedule", "constant", "--no-shuffle", "--epochs", "1",
                      "--batch-size", str(BATCH), "--train-subset", str(N)] + flags
            subprocess.run(common + ["--init-from", init_path, "--save", out,
                                     "--export-torch-optimizer", opt_out],
                           check=True, stdout=subprocess.DEVNULL)
            ours = load_safetensors(out)

            model = make_model({k[len("layers."):]: v for k, v in init.items()})
            opt = make_optimizer(model, make_opt, wd)
            torch_epoch(model, opt, clip)
            worst = worst_weights(model, ours)
            print(f"{name}: max relative difference {worst:.3g}")

            # The optimizer state after the epoch, key by key, and the step count.
            exported, meta = cutrain_torch.read_tensors(opt_out, with_metadata=True)
            state_worst = 0.0
            for n, p in model.named_parameters():
                for key, value in opt.state[p].items():
                    if value is None:  # plain SGD's momentum_buffer: no state
                        continue
                    if key == "step":
                        if int(float(value)) != int(meta["step"]):
                            print(f"FAILED: {name} {n}: step {meta['step']}, torch {value}")
                            return 1
                        continue
                    state_worst = max(state_worst,
                                      relative(exported[f"{n}.{key}"].numpy(), value.numpy()))
            print(f"{name}: optimizer state max relative difference {state_worst:.3g} "
                  f"({len(exported)} tensors, step {meta['step']})")

            # Epoch 2 three ways: PyTorch continuing itself (the reference); PyTorch from
            # cutrain's weights and state; cutrain from PyTorch's weights and state.
            torch_w = os.path.join(tmp, name + ".torch_w.safetensors")
            torch_o = os.path.join(tmp, name + ".torch_o.safetensors")
            cutrain_torch.save_tensors(torch_w, model.state_dict())
            cutrain_torch.save_optimizer_state(opt, model, torch_o)
            torch_epoch(model, opt, clip)

            moved = make_model({k[len("layers."):]: v for k, v in ours.items()
                                if k.startswith("layers.")})
            moved_opt = make_optimizer(moved, make_opt, wd)
            cutrain_torch.load_optimizer_state(moved_opt, moved, opt_out)
            torch_epoch(moved, moved_opt, clip)
            to_torch = max(relative(q.detach().numpy(), p.detach().numpy()) for q, p in
                           zip(moved.parameters(), model.parameters()))

            out2 = os.path.join(tmp, name + ".second.safetensors")
            subprocess.run(common + ["--init-from", torch_w, "--init-optimizer-from", torch_o,
                                     "--save", out2], check=True, stdout=subprocess.DEVNULL)
            to_cutrain = worst_weights(model, load_safetensors(out2))
            print(f"{name}: epoch 2 moved to PyTorch {to_torch:.3g}, moved to cutrain "
                  f"{to_cutrain:.3g}")
            worst_all = max(worst_all, worst, state_worst, to_torch, to_cutrain)
        # Gradient accumulation against PyTorch's accumulate-then-step loop.
        n_acc, micro, steps_of = 500, 16, 4
        out = os.path.join(tmp, "accumulate.safetensors")
        subprocess.run([BINARY, "--data", DATA, "--device", "cpu",
                        "--hidden", ",".join(map(str, HIDDEN)), "--dropout", "0",
                        "--schedule", "constant", "--no-shuffle", "--epochs", "1",
                        "--batch-size", str(micro), "--accumulate", str(steps_of),
                        "--train-subset", str(n_acc), "--optimizer", "adamw", "--lr", "0.002",
                        "--weight-decay", "0.01", "--clip-norm", "0.5",
                        "--init-from", init_path, "--save", out],
                       check=True, stdout=subprocess.DEVNULL)
        model = make_model({k[len("layers."):]: v for k, v in init.items()})
        opt = make_optimizer(model, lambda g: torch.optim.AdamW(g, lr=0.002, weight_decay=0.01),
                             0.01)
        loss_fn = torch.nn.CrossEntropyLoss()
        group = micro * steps_of
        for begin in range(0, n_acc, group):
            rows = min(group, n_acc - begin)
            opt.zero_grad()
            for start in range(begin, begin + rows, micro):
                xb = torch.from_numpy(x[start:min(start + micro, begin + rows)])
                yb = torch.from_numpy(y[start:min(start + micro, begin + rows)])
                (loss_fn(model(xb), yb) * (len(yb) / rows)).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
            opt.step()
        worst = worst_weights(model, load_safetensors(out))
        print(f"adamw_accumulate: max relative difference {worst:.3g} "
              f"({(n_acc + group - 1) // group} steps of {steps_of} micro-batches)")
        worst_all = max(worst_all, worst)

        # Class weights and label smoothing against CrossEntropyLoss(weight=, label_smoothing=):
        # one of the weights 0 (those samples count for nothing), Adam.
        class_w = [1.0, 2.5, 0.5, 1.0, 0.0, 3.0, 1.0, 0.75, 1.5, 1.0]
        out = os.path.join(tmp, "class_weights.safetensors")
        subprocess.run([BINARY, "--data", DATA, "--device", "cpu",
                        "--hidden", ",".join(map(str, HIDDEN)), "--dropout", "0",
                        "--schedule", "constant", "--no-shuffle", "--epochs", "1",
                        "--batch-size", str(BATCH), "--train-subset", str(N),
                        "--optimizer", "adam", "--lr", "0.003", "--weight-decay", "0",
                        "--class-weights", ",".join(map(str, class_w)),
                        "--label-smoothing", "0.1", "--init-from", init_path, "--save", out],
                       check=True, stdout=subprocess.DEVNULL)
        model = make_model({k[len("layers."):]: v for k, v in init.items()})
        opt = make_optimizer(model, lambda g: torch.optim.Adam(g, lr=0.003), 0.0)
        loss_fn = torch.nn.CrossEntropyLoss(weight=torch.tensor(class_w), label_smoothing=0.1)
        for start in range(0, N, BATCH):
            opt.zero_grad()
            loss_fn(model(torch.from_numpy(x[start:start + BATCH])),
                    torch.from_numpy(y[start:start + BATCH])).backward()
            opt.step()
        worst = worst_weights(model, load_safetensors(out))
        print(f"adam_class_weights: max relative difference {worst:.3g}")
        worst_all = max(worst_all, worst)

        # Weight averaging against the recurrence AveragedModel applies after each step.
        decay = 0.9
        out = os.path.join(tmp, "ema.safetensors")
        subprocess.run([BINARY, "--data", DATA, "--device", "cpu",
                        "--hidden", ",".join(map(str, HIDDEN)), "--dropout", "0",
                        "--schedule", "constant", "--no-shuffle", "--epochs", "1",
                        "--batch-size", str(BATCH), "--train-subset", str(N),
                        "--optimizer", "sgd", "--lr", "0.05", "--momentum", "0.9",
                        "--weight-decay", "0", "--ema", str(decay),
                        "--init-from", init_path, "--export-torch", out],
                       check=True, stdout=subprocess.DEVNULL)
        model = make_model({k[len("layers."):]: v for k, v in init.items()})
        opt = make_optimizer(model, lambda g: torch.optim.SGD(g, lr=0.05, momentum=0.9), 0.0)
        loss_fn = torch.nn.CrossEntropyLoss()
        ema = None
        for start in range(0, N, BATCH):
            opt.zero_grad()
            loss_fn(model(torch.from_numpy(x[start:start + BATCH])),
                    torch.from_numpy(y[start:start + BATCH])).backward()
            opt.step()
            with torch.no_grad():
                if ema is None:
                    ema = [p.detach().clone() for p in model.parameters()]
                else:
                    for e, p in zip(ema, model.parameters()):
                        e.lerp_(p, 1 - decay)
        exported = load_safetensors(out)  # torch.nn.Sequential names: "0.weight", ...
        worst = max(relative(exported[n], e.numpy())
                    for (n, _), e in zip(model.named_parameters(), ema))
        moved = max(relative(exported[n], p.detach().numpy())
                    for n, p in model.named_parameters())
        print(f"sgd_ema: max relative difference {worst:.3g} (the trained weights differ from "
              f"the average by {moved:.3g})")
        if moved < 1e-3:
            print("FAILED: the exported weights are not the average")
            return 1
        worst_all = max(worst_all, worst)

        # Regression from CSV files: mean squared error (torch.nn.MSELoss) through the same MLP
        # shape with one output, Adam with weight decay on the weights only; the targets are a
        # fixed nonlinear function of the first 512 images' pixels.
        csv_x = x[:, ::8]  # 98 features
        csv_y = np.tanh(csv_x @ np.linspace(-1, 1, csv_x.shape[1], dtype=np.float32)) * 3 + 0.5
        train_csv = os.path.join(tmp, "reg_train.csv")
        np.savetxt(train_csv, np.column_stack([csv_x, csv_y]), delimiter=",", fmt="%.9g")
        reg_sizes = (csv_x.shape[1],) + HIDDEN + (1,)
        torch.manual_seed(1)
        reg_init = {}
        for i in range(len(reg_sizes) - 1):
            lin = torch.nn.Linear(reg_sizes[i], reg_sizes[i + 1])
            reg_init[f"layers.{2 * i}.weight"] = lin.weight.detach().numpy().copy()
            reg_init[f"layers.{2 * i}.bias"] = lin.bias.detach().numpy().copy()
        reg_init_path = os.path.join(tmp, "reg_init.safetensors")
        save_safetensors(reg_init_path, reg_init)
        out = os.path.join(tmp, "regression.safetensors")
        subprocess.run([BINARY, "--train-csv", train_csv, "--test-csv", train_csv, "--regression",
                        "--device", "cpu", "--hidden", ",".join(map(str, HIDDEN)), "--dropout",
                        "0", "--schedule", "constant", "--no-shuffle", "--epochs", "1",
                        "--batch-size", str(BATCH), "--optimizer", "adam", "--lr", "0.003",
                        "--weight-decay", "0.001", "--init-from", reg_init_path, "--save", out],
                       check=True, stdout=subprocess.DEVNULL)
        model = make_model({k[len("layers."):]: v for k, v in reg_init.items()}, reg_sizes)
        opt = make_optimizer(model, lambda g: torch.optim.Adam(g, lr=0.003), 0.001)
        mse = torch.nn.MSELoss()
        xs, ys = torch.from_numpy(np.ascontiguousarray(csv_x)), torch.from_numpy(csv_y)[:, None]
        for start in range(0, N, BATCH):
            opt.zero_grad()
            mse(model(xs[start:start + BATCH]), ys[start:start + BATCH]).backward()
            opt.step()
        worst = worst_weights(model, load_safetensors(out))
        print(f"adam_mse_csv: max relative difference {worst:.3g}")
        worst_all = max(worst_all, worst)

        # Note [architecture in exports]: cutrain_torch.build_model rebuilds the exported model -
        # BatchNorm (running statistics, num_batches_tracked), GELU, Dropout - and PyTorch's
        # eval-mode forward of the test images gives cutrain's --predictions probabilities;
        # the checkpoint of the same run builds the same model.
        exported = os.path.join(tmp, "bn_gelu.safetensors")
        checkpoint = os.path.join(tmp, "bn_gelu_ckpt.safetensors")
        predictions = os.path.join(tmp, "bn_gelu.csv")
        subprocess.run([BINARY, "--data", DATA, "--device", "cpu", "--hidden", "48,24",
                        "--batchnorm", "--activation", "gelu", "--dropout", "0.3", "--epochs", "2",
                        "--train-subset", "2000", "--export-torch", exported, "--save",
                        checkpoint, "--predictions", predictions],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        test_x = read_idx(find("t10k-images-idx3-ubyte")).reshape(-1, 784).astype(np.float32) / 255
        ours = np.loadtxt(predictions, delimiter=",", skiprows=1)
        built = cutrain_torch.build_model(exported)
        kinds = [type(m).__name__ for m in built]
        with torch.no_grad():
            probs = torch.softmax(built(torch.from_numpy(test_x)), 1).numpy()
            again = torch.softmax(cutrain_torch.build_model(checkpoint)(torch.from_numpy(test_x)),
                                  1).numpy()
        worst = float(np.max(np.abs(probs - ours[:, 1:])))  # the file keeps 6 digits
        agree = float(np.mean(probs.argmax(1) == ours[:, 0]))
        print(f"build_model ({', '.join(kinds)}): probabilities within {worst:.3g} of cutrain's, "
              f"classes agree on {agree:.4%}, checkpoint vs export {np.max(np.abs(again - probs)):.3g}")
        if (kinds.count("BatchNorm1d") != 2 or worst > 5e-6 or agree < 0.999 or
                not np.array_equal(again, probs)):
            print("FAILED: the rebuilt model is not the one cutrain trained")
            return 1

        # Note [16-bit exports]: the same model exported in bf16 (--model-from the checkpoint,
        # no training) holds what torch's .to(torch.bfloat16) makes of the F32 weights and
        # statistics, tensor for tensor; cutrain-train --model-from reads it back and predicts as
        # PyTorch does with those values.
        half = os.path.join(tmp, "bn_gelu_bf16.safetensors")
        half_predictions = os.path.join(tmp, "bn_gelu_bf16.csv")
        subprocess.run([BINARY, "--data", DATA, "--device", "cpu", "--model-from", checkpoint,
                        "--epochs", "0", "--export-torch", half, "--export-dtype", "bf16"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run([BINARY, "--data", DATA, "--device", "cpu", "--model-from", half,
                        "--epochs", "0", "--predictions", half_predictions],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        full, halved = cutrain_torch.read_tensors(exported), cutrain_torch.read_tensors(half)
        differ = [n for n, t in full.items()
                  if halved[n].dtype != torch.bfloat16 or not torch.equal(halved[n], t.to(torch.bfloat16))]
        with torch.no_grad():
            probs16 = torch.softmax(cutrain_torch.build_model(half)(torch.from_numpy(test_x)), 1).numpy()
        ours16 = np.loadtxt(half_predictions, delimiter=",", skiprows=1)
        worst16 = float(np.max(np.abs(probs16 - ours16[:, 1:])))
        print(f"--export-dtype bf16: {len(full)} tensors as torch rounds them ({len(differ)} differ), "
              f"predictions within {worst16:.3g} of PyTorch's on the bf16 weights, "
              f"{os.path.getsize(half) / os.path.getsize(exported):.2f} of the F32 file")
        if differ or worst16 > 5e-6 or os.path.getsize(half) > 0.6 * os.path.getsize(exported):
            print(f"FAILED: the bf16 export is not torch's bf16 model (differ: {differ})")
            return 1

        # And the other way: a torch.nn.Sequential trained in PyTorch, written by
        # cutrain_torch.save_model, rebuilt by cutrain-train --model-from (train::load_model),
        # predicts the test images as PyTorch does (eval mode: BatchNorm's running statistics).
        torch.manual_seed(2)
        theirs = torch.nn.Sequential(torch.nn.Linear(784, 40), torch.nn.BatchNorm1d(40),
                                     torch.nn.LeakyReLU(0.05), torch.nn.Dropout(0.2),
                                     torch.nn.Linear(40, 24), torch.nn.SiLU(),
                                     torch.nn.Linear(24, 10))
        opt = torch.optim.Adam(theirs.parameters(), lr=0.003)
        for start in range(0, N, BATCH):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(theirs(torch.from_numpy(x[start:start + BATCH])),
                                              torch.from_numpy(y[start:start + BATCH])).backward()
            opt.step()
        theirs.eval()
        saved = os.path.join(tmp, "from_torch.safetensors")
        cutrain_torch.save_model(theirs, saved)
        predictions = os.path.join(tmp, "from_torch.csv")
        subprocess.run([BINARY, "--data", DATA, "--device", "cpu", "--model-from", saved,
                        "--epochs", "0", "--predictions", predictions],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with torch.no_grad():
            probs = torch.softmax(theirs(torch.from_numpy(test_x)), 1).numpy()
        ours = np.loadtxt(predictions, delimiter=",", skiprows=1)
        worst = float(np.max(np.abs(probs - ours[:, 1:])))
        agree = float(np.mean(probs.argmax(1) == ours[:, 0]))
        print(f"--model-from a PyTorch model: probabilities within {worst:.3g} of PyTorch's, "
              f"classes agree on {agree:.4%}")
        if worst > 5e-6 or agree < 0.999:
            print("FAILED: cutrain's rebuild of the PyTorch model predicts differently")
            return 1

        # Note [data spec in exports] in Python: raw CSV cells - a one-hot column, gaps, other
        # columns standardized - prepared by cutrain_torch.prepare from the export alone give the
        # model cutrain's own --predict-csv probabilities.
        rng = np.random.default_rng(3)
        colours = ["red", "green", "blue"]
        def csv_rows(n):
            rows = []
            for i in range(n):
                c = int(rng.integers(3))
                a = "NA" if i % 7 == 2 else f"{rng.normal(c, 1):.3f}"
                b = "" if i % 5 == 1 else f"{rng.normal(0, 10):.2f}"
                rows.append([a, colours[c], b, str(c)])
            return rows
        train_rows, new_rows = csv_rows(300), csv_rows(60)
        train_csv = os.path.join(tmp, "mixed_train.csv")
        new_csv = os.path.join(tmp, "mixed_new.csv")
        with open(train_csv, "w") as f:
            f.write("a,colour,b,label\n" + "".join(",".join(r) + "\n" for r in train_rows))
        with open(new_csv, "w") as f:
            f.write("a,colour,b\n" + "".join(",".join(r[:3]) + "\n" for r in new_rows))
        exported = os.path.join(tmp, "mixed.safetensors")
        predictions = os.path.join(tmp, "mixed.csv")
        subprocess.run([BINARY, "--train-csv", train_csv, "--test-csv", train_csv, "--device",
                        "cpu", "--categorical", "colour", "--impute", "mean", "--standardize",
                        "--hidden", "12", "--epochs", "3", "--export-torch", exported,
                        "--predict-csv", new_csv, "--predictions", predictions],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        x_new = cutrain_torch.prepare([r[:3] for r in new_rows], exported)
        with torch.no_grad():
            probs = torch.softmax(cutrain_torch.build_model(exported)(x_new), 1).numpy()
        ours = np.loadtxt(predictions, delimiter=",", skiprows=1)
        worst = float(np.max(np.abs(probs - ours[:, 1:])))
        print(f"prepare (one-hot, imputed, standardized CSV cells): {x_new.shape[1]} features, "
              f"probabilities within {worst:.3g} of cutrain's")
        if x_new.shape != (60, 5) or worst > 5e-6:
            print("FAILED: cutrain_torch.prepare does not prepare data as cutrain did")
            return 1
        try:
            cutrain_torch.prepare([["1", "purple", "2"]], exported)
            print("FAILED: an unknown category was accepted")
            return 1
        except ValueError as e:
            assert "category 'purple'" in str(e), e
        # Named columns are checked against the export's (Note [feature columns by name]).
        if not torch.equal(cutrain_torch.prepare([r[:3] for r in new_rows], exported,
                                                 columns=["a", "colour", "b"]), x_new):
            print("FAILED: prepare with the training file's column names differs")
            return 1
        try:
            cutrain_torch.prepare([r[:3] for r in new_rows], exported, columns=["b", "colour", "a"])
            print("FAILED: columns in another order were accepted")
            return 1
        except ValueError as e:
            assert "not the training file's feature columns ['a', 'colour', 'b']" in str(e), e
        # Columns the run dropped (--drop-columns) are left out of named rows, as cutrain does.
        id_csv = os.path.join(tmp, "id_train.csv")
        with open(id_csv, "w") as f:
            f.write("id,a,colour,b,label\n" +
                    "".join(f"{i}," + ",".join(r) + "\n" for i, r in enumerate(train_rows)))
        # ... and so is the rows' id column (--id-column, Note [id column]).
        for flag in ("--drop-columns", "--id-column"):
            id_model = os.path.join(tmp, "id.safetensors")
            subprocess.run([BINARY, "--train-csv", id_csv, "--test-csv", id_csv, "--device", "cpu",
                            "--categorical", "colour", "--impute", "mean", flag, "id",
                            "--hidden", "12", "--epochs", "1", "--export-torch", id_model,
                            "--overwrite"],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            with_id = cutrain_torch.prepare([[str(i)] + r[:3] for i, r in enumerate(new_rows)],
                                            id_model, columns=["id", "a", "colour", "b"])
            if not torch.equal(with_id, cutrain_torch.prepare([r[:3] for r in new_rows], id_model)):
                print(f"FAILED: prepare does not leave out the column {flag} names")
                return 1
    if worst_all > 1e-4:
        print(f"FAILED: {worst_all:.3g} > 1e-4")
        return 1
    print("torch equivalence: all configurations within 1e-4, weights and optimizer state")
    return 0


if __name__ == "__main__":
    sys.exit(main())
