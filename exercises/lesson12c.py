"Lesson 12c's exercises, checked against rows, flags and poolings computed by hand in the checks"
import torch
from torch import nn

from exercises import close, equal, expect, exercise


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@exercise('12c.1')
def match_embeds_rows(match_embeds):
    "A small language model's state dict for a new vocabulary: each row key rebuilt word by word, the rest unchanged"
    old_vocab = ['xxunk', 'xxpad', 'the', 'movie', 'house', 'cat']
    new_vocab = ['xxunk', 'xxpad', 'movie', 'dog', 'house', 'film', 'the']
    emb = _randn(6, 3, seed=1)
    old = {'0.emb.weight': emb, '0.emb_dp.emb.weight': emb.clone(),
           '0.rnns.0.module.weight_ih_l0': _randn(6, 3, seed=2),          # 6 rows too, but not a word's row
           '1.decoder.weight': emb.clone(), '1.decoder.bias': _randn(6, seed=3)}
    before = {k: v.clone() for k, v in old.items()}
    new = match_embeds(old, old_vocab, new_vocab)
    expect(isinstance(new, dict), f'your `match_embeds` returns a {type(new).__name__}, expected a dict (a state dict)')
    equal('the keys of the state dict from your `match_embeds`', sorted(new), sorted(old))
    for k in ('0.emb.weight', '0.emb_dp.emb.weight', '1.decoder.weight', '1.decoder.bias'):
        o = before[k]
        equal(f'the number of rows of {k!r} from your `match_embeds`', len(new[k]), len(new_vocab),
              note=' (one per word of the new vocabulary)')
        for i, w in enumerate(new_vocab):
            if w in old_vocab:
                close(f'your `match_embeds` row {i} ({w!r}) of {k!r}', new[k][i], o[old_vocab.index(w)],
                      note=f" (its row {old_vocab.index(w)} in the old vocabulary)")
            else:
                close(f'your `match_embeds` row {i} ({w!r}, a new word) of {k!r}', new[k][i], o.mean(0),
                      note=' (the mean of the old rows)')
    close("your `match_embeds` '0.rnns.0.module.weight_ih_l0'", new['0.rnns.0.module.weight_ih_l0'],
          before['0.rnns.0.module.weight_ih_l0'], atol=0, rtol=0,
          note=" (a key not ending in emb.weight, decoder.weight or decoder.bias stays as it is)")
    for k, v in before.items():
        close(f'the old state dict\'s {k!r} after your `match_embeds`', old[k], v, atol=0, rtol=0,
              note=' (old_wgts must not be changed: return a new dict)')


@exercise('12c.2')
def freeze_groups(freeze_to):
    "requires_grad and grads of every parameter of 4 groups after a sequence of freeze_to calls, against the rule"
    groups = [[nn.Parameter(torch.ones(2)) for _ in range(k)] for k in (2, 1, 3, 2)]
    for p in (q for g in groups for q in g): p.requires_grad_(False)           # everything frozen to begin with
    for n in (1, 3, 4, 2, 1):
        for p in (q for g in groups for q in g): p.grad = torch.full_like(p, 0.5)   # gradients of a previous step
        freeze_to(groups, n)
        for i, g in enumerate(groups):
            train = i >= len(groups) - n
            for j, p in enumerate(g):
                what = f'your `freeze_to(groups, {n})` (4 groups)'
                expect(p.requires_grad == train,
                       f'{what} leaves parameter {j} of group {i} with requires_grad={p.requires_grad}, expected {train} '
                       f'(the last {n} of the 4 groups train)')
                expect(train or p.grad is None,
                       f'{what} leaves a gradient on parameter {j} of the frozen group {i}: set its grad to None '
                       "(a stale gradient would still move it through Adam's averages and weight decay)")


@exercise('12c.3')
def concat_pool(masked_concat_pool):
    "[last token, max, mean] over each row's tokens, computed row by row; whatever sits at the pads is ignored"
    bs, sl, n = 4, 6, 3
    out = _randn(bs, sl, n, seed=4)
    lengths = torch.tensor([6, 2, 4, 1])
    for i, ln in enumerate(lengths.tolist()): out[i, ln:] = 1e3 * (-1) ** i     # pads hold big values, + and -
    got = masked_concat_pool(out, lengths)
    setting = f'outputs of shape ({bs}, {sl}, {n}) with lengths {lengths.tolist()}'
    equal(f'the shape of your `masked_concat_pool` for {setting}', tuple(got.shape), (bs, 3 * n))
    for part, name in enumerate(('output at the last token', 'max over the tokens', 'mean over the tokens')):
        want = []
        for i, ln in enumerate(lengths.tolist()):
            r = out[i, :ln]
            want.append((r[-1], r.max(0).values, r.mean(0))[part])
        close(f'your `masked_concat_pool` {name} (columns {part * n}-{part * n + n - 1}) for {setting}',
              got[:, part * n:(part + 1) * n], torch.stack(want), atol=1e-5,
              note=' (the pads left out)' if part else ' (at lengths - 1, not the last column)')
