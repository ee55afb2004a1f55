"""A tiny synthetic learner for tests of the training loop: they run in milliseconds and need no dataset.

The data is y = a·x + b + noise for scalar x (default a=2, b=3), the model `RegModel` has exactly two
parameters (`a` and `b`, starting at 0), the loss is MSE. Everything is seeded, so two learners built
with the same arguments train identically.

    from synthetic import synth_learner, make_spy
    learn = synth_learner(n_train=16, bs=8)          # 2 training batches, 1 validation batch
    learn = synth_learner(two_groups=True)            # `a` and `b` in separate param groups

Test modules import it as `synthetic` (pytest puts `tests/` on `sys.path`, see pyproject.toml).
"""
import torch
import torch.nn.functional as F
from torch import nn, optim
from torch.utils.data import DataLoader, TensorDataset

from exp.nb_04 import Callback, DataBunch, Learner

__all__ = ['RegModel', 'synth_dataset', 'synth_data', 'synth_learner', 'make_spy']


class RegModel(nn.Module):
    "y = a·x + b, with `a` and `b` scalar parameters."
    def __init__(self, a=0., b=0.):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(float(a)))
        self.b = nn.Parameter(torch.tensor(float(b)))

    def forward(self, x): return x * self.a + self.b


def synth_dataset(n, a=2., b=3., noise=0.1, seed=0):
    "`n` pairs (x, a·x + b + noise·ε), x and ε standard normal, as a TensorDataset of float32 scalars."
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, generator=g)
    return TensorDataset(x, a * x + b + noise * torch.randn(n, generator=g))


def synth_data(n_train=16, n_valid=16, bs=8, valid_bs=None, shuffle=True, seed=0, **kwargs):
    "A DataBunch of torch DataLoaders: `n_train` items in batches of `bs` (shuffled with its own seeded generator), `n_valid` in batches of `valid_bs` (default 2·bs)."
    train_dl = DataLoader(synth_dataset(n_train, seed=seed, **kwargs), batch_size=bs, shuffle=shuffle,
                          generator=torch.Generator().manual_seed(seed))
    valid_dl = DataLoader(synth_dataset(n_valid, seed=seed + 1, **kwargs), batch_size=valid_bs or 2 * bs)
    return DataBunch(train_dl, valid_dl)


def synth_learner(n_train=16, n_valid=16, bs=8, lr=0.1, momentum=0., two_groups=False, seed=0, **kwargs):
    "A `Learner`: `RegModel` (a=b=0), SGD(lr, momentum), MSE loss, `synth_data(...)`; `two_groups` puts `a` and `b` in separate param groups."
    model = RegModel()
    params = [{'params': [model.a]}, {'params': [model.b]}] if two_groups else model.parameters()
    opt = optim.SGD(params, lr=lr, momentum=momentum)
    return Learner(model, opt, F.mse_loss, synth_data(n_train, n_valid, bs, seed=seed, **kwargs))


def make_spy(events, raise_at=None, base=Callback):
    """A callback class (subclass of `base`) whose instances append each event of `events` to `self.events`.

    `raise_at` makes it raise: `{event: exc}` the first time `event` fires, `{(event, n): exc}` the n-th
    time (1-based); `exc` is an exception class or instance."""
    raise_at = dict(raise_at or {})

    def handler(e):
        def _h(self):
            self.events.append(e)
            n = self.events.count(e)
            exc = raise_at.get((e, n)) or (raise_at.get(e) if n == 1 else None)
            if exc is not None: raise exc() if isinstance(exc, type) else exc
        _h.__name__ = e
        return _h

    def __init__(self): self.events = []
    return type('SpyCallback', (base,), {'__init__': __init__, **{e: handler(e) for e in events}})
