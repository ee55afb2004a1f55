#!/usr/bin/env python
"""What do the callbacks cost? The Runner of lesson 05b with its standard callbacks against a plain PyTorch
loop doing exactly the same work.

Both sides train the same MLP (784-50-10, same initial weights) with the same SGD optimizer on the same
batches of a real-MNIST subset (same shuffling seed), for one epoch plus validation, and do the same
bookkeeping:

- a cosine learning-rate schedule set before every training batch (`ParamScheduler` / by hand);
- the learning rate and the loss of every training batch recorded (`Recorder` / by hand);
- loss and accuracy summed per phase, weighted by batch size (`AvgStatsCallback` / by hand);
- train/eval mode and the fractional epoch counter (`TrainEvalCallback` / by hand).

The two are run alternately (plain first on even repeats, runner first on odd ones) after one untimed
warm-up each, and must end with identical weights and statistics (checked: otherwise they did not do the
same work). Prints a table of the median, minimum and maximum times (wall clock and process CPU time),
then, as the last line, `ratio=<runner median / plain median>`. The ratio uses CPU time by default: with
one thread, CPU time barely depends on other processes competing for the machine, wall time does
(`--clock wall` to use it anyway).

    python tests/benchmarks/bench_learner_vs_plain.py [--repeats 7] [--n-train 20000] [--bs 64] [--threads 1]

Data: MNIST from the data folder or the mirror (`EXP_MIRROR`), through `exp.nb_01.get_data`.
"""
import argparse
import copy
import math
import statistics
import sys
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))   # the repository root, for `import exp`

import torch
import torch.nn.functional as F
from torch import nn, optim
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler

from exp.nb_05b import (AvgStatsCallback, DataBunch, Dataset, Learner, ParamScheduler, Recorder, Runner,
                        accuracy, get_data, normalize, sched_cos)


def batch_loader(ds, bs, shuffle, seed=0):
    "A DataLoader yielding whole batches by indexing `ds` with a list of indices (no per-item collation)."
    sampler = RandomSampler(ds, generator=torch.Generator().manual_seed(seed)) if shuffle else SequentialSampler(ds)
    return DataLoader(ds, sampler=BatchSampler(sampler, bs, drop_last=False), batch_size=None)


def make_data(n_train, n_valid, bs):
    x_train, y_train, x_valid, y_valid = get_data()
    m, s = x_train.mean(), x_train.std()
    x_train, x_valid = normalize(x_train[:n_train], m, s), normalize(x_valid[:n_valid], m, s)
    train_ds, valid_ds = Dataset(x_train, y_train[:n_train]), Dataset(x_valid, y_valid[:n_valid])
    return train_ds, valid_ds


def fresh(train_ds, valid_ds, bs, init_state, lr):
    "Same model weights, a new optimizer and new loaders whose shuffling restarts from the same seed."
    model = nn.Sequential(nn.Linear(784, 50), nn.ReLU(), nn.Linear(50, 10))
    model.load_state_dict(init_state)
    opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    data = DataBunch(batch_loader(train_ds, bs, True), batch_loader(valid_ds, 2 * bs, False), c=10)
    return model, opt, data


def clocks(): return time.perf_counter(), time.process_time()
def since(t0): return tuple(b - a for a, b in zip(t0, clocks()))    # (wall, cpu) seconds


def run_learner(model, opt, data, sched, epochs):
    stats_lines = []
    run = Runner(cbs=[ParamScheduler('lr', sched), Recorder(),
                      AvgStatsCallback([accuracy], logger=stats_lines.append)])
    t0 = clocks()
    run.fit(epochs, Learner(model, opt, F.cross_entropy, data))
    elapsed = since(t0)
    st = run.avg_stats
    return elapsed, st.train_stats.avg_stats + st.valid_stats.avg_stats, run.recorder.losses


