#!/usr/bin/env python
"""Benchmark: training tokens per second of `train_text.py pretrain` with 2 gloo processes ÷ 1 process.

Both runs go through torchrun (`--standalone`, 127.0.0.1), one thread per process (OMP_NUM_THREADS=1), on the
same WikiText-2 tokens, with lesson 12b's AWD-LSTM (300/300/2 by default), the same global batch and one epoch
each; the tokens/s are those the script reports on its `final:` line (the global batch's tokens of an epoch ÷
the seconds of its training phase, data loading included, validation not). With 2 processes each does half the
work per step plus an all-reduce of the gradients (the embedding, tied to the decoder, is most of them), so on a
machine with 2 free cores the ideal is 2. The last line is

    ratio=<tokens/s with 2 processes / with 1>

Usage: python tests/benchmarks/bench_text_ddp.py [--n-train-tokens 150000] [--bs 64] [--bptt 70] [--max-vocab 60000]
                                                 [--emb-sz 300] [--n-hid 300] [--n-layers 2]
The first run tokenizes the tokens drawn (lesson 12b's cache), before either timing starts.
"""
import argparse, os, re, subprocess, sys, tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(nproc, a, out):
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1', 'GLOO_SOCKET_IFNAME': 'lo',
           'MASTER_ADDR': '127.0.0.1', 'PYTHONPATH': str(ROOT)}
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', str(nproc),
           str(ROOT / 'train_text.py'), 'pretrain', '--n-train-tokens', str(a.n_train_tokens),
           '--n-valid-tokens', str(a.n_valid_tokens), '--max-vocab', str(a.max_vocab), '--bs', str(a.bs),
           '--bptt', str(a.bptt), '--emb-sz', str(a.emb_sz), '--n-hid', str(a.n_hid), '--n-layers', str(a.n_layers),
           '--epochs', '1', '--threads', '1', '--device', 'cpu', '--no-resume', '--out', str(out), '--name', f'bench{nproc}']
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
    if r.returncode != 0: sys.exit(f'{nproc} process(es) failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}')
    head = next(l for l in r.stdout.splitlines() if l.startswith('pretrain '))
    return float(re.search(r'tokens_per_s=([\d.]+)', r.stdout).group(1)), head


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    for flag, v in (('--n-train-tokens', 150_000), ('--n-valid-tokens', 10_000), ('--max-vocab', 60_000), ('--bs', 64),
                    ('--bptt', 70), ('--emb-sz', 300), ('--n-hid', 300), ('--n-layers', 2)):
        p.add_argument(flag, type=int, default=v)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as out:
        (one, head), (two, _) = run(1, a, out), run(2, a, out)
    print(head)
    print(f'AWD-LSTM {a.emb_sz}/{a.n_hid}/{a.n_layers}, global batch {a.bs}x{a.bptt}, gloo, 1 thread per process, '
          f'{os.cpu_count()} cores on this machine')
    print(f'1 process:   {one:9.1f} tokens/s\n2 processes: {two:9.1f} tokens/s')
    print(f'ratio={two / one:.3f}')

if __name__ == '__main__':
    main()
