"""The callback/event contract of lesson 05b's `TrainLoop`, written once and run against every loop built on it.

The loops: lesson 05b's `Runner` (driving a lesson-04 `Learner` container: model, torch SGD, loss, data) and
lesson 09b's `Learner` (our `sgd_opt`). Both train the two-parameter regression of `tests/synthetic.py`,
unshuffled: 2 training batches of 8 and 2 validation batches of 16, so every fit takes milliseconds.

The contract (nbs/05b_early_stopping.ipynb):
- phases fit > epoch > train, validate > batch > backward, step; each runs `begin_<p>`, its body, then on its
  own cancel exception `after_cancel_<p>`, then `after_<p>` (always, also after a cancel). Any other exception
  passes through untouched (no `after_<p>`), except at fit, whose `after_fit` runs on the way out;
- teardown events (`after_fit`, `after_cancel_*`) call the callbacks last-first (reverse `_order`), the others
  in `_order`;
- a handler that returns anything but None is a TypeError; unknown events and misspelt handlers are refused.
The last section holds issue 9's two mixed-precision defects.
"""
import importlib
import pkgutil

import pytest
import torch
from torch import nn
import torch.nn.functional as F

import exp
from exp.nb_00 import test_eq, test_near, test_raises
from exp.nb_05b import (Callback, listify, CancelBackwardException, CancelBatchException, CancelEpochException,
                        CancelFitException, CancelStepException, CancelTrainException, CancelValidException,
                        LR_Find, Runner, TrainLoop)
from exp.nb_09 import sgd_opt
from exp.nb_09b import Learner
from exp.nb_10c import MixedPrecision
from synthetic import RegModel, make_spy, synth_data, synth_learner

pytestmark = pytest.mark.usefixtures('one_thread')   # conftest.py: torch on one thread

LR, N_TRAIN, N_VALID, BS = 0.1, 16, 32, 8             # 2 training batches (8), 2 validation batches (16)


# ------------------------------------------------------------------ the loops under test

class Loop:
    "One loop built on TrainLoop, with what a test needs: `loop` (the object callbacks see), `model`, `fit`"
    def __init__(self, kind, cbs=(), lr=LR):
        self.kind = kind
        if kind == 'runner':                          # lesson 05b: Runner + lesson 04's Learner container
            self.learn = synth_learner(N_TRAIN, N_VALID, BS, lr=lr, shuffle=False)
            self.loop = Runner(cbs=listify(cbs))
        else:                                         # lesson 09b: the Learner is the loop
            data = synth_data(N_TRAIN, N_VALID, BS, shuffle=False)
            self.loop = self.learn = Learner(RegModel(), data, F.mse_loss, opt_func=sgd_opt, lr=lr, cbs=listify(cbs))

    @property
    def model(self): return self.learn.model
    @property
    def data(self): return self.learn.data

    def fit(self, epochs=1):
        if self.kind == 'runner': self.loop.fit(epochs, self.learn)
        else: self.learn.fit(epochs)


LOOPS = {'runner': Runner, 'learner': Learner}

@pytest.fixture(params=list(LOOPS))
def kind(request): return request.param


def set_model(run, model):
    "Replace the model a loop trains: the Runner reads it from its lesson-04 Learner, the Learner holds it"
    (run.learn if isinstance(run, Runner) else run).model = model


def test_every_loop_built_on_trainloop_is_tested():
    "A new loop in a later lesson must be added to LOOPS (and so run through this contract)"
    for m in pkgutil.iter_modules(exp.__path__): importlib.import_module(f'exp.{m.name}')
    def subclasses(c): return {s for sub in c.__subclasses__() for s in {sub} | subclasses(sub)}
    found = {c for c in subclasses(TrainLoop) if c.__module__.startswith('exp.')}
    test_eq(found, set(LOOPS.values()))


def test_loops_share_the_events():
    for cls in LOOPS.values(): test_eq(cls.EVENTS, TrainLoop.EVENTS)


# ------------------------------------------------------------------ the events of a fit

TRAIN_BATCH = ['begin_batch', 'after_pred', 'after_loss', 'begin_backward', 'after_backward', 'begin_step',
               'after_step', 'after_batch']
