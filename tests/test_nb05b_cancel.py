"""Lesson 05b: cancelling by exceptions, cleanup in `finally`, the per-group Recorder and LR_Find.

What a cancelled run leaves behind (documented in the notebook): `after_fit` has run, the model is in eval
mode with `run.in_train` False, the gradients are zeroed (None), and callbacks have undone what they set up.
"""
import math
import warnings

import matplotlib
matplotlib.use('Agg')
import pytest
import torch

from exp.nb_00 import test_eq, test_near, test_raises
from exp.nb_05 import ParamScheduler, sched_lin, sched_no
from exp.nb_04 import Runner as Runner04
from exp.nb_05b import (AvgStatsCallback, Callback, CancelBackwardException, CancelBatchException,
                        CancelEpochException, CancelFitException, CancelStepException, CancelTrainException,
                        CancelValidException, LR_Find, Recorder, Runner)
from synthetic import make_spy, synth_learner

TRAIN_BATCH = ['begin_batch', 'after_pred', 'after_loss', 'begin_backward', 'after_backward', 'begin_step',
               'after_step', 'after_batch']
VALID_BATCH = ['begin_batch', 'after_pred', 'after_loss', 'after_batch']
CANCEL_EVENTS = tuple(e for e in Runner.EVENTS if e.startswith('after_cancel_'))


def params(learn): return [p.detach().clone() for p in learn.model.parameters()]


class HookCallback(Callback):
    "Registers a forward hook at begin_fit and removes it at after_fit, as a hook-based callback should."
    def begin_fit(self): self.handle = self.model.register_forward_hook(lambda m, i, o: None)
    def after_fit(self): self.handle.remove()


def run_spy(raise_at, epochs=1, learn=None, **kw):
    learn = learn or synth_learner(**kw)          # default: 2 train batches, 1 valid batch
    spy = make_spy(Runner.EVENTS, raise_at)()
    run = Runner(cbs=[HookCallback(), spy])
    run.fit(epochs, learn)
    return run, learn, spy.events


def assert_clean(run, learn):
    assert not learn.model.training and not run.in_train, 'fit must end in eval mode'
    assert all(p.grad is None or not p.grad.any() for p in learn.model.parameters()), 'gradients left behind'
    test_eq(len(learn.model._forward_hooks), 0)


def test_no_cancel_same_events_as_lesson_04():
    run, learn, events = run_spy({})
    test_eq(events, ['begin_fit', 'begin_epoch', 'begin_train', *TRAIN_BATCH, *TRAIN_BATCH, 'after_train',
                     'begin_validate', *VALID_BATCH, 'after_validate', 'after_epoch', 'after_fit'])
    # lesson 04's events come in lesson 04's order: the new loop only adds events between them
    test_eq([e for e in events if e in Runner04.EVENTS],
            ['begin_fit', 'begin_epoch', *[e for e in TRAIN_BATCH if e in Runner04.EVENTS] * 2, 'begin_validate',
             *VALID_BATCH, 'after_epoch', 'after_fit'])
    assert_clean(run, learn)


@pytest.mark.parametrize('event', ['begin_batch', 'after_pred', 'after_loss', 'after_backward'])
def test_cancel_batch(event):
    learn = synth_learner()
    p0 = params(learn)
    run, learn, events = run_spy({event: CancelBatchException}, learn=learn)
    i = events.index(event)
    test_eq(events[i + 1:i + 3], ['after_cancel_batch', 'after_batch'])
    test_eq(events.count('after_cancel_batch'), 1)
    test_eq(events.count('after_step'), 1)                    # the other training batch stepped
    test_eq(events.count('begin_validate'), 1)
    test_eq(events[-1], 'after_fit')
    assert_clean(run, learn)
    assert not all(torch.equal(a, b) for a, b in zip(params(learn), p0))


def test_cancelled_batch_does_not_leak_gradients():
    "Cancelling after backward: the step is skipped and that batch's gradients are dropped, not accumulated."
    learn = synth_learner(n_train=16, bs=8, shuffle=False)
    run_spy({('after_backward', 1): CancelBatchException}, learn=learn)
    ref = synth_learner(n_train=16, bs=8, shuffle=False)
    xb, yb = list(ref.data.train_dl)[1]
    torch.nn.functional.mse_loss(ref.model(xb), yb).backward()   # one step on the second batch only
    ref.opt.step()
    test_near(params(learn), params(ref), eps=1e-7)


