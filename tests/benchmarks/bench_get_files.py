#!/usr/bin/env python
"""Benchmark: lesson 08's `get_files` on the whole Imagenette (160 px) tree against simpler listings.

  ours:      get_files(path, image_extensions, recurse=True) -> sorted list of Paths, hidden files skipped
  rglob:     [p for p in Path(path).rglob('*') if p.suffix.lower() in image_extensions]   (the peer)
  os.walk:   os.walk + the same suffix test, plain strings, no Path objects (a floor, for reference)

All three must find the same 13,394 files (checked). Each repeat times the three in a rotating order;
the table gives milliseconds (median, min, max over repeats). The last line is

    ratio=<ours median time / rglob median time>        (lower is better; < 1 means ours is faster)

Usage: python tests/benchmarks/bench_get_files.py [--repeats 7]
Set EXP_MIRROR to the dataset mirror folder if Imagenette is not in the data folder yet.
"""
import argparse, os, statistics, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))   # the repository root, for `exp`

from exp.nb_08 import URLs, untar_data, get_files, image_extensions


def ours(path): return get_files(path, image_extensions, recurse=True)

def rglob(path): return [p for p in Path(path).rglob('*') if p.suffix.lower() in image_extensions]

def walk_strings(path):
    return [os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs
            if os.path.splitext(f)[1].lower() in image_extensions]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--repeats', type=int, default=7, help='timed runs of each listing')
    args = ap.parse_args(argv)
    if args.repeats < 1: ap.error('--repeats must be >= 1')

    path = untar_data(URLs.IMAGENETTE_160)
    peers = [('ours', ours), ('rglob', rglob), ('os.walk', walk_strings)]
    found = {name: f(path) for name, f in peers}      # also warms the OS file-system cache
    counts = {name: len(v) for name, v in found.items()}
    assert len(set(counts.values())) == 1, f'the listings disagree: {counts}'
    assert set(found['ours']) == set(found['rglob']), 'ours and rglob list different files'

    times = {name: [] for name, _ in peers}
    for r in range(args.repeats):
        for name, f in peers[r % 3:] + peers[:r % 3]:
            start = time.perf_counter()
            f(path)
            times[name].append((time.perf_counter() - start) * 1e3)

    print(f'get_files: {counts["ours"]:,} files under {path.name}/, {args.repeats} rotating repeats, '
          f'Python {sys.version.split()[0]}, {os.cpu_count()} CPUs')
    print(f'{"listing":<10}{"median ms":>12}{"min":>10}{"max":>10}')
    for name, v in times.items():
        print(f'{name:<10}{statistics.median(v):>12.1f}{min(v):>10.1f}{max(v):>10.1f}')
    print(f'ratio={statistics.median(times["ours"]) / statistics.median(times["rglob"]):.3f}')


if __name__ == '__main__':
    main()