VALID_BATCH = ['begin_batch', 'after_pred', 'after_loss', 'after_batch']
TRAIN = ['begin_train', *TRAIN_BATCH, *TRAIN_BATCH, 'after_train']
VALID = ['begin_validate', *VALID_BATCH, *VALID_BATCH, 'after_validate']
EPOCH = ['begin_epoch', *TRAIN, *VALID, 'after_epoch']


def spy_fit(kind, raise_at=None, epochs=1, extra=()):
    "Fit with a spy of every event (raising as `make_spy`'s `raise_at` says); the loop and the events seen"
    spy = make_spy(TrainLoop.EVENTS, raise_at)()
    loop = Loop(kind, cbs=[spy, *extra])
    loop.fit(epochs)
    return loop, spy.events


def test_event_order_of_a_normal_fit(kind):
    loop, events = spy_fit(kind)
    test_eq(events, ['begin_fit', *EPOCH, 'after_fit'])
    assert not loop.model.training and not loop.loop.in_train


def test_event_order_of_two_epochs(kind):
    _, events = spy_fit(kind, epochs=2)
    test_eq(events, ['begin_fit', *EPOCH, *EPOCH, 'after_fit'])


# each cancel exception, raised at a representative event, and the exact events of the 2-epoch fit that follows
head = ['begin_fit', 'begin_epoch', 'begin_train']                   # up to the first training batch
CANCELS = {
    'fit': (('after_loss', 1), CancelFitException,
            [*head, 'begin_batch', 'after_pred', 'after_loss', 'after_cancel_fit', 'after_fit']),
    'epoch': (('after_backward', 1), CancelEpochException,             # validation of epoch 0 skipped too
              [*head, *TRAIN_BATCH[:5], 'after_cancel_epoch', 'after_epoch', *EPOCH, 'after_fit']),
    'train': (('after_pred', 1), CancelTrainException,                  # the rest of training; validation runs
              [*head, 'begin_batch', 'after_pred', 'after_cancel_train', 'after_train', *VALID, 'after_epoch',
               *EPOCH, 'after_fit']),
    'validate': (('begin_batch', 3), CancelValidException,             # the first validation batch
                 [*head, *TRAIN[1:], 'begin_validate', 'begin_batch', 'after_cancel_validate', 'after_validate',
                  'after_epoch', *EPOCH, 'after_fit']),
    'batch': (('after_loss', 1), CancelBatchException,                 # the next batch runs
              [*head, 'begin_batch', 'after_pred', 'after_loss', 'after_cancel_batch', 'after_batch', *TRAIN_BATCH,
               'after_train', *VALID, 'after_epoch', *EPOCH, 'after_fit']),
    'backward': (('begin_backward', 1), CancelBackwardException,       # no backward, no step; after_batch runs
                 [*head, 'begin_batch', 'after_pred', 'after_loss', 'begin_backward', 'after_cancel_backward',
                  'after_backward', 'after_batch', *TRAIN_BATCH, 'after_train', *VALID, 'after_epoch', *EPOCH,
                  'after_fit']),
    'step': (('begin_step', 1), CancelStepException,
             [*head, *TRAIN_BATCH[:6], 'after_cancel_step', 'after_step', 'after_batch', *TRAIN_BATCH, 'after_train',
              *VALID, 'after_epoch', *EPOCH, 'after_fit']),
}

@pytest.mark.parametrize('phase', list(CANCELS))
def test_cancel_at_each_phase(kind, phase):
    at, exc, expected = CANCELS[phase]
    loop, events = spy_fit(kind, {at: exc}, epochs=2)
    test_eq(events, expected)
    assert not loop.model.training and not loop.loop.in_train
    assert all(p.grad is None or not p.grad.any() for p in loop.model.parameters()), 'gradients left after fit'


@pytest.mark.parametrize('exc', [RuntimeError('boom'), KeyboardInterrupt()], ids=['RuntimeError', 'KeyboardInterrupt'])
@pytest.mark.parametrize('at', ['begin_fit', 'begin_epoch', 'begin_train', 'after_loss', 'begin_step',
                                'after_batch', 'begin_validate', 'after_validate', 'after_epoch'])
