"""Lesson 07: the from-scratch normalisation layers against PyTorch's, and RunningBatchNorm against its formulas."""
import math

import pytest
import torch
from torch import nn
import torch.nn.functional as F

from exp.nb_00 import test_eq, test_near, test_raises
from exp.nb_04 import DataBunch
from exp.nb_06 import GeneralRelu, get_cnn_model
from exp.nb_07 import (BatchNorm, GroupNorm, InstanceNorm, LayerNorm, RunningBatchNorm, conv_bn_layer, conv_layer,
                       init_cnn)


def batches(n, bs=8, nf=5, size=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(bs, nf, size, size, generator=g) * (1 + i) + 2 * i - 1 for i in range(n)]


def paired_bn(nf=5, mom=0.1, eps=1e-5):
    "Our BatchNorm and nn.BatchNorm2d with the same random scale and shift."
    torch.manual_seed(0)
    ours, ref = BatchNorm(nf, mom=mom, eps=eps), nn.BatchNorm2d(nf, momentum=mom, eps=eps)
    with torch.no_grad():
        ref.weight.uniform_(0.5, 2.)
        ref.bias.normal_()
        ours.mults.copy_(ref.weight.view(nf, 1, 1))
        ours.adds.copy_(ref.bias.view(nf, 1, 1))
    return ours, ref


@pytest.mark.parametrize('mom', [0.1, 0.5])
def test_batchnorm_train_mode_matches_pytorch(mom):
    ours, ref = paired_bn(mom=mom)
    for x in batches(5):
        test_near(ours(x), ref(x), eps=1e-5)
    test_near(ours.means.flatten(), ref.running_mean, eps=1e-5)
    test_near(ours.vars.flatten(), ref.running_var, eps=1e-5)


def test_batchnorm_eval_mode_matches_pytorch():
    ours, ref = paired_bn()
    for x in batches(4): ours(x), ref(x)
    ours.eval(), ref.eval()
    x = batches(1, bs=3, seed=1)[0]
    test_near(ours(x), ref(x), eps=1e-5)
    before = ours.means.clone()
    ours(x)
    test_eq(ours.means, before)                  # eval never updates the running statistics


def test_batchnorm_gradients_match_autograd_through_pytorch():
    ours, ref = paired_bn()
    x1 = batches(1)[0].requires_grad_()
    x2 = x1.detach().clone().requires_grad_()
    w = torch.randn(8, 5, 4, 4, generator=torch.Generator().manual_seed(1))   # a non-trivial upstream gradient
    (ours(x1) * w).sum().backward()
    (ref(x2) * w).sum().backward()
    test_near(x1.grad, x2.grad, eps=1e-4)
    test_near(ours.mults.grad.flatten(), ref.weight.grad, eps=1e-4)
    test_near(ours.adds.grad.flatten(), ref.bias.grad, eps=1e-4)


def test_batchnorm_errors():
    bn = BatchNorm(3)
    test_raises(lambda: bn(torch.randn(1, 3, 1, 1)), ValueError, contains='more than 1 value per channel')
    test_raises(lambda: bn(torch.randn(4, 3)), ValueError, contains='shape (4, 3)')


def test_layernorm_matches_f_layer_norm():
    x = batches(1, bs=6, nf=7, size=5)[0]
    ln = LayerNorm()
    test_near(ln(x), F.layer_norm(x, x.shape[1:]), eps=1e-5)
    with torch.no_grad(): ln.mult.fill_(1.5); ln.add.fill_(-0.3)
    test_near(ln(x), F.layer_norm(x, x.shape[1:]) * 1.5 - 0.3, eps=1e-5)


def test_instancenorm_matches_f_instance_norm():
    x = batches(1, bs=6, nf=7, size=5)[0]
    inorm = InstanceNorm(7)
    torch.manual_seed(0)
    with torch.no_grad(): inorm.mults.normal_(); inorm.adds.normal_()
    expected = F.instance_norm(x, weight=inorm.mults.flatten(), bias=inorm.adds.flatten(), eps=1e-5)
    test_near(inorm(x), expected, eps=1e-5)


@pytest.mark.parametrize('groups', [1, 2, 3, 6])
def test_groupnorm_matches_nn_groupnorm(groups):
    x = batches(1, bs=4, nf=6, size=5)[0]
    torch.manual_seed(groups)
    ref = nn.GroupNorm(groups, 6)
    with torch.no_grad(): ref.weight.normal_(); ref.bias.normal_()
    ours = GroupNorm(groups, 6)
    with torch.no_grad(): ours.mults.copy_(ref.weight.view(6, 1, 1)); ours.adds.copy_(ref.bias.view(6, 1, 1))
    test_near(ours(x), ref(x), eps=1e-5)


