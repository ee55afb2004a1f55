"""Oracle tests for lesson 03: losses against torch.nn.functional, our data pipeline against
torch.utils.data, parameter registration, our optimizer against optim.SGD, and a short real fit."""
import math
import pytest
import torch
import torch.nn.functional as F
from torch import nn, optim
from torch.utils.data import DataLoader, RandomSampler, SequentialSampler

from exp.nb_00 import test_eq
from exp.nb_01 import get_data
from exp.nb_02 import normalize
from exp.nb_03 import (log_softmax, logsumexp, nll, cross_entropy, accuracy, Dataset, Sampler, collate,
                       SimpleDataLoader, DummyModule, SequentialModel, Optimizer, fit, get_dls)


def logits(n=16, c=10, scale=3., seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, generator=g) * scale, torch.randint(0, c, (n,), generator=g)


@pytest.mark.parametrize('scale', [1., 30., 1e4])
def test_losses_match_torch(scale):
    x, y = logits(scale=scale)
    torch.testing.assert_close(logsumexp(x), torch.logsumexp(x, -1))
    torch.testing.assert_close(logsumexp(x, dim=0), torch.logsumexp(x, 0))
    torch.testing.assert_close(log_softmax(x), F.log_softmax(x, -1))
    torch.testing.assert_close(nll(F.log_softmax(x, -1), y), F.nll_loss(F.log_softmax(x, -1), y))
    torch.testing.assert_close(cross_entropy(x, y), F.cross_entropy(x, y))


def test_large_logits_no_overflow():
    x = torch.tensor([[1000., 0., -1000.], [89., 88., 0.], [-1e4, -1e4 - 1, -1e4 - 2]])
    naive = (x.exp() / x.exp().sum(-1, keepdim=True)).log()
    assert not torch.isfinite(naive).all()          # the naive formula breaks on these rows
    assert torch.isfinite(logsumexp(x)).all()
    torch.testing.assert_close(logsumexp(x), torch.logsumexp(x, -1))
    torch.testing.assert_close(log_softmax(x), F.log_softmax(x, -1))
    y = torch.tensor([0, 1, 2])
    torch.testing.assert_close(cross_entropy(x, y), F.cross_entropy(x, y))


def test_logsumexp_infinite_rows():
    x = torch.tensor([[-float('inf')] * 3, [float('inf'), 0., 1.], [0., -float('inf'), 1.]])
    torch.testing.assert_close(logsumexp(x), torch.logsumexp(x, -1))


def test_cross_entropy_gradient():
    x, y = logits(seed=1)
    a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    cross_entropy(a, y).backward()
    F.cross_entropy(b, y).backward()
    torch.testing.assert_close(a.grad, b.grad)


def test_nll_errors():
    with pytest.raises(ValueError, match='3 rows of log-probabilities but 2 targets'):
        nll(torch.zeros(3, 4), torch.tensor([0, 1]))


def test_accuracy():
    out = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    torch.testing.assert_close(accuracy(out, torch.tensor([1, 0, 0, 0])), torch.tensor(0.75))
    torch.testing.assert_close(accuracy(out, torch.tensor([0, 1, 0, 1])), torch.tensor(0.))


def small_ds(n=103, m=4):
    g = torch.Generator().manual_seed(0)
    return Dataset(torch.randn(n, m, generator=g), torch.randint(0, 10, (n,), generator=g))


def batches(dl): return [(xb.clone(), yb.clone()) for xb, yb in dl]


def assert_same_batches(ours, theirs):
    assert len(ours) == len(theirs)
    for (x1, y1), (x2, y2) in zip(ours, theirs):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)


def test_dataset():
    ds = small_ds()
    assert len(ds) == 103
    x, y = ds[5]
    assert torch.equal(x, ds.x[5]) and y == ds.y[5]
    xb, yb = ds[torch.tensor([3, 1])]
    assert torch.equal(xb, ds.x[[3, 1]])
    with pytest.raises(ValueError, match='x has 3 items but y has 2'):
        Dataset(torch.zeros(3, 2), torch.zeros(2))


@pytest.mark.parametrize('bs', [1, 10, 103, 200])
def test_sequential_loader_matches_torch(bs):
    ds = small_ds()
    ours = batches(SimpleDataLoader(ds, Sampler(ds, bs)))
    theirs = batches(DataLoader(ds, batch_size=bs, sampler=SequentialSampler(ds)))
    assert_same_batches(ours, theirs)
    assert len(SimpleDataLoader(ds, Sampler(ds, bs))) == len(DataLoader(ds, batch_size=bs))


@pytest.mark.parametrize('bs', [7, 64])
def test_shuffled_loader_matches_torch(bs):
    "Same seed, same permutation: RandomSampler draws torch.randperm(n, generator=g) as our Sampler does."
    ds = small_ds()
    ours = batches(SimpleDataLoader(ds, Sampler(ds, bs, shuffle=True, generator=torch.Generator().manual_seed(3))))
    theirs = batches(DataLoader(ds, batch_size=bs, sampler=RandomSampler(ds, generator=torch.Generator().manual_seed(3))))
    assert_same_batches(ours, theirs)
    # and with one explicit permutation given to both
    perm = torch.randperm(len(ds), generator=torch.Generator().manual_seed(4))
    ours = batches(SimpleDataLoader(ds, [perm[i:i+bs] for i in range(0, len(ds), bs)]))
    theirs = batches(DataLoader(ds, batch_size=bs, sampler=perm.tolist()))
    assert_same_batches(ours, theirs)