def run_plain(model, opt, data, sched, epochs):
    t0 = clocks()
    lrs, losses, n_epochs, n_iter = [], [], 0., 0
    for epoch in range(epochs):
        n_epochs = float(epoch)
        tr_loss, tr_acc, tr_n, va_loss, va_acc, va_n = 0., 0., 0, 0., 0., 0
        model.train()
        iters = len(data.train_dl)
        for xb, yb in data.train_dl:
            for pg in opt.param_groups: pg['lr'] = sched(n_epochs / epochs)
            pred = model(xb)
            loss = F.cross_entropy(pred, yb)
            with torch.no_grad():
                bn = xb.shape[0]
                tr_loss += loss.detach() * bn
                tr_n += bn
                tr_acc += accuracy(pred, yb) * bn
            loss.backward()
            opt.step()
            opt.zero_grad()
            n_epochs += 1. / iters
            n_iter += 1
            lrs.append(opt.param_groups[-1]['lr'])
            losses.append(loss.item())
        model.eval()
        with torch.no_grad():
            for xb, yb in data.valid_dl:
                pred = model(xb)
                loss = F.cross_entropy(pred, yb)
                bn = xb.shape[0]
                va_loss += loss.detach() * bn
                va_n += bn
                va_acc += accuracy(pred, yb) * bn
    opt.zero_grad()
    elapsed = since(t0)
    return elapsed, [float(tr_loss) / tr_n, float(tr_acc) / tr_n, float(va_loss) / va_n, float(va_acc) / va_n], losses


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--repeats', type=int, default=7, help='timed runs of each loop (default 7)')
    p.add_argument('--n-train', type=int, default=20_000, help='training images (default 20,000)')
    p.add_argument('--n-valid', type=int, default=2_000, help='validation images (default 2,000)')
    p.add_argument('--bs', type=int, default=64, help='batch size (default 64, as in lesson 04)')
    p.add_argument('--epochs', type=int, default=1, help='epochs per run (default 1)')
    p.add_argument('--threads', type=int, default=1,
                   help='torch CPU threads (default 1: steadier timings on a shared machine)')
    p.add_argument('--clock', choices=('cpu', 'wall'), default='cpu',
                   help="the time the ratio uses: 'cpu' (process CPU time, default; with one thread it hardly "
                        "depends on other processes sharing the machine) or 'wall'")
    args = p.parse_args(argv)
    if args.repeats < 1: p.error('--repeats must be >= 1')
    if args.n_train < args.bs: p.error('--n-train must be at least --bs')
    torch.set_num_threads(args.threads)

    train_ds, valid_ds = make_data(args.n_train, args.n_valid, args.bs)
    torch.manual_seed(0)
    init_state = copy.deepcopy(nn.Sequential(nn.Linear(784, 50), nn.ReLU(), nn.Linear(50, 10)).state_dict())
    sched = sched_cos(0.1, 0.01)
    runners = {'plain': run_plain, 'runner': run_learner}

    results = {}
    for name, f in runners.items():                                   # untimed warm-up, and the same-work check
        model, opt, data = fresh(train_ds, valid_ds, args.bs, init_state, 0.1)
        _, stats, losses = f(model, opt, data, sched, args.epochs)
        results[name] = (stats, losses, [p.detach().clone() for p in model.parameters()])
    (s1, l1, w1), (s2, l2, w2) = results['plain'], results['runner']
    if not (all(torch.equal(a, b) for a, b in zip(w1, w2)) and l1 == l2
            and all(math.isclose(a, b, rel_tol=1e-6) for a, b in zip(s1, s2))):
        sys.exit('the two loops did not do the same work: weights, losses or statistics differ')

    times = {name: [] for name in runners}                           # name -> [(wall, cpu), ...]
    for r in range(args.repeats):
        order = list(runners) if r % 2 == 0 else list(runners)[::-1]
        for name in order:
            model, opt, data = fresh(train_ds, valid_ds, args.bs, init_state, 0.1)
            elapsed, _, _ = runners[name](model, opt, data, sched, args.epochs)
            times[name].append(elapsed)

    n_batches = args.epochs * (len(data.train_dl) + len(data.valid_dl))
    print(f'MNIST subset: {args.n_train:,} train / {args.n_valid:,} valid images, bs {args.bs}, '
          f'{args.epochs} epoch(s) = {n_batches} batches per run; MLP 784-50-10, SGD momentum 0.9; '
          f'{args.repeats} alternating repeats; torch {torch.__version__}, {args.threads} thread(s), CPU')
    print('final stats (train loss, train acc, valid loss, valid acc), identical for both: '
          + ', '.join(f'{v:.4f}' for v in s1))
    print(f"{'loop':<8}{'clock':<6}{'median s':>10}{'min s':>10}{'max s':>10}{'median ms/batch':>17}")
    for name, ts in times.items():
        for i, clock in enumerate(('wall', 'cpu')):
            t = [x[i] for x in ts]
            print(f'{name:<8}{clock:<6}{statistics.median(t):>10.4f}{min(t):>10.4f}{max(t):>10.4f}'
                  f'{1000 * statistics.median(t) / n_batches:>17.3f}')
    i = ('wall', 'cpu').index(args.clock)
    med = {name: statistics.median(x[i] for x in ts) for name, ts in times.items()}
    print(f'ratio: runner / plain, median {args.clock} time')
    print(f"ratio={med['runner'] / med['plain']:.3f}")

if __name__ == '__main__':
    main()
