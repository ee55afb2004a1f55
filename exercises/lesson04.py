"Lesson 04's exercises: the Runner's batch and its event calls, and AvgStats' weighted sums, against values worked out here"
import copy
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn, optim

from exercises import close, equal, exercise, expect

TRAIN = ['begin_batch', 'after_pred', 'after_loss', 'after_backward', 'after_step', 'after_batch']
VALID = ['begin_batch', 'after_pred', 'after_loss', 'after_batch']
LR = 0.5


def _recorder(Callback, skip_at=None):
    "A callback handling every batch event: it logs (event, pred set?, loss set?) and returns True from `skip_at`"
    log = []
    def handler(event):
        def h(self):
            log.append((event, self.run.pred is not None, self.run.loss is not None))
            return event == skip_at
        return h
    return type('Recorder', (Callback,), {e: handler(e) for e in TRAIN})(), log


def _one_batch(Runner, Learner, Callback, in_train, skip_at=None):
    "A runner set up as `fit` leaves it before a batch, a 4 -> 3 linear model, one batch of 5; runs `one_batch`"
    g = torch.Generator().manual_seed(0)
    model = nn.Linear(4, 3)
    with torch.no_grad():
        model.weight.copy_(torch.randn(3, 4, generator=g)); model.bias.copy_(torch.randn(3, generator=g))
    xb, yb = torch.randn(5, 4, generator=g), torch.randint(0, 3, (5,), generator=g)
    ref = copy.deepcopy(model)
    rec, log = _recorder(Callback, skip_at)
    run = Runner(cbs=[rec])
    run.learn = Learner(model, optim.SGD(model.parameters(), lr=LR), F.cross_entropy, None)
    run._setup_callbacks()
    run.in_train, run.iters, run.n_epochs, run.n_iter, run.stop, run.epoch = in_train, 1, 0., 0, False, 0
    run.one_batch(xb, yb)
    loss = F.cross_entropy(ref(xb), yb)
    grads = torch.autograd.grad(loss, list(ref.parameters()))
    return run, model, ref, loss, grads, log


def _events(log, want, case):
    equal(f'the list of events your `Runner.one_batch` called in {case}', [e for e, _, _ in log], want)


def _unchanged(model, ref, case):
    for name, p, r in zip(('weight', 'bias'), model.parameters(), ref.parameters()):
        close(f'the model {name} after your `Runner.one_batch` ran {case}', p, r, note=' (it must not change)')


@exercise('04.1')
def one_batch(Runner, Learner, Callback):
    "A training batch against SGD worked out here, a validation batch, and a True from begin_batch, after_loss, after_backward"
    case = 'a training batch'
    run, model, ref, loss, grads, log = _one_batch(Runner, Learner, Callback, in_train=True)
    _events(log, TRAIN, case)
    expect(log[1][1], 'your `Runner.one_batch` called after_pred before setting `self.pred`')
    expect(log[2][2], 'your `Runner.one_batch` called after_loss before setting `self.loss`')
    close(f'the `self.loss` your `Runner.one_batch` set in {case}', run.loss, loss, note=' (cross-entropy)')
    for name, p, r, gr in zip(('weight', 'bias'), model.parameters(), ref.parameters(), grads):
        close(f'the model {name} after your `Runner.one_batch` ran {case}', p, r - LR * gr, note=f' (one SGD step, lr {LR})')
    expect(all(p.grad is None or not p.grad.any() for p in model.parameters()),
           f'your `Runner.one_batch` left gradients in the model after {case}: call `opt.zero_grad()` after the step')

    case = 'a validation batch (in_train False)'
    run, model, ref, loss, _, log = _one_batch(Runner, Learner, Callback, in_train=False)
    _events(log, VALID, case)
    close(f'the `self.loss` your `Runner.one_batch` set in {case}', run.loss, loss, note=' (cross-entropy)')
    _unchanged(model, ref, case)

    case = 'a training batch whose begin_batch returned True'
    run, model, ref, _, _, log = _one_batch(Runner, Learner, Callback, in_train=True, skip_at='begin_batch')
    _events(log, ['begin_batch', 'after_batch'], case)
    expect(run.pred is None and run.loss is None,
           f'your `Runner.one_batch` left `self.pred` or `self.loss` set after {case}: set both to None first')
    _unchanged(model, ref, case)

    case = 'a training batch whose after_loss returned True'
    run, model, ref, _, _, log = _one_batch(Runner, Learner, Callback, in_train=True, skip_at='after_loss')
    _events(log, VALID, case)
    _unchanged(model, ref, case)
    expect(all(p.grad is None for p in model.parameters()),
           f'your `Runner.one_batch` ran backward in {case}: a True from after_loss skips backward and step')

    case = 'a training batch whose after_backward returned True'
    run, model, ref, _, grads, log = _one_batch(Runner, Learner, Callback, in_train=True, skip_at='after_backward')
    _events(log, ['begin_batch', 'after_pred', 'after_loss', 'after_backward', 'after_batch'], case)
    _unchanged(model, ref, case)
    for name, p, gr in zip(('weight', 'bias'), model.parameters(), grads):
        expect(p.grad is not None, f'your `Runner.one_batch` cleared the {name} gradient after {case}: '
                                   'a True from after_backward skips the step and zero_grad')
        close(f'the {name} gradient after your `Runner.one_batch` ran {case}', p.grad, gr,
              note=' (kept: no step, no zero_grad)')


