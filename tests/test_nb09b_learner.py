"""Tests of the one `Learner` of lesson 09b (`exp.nb_09b`) and the progress callback of 09c (`exp.nb_09c`).

They use the two-parameter synthetic regression of `tests/synthetic.py` (data and model), so each
fit takes milliseconds. The oracle for the loop itself is a plain hand-written training loop with
`torch.optim.SGD` on the same data in the same order.
"""
import contextlib
import io
import warnings
from functools import partial

import pytest
import torch
import torch.nn.functional as F

from exp.nb_00 import test_eq, test_near, test_raises
from exp.nb_09b import (Learner, Callback, TrainEvalCallback, AvgStatsCallback, Optimizer, sgd_opt, adam_opt,
                        lamb_opt, StatefulOptimizer, AverageGrad, momentum_step, one_cycle, combine_scheds,
                        cos_1cycle_anneal, DeviceCallback, BatchTransformXCallback, DataBunch,
                        ParamScheduler, Recorder, CancelBackwardException, CancelBatchException, CancelEpochException,
                        CancelFitException, CancelStepException, CancelValidException, param_getter)
from exp.nb_09c import ProgressCallback, AvgStatsTableCallback as TableStatsCallback
from synthetic import RegModel, synth_data, make_spy

ALL = Learner.EVENTS


pytestmark = pytest.mark.usefixtures('one_thread')   # conftest.py: torch on one thread


def learner(n_train=16, n_valid=16, bs=8, lr=0.1, shuffle=False, **kwargs):
    "A Learner on the synthetic regression: `RegModel` (a=b=0), MSE, our SGD by default"
    return Learner(RegModel(), synth_data(n_train, n_valid, bs, shuffle=shuffle), F.mse_loss, lr=lr, **kwargs)


def params(learn): return [p.detach().clone() for p in learn.model.parameters()]


# ------------------------------------------------------------------ the loop against a plain loop

def test_fit_matches_a_plain_training_loop():
    learn = learner(n_train=32, bs=8, lr=0.05)
    learn.fit(3)
    model = RegModel()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for _ in range(3):
        for xb, yb in learn.data.train_dl:
            F.mse_loss(model(xb), yb).backward()
            opt.step()
            opt.zero_grad()
    for p, q in zip(learn.model.parameters(), model.parameters()):
        assert torch.allclose(p, q, rtol=1e-6, atol=1e-7), (p, q)
    assert abs(learn.model.a.item() - 2) < 1.0     # it learnt something


def test_event_order():
    Spy = make_spy(ALL)
    learn = learner(n_train=16, n_valid=8, bs=8)      # 2 training batches, 1 validation batch (bs*2)
    spy = Spy()
    learn.fit(1, cbs=spy)
    train_batch = ['begin_batch', 'after_pred', 'after_loss', 'begin_backward', 'after_backward', 'begin_step',
                   'after_step', 'after_batch']
    valid_batch = ['begin_batch', 'after_pred', 'after_loss', 'after_batch']
    test_eq(spy.events, ['begin_fit', 'begin_epoch', 'begin_train'] + train_batch * 2 + ['after_train', 'begin_validate'] +
            valid_batch + ['after_validate', 'after_epoch', 'after_fit'])


# ------------------------------------------------------------------ optimizer and splitter

def test_optimizer_built_at_fit():
    learn = learner(opt_func=adam_opt(), lr=0.01)
    assert learn.opt is None
    learn.fit(1)
    opt = learn.opt
    assert isinstance(opt, Optimizer)
    test_eq([id(p) for p in opt.param_groups[0]], [id(p) for p in learn.model.parameters()])
    learn.fit(1)
    assert learn.opt is opt, "a second fit keeps the optimizer (and its state)"
    test_eq(opt.state[learn.model.a]['step'], 4)
    learn.fit(1, reset_opt=True)
    assert learn.opt is not opt
    test_eq(learn.opt.state[learn.model.a]['step'], 2)


