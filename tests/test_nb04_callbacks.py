"""Lesson 04: the Runner's events, their order, the return-value rules, TrainEvalCallback and AvgStats.

Runs on the synthetic two-parameter learner of `tests/synthetic.py`, so every test takes milliseconds.
"""
import pytest
import torch
import torch.nn.functional as F

from exp.nb_00 import test_eq, test_near, test_raises
from exp.nb_04 import (AvgStats, AvgStatsCallback, Callback, DataBunch, Learner, Runner, TrainEvalCallback,
                       camel2snake, get_model, listify)
from synthetic import make_spy, synth_data, synth_learner

TRAIN_BATCH = ['begin_batch', 'after_pred', 'after_loss', 'after_backward', 'after_step', 'after_batch']
VALID_BATCH = ['begin_batch', 'after_pred', 'after_loss', 'after_batch']


def params(learn): return [p.detach().clone() for p in learn.model.parameters()]


def fit_spy(learn, *cbs, epochs=1):
    spy = make_spy(Runner.EVENTS)()
    run = Runner(cbs=[*cbs, spy])
    run.fit(epochs, learn)
    return run, spy.events


def test_event_order_one_epoch():
    learn = synth_learner(n_train=16, n_valid=16, bs=8)       # 2 training batches, 1 validation batch (bs 16)
    test_eq((len(learn.data.train_dl), len(learn.data.valid_dl)), (2, 1))
    _, events = fit_spy(learn)
    test_eq(events, ['begin_fit', 'begin_epoch', *TRAIN_BATCH, *TRAIN_BATCH, 'begin_validate', *VALID_BATCH,
                     'after_epoch', 'after_fit'])


def test_event_order_two_epochs():
    _, events = fit_spy(synth_learner(n_train=8, n_valid=8, bs=8), epochs=2)
    epoch = ['begin_epoch', *TRAIN_BATCH, 'begin_validate', *VALID_BATCH, 'after_epoch']
    test_eq(events, ['begin_fit', *epoch, *epoch, 'after_fit'])


def test_callbacks_run_in_order():
    log = []
    def cb_class(tag, order):
        return type(f'Cb{tag}', (Callback,), {'_order': order, 'begin_fit': lambda self: log.append(tag)})
    cbs = [cb_class('c', 5)(), cb_class('a', -1)(), cb_class('b1', 2)(), cb_class('b2', 2)()]
    Runner(cbs=cbs).fit(1, synth_learner())
    test_eq(log, ['a', 'b1', 'b2', 'c'])      # sorted by _order; ties keep the given order


def test_train_eval_callback_runs_first_and_once():
    run = Runner(cbs=[TrainEvalCallback()])
    test_eq(sum(isinstance(cb, TrainEvalCallback) for cb in run.cbs), 1)
    run = Runner()
    test_eq([type(cb) for cb in run.cbs], [TrainEvalCallback])
    test_eq(run.train_eval, run.cbs[0])


def make_skipper(event, order=-5):
    "A callback class returning True from `event` (with a low `_order`, so it runs before the spy)."
    return type('Skipper', (Callback,), {'_order': order, event: lambda self: True})


def test_true_from_begin_batch_skips_the_batch():
    learn = synth_learner()
    p0 = params(learn)
    losses = []
    class LossAtBatchEnd(Callback):
        def after_batch(self): losses.append(self.loss)
    run, events = fit_spy(learn, make_skipper('begin_batch')(), LossAtBatchEnd())
    for e in ('after_pred', 'after_loss', 'after_backward', 'after_step'): assert e not in events, e
    test_eq(events.count('after_batch'), 3)          # 2 train + 1 valid: every batch is still closed
    test_eq(losses, [None, None, None])              # ... with no loss computed
    test_eq(params(learn), p0)
    test_eq(run.n_iter, 2)                           # skipped batches still count as training progress


def test_true_from_after_loss_skips_backward_and_step():
    learn = synth_learner()
    p0 = params(learn)
    _, events = fit_spy(learn, make_skipper('after_loss')())
    assert 'after_backward' not in events and 'after_step' not in events
    test_eq(events.count('after_loss'), 3)
    test_eq(params(learn), p0)
    assert all(p.grad is None for p in learn.model.parameters())   # no backward at all


