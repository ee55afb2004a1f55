"""Lesson 06: hooks, ListContainer, GeneralRelu, Kaiming init and the device callbacks, against PyTorch."""
import math
from functools import partial

import numpy as np
import pytest
import torch
from torch import nn, optim
import torch.nn.functional as F

from exp.nb_00 import test_eq, test_near, test_raises
from exp.nb_03 import Dataset, get_dls
from exp.nb_04 import DataBunch, Learner
from exp.nb_05b import Callback, Runner
from exp.nb_06 import (GeneralRelu, Hook, Hooks, Lambda, ListContainer, DeviceCallback, BatchTransformXCallback,
                       append_stats, children, conv_layer, default_device, flatten, get_cnn_model, get_hist,
                       get_runner, init_cnn, near_zero_frac, view_tfm)


def small_model():
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, stride=2), nn.ReLU(),
                         nn.Conv2d(4, 8, 3, padding=1, stride=2), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), Lambda(flatten), nn.Linear(8, 3))


def n_hooks(model): return sum(len(m._forward_hooks) for m in model.modules())


# --- Hook / Hooks --------------------------------------------------------------------------------

def test_hook_records_outputs():
    torch.manual_seed(0)
    model = small_model()
    x = torch.randn(5, 1, 8, 8)
    expected = model[0](x).detach()
    seen = []
    def store(hook, mod, inp, outp): hook.out = outp.detach().clone(); seen.append(hook)
    h = Hook(model[0], store)
    model(x)
    test_eq(h.out, expected)                  # the hook saw exactly the module's output
    assert seen == [h]                        # and received the Hook itself as first argument
    h.remove()
    h.remove()                                # idempotent
    model(x)
    assert len(seen) == 1 and n_hooks(model) == 0


def test_append_stats_records_mean_std_hist_in_training_only():
    torch.manual_seed(0)
    model = small_model()
    x = torch.randn(16, 1, 8, 8)
    with Hooks(model[:2], append_stats) as hooks:
        model(x)
        model(x)
        model.eval()
        model(x)                              # not recorded: eval mode
    means, stds, hists = hooks[1].stats
    out = F.relu(model[0](x)).detach()
    assert len(means) == len(stds) == len(hists) == 2
    test_near(means[0], out.mean().item(), eps=1e-5)
    test_near(stds[0], out.std().item(), eps=1e-5)
    test_eq(hists[0], out.histc(40, 0, 10))
    test_eq(get_hist(hooks[1]).shape, (40, 2))
    # near-zero fraction = share of the histogram counts in [0, 0.5)
    expected = ((out >= 0) & (out < 0.5)).float().sum() / ((out >= 0) & (out <= 10)).float().sum()
    test_near(near_zero_frac(hooks[1])[0], expected, eps=1e-4)
    test_raises(lambda: near_zero_frac(hooks[1], lo=20, hi=30), ValueError, contains='near_zero_frac')


def test_hooks_removed_after_context():
    model = small_model()
    with Hooks(model, append_stats) as hooks:
        assert len(hooks) == len(model)
        assert n_hooks(model) == len(model)
        model(torch.randn(2, 1, 8, 8))
    assert n_hooks(model) == 0
    hooks.remove()                            # a second removal is harmless
    assert n_hooks(model) == 0


def test_hooks_removed_when_body_raises():
    model = small_model()
    with pytest.raises(ZeroDivisionError):
        with Hooks(model, append_stats):
            assert n_hooks(model) == len(model)
            1 / 0
    assert n_hooks(model) == 0


def test_hooks_delitem_removes_the_hook():
    model = small_model()
    hooks = Hooks(children(model)[:3], append_stats)
    del hooks[0]
    assert len(hooks) == 2 and len(model[0]._forward_hooks) == 0 and len(model[1]._forward_hooks) == 1
    del hooks[0:2]
    assert len(hooks) == 0 and n_hooks(model) == 0


def test_hook_and_hooks_repr():
    model = small_model()
    h = Hook(model[0], lambda hook, mod, inp, outp: None)
    test_eq(repr(h), 'Hook(Conv2d, registered)')
    h.remove()
    test_eq(repr(h), 'Hook(Conv2d, removed)')
    seq = nn.Sequential(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()), nn.Flatten())
    with Hooks(seq, append_stats) as hooks:
        seq(torch.randn(2, 1, 5, 5))
        test_eq(repr(hooks[0]), 'Hook(Sequential(Conv2d, ReLU), registered, 1 batch recorded)')
        seq(torch.randn(2, 1, 5, 5))
    test_eq(repr(hooks).splitlines(), ['Hooks (2 hooks)',
                                       '  0: Hook(Sequential(Conv2d, ReLU), removed, 2 batches recorded)',
                                       '  1: Hook(Flatten, removed, 2 batches recorded)'])
    assert 'object at 0x' not in repr(hooks)


