"""Lesson 11: XResNet, 1cycle (lesson 05's one_cycle, which replaced sched_1cycle) and cnn_learner, on the CPU.

Shapes for any number of input channels and any size, every residual block the identity at init (the branch
outputs exactly 0), the stride of each stage, parameter counts derived by hand below, gradients reaching the
stem; 1cycle per parameter group read from `opt.hypers` during a fit, value for value the removed
`sched_1cycle`; `cnn_learner` reading c_in/c_out from the data and lowering the loss.
"""
import math
from collections import Counter

import pytest
from hypothesis import given, settings, strategies as st
import torch
from torch import nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from raising import caught
from exp.nb_00 import test_eq, test_near, test_raises
from exp.nb_08 import DataBunch
from exp.nb_09 import adam_opt
from exp.nb_09b import Callback, Learner
from exp.nb_05 import Recorder
from exp.nb_05 import ParamScheduler, combine_scheds, cos_1cycle_anneal, listify, one_cycle
from exp.nb_11 import (xconv_layer, ResBlock, XResNet, xresnet18, xresnet34, xresnet50, xresnet101, init_xresnet,
                       cnn_learner)

pytestmark = pytest.mark.usefixtures('one_thread')


@pytest.mark.parametrize('c_in', [1, 3, 5])
@pytest.mark.parametrize('size', [64, 128, 160])
def test_output_shape(c_in, size):
    torch.manual_seed(0)
    m = xresnet18(c_in=c_in, c_out=7).eval()
    with torch.no_grad(): out = m(torch.randn(2, c_in, size, size))
    test_eq(out.shape, (2, 7))
    test_eq(m[0][0].in_channels, c_in)
    test_eq(m[0][0].out_channels, (c_in + 1) * 8)              # ResNet-C stem: c_in -> (c_in+1)*8 -> 64 -> 64


@pytest.mark.parametrize('arch', [xresnet18, xresnet50])
def test_every_block_is_identity_at_init(arch):
    torch.manual_seed(0)
    m = arch(c_out=10)
    blocks = [b for b in m.modules() if isinstance(b, ResBlock)]
    test_eq(len(blocks), 8 if arch is xresnet18 else 16)
    inputs = {}
    hooks = [b.register_forward_hook(lambda mod, inp, out: inputs.__setitem__(mod, (inp[0].clone(), out.clone())))
             for b in blocks]
    m.train()                                                   # batch statistics: γ=0 still gives exactly 0
    m(torch.randn(4, 3, 64, 64))
    for h in hooks: h.remove()
    for b in blocks:
        x, out = inputs[b]
        branch = b.convs(x)
        assert branch.abs().max().item() == 0., 'the residual branch must output exactly 0 at init'
        test_eq(out, b.idconv(b.pool(x)).relu())
        if isinstance(b.idconv, nn.Identity) and isinstance(b.pool, nn.Identity): test_eq(out, x)
        last_bn = b.convs[-1][1]
        test_eq(last_bn.weight, torch.zeros_like(last_bn.weight))
        assert len(b.convs[-1]) == 2                            # no ReLU in the branch's last layer


def test_stage_strides_and_sizes():
    m = xresnet50(c_out=10).eval()
    stages = list(m)[4:8]
    for i, stage in enumerate(stages):
        want = 1 if i == 0 else 2
        first = stage[0]
        strides = [l[0].stride[0] for l in first.convs]
        test_eq(strides, [1, want, 1])                          # ResNet-B: stride on the 3×3 only
        test_eq(isinstance(first.pool, nn.AvgPool2d), want == 2)  # ResNet-D shortcut
        for b in stage[1:]: test_eq([l[0].stride[0] for l in b.convs], [1, 1, 1])
    sizes, x = [], torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        for l in m:
            x = l(x)
            sizes.append(tuple(x.shape[1:]))
    test_eq(sizes[:8], [(32, 64, 64), (64, 64, 64), (64, 64, 64), (64, 32, 32),
                        (256, 32, 32), (512, 16, 16), (1024, 8, 8), (2048, 4, 4)])
    m18 = xresnet18().eval()
    with torch.no_grad(): test_eq(m18[:8](torch.randn(1, 3, 128, 128)).shape, (1, 512, 4, 4))