def test_cancel_batch_in_validation():
    run, learn, events = run_spy({('begin_batch', 3): CancelBatchException})   # 3rd begin_batch: validation
    i = events.index('begin_validate')
    test_eq(events[i:], ['begin_validate', 'begin_batch', 'after_cancel_batch', 'after_batch', 'after_validate',
                         'after_epoch', 'after_fit'])


@pytest.mark.parametrize('event', ['begin_epoch', 'begin_batch', 'after_step', 'begin_validate', 'after_loss'])
def test_cancel_epoch(event):
    run, learn, events = run_spy({event: CancelEpochException}, epochs=2)
    i = events.index(event)
    test_eq(events[i + 1:i + 3], ['after_cancel_epoch', 'after_epoch'])
    test_eq(events.count('after_cancel_epoch'), 1)
    test_eq(events.count('begin_epoch'), 2)                    # the next epoch runs
    first_epoch = events[:events.index('after_epoch')]
    assert 'after_batch' not in first_epoch[first_epoch.index(event):]   # the cancelled batch is not closed
    test_eq(events[-2:], ['after_epoch', 'after_fit'])
    assert_clean(run, learn)


def test_cancel_epoch_skips_validation():
    run, learn, events = run_spy({('after_step', 2): CancelEpochException}, epochs=1)
    assert 'begin_validate' not in events
    test_eq(events[-3:], ['after_cancel_epoch', 'after_epoch', 'after_fit'])


@pytest.mark.parametrize('event', ['begin_fit', 'begin_epoch', 'begin_batch', 'after_backward', 'after_step',
                                   'after_batch', 'begin_validate', 'after_epoch'])
def test_cancel_fit(event):
    "CancelFitException (lesson 05b's first `CancelTrainException`) ends the fit wherever it is raised."
    run, learn, events = run_spy({event: CancelFitException}, epochs=3)
    i = events.index(event)
    test_eq(events[i + 1:], ['after_cancel_fit', 'after_fit'])
    assert not (set(CANCEL_EVENTS) - {'after_cancel_fit'}) & set(events)
    assert_clean(run, learn)


def test_cancel_fit_mid_step_leaves_clean_state():
    "Cancelled between backward and step: no step, gradients zeroed, eval mode, hooks removed."
    learn = synth_learner()
    p0 = params(learn)
    run, learn, events = run_spy({'after_backward': CancelFitException}, learn=learn)
    test_eq(params(learn), p0)
    assert_clean(run, learn)


@pytest.mark.parametrize('event', ['begin_fit', 'after_loss', 'after_backward', 'after_batch', 'begin_validate',
                                   'after_epoch'])
def test_other_exceptions_propagate_after_cleanup(event):
    learn = synth_learner()
    spy = make_spy(Runner.EVENTS, {event: ZeroDivisionError('boom')})()
    run = Runner(cbs=[HookCallback(), spy])
    test_raises(lambda: run.fit(2, learn), ZeroDivisionError, contains='boom')
    test_eq(spy.events[-2:], [event, 'after_fit'])
    assert not set(CANCEL_EVENTS) & set(spy.events)
    assert_clean(run, learn)


def test_error_in_model_propagates_after_cleanup():
    learn = synth_learner()
    learn.model.forward = lambda x: x.view(3, -1)                 # a shape error in the forward pass
    spy = make_spy(Runner.EVENTS)()
    run = Runner(cbs=[HookCallback(), spy])
    test_raises(lambda: run.fit(1, learn), RuntimeError)
    test_eq(spy.events, ['begin_fit', 'begin_epoch', 'begin_train', 'begin_batch', 'after_fit'])
    test_eq(len(learn.model._forward_hooks), 0)


def test_cancel_exception_at_the_wrong_level_propagates():
    "Each exception is caught only at its own level: CancelBatchException at begin_fit is an error."
    learn = synth_learner()
    spy = make_spy(Runner.EVENTS, {'begin_fit': CancelBatchException})()
    test_raises(lambda: Runner(cbs=spy).fit(1, learn), CancelBatchException)
    test_eq(spy.events, ['begin_fit', 'after_fit'])