def test_optimizer_built_with_changed_lr_and_opt_func():
    learn = learner(lr=0.1)
    learn.lr, learn.opt_func = 0.5, adam_opt()
    learn.fit(1, reset_opt=True)
    test_eq(learn.opt.hypers[0]['lr'], 0.5)
    assert 'sqr_mom' in learn.opt.hypers[0]


def a_b_splitter(m): return [[m.a], [m.b]]


def test_splitter_groups_with_their_own_lr():
    learn = learner(splitter=a_b_splitter, lr=[0.1, 0.])
    learn.fit(1)
    test_eq(len(learn.opt.param_groups), 2)
    test_eq([h['lr'] for h in learn.opt.hypers], [0.1, 0.])
    assert learn.model.a.item() != 0.
    test_eq(learn.model.b.item(), 0.)                  # lr 0: not trained


def test_splitter_groups_scheduled_separately():
    learn = learner(splitter=a_b_splitter, lr=0.1, cb_funcs=Recorder)
    learn.fit(1, cbs=ParamScheduler('lr', [lambda pos: 0.01, lambda pos: 0.02 + pos]))
    test_eq(learn.recorder.lrs[0], [0.01, 0.01])
    test_eq(learn.recorder.lrs[1], [0.02, 0.52])


def test_splitter_errors_and_warnings():
    test_raises(lambda: learner(splitter=a_b_splitter, lr=[0.1]).fit(1), ValueError, '1 learning rates for the 2')
    with pytest.warns(UserWarning, match='left 1 trainable parameters'):
        learner(splitter=lambda m: [m.a]).fit(1)
    test_eq(len(list(param_getter(RegModel()))), 2)


# ------------------------------------------------------------------ callbacks for one fit

def test_fit_callbacks_removed_after_fit():
    learn = learner(cb_funcs=Recorder)
    keep = learn.recorder
    cb, rec = make_spy(['begin_fit'])(), Recorder()
    learn.fit(1, cbs=[cb, rec])
    assert cb.events == ['begin_fit']
    assert all(c not in learn.cbs for c in (cb, rec))
    assert not hasattr(learn, 'spy')
    assert learn.recorder is keep, "the learner's own recorder takes its name back"
    test_eq(len(learn.cbs), 2)     # TrainEvalCallback and the recorder


def test_fit_callbacks_removed_when_fit_raises():
    learn = learner()
    Spy = make_spy(['after_batch', 'after_fit'], raise_at={('after_batch', 2): RuntimeError('boom')})
    spy = Spy()
    test_raises(lambda: learn.fit(2, cbs=spy), RuntimeError, 'boom')
    assert spy.events == ['after_batch', 'after_batch', 'after_fit'], "after_fit runs in finally"
    assert spy not in learn.cbs and not hasattr(learn, 'spy')
    test_eq([type(c) for c in learn.cbs], [TrainEvalCallback])
    learn.fit(1)        # and the learner still works


def test_fit_callbacks_removed_when_opt_creation_raises():
    learn = learner(splitter=a_b_splitter, lr=[0.1])
    spy = make_spy(['begin_fit', 'after_fit'])()
    test_raises(lambda: learn.fit(1, cbs=spy), ValueError, 'learning rates')
    test_eq(spy.events, [])
    assert spy not in learn.cbs


def test_callbacks_sorted_and_named():
    class First(Callback): _order = -5
    class Second(Callback): _order = 5
    learn = learner(cbs=[Second()], cb_funcs=First)
    test_eq([type(c).__name__ for c in learn.cbs], ['First', 'TrainEvalCallback', 'Second'])
    assert learn.first.run is learn and learn.second is learn.cbs[-1]
    assert learn.first.model is learn.model     # attribute lookup falls through to the learner