def test_other_exceptions_pass_through_with_only_after_fit(kind, exc, at):
    "No after_<phase> and no after_cancel_* on the way out of an unrelated error: only after_fit"
    spy = make_spy(TrainLoop.EVENTS, {at: exc})()
    loop = Loop(kind, cbs=spy)
    with pytest.raises(type(exc)) as info: loop.fit(2)
    assert info.value is exc                                     # the error itself, untouched
    test_eq(spy.events[-2:], [at, 'after_fit'])
    assert not loop.model.training


def test_cancel_exception_at_the_wrong_level_passes_through(kind):
    "CancelBatchException at begin_fit is not caught by any phase: it leaves fit like any error"
    spy = make_spy(TrainLoop.EVENTS, {'begin_fit': CancelBatchException})()
    loop = Loop(kind, cbs=spy)
    test_raises(lambda: loop.fit(1), CancelBatchException)
    test_eq(spy.events, ['begin_fit', 'after_fit'])


# ------------------------------------------------------------------ gradients: kept, thrown away, never leaked

def batches(loop): return list(loop.data.train_dl)

def plain_steps(loop, plan):
    "Oracle: a RegModel at a=b=0 trained by torch SGD; `plan` lists the steps, each the batch indices summed into it"
    m = RegModel()
    opt = torch.optim.SGD(m.parameters(), lr=LR)
    bs = batches(loop)
    for step in plan:
        for i in step: F.mse_loss(m(bs[i][0]), bs[i][1]).backward()   # accumulate
        opt.step()
        opt.zero_grad()
    return [p.detach() for p in m.parameters()]

def weights(loop): return [p.detach() for p in loop.model.parameters()]


class Grads(Callback):
    "The gradients each training batch starts with: `seen[i]` holds what batch i-1 left"
    _order = 50
    def begin_fit(self): self.seen = []
    def begin_batch(self):
        if self.in_train: self.seen.append([None if p.grad is None else p.grad.clone() for p in self.model.parameters()])

def no_grads(gs): return all(g is None or not g.any() for g in gs)


def test_cancel_step_keeps_the_gradients(kind):
    "CancelStepException in begin_step of batch 0: no step, no zero_grad; batch 1's step uses both batches' grads"
    grads = Grads()
    loop, _ = spy_fit(kind, {('begin_step', 1): CancelStepException}, extra=[grads])
    assert no_grads(grads.seen[0])
    test_near(grads.seen[1], [p.grad for p in plain_grads(loop, 0)], eps=1e-7)   # batch 1 starts with batch 0's
    test_near(weights(loop), plain_steps(loop, [[0, 1]]), eps=1e-6)


def plain_grads(loop, i):
    m = RegModel()
    xb, yb = batches(loop)[i]
    F.mse_loss(m(xb), yb).backward()
    return list(m.parameters())


@pytest.mark.parametrize('at', ['after_loss', 'after_backward', 'begin_step', 'after_step'])
def test_cancel_batch_throws_the_gradients_away(kind, at):
    "CancelBatchException in batch 0: its gradients are zeroed, not carried into batch 1's step"
    grads = Grads()
    loop, _ = spy_fit(kind, {(at, 1): CancelBatchException}, extra=[grads])
    assert no_grads(grads.seen[1])                               # batch 1 starts clean
    plan = [[0], [1]] if at == 'after_step' else [[1]]           # after_step: batch 0 had stepped already
    test_near(weights(loop), plain_steps(loop, plan), eps=1e-6)


def test_cancel_backward_skips_backward_and_step(kind):
    grads = Grads()
    loop, _ = spy_fit(kind, {('begin_backward', 1): CancelBackwardException}, extra=[grads])
    assert no_grads(grads.seen[1])
    test_near(weights(loop), plain_steps(loop, [[1]]), eps=1e-6)