# --- ListContainer -------------------------------------------------------------------------------

def test_listcontainer_indexing():
    lc = ListContainer(list('abcde'))
    test_eq(len(lc), 5)
    test_eq(lc[0], 'a')
    test_eq(lc[-1], 'e')
    test_eq(lc[np.int64(2)], 'c')
    test_eq(lc[torch.tensor(3)], 'd')
    test_eq(lc[1:4], ['b', 'c', 'd'])
    test_eq(lc[::-2], ['e', 'c', 'a'])
    test_eq(lc[[4, 0, 0]], ['e', 'a', 'a'])
    test_eq(lc[np.array([1, 3])], ['b', 'd'])
    test_eq(lc[[True, False, True, False, True]], ['a', 'c', 'e'])
    test_eq(lc[torch.tensor([False, True, False, False, True])], ['b', 'e'])
    test_eq(lc[np.array([True] * 5)], list('abcde'))
    test_eq(lc[[]], [])
    test_eq(list(lc), list('abcde'))
    lc[0] = 'z'
    del lc[1]
    test_eq(list(lc), ['z', 'c', 'd', 'e'])


def test_listcontainer_bad_indices():
    lc = ListContainer(list('abcde'))
    test_raises(lambda: lc[[True, False]], IndexError, contains='length 2')
    test_raises(lambda: lc[[True] * 6], IndexError, contains='5 items')
    test_raises(lambda: lc[10], IndexError)
    test_raises(lambda: lc['a'], TypeError, contains='ListContainer indices')
    test_raises(lambda: lc[[True, 1]], TypeError, contains='mixes')


def test_listcontainer_repr():
    assert repr(ListContainer([1, 2])) == 'ListContainer (2 items)\n[1, 2]'
    r = repr(ListContainer(range(25)))
    assert r.startswith('ListContainer (25 items)\n[0, 1,') and r.endswith('9, ...]') and '10' not in r
    assert ListContainer(3).items == [3] and ListContainer().items == []


# --- GeneralRelu, conv_layer, init_cnn -----------------------------------------------------------

def test_general_relu_matches_pytorch():
    torch.manual_seed(0)
    x = torch.randn(1000) * 5
    test_eq(GeneralRelu()(x), F.relu(x))
    test_near(GeneralRelu(leak=0.1)(x), F.leaky_relu(x, 0.1), eps=1e-6)
    test_near(GeneralRelu(sub=0.4)(x), F.relu(x) - 0.4, eps=1e-6)
    test_near(GeneralRelu(maxv=3.)(x), F.relu(x).clamp(max=3.), eps=1e-6)
    test_near(GeneralRelu(leak=0.1, sub=0.4, maxv=6.)(x), (F.leaky_relu(x, 0.1) - 0.4).clamp(max=6.), eps=1e-6)


def test_general_relu_gradient():
    torch.manual_seed(0)
    x1 = torch.randn(200, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_()
    GeneralRelu(leak=0.1, sub=0.4, maxv=1.)(x1).sum().backward()
    (F.leaky_relu(x2, 0.1) - 0.4).clamp(max=1.).sum().backward()
    test_eq(x1.grad, x2.grad)


def test_init_cnn_gives_kaiming_std():
    torch.manual_seed(0)
    model = get_cnn_model(DataBunch(None, None, c=10), [16, 32, 64], conv_layer, leak=0.1)
    init_cnn(model)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 3
    gain = math.sqrt(2 / (1 + 0.1 ** 2))
    for conv in convs:
        fan_in = conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1]
        n = conv.weight.numel()
        std = gain / math.sqrt(fan_in)
        # the sample std of n normal draws is within ~4/sqrt(2n) relative of the truth (tiny first layer included)
        assert abs(conv.weight.std().item() / std - 1) < 4 / math.sqrt(2 * n), (conv, conv.weight.std(), std)
        assert abs(conv.weight.mean().item()) < 4 * std / math.sqrt(n)
        test_eq(conv.bias, torch.zeros_like(conv.bias))


