"""Lesson 10c: mixed precision by hand, on the CPU.

The dynamic loss scale against `torch.amp.GradScaler` (same init scale, growth factor, backoff and interval,
overflows injected on chosen steps), a skipped step leaving weights and optimizer state bit-identical, a short
fp16 training run lowering the loss, the model back in fp32 after fit and after an interrupted fit, master
params per parameter group (frozen params left out, per-group learning rates kept), one host sync per step.
"""
import copy
from functools import partial
from unittest import mock

import pytest
import torch
from torch import nn
import torch.nn.functional as F

from exp.nb_00 import test_eq, test_near, test_raises
from exp.nb_03 import get_dls
from exp.nb_08 import DataBunch
from exp.nb_09 import adam_opt, sgd_opt
from exp.nb_09b import Learner, Callback, CancelFitException
import exp.nb_10c as nb10c
from exp.nb_10c import (model_to_half, get_master, set_group_params, to_master_grads, to_model_params, grad_overflow,
                        LossScaler, MixedPrecision, AutocastMixedPrecision, bn_types)


pytestmark = pytest.mark.usefixtures('one_thread')   # conftest.py: torch on one thread


def gradscaler_scales(init_scale, interval, overflow_steps, n_steps, growth=2., backoff=0.5):
    "The scale torch.amp.GradScaler holds after each step, with an inf planted in a gradient on `overflow_steps`"
    torch.manual_seed(0)
    lin = nn.Linear(3, 1)
    opt = torch.optim.SGD(lin.parameters(), lr=0.01)
    scaler = torch.amp.GradScaler('cpu', init_scale=init_scale, growth_factor=growth, backoff_factor=backoff,
                                  growth_interval=interval)
    scales = []
    for i in range(n_steps):
        scaler.scale(lin(torch.randn(4, 3)).pow(2).mean()).backward()
        if i in overflow_steps: lin.weight.grad[0, 0] = float('inf')
        scaler.step(opt); scaler.update(); opt.zero_grad()
        scales.append(scaler.get_scale())
    return scales


@pytest.mark.parametrize('init_scale,interval,overflows,growth,backoff', [
    (2.**10, 4, {2, 3, 9, 10, 11, 20, 25}, 2., 0.5),
    (2.**16, 3, {0, 7, 8, 21}, 2., 0.5),
    (2.**5, 1, {4, 5, 6, 29}, 4., 0.25),
    (512., 500, {1, 2, 3}, 2., 0.5),
])
def test_loss_scaler_matches_gradscaler(init_scale, interval, overflows, growth, backoff):
    ours = LossScaler(init_scale, growth_factor=growth, backoff_factor=backoff, growth_interval=interval, max_scale=None)
    scales = []
    for i in range(30):
        ours.update(i in overflows)
        scales.append(ours.scale)
    test_eq(scales, gradscaler_scales(init_scale, interval, overflows, 30, growth, backoff))


def test_loss_scaler_static_cap_and_errors():
    s = LossScaler(512., dynamic=False)
    for o in [True, False, True]: s.update(o)
    test_eq(s.scale, 512.)
    s = LossScaler(2.**23, growth_interval=1, max_scale=2.**24)
    for _ in range(5): s.update(False)
    test_eq(s.scale, 2.**24)
    test_raises(lambda: LossScaler(0.), ValueError, 'init_scale')
    test_raises(lambda: LossScaler(growth_interval=0), ValueError, 'growth_interval')
    test_raises(lambda: LossScaler(backoff_factor=1.), ValueError, 'backoff_factor')
    test_raises(lambda: MixedPrecision(torch.float64), ValueError, 'dtype must be')


def test_grad_overflow_one_host_sync():
    ps = [torch.zeros(5, dtype=torch.float16, requires_grad=True) for _ in range(50)]
    for p in ps: p.grad = torch.full((5,), 30000., dtype=torch.float16)   # finite, but their fp16 sum is not
    calls = []
    real_item = torch.Tensor.item
    def counting_item(self): calls.append(1); return real_item(self)
    with mock.patch.object(torch.Tensor, 'item', counting_item):
        assert not grad_overflow(ps)
        ps[37].grad[2] = float('nan')
        assert grad_overflow(ps)
        ps[37].grad[2] = -float('inf')
        assert grad_overflow(ps)
    test_eq(len(calls), 3)                              # one per check, not one per parameter