@pytest.mark.parametrize('exc', [CancelEpochException, CancelTrainException])
def test_cancel_after_backward_does_not_leak_gradients_into_the_next_epoch(kind, exc):
    """Cancelling epoch 0 (or its training) after batch 0's backward: no step in epoch 0, and epoch 1 trains from
    clean gradients, exactly one plain epoch. (Lesson 05b before issue 9 zeroed the gradients on CancelEpochException.)"""
    loop, _ = spy_fit(kind, {('after_backward', 1): exc}, epochs=2)
    test_near(weights(loop), plain_steps(loop, [[0], [1]]), eps=1e-6)


# ------------------------------------------------------------------ callback order and teardown order

class Wrapper(nn.Module):
    def __init__(self, inner, tag):
        super().__init__()
        self.inner, self.tag = inner, tag
    def forward(self, x): return self.inner(x)

def wrapping_callbacks(log):
    "Three callbacks (orders 1, 2, 3) that each wrap the model at begin_fit and unwrap it at after_fit"
    def make(tag, order):
        def begin_fit(self):
            log.append(('begin_fit', tag))
            set_model(self.run, Wrapper(self.model, tag))
        def after_fit(self):
            log.append(('after_fit', tag))
            m = self.model
            assert isinstance(m, Wrapper) and m.tag == tag, f'{tag}: its wrapper is not the outermost at after_fit'
            set_model(self.run, m.inner)
        def after_cancel_fit(self): log.append(('after_cancel_fit', tag))
        def after_loss(self):
            if ('after_loss', tag) not in log: log.append(('after_loss', tag))
        return type(f'Wrap{tag}', (Callback,), dict(_order=order, begin_fit=begin_fit, after_fit=after_fit,
                                                    after_cancel_fit=after_cancel_fit, after_loss=after_loss))()
    return [make('B', 2), make('C', 3), make('A', 1)]            # given out of order: sorted by `_order`

SETUP = [('begin_fit', 'A'), ('begin_fit', 'B'), ('begin_fit', 'C')]
FORWARD = [('after_loss', 'A'), ('after_loss', 'B'), ('after_loss', 'C')]
TEARDOWN = [('after_fit', 'C'), ('after_fit', 'B'), ('after_fit', 'A')]


@pytest.mark.parametrize('how', ['normal', 'cancelled', 'RuntimeError', 'KeyboardInterrupt'])
def test_teardown_last_first_with_three_wrapping_callbacks(kind, how):
    log = []
    raise_at = {'cancelled': {('after_batch', 1): CancelFitException},
                'RuntimeError': {('after_batch', 1): RuntimeError('boom')},
                'KeyboardInterrupt': {('after_batch', 1): KeyboardInterrupt}}.get(how)
    spy = make_spy(['after_batch'], raise_at)()
    loop = Loop(kind, cbs=[*wrapping_callbacks(log), spy])
    model = loop.model
    if how in ('RuntimeError', 'KeyboardInterrupt'):
        with pytest.raises(RuntimeError if how == 'RuntimeError' else KeyboardInterrupt): loop.fit(2)
    else: loop.fit(2)
    cancel = [('after_cancel_fit', t) for t in 'CBA'] if how == 'cancelled' else []
    test_eq(log, SETUP + FORWARD + cancel + TEARDOWN)
    assert loop.model is model, 'the model is given back unwrapped'


@pytest.mark.parametrize('phase', list(CANCELS))
def test_after_cancel_events_run_last_first(kind, phase):
    "after_cancel_<p> (and after_fit) last-first; after_<p> of the other phases in `_order`"
    log = []
    def make(tag, order):
        def handler(e): return lambda self: log.append((e, tag))
        events = {f'after_cancel_{phase}', f'after_{phase}'}
        return type(f'Log{tag}', (Callback,), dict(_order=order, **{e: handler(e) for e in events}))()
    exc = CANCELS[phase][1]
    raiser = make_spy([f'begin_{phase}'], {f'begin_{phase}': exc})()
    raiser._order = -1                                           # before the loggers: they never see begin_<p>
    loop = Loop(kind, cbs=[make('C', 3), make('A', 1), raiser, make('B', 2)])
    loop.fit(1)
    first = lambda e: [t for ev, t in log if ev == e][:3]
    test_eq(first(f'after_cancel_{phase}'), list('CBA'))
    test_eq(first(f'after_{phase}'), list('CBA') if phase == 'fit' else list('ABC'))