def test_init_cnn_uniform_bound_and_nested():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Sequential(nn.Sequential(nn.Conv2d(32, 64, 3))), nn.Linear(3, 3))
    linear_before = model[1].weight.detach().clone()
    init_cnn(model, uniform=True)
    w = model[0][0][0].weight
    bound = math.sqrt(2 / (1 + 0.1 ** 2)) * math.sqrt(3 / (32 * 9))
    assert w.abs().max() <= bound and w.abs().max() > 0.99 * bound
    test_near(w.std(), bound / math.sqrt(3), eps=0.02)
    test_eq(model[1].weight, linear_before)          # only convs are touched


# --- devices and batch transforms ----------------------------------------------------------------

def test_default_device():
    d = default_device()
    assert isinstance(d, torch.device)
    expected = 'cuda' if torch.cuda.is_available() else (
        'mps' if getattr(torch.backends, 'mps', None) and torch.backends.mps.is_available() else 'cpu')
    assert d.type == expected


def test_device_callback_argument():
    assert DeviceCallback().device == default_device()
    assert DeviceCallback('cpu').device == torch.device('cpu')
    assert DeviceCallback(torch.device('cpu')).device == torch.device('cpu')
    test_raises(lambda: DeviceCallback('gpu'), ValueError, contains="device='gpu'")


class SpyCallback(Callback):
    "Records the device and shape of every batch the model is given, after the other callbacks ran."
    _order = 10
    def begin_fit(self): self.devices, self.shapes, self.param_devices = [], [], []
    def after_pred(self):
        self.devices.append(self.xb.device)
        self.shapes.append(tuple(self.xb.shape))
        self.param_devices.append(next(self.model.parameters()).device)


def tiny_data(n=64, bs=16):
    torch.manual_seed(0)
    x, y = torch.randn(n, 64), torch.randint(0, 3, (n,))
    return DataBunch(*get_dls(Dataset(x[:48], y[:48]), Dataset(x[48:], y[48:]), bs), c=3)


@pytest.mark.parametrize('device', [None, 'cpu'])
def test_device_callback_moves_model_and_batches(device):
    data = tiny_data()
    torch.manual_seed(0)
    model = small_model()
    dev_cb, spy = DeviceCallback(device), SpyCallback()
    learn, run = get_runner(model, data, lr=0.1, cbs=[dev_cb, spy, partial(BatchTransformXCallback, view_tfm(1, 8, 8))])
    run.fit(1, learn)
    assert len(spy.devices) == 3 + 1          # 3 training batches + 1 validation batch
    assert all(d == dev_cb.device or (d.type == dev_cb.device.type and dev_cb.device.index is None)
               for d in spy.devices + spy.param_devices)
    assert spy.shapes[0] == (16, 1, 8, 8)     # the batch transform ran too


def test_view_tfm_and_bad_sizes():
    x = torch.arange(2 * 784.).view(2, 784)
    test_eq(view_tfm(1, 28, 28)(x).shape, (2, 1, 28, 28))
    test_eq(view_tfm(1, 28, 28)(x)[1, 0, 0, :3], x[1, :3])
    test_raises(lambda: view_tfm(), ValueError, contains='view_tfm')
    test_raises(lambda: view_tfm(1, -28, 28), ValueError, contains='view_tfm')


def test_get_runner_accepts_callbacks_and_factories():
    data = tiny_data()
    cb = SpyCallback()
    learn, run = get_runner(small_model(), data, lr=0.3, cbs=[cb, partial(BatchTransformXCallback, view_tfm(1, 8, 8))])
    assert isinstance(learn.opt, optim.SGD) and learn.opt.param_groups[0]['lr'] == 0.3
    assert learn.loss_func is F.cross_entropy
    run.fit(1, learn)
    assert len(cb.shapes) == 4


def test_get_cnn_model_shapes_and_errors():
    model = get_cnn_model(DataBunch(None, None, c=10), [8, 16, 32, 32], conv_layer, leak=0.1, sub=0.4)
    test_eq(model(torch.randn(3, 1, 28, 28)).shape, (3, 10))
    assert isinstance(model[0][1], GeneralRelu) and model[0][1].sub == 0.4
    assert model[0][0].kernel_size == (5, 5) and model[1][0].kernel_size == (3, 3)
    test_raises(lambda: get_cnn_model(DataBunch(None, None), [8], conv_layer), ValueError, contains='data.c')