def test_train_eval_callback_added_once():
    test_eq(sum(isinstance(c, TrainEvalCallback) for c in learner().cbs), 1)
    own = TrainEvalCallback()
    learn = learner(cbs=own)
    test_eq(learn.cbs, [own])


# ------------------------------------------------------------------ events checked

def test_unknown_event_is_an_error():
    learn = learner()
    test_raises(lambda: learn('begin_bacth'), ValueError, "unknown event 'begin_bacth'")
    learn('begin_fit')     # a real one is fine


def test_callback_with_misspelt_event_rejected():
    class Typo(Callback):
        def after_bacth(self): pass
    learn = learner()
    test_raises(lambda: learn.fit(1, cbs=Typo()), ValueError, "['after_bacth'] are not events")
    test_raises(lambda: learner(cb_funcs=Typo), ValueError, 'after_bacth')
    assert not any(isinstance(c, Typo) for c in learn.cbs)


def test_bad_callbacks_rejected():
    class Loss(Callback): pass
    test_raises(lambda: learner(cbs=Loss()), ValueError, "would hide the Learner's own `loss`")
    test_raises(lambda: learner(cbs=[print]), TypeError, 'is not a Callback')
    learn = learner()
    good = make_spy(['begin_fit'])()
    test_raises(lambda: learn.fit(1, cbs=[good, 3]), TypeError, 'is not a Callback')
    assert good not in learn.cbs and good.events == []     # all or nothing


# ------------------------------------------------------------------ return values and cancelling

def cb_returning(event, value, order=0):
    return type(f'Return_{event}', (Callback,), {event: lambda self: value, '_order': order})()

def cb_raising(event, exc, order=0):
    "A callback that raises `exc` at every `event`"
    def _raise(self): raise exc()
    return type(f'Raise_{event}', (Callback,), {event: _raise, '_order': order})()


@pytest.mark.parametrize('event', ['begin_fit', 'begin_batch', 'after_pred', 'after_loss', 'after_backward',
                                   'after_step', 'begin_validate', 'after_epoch'])
@pytest.mark.parametrize('value', [True, False])
def test_return_value_is_a_type_error(event, value):
    "Lesson 04's `return True` is refused from 09b on (whatever the event); the per-fit callback still leaves"
    learn = learner()
    cb = cb_returning(event, value)
    test_raises(lambda: learn.fit(1, cbs=cb), TypeError, f'{type(cb).__name__}.{event} returned a value')
    assert cb not in learn.cbs and not learn.model.training


def test_cancel_step_skips_step_and_zero_grad():
    "Lesson 04's `after_backward` returning True, now CancelStepException in begin_step: no step, grads kept"
    learn = learner()
    grads = []
    seen = make_spy(['begin_step', 'after_cancel_step', 'after_step'])()     # ordered after the raiser
    class Grads(Callback):
        def after_batch(self): grads.append([p.grad.clone() for p in self.model.parameters()])
    learn.fit(1, cbs=[cb_raising('begin_step', CancelStepException, order=-1), seen, Grads()])
    test_eq([p.item() for p in learn.model.parameters()], [0., 0.])
    test_eq(seen.events, ['after_cancel_step', 'after_step'] * 2)          # begin_step: the raise came first
    test_eq(grads[1], [g0 + g1 for g0, g1 in zip(grads[0], batch_grads(learn, 1))])   # accumulated


def batch_grads(learn, i):
    "The gradients of training batch `i` alone, at the learner's current (unmoved) weights, by autograd"
    xb, yb = list(learn.data.train_dl)[i]
    m = RegModel(learn.model.a.item(), learn.model.b.item())
    F.mse_loss(m(xb), yb).backward()
    return [p.grad for p in m.parameters()]


def test_cancel_batch_in_begin_batch_skips_batch_but_not_after_batch():
    Spy = make_spy(['after_pred', 'after_cancel_batch', 'after_batch'])
    spy = Spy()
    learn = learner()
    learn.fit(1, cbs=[cb_raising('begin_batch', CancelBatchException), spy])
    test_eq(spy.events, ['after_cancel_batch', 'after_batch'] * 3)
    test_eq([p.item() for p in learn.model.parameters()], [0., 0.])