def test_callbacks_after_the_raising_one_do_not_see_the_event(kind):
    seen = []
    class Raiser(Callback):
        _order = 1
        def after_step(self): raise CancelBatchException()
    class Later(Callback):
        _order = 2
        def after_step(self): seen.append('after_step')
        def after_cancel_batch(self): seen.append('after_cancel_batch')
    Loop(kind, cbs=[Later(), Raiser()]).fit(1)
    test_eq(seen, ['after_cancel_batch'] * 2)


# ------------------------------------------------------------------ per-fit callbacks (Learner.fit(cbs=...))

@pytest.mark.parametrize('exc', [None, CancelFitException(), RuntimeError('boom'), KeyboardInterrupt(),
                                 CancelBatchException()],
                         ids=['normal', 'CancelFitException', 'RuntimeError', 'KeyboardInterrupt', 'wrong-level'])
def test_per_fit_callbacks_removed_also_when_fit_raises(exc):
    loop = Loop('learner')
    own = list(loop.learn.cbs)
    spy = make_spy(['begin_fit', 'after_fit'], {'begin_fit': exc} if exc is not None else None)()
    if exc is None or isinstance(exc, CancelFitException): loop.learn.fit(1, cbs=spy)
    else: test_raises(lambda: loop.learn.fit(1, cbs=spy), type(exc))
    test_eq(spy.events, ['begin_fit', 'after_fit'])
    test_eq(loop.learn.cbs, own)
    assert not hasattr(loop.learn, spy.name)
    loop.learn.fit(1)                                           # and the learner trains on without it
    test_eq(spy.events, ['begin_fit', 'after_fit'])


# ------------------------------------------------------------------ refused: return values, unknown events, typos

TRIGGER = {'after_cancel_fit': ('begin_fit', CancelFitException), 'after_cancel_epoch': ('begin_epoch', CancelEpochException),
           'after_cancel_train': ('begin_train', CancelTrainException),
           'after_cancel_validate': ('begin_validate', CancelValidException),
           'after_cancel_batch': ('begin_batch', CancelBatchException),
           'after_cancel_backward': ('begin_backward', CancelBackwardException),
           'after_cancel_step': ('begin_step', CancelStepException)}

@pytest.mark.parametrize('event', TrainLoop.EVENTS)
@pytest.mark.parametrize('value', [True, False, 0, 'skip'])
def test_a_returned_value_is_a_type_error(kind, event, value):
    cbs = [type('Returns', (Callback,), {'_order': 5, event: lambda self: value})()]
    if event in TRIGGER: cbs.append(make_spy([TRIGGER[event][0]], {TRIGGER[event][0]: TRIGGER[event][1]})())
    loop = Loop(kind, cbs=cbs)
    test_raises(lambda: loop.fit(1), TypeError, f'Returns.{event} returned a value')


def test_none_returned_is_fine(kind):
    cb = type('ReturnsNone', (Callback,), {e: lambda self: None for e in TrainLoop.EVENTS})()
    Loop(kind, cbs=cb).fit(1)


def test_unknown_event_refused(kind):
    loop = Loop(kind).loop
    for e in ('begin_bacth', 'after_cancel', 'begin_backwards', 'after_cancel_trian'):
        test_raises(lambda: loop(e), ValueError, f'unknown event {e!r}')


@pytest.mark.parametrize('typo', ['after_bacth', 'begin_valid', 'after_cancel_trian', 'begin_cancel_step'])
def test_misspelt_handler_refused(kind, typo):
    Typo = type('Typo', (Callback,), {typo: lambda self: None})
    test_raises(lambda: Loop(kind, cbs=Typo()), ValueError, f"[{typo!r}] are not events")
    if kind == 'learner':                                       # also as a per-fit callback, before anything runs
        learn = Loop(kind).learn
        test_raises(lambda: learn.fit(1, cbs=Typo()), ValueError, typo)
        assert learn.opt is None and not any(isinstance(c, Typo) for c in learn.cbs)