def test_callbacks_after_the_raising_one_do_not_see_the_event():
    log = []
    class Raiser(Callback):
        _order = 0
        def after_step(self): raise CancelTrainException()
    class Later(Callback):
        _order = 5
        def after_step(self): log.append('later after_step')
        def after_cancel_train(self): log.append('later after_cancel_train')
    Runner(cbs=[Later(), Raiser()]).fit(1, synth_learner())
    test_eq(log, ['later after_cancel_train'])


@pytest.mark.parametrize('event', ['begin_batch', 'after_loss', 'after_backward', 'begin_validate'])
@pytest.mark.parametrize('value', [True, False, 0])
def test_return_value_is_refused(event, value):
    "Lesson 04's `return True` (or any value but None) is a TypeError from lesson 05b on, named after the handler."
    first = type('First', (Callback,), {'_order': -5, event: lambda self: value})()
    learn = synth_learner()
    test_raises(lambda: Runner(cbs=first).fit(1, learn), TypeError, contains=f'First.{event} returned a value')
    assert not learn.model.training                             # after_fit ran on the way out


# lesson 04's return-value skips and the exception that does the same from lesson 05b on
@pytest.mark.parametrize('event,exc,n', [('begin_batch', CancelBatchException, 3),
                                         ('after_loss', CancelBatchException, 3),
                                         ('begin_step', CancelStepException, 2),
                                         ('begin_validate', CancelValidException, 1)])
def test_cancel_exceptions_replace_return_values(event, exc, n):
    "Raising at every `event`: the skip happens at each of its n calls, later callbacks miss it, weights follow."
    calls, seen = [], []
    def raiser(self):
        calls.append(event)
        raise exc()
    first = type('First', (Callback,), {'_order': -5, event: raiser})()
    second = type('Second', (Callback,), {'_order': 5, event: lambda self: seen.append(event)})()
    learn = synth_learner()
    p0 = params(learn)
    Runner(cbs=[second, first]).fit(1, learn)
    test_eq(len(calls), n)
    test_eq(seen, [])                                           # the raise skips the callbacks after it
    moved = not all(torch.equal(a, b) for a, b in zip(params(learn), p0))
    test_eq(moved, event == 'begin_validate')


def test_recorder_per_param_group():
    learn = synth_learner(n_train=32, bs=8, two_groups=True)       # 4 batches, groups [a], [b]
    run = Runner(cbs=[ParamScheduler('lr', [sched_lin(0.01, 0.02), sched_no(0.3, 0.3)]), Recorder()])
    run.fit(1, learn)
    test_eq(len(run.recorder.lrs), 2)
    test_near(run.recorder.lrs[0], [0.01 + 0.01 * i / 4 for i in range(4)], eps=1e-9)
    test_eq(run.recorder.lrs[1], [0.3] * 4)
    test_eq(len(run.recorder.losses), 4)
    ax = run.recorder.plot_lr(0)
    test_near(ax.lines[0].get_ydata(), run.recorder.lrs[0])
    ax = run.recorder.plot_loss(skip_last=1)
    test_eq(len(ax.lines[0].get_ydata()), 3)
    ax = run.recorder.plot(skip_last=1, pgid=0)
    test_eq(ax.get_xscale(), 'log')
    test_near(ax.lines[0].get_xdata(), run.recorder.lrs[0][:3])
    test_near(ax.lines[0].get_ydata(), run.recorder.losses[:3])


def test_recorder_skips_cancelled_batches_before_the_loss():
    learn = synth_learner(n_train=32, bs=8)
    run = Runner(cbs=[make_spy(Runner.EVENTS, {('begin_batch', 2): CancelBatchException})(), Recorder()])
    run.fit(1, learn)
    test_eq(len(run.recorder.losses), 3)                            # 4 batches, the 2nd cancelled


def lr_find(learn, epochs=1, **kwargs):
    run = Runner(cbs=[LR_Find(**kwargs), Recorder()])
    run.fit(epochs, learn)
    return run


