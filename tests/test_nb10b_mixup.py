"""Lesson 10b: label smoothing against PyTorch's, `reduce_loss`/`NoneReduce`, and the MixUp and CutMix callbacks
inside the real `Learner` (the mixed loss against the same mix computed directly, the loss function and its
reduction given back after fit, also when fit raises, validation untouched)."""
import math
from functools import partial

import pytest
import torch
from torch import nn
import torch.nn.functional as F

from exp.nb_00 import test_eq, test_near, test_raises
from exp.nb_03 import get_dls
from exp.nb_08 import DataBunch
from exp.nb_09b import Learner, Callback, CancelFitException
from exp.nb_09 import sgd_opt
from exp.nb_10b import (Γ, beta_pdf, reduce_loss, NoneReduce, LabelSmoothingCrossEntropy, MixUp, CutMix, box_masks)


pytestmark = pytest.mark.usefixtures('one_thread')   # conftest.py: torch on one thread


# ---------------------------------------------------------------- label smoothing

@pytest.mark.parametrize('reduction', ['mean', 'sum', 'none'])
@pytest.mark.parametrize('ε', [0., 0.1, 0.25, 0.9])
def test_label_smoothing_matches_pytorch(reduction, ε):
    g = torch.Generator().manual_seed(0)
    out, targ = torch.randn(50, 7, generator=g) * 4, torch.randint(0, 7, (50,), generator=g)
    ours = LabelSmoothingCrossEntropy(ε, reduction)(out, targ)
    ref = F.cross_entropy(out, targ, reduction=reduction, label_smoothing=ε)
    test_eq(ours.shape, ref.shape)
    test_near(ours, ref, eps=1e-5)


def test_label_smoothing_gradient_matches_pytorch():
    g = torch.Generator().manual_seed(1)
    out, targ = torch.randn(16, 5, generator=g), torch.randint(0, 5, (16,), generator=g)
    a, b = out.clone().requires_grad_(), out.clone().requires_grad_()
    LabelSmoothingCrossEntropy(0.2)(a, targ).backward()
    F.cross_entropy(b, targ, label_smoothing=0.2).backward()
    test_near(a.grad, b.grad, eps=1e-6)


def test_label_smoothing_bad_arguments():
    test_raises(lambda: LabelSmoothingCrossEntropy(1.), ValueError, 'ε must be in [0, 1)')
    test_raises(lambda: LabelSmoothingCrossEntropy(-0.1), ValueError, 'ε must be in [0, 1)')
    test_raises(lambda: LabelSmoothingCrossEntropy(0.1, 'avg'), ValueError, "got 'avg'")


# ---------------------------------------------------------------- Beta density, reductions

def test_gamma_and_beta_density():
    test_near(Γ(torch.arange(1., 8.)), [math.factorial(n - 1) for n in range(1, 8)], eps=1e-9)
    xs = torch.linspace(0.01, 0.99, 99, dtype=torch.float64)
    for α in [0.1, 0.4, 1., 3.]:
        a = torch.tensor(α, dtype=torch.float64)
        test_near(beta_pdf(xs, α), torch.distributions.Beta(a, a).log_prob(xs).exp(), eps=1e-9)


def test_reduce_loss():
    l = torch.tensor([1., 2., 3., 6.])
    test_eq(reduce_loss(l), torch.tensor(3.))
    test_eq(reduce_loss(l, 'sum'), torch.tensor(12.))
    assert reduce_loss(l, 'none') is l
    test_raises(lambda: reduce_loss(l, 'max'), ValueError, "got 'max'")


