"""Lesson 07a: LSUV on real MNIST batches, its iteration cap and cleanup, and the helpers it is built from.

Everything is imported from `exp.nb_07a`: LSUV must work outside its notebook (the 2019 version read
notebook globals). Statistics are measured here with plain `register_forward_hook`, not with the
library's own hooks.
"""
import warnings

import pytest
import torch
from torch import nn
import torch.nn.functional as F

from exp.nb_00 import test_eq, test_near, test_raises
from exp.nb_01 import get_data
from exp.nb_03 import Dataset, get_dls
from exp.nb_04 import DataBunch, Learner
from exp.nb_05b import Callback, Runner
from exp.nb_06 import BatchTransformXCallback, DeviceCallback, get_cnn_model, init_cnn, normalize_to, view_tfm
from exp.nb_07 import conv_layer      # lesson 06's: conv with a bias, then GeneralRelu (no batch norm)
from exp.nb_07a import ConvLayer, find_modules, get_batch, is_lin_layer, lsuv_init, lsuv_module


@pytest.fixture(scope='module')
def mnist():
    "Normalised MNIST images as (n, 1, 28, 28): 2,048 training and 512 validation images, with labels."
    x_train, y_train, x_valid, y_valid = get_data()
    x_train, x_valid = normalize_to(x_train[:2048], x_valid[:512])
    return x_train.view(-1, 1, 28, 28), y_train[:2048], x_valid.view(-1, 1, 28, 28), y_valid[:512]


def cnn(nfs=(8, 16, 32), seed=0, **kwargs):
    "A small Kaiming-initialised CNN of `ConvLayer`s for MNIST (10 classes)."
    torch.manual_seed(seed)
    return init_cnn(get_cnn_model(DataBunch(None, None, c=10), list(nfs), ConvLayer, **kwargs))


def output_stats(model, mods, xb):
    "The (mean, std) of each module's output in `model(xb)`, measured with plain forward hooks."
    stats = {}
    def store(mod, inp, outp): stats[mod] = outp.mean().item(), outp.std().item()
    handles = [m.register_forward_hook(store) for m in mods]
    try:
        with torch.no_grad(): model(xb)
    finally:
        for h in handles: h.remove()
    return [stats[m] for m in mods]


def n_hooks(model): return sum(len(m._forward_hooks) for m in model.modules())


def count_calls(module):
    "A list that gets one entry per forward call of `module`, and the handle to remove the counter."
    calls = []
    return calls, module.register_forward_hook(lambda mod, inp, outp: calls.append(1))


def is_convlayer(m): return isinstance(m, ConvLayer)


# ---------------------------------------------------------------------------------------- ConvLayer

def test_convlayer_matches_functional_and_bias_is_the_shift():
    torch.manual_seed(0)
    layer = ConvLayer(3, 4, ks=3, stride=1, sub=0.2, leak=0.1, maxv=2.)
    x = torch.randn(2, 3, 6, 6)
    expected = (F.leaky_relu(F.conv2d(x, layer.conv.weight, layer.conv.bias, padding=1), 0.1) - 0.2).clamp_max(2.)
    test_near(layer(x), expected, eps=1e-6)
    assert layer.weight is layer.conv.weight
    test_near(layer.bias, -0.2, eps=1e-12)
    before = layer(x)
    layer.bias = 0.5                                     # bias = -sub
    test_near(layer.relu.sub, -0.5, eps=1e-12)
    test_near(layer(x), (before + 0.7).clamp_max(2.), eps=1e-5)
    test_eq(ConvLayer(1, 2, sub=None).bias, 0.)          # no shift at all reads as bias 0


# ----------------------------------------------------------------------------- find_modules, is_lin_layer

def test_find_modules_searches_the_whole_tree_in_order():
    inner = ConvLayer(8, 8, stride=1)
    model = nn.Sequential(ConvLayer(1, 8), nn.Sequential(nn.Sequential(inner), nn.ReLU()), nn.Linear(8, 2))
    found = find_modules(model, is_convlayer)
    test_eq(len(found), 2)
    assert found[0] is model[0] and found[1] is inner
    lins = find_modules(model, is_lin_layer)             # the convs inside the ConvLayers, then the head
    test_eq([type(m) for m in lins], [nn.Conv2d, nn.Conv2d, nn.Linear])
    assert lins[1] is inner.conv
    assert find_modules(model, lambda m: m is model) == [model]   # a match is not searched further
    test_eq(find_modules(model, lambda m: isinstance(m, nn.GRU)), [])


def test_is_lin_layer():
    for m in (nn.Conv1d(1, 2, 3), nn.Conv2d(1, 2, 3), nn.Conv3d(1, 2, 3), nn.Linear(2, 3)): assert is_lin_layer(m)
    for m in (nn.ReLU(), nn.BatchNorm2d(3), ConvLayer(1, 2), nn.Sequential(nn.Linear(2, 3))): assert not is_lin_layer(m)