def test_lr_find_exponential_sweep_stops_at_max_iter():
    learn = synth_learner(n_train=160, bs=8)                        # 20 batches per epoch
    run = lr_find(learn, epochs=2, max_iter=30, min_lr=1e-4, max_lr=1e-2)
    lrs = run.recorder.lrs[0]
    test_eq(len(lrs), 30)                                           # stopped after max_iter batches
    test_near(lrs, [1e-4 * 100 ** (i / 29) for i in range(30)], eps=1e-9)
    test_near(lrs[-1], 1e-2, eps=1e-12)
    ratios = [b / a for a, b in zip(lrs, lrs[1:])]
    test_near(ratios, [100 ** (1 / 29)] * 29, eps=1e-9)            # constant ratio: exponential


def test_lr_find_stops_on_divergence():
    learn = synth_learner(n_train=800, bs=8)                        # 100 batches
    run = lr_find(learn, max_iter=100, min_lr=1e-3, max_lr=1e3)
    losses = run.recorder.losses
    assert len(losses) < 100, 'should have stopped on divergence'
    assert losses[-1] > 10 * min(losses[:-1])                       # the batch that triggered the stop
    assert all(l <= 10 * min(losses[:i + 1]) for i, l in enumerate(losses[:-1]))   # no earlier trigger
    lrs = run.recorder.lrs[0]
    test_near([b / a for a, b in zip(lrs, lrs[1:])], [1e6 ** (1 / 99)] * (len(lrs) - 1), eps=1e-9)


def test_lr_find_stops_on_nan():
    learn = synth_learner(n_train=80, bs=8)
    class NaNLoss(Callback):
        _order = -1
        def after_loss(self):
            if self.n_iter == 3: self.run.loss = self.loss * float('nan')
    run = Runner(cbs=[NaNLoss(), LR_Find(max_iter=10), Recorder()])
    run.fit(1, learn)
    test_eq(len(run.recorder.losses), 4)


def test_lr_find_restores_model_and_optimizer():
    learn = synth_learner(n_train=800, bs=8, lr=0.05, momentum=0.9)
    learn.model.a.data.fill_(1.5)
    p0, lr0 = params(learn), learn.opt.param_groups[0]['lr']
    run = lr_find(learn, max_iter=100, min_lr=1e-3, max_lr=1e3)
    assert len(run.recorder.losses) > 5
    test_eq(params(learn), p0)
    test_eq(learn.opt.param_groups[0]['lr'], lr0)
    test_eq(learn.opt.param_groups[0]['momentum'], 0.9)
    test_eq(len(learn.opt.state), 0)                                # no momentum buffers from the sweep
    assert_clean(run, learn)
    # restore=False keeps the swept model
    learn = synth_learner(n_train=800, bs=8)
    p0 = params(learn)
    lr_find(learn, max_iter=100, min_lr=1e-3, max_lr=1e3, restore=False)
    assert not all(torch.equal(a, b) for a, b in zip(params(learn), p0))


def test_lr_find_skips_validation_and_sets_every_group():
    learn = synth_learner(n_train=80, bs=8, two_groups=True)
    spy = make_spy(Runner.EVENTS)()
    run = Runner(cbs=[LR_Find(max_iter=15, max_lr=1e-3), Recorder(), spy])
    run.fit(2, learn)                                                # 10 batches per epoch
    test_eq(spy.events.count('begin_validate'), 1)
    test_eq(spy.events.count('after_pred'), 15)                    # training batches only
    test_eq(run.recorder.lrs[0], run.recorder.lrs[1])
    test_eq(spy.events[-2:], ['after_cancel_fit', 'after_fit'])


def test_lr_find_warns_when_too_few_batches_and_checks_args():
    learn = synth_learner(n_train=16, bs=8)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        lr_find(learn, max_iter=10)
    assert any('max_iter=10' in str(x.message) for x in w)
    test_raises(lambda: LR_Find(max_iter=1), ValueError, contains='max_iter')
    test_raises(lambda: LR_Find(min_lr=1., max_lr=0.1), ValueError, contains='min_lr < max_lr')


def test_avg_stats_still_work_with_the_new_runner():
    learn = synth_learner(n_train=32, bs=8, lr=0.3)
    logged = []
    run = Runner(cbs=AvgStatsCallback([], logger=logged.append))
    run.fit(3, learn)
    test_eq(len(logged), 3)
    assert run.avg_stats.valid_stats.avg_stats[0] < 1.0