def test_groupnorm_bad_groups():
    test_raises(lambda: GroupNorm(4, 6), ValueError, contains='num_groups=4')


def test_conv_bn_layer_and_the_plain_conv_layer_of_06():
    "07 adds batch norm under a new name, `conv_bn_layer`; `conv_layer` keeps lesson 06's meaning (no silent redefinition)."
    import exp.nb_06, exp.nb_07
    assert exp.nb_07.conv_layer is exp.nb_06.conv_layer
    bn_layer = conv_bn_layer(3, 8, leak=0.1)
    assert isinstance(bn_layer[-1], nn.BatchNorm2d) and bn_layer[0].bias is None
    assert isinstance(bn_layer[1], GeneralRelu) and bn_layer[1].leak == 0.1
    test_eq((bn_layer[-1].eps, bn_layer[-1].momentum), (1e-5, 0.1))
    plain = conv_layer(3, 8)
    assert len(plain) == 2 and plain[0].bias is not None
    test_eq(bn_layer(torch.randn(2, 3, 8, 8)).shape, (2, 8, 4, 4))
    model = init_cnn(get_cnn_model(DataBunch(None, None, c=10), [8, 16], conv_bn_layer))
    test_eq(model(torch.randn(2, 1, 28, 28)).shape, (2, 10))


# --- RunningBatchNorm ----------------------------------------------------------------------------

def test_running_batchnorm_eval_uses_accumulated_statistics():
    torch.manual_seed(0)
    nf, mom, eps = 5, 0.1, 1e-5
    rbn = RunningBatchNorm(nf, mom=mom, eps=eps)
    with torch.no_grad(): rbn.mults.uniform_(0.5, 2.); rbn.adds.normal_()
    sums, sqrs, count, seen = torch.zeros(nf), torch.zeros(nf), 0., 0
    for x in batches(6, bs=8, nf=nf):
        rbn(x)
        w = 1 - (1 - mom) / math.sqrt(x.shape[0] - 1)          # lesson 11's momentum for a batch of 8
        sums = sums + w * (x.sum((0, 2, 3)) - sums)
        sqrs = sqrs + w * ((x * x).sum((0, 2, 3)) - sqrs)
        count = count + w * (x.numel() / nf - count)
        seen += x.shape[0]
    test_near(rbn.sums.flatten(), sums, eps=1e-4)
    test_near(rbn.count, count, eps=1e-4)
    means = sums / count
    var = sqrs / count - means ** 2
    rbn.eval()
    x = batches(1, bs=3, nf=nf, seed=5)[0]
    expected = (x - means.view(1, nf, 1, 1)) / (var.view(1, nf, 1, 1) + eps).sqrt() * rbn.mults + rbn.adds
    test_near(rbn(x), expected, eps=1e-4)
    before = rbn.sums.clone()
    rbn(x)
    test_eq(rbn.sums, before)                      # eval does not update
    assert rbn.batch.item() == seen


def test_running_batchnorm_first_batch_is_plain_batchnorm():
    "With no history, the running mean and variance are the batch's own (the debiasing cancels)."
    x = batches(1, bs=32, nf=4)[0]
    rbn = RunningBatchNorm(4)
    test_near(rbn(x), F.batch_norm(x, None, None, training=True, eps=1e-5), eps=1e-4)


def test_running_batchnorm_gradient_flows_and_buffers_stay_plain():
    torch.manual_seed(0)
    rbn = RunningBatchNorm(4)
    x = torch.randn(8, 4, 3, 3, requires_grad=True)
    (rbn(x) ** 2).sum().backward()
    assert x.grad is not None and rbn.mults.grad is not None and rbn.adds.grad is not None
    assert not rbn.sums.requires_grad and rbn.sums.grad_fn is None      # buffers hold no graph
    import copy
    copy.deepcopy(rbn)                                                  # so the module stays copyable


@pytest.mark.parametrize('bs', [1, 2])
def test_running_batchnorm_small_batches(bs):
    torch.manual_seed(0)
    rbn = RunningBatchNorm(6)
    for _ in range(30):
        x = (torch.randn(bs, 6, 2, 2) * 3 + 1).requires_grad_()
        y = rbn(x)
        assert y.shape == x.shape
        y.sum().backward()
        assert torch.isfinite(y).all() and torch.isfinite(x.grad).all()
    rbn.eval()
    y = rbn(torch.randn(bs, 6, 1, 1))
    assert y.shape == (bs, 6, 1, 1) and torch.isfinite(y).all()


