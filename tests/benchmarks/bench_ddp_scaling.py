#!/usr/bin/env python
"""Benchmark: training images per second of train_imagenette.py with 2 gloo processes ÷ 1 process.

Both runs go through torchrun (`--standalone`, 127.0.0.1), one thread per process (OMP_NUM_THREADS=1), the
same subset, arch, image size and global batch size, one epoch each; the images/s are those the script
reports for its training phase (its `final:` line: training images ÷ seconds of the training phase, data
loading included). With 2 processes each does half the work per step plus an all-reduce of the
gradients, so on a machine with 2 free cores the ideal is 2. The last line is

    ratio=<images/s with 2 processes / with 1>

With `--sync-bn` it measures the cost of batch-norm statistics over both processes instead (`DistBatchNorm` on
gloo: one all-gather per batch norm in the forward, one all-reduce in the backward):

    ratio=<images/s with 2 processes and --sync-bn / with 2 processes without>

Usage: python tests/benchmarks/bench_ddp_scaling.py [--arch xresnet18] [--size 64] [--n-train 512] [--bs 32]
                                                    [--sync-bn]
"""
import argparse, os, re, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def run(nproc, a, extra=()):
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1', 'GLOO_SOCKET_IFNAME': 'lo',
           'PYTHONPATH': str(ROOT)}
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', str(nproc),
           str(ROOT / 'train_imagenette.py'), '--arch', a.arch, '--size', str(a.size), '--bs', str(a.bs),
           '--epochs', '1', '--n-classes', '10', '--n-train', str(a.n_train), '--n-valid', str(a.bs * 2),
           '--workers', '0', *extra]
    if a.data: cmd += ['--data', a.data]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    if r.returncode != 0: sys.exit(f'{nproc} process(es) failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}')
    return float(re.search(r'images_per_s=([\d.]+)', r.stdout).group(1))


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--arch', default='xresnet18'); p.add_argument('--size', type=int, default=64)
    p.add_argument('--n-train', type=int, default=512); p.add_argument('--bs', type=int, default=32)
    p.add_argument('--data', default=None, help='Imagenette folder (default: the dataset helpers)')
    p.add_argument('--sync-bn', action='store_true', help='compare 2 processes with --sync-bn against 2 without')
    a = p.parse_args()
    if a.sync_bn: speeds = {'2 processes': run(2, a), '2 processes, --sync-bn': run(2, a, ['--sync-bn'])}
    else: speeds = {'1 process': run(1, a), '2 processes': run(2, a)}
    print(f'{a.arch}, {a.n_train} training images at {a.size} px, global batch {a.bs}, gloo, 1 thread per process, '
          f'{os.cpu_count()} cores on this machine')
    for n, s in speeds.items(): print(f'{n + ":":24s}{s:8.1f} images/s')
    first, second = speeds.values()
    print(f'ratio={second / first:.3f}')

if __name__ == '__main__':
    main()