# ---------------------------------------------------------------- conversions and master weights

def conv_model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, stride=2, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 16, 3, padding=1, stride=2, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 2))


def test_model_to_half_keeps_batchnorm_and_identity():
    m = conv_model()
    params = list(m.parameters())
    bn_state = copy.deepcopy(m[1].state_dict())
    model_to_half(m)
    assert all(p is q for p, q in zip(m.parameters(), params))
    for mod in m.modules():
        for p in mod.parameters(recurse=False):
            test_eq(p.dtype, torch.float32 if isinstance(mod, bn_types) else torch.float16)
    test_eq(m[1].state_dict(), bn_state)                # bit for bit, buffers included
    test_eq(m(torch.randn(2, 3, 8, 8).half()).dtype, torch.float16)


@pytest.mark.parametrize('torch_opt', [False, True])
def test_master_params_per_group(torch_opt):
    m = conv_model()
    m[0].weight.requires_grad_(False)
    groups = [list(m[:6].parameters()), list(m[8].parameters())]
    opt = torch.optim.SGD([{'params': groups[0], 'lr': 0.01}, {'params': groups[1], 'lr': 0.1}]) if torch_opt \
        else sgd_opt(groups, lr=0.1)
    model_to_half(m)
    model_pgs, master_pgs = get_master(opt)
    test_eq([len(g) for g in master_pgs], [len(groups[0]) - 1, len(groups[1])])
    assert all(p.requires_grad for p in sum(model_pgs, []))
    for p, mp in zip(sum(model_pgs, []), sum(master_pgs, [])):
        assert mp.dtype == torch.float32 and mp.is_leaf and mp.requires_grad and mp is not p
        test_eq(mp, p.float())
    m(torch.randn(4, 3, 8, 8).half()).float().sum().backward()
    to_master_grads(model_pgs, master_pgs)
    for p, mp in zip(sum(model_pgs, []), sum(master_pgs, [])): test_eq(mp.grad, p.grad.float())
    set_group_params(opt, master_pgs)
    got = [g['params'] if torch_opt else g for g in opt.param_groups]
    assert all(a is b for g1, g2 in zip(got, master_pgs) for a, b in zip(g1, g2))
    test_raises(lambda: set_group_params(opt, master_pgs[:1]), ValueError, '1 lists of params for 2')
    with torch.no_grad():
        for mp in sum(master_pgs, []): mp.add_(1e-4)
    to_model_params(model_pgs, master_pgs)
    for p, mp in zip(sum(model_pgs, []), sum(master_pgs, [])): test_eq(p, mp.to(p.dtype))


# ---------------------------------------------------------------- the callbacks in the Learner

def tiny_data(n=128, bs=16, seed=0):
    "Images (3, 8, 8): class 1 when channel 0 is brighter on average than channel 1"
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 8, 8, generator=g)
    y = (x[:, 0].mean((1, 2)) > x[:, 1].mean((1, 2))).long()
    ds = torch.utils.data.TensorDataset(x, y)
    return DataBunch(*get_dls(ds, ds, bs), c_in=3, c_out=2)

def learner(opt_func=None, lr=1e-2, data=None, **kwargs):
    return Learner(conv_model(), data or tiny_data(), F.cross_entropy, opt_func=opt_func or adam_opt(), lr=lr, **kwargs)


class PlantOverflow(Callback):
    "An inf in one gradient of the model on the training steps `iters` (before the mixed-precision callback)"
    _order = 98
    def __init__(self, iters): self.iters = set(iters)
    def after_backward(self):
        if self.n_iter in self.iters:
            next(p for p in self.model.parameters() if p.grad is not None).grad.view(-1)[0] = float('inf')

