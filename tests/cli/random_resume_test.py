#!/usr/bin/env python3
"""cutrain-train stopped by a signal at a random moment and resumed: the uninterrupted run.

Each case draws a valid command - a data source (a CSV table with a categorical column, or NumPy
images for the MLP or the CNN) and a random set of the options whose state a checkpoint carries
(optimizer, schedule, weight average, clipping, accumulation, 16-bit precision with loss scaling
and stochastic rounding, early stopping on a validation split, augmentation, class weights,
dropout, BatchNorm, periodic checkpoints) - and runs it twice into separate directories:
  - straight through;
  - stopped by SIGINT, SIGTERM, SIGHUP (Note [stop on a signal]) or SIGKILL (a preemption without
    grace: the run goes on from its last saved checkpoint) at random moments and continued - with
    --resume added, or, where the command has --resume auto, the same command repeated.
The two must end in the same files: the checkpoint's tensors bit for bit and its metadata (but
the command line), the --export-torch weights, the --predictions file, and the --metrics file's
every column but the timings. A stop is any moment - before training, mid-epoch, during
validation, between the last epoch and the exports - so the test also holds that a stopped run
never leaves a checkpoint it cannot continue from.
Usage: random_resume_test.py CUTRAIN_TRAIN [CASES=40] [SEED=1]
"""
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np

BIN = os.path.abspath(sys.argv[1])
CASES = int(sys.argv[2]) if len(sys.argv) > 2 else 40
SEED = int(sys.argv[3]) if len(sys.argv) > 3 else 1
rng = random.Random(SEED)
# The exit status of a run that stopped and saved; SIGKILL (a preemption without grace, the OOM
# killer) saves nothing: the run continues from its last epoch's or --checkpoint-every's file.
STOPS = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129, signal.SIGKILL: None}
TIMING_COLUMNS = {'seconds', 'samples_per_s'}


def write_data(d):
    g = np.random.default_rng(0)
    for name, rows in (('train.csv', 600), ('test.csv', 100), ('new.csv', 30)):
        x = g.normal(size=(rows, 5)).round(3)
        with open(os.path.join(d, name), 'w') as f:
            f.write('a,b,c,d,e,cat' + (',label\n' if name != 'new.csv' else '\n'))
            for i in range(rows):
                cells = [str(v) for v in x[i]] + ['xyz'[i % 3], str(int(x[i, 0] > 0) + i % 2)]
                if name == 'new.csv':
                    cells.pop()  # rows to predict: no label
                if i % 97 == 5:
                    cells[2] = ''  # a missing value for --impute
                f.write(','.join(cells) + '\n')
    images = g.integers(0, 256, size=(600, 1, 8, 8)).astype(np.float32) / 255
    labels = (images.reshape(600, -1)[:, :32].mean(1) > 0.5).astype(np.int64) + \
        2 * (np.arange(600) % 2)
    np.save(os.path.join(d, 'x.npy'), images)
    np.save(os.path.join(d, 'y.npy'), labels)
    np.save(os.path.join(d, 'xt.npy'), images[:100])
    np.save(os.path.join(d, 'yt.npy'), labels[:100])


def maybe(p, *flags):
    return list(flags) if rng.random() < p else []


