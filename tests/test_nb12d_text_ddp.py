"""Lesson 12d: the text loaders of many ranks (Hypothesis), and the AWD-LSTM under DDP for real (2 gloo ranks).

- `ShardedLMDataset`: rank r's rows are the block r*bs... of the one-process batch of bs*world rows; each row continues
  from batch to batch; over an epoch the ranks together read every token of the stream once, except the tail that
  does not fill a column (< bs*world tokens) and each row's end shorter than a bptt window.
- `ShardedSortishSampler` / `ShardedSortSampler`: every item once across ranks (unpadded), at least once with fewer
  than a global batch repeated (padded), the same number of batches on every rank, each rank's batch a slice of a
  length-sorted global batch.
- `lm_fit_on_ranks`: 2 ranks with b rows each = 1 process with 2b rows to 1e-4 after 2 epochs of Adam with the
  dropouts off (measured: about 2e-7); with all dropouts on (weight dropout, tied weights) the ranks end bit-identical.
"""
import collections

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import exp.nb_12d as lesson
from exp.nb_12d import (Dataset, LMDataset, ShardedLMDataset, ShardedSortSampler, ShardedSortishSampler, flat_params,
                        get_language_model, get_lm_dls, lm_data, rank_clas_dls, rank_lm_dls, shard_batches, wiki_articles, wiki_path)

HYP = dict(deadline=None, database=None, max_examples=60)
pytestmark = pytest.mark.usefixtures('one_thread')


def docs_of(lengths):
    "Documents of consecutive token ids, so every token is unique and its position in the stream is readable"
    out, start = [], 0
    for n in lengths: out.append(np.arange(start, start + n)); start += n
    return out


@settings(**HYP)
@given(lengths=st.lists(st.integers(1, 40), min_size=1, max_size=12), bs=st.integers(1, 4), world=st.integers(1, 3),
       bptt=st.integers(1, 6), shuffle=st.booleans(), seed=st.integers(0, 1000))