class Losses(Callback):
    "The training losses, and the optimizer steps really taken (`after_step` also closes a cancelled step)"
    _order = 100
    def begin_fit(self): self.train, self.n_steps, self.cancelled = [], 0, False
    def after_cancel_step(self): self.cancelled = True
    def after_step(self):
        self.n_steps += not self.cancelled
        self.cancelled = False
    def after_batch(self):
        if self.in_train and self.loss is not None: self.train.append(self.loss.item())


def test_dynamic_scale_in_training_matches_gradscaler():
    overflows = {1, 2, 7, 13, 14, 15}
    mp, losses = MixedPrecision(loss_scale=2.**4, growth_interval=3), Losses()
    learner().fit(3, cbs=[mp, PlantOverflow(overflows), losses])     # 8 batches per epoch: 24 steps
    n = len(mp.scales)
    test_eq(n, 24)
    ref = gradscaler_scales(2.**4, 3, overflows, n)
    test_eq(mp.scales[1:], ref[:-1])                     # mp.scales[i] is the scale used at step i
    test_eq(mp.loss_scale, ref[-1])
    test_eq(mp.n_skipped, len(overflows))
    test_eq(losses.n_steps, n - len(overflows))         # the learner really skipped those steps


class Snapshot(Callback):
    "Exact copies of the weights, master weights and optimizer state before and after training step `it`"
    _order = 100
    def __init__(self, it, cb_name): self.it, self.cb_name = it, cb_name
    def state(self):
        cb = getattr(self.run, self.cb_name)
        masters = [p.detach().clone() for p in sum(getattr(cb, 'master_pgs', []), [])]
        return [p.detach().clone() for p in self.model.parameters()], masters, copy.deepcopy(self.opt.state_dict())
    def begin_batch(self):
        self.active = self.in_train and self.n_iter == self.it
        if self.active: self.before = self.state()
    def after_batch(self):
        if self.active: self.after = self.state()

def assert_identical(a, b):
    "Nested structures of tensors and numbers, compared exactly (torch.equal for tensors)"
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a: assert_identical(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b): assert_identical(x, y)
    else: assert a == b


@pytest.mark.parametrize('cb_cls', [MixedPrecision, AutocastMixedPrecision])
def test_overflow_step_leaves_everything_untouched(cb_cls):
    cb = cb_cls()
    snap = Snapshot(4, 'mixed_precision' if cb_cls is MixedPrecision else 'autocast_mixed_precision')
    learn = learner()
    learn.fit(1, cbs=[cb, PlantOverflow([4]), snap])
    assert_identical(snap.after, snap.before)
    steps = [s['step'] for s in snap.after[2]['state'].values()]
    assert steps and all(s == 4 for s in steps)         # 4 steps taken before, none during step 4
    test_eq(cb.n_skipped, 1)
    if cb_cls is MixedPrecision: test_eq(cb.scales[5], cb.scales[4] / 2)


def test_static_scale_skips_an_overflow_step_too():
    "With a static scale the step is skipped as well (one inf would make the master weights NaN); the scale stays"
    cb, snap, losses = MixedPrecision(loss_scale=512., dynamic=False), Snapshot(2, 'mixed_precision'), Losses()
    learn = learner()
    learn.fit(1, cbs=[cb, PlantOverflow([2, 5]), snap, losses])
    assert_identical(snap.after, snap.before)
    test_eq((cb.n_skipped, losses.n_steps), (2, 8 - 2))
    test_eq(set(cb.scales), {512.})
    assert all(torch.isfinite(p).all() for p in learn.model.parameters())


def test_overflow_skip_with_torch_optimizer():
    snap, cb = Snapshot(3, 'mixed_precision'), MixedPrecision()
    learn = learner(opt_func=lambda params, lr: torch.optim.Adam(params, lr=lr))
    learn.fit(1, cbs=[cb, PlantOverflow([3]), snap])
    assert_identical(snap.after, snap.before)
    assert all(s['step'].item() == 3 for s in snap.after[2]['state'].values())


@pytest.mark.parametrize('cb', [lambda: MixedPrecision(), lambda: MixedPrecision(loss_scale=512., dynamic=False),
                                lambda: MixedPrecision(torch.bfloat16), lambda: AutocastMixedPrecision(),
                                lambda: AutocastMixedPrecision(torch.bfloat16)])