def test_running_batchnorm_variance_floor_while_few_items_seen():
    "Until 20 items have been seen the variance is at least 0.01, so a near-constant start is not blown up."
    rbn = RunningBatchNorm(1)
    x = torch.tensor([0.01, -0.01]).view(2, 1, 1, 1)    # mean 0, variance 1e-4
    test_near(rbn(x).flatten(), torch.tensor([0.01, -0.01]) / math.sqrt(0.01 + 1e-5), eps=1e-4)
    for _ in range(10): y = rbn(x)                        # 22 items seen: the floor is gone
    test_near(y.flatten(), torch.tensor([0.01, -0.01]) / math.sqrt(1e-4 + 1e-5), eps=1e-3)
    assert rbn.batch.item() == 22


def test_running_batchnorm_errors():
    rbn = RunningBatchNorm(3).eval()
    test_raises(lambda: rbn(torch.randn(2, 3, 4, 4)), RuntimeError, contains='no statistics yet')
    test_raises(lambda: RunningBatchNorm(3)(torch.randn(2, 3)), ValueError, contains='shape (2, 3)')


# ---------------------------------------------------------------- non-contiguous inputs (issue 10)

def _layouts(x):
    "The same values as `x` (bs, c, h, w) in other memory layouts: channels-last, a permuted view, a strided slice."
    perm = x.permute(0, 1, 3, 2).contiguous().permute(0, 1, 3, 2)          # (bs, c, h, w) with h, w strides swapped
    wide = torch.zeros(*x.shape[:3], 2 * x.shape[3]); wide[..., ::2] = x
    return {'channels_last': x.contiguous(memory_format=torch.channels_last), 'permuted': perm, 'strided': wide[..., ::2]}


def _pairs():
    "(ours, reference) pairs with the same random affine parameters, for (bs, 6, h, w) inputs."
    torch.manual_seed(1)
    out = {}
    gn, ref = GroupNorm(3, 6), nn.GroupNorm(3, 6)
    with torch.no_grad(): ref.weight.uniform_(0.5, 2.); ref.bias.normal_(); gn.mults.copy_(ref.weight.view(6, 1, 1)); gn.adds.copy_(ref.bias.view(6, 1, 1))
    out['GroupNorm'] = gn, ref
    inn, ref = InstanceNorm(6), nn.InstanceNorm2d(6, affine=True)
    with torch.no_grad(): ref.weight.uniform_(0.5, 2.); ref.bias.normal_(); inn.mults.copy_(ref.weight.view(6, 1, 1)); inn.adds.copy_(ref.bias.view(6, 1, 1))
    out['InstanceNorm'] = inn, ref
    out['LayerNorm'] = LayerNorm(), lambda x: F.layer_norm(x, x.shape[1:])
    out['BatchNorm'] = paired_bn(6)
    out['RunningBatchNorm'] = RunningBatchNorm(6), None                   # against itself on a contiguous copy
    return out


@pytest.mark.parametrize('layout', ['channels_last', 'permuted', 'strided'])
@pytest.mark.parametrize('name', ['GroupNorm', 'InstanceNorm', 'LayerNorm', 'BatchNorm', 'RunningBatchNorm'])
def test_norms_on_non_contiguous_inputs_match_the_reference(name, layout):
    x = torch.randn(8, 6, 5, 7, generator=torch.Generator().manual_seed(2)) * 2 + 1
    ours, ref = _pairs()[name]
    if ref is None:
        ref = RunningBatchNorm(6)
        ref.load_state_dict(ours.state_dict())
    xi = _layouts(x)[layout].requires_grad_()
    xc = x.clone().requires_grad_()
    got, want = ours(xi), ref(xc)
    test_eq(got.shape, x.shape)
    test_near(got, want, eps=1e-4)
    got.pow(2).sum().backward(); want.pow(2).sum().backward()
    test_near(xi.grad, xc.grad, eps=1e-3)


@pytest.mark.parametrize('layout', ['channels_last', 'permuted', 'strided'])
def test_exported_reshapes_accept_non_contiguous_inputs(layout):
    from exp.nb_06 import flatten, view_tfm
    x = torch.randn(4, 3, 5, 5, generator=torch.Generator().manual_seed(3))
    xi = _layouts(x)[layout]
    test_eq(flatten(xi), x.reshape(4, -1))
    test_eq(view_tfm(3, 5, 5)(flatten(xi)), x)