# ------------------------------------------------------------------------------------------- get_batch

class RecordBeginBatch(Callback):
    "Records what a `begin_batch` callback sees: the phase flag and (if there is one) the model."
    def __init__(self): self.seen = []
    def begin_batch(self): self.seen.append((self.in_train, type(self.model).__name__))


def mnist_runner(mnist, bs=64):
    x_train, y_train, x_valid, y_valid = mnist
    data = DataBunch(*get_dls(Dataset(x_train.view(-1, 784), y_train), Dataset(x_valid.view(-1, 784), y_valid), bs), c=10)
    rec = RecordBeginBatch()
    run = Runner(cbs=[DeviceCallback('cpu'), BatchTransformXCallback(view_tfm(1, 28, 28)), rec])
    return data, run, rec


def test_get_batch_applies_begin_batch_and_leaves_the_runner_as_it_was(mnist):
    data, run, rec = mnist_runner(mnist)
    run.xb = 'kept'                                      # an attribute that was there before stays
    run.in_train = True                                  # (the loop sets in_train False when built)
    model = cnn()
    learn = Learner(model, torch.optim.SGD(model.parameters(), lr=0.1), F.cross_entropy, data)
    xb, yb = get_batch(data.valid_dl, run, learn=learn)  # the validation loader is not shuffled
    test_eq(xb.shape, (128, 1, 28, 28))                  # viewed as images by the callback
    test_eq(xb, mnist[2][:128])
    test_eq(yb, mnist[3][:128])
    test_eq(rec.seen, [(False, 'Sequential')])           # run as for validation, with the learner's model
    test_eq(run.xb, 'kept')
    assert run.in_train is True                          # put back; the callback saw False
    assert not hasattr(run, 'yb') and not hasattr(run, 'learn')


def test_get_batch_errors(mnist):
    data, run, rec = mnist_runner(mnist)
    test_raises(lambda: get_batch([], run), ValueError, contains='no batch')
    # a callback that needs the model, without a learner: the error is the runner's, and the runner is cleaned up
    test_raises(lambda: get_batch(data.valid_dl, run), AttributeError)
    assert not hasattr(run, 'xb') and run.in_train is False     # as the loop was built


# ----------------------------------------------------------------------------------------------- LSUV

@pytest.mark.parametrize('kwargs', [{}, dict(leak=0.1, sub=0.4, maxv=6.)], ids=['relu', 'general_relu'])
def test_lsuv_init_gives_unit_stats_on_mnist(mnist, kwargs):
    x_train, _, x_valid, _ = mnist
    model = cnn(nfs=(8, 16, 32, 64), **kwargs)
    convs = find_modules(model, is_convlayer)
    before = output_stats(model, convs, x_train[:256])
    assert max(abs(m) for m, s in before) > 0.1          # not already normalised
    model.train()
    final = lsuv_init(model, x_train[:256])
    test_eq(len(final), len(convs))
    assert model.training and all(m.training for m in model.modules())   # training flags restored
    for (m, s), (fm, fs) in zip(output_stats(model, convs, x_train[:256]), final):
        assert abs(m) < 1e-3 + 1e-5 and abs(s - 1) < 1e-3 + 1e-5, (m, s)   # within tol on the batch used
        test_near(m, fm, eps=1e-5); test_near(s, fs, eps=1e-5)
    for m, s in output_stats(model, convs, x_valid):                       # and close on other images
        assert abs(m) < 0.1 and abs(s - 1) < 0.1, (m, s)
    test_eq(n_hooks(model), 0)


def test_lsuv_model_survives_a_state_dict_round_trip(mnist, tmp_path):
    "The shifts LSUV sets are plain numbers: ConvLayer saves them as extra state, so a saved model comes back whole"
    x_train = mnist[0][:256]
    model = cnn(nfs=(8, 16))
    lsuv_init(model, x_train)
    torch.save(model.state_dict(), tmp_path/'lsuv.pt')
    fresh = cnn(nfs=(8, 16), seed=1)
    fresh.load_state_dict(torch.load(tmp_path/'lsuv.pt'))
    subs = [m.relu.sub for m in find_modules(model, is_convlayer)]
    assert any(abs(s) > 0.01 for s in subs)              # LSUV did move the shifts
    test_eq([m.relu.sub for m in find_modules(fresh, is_convlayer)], subs)
    with torch.no_grad(): test_eq(fresh.eval()(x_train[:32]), model.eval()(x_train[:32]))