def test_short_half_precision_run_lowers_the_loss(cb):
    cb, losses = cb(), Losses()
    learn = learner(data=tiny_data(n=256))
    learn.fit(4, cbs=[cb, losses])
    first, last = sum(losses.train[:4]) / 4, sum(losses.train[-4:]) / 4
    assert last < 0.7 * first, (first, last)
    assert all(p.dtype == torch.float32 for p in learn.model.parameters())
    x, y = learn.data.valid_ds.tensors
    with torch.no_grad(): acc = (learn.model.eval()(x).argmax(1) == y).float().mean()
    assert acc > 0.8


class During(Callback):
    "What the model, batch, predictions and loss look like inside a mixed-precision fit, at its first step"
    def __init__(self, order): self._order = order
    def after_loss(self):
        if not self.in_train or hasattr(self, 'seen'): return
        self.seen = dict(xb=self.xb.dtype, pred=self.pred.dtype, loss=self.loss.dtype, loss_value=self.loss.item(),
                         params={type(m).__name__: p.dtype for m in self.model.modules() for p in m.parameters(recurse=False)})
    def after_backward(self):
        if not hasattr(self, 'loss_after_backward'): self.loss_after_backward = self.loss.item()

def test_dtypes_during_fit_and_unscaled_loss():
    before, after, mp = During(50), During(100), MixedPrecision(loss_scale=1024., dynamic=False)
    learner().fit(1, cbs=[mp, before, after])
    test_eq(before.seen['params'], {'Conv2d': torch.float16, 'BatchNorm2d': torch.float32, 'Linear': torch.float16})
    test_eq((before.seen['xb'], before.seen['pred'], before.seen['loss']), (torch.float16, torch.float32, torch.float32))
    test_eq(after.seen['loss_value'], 1024. * before.seen['loss_value'])   # scaled for backward...
    test_eq(after.loss_after_backward, before.seen['loss_value'])          # ...and the true loss again after it
    # the losses that later events see are the true (unscaled) losses, close to fp32's
    l16, l32 = Losses(), Losses()
    learner().fit(1, cbs=[MixedPrecision(), l16])
    learner().fit(1, cbs=[l32])
    test_near(l16.train, l32.train, eps=2e-2)


class Interrupt(Callback):
    def __init__(self, exc): self.exc = exc
    def after_batch(self):
        if self.n_iter >= 3: raise self.exc

@pytest.mark.parametrize('cb_cls', [MixedPrecision, AutocastMixedPrecision])
@pytest.mark.parametrize('exc', [None, KeyboardInterrupt, RuntimeError])
def test_model_back_to_fp32_after_fit(cb_cls, exc):
    learn = learner()
    params, opt_groups = list(learn.model.parameters()), None
    cbs = [cb_cls()] + ([Interrupt(exc())] if exc else [])
    if exc: test_raises(lambda: learn.fit(1, cbs=cbs), exc)
    else: learn.fit(1, cbs=cbs)
    assert all(p is q for p, q in zip(learn.model.parameters(), params))
    assert all(p.dtype == torch.float32 and p.grad is None or p.grad.abs().sum() == 0 for p in learn.model.parameters())
    assert all(p.dtype == torch.float32 for p in learn.model.parameters())
    assert all(b.dtype == torch.float32 for b in learn.model.buffers() if b.is_floating_point())
    ids = {id(p) for p in params}
    assert all(id(p) in ids for g in learn.opt.param_groups for p in g)    # the optimizer has its own params back
    assert not torch.is_autocast_enabled('cpu')
    if cb_cls is MixedPrecision:
        # the weights are the fp32 master weights, not fp16 values widened back
        conv_w = learn.model[0].weight
        assert not torch.equal(conv_w, conv_w.half().float())
    # and it trains on in fp32 afterwards, with the optimizer state it had
    learn.fit(1)