def test_none_reduce_module_and_function():
    g = torch.Generator().manual_seed(0)
    pred, targ = torch.randn(6, 4, generator=g), torch.randint(0, 4, (6,), generator=g)
    for red in ['mean', 'sum']:
        mod = nn.CrossEntropyLoss(reduction=red)
        with NoneReduce(mod) as lf:
            test_near(lf(pred, targ), F.cross_entropy(pred, targ, reduction='none'), eps=1e-6)
        test_eq(mod.reduction, red)
    with NoneReduce(F.cross_entropy) as lf: test_eq(lf(pred, targ).shape, (6,))
    ls = LabelSmoothingCrossEntropy(0.1, 'sum')
    with NoneReduce(ls) as lf: test_eq(lf(pred, targ).shape, (6,))
    test_eq(ls.reduction, 'sum')


def test_none_reduce_restores_on_error_and_rejects_functions_without_reduction():
    mod = nn.CrossEntropyLoss()
    def body():
        with NoneReduce(mod): raise KeyError('inside')
    test_raises(body, KeyError)
    test_eq(mod.reduction, 'mean')
    def err_rate(pred, targ): return (pred.argmax(-1) != targ).float().mean()
    test_raises(lambda: NoneReduce(err_rate).__enter__(), TypeError, 'err_rate')


# ---------------------------------------------------------------- MixUp / CutMix in the Learner

def tiny_data(n=96, bs=16, seed=0):
    "Images (3, 6, 6) whose class (0..2) is the channel with the largest mean"
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 6, 6, generator=g)
    y = x.mean((2, 3)).argmax(1)
    ds = torch.utils.data.TensorDataset(x, y)
    return DataBunch(*get_dls(ds, ds, bs), c_in=3, c_out=3)

def tiny_learner(loss_func, data=None, **kwargs):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(108, 3))
    return Learner(model, data or tiny_data(), loss_func, lr=0.1, **kwargs)


class Probe(Callback):
    "After MixUp (order 90): records, per batch, what the loss function saw and returned"
    _order = 95
    def begin_fit(self): self.rows = []
    def after_loss(self):
        mix = getattr(self.run, 'mix_up', None) or getattr(self.run, 'cut_mix', None)
        self.rows.append(dict(in_train=self.in_train, xb=self.xb.clone(), yb=self.yb.clone(),
                              pred=self.pred.detach().clone(), loss=self.loss.detach().clone(),
                              λ=mix.λ.clone() if self.in_train else None,
                              perm=mix.perm.clone() if self.in_train else None))


@pytest.mark.parametrize('reduction', ['mean', 'sum'])
@pytest.mark.parametrize('cls', [MixUp, CutMix])
def test_mixed_loss_equals_direct_mix(cls, reduction):
    loss_mod = nn.CrossEntropyLoss(reduction=reduction)
    learn, probe = tiny_learner(loss_mod), Probe()
    torch.manual_seed(1)
    learn.fit(1, cbs=[cls(0.4), probe])
    train_rows = [r for r in probe.rows if r['in_train']]
    assert len(train_rows) == len(learn.data.train_dl)
    for r in train_rows:
        λ, perm = r['λ'], r['perm']
        assert (λ >= 0.5 - 1e-6).all() and (λ <= 1).all()
        direct = (λ * F.cross_entropy(r['pred'], r['yb'], reduction='none')
                  + (1 - λ) * F.cross_entropy(r['pred'], r['yb'][perm], reduction='none'))
        test_near(r['loss'], direct.mean() if reduction == 'mean' else direct.sum(), eps=1e-5)
    assert learn.loss_func is loss_mod and loss_mod.reduction == reduction


class Originals(Callback):
    "Before MixUp (order 90): keeps each training batch as the data loader gave it"
    _order = 80
    def begin_fit(self): self.xbs = []
    def begin_batch(self):
        if self.in_train: self.xbs.append(self.xb.clone())

