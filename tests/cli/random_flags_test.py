#!/usr/bin/env python3
"""cutrain-train under seeded random flag combinations: the command line fuzzed as a parser.

Each run draws a data source (a CSV table with a categorical column, or NumPy images for the MLP
or the CNN), an optimizer with some of its hyperparameters, a schedule with some of its own, and
up to eight of the other flags - mostly plausible values, now and then a hostile one (0, -1,
NaN, inf, 1e308, 2^64, '', text) - and is repaired towards a valid command most of the time so
that runs reach training, checkpoints, exports and predictions, not only the flag checks.
Whatever the combination, the error contract (docs/errors.md) must hold:
  - exit 0, 1 or 2, within 90 s (never a crash, an abort or a hang);
  - an error is one line, "cutrain-train: error: ...";
  - no sanitizer report (the ASan/UBSan suite runs this too);
  - the data files the run reads are unchanged;
  - a run that succeeds wrote every output it was asked for.
Usage: random_flags_test.py CUTRAIN_TRAIN [RUNS=150] [SEED=1]
"""
import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile

import numpy as np

BIN = os.path.abspath(sys.argv[1])
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 150
SEED = int(sys.argv[3]) if len(sys.argv) > 3 else 1
rng = random.Random(SEED)
DATA = ['train.csv', 'test.csv', 'x.npy', 'y.npy', 'xt.npy', 'yt.npy']
HOSTILE = ['0', '-1', '1e30', 'nan', 'inf', '-inf', '', 'abc', '1e-45', '2147483648',
           '18446744073709551616', '-0', '0x10', '1,2', ' 3', '1e308']


def value(typical):
    return lambda: rng.choice(typical) if rng.random() < 0.97 else rng.choice(HOSTILE)


FLAGS = {
    '--activation': value(['relu', 'leaky_relu', 'tanh', 'sigmoid', 'gelu', 'silu', 'relu6',
                           'hardswish', 'elu']),
    '--batchnorm': None, '--nesterov': None, '--centered': None, '--amsgrad': None,
    '--drop-last': None, '--stratify': None, '--no-shuffle': None, '--standardize': None,
    '--overwrite': None, '--resident-data': None, '--onnx-softmax': None, '--onnx-no-prep': None,
    '--regression': None, '--find-lr': None, '--augment-flip': None, '--eval-flip': None,
    '--dropout': value(['0', '0.5', '0.9', '0.2']),
    '--init': value(['xavier-uniform', 'xavier-normal', 'he-uniform', 'he-normal']),
    '--lr': value(['0.1', '0.01', '1e-3', '0', '10']),
    '--momentum': value(['0.9', '0', '0.5']), '--dampening': value(['0', '0.5', '1']),
    '--alpha': value(['0.99', '0', '0.5']), '--beta1': value(['0.9', '0', '0.5']),
    '--beta2': value(['0.999', '0', '0.5']), '--eps': value(['1e-8', '1e-3', '1']),
    '--weight-decay': value(['0', '0.1', '1e-4']),
    '--step-size': value(['1', '0.5', '2']), '--gamma': value(['0.5', '0.9', '1']),
    '--min-lr': value(['0', '1e-5']), '--plateau-patience': value(['0', '1']),
    '--pct-start': value(['0.3', '0.01', '0.99']), '--warmup': value(['0', '1', '5']),
    '--clip-norm': value(['0', '1', '1e-6', '100']),
    '--label-smoothing': value(['0', '0.1', '1']),
    '--class-weights': value(['balanced', '1,2,3', '1,2', '0,0,0', '1,1,1,1']),
    '--ema': value(['0', '0.9', '0.999']),
    '--batch-size': value(['1', '2', '7', '16', '1000']),
    '--accumulate': value(['1', '2', '3']), '--epochs': value(['0', '1', '2', '3']),
    '--monitor': value(['val_loss', 'val_accuracy']), '--patience': value(['1', '2']),
    '--val-fraction': value(['0.2', '0.5', '0.01']), '--folds': value(['2', '3']),
    '--train-subset': value(['1', '5', '40', '100000']),
    '--seed': value(['0', '1', '4294967295']),
    '--precision': value(['fp32', 'bf16', 'fp16']), '--loss-scale': value(['off', 'dynamic']),
    '--rounding': value(['nearest', 'stochastic']),
    '--metrics': value(['m.csv', 'm.jsonl', 'm.txt', 'train.csv', 'nodir/m.csv']),
    '--save': value(['ck.safetensors', 'new.safetensors', 'x.npy']),
    '--resume': value(['ck.safetensors', 'auto', 'missing.safetensors', 'ex.safetensors']),
    '--checkpoint-every': value(['1', '3']),
    '--init-from': value(['ex.safetensors', 'ck.safetensors', 'train.csv']),
    '--model-from': value(['ex.safetensors', 'ck.safetensors', 'train.csv']),
    '--export-torch': value(['out.safetensors', 'train.csv']),
    '--export-dtype': value(['fp32', 'bf16']),
    '--export-torch-optimizer': value(['opt.safetensors']),
    '--export-onnx': value(['m.onnx', 'ck.safetensors']),
    '--report': value(['r.json', 'test.csv']), '--predictions': value(['p.csv', 'x.npy']),
    '--target-accuracy': value(['0.5', '1']),
    '--find-lr-steps': value(['2', '5']), '--find-lr-min': value(['1e-6', '1']),
    '--find-lr-max': value(['1', '1e-7']), '--augment-shift': value(['0', '1', '3']),
    '--residual-blocks': value(['0', '1']), '--impute': value(['mean', 'median']),
    '--max-classes': value(['2', '1000']),
}
OPTIMIZERS = {'sgd': ['--momentum', '--nesterov', '--dampening', '--weight-decay'],
              'adagrad': ['--eps', '--weight-decay'],
              'rmsprop': ['--momentum', '--alpha', '--centered', '--eps', '--weight-decay'],
              'adam': ['--beta1', '--beta2', '--eps', '--amsgrad', '--weight-decay'],
              'adamw': ['--beta1', '--beta2', '--eps', '--amsgrad', '--weight-decay'],
              'lbfgs': []}