def test_frozen_params_and_discriminative_lrs():
    class Sizes(Callback):
        _order = 100
        def begin_epoch(self): self.sizes = [len(g) for g in self.opt.param_groups]
    m = conv_model()
    m[0].weight.requires_grad_(False)
    w0 = m[0].weight.detach().clone()
    def splitter(m): return [list(m[:6].parameters()), list(m[8].parameters())]
    learn = Learner(m, tiny_data(), F.cross_entropy, opt_func=adam_opt(), lr=[1e-3, 1e-2], splitter=splitter)
    sizes, mp = Sizes(), MixedPrecision()
    learn.fit(2, cbs=[mp, sizes])
    test_eq(sizes.sizes, [5, 2])                        # group 0 has 6 params; the frozen conv weight has no master
    test_eq(m[0].weight, w0)                            # bit for bit, back in fp32
    test_eq(m[0].weight.dtype, torch.float32)
    test_eq([h['lr'] for h in learn.opt.hypers], [1e-3, 1e-2])
    test_eq([len(g) for g in learn.opt.param_groups], [6, 2])   # the groups given back, frozen param included
    assert all(m[8].weight.detach().ne(0).flatten())   # trained
    state = learn.opt.state
    assert all(p in state for p in list(m[3].parameters()) + list(m[8].parameters()))   # state re-keyed to the model
    assert m[0].weight not in state


def test_one_overflow_check_per_step():
    calls = []
    real = nb10c.grad_overflow
    def counting(params): calls.append(len(params)); return real(params)
    with mock.patch.object(nb10c, 'grad_overflow', counting):
        learn = learner()
        learn.fit(1, cbs=MixedPrecision())
    test_eq(len(calls), len(learn.data.train_dl))
    test_eq(set(calls), {len(list(learn.model.parameters()))})


class StopAfter(Callback):
    def __init__(self, n): self.n = n
    def after_step(self):
        if self.n_iter + 1 >= self.n: raise CancelFitException()

@pytest.mark.parametrize('cb', [lambda: MixedPrecision(loss_scale=512., dynamic=False), lambda: MixedPrecision(),
                                lambda: MixedPrecision(torch.bfloat16), lambda: AutocastMixedPrecision()])
def test_steps_match_fp32_with_sgd(cb):
    "Plain SGD is not scale-invariant: a wrong (un)scaling or a lost update shows in the weights"
    def weights_after(cbs):
        learn = learner(opt_func=sgd_opt, lr=0.1)
        learn.fit(1, cbs=cbs + [StopAfter(3)])
        return [p.detach().clone() for p in learn.model.parameters()], learn.model
    w32, m32 = weights_after([])
    w16, _ = weights_after([cb()])
    w0 = [p.detach() for p in conv_model().parameters()]
    for a, b, c in zip(w16, w32, w0):
        assert (b - c).abs().max() > 1e-4                # the weights did move
        test_near(a - c, b - c, eps=2e-2)               # and mixed precision moved them the same way


def test_model_weights_follow_master_weights_every_step():
    class Follow(Callback):
        _order = 100
        def begin_fit(self): self.n = 0
        def after_step(self):
            mp = self.run.mixed_precision
            for p, m in zip(sum(mp.model_pgs, []), sum(mp.master_pgs, [])):
                assert p.grad is None and m.dtype == torch.float32
                test_eq(p, m.to(p.dtype))
            self.n += 1
    f = Follow()
    learner().fit(1, cbs=[MixedPrecision(), f])
    test_eq(f.n, 8)


@pytest.mark.filterwarnings('ignore:LR_Find')
@pytest.mark.parametrize('max_iter', [4, 50])
def test_lr_find_restore_survives_mixed_precision(max_iter):
    "LR_Find (order 1) restores the weights in its after_fit, which runs after ours (teardown last-first): exactly"
    from exp.nb_09 import LR_Find
    learn = learner()
    w0 = [p.detach().clone() for p in learn.model.parameters()]
    learn.fit(1, cbs=[MixedPrecision(), LR_Find(max_iter=max_iter)])   # 8 batches: cancelled (4) or not (50)
    for a, b in zip(learn.model.parameters(), w0):
        assert a.dtype == torch.float32
        assert torch.equal(a, b)                         # cancelled (4) or not (50): exact (issue 9: was w0.half())


