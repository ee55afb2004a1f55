"Lesson 14's exercises: co-occurrence counts and PPMI against loops over their definitions, the cosine loss against F.cosine_similarity, top-k against a full stable sort"
import math

import torch
import torch.nn.functional as F

from exercises import close, equal, exercise, finite

D64 = torch.float64


def _gen(seed): return torch.Generator().manual_seed(seed)


def _cooccurrence_loop(ids, n, window):
    "counts[a, b]: the times word b is within `window` tokens of word a, one pair at a time"
    counts = torch.zeros(n, n, dtype=D64)
    for i, a in enumerate(ids):
        for j in range(max(0, i - window), min(len(ids), i + window + 1)):
            if j != i and a >= 0 and ids[j] >= 0: counts[a, ids[j]] += 1
    return counts


@exercise('14.1')
def cooccurrence(cooccurrence_counts):
    "Counts of words within a window of each other, skipped ids (-1) included, against a loop over the token pairs"
    cases = [([0, 1, 2, 1, 0, 3, 3, 4, 1], 1), ([0, 1, 2, 1, 0, 3, 3, 4, 1], 2), ([2, -1, 2, 0, 4, -1, -1, 1, 2, 3, 0], 3),
             ([4, 4, 1, 4], 5)]
    for ids, window in cases:
        got = cooccurrence_counts(ids, 5, window)
        close(f'your `cooccurrence_counts({ids}, 5, window={window})`', got, _cooccurrence_loop(ids, 5, window),
              note=' (counts[i, j]: how often word j is within the window of word i, on either side; ids < 0 skipped)')


def _ppmi_loop(c):
    tot, row = c.sum(), c.sum(1)
    want = torch.zeros_like(c)
    for i in range(len(c)):
        for j in range(len(c)):
            if c[i, j] > 0: want[i, j] = max(0., math.log((c[i, j] / tot) / ((row[i] / tot) * (row[j] / tot))))
    return want


@exercise('14.2')
def ppmi_check(ppmi):
    "PPMI of symmetric count matrices against max(0, log p(i, j) / (p(i) p(j))) computed entry by entry"
    a = torch.tensor([[0., 3., 1.], [3., 2., 0.], [1., 0., 5.]], dtype=D64)
    b = torch.tensor([[4., 1., 0., 2.], [1., 0., 0., 6.], [0., 0., 0., 0.], [2., 6., 0., 1.]], dtype=D64)
    for c, desc in [(a, 'a (3, 3) count matrix'), (b, 'a (4, 4) count matrix whose word 2 never occurs')]:
        got = ppmi(c.clone())
        finite(f'your `ppmi` of {desc}', got)
        close(f'your `ppmi` of {desc}', got, _ppmi_loop(c),
              note=' (max(0, log(p(i, j) / (p(i) p(j)))), 0 where the pair never occurs)')


@exercise('14.3')
def cos_loss_check(cos_loss):
    "Against the mean of 1 - F.cosine_similarity, on vectors of any length, its gradient too; a zero prediction scores 1"
    g = _gen(0)
    pred = torch.randn(6, 10, generator=g, dtype=D64)
    targ = torch.randn(6, 10, generator=g, dtype=D64) * torch.linspace(0.2, 3, 6, dtype=D64)[:, None]
    p1, p2 = pred.clone().requires_grad_(), pred.clone().requires_grad_()
    got = cos_loss(p1, targ)
    want = (1 - F.cosine_similarity(p2, targ, dim=-1)).mean()
    close('your `cos_loss` of (6, 10) predictions and targets scaled by 0.2 to 3', got, want,
          note=' (the mean of 1 - F.cosine_similarity)')
    got.backward(); want.backward()
    close('the gradient of your `cos_loss` with respect to the predictions', p1.grad, p2.grad,
          note=' (autograd of 1 - F.cosine_similarity)')
    close('your `cos_loss` of a prediction 5 times its target', cos_loss(5 * targ, targ), 0., atol=1e-6)
    close('your `cos_loss` of a prediction opposite to its target', cos_loss(-0.5 * targ, targ), 2., atol=1e-6)
    zero = cos_loss(torch.zeros(2, 4, dtype=D64), torch.ones(2, 4, dtype=D64))
    finite('your `cos_loss` of an all-zero prediction', zero)
    close('your `cos_loss` of an all-zero prediction', zero, 1., note=' (a cosine of 0: the lengths clamped at eps)')


@exercise('14.4')
def topk_rows_check(topk_rows):
    "Scores and indices against the first k of a stable descending sort of each whole row, with many ties"
    g = _gen(0)
    cases = [(torch.tensor([[1., 3., 2., 2., 2., 0.], [5., 4., 3., 2., 1., 0.]]), 3, 'rows with a tie at the 3rd place, k=3')]
    cases += [(torch.randint(0, 3, (4, 9), generator=g).float(), k, f'(4, 9) scores of 0, 1 and 2 (many ties), k={k}')
              for k in (1, 4, 9)]
    cases += [(torch.randn(5, 12, generator=g), 5, 'random (5, 12) scores, k=5')]
    for s, k, desc in cases:
        v, j = topk_rows(s.clone(), k)
        vs, js = torch.sort(s, dim=1, descending=True, stable=True)
        for r in range(len(s)):
            equal(f'your `topk_rows` indices of row {r} of {desc}', [int(i) for i in j[r]], js[r, :k].tolist(),
                  note=f' (scores {[round(x, 3) for x in s[r].tolist()]}; largest first, equal scores by lower index)')
        close(f'your `topk_rows` scores of {desc}', v, vs[:, :k])
