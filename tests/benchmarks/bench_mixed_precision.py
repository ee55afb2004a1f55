#!/usr/bin/env python
"""Benchmark: training images/s of lesson 11's XResNet on Imagenette in fp32 and in lesson 10c's mixed precisions.

Four modes train from the same initial weights on the same batches, for each seed:

- `fp32`;
- `fp16, ours`: lesson 10c's `MixedPrecision` (an fp16 model, fp32 master weights, a dynamic loss scale);
- `fp16, torch.amp`: lesson 10c's `AutocastMixedPrecision` (`torch.autocast` and `GradScaler`);
- `bf16, torch.amp`: `torch.autocast` in bfloat16 (no loss scale needed), where the device has it.

The images (the first `--n-classes` classes of imagenette2-160, random-resized crops at `--size` px, decoded
once before any timing) stay in memory as uint8, so what is timed is the training step: the learner's batch
callbacks (move to the device, bytes to floats, normalisation), forward, loss, backward and the Adam step
with a 1cycle schedule, after `--warmup` steps. After the last step each run is evaluated on the same
validation images (centre crops). The table gives images/s (median over the seeds) and the validation
accuracy of each seed: on a GPU the mixed-precision runs should learn as fp32 does, within the spread
between seeds. The last line is

    ratio=<images/s of fp16 with our MixedPrecision / images/s of fp32>        (goal on a GPU: >= 2.0)

On a CPU fp16 is emulated and slow; `--smoke` (tiny sizes) only checks that every mode runs, as the test
suite does through tools/device/checks.sh.

Usage: python tests/benchmarks/bench_mixed_precision.py [--arch xresnet18] [--size 128] [--bs 64] [--steps 40]
           [--warmup 5] [--n-valid 500] [--n-classes 10] [--seeds 0 1] [--workers 4] [--device cuda] [--smoke]
"""
import argparse, statistics, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))   # the repository root, for `exp`

import torch
from torch.utils.data import DataLoader, TensorDataset

from coursekit.datasets import URLs, untar_data
from exp.nb_04 import Callback
from exp.nb_05 import one_cycle
from exp.nb_06 import default_device
from exp.nb_08 import DataBunch, NormalizeChan
from exp.nb_09 import adam_opt
from exp.nb_10 import byte_to_float
from exp.nb_10c import AutocastMixedPrecision, MixedPrecision
from exp.nb_11 import cnn_learner, imagenette_split, xresnets
from _timing import sync   # this folder's shared timing helpers


class StepTimer(Callback):
    "Seconds and images of the training batches after the first `warmup`, synchronised with the device"
    _order = 200
    def __init__(self, warmup, device): self.warmup, self.device, self.images, self.t0 = warmup, device, 0, None
    def begin_batch(self):
        if self.in_train and self.iter == self.warmup: sync(self.device); self.t0 = time.perf_counter()
    def after_step(self):
        if self.t0 is not None: self.images += len(self.xb)
    def after_train(self): sync(self.device); self.seconds = time.perf_counter() - self.t0


def decoded(items, bs, workers):
    "All of `items` (an image list of uint8 tensors and labels), decoded once: (images, labels) tensors"
    xs, ys = [], []
    for xb, yb in DataLoader(items, bs, num_workers=workers): xs.append(xb); ys.append(yb)
    return torch.cat(xs), torch.cat(ys)


def modes(device):
    res = {'fp32': [], 'fp16, ours': [MixedPrecision()], 'fp16, torch.amp': [AutocastMixedPrecision()]}
    bf16 = device.type == 'cpu' or (device.type == 'cuda' and torch.cuda.is_bf16_supported())
    if bf16: res['bf16, torch.amp'] = [AutocastMixedPrecision(torch.bfloat16)]
    return res


def run(a, data, norm, seed, cbs, device):
    "Train one mode from `seed` for the steps of `data`; (images/s of the timed steps, validation accuracy)"
    torch.manual_seed(seed)
    learn = cnn_learner(xresnets[a.arch], data, torch.nn.CrossEntropyLoss(), adam_opt(), a.lr, norm=norm,
                        progress=False, device=device)
    learn.logger = lambda *args, **kwargs: None
    timer = StepTimer(a.warmup, device)
    learn.fit(1, cbs=one_cycle(a.lr) + [timer] + cbs)
    return timer.images / timer.seconds, learn.avg_stats_table.valid_stats.avg_stats[1]


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--arch', default='xresnet18', choices=list(xresnets))
    p.add_argument('--size', type=int, default=128); p.add_argument('--bs', type=int, default=64)
    p.add_argument('--steps', type=int, default=40, help='training steps per run, warm-up included')
    p.add_argument('--warmup', type=int, default=5, help='steps not timed at the start of each run')
    p.add_argument('--n-valid', type=int, default=500); p.add_argument('--n-classes', type=int, default=10)
    p.add_argument('--lr', type=float, default=3e-3); p.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    p.add_argument('--workers', type=int, default=4, help='processes decoding the images, once, before timing')
    p.add_argument('--device', default=None, help='cpu, cuda or mps (default: CUDA, else MPS, else CPU)')
    p.add_argument('--threads', type=int, default=None, help='torch threads (default: torch\'s)')
    p.add_argument('--smoke', action='store_true', help='tiny sizes: only checks that every mode runs (the suite)')
    a = p.parse_args()
    if a.smoke: a.size, a.bs, a.steps, a.warmup, a.n_valid, a.n_classes, a.seeds = 16, 4, 2, 1, 8, 2, [0]
    if a.warmup >= a.steps: p.error(f'--warmup {a.warmup} must be less than --steps {a.steps}')
    if a.threads: torch.set_num_threads(a.threads)
    device = torch.device(a.device) if a.device else default_device()

    ll = imagenette_split(untar_data(URLs.IMAGENETTE_160), a.size, a.n_classes, n_train=a.bs * a.steps,
                          n_valid=a.n_valid, seed=0)
    t0 = time.perf_counter()
    train, valid = decoded(ll.train, a.bs, a.workers), decoded(ll.valid, a.bs, a.workers)
    print(f'{len(train[0])} training and {len(valid[0])} validation images decoded in {time.perf_counter() - t0:.0f} s')
    data = DataBunch(DataLoader(TensorDataset(*train), a.bs, shuffle=False, drop_last=True),
                     DataLoader(TensorDataset(*valid), 2 * a.bs), c_in=3, c_out=a.n_classes)
    norm = NormalizeChan.from_batch(byte_to_float(valid[0][:64]))

    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else device.type
    print(f'{a.arch}, {a.size} px, batch {a.bs}, {a.steps} steps ({a.warmup} not timed), seeds {a.seeds}, on {name}')
    results = {}
    for m in modes(device):
        runs = [run(a, data, norm, seed, modes(device)[m], device) for seed in a.seeds]   # fresh callbacks per run
        results[m] = (statistics.median(r[0] for r in runs), [r[1] for r in runs])
        print(f'{m + ":":18s}{results[m][0]:9.1f} images/s   accuracy ' + ' '.join(f'{acc:.3f}' for acc in results[m][1]),
              flush=True)
    base = results['fp32'][0]
    for m, (speed, _) in results.items():
        if m != 'fp32': print(f'{m} / fp32: {speed / base:.3f}')
    print(f"ratio={results['fp16, ours'][0] / base:.3f}")


if __name__ == '__main__':
    main()