def test_sharded_lm_dataset_is_the_one_process_batch(lengths, bs, world, bptt, shuffle, seed):
    docs, total = docs_of(lengths), sum(lengths)
    if total // (bs * world) < 2: return                          # LMDataset refuses fewer than 2 tokens a row
    one = LMDataset(docs, bs * world, bptt, shuffle, seed if shuffle else None)
    ranks = [ShardedLMDataset(docs, bs, bptt, r, world, shuffle, seed if shuffle else None) for r in range(world)]
    for r in ranks: assert len(r) * world == len(one)
    seen = []
    for step in range(len(one) // (bs * world)):
        glob = [one[step * bs * world + j] for j in range(bs * world)]
        for r, ds in enumerate(ranks):
            for j in range(bs):
                x, y = ds[step * bs + j]
                gx, gy = glob[r * bs + j]
                assert torch.equal(x, gx) and torch.equal(y, gy)            # rank r's rows: the block r*bs ...
                seen += x.tolist()
                if step: assert x[0] == ds[(step - 1) * bs + j][1][-1]     # the row continues from the last batch
    assert len(seen) == len(set(seen))                                     # no token read twice
    n_row = total // (bs * world)
    assert len(seen) == bs * world * ((n_row - 1) // bptt * bptt)          # the stated remainders only
    assert total - len(seen) < bs * world + bs * world * (bptt + 1)


def test_sharded_lm_dataset_refuses_bad_ranks():
    with pytest.raises(ValueError, match='rank 2 is not in 0..1'): ShardedLMDataset(docs_of([50]), 2, 3, rank=2, world=2)
    with pytest.raises(ValueError, match='shuffle needs a seed'): ShardedLMDataset(docs_of([50]), 2, 3, 0, 2, shuffle=True)


def test_rank_lm_dls_of_one_rank_are_get_lm_dls():
    docs = docs_of([37, 80, 11, 64, 25])
    for a, b in zip(get_lm_dls(docs, docs[:3], 3, 5, seed=4), rank_lm_dls(docs, docs[:3], 3, 5, seed=4)):
        for _ in range(2):                                                 # two epochs: the reshuffled stream too
            batches = list(zip(a, b))
            assert batches and all(torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in batches)


@settings(**HYP)
@given(n=st.integers(0, 120), bs=st.integers(1, 8), world=st.integers(1, 4), seed=st.integers(0, 100),
       epoch=st.integers(0, 3), mb=st.integers(1, 5))
def test_sharded_sortish_sampler(n, bs, world, seed, epoch, mb):
    lens = [(i * 37) % 23 + 1 for i in range(n)]
    key = lambda i: lens[i]
    padded = [ShardedSortishSampler(range(n), key, bs, r, world, mb, seed) for r in range(world)]
    plain = [ShardedSortishSampler(range(n), key, bs, r, world, mb, seed, pad=False) for r in range(world)]
    for s in padded + plain: s.set_epoch(epoch)
    lists, once = [list(s) for s in padded], [list(s) for s in plain]
    if n and world > 1:
        assert len({len(l) for l in lists}) == 1 and len(lists[0]) % bs == 0   # the same whole batches on every rank
        assert sorted(set(i for l in lists for i in l)) == list(range(n))      # every item, at least once
        assert sum(map(len, lists)) - n < bs * world                           # repeats: under one global batch
        short = n % (bs * world)                                               # ... taken from the last global batch
        ks = [min(bs, max(0, short - r * bs)) for r in range(world)]           # each rank's share of it, unpadded
        tail = {i for l, k in zip(once, ks) if k for i in l[len(l) - k:]}
        extra = collections.Counter(i for l in lists for i in l) - collections.Counter(range(n))
        assert set(extra) <= tail, (extra, tail)
    assert sorted(i for l in once for i in l) == list(range(n))                # unpadded: every item exactly once
    for s, l in zip(plain + padded, once + lists): assert len(s) == len(l)
    for l in once:          # a rank's batch is a slice of a length-sorted global batch (the first and last
        for b in range(bs, len(l) - bs, bs):     # may hold the item SortishSampler swaps to put the longest first)
            batch = [lens[i] for i in l[b:b + bs]]
            assert batch == sorted(batch, reverse=True), batch


@settings(**HYP)
@given(n=st.integers(0, 60), bs=st.integers(1, 6), world=st.integers(1, 4))
def test_sharded_sort_sampler_every_item_once_longest_first(n, bs, world):
    lens = [(i * 13) % 17 for i in range(n)]
    got = [list(ShardedSortSampler(range(n), lambda i: lens[i], bs, r, world)) for r in range(world)]
    assert sorted(sum(got, [])) == list(range(n))
    for l in got: assert [lens[i] for i in l] == sorted((lens[i] for i in l), reverse=True)


def test_shard_batches_rule():
    assert shard_batches(list(range(10)), 2, 0, 2, pad=False) == [0, 1, 4, 5, 8, 9]
    assert shard_batches(list(range(10)), 2, 1, 2, pad=True) == [2, 3, 6, 7, 8, 9]       # the last batch's own items
    assert shard_batches(list(range(10)), 2, 0, 1, pad=True) == list(range(10))        # one process: no padding
    assert shard_batches([], 2, 0, 2, pad=True) == []
    with pytest.raises(ValueError, match='rank 3'): ShardedSortishSampler(range(4), len, 2, 3, 2)


def test_rank_clas_dls_share_every_review():
    docs = [np.arange(2, 2 + n) for n in (5, 17, 3, 9, 30, 2, 11, 8, 1, 21, 6)]
    ds = Dataset(docs, list(range(len(docs))))
    loaders = [rank_clas_dls(ds, ds, 2, r, 3) for r in range(3)]
    assert len({len(tr) for tr, _ in loaders}) == 1                            # the same number of training steps
    assert sorted(int(y) for _, va in loaders for _, yb in va for y in yb) == list(range(len(docs)))
    for tr, _ in loaders:
        for xb, yb in tr: assert xb.shape[1] == max(len(docs[int(y)]) for y in yb)    # padded to its longest only


@pytest.fixture(scope='module')
def wiki():
    "15,000 / 5,000 tokens of WikiText-2, a 1,500-word vocabulary (lesson 12d's quick mode: the same cache)"
    arts = {s: wiki_articles(wiki_path('wikitext-2') / f'wiki.{s}.tokens') for s in ('train', 'valid')}
    train, valid, vocab = lm_data(arts['train'], arts['valid'], 15_000, 5_000, 1_500, verbose=False)
    return train, valid, len(vocab)


@pytest.fixture(scope='module')
def two_ranks_no_dropout(wiki, tmp_path_factory):
    "2 ranks x 4 rows, 2 epochs, every dropout off: each rank's (weights, validation history)"
    train, valid, V = wiki
    ck = tmp_path_factory.mktemp('ck') / 'ck.pth'
    return lesson.run_ranks(lesson.lm_fit_on_ranks, train, valid, V, 4, 10, 2, ckpt=ck, world=2, timeout=120)


def test_two_ranks_of_b_rows_equal_one_process_of_2b(wiki, two_ranks_no_dropout, tmp_path):
    train, valid, V = wiki
    (w0, h0), (w1, h1) = two_ranks_no_dropout
    w_one, h_one = lesson.lm_fit_on_ranks(train, valid, V, 8, 10, 2, ckpt=tmp_path / 'ck.pth')
    assert torch.equal(w0, w1)
    assert (w0 - w_one).abs().max() < 1e-4                                   # float tolerance (Adam, 2 epochs)
    torch.manual_seed(0)                                                     # the initial weights (seed 0) ...
    assert (w_one - flat_params(get_language_model(V, 16, 24, 2, 1, *[0.] * 5))).abs().max() > 1e-2   # ... moved
    for (l2, a2), (l1, a1) in zip(h0, h_one): assert abs(l2 - l1) < 1e-4 and abs(a2 - a1) < 1e-4


def test_dropouts_on_ranks_stay_bit_identical(wiki, two_ranks_no_dropout, tmp_path):
    "Weight dropout (raw weights), embedding dropout and the tied decoder: each rank its masks, the same weights"
    train, valid, V = wiki
    (w0, _), (w1, _) = lesson.run_ranks(lesson.lm_fit_on_ranks, train, valid, V, 4, 10, 2, drop=0.3, ckpt=tmp_path / 'ck.pth',
                                        world=2, timeout=120)
    assert torch.equal(w0, w1)
    assert (w0 - two_ranks_no_dropout[0][0]).abs().max() > 1e-3               # the dropouts were on