def test_sampler_shuffles_each_epoch():
    ds = small_ds()
    s = Sampler(ds, 10, shuffle=True, generator=torch.Generator().manual_seed(0))
    e1, e2 = torch.cat(list(s)), torch.cat(list(s))
    assert sorted(e1.tolist()) == list(range(103)) and sorted(e2.tolist()) == list(range(103))
    assert not torch.equal(e1, e2)
    assert [len(b) for b in Sampler(ds, 10)] == [10] * 10 + [3]
    with pytest.raises(ValueError, match='bs must be a positive int'):
        Sampler(ds, 0)


def test_collate_matches_default():
    ds = small_ds()
    items = [ds[i] for i in [4, 2, 9]]
    xb, yb = collate(items)
    xd, yd = torch.utils.data.default_collate(items)
    assert torch.equal(xb, xd) and torch.equal(yb, yd)


class TwoLayer(DummyModule):
    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(5, 4)
        self.scale = nn.Parameter(torch.ones(1))
        self.inner = SequentialModel(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
        self.not_a_param = torch.zeros(3)
        self.plain = [nn.Linear(2, 2)]        # a plain list is not registered, as in nn.Module
    def forward(self, x): return self.inner(self.l1(x) * self.scale)


def test_parameter_registration():
    torch.manual_seed(0)
    model = TwoLayer()
    expected = [model.scale, model.l1.weight, model.l1.bias] + list(model.inner.layers[0].parameters()) \
               + list(model.inner.layers[2].parameters())
    assert [id(p) for p in model.parameters()] == [id(p) for p in expected]
    # the same modules inside nn.Module find the same set
    ref = nn.Module()
    ref.l1, ref.scale, ref.inner = model.l1, model.scale, nn.Sequential(*model.inner.layers)
    assert {id(p) for p in model.parameters()} == {id(p) for p in ref.parameters()}
    model.l1 = None                           # reassigning removes the old registration
    assert len(list(model.parameters())) == 5
    model.eval()
    assert not model.training and not model.inner.layers[0].training
    model.train()
    assert model.inner.layers[2].training


def test_registration_needs_init():
    class Bad(DummyModule):
        def __init__(self): self.l = nn.Linear(2, 2)
    with pytest.raises(AttributeError, match=r'call super\(\).__init__\(\)'):
        Bad()


def test_optimizer_matches_sgd():
    torch.manual_seed(0)
    model_a = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    model_b = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    model_b.load_state_dict(model_a.state_dict())
    opt_a, opt_b = Optimizer(model_a.parameters(), lr=0.3), optim.SGD(model_b.parameters(), lr=0.3)
    g = torch.Generator().manual_seed(1)
    for _ in range(3):
        x, y = torch.randn(8, 6, generator=g), torch.randint(0, 3, (8,), generator=g)
        for model, opt in ((model_a, opt_a), (model_b, opt_b)):
            F.cross_entropy(model(x), y).backward()
            opt.step()
            opt.zero_grad()
        for pa, pb in zip(model_a.parameters(), model_b.parameters()): torch.testing.assert_close(pa, pb)
    assert all(p.grad is None or (p.grad == 0).all() for p in model_a.parameters())
    with pytest.raises(ValueError, match='got no parameters'):
        Optimizer([])


def test_get_dls():
    train_ds, valid_ds = small_ds(), small_ds(40)
    train_dl, valid_dl = get_dls(train_ds, valid_ds, 16)
    assert isinstance(train_dl.sampler, RandomSampler) and isinstance(valid_dl.sampler, SequentialSampler)
    assert train_dl.batch_size == 16 and valid_dl.batch_size == 32
    test_eq([len(train_dl), len(valid_dl)], [math.ceil(len(train_ds) / 16), 2])
    train_dl, valid_dl = get_dls(train_ds, valid_ds, 16, drop_last=True)     # the training loader only
    test_eq([len(train_dl), len(valid_dl)], [len(train_ds) // 16, 2])
    assert all(len(xb) == 16 for xb, _ in train_dl)


def test_fit_mnist_10k(one_thread):
    x_train, y_train, x_valid, y_valid = get_data()
    x_train, y_train = x_train[:10_000], y_train[:10_000]
    mean, std = x_train.mean(), x_train.std()
    train_ds = Dataset(normalize(x_train, mean, std), y_train)
    valid_ds = Dataset(normalize(x_valid, mean, std), y_valid)
    torch.manual_seed(0)
    train_dl, valid_dl = get_dls(train_ds, valid_ds, 64)
    model = nn.Sequential(nn.Linear(784, 50), nn.ReLU(), nn.Linear(50, 10))
    hist = fit(1, model, F.cross_entropy, optim.SGD(model.parameters(), lr=0.1), train_dl, valid_dl)
    assert len(hist['train_loss']) == len(train_dl) and len(hist['valid_acc']) == 1
    assert hist['valid_acc'][-1] > 0.85, hist['valid_acc']
    assert not model.training