def command():
    if rng.random() < 0.4:
        regression = rng.random() < 0.2
        a = ['--train-csv', 'train.csv', '--test-csv', 'test.csv', '--categorical', 'cat',
             '--impute', rng.choice(['mean', 'median'])]
        a += ['--regression', '--target', 'a', '--drop-columns', 'label'] if regression else \
            ['--target', 'label'] + maybe(0.2, '--predict-csv', 'new.csv', '--predictions', 'p.csv')
        a += maybe(0.3, '--standardize')
    else:
        a = ['--train-npy', 'x.npy,y.npy', '--test-npy', 'xt.npy,yt.npy']
        if rng.random() < 0.6:
            a += ['--model', 'cnn', '--channels', '4', '--hidden', '8', '--input-shape', '1,8,8']
            a += maybe(0.3, '--residual-blocks', '1')
        else:
            a += ['--hidden', rng.choice(['16', '16,8'])] + maybe(0.3, '--batchnorm')
        augment = (maybe(0.3, '--augment-flip') + maybe(0.3, '--augment-shift', '1') +
                   maybe(0.2, '--eval-flip'))
        if augment and '--input-shape' not in a:
            augment += ['--input-shape', '1,8,8']
        a += augment
        a += maybe(0.2, '--predict-npy', 'xt.npy', '--predictions', 'p.csv')
        a += maybe(0.2, '--resident-data')
    regression = '--regression' in a
    opt = rng.choice(['sgd', 'adagrad', 'rmsprop', 'adam', 'adamw'])
    a += ['--optimizer', opt, '--lr', rng.choice(['0.01', '0.003', '0.05'])]
    a += {'sgd': maybe(0.6, '--momentum', '0.9') + maybe(0.3, '--nesterov'),
          'rmsprop': maybe(0.4, '--centered') + maybe(0.4, '--momentum', '0.5'),
          'adam': maybe(0.3, '--amsgrad'), 'adamw': maybe(0.3, '--amsgrad'),
          'adagrad': []}[opt]
    if '--nesterov' in a and '--momentum' not in a:
        a += ['--momentum', '0.9']
    schedule = rng.choice(['constant', 'step', 'exponential', 'linear', 'cosine', 'onecycle',
                           'plateau'])
    a += ['--schedule', schedule] + maybe(0.3, '--warmup', '2') * (schedule in (
        'constant', 'step', 'linear', 'cosine'))
    if schedule == 'plateau':
        a += ['--plateau-patience', '1', '--val-fraction', '0.2']
    a += maybe(0.3, '--weight-decay', '1e-4') + maybe(0.3, '--clip-norm', '0.5')
    a += maybe(0.3, '--ema', '0.9') + maybe(0.3, '--accumulate', rng.choice(['2', '3']))
    a += maybe(0.3, '--dropout', '0.2') + maybe(0.2, '--drop-last') + maybe(0.1, '--no-shuffle')
    a += maybe(0.2, '--seed', str(rng.randint(1, 1000)))
    if rng.random() < 0.3:
        a += ['--precision', rng.choice(['bf16', 'fp16'])] + maybe(0.5, '--loss-scale', 'dynamic')
        a += maybe(0.4, '--rounding', 'stochastic')
    if not regression:
        a += maybe(0.2, '--label-smoothing', '0.1') + maybe(0.2, '--class-weights', 'balanced')
    if rng.random() < 0.3:
        if '--val-fraction' not in a:
            a += ['--val-fraction', '0.2']
        a += ['--patience', rng.choice(['2', '4'])] + maybe(0.3, '--stratify') * (not regression)
        if not regression:
            a += maybe(0.5, '--monitor', rng.choice(['val_loss', 'val_accuracy']))
    a += maybe(0.4, '--checkpoint-every', rng.choice(['5', '17']))
    a += ['--batch-size', rng.choice(['16', '32', '50']), '--epochs', str(rng.randint(5, 20))]
    a += ['--save', 'ck.safetensors', '--metrics', 'm.csv', '--export-torch', 'ex.safetensors']
    return a + maybe(0.4, '--resume', 'auto')


