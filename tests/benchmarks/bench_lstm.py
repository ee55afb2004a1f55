#!/usr/bin/env python
"""Benchmark: the cost of AWD-LSTM's regularisers. Forward + backward of lesson 12a's `AWD_LSTM` (training
mode: embedding dropout, input and hidden `RNNDropout`, `WeightDropout` on every layer's
hidden-to-hidden weights, run through `torch.func.functional_call`) against the same stack without
them: an `nn.Embedding` and the same one-layer `nn.LSTM`s (same sizes, same weights), called directly.

Both get the same token ids (bs x bptt) and the same loss (the sum of the last layer's output times a
fixed random tensor); before timing, the plain stack's output is checked equal to ours in eval mode
(no dropout), so the two compute the same network. Each repeat times STEPS forward+backward passes of
each, alternating which goes first; the table gives one pass (median, min, max over the repeats), the
last line is

    ratio=<AWD_LSTM (dropouts on) / plain nn.LSTM stack>        (goal: <= 1.3)

Usage: python tests/benchmarks/bench_lstm.py [--steps 3] [--repeats 5] [--bs 64] [--bptt 70]
       [--vocab 10000] [--device cpu|cuda|mps] [--threads 1]
"""
import argparse, statistics, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))   # the repository root, for `exp`

import torch
from torch import nn

from exp.nb_12a import AWD_LSTM, default_device
from _timing import time_passes   # this folder's shared timing helpers


class PlainStack(nn.Module):
    "An embedding and the one-layer nn.LSTMs of `awd`, with copies of its weights, and no dropout"
    def __init__(self, awd):
        super().__init__()
        self.emb = nn.Embedding.from_pretrained(awd.emb.weight.detach().clone(), freeze=False,
                                                padding_idx=awd.emb.padding_idx)
        self.rnns = nn.ModuleList()
        for wd in awd.rnns:
            m = wd.module
            lstm = nn.LSTM(m.input_size, m.hidden_size, 1, batch_first=True)
            lstm.load_state_dict({**{k: v.detach().clone() for k, v in m.state_dict().items()},
                                  'weight_hh_l0': wd.weight_hh_l0_raw.detach().clone()})
            self.rnns.append(lstm)

    def forward(self, x):
        out = self.emb(x)
        for rnn in self.rnns: out, _ = rnn(out)
        return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--steps', type=int, default=3)
    ap.add_argument('--repeats', type=int, default=5)
    ap.add_argument('--bs', type=int, default=64)
    ap.add_argument('--bptt', type=int, default=70)
    ap.add_argument('--vocab', type=int, default=10_000)
    ap.add_argument('--emb', type=int, default=300)
    ap.add_argument('--hid', type=int, default=300)
    ap.add_argument('--layers', type=int, default=2)
    ap.add_argument('--device', default=None)
    ap.add_argument('--threads', type=int, default=1)
    args = ap.parse_args(argv)
    for name in ('steps', 'repeats', 'bs', 'bptt', 'vocab', 'emb', 'hid', 'layers', 'threads'):
        if getattr(args, name) < 1: ap.error(f'--{name} must be at least 1, got {getattr(args, name)}')
    torch.set_num_threads(args.threads)
    device = torch.device(args.device) if args.device else default_device()

    torch.manual_seed(0)
    ours = AWD_LSTM(args.vocab, args.emb, args.hid, args.layers, pad_token=1).to(device)
    plain = PlainStack(ours).to(device)
    x = torch.randint(0, args.vocab, (args.bs, args.bptt), device=device)
    g = torch.randn(args.bs, args.bptt, args.emb, device=device)

    ours.eval(); ours.reset()
    with torch.no_grad():
        diff = (ours(x)[0][-1] - plain(x)).abs().max().item()
    if diff > 1e-4: sys.exit(f'bench_lstm: the plain stack differs from AWD_LSTM in eval mode by {diff:.2e}')
    ours.train()

    def step_ours():
        ours.reset()                          # the same zero state as the plain stack, each pass
        (ours(x)[0][-1] * g).sum().backward()
    def step_plain():
        (plain(x) * g).sum().backward()

    fs = {'AWD_LSTM (dropouts on)': step_ours, 'plain nn.LSTM stack': step_plain}
    for f in fs.values(): f()                 # warm-up
    times = {k: [] for k in fs}
    names = list(fs)
    for r in range(args.repeats):
        for k in (names if r % 2 == 0 else names[::-1]): times[k].append(time_passes(fs[k], args.steps, device))

    print(f'forward+backward, ids {args.bs}x{args.bptt}, vocab {args.vocab}, emb {args.emb}, hidden {args.hid}, '
          f'{args.layers} layers; device {device}, {args.threads} thread(s); {args.repeats} repeats of {args.steps} passes')
    print(f"{'':26s} {'median ms':>10s} {'min ms':>8s} {'max ms':>8s}")
    for k, ts in times.items():
        print(f'{k:26s} {statistics.median(ts)*1e3:10.1f} {min(ts)*1e3:8.1f} {max(ts)*1e3:8.1f}')
    ratio = statistics.median(times[names[0]]) / statistics.median(times[names[1]])
    print(f'ratio={ratio:.3f}')


if __name__ == '__main__':
    main()
