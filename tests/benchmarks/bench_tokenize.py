#!/usr/bin/env python3
"""Lesson 12's tokenization: speed-up of `--workers` processes over one, and the cost of our rules.

1. `TokenizeProcessor` (read the file, pre-rules, spaCy, post-rules) on `--n` IMDB review files with
   one process, then with `--workers` processes (pool start-up included); the outputs must be equal.
2. On the same texts already in memory, one process: our whole tokenizer ÷ spaCy's blank English
   tokenizer alone (`tokenizer.pipe`, token texts collected) — what the rules cost.

Prints a table and ends with `ratio=<1-process time / N-process time>` (the speed-up; the goal on
2 cores is >= 1.7). Every timed run starts from a new tokenizer (spaCy's word cache empty), and
includes building it (in each worker too).

    python tests/benchmarks/bench_tokenize.py                 # 10,000 reviews, 2 workers
    python tests/benchmarks/bench_tokenize.py --n 2000        # a smaller run
"""
import argparse
import os
import time

from coursekit.datasets import URLs, untar_data
import spacy

import exp.nb_12 as nb12
from exp.nb_12 import TokenizeProcessor, read_file, tokenize_texts


def imdb_files(n):
    "`n` review files, taken in turn from train/pos, train/neg, test/pos, test/neg and train/unsup"
    path = untar_data(URLs.IMDB)
    folders = [sorted((path/d).iterdir()) for d in ('train/pos', 'train/neg', 'test/pos', 'test/neg', 'train/unsup')]
    res = [f for group in zip(*folders) for f in group][:n]
    if len(res) < n: raise SystemExit(f'only {len(res)} files available, asked for {n}')
    return res


def cold():
    "Forget the tokenizers built so far: spaCy caches every word it has seen, and forked workers would inherit that"
    nb12._tokenizers.clear()


def timed(f):
    cold()
    t = time.perf_counter()
    res = f()
    return res, time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--n', type=int, default=10_000, help='reviews tokenized (default 10,000)')
    ap.add_argument('--workers', type=int, default=2, help='processes of the parallel run (default 2)')
    ap.add_argument('--chunksize', type=int, default=500, help='texts per chunk sent to a worker')
    args = ap.parse_args()

    files = imdb_files(args.n)
    for f in files: f.read_bytes()                      # both runs find the files in the page cache
    one, t1 = timed(lambda: TokenizeProcessor(chunksize=args.chunksize, max_workers=1, progress=False)(files))
    par, tn = timed(lambda: TokenizeProcessor(chunksize=args.chunksize, max_workers=args.workers, progress=False)(files))
    if par != one: raise SystemExit('the parallel output differs from the serial one')

    texts = [read_file(f) for f in files]
    ours, t_ours = timed(lambda: tokenize_texts(texts))
    plain, t_spacy = timed(lambda: [[t.text for t in d] for d in spacy.blank('en').tokenizer.pipe(texts)])
    if ours != one: raise SystemExit('tokenizing in memory differs from tokenizing the files')

    n_tok = sum(len(t) for t in one)
    load = os.getloadavg()[0] if hasattr(os, 'getloadavg') else float('nan')
    print(f'{args.n:,} IMDB reviews, {n_tok:,} tokens (ours), load average at the end {load:.2f}')
    print(f'{"run":<52} {"seconds":>8} {"reviews/s":>10}')
    print(f'{"TokenizeProcessor, files, 1 process":<52} {t1:8.2f} {args.n / t1:10,.0f}')
    print(f'{f"TokenizeProcessor, files, {args.workers} processes (with start-up)":<52} {tn:8.2f} {args.n / tn:10,.0f}')
    print(f'{"our tokenizer, in memory, 1 process":<52} {t_ours:8.2f} {args.n / t_ours:10,.0f}')
    print(f'{"spaCy blank tokenizer alone, in memory, 1 process":<52} {t_spacy:8.2f} {args.n / t_spacy:10,.0f}')
    print(f'rules cost: ours / spaCy alone = {t_ours / t_spacy:.3f} ({sum(len(p) for p in plain):,} spaCy tokens)')
    print(f'ratio={t1 / tn:.3f}')


if __name__ == '__main__':
    main()