def safetensors(path):
    with open(path, 'rb') as f:
        raw = f.read()
    (n,) = struct.unpack('<Q', raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop('__metadata__', {})
    data = raw[8 + n:]
    tensors = {k: data[v['data_offsets'][0]:v['data_offsets'][1]] for k, v in header.items()}
    return meta, tensors


def metrics(path):
    with open(path) as f:
        rows = [line.rstrip('\n').split(',') for line in f]
    keep = [i for i, c in enumerate(rows[0]) if c not in TIMING_COLUMNS]
    return [[r[i] for i in keep] for r in rows]


def differences(straight, resumed):
    """What differs between the two runs' outputs (empty when they are the same)."""
    why = []
    for name in ('ck.safetensors', 'ex.safetensors'):
        a, b = os.path.join(straight, name), os.path.join(resumed, name)
        if not os.path.exists(b):
            why.append(f'{name} missing')
            continue
        (ma, ta), (mb, tb) = safetensors(a), safetensors(b)
        if sorted(ta) != sorted(tb):
            why.append(f'{name}: tensors {sorted(set(ta) ^ set(tb))[:4]}')
        why += [f'{name}: tensor {k} differs' for k in sorted(ta) if k in tb and ta[k] != tb[k]]
        why += [f'{name}: metadata {k}: {ma.get(k, "")[:60]!r} != {mb.get(k, "")[:60]!r}'
                for k in sorted(set(ma) | set(mb)) if k != 'command' and ma.get(k) != mb.get(k)]
    if metrics(os.path.join(straight, 'm.csv')) != metrics(os.path.join(resumed, 'm.csv')):
        why.append('m.csv differs')
    p = os.path.join(straight, 'p.csv')
    if os.path.exists(p):
        with open(p, 'rb') as f, open(os.path.join(resumed, 'p.csv'), 'rb') as g:
            if f.read() != g.read():
                why.append('p.csv differs')
    return why[:6]


OUTPUTS = ('ck.safetensors', 'ex.safetensors', 'm.csv', 'p.csv')


def stopped_run(args, work, env, seconds):
    """The command stopped twice at random moments, each time resumed, then run to its end:
    the stops made and what went wrong (None). With --resume auto in the command (a scheduler's
    one command, Note [resume auto]) the same command is repeated; else --resume is added once
    there is a checkpoint."""
    stops = []
    auto = '--resume' in args
    resume = []
    scale = 1.0
    tries = 0
    while len(stops) < 2 and tries < 6:
        tries += 1
        sig = rng.choice(list(STOPS))
        p = subprocess.Popen([BIN] + args + resume, cwd=work, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
        # Before the signal handlers are installed a stop only kills; later it saves.
        time.sleep(rng.uniform(0.05, 0.9) * seconds * scale)
        p.send_signal(sig)
        err = p.communicate(timeout=120)[0]
        if p.returncode == 0:
            if stops:
                return stops, None
            # It finished first (a busy machine runs faster than it did): start again, sooner.
            for name in OUTPUTS:
                if os.path.exists(os.path.join(work, name)):
                    os.remove(os.path.join(work, name))
            scale /= 2
            continue
        if p.returncode not in (STOPS[sig], -sig):
            return stops, f'{sig.name}: exit {p.returncode}: {err.strip()[-400:]}'
        where = [line.split(':')[0] for line in err.splitlines() if line.startswith('interrupted')]
        stops.append(f'{sig.name}: {where[0]}' if p.returncode > 0 and where else
                     f'{sig.name} (killed)')
        if os.path.exists(os.path.join(work, 'ck.safetensors')) and not auto:
            resume = ['--resume', 'ck.safetensors']
    p = subprocess.run([BIN] + args + resume, cwd=work, env=env, capture_output=True, text=True,
                       timeout=120)
    return stops, None if p.returncode == 0 else f'resume: exit {p.returncode}: {p.stderr[-400:]}'


def main():
    root = tempfile.mkdtemp(prefix='cutrain-resume-')
    env = dict(os.environ, OMP_NUM_THREADS='1')  # Note [arithmetic on resume]: same threads
    try:
        data = os.path.join(root, 'data')
        os.makedirs(data)
        write_data(data)
        failures, compared, diverged = [], 0, 0
        for case in range(CASES):
            args = command()
            straight, resumed = os.path.join(root, f'{case}a'), os.path.join(root, f'{case}b')
            shutil.copytree(data, straight)
            shutil.copytree(data, resumed)
            start = time.monotonic()
            p = subprocess.run([BIN] + args, cwd=straight, env=env, capture_output=True,
                               text=True, timeout=120)
            seconds = time.monotonic() - start
            shown = ' '.join(args)
            if p.returncode == 1 and 'training diverged' in p.stderr:
                diverged += 1  # a legitimate end (lr too large for the draw): nothing to compare
                continue
            if p.returncode != 0:
                failures.append(f'exit {p.returncode}: {shown}\n    {p.stderr.strip()[-400:]}')
                continue
            stops, error = stopped_run(args, resumed, env, seconds)
            why = [error] if error else differences(straight, resumed)
            compared += bool(stops)
            if why:
                failures.append(f"{'; '.join(why)}\n    stops {stops}: {shown}")
            shutil.rmtree(straight)
            shutil.rmtree(resumed)
        print(f'random resume: {CASES} cases (seed {SEED}), {compared} stopped at least once, '
              f'{diverged} diverged')
        for f in failures:
            print('FAIL:', f)
        return 1 if failures else 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


sys.exit(main())