@pytest.mark.parametrize('cb_cls', [MixedPrecision, AutocastMixedPrecision])
def test_cancelled_before_begin_fit_of_mixed_precision(cb_cls):
    class CancelAtStart(Callback):
        _order = 10
        def begin_fit(self): raise CancelFitException()
    learn = learner()
    params = [p.detach().clone() for p in learn.model.parameters()]
    learn.fit(1, cbs=[cb_cls(), CancelAtStart()])
    for p, q in zip(learn.model.parameters(), params): test_eq(p, q)
    assert not torch.is_autocast_enabled('cpu')


# ---------------------------------------------------------------- the lesson's own norms stay fp32 (issue 10)

from exp.nb_07 import BatchNorm, GroupNorm, InstanceNorm, LayerNorm, RunningBatchNorm, StatNorm

LESSON_NORMS = {'BatchNorm': lambda: BatchNorm(4), 'RunningBatchNorm': lambda: RunningBatchNorm(4),
                'LayerNorm': lambda: LayerNorm(), 'InstanceNorm': lambda: InstanceNorm(4),
                'GroupNorm': lambda: GroupNorm(2, 4)}


@pytest.mark.parametrize('std', [2., 300.])
@pytest.mark.parametrize('name', list(LESSON_NORMS))
def test_model_to_half_keeps_the_lesson_norms_in_fp32(name, std):
    torch.manual_seed(0)
    norm = LESSON_NORMS[name]()
    assert isinstance(norm, StatNorm) and isinstance(norm, bn_types)
    ref = copy.deepcopy(norm)
    m = model_to_half(nn.Sequential(nn.Conv2d(4, 4, 1), norm))
    test_eq(m[0].weight.dtype, torch.float16)
    test_eq({t.dtype for t in [*norm.parameters(), *norm.buffers()] if t.is_floating_point()}, {torch.float32})
    # (128, 4, 16, 16) of std 2: a sum of squares over 32,768 values per channel is about 131,000, > fp16's 65,504;
    # std 300: the variance itself (90,000) is beyond fp16 in every norm
    x = torch.randn(128, 4, 16, 16, generator=torch.Generator().manual_seed(1)) * std
    out = norm(x.half())
    test_eq(out.dtype, torch.float16)
    assert out.isfinite().all(), f'{name}: {(~out.isfinite()).sum().item()} non-finite outputs'
    test_near(out.float(), ref(x.half().float()), eps=2e-2)


@pytest.mark.parametrize('name', list(LESSON_NORMS))
def test_half_model_with_a_lesson_norm_runs_forward_and_backward(name):
    torch.manual_seed(0)
    m = model_to_half(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), LESSON_NORMS[name](), nn.ReLU(), nn.Conv2d(4, 2, 1)))
    out = m(torch.randn(16, 3, 8, 8).half() * 2)
    test_eq(out.dtype, torch.float16)
    out.float().pow(2).mean().backward()
    for p in m.parameters():
        test_eq(p.grad.dtype, p.dtype)
        assert p.grad.isfinite().all()
    test_eq({p.dtype for p in m[1].parameters()}, {torch.float32})


@pytest.mark.parametrize('cb_cls', [MixedPrecision, AutocastMixedPrecision])
def test_get_preds_with_a_mixed_precision_callback_kept_on_the_learner(cb_cls):
    "Outside a fit the model is fp32: get_preds before and after a fit gives float32 predictions (ours: the fp32 model's)"
    learn = learner(cbs=cb_cls(torch.bfloat16))
    x, y = learn.data.valid_ds.tensors
    def fp32():
        with torch.no_grad(): return learn.model.eval()(x)
    preds, targs = learn.get_preds()                                   # never fitted: plain fp32
    test_eq(preds, fp32()); test_eq(targs, y)
    learn.fit(1)
    preds = learn.get_preds(with_targets=False)
    test_eq(preds.dtype, torch.float32)
    if cb_cls is MixedPrecision: test_eq(preds, fp32())               # the batch is not cast for an fp32 model
    else: test_near(preds, fp32(), 0.1)                               # under autocast (bf16), as in validation
