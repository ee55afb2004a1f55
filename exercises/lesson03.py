"Lesson 03's exercises: stable log-sum-exp and log-softmax against PyTorch's, SGD against optim.SGD, the training loop"
import copy

import torch
import torch.nn.functional as F
from torch import nn, optim
from torch.utils.data import DataLoader, TensorDataset

from exercises import close, equal, exercise, finite


def _scores(n=4, c=6, scale=3., seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, generator=g) * scale

# rows the naive formula breaks on: exp(1000) and exp(89) overflow float32, exp(-1e4) underflows to 0
LARGE = torch.tensor([[1000., 0., -1000.], [89., 88., 0.], [-1e4, -1e4 - 1, -1e4 - 2], [5., -float('inf'), 1.]])


@exercise('03.1')
def stable_logsumexp(logsumexp):
    "Along the last axis and along dim 0, then on scores whose exp overflows or underflows: against torch.logsumexp"
    x = _scores()
    close('your `logsumexp` of a (4, 6) batch along the last axis', logsumexp(x), torch.logsumexp(x, -1))
    close('your `logsumexp` of a (4, 6) batch with dim=0', logsumexp(x, dim=0), torch.logsumexp(x, 0))
    got = logsumexp(LARGE)
    finite('your `logsumexp` of scores as large as 1000 or as small as -1e4', got)
    close('your `logsumexp` of scores as large as 1000 or as small as -1e4', got, torch.logsumexp(LARGE, -1))


@exercise('03.2')
def stable_log_softmax(log_softmax):
    "Along the last axis and along dim 0, then on scores whose exp overflows: against F.log_softmax"
    x = _scores(seed=1)
    close('your `log_softmax` of a (4, 6) batch along the last axis', log_softmax(x), F.log_softmax(x, -1))
    close('your `log_softmax` of a (4, 6) batch with dim=0', log_softmax(x, dim=0), F.log_softmax(x, 0))
    # float32 holds -1e4 to about 1e-3: x - logsumexp(x) without subtracting the maximum first is that far off, and fine
    got, want = log_softmax(LARGE[:3]), F.log_softmax(LARGE[:3], -1)
    close('your `log_softmax` of scores as large as 1000 or as small as -1e4', got, want, atol=2e-3,
          note=' (it uses your `logsumexp` too)')


@exercise('03.3')
def sgd_step(Optimizer):
    "Two steps with given gradients, against optim.SGD (no momentum); a parameter without a gradient stays put"
    g = torch.Generator().manual_seed(2)
    shapes = [(3, 4), (3,), (2,)]
    mine = [nn.Parameter(torch.randn(*s, generator=g)) for s in shapes]
    ref = [nn.Parameter(p.detach().clone()) for p in mine]
    opt, ref_opt = Optimizer(mine, lr=0.3), optim.SGD(ref, lr=0.3)
    for step in (1, 2):
        for p, r in zip(mine[:2], ref[:2]):             # the last parameter never gets a gradient
            p.grad = torch.randn(p.shape, generator=g)
            r.grad = p.grad.clone()
        opt.step(); ref_opt.step()
        for name, p, r in zip(('weight', 'bias'), mine, ref):
            close(f'your `Optimizer` {name} after step {step}', p, r, note=' (lr 0.3, against optim.SGD)')
        close('your `Optimizer` parameter without a gradient', mine[2], ref[2], note=f' after step {step} (it must not move)')


def _tiny_problem(seed=3):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(12, 4, generator=g), torch.randint(0, 3, (12,), generator=g)
    xv, yv = torch.randn(6, 4, generator=g), torch.randint(0, 3, (6,), generator=g)
    model = nn.Linear(4, 3)
    with torch.no_grad():
        model.weight.copy_(torch.randn(3, 4, generator=g) * 0.5); model.bias.copy_(torch.randn(3, generator=g) * 0.1)
    return (DataLoader(TensorDataset(x, y), batch_size=4), DataLoader(TensorDataset(xv, yv), batch_size=6)), model


@exercise('03.4')
def training_loop(fit):
    "One epoch of 3 batches with cross-entropy and optim.SGD: the recorded losses and the final weights, against SGD by hand"
    (train_dl, valid_dl), model = _tiny_problem()
    ref = copy.deepcopy(model)
    hist = fit(1, model, F.cross_entropy, optim.SGD(model.parameters(), lr=0.5), train_dl, valid_dl)
    want_losses = []
    for xb, yb in train_dl:                              # the definition: SGD on each batch in turn
        loss = F.cross_entropy(ref(xb), yb)
        want_losses.append(loss.item())
        grads = torch.autograd.grad(loss, list(ref.parameters()))
        with torch.no_grad():
            for p, gr in zip(ref.parameters(), grads): p -= 0.5 * gr
    got = hist['train_loss']
    equal('the number of training losses your `fit` recorded in one epoch', len(got), len(want_losses),
          note=' (one per batch: 12 items in batches of 4)')
    close('the training loss your `fit` recorded', torch.tensor(got), torch.tensor(want_losses),
          note=' (one per batch: 3 batches of 4, SGD lr 0.5)')
    for name, p, r in zip(('weight', 'bias'), model.parameters(), ref.parameters()):
        close(f'the model {name} after your `fit`', p, r, note=' (one epoch of 3 batches, SGD lr 0.5)')
