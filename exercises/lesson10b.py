"""Lesson 10b's exercises: MixUp and CutMix called as the Learner calls them (on a stand-in runner), their loss
against λ·CE(y) + (1-λ)·CE(y[perm]) computed here, label smoothing against F.cross_entropy(label_smoothing=ε),
CutMix's boxes against their definition"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from exercises import close, equal, exercise, expect


class _Run:
    "A stand-in runner: just the attributes a batch callback reads and writes"
    def __init__(self, **kw): self.__dict__.update(kw)


def _begin_batch(cb, xb, yb, seed):
    "Call `cb.begin_batch()` on a training batch, as the Learner does; seeded, without touching the global RNG"
    run = _Run(xb=xb.clone(), yb=yb.clone(), in_train=True)
    cb.set_runner(run)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        cb.begin_batch()
    return run


def _set(cb, name, what):
    "The attribute `name` the student's callback set on itself"
    v = vars(cb).get(name)
    expect(v is not None, f'your `{what}` does not set `self.{name}` (the loss reads it)')
    return v


def _partners(cb, what, bs):
    "The partners' targets `yb1`: with targets 0..bs-1 they are the partners' indices"
    yb1 = _set(cb, 'yb1', what)
    expect(sorted(torch.as_tensor(yb1).tolist()) == list(range(bs)),
           f'your `{what}` sets yb1 to {torch.as_tensor(yb1).tolist()} for targets 0..{bs - 1}, expected the '
           'targets of a shuffled batch (each image\'s partner)')
    expect(not torch.equal(yb1, torch.arange(bs)),
           f'your `{what}` pairs every image with itself: draw the partners with a random permutation')
    return yb1


@exercise('10b.1')
def mixup_batch(MixUp):
    "The mixed batch, against λ·x + (1-λ)·x[partner] computed here from the λ and the partners the callback keeps"
    bs = 8
    x, y = torch.rand(bs, 3, 4, 4, generator=torch.Generator().manual_seed(0)), torch.arange(bs)
    cb = MixUp(0.4)
    run = _begin_batch(cb, x, y, seed=0)
    λ = _set(cb, 'λ', 'MixUp.begin_batch')
    equal('the shape of the λ your `MixUp.begin_batch` draws for a batch of 8', tuple(λ.shape), (bs,))
    expect(bool(((λ >= 0.5) & (λ <= 1)).all()), f'the λ your `MixUp.begin_batch` draws are {λ.tolist()}, expected '
           'values in [0.5, 1] (sample_λ gives them)')
    expect(λ.unique().numel() > 1, 'your `MixUp.begin_batch` uses one λ for the whole batch, expected one per image')
    yb1 = _partners(cb, 'MixUp.begin_batch', bs)
    l4 = λ.view(-1, 1, 1, 1)
    close('your mixed batch (run.xb) for a (8, 3, 4, 4) batch', run.xb, l4 * x + (1 - l4) * x[yb1], atol=1e-6,
          note=' (λ·x + (1-λ)·x[perm], one λ per image, the image itself weighted by λ ≥ 0.5)')


@exercise('10b.2')
def mixup_loss(MixUp):
    "The mixed loss for a given per-item λ and partners, against λ·CE(y) + (1-λ)·CE(y[perm]) reduced as the loss was"
    g = torch.Generator().manual_seed(1)
    pred, y = torch.randn(6, 4, generator=g) * 2, torch.randint(0, 4, (6,), generator=g)
    perm, λ = torch.tensor([3, 0, 5, 1, 2, 4]), torch.tensor([0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    direct = (λ * F.cross_entropy(pred, y, reduction='none')
              + (1 - λ) * F.cross_entropy(pred, y[perm], reduction='none'))
    for loss_func, name, red in ((nn.CrossEntropyLoss(), 'nn.CrossEntropyLoss()', 'mean'),
                                 (nn.CrossEntropyLoss(reduction='sum'), "nn.CrossEntropyLoss(reduction='sum')", 'sum'),
                                 (F.cross_entropy, 'F.cross_entropy', 'mean')):
        cb = MixUp()
        cb.set_runner(_Run(in_train=True, loss_func=cb.loss_func_mix, pred=pred, yb=y))
        cb.old_loss_func, cb.λ, cb.perm, cb.yb1 = loss_func, λ, perm, y[perm]
        got = cb.loss_func_mix(pred, y)
        close(f'your `MixUp.loss_func_mix` with {name}, λ = (0.5, 0.6, ..., 1) for 6 items', got,
              direct.mean() if red == 'mean' else direct.sum(), atol=1e-6,
              note=f' (λ·CE(pred, y) + (1-λ)·CE(pred, y[perm]) per item, then the {red})')
        if isinstance(loss_func, nn.Module):
            equal(f'the reduction of {name} after your `MixUp.loss_func_mix`', loss_func.reduction, red)


@exercise('10b.3')
def label_smoothing(LabelSmoothingCrossEntropy):
    "Values for each ε and reduction, and the gradient, against F.cross_entropy(label_smoothing=ε)"
    g = torch.Generator().manual_seed(2)
    out, targ = torch.randn(10, 5, generator=g) * 3, torch.randint(0, 5, (10,), generator=g)
    for ε in (0., 0.1, 0.3):
        for red in ('mean', 'sum', 'none'):
            close(f'your `LabelSmoothingCrossEntropy(ε={ε}, reduction={red!r})` on (10, 5) logits',
                  LabelSmoothingCrossEntropy(ε, red)(out, targ),
                  F.cross_entropy(out, targ, reduction=red, label_smoothing=ε), atol=1e-5,
                  note=f' (F.cross_entropy with label_smoothing={ε})')
    a, b = out.clone().requires_grad_(), out.clone().requires_grad_()
    LabelSmoothingCrossEntropy(0.2)(a, targ).backward()
    F.cross_entropy(b, targ, label_smoothing=0.2).backward()
    close('the gradient of your `LabelSmoothingCrossEntropy(ε=0.2)`', a.grad, b.grad, atol=1e-6,
          note=' (F.cross_entropy with label_smoothing=0.2)')


def _box_rows(rows):
    "(bs,) True where the True entries of each row of `rows` (bs, n) are one contiguous run (or none)"
    idx = torch.arange(rows.shape[1])
    first = torch.where(rows, idx, rows.shape[1]).min(1).values
    last = torch.where(rows, idx, -1).max(1).values
    return (last - first + 1 == rows.sum(1)) | ~rows.any(1)


@exercise('10b.4')
def cutmix_boxes(box_masks):
    "400 masks for two λ, against the definition: one box each, sides √(1-λ) of the image's, at random places"
    h, w, n = 20, 30, 200
    λ = torch.cat([torch.full((n,), 0.7), torch.full((n,), 0.9)])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        m = box_masks(λ, h, w)
    equal('the shape of your `box_masks` for 400 images of 20×30', tuple(m.shape), (2 * n, h, w))
    equal('the dtype of your `box_masks`', m.dtype, torch.bool)
    rows, cols = m.any(2), m.any(1)
    one_box = (m == (rows[:, :, None] & cols[:, None, :])).flatten(1).all(1) & _box_rows(rows) & _box_rows(cols)
    if not one_box.all():
        i = int((~one_box).nonzero()[0])
        expect(False, f'your `box_masks` mask {i} (λ={λ[i].item():.2f}) is not one axis-aligned box')
    nr, nc = rows.sum(1), cols.sum(1)
    inside = nr.bool() & ~rows[:, 0] & ~rows[:, -1] & ~cols[:, 0] & ~cols[:, -1]      # touches no border: not clipped
    for lam in (0.7, 0.9):
        sel = inside & (λ == lam)
        expect(bool(sel.any()), f'your `box_masks` draws no box inside the 20×30 image for λ={lam}: each touches a border')
        side_h, side_w = math.sqrt(1 - lam) * h, math.sqrt(1 - lam) * w
        ok = ((nr[sel] >= math.floor(side_h)) & (nr[sel] <= math.ceil(side_h))
              & (nc[sel] >= math.floor(side_w)) & (nc[sel] <= math.ceil(side_w)))
        if not ok.all():
            i = int(sel.nonzero()[(~ok).nonzero()[0]])
            expect(False, f'your `box_masks` draws a box of {int(nr[i])}×{int(nc[i])} pixels for λ={lam} in a 20×30 '
                   f'image, expected about {side_h:.3g}×{side_w:.3g} (each side √(1-λ) of the image\'s: '
                   'area (1-λ)·h·w)')
    expect(bool(m.any(0).all()), 'your `box_masks` never covers some pixels in 400 draws (the corners?): '
           'expected the box centre uniform over the image')
    equal('the number of pixels in your `box_masks` for λ=1', int(box_masks(torch.ones(4), 8, 8).sum()), 0)


@exercise('10b.5')
def cutmix_batch(CutMix):
    "The pasted batch of images numbered 0..15: every pixel its own or its partner's, the pasted part a box, λ the share kept"
    bs, h, w = 16, 8, 8
    ids = torch.arange(bs, dtype=torch.float32)[:, None, None, None].expand(bs, 3, h, w).clone()
    y = torch.arange(bs)
    cb = CutMix()
    run = _begin_batch(cb, ids, y, seed=1)
    yb1 = _partners(cb, 'CutMix.begin_batch', bs)
    λ = _set(cb, 'λ', 'CutMix.begin_batch')
    xb, uses = run.xb, ' (it uses your `box_masks` too)'
    equal('the shape of your CutMix batch', tuple(xb.shape), (bs, 3, h, w))
    own, theirs = xb == ids, xb == ids[yb1]
    expect(bool((own | theirs).all()), 'your CutMix batch has pixels that come from neither the image nor its partner '
           '(images filled with their index 0..15; it uses your `box_masks` too)')
    moved = yb1 != y
    own = own[moved]
    expect(bool((own == own[:, :1]).all()), 'your CutMix batch pastes different pixels in different channels' + uses)
    pasted = ~own[:, 0]
    expect(bool(pasted.any()), 'your `CutMix.begin_batch` pastes nothing into any of 16 images' + uses)
    rows, cols = pasted.any(2), pasted.any(1)
    expect(bool(((pasted == (rows[:, :, None] & cols[:, None, :])).flatten(1).all(1)
                 & _box_rows(rows) & _box_rows(cols)).all()),
           'your CutMix batch has a pasted region that is not one box' + uses)
    equal('the shape of the λ your `CutMix.begin_batch` sets', tuple(λ.shape), (bs,))
    close('the λ of your `CutMix.begin_batch` for the images with a partner', λ[moved],
          own[:, 0].flatten(1).float().mean(1), atol=1e-6,
          note=' (the share of its own pixels each image kept, which weighs its own target in the loss; '
               'it uses your `box_masks` too)')