def test_true_from_after_backward_skips_the_step_and_keeps_grads():
    learn = synth_learner()
    p0 = params(learn)
    _, events = fit_spy(learn, make_skipper('after_backward')())
    assert 'after_step' not in events
    test_eq(events.count('after_backward'), 2)
    test_eq(params(learn), p0)                        # weights unchanged
    # no zero_grad either: the gradients of both batches accumulated
    model = synth_learner().model
    for xb, yb in learn.data.train_dl: F.mse_loss(model(xb), yb).backward()
    test_near([p.grad for p in learn.model.parameters()], [p.grad for p in model.parameters()], eps=1e-6)


def test_true_from_begin_validate_skips_validation():
    _, events = fit_spy(synth_learner(), make_skipper('begin_validate')())
    test_eq(events, ['begin_fit', 'begin_epoch', *TRAIN_BATCH, *TRAIN_BATCH, 'begin_validate', 'after_epoch',
                     'after_fit'])


@pytest.mark.parametrize('event', ['begin_fit', 'begin_epoch', 'after_pred', 'after_step', 'after_batch',
                                   'after_epoch'])
def test_true_from_other_events_is_ignored(event):
    learn = synth_learner()
    p0 = params(learn)
    _, events = fit_spy(learn, make_skipper(event)())
    _, ref_events = fit_spy(synth_learner())
    test_eq(events, ref_events)
    assert not all(torch.equal(a, b) for a, b in zip(params(learn), p0))   # it trained
    assert all(p.grad is None or not p.grad.any() for p in learn.model.parameters())   # zero_grad ran


@pytest.mark.parametrize('event', ['begin_batch', 'after_loss', 'after_backward', 'begin_validate'])
def test_every_callback_is_called_even_after_a_true(event):
    first, second = make_skipper(event, order=-5)(), make_skipper(event, order=5)()
    counts = []
    class Counter(Callback):
        _order = 10
    setattr(Counter, event, lambda self: counts.append(event))
    fit_spy(synth_learner(), first, second, Counter())
    n = {'begin_batch': 3, 'after_loss': 3, 'after_backward': 2, 'begin_validate': 1}[event]
    test_eq(len(counts), n)


def test_false_and_none_do_not_skip():
    class Explicit(Callback):
        def begin_batch(self): return False
        def after_backward(self): return None
    learn = synth_learner()
    p0 = params(learn)
    _, events = fit_spy(learn, Explicit())
    test_eq(events.count('after_step'), 2)
    assert not torch.equal(params(learn)[0], p0[0])


def test_stop_flag_ends_training():
    class StopAfter(Callback):
        def after_step(self):
            if self.n_iter + 1 >= 3: self.run.stop = True
    run, events = fit_spy(synth_learner(n_train=16, bs=4), StopAfter(), epochs=5)   # 4 batches per epoch
    test_eq(run.n_iter, 3)
    test_eq(events.count('begin_epoch'), 1)
    assert 'begin_validate' in events and events.count('begin_batch') == 3   # no validation batch ran
    test_eq(events[-2:], ['after_epoch', 'after_fit'])
    run.fit(1, synth_learner())                       # the flag is reset by the next fit
    test_eq(run.n_iter, 2)


def test_n_epochs_and_n_iter():
    seen = []
    class Watch(Callback):
        _order = 1
        def begin_batch(self): seen.append((self.in_train, self.n_epochs, self.n_iter, self.model.training))
    learn = synth_learner(n_train=12, n_valid=6, bs=4)   # 3 training batches, 1 validation batch
    run = Runner(cbs=Watch())
    run.fit(2, learn)
    train = [s for s in seen if s[0]]
    test_near([s[1] for s in train], [0, 1/3, 2/3, 1, 4/3, 5/3])
    test_eq([s[2] for s in train], list(range(6)))
    assert all(s[3] for s in train)                      # train mode while training
    valid = [s for s in seen if not s[0]]
    test_eq(len(valid), 2)
    assert not any(s[3] for s in valid)                  # eval mode while validating
    test_near(run.n_epochs, 2.)
    test_eq(run.n_iter, 6)
    assert not learn.model.training and not run.in_train  # fit ends in eval mode


def test_callback_reads_runner_attributes_and_writes_its_own():
    class Peek(Callback):
        def begin_fit(self):
            self.seen_epochs = self.epochs           # read from the runner
            self.epochs = 99                         # sets an attribute of the callback only
    run = Runner(cbs=Peek())
    run.fit(2, synth_learner())
    test_eq(run.peek.seen_epochs, 2)
    test_eq(run.epochs, 2)
    test_raises(lambda: Peek().model, AttributeError, contains='no runner')
    test_raises(lambda: run.peek.no_such_attribute, AttributeError)