# ------------------------------------------------------------------ issue 9: mixed precision's two defects

class KeepMasters(Callback):
    "Ordered before MixedPrecision (99): at `after_step` of training step `at`, copy its fp32 master weights, then raise"
    _order = 50
    def __init__(self, at, exc): self.at, self.exc = at, exc
    def after_step(self):
        if self.n_iter != self.at: return
        self.masters = [mp.detach().clone() for pg in self.run.mixed_precision.master_pgs for mp in pg]
        raise self.exc


@pytest.mark.parametrize('exc', [KeyboardInterrupt, RuntimeError])
def test_interrupt_after_step_keeps_the_master_weights(kind, exc):
    """Issue 9 (a): interrupted between opt.step() and MixedPrecision's copy to the model (where a Ctrl-C lands),
    the model ends with the fp32 master weights of that step, bit for bit, not fp16 weights widened."""
    keep = KeepMasters(at=1, exc=exc())                       # the second (last) training step
    mp = MixedPrecision(loss_scale=256.)                         # 2**16 overflows fp16 on this regression
    loop = Loop(kind, cbs=[mp, keep])
    model_params = list(loop.model.parameters())
    test_raises(lambda: loop.fit(1), exc)
    test_eq(mp.n_skipped, 0)                                     # both steps were taken
    assert all(mp.dtype == torch.float32 for mp in keep.masters)
    assert any(not torch.equal(mp, mp.half().float()) for mp in keep.masters), 'test needs non-fp16 masters'
    got = list(loop.model.parameters())
    assert all(p is q for p, q in zip(got, model_params))
    for p, mp in zip(got, keep.masters):
        assert p.dtype == torch.float32 and torch.equal(p, mp)


@pytest.mark.filterwarnings('ignore:LR_Find')
@pytest.mark.parametrize('max_iter', [3, 50], ids=['cancelled', 'not-cancelled'])
def test_lr_find_with_mixed_precision_restores_the_exact_weights(kind, max_iter):
    """Issue 9 (b): LR_Find with MixedPrecision gives back the original fp32 weights exactly, whether the sweep
    was cancelled (3 < 4 batches) or ended with the fit (50 > 4 batches)."""
    class Moved(Callback):
        _order = 100
        def begin_fit(self): self.n = 0
        def after_step(self):                                    # the sweep really changes the (fp16) weights
            self.n += any(not torch.equal(p.float(), w.half().float()) for p, w in zip(self.model.parameters(), w0))
    mp, moved = MixedPrecision(loss_scale=256.), Moved()
    loop = Loop(kind, cbs=[mp, LR_Find(max_iter=max_iter, min_lr=1e-3, max_lr=1.), moved])
    with torch.no_grad():                                        # weights that fp16 cannot hold exactly
        for p, v in zip(loop.model.parameters(), (0.1234567, -1.7654321)): p.fill_(v)
    w0 = [p.detach().clone() for p in loop.model.parameters()]
    assert all(not torch.equal(w, w.half().float()) for w in w0)
    loop.fit(2)                                                  # 4 training batches
    test_eq((mp.n_skipped, moved.n), (0, min(max_iter, 4)))
    for p, w in zip(loop.model.parameters(), w0):
        assert p.dtype == torch.float32 and torch.equal(p, w), (p, w)


def test_a_failing_teardown_handler_does_not_stop_the_others(kind):
    """Teardown is like the exits of nested `with` blocks: a callback whose `after_fit` fails (order 100, so it is
    torn down first) does not keep MixedPrecision (99) from giving the fp32 model back; the first error is raised."""
    class BrokenTeardown(Callback):
        _order = 100
        def after_fit(self): raise RuntimeError('teardown failed')
    log = []
    class Last(Callback):
        _order = -5
        def after_fit(self): log.append('torn down')
    mp = MixedPrecision(loss_scale=256.)
    loop = Loop(kind, cbs=[mp, BrokenTeardown(), Last()])
    test_raises(lambda: loop.fit(1), RuntimeError, 'teardown failed')
    assert all(p.dtype == torch.float32 for p in loop.model.parameters())
    test_eq(log, ['torn down'])