# Parameter counts by hand. A k×k conv without bias from ni to nf channels has k·k·ni·nf weights; its batch
# norm has 2·nf (γ and β); the final linear layer nf·c_out + c_out.
def conv_bn(k, ni, nf): return k * k * ni * nf + 2 * nf

def stem(c_in=3): return conv_bn(3, c_in, (c_in + 1) * 8) + conv_bn(3, (c_in + 1) * 8, 64) + conv_bn(3, 64, 64)

def basic_block(ni, nf):        # 3×3 ni->nf, 3×3 nf->nf, 1×1 shortcut conv when ni != nf
    return conv_bn(3, ni, nf) + conv_bn(3, nf, nf) + (conv_bn(1, ni, nf) if ni != nf else 0)

def bottleneck(ni, nh):         # 1×1 ni->nh, 3×3 nh->nh, 1×1 nh->4nh, shortcut 1×1 ni->4nh when ni != 4nh
    return conv_bn(1, ni, nh) + conv_bn(3, nh, nh) + conv_bn(1, nh, 4 * nh) + (conv_bn(1, ni, 4 * nh) if ni != 4 * nh else 0)

def hand_count(expansion, layers, c_out=1000):
    widths, total, ni = [64, 128, 256, 512], stem(), 64
    for nh, n in zip(widths, layers):
        nf = nh * expansion
        for i in range(n):
            total += basic_block(ni, nf) if expansion == 1 else bottleneck(ni, nh)
            ni = nf
    return total + ni * c_out + c_out


def test_parameter_counts_by_hand():
    # the stem: 3·3·3·32 + 64 + 3·3·32·64 + 128 + 3·3·64·64 + 128 = 864 + 64 + 18432 + 128 + 36864 + 128
    test_eq(stem(), 56_480)
    # xresnet18: stage 1, 2 × (2·(9·64·64 + 128)) = 147,968; stage 2: 9·64·128 + 256 + 9·128·128 + 256 + 64·128 + 256
    # + (9·128·128 + 256)·2 = 525,568; ... head 512·1000 + 1000. torchvision's resnet18 (11,689,512) has the
    # same body and head; its 7×7 stem has 7·7·3·64 + 128 = 9,536, so ours is 11,689,512 - 9,536 + 56,480.
    test_eq(hand_count(1, [2, 2, 2, 2]), 11_689_512 - 9_536 + 56_480)
    for arch, (exp, layers) in [(xresnet18, (1, [2, 2, 2, 2])), (xresnet34, (1, [3, 4, 6, 3])),
                                (xresnet50, (4, [3, 4, 6, 3]))]:
        m = arch()
        test_eq(sum(p.numel() for p in m.parameters()), hand_count(exp, layers))
    test_eq(sum(p.numel() for p in xresnet34().parameters()), 21_797_672 - 9_536 + 56_480)   # torchvision resnet34
    test_eq(sum(p.numel() for p in xresnet50().parameters()), 25_557_032 - 9_536 + 56_480)   # torchvision resnet50
    test_eq(sum(p.numel() for p in xresnet18(c_in=1, c_out=10).parameters()),
            hand_count(1, [2, 2, 2, 2], c_out=10) - stem(3) + stem(1))


