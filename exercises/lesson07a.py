"Lesson 07a's exercises: find_modules against a walk of named_modules, LSUV's result measured on the batch"
import warnings

import torch
from torch import nn

from exercises import close, equal, exercise, expect


def _tree():
    "A model with matches inside matches: Sequentials in Sequentials, convs and linears at several depths"
    return nn.Sequential(
        nn.Conv2d(3, 4, 3),
        nn.Sequential(nn.Conv2d(4, 4, 3), nn.ReLU(), nn.Sequential(nn.Conv2d(4, 8, 1), nn.ReLU())),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Sequential(nn.Linear(8, 8), nn.Sequential(nn.Linear(8, 2))))


def _oracle_find(model, cond):
    "The definition: the modules for which cond holds and for none of their ancestors, in depth-first order"
    found = []
    for name, m in model.named_modules():
        ancestors = [a for a in found if a == '' or name.startswith(a + '.')]
        if cond(m) and not ancestors: found.append(name)
    return found


@exercise('07a.1')
def find_modules_check(find_modules):
    "Linear layers at several depths, Sequentials inside Sequentials (a match is not searched further), no match"
    model = _tree()
    names = {id(m): ('model.' + n if n else 'model') for n, m in model.named_modules()}
    conds = {'is a Conv2d or Linear': lambda m: isinstance(m, (nn.Conv2d, nn.Linear)),
             'is a Linear': lambda m: isinstance(m, nn.Linear),
             'is a Sequential': lambda m: isinstance(m, nn.Sequential),
             'is a Sequential other than the model': lambda m: isinstance(m, nn.Sequential) and m is not model,
             'is a BatchNorm2d': lambda m: isinstance(m, nn.BatchNorm2d)}
    for text, cond in conds.items():
        got = find_modules(model, cond)
        expect(isinstance(got, (list, tuple)), f'your `find_modules` returned a {type(got).__name__}, expected a list')
        got = [names.get(id(m), type(m).__name__ + ' (not in the model)') for m in got]
        want = ['model.' + n if n else 'model' for n in _oracle_find(model, cond)]
        equal(f'your `find_modules(model, cond)` for "{text}"', got, want,
              note=' (depth first, and the inside of a match is not searched)')


def _lsuv_model(ConvLayer):
    "ConvLayers whose convs have a large bias, so that one rescaling is not enough; then a linear head"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = nn.Sequential(ConvLayer(3, 8, 3, stride=2, leak=0.1), ConvLayer(8, 16, 3, stride=2, leak=0.1),
                              nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 4))
    with torch.no_grad():
        for layer in model[:2]: layer.conv.bias.fill_(0.5)
        model[4].bias.fill_(3.)
    return model


def _output_stats(model, module, xb):
    "The mean and std of `module`'s output in `model(xb)`, in eval mode, as lsuv_module's own measure reads them"
    got = {}
    h = module.register_forward_hook(lambda m, i, o: got.update(o=o.detach().float()))
    try:
        model.eval()
        with torch.no_grad(): model(xb)
    finally: h.remove()
    return got['o'].mean().item(), got['o'].std().item()


@exercise('07a.2')
def lsuv_check(lsuv_module, ConvLayer):
    "After lsuv_module, the layer's output on the batch has mean 0 and std 1 (within tol), by a rescaled weight"
    g = torch.Generator().manual_seed(1)
    xb = torch.randn(16, 3, 16, 16, generator=g) * 2 + 1
    for i, what, tol in ((1, 'the second ConvLayer, model[1]', 1e-3), (4, 'the Linear head, model[4]', 1e-3),
                         (0, 'the first ConvLayer, model[0]', 1e-4)):
        model = _lsuv_model(ConvLayer)
        module = model[i]
        w0 = module.weight.detach().clone()
        others = {n: p.detach().clone() for n, p in model.named_parameters() if not n.startswith(f'{i}.')}
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            res = lsuv_module(model, module, xb, tol=tol)
        mean, std = _output_stats(model, module, xb)
        call = f'your `lsuv_module(model, {what.split(", ")[1]}, xb, tol={tol})`'
        note = f' on a (16, 3, 16, 16) batch (output of {what})'
        close(f'{call}: the output mean', mean, 0., atol=tol + 1e-6, rtol=0, note=note)
        close(f'{call}: the output std', std, 1., atol=tol + 1e-6, rtol=0, note=note)
        expect(isinstance(res, tuple) and len(res) == 2, f'{call} returned {res!r}, expected the final (mean, std)')
        close(f'{call}: the (mean, std) it returned', torch.tensor(res), torch.tensor([mean, std]), atol=1e-5,
              note=' (what the layer\'s output has after it)')
        ratio = module.weight.detach() / w0
        expect(bool((ratio > 0).all()) and (ratio.max() - ratio.min()).item() <= 1e-4 * ratio.abs().max().item(),
               f'{call} changed the weight of {what} by more than one positive factor: LSUV only rescales it')
        for n, p in model.named_parameters():
            if n in others:
                expect(torch.equal(p.detach(), others[n]), f'{call} changed `{n}`, a parameter of another layer')
