#!/usr/bin/env bash
# CPU Adam, cutrain vs PyTorch, on this machine in one run (2 threads, 2^24 parameters).
# MODEL=gpt2-small|mlp-1m: that model's tensors instead; CLIP=1: global-norm clipping first
# (clip_grad_norm_ on the PyTorch side). Needs a build (build/bin/bench_optim) and Debian's
# python3-torch.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${N:-16777216}
export OMP_NUM_THREADS=${THREADS:-2}
set_args=(--n "$n")
[ -n "${MODEL:-}" ] && set_args=(--model "$MODEL")
clip=()
[ "${CLIP:-0}" = 1 ] && clip=(--clip)
ours=$(build/bin/bench_optim --device cpu --optimizer adam "${set_args[@]}" "${clip[@]}" \
  --min-seconds 1 --json)
theirs=$(/usr/bin/python3 bench/torch/optim_cpu.py "${set_args[@]}" "${clip[@]}" \
  --threads "$OMP_NUM_THREADS")
echo "$ours"
echo "$theirs"
python3 - "$ours" "$theirs" <<'PY'
import json, sys
ours = json.loads(sys.argv[1])
for line in sys.argv[2].splitlines():
    t = json.loads(line)
    print(f"PyTorch {t['optimizer']} foreach={t['foreach']} {t.get('model') or ''} n={t['n']}: "
          f"{t['seconds_per_step']*1e3:.1f} ms/step; "
          f"cutrain {ours['seconds_per_step']*1e3:.1f} ms/step: "
          f"{t['seconds_per_step'] / ours['seconds_per_step']:.2f}x")
PY