def test_cancel_backward_skips_backward_and_step():
    "Lesson 04's `after_loss` returning True, now CancelBackwardException in begin_backward"
    learn = learner()
    spy = make_spy(['after_cancel_backward', 'after_backward', 'begin_step', 'after_step'])()
    learn.fit(1, cbs=[cb_raising('begin_backward', CancelBackwardException, order=-1), spy])
    test_eq(spy.events, ['after_cancel_backward', 'after_backward'] * 2)   # after_backward closes the phase
    assert all(p.grad is None or not p.grad.any() for p in learn.model.parameters())
    test_eq([p.item() for p in learn.model.parameters()], [0., 0.])


def test_cancel_validate_skips_validation():
    learn = learner()
    spy = make_spy(['begin_batch', 'after_cancel_validate', 'after_validate'])()
    learn.fit(2, cbs=[cb_raising('begin_validate', CancelValidException), spy])
    test_eq(spy.events, ['begin_batch'] * 2 + ['after_cancel_validate', 'after_validate'] +
            ['begin_batch'] * 2 + ['after_cancel_validate', 'after_validate'])


def test_cancel_exceptions():
    Spy = make_spy(ALL, raise_at={('after_pred', 1): CancelBatchException, ('begin_validate', 1): CancelEpochException,
                                  ('after_step', 3): CancelFitException})
    spy = Spy()
    learn = learner()
    learn.fit(5, cbs=spy)
    ev = spy.events
    i = ev.index('after_cancel_batch')
    test_eq(ev[i - 1: i + 2], ['after_pred', 'after_cancel_batch', 'after_batch'])
    i = ev.index('after_cancel_epoch')
    test_eq(ev[i - 1: i + 2], ['begin_validate', 'after_cancel_epoch', 'after_epoch'])
    test_eq(ev[-3:], ['after_step', 'after_cancel_fit', 'after_fit'])
    test_eq(ev.count('begin_epoch'), 2)


# ------------------------------------------------------------------ logging

def test_avg_stats_logs_through_learner_logger():
    lines = []
    learn = learner(cb_funcs=partial(AvgStatsCallback, []))
    learn.logger = lines.append
    learn.fit(2)
    test_eq(len(lines), 2)
    assert lines[0].startswith('epoch 0: train: loss') and '| valid: loss' in lines[0]


def test_progress_callback_console_table():
    learn = learner(cb_funcs=[partial(TableStatsCallback, []), partial(ProgressCallback, console=True)])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        learn.fit(3)
    rows = [l.split() for l in out.getvalue().splitlines() if l.startswith(('epoch', '0', '1', '2'))]
    test_eq(rows[0], ['epoch', 'train_loss', 'valid_loss', 'time'])
    test_eq([r[0] for r in rows[1:]], ['0', '1', '2'])
    assert all(len(r) == 4 and float(r[1]) > 0 for r in rows[1:])
    assert float(rows[-1][2]) < float(rows[1][2]), "the validation loss should go down"
    assert '\r' not in out.getvalue().split('epoch', 1)[1], "no bar redraws when stdout is not a terminal"
    assert learn.logger is print


def test_progress_callback_restores_logger_when_fit_raises():
    learn = learner(cb_funcs=[partial(TableStatsCallback, []), partial(ProgressCallback, console=True)])
    boom = make_spy(['after_batch'], raise_at={'after_batch': RuntimeError('boom')})()
    with contextlib.redirect_stdout(io.StringIO()):
        test_raises(lambda: learn.fit(1, cbs=boom), RuntimeError, 'boom')
    assert learn.logger is print