def test_callback_names():
    class AvgStatsTestCallback(Callback): pass
    class Callback2Callback(Callback): pass
    test_eq(AvgStatsTestCallback().name, 'avg_stats_test')
    test_eq(TrainEvalCallback().name, 'train_eval')
    test_eq(AvgStatsCallback([]).name, 'avg_stats')
    test_eq(camel2snake('LRFinder'), 'lr_finder')
    test_eq(camel2snake('HTTPServerError'), 'http_server_error')
    test_eq(camel2snake('already_snake'), 'already_snake')
    class Fit(Callback): pass
    test_raises(lambda: Runner(cbs=Fit()), ValueError, contains="'fit'")


def test_misspelled_event_is_refused():
    class Typo(Callback):
        def after_epochs(self): pass
    test_raises(lambda: Runner(cbs=Typo()).fit(1, synth_learner()), ValueError, contains='after_epochs')


def test_listify():
    test_eq(listify(None), [])
    l = [1, 2]
    assert listify(l) is l
    test_eq(listify((1, 2)), [1, 2])
    test_eq(listify('ab'), ['ab'])
    test_eq(listify(5), [5])
    t = torch.arange(3)
    test_eq(len(listify(t)), 1)
    test_eq(listify(range(3)), [0, 1, 2])


def test_cb_funcs_make_callbacks_stored_by_name():
    run = Runner(cb_funcs=[lambda: AvgStatsCallback([], logger=lambda s: None)])
    assert isinstance(run.avg_stats, AvgStatsCallback)


def mae(pred, targ): return (pred - targ).abs().mean()


def full_stats(model, ds):
    x, y = ds.tensors
    with torch.no_grad(): pred = model(x)
    return [F.mse_loss(pred, y).item(), mae(pred, y).item()]


def test_avg_stats_weighted_by_batch_size():
    # batches of 8, 8, 4 (train) and 8, 8, 4 (valid): a plain mean of batch values would be wrong
    learn = synth_learner(n_train=20, n_valid=20, bs=8, valid_bs=8)
    logged = []
    stats_cb = AvgStatsCallback([mae], logger=logged.append)
    run = Runner(cbs=[stats_cb, make_skipper('after_backward')()])    # no step: the model stays fixed
    run.fit(1, learn)
    expected = full_stats(learn.model, learn.data.train_ds)
    test_near(stats_cb.train_stats.avg_stats, expected, eps=1e-5)
    test_near(stats_cb.valid_stats.avg_stats, full_stats(learn.model, learn.data.valid_ds), eps=1e-5)
    test_eq(stats_cb.train_stats.count, 20)
    test_eq(len(logged), 1)
    assert logged[0].startswith('epoch 0: train: loss ') and 'mae' in logged[0] and 'valid:' in logged[0]


def test_avg_stats_valid_after_training():
    learn = synth_learner(n_train=32, n_valid=20, bs=8, valid_bs=8, lr=0.3)
    stats_cb = AvgStatsCallback([mae], logger=lambda s: None)
    Runner(cbs=stats_cb).fit(3, learn)
    test_near(stats_cb.valid_stats.avg_stats, full_stats(learn.model, learn.data.valid_ds), eps=1e-5)
    assert stats_cb.valid_stats.avg_stats[0] < 1.0                      # it learned y = 2x + 3
    assert stats_cb.train_stats.tot_loss.grad_fn is None                 # no graph kept alive


def test_avg_stats_reset_each_epoch_and_empty():
    stats = AvgStats([mae], in_train=False)
    stats.reset()
    assert all(v != v for v in stats.avg_stats)                          # NaN when no batch was seen
    test_eq(repr(stats), 'valid: no batches')
    stats_cb = AvgStatsCallback([], logger=lambda s: None)
    Runner(cbs=stats_cb).fit(2, synth_learner(n_train=16, bs=8))
    test_eq(stats_cb.train_stats.count, 16)                              # the last epoch only


def test_databunch_and_learner():
    data = synth_data(n_train=10, n_valid=6)
    test_eq(len(data.train_ds), 10)
    test_eq(len(data.valid_ds), 6)
    assert data.c is None
    test_raises(lambda: get_model(data), ValueError, contains='data.c')
    x = torch.randn(12, 5)
    dl = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, torch.arange(12) % 3), batch_size=4)
    model, opt = get_model(DataBunch(dl, dl, c=3), lr=0.2, nh=7)
    test_eq(model(x).shape, (12, 3))
    test_eq(model[0].out_features, 7)
    test_eq(opt.param_groups[0]['lr'], 0.2)
    learn = Learner(model, opt, F.cross_entropy, data)
    assert learn.model is model and learn.opt is opt and learn.data is data
