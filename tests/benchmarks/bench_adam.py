#!/usr/bin/env python
"""Benchmark: one step of lesson 09's Adam (`adam_opt`, steppers and stats) against `torch.optim.Adam`.

Both optimizers get the parameters of a ResNet-18-sized model (torchvision's `resnet18`, 11.7M
parameters in 62 tensors; only the parameter shapes matter, there is no forward pass), in two
identical copies, and the same fixed gradients. Ours is given torch's default hyper-parameters
(betas 0.9/0.999, eps 1e-8, lr 1e-3), so the two compute the same update: after the warm-up steps the
weights are compared (float32: within 1e-5 relative, 1e-7 absolute) before anything is timed.

`torch.optim.Adam` runs with its defaults; which implementation that picks is printed (PyTorch uses
the multi-tensor "foreach" kernels when every parameter is on CUDA, the per-tensor for-loop
otherwise). For reference the table also has torch with `foreach=True` forced.

Each repeat times STEPS steps of each optimizer, alternating which goes first; the table gives the
time of one step (median, min, max over the repeats), the last line is

    ratio=<ours / torch.optim.Adam (defaults)>        (goal: <= 1.5)

Usage: python tests/benchmarks/bench_adam.py [--steps 5] [--repeats 5] [--device cpu|cuda|mps] [--threads T]
"""
import argparse, statistics, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))   # the repository root, for `exp`

import torch
import torchvision

from exp.nb_09 import adam_opt, default_device
from _timing import sync   # this folder's shared timing helpers


def make_params(device, seed=0):
    "Parameters of a fresh resnet18 with fixed gradients (same seed: same weights and grads)"
    torch.manual_seed(seed)
    model = torchvision.models.resnet18(weights=None).to(device)
    params = list(model.parameters())
    g = torch.Generator().manual_seed(seed + 1)
    for p in params: p.grad = (torch.randn(p.shape, generator=g) * 1e-2).to(device)
    return params


def torch_impl(params):
    "Which implementation torch.optim.Adam picks with its defaults for these parameters"
    from torch.optim.optimizer import _default_to_fused_or_foreach
    fused, foreach = _default_to_fused_or_foreach(params, differentiable=False, use_fused=False)
    return 'fused' if fused else 'foreach' if foreach else 'for-loop (single tensor)'


def time_steps(opt, steps, device):
    sync(device)
    start = time.perf_counter()
    for _ in range(steps): opt.step()
    sync(device)
    return (time.perf_counter() - start) / steps


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--steps', type=int, default=5, help='steps timed per repeat')
    ap.add_argument('--repeats', type=int, default=5)
    ap.add_argument('--warmup', type=int, default=3, help='untimed steps first (they create the state)')
    ap.add_argument('--device', default=None, help='default: CUDA, else MPS, else CPU')
    ap.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch decides)')
    a = ap.parse_args(argv)
    if a.threads: torch.set_num_threads(a.threads)
    device = torch.device(a.device) if a.device else default_device()

    p_ours, p_torch, p_fe = make_params(device), make_params(device), make_params(device)
    n = sum(p.numel() for p in p_ours)
    opts = {
        'ours (adam_opt)': adam_opt(lr=1e-3, mom=0.9, sqr_mom=0.999, eps=1e-8)(p_ours),
        'torch.optim.Adam (defaults)': torch.optim.Adam(p_torch, lr=1e-3),
        'torch.optim.Adam (foreach=True)': torch.optim.Adam(p_fe, lr=1e-3, foreach=True),
    }
    print(f'model: resnet18 parameters, {n / 1e6:.2f}M in {len(p_ours)} tensors, float32, device {device}, '
          f'{torch.get_num_threads()} CPU threads, torch {torch.__version__}')
    print(f'torch.optim.Adam with its defaults uses: {torch_impl(p_torch)}')

    with torch.no_grad():
        for opt in opts.values():
            for _ in range(a.warmup): opt.step()
        for name, ps in (('torch defaults', p_torch), ('torch foreach', p_fe)):
            # float32: rtol 1e-5, plus an atol of 1e-4 of one step (lr) for weights that pass near zero
            if not all(torch.allclose(p, q, rtol=1e-5, atol=1e-7) for p, q in zip(p_ours, ps)):
                diff = max((p - q).abs().max().item() for p, q in zip(p_ours, ps))
                sys.exit(f'bench_adam: ours and {name} differ after {a.warmup} steps (max abs diff {diff:.2e})')
        diff = max((p - q).abs().max().item() for p, q in zip(p_ours, p_torch))
        print(f'same weights after {a.warmup} warm-up steps (max absolute difference {diff:.1e}; a step is ~1e-3)')

        times = {k: [] for k in opts}
        names = list(opts)
        for r in range(a.repeats):
            order = names if r % 2 == 0 else names[::-1]
            for k in order: times[k].append(time_steps(opts[k], a.steps, device))

    print(f'\n{"optimizer":34} {"median ms":>10} {"min ms":>9} {"max ms":>9}   (one step, {a.repeats} repeats x {a.steps} steps)')
    for k, ts in times.items():
        print(f'{k:34} {statistics.median(ts) * 1e3:10.2f} {min(ts) * 1e3:9.2f} {max(ts) * 1e3:9.2f}')
    ratio = statistics.median(times['ours (adam_opt)']) / statistics.median(times['torch.optim.Adam (defaults)'])
    print(f'ratio={ratio:.3f}')


if __name__ == '__main__':
    main()