SCHEDULES = {'constant': ['--warmup'], 'step': ['--step-size', '--gamma', '--warmup'],
             'exponential': ['--gamma'], 'linear': ['--min-lr', '--warmup'],
             'cosine': ['--min-lr', '--warmup'], 'onecycle': ['--pct-start'],
             'plateau': ['--gamma', '--min-lr', '--plateau-patience']}
GENERAL = ['--activation', '--batchnorm', '--dropout', '--init', '--clip-norm',
           '--label-smoothing', '--class-weights', '--ema', '--batch-size', '--accumulate',
           '--drop-last', '--epochs', '--monitor', '--patience', '--val-fraction', '--stratify',
           '--train-subset', '--seed', '--no-shuffle', '--standardize', '--precision',
           '--loss-scale', '--rounding', '--metrics', '--save', '--resume', '--overwrite',
           '--checkpoint-every', '--init-from', '--model-from', '--export-torch', '--report',
           '--predictions', '--resident-data', '--target-accuracy', '--folds', '--impute',
           '--max-classes', '--regression', '--augment-flip', '--augment-shift', '--eval-flip']
CNN = ['--model', 'cnn', '--channels', '4', '--hidden', '8', '--input-shape', '1,8,8']
INPUTS = ('--train-csv', '--test-csv', '--train-npy', '--test-npy', '--val-npy', '--predict-csv',
          '--predict-npy')
OUTPUTS = ['--save', '--metrics', '--report', '--predictions', '--export-torch', '--export-onnx',
           '--export-torch-optimizer']


def write_data(d):
    g = np.random.default_rng(0)
    for name, rows in (('train.csv', 80), ('test.csv', 30)):
        x = g.normal(size=(rows, 6)).round(3)
        with open(os.path.join(d, name), 'w') as f:
            f.write('a,b,c,d,e,f,cat,label\n')
            for i in range(rows):
                cells = [str(v) for v in x[i]] + ['xyz'[i % 3], str(int(g.integers(0, 3)))]
                f.write(','.join(cells) + '\n')
    images = g.integers(0, 256, size=(50, 1, 8, 8)).astype(np.float32)
    labels = g.integers(0, 4, 50).astype(np.int64)
    np.save(os.path.join(d, 'x.npy'), images)
    np.save(os.path.join(d, 'y.npy'), labels)
    np.save(os.path.join(d, 'xt.npy'), images[:20])
    np.save(os.path.join(d, 'yt.npy'), labels[:20])


