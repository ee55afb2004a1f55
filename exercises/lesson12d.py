"Lesson 12d's exercises, checked against the lesson's rules for ranks, computed by hand in the checks"
import math

import numpy as np
import torch

from exercises import close, equal, expect, exercise


@exercise('12d.1')
def sharded_lm_items(ShardedLMDataset):
    "Every item of every rank on a stream of integers: rank r reads rows r*bs..(r+1)*bs-1 of the bs*world rows"
    lens, bs, world, bptt = [17, 30, 8, 25, 41, 12, 19], 2, 3, 4
    docs, starts = [], np.cumsum([0] + lens)
    for a, b in zip(starts[:-1], starts[1:]): docs.append(np.arange(a, b))   # token id = its place in the stream
    total = int(starts[-1])
    n = total // (bs * world)                                               # tokens per row of the one stream
    for rank in range(world):
        ds = ShardedLMDataset(docs, bs, bptt, rank, world)
        setting = f'rank {rank} of {world}, bs={bs}, bptt={bptt}, a stream 0..{total - 1} in {bs * world} rows of {n}'
        for i in range(len(ds)):
            row, k = rank * bs + i % bs, i // bs
            start = row * n + k * bptt
            x, y = ds[i]
            close(f'your `ShardedLMDataset` item {i} x ({setting})', x, torch.arange(start, start + bptt), atol=0,
                  rtol=0, note=f' (row {row} of the stream, batch {k}: columns {k * bptt}..{k * bptt + bptt - 1})')
            close(f'your `ShardedLMDataset` item {i} y ({setting})', y, torch.arange(start + 1, start + bptt + 1),
                  atol=0, rtol=0, note=' (x shifted by one)')


def _rule(order, bs, rank, world, pad):
    """The lesson's rule, position by position: [(item, None)] for a place of `order`, [(None, allowed items)] for a
    place of the padding (filled with items of the last, short global batch)"""
    gbs, n = bs * world, len(order)
    places = math.ceil(n / gbs) * gbs if pad and world > 1 else n
    tail = order[n - n % gbs:] if n % gbs else []
    return [(order[p], None) if p < n else (None, tail) for p in range(places) if rank * bs <= p % gbs < (rank + 1) * bs]


@exercise('12d.2')
def shard_rule(shard_batches):
    "Each rank's items for orders that do and do not fill the last global batch, with and without padding"
    order = [int(i) for i in torch.randperm(100, generator=torch.Generator().manual_seed(0))[:23] + 100]
    cases = [(order, 3, 2, False), (order, 3, 2, True), (order[:12], 2, 3, True), (order[:12], 2, 3, False),
             (order, 4, 1, True), (order[:5], 2, 3, True), (order[:1], 2, 2, True)]
    for o, bs, world, pad in cases:
        for rank in range(world):
            got = shard_batches(list(o), bs, rank, world, pad)
            want = _rule(o, bs, rank, world, pad)
            what = f'your `shard_batches` for an order of {len(o)} items, bs={bs}, rank={rank}, world={world}, pad={pad}'
            expect(isinstance(got, list), f'{what} returns a {type(got).__name__}, expected a list')
            equal(f'the number of items from {what}', len(got), len(want),
                  note=f' ({len(o)} items in global batches of {bs * world}'
                       + (', the last one filled up)' if pad and world > 1 else ', nothing padded)'))
            fixed = [item for item, _ in want if item is not None]
            equal(what + (' (before its padding)' if len(fixed) < len(want) else ''), got[:len(fixed)], fixed)
            for g in got[len(fixed):]:
                expect(g in want[-1][1], f'{what} pads with {g}, which is not in the last, short global batch '
                                         f'{want[-1][1]}: fill it with its own items (they are of similar lengths)')