def test_lr_find_sweeps_our_hypers_and_restores_everything():
    "09's LR_Find on the Learner: every group's `lr` in `opt.hypers` swept exponentially; weights, hypers and Adam state back"
    from exp.nb_09 import LR_Find
    m = RegModel()
    learn = Learner(m, synth_data(n_train=160, bs=8), F.mse_loss, opt_func=adam_opt(), lr=1e-3,
                    splitter=lambda m: [[m.a], [m.b]], cb_funcs=Recorder)
    learn.fit(1)                                          # some Adam state and moved weights to restore
    before = (params(learn), learn.opt.state_dict())
    lrs = []
    class Spy(Callback):
        _order = 2                                        # after LR_Find has set the lr of this batch
        def begin_batch(self):
            if self.in_train: lrs.append([h['lr'] for h in self.opt.hypers])
    learn.fit(2, cbs=[LR_Find(max_iter=15, min_lr=1e-4, max_lr=1e-1), Spy()])
    test_eq(len(lrs), 15)                                 # max_iter batches, min_lr to max_lr (no explosion here)
    assert all(a == b for a, b in lrs)                    # every group gets the same lr
    expected = [1e-4 * 1e3 ** (i / 14) for i in range(15)]
    assert all(abs(a - e) <= 1e-12 * e for (a, _), e in zip(lrs, expected))
    test_eq(params(learn), before[0])
    after = learn.opt.state_dict()
    test_eq(after['hypers'], before[1]['hypers'])
    test_eq(after['state'], before[1]['state'])


def test_one_cycle_drives_our_optimizer():
    "`one_cycle(...)` schedules `lr` and `mom` in `opt.hypers` of every group (our optimizer's names), unnamed"
    from exp.nb_09 import one_cycle
    learn = Learner(RegModel(), synth_data(n_train=80, bs=8), F.mse_loss, opt_func=adam_opt(), lr=1e-2,
                    splitter=lambda m: [[m.a], [m.b]], cb_funcs=Recorder)
    seen = []
    class Spy(Callback):
        _order = 2                                        # after the schedulers (order 1)
        def begin_batch(self):
            if self.in_train: seen.append([(h['lr'], h['mom']) for h in self.opt.hypers])
    learn.fit(2, cbs=one_cycle([0.01, 0.1], pct_start=0.25) + [Spy()])
    test_eq(len(seen), 20)
    (lr_a, mom_a), (lr_b, mom_b) = seen[0]
    assert abs(lr_a - 0.001) < 1e-12 and abs(lr_b - 0.01) < 1e-12 and abs(mom_a - 0.95) < 1e-12
    (lr_a, mom_a), (lr_b, _) = seen[5]                    # pos 5/20 = pct_start: the peak
    assert abs(lr_a - 0.01) < 1e-12 and abs(lr_b - 0.1) < 1e-12 and abs(mom_a - 0.85) < 1e-12
    assert seen[-1][1][0] < 0.1 / 50                      # annealed towards lr_max / 1e5


def hypers_in_one_cycle(opt_func, epochs=2):
    "Group 0's hyper-parameters at each training batch (10 an epoch) under `one_cycle(0.01, pct_start=0.25)`, nothing named"
    learn = Learner(RegModel(), synth_data(n_train=80, bs=8), F.mse_loss, opt_func=opt_func, lr=1e-2)
    seen = []
    class Spy(Callback):
        _order = 2
        def begin_batch(self):
            if self.in_train:
                seen.append({k: v for k, v in (getattr(self.opt, 'hypers', None) or self.opt.param_groups)[0].items()
                             if k != 'params'})
    learn.fit(epochs, cbs=one_cycle(0.01, pct_start=0.25) + [Spy()])
    return seen


MOMS = [combine_scheds([0.25, 0.75], cos_1cycle_anneal(0.95, 0.85, 0.95))(i / 20) for i in range(20)]
LRS = [combine_scheds([0.25, 0.75], cos_1cycle_anneal(0.001, 0.01, 1e-7))(i / 20) for i in range(20)]

