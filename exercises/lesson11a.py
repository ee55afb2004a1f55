"Lesson 11a's exercises: a state dict by hand (against `state_dict()`), freezing and the batch-norm splitter"
from functools import partial

import torch
from torch import nn

from exercises import equal, expect, exercise


class _WithBuffers(nn.Module):
    "Parameters, a None bias, a persistent and a non-persistent buffer, children nested two deep"
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, bias=False)
        self.register_buffer('kept', torch.arange(2.))
        self.register_buffer('dropped', torch.zeros(2), persistent=False)
        self.register_buffer('empty', None)
        self.seq = nn.Sequential(nn.BatchNorm2d(4), nn.Sequential(nn.Linear(4, 2), nn.Dropout()))
        self.scale = nn.Parameter(torch.tensor([2.]))


@exercise('11a.1')
def state_dict(state_dict_by_hand):
    "Keys and values against `m.state_dict()`, with a prefix too: parameters, persistent buffers, children"
    with torch.random.fork_rng(devices=[]):                  # the global RNG left as it was
        torch.manual_seed(0)
        m = _WithBuffers()
        m.seq[0](torch.randn(2, 4, 3, 3))                      # the running statistics move from 0 and 1
    for prefix in ('', 'net.'):
        what = f'your `state_dict_by_hand(m{", " + repr(prefix) if prefix else ""})`'
        ours, theirs = state_dict_by_hand(m, prefix) if prefix else state_dict_by_hand(m), m.state_dict(prefix=prefix)
        expect(isinstance(ours, dict), f'{what} returns a {type(ours).__name__}, expected a dict')
        for k in ours:
            expect(k in theirs, f'{what} has the key {k!r} that m.state_dict() does not have'
                                ' (None entries and non-persistent buffers are left out)')
        for k in theirs: expect(k in ours, f'{what} lacks the key {k!r} of m.state_dict()')
        for k, v in theirs.items():
            got = ours[k]
            expect(isinstance(got, torch.Tensor) and got.shape == v.shape and torch.equal(got, v),
                   f'{what}[{k!r}] is not m.state_dict()[{k!r}] (a tensor of shape {tuple(v.shape)})')
            expect(not got.requires_grad, f'{what}[{k!r}] requires grad, expected a detached tensor as in m.state_dict()')


def _model():
    "A (body, head...) CNN: convs with and without bias, batch norms nested in the body, a batch norm in the head"
    body = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Sequential(nn.Conv2d(8, 8, 3, bias=False), nn.BatchNorm2d(8), nn.ReLU()),
                         nn.Conv2d(8, 4, 1))
    return nn.Sequential(body, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.BatchNorm1d(4), nn.Linear(4, 3))


def _kept_trainable(model):
    "Names of the parameters `set_grad` leaves alone: those of linear and batch-norm layers"
    return {f'{n}.{k}' if n else k for n, l in model.named_modules()
            if isinstance(l, (nn.Linear, nn.modules.batchnorm._BatchNorm)) for k, _ in l.named_parameters(recurse=False)}


def _flags(what, model, want):
    for n, p in model.named_parameters():
        expect(p.requires_grad == (n in want), f'{what}: parameter {n} has requires_grad {p.requires_grad}, '
                                               f'expected {n in want}')


@exercise('11a.2')
def freezing(set_grad):
    "model.apply(partial(set_grad, b=False)) freezes all but the linear and batch-norm layers; b=True unfreezes them"
    m = _model()
    kept = _kept_trainable(m)
    set_grad(m, False)
    _flags('your `set_grad(model, False)` on the outer nn.Sequential alone (it has no parameters of its own)', m,
           {n for n, _ in m.named_parameters()})
    m.apply(partial(set_grad, b=False))
    _flags('after `model.apply(partial(set_grad, b=False))`, your `set_grad`', m, kept)
    for p in m.parameters(): p.requires_grad_(False)
    m.apply(partial(set_grad, b=True))
    _flags('after freezing every parameter then `model.apply(partial(set_grad, b=True))`, your `set_grad`', m,
           {n for n, _ in m.named_parameters()} - kept)


@exercise('11a.3')
def splitter(bn_splitter):
    "Two groups: the body's non-batch-norm parameters; the body's batch norms and the whole head, every parameter once"
    m = _model()
    groups = list(bn_splitter(m))
    equal('the number of parameter groups your `bn_splitter` returns', len(groups), 2)
    names = {id(p): n for n, p in m.named_parameters()}
    body_bn = {f'0.{n}.{k}' for n, l in m[0].named_modules() if isinstance(l, nn.modules.batchnorm._BatchNorm)
               for k, _ in l.named_parameters(recurse=False)}
    want = {n: (1 if n in body_bn or not n.startswith('0.') else 0) for n in names.values()}
    seen = {}
    for g, group in enumerate(groups):
        for p in group:
            expect(id(p) in names, f'your `bn_splitter` puts a tensor of shape {tuple(p.shape)} that is not a parameter '
                                   f'of the model in group {g}')
            n = names[id(p)]
            expect(n not in seen, f'your `bn_splitter` puts parameter {n} in group {seen.get(n)} and again in group {g}')
            seen[n] = g
            expect(want[n] == g, f'your `bn_splitter` puts parameter {n} in group {g}, expected group {want[n]} '
                                 '(0: the body but its batch norms; 1: its batch norms and the head)')
    for n, g in want.items():
        expect(n in seen, f'your `bn_splitter` leaves out parameter {n}, expected in group {g}')