def _handlers(Callback, log, returns):
    "Callbacks named a, b, c with _order 2, -1, 5 (so they run b, a, c): each logs its name, returns `returns[name]`"
    def make(name, order):
        def h(self):
            log.append(name)
            return returns.get(name)
        return type(f'Cb{name.upper()}', (Callback,), {'_order': order, 'begin_batch': h, 'after_loss': h})()
    return [make('a', 2), make('b', -1), make('c', 5)]


@exercise('04.2')
def call_callbacks(Runner, Callback):
    "run(event) with three callbacks: each called once in _order, none skipped after a True, True if any returned True"
    for returns in ({}, {'b': True}, {'a': True, 'c': False}, {'c': True}, {'a': False, 'b': None}):
        log = []
        run = Runner(cbs=_handlers(Callback, log, returns))
        run._setup_callbacks()
        got = run('begin_batch')
        said = ', '.join(f'{k} returns {v}' for k, v in returns.items()) or 'all return None'
        equal("the list of callbacks your `Runner.__call__('begin_batch')` ran", log, ['b', 'a', 'c'],
              note=f' (_order -1, 2, 5; {said}: every one runs, even after a True)')
        want = any(returns.values())
        equal(f"the skip flag your `Runner.__call__('begin_batch')` returned", bool(got), want, note=f' ({said})')
    log = []
    run = Runner(cbs=_handlers(Callback, log, {'a': True}))
    run._setup_callbacks()
    got = run('after_step')
    equal("the list of callbacks your `Runner.__call__('after_step')` ran", log, [], note=' (none of them handles after_step)')
    equal("the skip flag your `Runner.__call__('after_step')` returned", bool(got), False,
          note=' (no callback handles after_step)')


def _batch(bs, loss, seed):
    g = torch.Generator().manual_seed(seed)
    pred, yb = torch.randn(bs, 3, generator=g), torch.randint(0, 3, (bs,), generator=g)
    return SimpleNamespace(xb=torch.randn(bs, 4, generator=g), yb=yb, pred=pred, loss=torch.tensor(loss), in_train=True)


def hits(pred, yb): return (pred.argmax(1) == yb).float().mean()
def top_score(pred, yb): return pred.max(1).values.mean()


@exercise('04.3')
def avg_stats(AvgStats):
    "Three batches of 3, 5 and 2 items: the count and the loss and metric averages weighted by batch size, by hand"
    stats = AvgStats([hits, top_score], True)
    stats.reset()
    batches = [_batch(3, 0.9, 1), _batch(5, 0.5, 2), _batch(2, 1.2, 3)]
    with torch.no_grad():
        for b in batches: stats.accumulate(b)
    n = sum(b.xb.shape[0] for b in batches)
    what = 'after batches of 3, 5 and 2 items'
    equal(f'the count of your `AvgStats` {what}', int(stats.count), n, note=' (items, not batches)')
    want = [sum(f(b) * b.xb.shape[0] for b in batches) / n
            for f in (lambda b: b.loss.item(), lambda b: hits(b.pred, b.yb).item(), lambda b: top_score(b.pred, b.yb).item())]
    for name, got, w in zip(('loss', 'hits', 'top_score'), stats.avg_stats, want):
        close(f'the average {name} of your `AvgStats` {what}', got, w, note=' (each batch weighted by its size)')