sgd_mom_opt = partial(StatefulOptimizer, steppers=[momentum_step], stats=AverageGrad())


@pytest.mark.parametrize('opt_func', [adam_opt(), lamb_opt(), sgd_mom_opt], ids=['adam_opt', 'lamb_opt', 'sgd_mom'])
def test_one_cycle_runs_with_our_optimizers_with_momentum(opt_func):
    seen = hypers_in_one_cycle(opt_func)
    test_near([h['mom'] for h in seen], MOMS, 1e-12)                  # pos adds up 1/10s: equal up to rounding
    test_near([h['lr'] for h in seen], LRS, 1e-12)


def test_one_cycle_runs_with_plain_sgd_opt_scheduling_the_lr_only():
    seen = hypers_in_one_cycle(sgd_opt)
    test_near([h['lr'] for h in seen], LRS, 1e-12)
    assert all(set(h) == {'lr', 'wd'} for h in seen)                 # no momentum made up


def test_one_cycle_runs_with_torch_sgd_in_a_learner():
    seen = hypers_in_one_cycle(torch.optim.SGD)
    test_near([h['momentum'] for h in seen], MOMS, 1e-12)
    test_near([h['lr'] for h in seen], LRS, 1e-12)


# ------------------------------------------------------------------ get_preds

def cls_data(n_train=24, n_valid=20, bs=4, seed=0):
    "Three features, three classes; validation in order, batches of `2*bs` (the last one short)"
    g = torch.Generator().manual_seed(seed)
    def ds(n):
        y = torch.randint(0, 3, (n,), generator=g)
        return torch.utils.data.TensorDataset(torch.randn(n, 3, generator=g) + y[:, None].float(), y)
    return DataBunch(torch.utils.data.DataLoader(ds(n_train), batch_size=bs, shuffle=True, generator=g),
                     torch.utils.data.DataLoader(ds(n_valid), batch_size=2 * bs))


def cls_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(), torch.nn.Dropout(0.5),
                               torch.nn.Linear(8, 3))


def scale(x): return 2 * x - 1


def cls_learner(cbs=None, cb_funcs=()):
    "A learner whose batches go through a device callback and a transform (the oracle must repeat it), and `cb_funcs`"
    return Learner(cls_model(), cls_data(), F.cross_entropy, opt_func=adam_opt(), lr=1e-2, cbs=cbs,
                   cb_funcs=[partial(DeviceCallback, 'cpu'), partial(BatchTransformXCallback, scale), *cb_funcs])


def plain_loop(model, dl, tfm=scale):
    "The oracle: what get_preds does, written by hand"
    training = model.training
    model.eval()
    with torch.no_grad(): res = [(model(tfm(xb)), yb) for xb, yb in dl]
    model.train(training)
    return torch.cat([p for p, _ in res]), torch.cat([y for _, y in res])


def test_get_preds_matches_a_plain_eval_loop():
    learn = cls_learner()
    learn.fit(2)
    preds, targs = learn.get_preds()
    want, want_y = plain_loop(learn.model, learn.data.valid_dl)
    test_eq(preds, want)                                              # eval mode (dropout off, BN running stats)
    test_eq(targs, want_y)
    test_eq(preds.shape, (20, 3)); assert preds.device.type == 'cpu' and not preds.requires_grad
    test_eq(learn.get_preds(with_targets=False), want)
    tdl = torch.utils.data.DataLoader(learn.data.train_dl.dataset, batch_size=5)     # any loader, in its order
    test_eq(learn.get_preds(tdl)[0], plain_loop(learn.model, tdl)[0])