def data_flags():
    if rng.random() < 0.45:
        a = ['--train-csv', 'train.csv', '--target', rng.choice(['label'] * 6 + ['a', 'cat']),
             '--categorical', 'cat']
        if rng.random() < 0.2:
            a += ['--id-column', rng.choice(['a', 'label'])]
        if rng.random() < 0.1:
            a += ['--predict-csv', 'test.csv']
        return a
    a = ['--train-npy', 'x.npy,y.npy']
    if rng.random() < 0.2:
        a += ['--val-npy', 'xt.npy,yt.npy']
    if rng.random() < 0.6:
        a += CNN
    if rng.random() < 0.1:
        a += ['--predict-npy', 'xt.npy']
    return a


def drop(a, flag):
    while flag in a:
        i = a.index(flag)
        takes = FLAGS.get(flag) is not None or flag in ('--test-csv', '--test-npy', '--schedule')
        del a[i:i + (2 if takes else 1)]


def repair(a):
    """Most contradictions the flag checks refuse, removed: the runs then get further."""
    has = a.__contains__
    csv = has('--train-csv')
    if has('--folds'):
        for f in ['--val-fraction', '--val-npy', '--patience', '--target-accuracy', '--save',
                  '--resume', '--export-torch', '--export-onnx', '--monitor']:
            drop(a, f)
    else:
        a += ['--test-csv', 'test.csv'] if csv else ['--test-npy', 'xt.npy,yt.npy']
    if has('--monitor') and not has('--patience'):
        a += ['--patience', '1']
    if (has('--patience') or has('--stratify')) and not (has('--val-fraction') or has('--val-npy')
                                                          or has('--folds')):
        a += ['--val-fraction', '0.2']
    if (has('--predict-csv') or has('--predict-npy')) and not has('--predictions'):
        a += ['--predictions', 'p.csv']
    if not csv:
        drop(a, '--impute')
        drop(a, '--regression')
    if has('--regression'):
        for f in ['--target-accuracy', '--class-weights', '--stratify', '--label-smoothing',
                  '--max-classes', '--monitor']:
            drop(a, f)
    if has('--model-from') and has('--model'):
        drop(a, '--model-from')
    if has('--find-lr'):
        drop(a, '--schedule')
        for f in OUTPUTS + ['--patience', '--monitor', '--val-fraction', '--target-accuracy']:
            drop(a, f)
    if (has('--augment-flip') or has('--augment-shift') or has('--eval-flip')) and \
            not has('--input-shape'):
        a += ['--input-shape', '1,8,8' if not csv else '1,1,7']
    if a[a.index('--optimizer') + 1] == 'lbfgs':
        for f in ['--batch-size', '--accumulate', '--dropout', '--checkpoint-every', '--save',
                  '--resume', '--metrics', '--patience', '--monitor', '--ema', '--drop-last',
                  '--precision', '--loss-scale', '--rounding', '--clip-norm', '--no-shuffle',
                  '--augment-flip', '--augment-shift', '--eval-flip', '--resident-data',
                  '--label-smoothing',
                  '--export-torch-optimizer']:
            drop(a, f)
        return a
    if not has('--batch-size'):
        a += ['--batch-size', rng.choice(['8', '16', '7'])]
    return a


def model_file_command():
    """A run that trains nothing (Note [flags without training]): predicting with --model-from
    alone, or converting it to ONNX, now and then with a flag of another kind of run."""
    a = ['--model-from', 'ex.safetensors']
    if rng.random() < 0.6:
        a += ['--predict-npy', 'xt.npy', '--predictions', 'p.csv']
        if rng.random() < 0.3:
            a += ['--export-onnx', 'm.onnx']
    else:
        a += ['--export-onnx', 'm.onnx'] + (['--onnx-softmax'] if rng.random() < 0.3 else [])
    for flag in rng.sample(GENERAL, rng.choice([0, 0, 1, 2])):
        if flag not in a:
            a += [flag] if FLAGS[flag] is None else [flag, FLAGS[flag]()]
    return a


