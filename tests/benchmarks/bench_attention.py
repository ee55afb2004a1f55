#!/usr/bin/env python
"""Benchmark: lesson 13a's `MultiHeadAttention` against PyTorch's `nn.MultiheadAttention`. Forward + backward
of self-attention with a key padding mask (a few trailing pads per sentence) on (bs, len, d) inputs, both
modules with the same weights (ours copied from theirs by `copy_mha`), dropout 0, training mode.

Both return the attention weights: ours its (bs, heads, len, len) weights (the plain path), theirs its
default call (`need_weights=True`: the weights averaged over the heads). Our `use_sdpa=True` path (no weights,
`F.scaled_dot_product_attention`) is timed too, and PyTorch's `need_weights=False` call (which uses SDPA);
they are printed on a line of their own, not in the ratio. Before timing, every output is checked equal to
PyTorch's on the real positions. Each repeat times STEPS passes of each, in an order that rotates from repeat
to repeat; the table gives one pass (median, min, max over the repeats), the last line is

    ratio=<ours (plain path) / nn.MultiheadAttention (need_weights=True)>

Usage: python tests/benchmarks/bench_attention.py [--steps 5] [--repeats 7] [--bs 64] [--len 20] [--d 256]
       [--heads 8] [--pads 3] [--device cpu|cuda|mps] [--threads 1]
"""
import argparse, copy, statistics, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))   # the repository root, for `exp`

import torch
from torch import nn

from exp.nb_13a import MultiHeadAttention, copy_mha
from _timing import time_passes   # this folder's shared timing helpers


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--steps', type=int, default=5)
    ap.add_argument('--repeats', type=int, default=7)
    ap.add_argument('--bs', type=int, default=64)
    ap.add_argument('--len', type=int, default=20)
    ap.add_argument('--d', type=int, default=256)
    ap.add_argument('--heads', type=int, default=8)
    ap.add_argument('--pads', type=int, default=3, help='at most this many trailing pads per sentence')
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--threads', type=int, default=1)
    args = ap.parse_args(argv)
    for name in ('steps', 'repeats', 'bs', 'len', 'd', 'heads', 'threads'):
        if getattr(args, name) < 1: ap.error(f'--{name} must be at least 1, got {getattr(args, name)}')
    if args.d % args.heads: ap.error(f'--d {args.d} is not a multiple of --heads {args.heads}')
    if not 0 <= args.pads < args.len: ap.error(f'--pads must be in 0..{args.len - 1}, got {args.pads}')
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    torch.manual_seed(0)
    theirs = nn.MultiheadAttention(args.d, args.heads, dropout=0., batch_first=True).to(device).train()
    with torch.no_grad(): theirs.in_proj_bias.normal_(0, 0.1); theirs.out_proj.bias.normal_(0, 0.1)
    ours = copy_mha(MultiHeadAttention(args.d, args.heads, dropout=0.).to(device), theirs).train()
    sdpa = copy.deepcopy(ours); sdpa.use_sdpa = True
    theirs_nw = copy.deepcopy(theirs)                 # its own parameters: the gradients are not shared
    x = torch.randn(args.bs, args.len, args.d, device=device)
    n_pads = torch.randint(0, args.pads + 1, (args.bs,))
    pad = (torch.arange(args.len)[None] >= (args.len - n_pads)[:, None]).to(device)   # True at the pads
    g = torch.randn(args.bs, args.len, args.d, device=device)

    with torch.no_grad():
        ref, ref_w = theirs(x, x, x, key_padding_mask=pad)
        out, w = ours(x, pad_mask=pad)
        real = ~pad
        diffs = {'ours': (out - ref)[real].abs().max().item(), 'ours weights': (w.mean(1) - ref_w).abs().max().item(),
                 'ours use_sdpa': (sdpa(x, pad_mask=pad)[0] - ref)[real].abs().max().item(),
                 'theirs need_weights=False': (theirs_nw(x, x, x, key_padding_mask=pad, need_weights=False)[0]
                                               - ref)[real].abs().max().item()}
    for k, diff in diffs.items():
        if not diff < 1e-4: sys.exit(f'bench_attention: {k} differs from nn.MultiheadAttention by {diff:.2e}')

    def step(m, call):
        def f():
            m.zero_grad(set_to_none=True)
            (call()[0] * g).sum().backward()
        return f
    fs = {'MultiHeadAttention': step(ours, lambda: ours(x, pad_mask=pad)),
          'nn.MultiheadAttention': step(theirs, lambda: theirs(x, x, x, key_padding_mask=pad)),
          'MultiHeadAttention use_sdpa': step(sdpa, lambda: sdpa(x, pad_mask=pad)),
          'nn.MHA need_weights=False': step(theirs_nw, lambda: theirs_nw(x, x, x, key_padding_mask=pad,
                                                                          need_weights=False))}
    names = list(fs)
    for f in fs.values():
        for _ in range(2): f()                    # warm-up
    times = {k: [] for k in fs}
    for r in range(args.repeats):
        order = names[r % len(names):] + names[:r % len(names)]       # interleaved, each takes each place
        for k in order: times[k].append(time_passes(fs[k], args.steps, device))

    print(f'self-attention forward+backward, x {args.bs}x{args.len}x{args.d}, {args.heads} heads, key padding '
          f'mask (0-{args.pads} pads per sentence, {int(pad.sum())} in all); device {device}, {args.threads} '
          f'thread(s); {args.repeats} repeats of {args.steps} passes')
    print(f"{'':28s} {'median ms':>10s} {'min ms':>8s} {'max ms':>8s}")
    for k, ts in times.items():
        print(f'{k:28s} {statistics.median(ts)*1e3:10.2f} {min(ts)*1e3:8.2f} {max(ts)*1e3:8.2f}')
    med = {k: statistics.median(ts) for k, ts in times.items()}
    print(f"use_sdpa=True: {med[names[2]]*1e3:.2f} ms, ratio vs nn.MultiheadAttention "
          f"{med[names[2]] / med[names[1]]:.3f} (vs its need_weights=False: {med[names[2]] / med[names[3]]:.3f})")
    print(f'ours={med[names[0]]*1e3:.2f} ms theirs={med[names[1]]*1e3:.2f} ms')
    print(f'ratio={med[names[0]] / med[names[1]]:.3f}')


if __name__ == '__main__':
    main()