def test_get_preds_act_and_reduce():
    learn = cls_learner()
    learn.fit(1)
    logits, targs = learn.get_preds()
    probs, targs2 = learn.get_preds(act=partial(F.softmax, dim=-1))
    test_eq(probs, F.softmax(logits, dim=-1)); test_eq(targs2, targs)
    test_eq(learn.get_preds(with_targets=False, reduce='argmax'), logits.argmax(-1))
    test_eq(learn.get_preds(with_targets=False, act=partial(F.softmax, dim=-1), reduce=lambda p: p.max(-1).values),
            probs.max(-1).values)
    test_raises(lambda: learn.get_preds(reduce='max'), ValueError, "'argmax'")


def test_get_preds_fires_only_begin_batch_and_after_pred_as_in_validation():
    Spy = make_spy(ALL)
    spy, seen = Spy(), []
    class SeesMode(Callback):
        def begin_batch(self): seen.append(self.in_train)
    learn = cls_learner(cbs=[spy, SeesMode()], cb_funcs=[partial(AvgStatsCallback, []), Recorder])
    with contextlib.redirect_stdout(io.StringIO()): learn.fit(1, cbs=one_cycle(1e-2))
    spy.events.clear(); seen.clear()
    lrs, losses, stats = [h['lr'] for h in learn.opt.hypers], list(learn.recorder.losses), learn.avg_stats.valid_stats.avg_stats
    learn.model.train()
    learn.get_preds()
    test_eq(spy.events, ['begin_batch', 'after_pred'] * len(learn.data.valid_dl))
    test_eq(seen, [False] * len(learn.data.valid_dl))
    test_eq([h['lr'] for h in learn.opt.hypers], lrs)                  # no scheduler, no recorder, no statistics
    test_eq(learn.recorder.losses, losses); test_eq(learn.avg_stats.valid_stats.avg_stats, stats)
    assert learn.model.training                                        # the mode it was in, restored


def test_get_preds_with_progress_and_table_callbacks_prints_nothing():
    learn = cls_learner(cb_funcs=[partial(TableStatsCallback, []), partial(ProgressCallback, console=True)])
    out = io.StringIO()
    with contextlib.redirect_stdout(out): learn.fit(1)
    n = len(out.getvalue())
    with contextlib.redirect_stdout(out): learn.get_preds()
    test_eq(len(out.getvalue()), n)
    fresh = cls_learner(cb_funcs=[partial(TableStatsCallback, []), partial(ProgressCallback, console=True)])
    with contextlib.redirect_stdout(out): fresh.get_preds()             # never fitted: no bar, no table either
    test_eq(len(out.getvalue()), n)


def test_get_preds_puts_the_learner_back_also_when_it_raises():
    learn = cls_learner()
    learn.fit(1)
    xb, in_train = learn.xb, learn.in_train
    learn.get_preds()
    assert learn.xb is xb and learn.in_train == in_train and learn.pred is not None
    boom = make_spy(['after_pred'], raise_at={('after_pred', 2): RuntimeError('boom')})()
    learn.add_cbs(boom)
    learn.model.train()
    test_raises(lambda: learn.get_preds(), RuntimeError, 'boom')
    assert learn.xb is xb and learn.model.training
    fresh = cls_learner()
    fresh.get_preds()
    assert 'xb' not in fresh.__dict__ and 'pred' not in fresh.__dict__


def test_get_preds_takes_the_first_element_of_a_tuple_or_what_pred_func_takes():
    class WithExtras(torch.nn.Module):
        def __init__(self): super().__init__(); self.m = RegModel(2., 3.)
        def forward(self, x): return self.m(x), [x], x * 0
    learn = Learner(WithExtras(), synth_data(shuffle=False), F.mse_loss)
    preds, targs = learn.get_preds()
    xs = torch.cat([xb for xb, _ in learn.data.valid_dl])
    test_eq(preds, 2 * xs + 3)
    test_eq(targs, torch.cat([yb for _, yb in learn.data.valid_dl]))
    test_eq(learn.get_preds(with_targets=False, pred_func=lambda out: out[1][0]), xs)