def test_gradients_reach_the_stem():
    torch.manual_seed(0)
    m = xresnet34(c_out=5)
    loss = F.cross_entropy(m(torch.randn(4, 3, 64, 64)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    for l in (m[0][0], m[1][0], m[2][0]):
        assert l.weight.grad is not None and l.weight.grad.abs().sum() > 0
    # zero γ: the convs of a branch before its zero batch norm get no gradient at init, but that batch norm's γ does
    b = m[4][0]
    assert b.convs[-1][1].weight.grad.abs().sum() > 0


def test_init_xresnet_and_errors():
    "11's init (ReLU gain, convs and linear layers) has its own name; `init_cnn` keeps lesson 06's meaning."
    import exp.nb_06, exp.nb_11
    assert exp.nb_11.init_cnn is exp.nb_06.init_cnn
    torch.manual_seed(0)
    m = init_xresnet(nn.Sequential(nn.Conv2d(64, 64, 3, bias=True), nn.Linear(1000, 10)))
    test_eq(m[0].bias, torch.zeros(64)); test_eq(m[1].bias, torch.zeros(10))
    test_near(m[0].weight.std(), (2 / (64 * 9)) ** 0.5, eps=2e-3)    # Kaiming normal, fan_in, ReLU gain
    test_raises(lambda: ResBlock(2, 64, 64), ValueError, 'expansion')
    test_raises(lambda: XResNet.create(1, [2, 2], c_in=0), ValueError, 'c_in')
    test_eq(len(xresnet101()[6]), 23)
    assert 'stage 4: 3 × ResBlock' in repr(xresnet50())


def test_resblock_widths_are_before_expansion():
    "ResBlock(expansion, ni, nh): input ni*expansion channels, output nh*expansion; other inputs get a message saying so"
    assert 'before expansion' in ResBlock.__doc__
    x = torch.randn(2, 64, 8, 8)
    test_eq(ResBlock(4, 16, 32)(x).shape, (2, 128, 8, 8))           # 16*4 = 64 in, 32*4 = 128 out
    test_eq(ResBlock(1, 64, 32, stride=2)(x).shape, (2, 32, 4, 4))
    e = caught(lambda: ResBlock(4, 64, 16)(x), ValueError)           # torchvision's Bottleneck(inplanes=64, planes=16)
    assert '256 input channels' in str(e) and 'got 64' in str(e) and 'before expansion' in str(e), e
    for bad in [(3, 16, 16), (4, 0, 16), (1, 16, -2), (1, 16.0, 16), (1, 16, 16, 3)]:
        test_raises(lambda: ResBlock(*bad), ValueError)


def old_sched_1cycle(lrs, pct_start=0.3, mom_start=0.95, mom_mid=0.85, mom_end=0.95):
    "The oracle: lesson 11's `sched_1cycle` and `create_phases` as they were before `one_cycle` replaced them"
    phases = [float(p) for p in listify(pct_start)]
    phases = phases + [1 - sum(phases)]
    scheds = [combine_scheds(phases, cos_1cycle_anneal(lr / 10., lr, lr / 1e5)) for lr in listify(lrs)]
    return [ParamScheduler('lr', scheds if isinstance(lrs, (list, tuple)) else scheds[0]),
            ParamScheduler('mom', combine_scheds(phases, cos_1cycle_anneal(mom_start, mom_mid, mom_end)))]


def positions(n_batches):
    "Every `pos` a fit of `n_batches` training batches an epoch reaches (added up as TrainEvalCallback does), and 1"
    res, pos = [], 0.
    for epoch in range(3):
        pos = float(epoch)
        for _ in range(n_batches):
            res.append(pos / 3)
            pos += 1. / n_batches
    return res + [1.]


@pytest.mark.parametrize('moms', [(0.95, 0.85, 0.95), (0.8, 0.7, 0.8), (0.95, 0.85, 0.9)])
@pytest.mark.parametrize('pct', [0.25, 0.3, 0.5, 0])
@pytest.mark.parametrize('lrs', [1e-2, 3e-3, 5e-3, [1e-3, 1e-2], (1e-4, 3e-4, 1e-3, 0.), [2e-3]])
def test_one_cycle_is_value_for_value_the_old_sched_1cycle(lrs, pct, moms):
    "RESULTS numbers do not move: the same lr (per group) and momentum, bit for bit, at every position of a fit"
    old_lr, old_mom = old_sched_1cycle(lrs, pct, *moms)
    new_lr, new_mom = one_cycle(lrs, pct, moms=moms)
    test_eq(type(new_lr.sched_funcs), type(old_lr.sched_funcs))          # a list for a list, even of one
    olds, news = listify(old_lr.sched_funcs), listify(new_lr.sched_funcs)
    test_eq(len(news), len(olds))
    for n in (7, 10, 64, 391):
        ps = positions(n)
        for old, new in zip(olds, news): assert [new(p) for p in ps] == [old(p) for p in ps], (lrs, pct, n)
        assert [new_mom.sched_funcs(p) for p in ps] == [old_mom.sched_funcs(p) for p in ps], (moms, pct, n)


class HyperLog(Callback):
    "The lr and mom of every group of `opt.hypers` at each training batch, after the schedulers set them"
    _order = 10
    def begin_fit(self): self.log = []
    def begin_batch(self):
        if self.in_train: self.log.append((self.n_epochs / self.epochs, [(h['lr'], h['mom']) for h in self.opt.hypers]))


def tiny_data(n=80, bs=8, c_in=2, c_out=3, size=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, c_out, (n,), generator=g)
    x = torch.randn(n, c_in, size, size, generator=g) * 0.5 + y[:, None, None, None].float()   # learnable
    ds = TensorDataset(x, y)
    return DataBunch(DataLoader(ds, batch_size=bs, shuffle=True, generator=torch.Generator().manual_seed(seed)),
                     DataLoader(TensorDataset(x[:16], y[:16]), batch_size=16), c_in=c_in, c_out=c_out)


def per_group_run(cbs, lrs):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(2 * 8 * 8, 8), nn.ReLU(), nn.Linear(8, 3))
    splitter = lambda m: [list(m[1].parameters()), list(m[3].parameters())]
    learn = Learner(model, tiny_data(), F.cross_entropy, opt_func=adam_opt(), lr=lrs, splitter=splitter)
    log = HyperLog()
    learn.fit(1, cbs=cbs + [log])
    return log.log, learn.model


def test_one_cycle_per_group_in_hypers():
    lrs, pct = [1e-3, 1e-2], 0.3
    log, model = per_group_run(one_cycle(lrs, pct_start=pct, moms=(0.95, 0.85, 0.9)), lrs)
    test_eq(len(log), 10)
    pos0, hyp0 = log[0]
    test_eq(pos0, 0.)
    test_near([h[0] for h in hyp0], [1e-4, 1e-3], eps=1e-12)            # lr/10 for each group
    test_near([h[1] for h in hyp0], [0.95, 0.95])                       # our Adam's `mom`, found unnamed
    pos3, hyp3 = log[3]                                                  # batch 3 of 10: pos 0.3 = pct_start
    test_near(pos3, pct, eps=1e-9)
    test_near([h[0] for h in hyp3], lrs, eps=1e-9)
    test_near([h[1] for h in hyp3], [0.85, 0.85])
    lr_sched, mom_sched = one_cycle(lrs, pct_start=pct, moms=(0.95, 0.85, 0.9))
    test_near([f(1.) for f in lr_sched.sched_funcs], [1e-8, 1e-7], eps=1e-15)   # lr/1e5 at the end
    test_near(mom_sched.sched_funcs(1.), 0.9)
    lrs_seen = [h[0][0] for _, h in log]
    assert lrs_seen.index(max(lrs_seen)) == 3 and lrs_seen[-1] < lrs_seen[4]  # up, then down
    old_log, old_model = per_group_run(old_sched_1cycle(lrs, pct, 0.95, 0.85, 0.9), lrs)
    test_eq(log, old_log)                                                # the same hypers at every batch ...
    for p, q in zip(model.parameters(), old_model.parameters()): test_eq(p, q)   # ... so the same weights


def test_one_cycle_one_lr_for_all_groups():
    lr_sched, _ = one_cycle(1e-2, pct_start=0.5)
    test_near(lr_sched.sched_funcs(0.5), 1e-2)
    log, _ = per_group_run(one_cycle(1e-2), [1e-3, 1e-2])
    assert all(h[0][0] == h[1][0] for _, h in log)


def test_cnn_learner_infers_c_in_c_out_and_trains():
    torch.manual_seed(0)
    data = tiny_data(n=96, bs=16, c_in=1, c_out=4, size=16)
    learn = cnn_learner(xresnet18, data, F.cross_entropy, adam_opt(), lr=3e-3, progress=False, device='cpu')
    learn.logger = lambda *a: None
    test_eq((learn.model[0][0].in_channels, learn.model[-1].out_features), (1, 4))
    rec = Recorder()
    learn.fit(3, cbs=one_cycle(3e-3, 0.3) + [rec])
    n = len(rec.losses) // 3
    assert sum(rec.losses[-n:]) / n < 0.7 * sum(rec.losses[:n]) / n, rec.losses
    learn2 = cnn_learner(xresnet18, data, F.cross_entropy, adam_opt(), c_in=1, c_out=9, progress=False)
    test_eq(learn2.model[-1].out_features, 9)
    test_raises(lambda: cnn_learner(xresnet18, DataBunch(data.train_dl, data.valid_dl), F.cross_entropy, adam_opt()),
                ValueError, 'c_in')


def test_model_summary_at_128_px_through_the_learner_callbacks(capsys):
    "Imported (no notebook globals): bytes -> floats and normalisation run before the model sees the batch"
    from exp.nb_08 import NormalizeChan
    from exp.nb_09b import model_summary
    torch.manual_seed(0)
    x = torch.randint(0, 256, (4, 3, 128, 128), dtype=torch.uint8)
    ds = TensorDataset(x, torch.tensor([0, 1, 0, 1]))
    data = DataBunch(DataLoader(ds, batch_size=2), DataLoader(ds, batch_size=2), c_in=3, c_out=2)
    norm = NormalizeChan(torch.full((3,), 0.5), torch.full((3,), 0.25))
    learn = cnn_learner(xresnet18, data, F.cross_entropy, adam_opt(), norm=norm, progress=False, device='cpu')
    rows = model_summary(learn)
    shapes = [s for _, s in rows]
    test_eq(shapes[:8], [(2, 32, 64, 64), (2, 64, 64, 64), (2, 64, 64, 64), (2, 64, 32, 32),
                         (2, 64, 32, 32), (2, 128, 16, 16), (2, 256, 8, 8), (2, 512, 4, 4)])
    test_eq(shapes[-3:], [(2, 512, 1, 1), (2, 512), (2, 2)])
    assert 'ResBlock' in capsys.readouterr().out


def test_imagenette_split_subsets():
    from exp.nb_00 import URLs, untar_data
    from exp.nb_11 import imagenette_split
    ll = imagenette_split(untar_data(URLs.IMAGENETTE_160), 24, n_classes=3, n_train=30, n_valid=11, seed=1)
    test_eq((len(ll.train), len(ll.valid)), (30, 11))
    test_eq(len(ll.train.proc_y[0].vocab), 3)
    assert all(f.parent.parent.name == 'val' for f in ll.valid.x.items)
    x, y = ll.valid[0]
    test_eq((x.shape, x.dtype), ((3, 24, 24), torch.uint8))
    again = imagenette_split(untar_data(URLs.IMAGENETTE_160), 24, n_classes=3, n_train=30, n_valid=11, seed=1)
    test_eq(list(again.valid.x.items), list(ll.valid.x.items))        # seeded: the same items every time
    counts = Counter(f.parent.name for f in ll.train.x.items)
    test_eq(sorted(counts.values()), [10, 10, 10])                   # stratified: 3 classes of ~equal size
    ten = imagenette_split(untar_data(URLs.IMAGENETTE_160), 24, n_train=10, n_valid=4, seed=3)
    test_eq(len({f.parent.name for f in ten.train.x.items}), 10)      # one training image per class
    with pytest.raises(ValueError, match='n_train=9 is fewer than the 10 classes'):
        imagenette_split(untar_data(URLs.IMAGENETTE_160), 24, n_train=9)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=8), st.data())
def test_class_sample_properties(sizes, data):
    from exp.nb_11 import class_sample
    items = [(c, i) for c, k in enumerate(sizes) for i in range(k)]
    n = data.draw(st.integers(0, len(items) + 3))
    seed = data.draw(st.integers(0, 5))
    got = class_sample(items, n, lambda o: o[0], seed=seed)
    test_eq(len(got), min(n, len(items)))
    test_eq(len(set(got)), len(got)); assert set(got) <= set(items)
    test_eq(got, class_sample(items, n, lambda o: o[0], seed=seed))   # seeded
    counts = [sum(1 for c, _ in got if c == k) for k in range(len(sizes))]
    assert all(c <= k for c, k in zip(counts, sizes))
    if n >= len(items): return
    share = [n * k / len(items) for k in sizes]
    if n >= len(sizes): assert min(counts) >= 1                       # no class left out
    else: assert all(abs(c - s) < 1 for c, s in zip(counts, share))   # plain largest remainders
    assert all(c <= max(1, math.ceil(s)) for c, s in zip(counts, share))   # never above its share, rounded up
