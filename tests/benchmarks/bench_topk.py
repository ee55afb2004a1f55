#!/usr/bin/env python3
"""Lesson 14's exact search: `topk_search` (`torch.topk`, then a stable sort of the k kept) against the
first version, which sorted every row of scores whole (a stable full sort) and kept the first k.

Both search the top-`--k` of every key among all the keys, in batches of `--bs` queries, the way
lesson 14 times its word space against itself. The keys are lesson 12b's content words when
`--lm` names a saved model folder (e.g. data/models/wikitext-2-fwd), else `--n` seeded random
vectors of `--dim` dimensions. The two answers must be identical (indices and scores) before
anything is timed. Each repeat times both, alternating which goes first; the table gives the median,
min and max, and the last line is

    ratio=<full sort / topk_search>        (> 1: topk_search is faster)

Usage: python tests/benchmarks/bench_topk.py [--lm DIR] [--n 14113] [--dim 300] [--k 10] [--bs 1024]
                                             [--repeats 5] [--threads 1]
"""
import argparse, statistics, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))   # the repository root, for `exp`

import torch

from exp.nb_14 import content_words, load_word_space, topk_search, unit_rows


def full_sort_search(queries, keys, k=10, bs=1024):
    "The peer: cosine scores of a batch, every row sorted whole (stable), the first k kept"
    q, keys = unit_rows(queries), unit_rows(keys)
    scores, idxs = [], []
    for i in range(0, len(q), bs):
        s, j = torch.sort(q[i:i + bs] @ keys.T, dim=1, descending=True, stable=True)
        scores.append(s[:, :k]); idxs.append(j[:, :k])
    return torch.cat(scores), torch.cat(idxs)


def timed(f):
    start = time.perf_counter()
    f()
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--lm', help="a lesson-12b model folder: search its content words")
    ap.add_argument('--n', type=int, default=14_113, help='random keys when --lm is not given')
    ap.add_argument('--dim', type=int, default=300)
    ap.add_argument('--k', type=int, default=10)
    ap.add_argument('--bs', type=int, default=1024)
    ap.add_argument('--repeats', type=int, default=5)
    ap.add_argument('--threads', type=int, default=1)
    a = ap.parse_args()
    if a.repeats < 1 or a.k < 1: ap.error('--repeats and --k must be at least 1')
    torch.set_num_threads(a.threads)
    if a.lm:
        words = content_words(load_word_space(a.lm))
        keys, what = words.vecs, f'{len(words):,} content words of {a.lm} ({words.vecs.shape[1]} dims)'
    else:
        keys = torch.randn(a.n, a.dim, generator=torch.Generator().manual_seed(0))
        what = f'{a.n:,} random vectors ({a.dim} dims, seed 0)'
    if a.k > len(keys): ap.error(f'--k {a.k} is more than the {len(keys)} keys')

    s_peer, i_peer = full_sort_search(keys, keys, a.k, a.bs)
    s_ours, i_ours = topk_search(keys, keys, a.k, a.bs)
    if not (torch.equal(i_peer, i_ours) and torch.equal(s_peer, s_ours)):
        raise SystemExit('the two searches disagree: nothing timed')

    times = {'full sort': [], 'topk_search': []}
    runs = {'full sort': lambda: full_sort_search(keys, keys, a.k, a.bs),
            'topk_search': lambda: topk_search(keys, keys, a.k, a.bs)}
    for r in range(a.repeats):
        for name in (list(runs) if r % 2 == 0 else list(runs)[::-1]): times[name].append(timed(runs[name]))

    print(f'top-{a.k} of each of {what} among all of them; batches of {a.bs}; {a.threads} thread(s); '
          f'{a.repeats} repeats; answers identical')
    print(f"{'search':<12} {'median s':>9} {'min s':>8} {'max s':>8}")
    for name, ts in times.items():
        print(f'{name:<12} {statistics.median(ts):9.3f} {min(ts):8.3f} {max(ts):8.3f}')
    print(f"ratio={statistics.median(times['full sort']) / statistics.median(times['topk_search']):.3f}")


if __name__ == '__main__':
    main()
