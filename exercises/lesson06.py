"Lesson 06's exercises: the stats hook against counts from the definition, GeneralRelu against its definition, init_cnn's statistics"
import math
from types import SimpleNamespace

import torch
from torch import nn

from exercises import close, equal, exercise, expect


def _batch(*shape, seed=0, scale=3., shift=2.):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g) * scale + shift


def _hist(x, lo, hi, bins):
    "Counts of the values of `x` in `bins` equal bins over [lo, hi] (the last bin holds hi too), in float64"
    x, w = x.double().flatten(), (hi - lo) / bins
    counts = [((x >= lo + k * w) & ((x < lo + (k + 1) * w) if k < bins - 1 else (x <= hi))).sum() for k in range(bins)]
    return torch.stack(counts).double()


@exercise('06.1')
def stats_hook(append_stats):
    "Two training batches through the hook function: means, stds (either estimator) and histograms of the outputs"
    mod = nn.Identity().train()
    for kwargs, (lo, hi, bins) in (({}, (0, 10, 40)), ({'hist_range': (-2, 2), 'bins': 8}, (-2, 2, 8))):
        hook, outs = SimpleNamespace(), [_batch(4, 8, 6, 6, seed=s) for s in (1, 2)]
        call = 'append_stats(hook, mod, inp, outp' + ''.join(f', {k}={v!r}' for k, v in kwargs.items()) + ')'
        for o in outs: append_stats(hook, mod, (o,), o.requires_grad_(), **kwargs)
        expect(isinstance(getattr(hook, 'stats', None), (tuple, list)) and len(hook.stats) == 3,
               f'your `{call}` left no (means, stds, hists) in `hook.stats`')
        means, stds, hists = hook.stats
        for name, got in (('means', means), ('stds', stds), ('hists', hists)):
            equal(f'the number of {name} in `hook.stats` after your `{call}` ran on 2 batches', len(got), 2)
        for i, o in enumerate(outs):
            what, note = f'your `{call}`: the {{}} of batch {i}', ' (outputs of shape (4, 8, 6, 6))'
            o = o.detach()
            close(what.format('mean'), means[i], o.mean(), atol=1e-5, note=note)
            close(what.format('std'), stds[i], o.std(), atol=1e-5, rtol=2e-3, note=note)
            close(what.format(f'histogram ({bins} bins over [{lo}, {hi}])'), hists[i], _hist(o, lo, hi, bins),
                  atol=0, rtol=0, note=', counting values in each bin; values outside the range are left out')


def _general_relu(x, leak, sub, maxv):
    "From the definition: x where positive, else slope (leak, or 0) times x; then shifted down by sub, capped at maxv"
    y = torch.where(x > 0, x, (leak or 0.) * x) - (sub or 0.)
    return y if maxv is None else torch.minimum(y, torch.full_like(y, maxv))


@exercise('06.2')
def general_relu(GeneralRelu):
    "GeneralRelu's forward with each option alone and all together, against the definition (the ReLU, then sub, then maxv)"
    x = _batch(6, 10, seed=3, scale=4., shift=0.5)              # values from about -10 to 12
    for leak, sub, maxv in ((None, None, None), (0.1, None, None), (None, 0.4, None), (None, None, 1.5),
                            (0.1, 0.4, 6.), (0.2, -0.5, 3.)):
        close(f'your `GeneralRelu(leak={leak}, sub={sub}, maxv={maxv})` output', GeneralRelu(leak, sub, maxv)(x),
              _general_relu(x, leak, sub, maxv), atol=1e-6, note=' on a (6, 10) batch with values from -10 to 12')


def _convs(model):
    return [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def _model():
    "Convs at depths 2 and 3 of nested Sequentials, one without a bias; every weight 1 and bias 0.5 to start with"
    m = nn.Sequential(nn.Sequential(nn.Conv2d(64, 128, 3), nn.ReLU()),
                      nn.Sequential(nn.Sequential(nn.Conv2d(128, 64, 3)), nn.Conv2d(64, 32, 3, bias=False)),
                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))
    with torch.no_grad():
        for _, c in _convs(m):
            c.weight.fill_(1.)
            if c.bias is not None: c.bias.fill_(0.5)
    return m


@exercise('06.3')
def kaiming_init(init_cnn):
    "Weight std close to sqrt(2 / (1 + 0.1²) / fan_in) for nested convs, normal or uniform as asked, biases zero"
    for uniform in (False, True):
        model = _model()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            res = init_cnn(model, uniform=uniform)
        call = f'your `init_cnn(model, uniform={uniform})`'
        expect(res is model, f'{call} returned {type(res).__name__}, expected the model it was given')
        for name, c in _convs(model):
            w, fan_in = c.weight.detach().double(), c.in_channels * c.kernel_size[0] * c.kernel_size[1]
            std, bound = math.sqrt(2 / (1 + 0.1 ** 2) / fan_in), math.sqrt(2 / (1 + 0.1 ** 2) * 3 / fan_in)
            layer = f'Conv2d({c.in_channels}, {c.out_channels}, {c.kernel_size[0]}) at model.{name} (fan_in {fan_in})'
            close(f'{call}: the weight std of {layer}', w.std(), std, atol=0, rtol=0.05,
                  note=' (Kaiming with a=0.1: sqrt(2 / (1 + a²) / fan_in))')
            close(f'{call}: the weight mean of {layer}', w.mean(), 0., atol=5 * std / math.sqrt(w.numel()))
            top = w.abs().max().item()
            if uniform:
                expect(top <= bound * (1 + 1e-6), f'{call}: the weights of {layer} reach {top:.4g}, beyond the '
                       f'bound {bound:.4g} of kaiming_uniform_: are they uniform?')
            else:
                expect(top > bound, f'{call}: the weights of {layer} all lie within {bound:.4g}, the bound of '
                       'kaiming_uniform_: expected normal weights (kaiming_normal_)')
            if c.bias is not None:
                close(f'{call}: the bias of {layer}', c.bias, torch.zeros_like(c.bias), atol=0, rtol=0)
