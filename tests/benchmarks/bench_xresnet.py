#!/usr/bin/env python
"""Benchmark: forward + backward of lesson 11's xresnet50 against torchvision's resnet50.

Same batch (random images, random labels of 1000 classes), same device, same dtype (fp32), both models in
training mode (batch statistics), cross-entropy loss. The FLOP counts of one forward pass of one image
(torch.utils.flop_counter: convolutions and matmuls, a multiply-add counted as 2) are printed beside the
times: XResNet's three-conv stem and the ResNet-D shortcut convs cost more FLOPs than torchvision's 7×7 stem,
so a ratio above 1 is expected in proportion. Each repeat times `--steps` steps of each model, alternating
which goes first; the table gives the time per image (median, min, max over the repeats). The last line is

    ratio=<ours / torchvision resnet50, time per image>        (goal: <= 1.15)

Usage: python tests/benchmarks/bench_xresnet.py [--size 128] [--bs 16] [--steps 2] [--repeats 3]
                                                [--device cpu|cuda|mps] [--threads T]
"""
import argparse, statistics, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))   # the repository root, for `exp`

import torch
import torch.nn.functional as F
import torchvision
from torch.utils.flop_counter import FlopCounterMode

from exp.nb_06 import default_device
from exp.nb_11 import xresnet50
from _timing import sync   # this folder's shared timing helpers


def step(model, xb, yb):
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(xb), yb).backward()

def flops_per_image(model, size, device):
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        model.eval()(torch.randn(1, 3, size, size, device=device))
    model.train()
    return fc.get_total_flops()

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--size', type=int, default=128); p.add_argument('--bs', type=int, default=16)
    p.add_argument('--steps', type=int, default=2); p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--device', default=None); p.add_argument('--threads', type=int, default=None)
    a = p.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    device = torch.device(a.device) if a.device else default_device()
    torch.manual_seed(0)
    models = {'xresnet50 (ours)': xresnet50().to(device), 'torchvision resnet50': torchvision.models.resnet50().to(device)}
    xb = torch.randn(a.bs, 3, a.size, a.size, device=device)
    yb = torch.randint(0, 1000, (a.bs,), device=device)
    flops = {n: flops_per_image(m, a.size, device) for n, m in models.items()}
    for m in models.values(): step(m, xb, yb)          # warm-up
    times = {n: [] for n in models}
    for r in range(a.repeats):
        order = list(models) if r % 2 == 0 else list(models)[::-1]
        for n in order:
            sync(device); t0 = time.perf_counter()
            for _ in range(a.steps): step(models[n], xb, yb)
            sync(device); times[n].append((time.perf_counter() - t0) / (a.steps * a.bs))
    print(f'device {device}, {torch.get_num_threads()} threads, batch {a.bs} at {a.size} px, fp32, '
          f'{a.repeats} repeats of {a.steps} steps')
    print(f'{"model":24} {"fwd GFLOP/img":>14} {"params":>12} {"ms/img median":>14} {"min":>8} {"max":>8}')
    for n, m in models.items():
        t = times[n]
        print(f'{n:24} {flops[n] / 1e9:14.3f} {sum(q.numel() for q in m.parameters()):12,} '
              f'{1e3 * statistics.median(t):14.2f} {1e3 * min(t):8.2f} {1e3 * max(t):8.2f}')
    ours, theirs = (statistics.median(times[n]) for n in models)
    f_ours, f_theirs = flops.values()
    print(f'FLOP ratio={f_ours / f_theirs:.3f}')
    print(f'ratio={ours / theirs:.3f}')

if __name__ == '__main__':
    main()
