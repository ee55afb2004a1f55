"Lesson 12's exercises, checked against expected tokens and batch layouts written out by hand in the checks"
import numpy as np
import torch

from exercises import close, equal, expect, exercise

MAJ = 'xxmaj'


@exercise('12.1')
def deal_caps_rule(deal_caps):
    "Each token alone, against the rule written out (capitalised -> xxmaj + lower case), then a list: order kept"
    want = {'The': [MAJ, 'the'], 'Paris': [MAJ, 'paris'], 'I': [MAJ, 'i'], "Don't": [MAJ, "don't"],
            'cat': ['cat'], 'McDonald': ['McDonald'], 'iPhone': ['iPhone'], 'USA': ['USA'], 'xxup': ['xxup'],
            '!': ['!'], '42': ['42'], ',': [',']}
    notes = {'I': ' (a single capital letter is a capitalised word)', 'McDonald': ' (mixed case is kept as it is)',
             'iPhone': ' (mixed case is kept as it is)', 'USA': ' (all caps is the job of replace_all_caps)'}
    for tok, w in want.items():
        equal(f'your `deal_caps([{tok!r}])`', list(deal_caps([tok])), w, note=notes.get(tok, ''))
    toks = ['The', 'movie', 'was', 'set', 'in', 'Paris', ',', 'not', 'in', 'McDonald', "'s", '.']
    equal(f'your `deal_caps({toks})`', list(deal_caps(toks)),
          [MAJ, 'the', 'movie', 'was', 'set', 'in', MAJ, 'paris', ',', 'not', 'in', 'McDonald', "'s", '.'])
    equal('your `deal_caps([])`', list(deal_caps([])), [])


def _docs(lens, step=100):
    "Documents whose token ids say where they come from: doc i holds i*step + 0, 1, 2, ..."
    return [np.arange(i * step, i * step + n) for i, n in enumerate(lens)]


@exercise('12.2')
def lm_batch_layout(LMDataset):
    "`batched` is the stream (documents in order, or a seeded shuffle of whole documents) cut into bs rows"
    lens, bs, bptt = [7, 12, 5, 9, 14, 3, 10], 4, 3
    docs = _docs(lens)
    ds = LMDataset(docs, bs=bs, bptt=bptt)
    stream = torch.from_numpy(np.concatenate(docs)).long()
    n = len(stream) // bs                                              # 60 tokens, 4 rows of 15
    want = torch.stack([stream[r * n:(r + 1) * n] for r in range(bs)])
    got = getattr(ds, 'batched', None)
    expect(isinstance(got, torch.Tensor), f'your `LMDataset.batchify` sets no tensor `self.batched` '
                                          f'(got {type(got).__name__})')
    close(f'your `LMDataset` rows (`batched`) for documents of {lens} tokens, bs={bs}', got, want,
          atol=0, rtol=0, note=f' (row r: stream tokens r*{n} to (r+1)*{n} - 1)')
    equal('the dtype of your `LMDataset` rows (`batched`)', got.dtype, torch.int64)

    # shuffle: whole documents in a new order each epoch, the same order for the same seed
    lens = [5, 8, 3, 11, 6, 9, 4, 7, 10, 2]
    docs, bs = _docs(lens), 3
    total = sum(lens)
    n = total // bs
    a = LMDataset(docs, bs=bs, bptt=2, shuffle=True, seed=1)
    b = LMDataset(docs, bs=bs, bptt=2, shuffle=True, seed=1)
    orders = []
    for epoch in range(4):
        if epoch: a.batchify(); b.batchify()
        flat = a.batched.flatten().tolist()
        equal(f'the shape of your `LMDataset` rows with shuffle=True, epoch {epoch}', tuple(a.batched.shape), (bs, n))
        order = []
        for t in flat:
            if t % 100 == 0: order.append(t // 100)
        want = np.concatenate([docs[i] for i in order] + [d for i, d in enumerate(docs) if i not in order])[:bs * n]
        expect(len(set(order)) == len(order) and flat == want.tolist(),
               f'your `LMDataset` with shuffle=True does not hold whole documents end to end in epoch {epoch} '
               f'(documents of {lens} tokens with ids doc*100 + position; rows flattened: {flat[:20]}...)')
        close(f'your `LMDataset` (shuffle, seed 1) rows of a second dataset with the same seed, epoch {epoch}',
              b.batched, a.batched, atol=0, rtol=0, note=' (the same seed must give the same order)')
        orders.append(order)
    expect(any(o != orders[0] for o in orders[1:]),
           f'your `LMDataset` with shuffle=True gives the document order {orders[0]} in each of 4 epochs: '
           f'`batchify` must draw a new order every time')


@exercise('12.3')
def lm_items(LMDataset):
    "Items against the rule of the lesson, on a stream of integers whose rows are set in the check"
    class Rows(LMDataset):                                # the rows as the lesson lays them out, whatever batchify does
        def batchify(self):
            stream = torch.arange(self.n_batch * self.bs)
            self.batched = stream.view(self.bs, self.n_batch)

    for bs, bptt, total in ((4, 3, 61), (3, 5, 50), (1, 4, 13)):
        ds = Rows([np.arange(total)], bs=bs, bptt=bptt)
        n = total // bs
        n_items = (n - 1) // bptt * bs
        setting = f'bs={bs}, bptt={bptt}, a stream 0..{total - 1} (rows of {n})'
        for i in range(n_items):
            r, k = i % bs, i // bs
            start = r * n + k * bptt
            x, y = ds[i]
            close(f'your `LMDataset` item {i} x ({setting})', x, torch.arange(start, start + bptt), atol=0, rtol=0,
                  note=f' (row {r} of batch {k}: row {r} starts at {r * n}, batch {k} at column {k * bptt})')
            close(f'your `LMDataset` item {i} y ({setting})', y, torch.arange(start + 1, start + bptt + 1), atol=0,
                  rtol=0, note=' (the tokens after those of x: x shifted by one)')


@exercise('12.4')
def padding(pad_collate):
    "Padded batches written out by hand, pads at the end or at the start, for two pad ids"
    seqs = [[5, 6, 7], [8], [9, 10, 11, 12, 13], [14, 15]]
    samples = [(np.array(s, dtype=np.int32), lab) for s, lab in zip(seqs, [1, 0, 3, 2])]
    for pad_idx in (1, 0):
        for pad_first in (False, True):
            x, y = pad_collate(samples, pad_idx=pad_idx, pad_first=pad_first)
            rows = [([pad_idx] * (5 - len(s)) + s) if pad_first else (s + [pad_idx] * (5 - len(s))) for s in seqs]
            setting = f'sequences {seqs} (pad_idx={pad_idx}, pad_first={pad_first})'
            what = f'your `pad_collate` x for {setting}'
            expect(isinstance(x, torch.Tensor), f'{what} is a {type(x).__name__}, expected a tensor')
            close(what, x, torch.tensor(rows), atol=0, rtol=0)
            equal(f'the dtype of your `pad_collate` x for {setting}', x.dtype, torch.long)
            close(f'your `pad_collate` labels (pad_first={pad_first})', y, torch.tensor([1, 0, 3, 2]), atol=0, rtol=0)
    x, _ = pad_collate([(np.array([4, 5]), 0), (np.array([], dtype=np.int64), 1)], pad_idx=1, pad_first=True)
    close('your `pad_collate` x for [[4, 5], []] (pad_idx=1, pad_first=True)', x, torch.tensor([[4, 5], [1, 1]]),
          atol=0, rtol=0, note=' (an empty sequence is a row of pads)')