def test_lsuv_on_linear_layers_shifts_tensor_biases(mnist):
    torch.manual_seed(0)
    model = init_cnn(get_cnn_model(DataBunch(None, None, c=10), [8, 16, 32], conv_layer))
    lins = find_modules(model, is_lin_layer)
    test_eq(len(lins), 4)                                # three convs and the head
    lsuv_init(model, mnist[0][:256], cond=is_lin_layer)
    for m, s in output_stats(model, lins, mnist[0][:256]):
        assert abs(m) < 0.01 and abs(s - 1) < 0.01, (m, s)
    assert all(isinstance(p, nn.Parameter) for p in (lins[0].weight, lins[0].bias))   # still parameters, changed in place


class RegisteredBackwards(nn.Module):
    "Children registered in the opposite order to the one they run in."
    def __init__(self):
        super().__init__()
        self.second = ConvLayer(8, 8, stride=1)
        self.first = ConvLayer(1, 8)
    def forward(self, x): return self.second(self.first(x))


def test_lsuv_init_goes_in_the_order_layers_run(mnist):
    torch.manual_seed(0)
    model = init_cnn(RegisteredBackwards())
    lsuv_init(model, mnist[0][:256])
    for m, s in output_stats(model, [model.first, model.second], mnist[0][:256]):
        assert abs(m) < 0.01 and abs(s - 1) < 0.01, (m, s)


def test_lsuv_max_iter_1_stops_after_one_round(mnist):
    model = cnn(nfs=(8,), maxv=1.)                       # the clamp means one round is not exact
    layer = model[0]
    calls, handle = count_calls(layer)
    with pytest.warns(RuntimeWarning, match='max_iter=1'):
        lsuv_module(model, layer, mnist[0][:256], tol=1e-7, max_iter=1)
    handle.remove()
    test_eq(len(calls), 3)                               # measure, then (rescale, measure, shift, measure) once


def test_lsuv_stops_early_when_converged(mnist):
    model = cnn(nfs=(8,))                                # plain ReLU, conv bias 0: one round is exact
    calls, handle = count_calls(model[0])
    with warnings.catch_warnings():
        warnings.simplefilter('error')                   # no warning when it converges
        mean, std = lsuv_module(model, model[0], mnist[0][:256], tol=1e-3, max_iter=10)
    handle.remove()
    assert abs(mean) <= 1e-3 and abs(std - 1) <= 1e-3
    test_eq(len(calls), 1 + 2 * 1)


def test_lsuv_layer_that_cannot_reach_std_1_ends_at_the_cap(mnist):
    model = cnn(nfs=(8,), maxv=0.1)                      # outputs clamped to a narrow band: std stays far below 1
    calls, handle = count_calls(model[0])
    with pytest.warns(RuntimeWarning, match='max_iter=4') as record:
        mean, std = lsuv_module(model, model[0], mnist[0][:256], max_iter=4)
    handle.remove()
    test_eq(len(calls), 1 + 2 * 4)
    assert std < 0.5
    assert f'{std:.4f}' in str(record[0].message)        # the warning says where it ended
    test_eq(n_hooks(model), 0)


def test_hooks_removed_and_flags_restored_when_lsuv_raises(mnist):
    model = cnn(nfs=(8, 16))
    with torch.no_grad():                                # a dead first layer: constant output, std 0
        model[0].conv.weight.zero_(); model[0].conv.bias.zero_()
    model.train()
    test_raises(lambda: lsuv_init(model, mnist[0][:64]), RuntimeError, contains='ConvLayer')
    test_eq(n_hooks(model), 0)
    assert all(m.training for m in model.modules())


class OneUnused(nn.Module):
    "Two ConvLayers registered, one called in forward."
    def __init__(self):
        super().__init__()
        self.used, self.spare = ConvLayer(1, 4), ConvLayer(4, 4)
    def forward(self, x): return self.used(x)


def test_lsuv_bad_arguments(mnist):
    xb = mnist[0][:32]
    model = cnn(nfs=(8,))
    test_raises(lambda: lsuv_module(model, ConvLayer(1, 8), xb), ValueError, contains='not a module of the model')
    no_bias = nn.Sequential(nn.Conv2d(1, 4, 3, bias=False))
    test_raises(lambda: lsuv_module(no_bias, no_bias[0], xb), ValueError, contains='has no bias')
    test_raises(lambda: lsuv_init(no_bias, xb), ValueError, contains='no module of the model matches')
    test_raises(lambda: lsuv_init(model, xb, max_iter=0), ValueError, contains='max_iter')
    test_raises(lambda: lsuv_init(model, xb, max_iter=2.5), ValueError, contains='max_iter')
    test_raises(lambda: lsuv_module(model, model[0], xb, tol=0), ValueError, contains='tol')
    unused = OneUnused()
    test_raises(lambda: lsuv_init(unused, xb), ValueError, contains='do not run')
    test_eq(n_hooks(unused), 0)