def test_mixup_mixes_inputs_per_item():
    learn, probe, orig = tiny_learner(nn.CrossEntropyLoss()), Probe(), Originals()
    torch.manual_seed(2)
    learn.fit(1, cbs=[MixUp(0.4), probe, orig])
    rows = [r for r in probe.rows if r['in_train']]
    for r, x in zip(rows, orig.xbs):
        λ, perm = r['λ'], r['perm']
        assert λ.unique().numel() > 1                                   # one λ per item
        assert sorted(perm.tolist()) == list(range(len(λ)))             # partners: a shuffle of the batch
        test_near(r['xb'], λ[:, None, None, None] * x + (1 - λ[:, None, None, None]) * x[perm], eps=1e-6)


def test_validation_untouched():
    learn, probe = tiny_learner(nn.CrossEntropyLoss()), Probe()
    learn.fit(1, cbs=[MixUp(0.4), probe])
    valid = [r for r in probe.rows if not r['in_train']]
    assert valid
    vx = torch.cat([xb for xb, _ in learn.data.valid_dl])
    test_eq(torch.cat([r['xb'] for r in valid]), vx)
    for r in valid: test_near(r['loss'], F.cross_entropy(r['pred'], r['yb']), eps=1e-6)


class Boom(Callback):
    def after_batch(self):
        if self.n_iter >= 2: raise RuntimeError('boom')

@pytest.mark.parametrize('cls', [MixUp, CutMix])
def test_loss_func_and_reduction_restored_when_fit_raises(cls):
    loss_mod = nn.CrossEntropyLoss()
    learn = tiny_learner(loss_mod)
    test_raises(lambda: learn.fit(2, cbs=[cls(), Boom()]), RuntimeError, 'boom')
    assert learn.loss_func is loss_mod
    test_eq(loss_mod.reduction, 'mean')


def test_loss_func_restored_after_cancelled_fit_with_function_loss():
    class Stop(Callback):
        def after_step(self): raise CancelFitException()
    learn = tiny_learner(F.cross_entropy)
    learn.fit(1, cbs=[MixUp(), Stop()])
    assert learn.loss_func is F.cross_entropy


def test_mixup_learns():
    learn = tiny_learner(nn.CrossEntropyLoss(), data=tiny_data(n=192))
    learn.fit(6, cbs=MixUp(0.4))
    model = learn.model.eval()
    x, y = learn.data.valid_ds.tensors
    with torch.no_grad(): acc = (model(x).argmax(1) == y).float().mean()
    assert acc > 0.8


def test_bad_alpha():
    test_raises(lambda: MixUp(0.), ValueError, 'α must be > 0')
    test_raises(lambda: CutMix(-1.), ValueError, 'α must be > 0')


def test_box_masks_and_cutmix_pixels():
    torch.manual_seed(0)
    λ = torch.full((500,), 0.64)
    m = box_masks(λ, 20, 30)
    test_eq(m.shape, (500, 20, 30))
    area = m.flatten(1).float().mean(1)
    assert (area <= 0.36 + 0.05).all() and area.max() > 0.3
    for k in range(10):                                  # each mask is one axis-aligned box
        rows, cols = m[k].any(1), m[k].any(0)
        test_eq(m[k], rows[:, None] & cols[None, :])
    test_eq(box_masks(torch.ones(4), 8, 8).sum(), 0)

    learn, probe = tiny_learner(nn.CrossEntropyLoss()), Probe()
    n = 16
    ids = torch.arange(n, dtype=torch.float)[:, None, None, None].expand(n, 3, 6, 6)
    class FeedIds(Callback):
        _order = 50
        def begin_batch(self):
            if self.in_train: self.run.xb = ids[:len(self.yb)]
    torch.manual_seed(3)
    learn.fit(1, cbs=[CutMix(1.), FeedIds(), probe])
    for r in [r for r in probe.rows if r['in_train']]:
        bs = len(r['yb'])
        src, own = r['xb'][:, 0], ids[:bs, 0]
        partner = ids[:bs][r['perm'], 0]
        is_own = src == own
        assert (is_own | (src == partner)).all()
        moved = r['perm'] != torch.arange(bs)
        test_near(r['λ'][moved], is_own[moved].flatten(1).float().mean(1), eps=1e-6)