def command():
    if rng.random() < 0.08:
        return model_file_command()
    a = data_flags()
    chosen = set(rng.sample(GENERAL, rng.randint(1, 8)))
    opt = rng.choice(list(OPTIMIZERS) + ['adamw'])
    a += ['--optimizer', opt]
    chosen |= {f for f in OPTIMIZERS[opt] if rng.random() < 0.4}
    if opt != 'lbfgs':
        schedule = rng.choice(list(SCHEDULES))
        a += ['--schedule', schedule]
        chosen |= {f for f in SCHEDULES[schedule] if rng.random() < 0.5}
    if rng.random() < 0.25:
        chosen |= {f for f in ['--export-onnx', '--onnx-softmax', '--export-dtype',
                               '--export-torch-optimizer'] if rng.random() < 0.5}
        if chosen & {'--export-dtype', '--export-torch-optimizer'}:
            chosen.add('--export-torch')
        if '--onnx-softmax' in chosen:
            chosen.add('--export-onnx')
    if rng.random() < 0.08:
        chosen = {'--find-lr'} | {f for f in ['--find-lr-steps', '--find-lr-min', '--find-lr-max',
                                              '--clip-norm', '--precision'] if rng.random() < 0.5}
    for flag in sorted(chosen):
        if flag in a:
            continue
        a += [flag] if FLAGS[flag] is None else [flag, FLAGS[flag]()]
    if '--checkpoint-every' in a and '--save' not in a:
        a += ['--save', 'ck.safetensors']
    if ('--rounding' in a or '--loss-scale' in a) and '--precision' not in a:
        a += ['--precision', 'bf16']
    if '--epochs' not in a and '--find-lr' not in a:
        a += ['--epochs', '2']
    return repair(a) if rng.random() < 0.85 else a


def digest(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    root = tempfile.mkdtemp(prefix='cutrain-flags-')
    env = dict(os.environ, OMP_NUM_THREADS='1')
    try:
        data = os.path.join(root, 'data')
        os.makedirs(data)
        write_data(data)
        sums = {f: digest(os.path.join(data, f)) for f in DATA}
        failures, codes = [], {}
        for run in range(RUNS):
            work = os.path.join(root, str(run))
            shutil.copytree(data, work)
            args = command()
            if rng.random() < 0.5 or args[0] == '--model-from':
                # a checkpoint and an export to resume, load and overwrite
                first = args[:args.index('--optimizer')] if '--optimizer' in args else \
                    ['--train-npy', 'x.npy,y.npy']
                subprocess.run([BIN] + first + (['--test-csv', 'test.csv'] if '--train-csv' in first
                                                else ['--test-npy', 'xt.npy,yt.npy']) +
                               ['--epochs', '1', '--batch-size', '16', '--save', 'ck.safetensors',
                                '--export-torch', 'ex.safetensors'],
                               cwd=work, capture_output=True, env=env, timeout=120)
            shown = ' '.join(repr(a) if a == '' or ' ' in a else a for a in args)
            try:
                p = subprocess.run([BIN] + args, cwd=work, capture_output=True, text=True,
                                   env=env, timeout=90)
                rc, err = p.returncode, p.stderr
            except subprocess.TimeoutExpired:
                failures.append(f'hung (90 s): {shown}')
                continue
            codes[rc] = codes.get(rc, 0) + 1
            why = []
            if rc not in (0, 1, 2):
                why.append(f'exit {rc}')
            if any(s in err for s in ('Sanitizer', 'runtime error:', 'terminate called')):
                why.append('a sanitizer report or an abort')
            lines = [line for line in err.splitlines() if line.strip()]
            if rc in (1, 2) and (not lines or not lines[-1].startswith('cutrain-train: error: ')
                                 or sum('error' in line for line in lines) != 1):
                why.append('not one error line')
            read = {f for i, a in enumerate(args[1:]) if args[i] in INPUTS for f in a.split(',')}
            for f in sorted(read & set(DATA)):
                if digest(os.path.join(work, f)) != sums[f]:
                    why.append(f'the input {f} changed')
            if rc == 0 and '--find-lr' not in args and '--folds' not in args:
                for flag in OUTPUTS:
                    if flag in args and not os.path.exists(
                            os.path.join(work, args[args.index(flag) + 1])):
                        why.append(f'{flag} not written')
            if why:
                failures.append(f"{'; '.join(why)}: {shown}\n    {err.strip()[-800:]}")
            shutil.rmtree(work)
        print(f'random flags: {RUNS} runs (seed {SEED}), exits {dict(sorted(codes.items()))}')
        for f in failures:
            print('FAIL:', f)
        return 1 if failures else 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


sys.exit(main())