def test_get_preds_half_precision_outputs_come_back_as_float32():
    class Half(torch.nn.Module):
        def __init__(self): super().__init__(); self.m = RegModel(2., 3.)
        def forward(self, x): return self.m(x).half()
    learn = Learner(Half(), synth_data(shuffle=False), F.mse_loss)
    preds = learn.get_preds(with_targets=False)
    test_eq(preds.dtype, torch.float32)
    test_eq(preds, (2 * torch.cat([xb for xb, _ in learn.data.valid_dl]) + 3).half().float())


def seq_learner(lengths=(3, 3, 5, 5, 2), bs=2):
    "An identity model on sequences of ids 1..n: each batch as long as its longest item (the others padded with 0)"
    def collate(items):
        xs = torch.zeros(len(items), max(len(x) for x, _ in items), dtype=torch.long)
        for i, (x, _) in enumerate(items): xs[i, :len(x)] = x
        return xs, xs.clone()
    seqs = [torch.arange(1, n + 1) for n in lengths]
    dl = torch.utils.data.DataLoader(list(zip(seqs, seqs)), batch_size=bs, collate_fn=collate)
    return Learner(torch.nn.Identity(), DataBunch(dl, dl), F.mse_loss)


def test_get_preds_of_variable_length_batches_needs_a_pad_value():
    learn = seq_learner()
    test_raises(lambda: learn.get_preds(), ValueError, 'pad_value')
    ids, targs = learn.get_preds(pad_value=-1)
    test_eq(ids.shape, (5, 5))
    test_eq(ids.tolist(), [[1, 2, 3, -1, -1], [1, 2, 3, -1, -1], [1, 2, 3, 4, 5], [1, 2, 3, 4, 5], [1, 2, -1, -1, -1]])
    test_eq(targs, ids)
    onehot = learn.get_preds(with_targets=False, act=lambda x: F.one_hot(x, 6).float(), reduce='argmax', pad_value=0)
    test_eq(onehot, ids.clamp(min=0))                                  # argmax per batch, then padded
    last = learn.get_preds(with_targets=False, reduce=lambda x: x[:, -1])  # one value a row: no padding needed
    test_eq(last.tolist(), [3, 3, 5, 5, 2])


def test_get_preds_resets_a_stateful_model_first():
    class Counter(torch.nn.Module):
        "Adds up what it has seen, batch after batch, until `reset`"
        def __init__(self): super().__init__(); self.w = torch.nn.Parameter(torch.ones(())); self.reset()
        def reset(self): self.total = 0.
        def forward(self, x):
            self.total = self.total + x.sum()
            return x * 0 + self.total
    learn = Learner(Counter(), synth_data(shuffle=False, bs=4), F.mse_loss)        # 2 validation batches of 8
    first = learn.get_preds(with_targets=False)
    test_eq(learn.get_preds(with_targets=False), first)               # a fresh state each time
    xs = torch.cat([xb for xb, _ in learn.data.valid_dl])
    test_near(first[8:], xs.sum().expand(8), 1e-5)                    # the state carried from batch 0 to batch 1


def test_get_preds_empty_loader():
    learn = cls_learner()
    empty = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.zeros(0, 3), torch.zeros(0)), batch_size=2)
    test_raises(lambda: learn.get_preds(empty), ValueError, 'no batch')


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_get_preds_runs_on_the_device_callback_device():
    learn = Learner(cls_model(), cls_data(), F.cross_entropy, opt_func=adam_opt(),
                    cb_funcs=[partial(DeviceCallback, 'cuda'), partial(BatchTransformXCallback, scale)])
    assert next(learn.model.parameters()).device.type == 'cpu'        # never fitted: the model is still on the CPU
    preds, targs = learn.get_preds()
    assert next(learn.model.parameters()).device.type == 'cuda' and preds.device.type == 'cpu'
    test_near(preds, plain_loop(learn.model.cpu(), learn.data.valid_dl)[0], 1e-4)
