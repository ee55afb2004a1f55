"""Lesson 05: annealers, combine_scheds (exact at both ends, no overflow at pos == 1.0), the 1cycle policy,
ParamScheduler per param group, Recorder. Formulas are written out here independently of the module."""
import math

import matplotlib
matplotlib.use('Agg')
import pytest
import torch

from raising import caught
from exp.nb_00 import test_eq, test_near, test_raises
from exp.nb_04 import Callback, Runner
from exp.nb_05 import (MomentumScheduler, ParamScheduler, Recorder, annealer, combine_scheds, cos_1cycle_anneal,
                       create_learner, get_model_func, momentum_name, one_cycle, sched_cos, sched_exp, sched_lin,
                       sched_no)
from synthetic import synth_learner


def cos_formula(start, end, pos): return end + (start - end) * (1 + math.cos(math.pi * pos)) / 2


@pytest.mark.parametrize('pos', [0., 0.25, 0.5, 0.75, 1.])
def test_annealers(pos):
    test_near(sched_lin(1., 3.)(pos), 1 + 2 * pos, eps=1e-12)
    test_near(sched_cos(1., 3.)(pos), cos_formula(1., 3., pos), eps=1e-12)
    test_near(sched_cos(3., 1.)(pos), cos_formula(3., 1., pos), eps=1e-12)
    test_eq(sched_no(1., 3.)(pos), 1.)
    test_near(sched_exp(0.01, 1.)(pos), 0.01 * 100 ** pos, eps=1e-12)


def test_annealer_exact_values():
    test_eq(sched_lin(2, 4)(0.5), 3.)
    test_eq(sched_cos(2., 4.)(0.), 2.)
    test_near(sched_cos(2., 4.)(0.5), 3., eps=1e-12)
    test_near(sched_cos(2., 4.)(1.), 4., eps=1e-12)
    test_near(sched_exp(1e-3, 10.)(0.5), 0.1, eps=1e-12)
    test_raises(lambda: sched_exp(0., 1.)(0.5), ValueError, contains='sched_exp')
    test_raises(lambda: sched_exp(1., -1.)(0.5), ValueError, contains='> 0')


def test_annealer_decorator():
    @annealer
    def sched_quad(start, end, pos): return start + (end - start) * pos ** 2
    f = sched_quad(1., 5.)
    test_eq([f(0.), f(0.5), f(1.)], [1., 2., 5.])
    test_eq(sched_quad.__name__, 'sched_quad')


def piecewise(pcts, fs, pos):
    "Reference: the piece whose [start, end) holds pos, the last non-empty piece at pos == 1."
    start = 0.
    for i, (p, f) in enumerate(zip(pcts, fs)):
        end = 1. if i == len(pcts) - 1 else start + p
        if p > 0 and (pos < end or all(q == 0 for q in pcts[i + 1:])): return f((pos - start) / p)
        start = end
    raise AssertionError('unreachable')


SCHEDS = [sched_lin(1., 2.), sched_cos(5., 3.), sched_exp(0.1, 10.)]


@pytest.mark.parametrize('pos', [0., 0.1, 0.2, 0.35, 0.5, 0.7, 0.9999999, 1.])
def test_combine_scheds_matches_piecewise_formula(pos):
    pcts = [0.2, 0.3, 0.5]           # boundaries 0.2 and 0.5
    test_near(combine_scheds(pcts, SCHEDS)(pos), piecewise(pcts, SCHEDS, pos), eps=1e-9)


def test_combine_scheds_ends_and_boundaries():
    f = combine_scheds([0.2, 0.3, 0.5], SCHEDS)
    test_eq(f(0.), 1.)                                   # exactly the start of the first piece
    test_near(f(1.), 10., eps=1e-12)                     # exactly the end of the last piece: no IndexError
    test_near(f(0.2), 5., eps=1e-12)                     # a boundary starts the next piece
    test_near(f(0.5), 0.1, eps=1e-12)
    test_near(f(0.2 - 1e-12), 2., eps=1e-6)              # ... and ends the previous one
    test_near(f(torch.tensor(1.)), 10., eps=1e-12)       # tensors work too


def test_combine_scheds_thirds_no_rounding_overflow():
    # 1/3 + 1/3 + 1/3 does not add up to exactly 1.0 in floating point
    f = combine_scheds([1 / 3] * 3, [sched_lin(0., 1.), sched_lin(1., 2.), sched_lin(2., 3.)])
    test_near(f(1.), 3., eps=1e-12)
    test_near(f(1 / 3), 1., eps=1e-12)
    test_near(f(2 / 3), 2., eps=1e-12)


def test_combine_scheds_zero_length_pieces():
    lin = lambda a, b: sched_lin(float(a), float(b))
    f = combine_scheds([0., 0.5, 0., 0.5, 0.], [lin(9, 9), lin(0, 1), lin(7, 7), lin(1, 2), lin(8, 8)])
    test_eq(f(0.), 0.)                  # the empty first piece is never used
    test_eq(f(0.5), 1.)                 # nor the empty middle one
    test_eq(f(1.), 2.)                  # nor the empty last one, even at pos == 1
    test_eq(combine_scheds([1.], [lin(4, 6)])(1.), 6.)


def test_combine_scheds_bad_input():
    two = [sched_no(1, 1)] * 2
    test_raises(lambda: combine_scheds([0.3, 0.6], two), ValueError, contains='sum to 1')
    test_raises(lambda: combine_scheds([-0.5, 1.5], two), ValueError, contains='>= 0')
    test_raises(lambda: combine_scheds([0.5, 0.5], two[:1]), ValueError, contains='2 pcts for 1 scheds')
    test_raises(lambda: combine_scheds([], []), ValueError, contains='no schedules')
    f = combine_scheds([0.5, 0.5], two)
    test_raises(lambda: f(1.01), ValueError, contains='[0, 1]')
    test_raises(lambda: f(-0.1), ValueError, contains='[0, 1]')
    test_eq(f(1 + 1e-12), 1)            # rounding noise is clamped, not refused


def one_cycle_lr(lr_max, pos, pct=0.3):
    if pos <= pct: return cos_formula(lr_max / 10, lr_max, pos / pct)
    return cos_formula(lr_max, lr_max / 1e5, (pos - pct) / (1 - pct))


def one_cycle_mom(pos, pct=0.3):
    if pos <= pct: return cos_formula(0.95, 0.85, pos / pct)
    return cos_formula(0.85, 0.95, (pos - pct) / (1 - pct))


@pytest.mark.parametrize('pos', [0., 0.1, 0.3, 0.5, 0.8, 1.])
def test_one_cycle_schedules(pos):
    lr_cb, mom_cb = one_cycle(0.4)
    test_eq((lr_cb.pname, mom_cb.pname), ('lr', None))              # the momentum's name: found at begin_fit
    assert isinstance(mom_cb, MomentumScheduler)
    test_near(lr_cb.sched_funcs(pos), one_cycle_lr(0.4, pos), eps=1e-9)
    test_near(mom_cb.sched_funcs(pos), one_cycle_mom(pos), eps=1e-9)


def test_one_cycle_ends_and_peak():
    lr_cb, mom_cb = one_cycle(1., pct_start=0.25)
    test_near([lr_cb.sched_funcs(p) for p in (0., 0.25, 1.)], [0.1, 1., 1e-5], eps=1e-12)
    test_near([mom_cb.sched_funcs(p) for p in (0., 0.25, 1.)], [0.95, 0.85, 0.95], eps=1e-12)
    test_eq(len(one_cycle(1., moms=None)), 1)
    test_eq(one_cycle(1., mom_name='beta')[1].pname, 'beta')
    lr_cb = one_cycle([0.1, 1.], moms=None)[0]
    test_eq(len(lr_cb.sched_funcs), 2)
    test_near([f(0.3) for f in lr_cb.sched_funcs], [0.1, 1.], eps=1e-12)
    test_eq(len(one_cycle([0.1], moms=None)[0].sched_funcs), 1)     # a list is one schedule per group, even of one
    test_eq(len(cos_1cycle_anneal(1, 2, 3)), 2)
    test_raises(lambda: one_cycle(1., pct_start=1.2), ValueError, contains='pct_start')


class RecordHypers(Callback):
    "Records every group's lr and momentum as used by each optimizer step."
    _order = 10
    def begin_fit(self): self.hypers = []
    def after_step(self): self.hypers.append([(pg['lr'], pg['momentum']) for pg in self.opt.param_groups])


def test_param_scheduler_per_group():
    learn = synth_learner(n_train=32, bs=8, two_groups=True)     # 4 batches per epoch, groups [a], [b]
    rec = RecordHypers()
    scheds = [sched_lin(0.1, 0.2), sched_cos(1., 0.5)]
    Runner(cbs=[ParamScheduler('lr', scheds), rec]).fit(2, learn)
    test_eq(len(rec.hypers), 8)
    for i, hyp in enumerate(rec.hypers):
        pos = i / 8                                                 # batch i of 8 runs at pos = i/8
        test_near([lr for lr, _ in hyp], [scheds[0](pos), scheds[1](pos)], eps=1e-9)


def test_param_scheduler_one_sched_for_all_groups_and_momentum():
    learn = synth_learner(n_train=32, bs=8, two_groups=True, momentum=0.9)
    rec = RecordHypers()
    Runner(cbs=[*one_cycle(0.1), rec]).fit(1, learn)
    for i, hyp in enumerate(rec.hypers):
        pos = i / 4
        test_near(hyp, [(one_cycle_lr(0.1, pos), one_cycle_mom(pos))] * 2, eps=1e-9)


def test_param_scheduler_momentum_is_used_by_sgd():
    "Scheduling momentum really changes the optimizer's steps (vs the same run at constant momentum 0)."
    def final_params(sched_mom):
        learn = synth_learner(n_train=32, bs=8)
        cbs = [ParamScheduler('momentum', sched_no(0.9, 0.9))] if sched_mom else []
        Runner(cbs=cbs).fit(1, learn)
        return [p.item() for p in learn.model.parameters()]
    assert final_params(True) != final_params(False)


def test_param_scheduler_bad_input():
    learn = synth_learner(two_groups=True)
    test_raises(lambda: Runner(cbs=ParamScheduler('lr', [sched_no(1, 1)] * 3)).fit(1, learn),
                ValueError, contains='3 schedules for 2 parameter groups')
    e = caught(lambda: Runner(cbs=ParamScheduler('mom', sched_no(1, 1))).fit(1, learn),
               ValueError, contains="'mom'")
    assert 'momentum' in str(e)                                     # the message lists the real names
    assert 'mom' not in learn.opt.param_groups[0]                   # nothing was set


def test_param_scheduler_only_in_training():
    learn = synth_learner(n_train=16, bs=8)
    seen = []
    class Watch(Callback):
        _order = 10
        def begin_batch(self): seen.append((self.in_train, self.opt.param_groups[0]['lr']))
    Runner(cbs=[ParamScheduler('lr', sched_lin(1., 2.)), Watch()]).fit(1, learn)
    test_eq(seen, [(True, 1.), (True, 1.5), (False, 1.5)])          # validation leaves lr alone


def test_recorder():
    learn = synth_learner(n_train=24, bs=8)
    run = Runner(cbs=[ParamScheduler('lr', sched_lin(0.1, 0.4)), Recorder()])
    run.fit(2, learn)
    test_eq(len(run.recorder.lrs), 1)                               # one list per param group
    test_near(run.recorder.lrs[0], [0.1 + 0.3 * i / 6 for i in range(6)], eps=1e-9)
    test_eq(len(run.recorder.losses), 6)
    assert all(isinstance(l, float) for l in run.recorder.losses)
    assert run.recorder.losses[-1] < run.recorder.losses[0]
    ax = run.recorder.plot_lr()
    test_near(ax.lines[0].get_ydata(), run.recorder.lrs[0])
    ax = run.recorder.plot_loss()
    test_near(ax.lines[0].get_ydata(), run.recorder.losses)
    run.fit(1, learn)                                               # a new fit starts new lists
    test_eq(len(run.recorder.losses), 3)


def test_create_learner():
    x = torch.randn(20, 6)
    dl = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, torch.arange(20) % 4), batch_size=5)
    from exp.nb_04 import DataBunch
    learn = create_learner(get_model_func(0.3), torch.nn.functional.cross_entropy, DataBunch(dl, dl, c=4))
    test_eq(learn.opt.param_groups[0]['lr'], 0.3)
    test_eq(learn.model(x).shape, (20, 4))


@pytest.mark.parametrize('pct', [0.25, 0.3, 0.5])
@pytest.mark.parametrize('lr', [1., 0.4, 3e-3])
def test_one_cycle_is_exact_at_both_ends_and_at_pct_start(lr, pct):
    lr_cb, mom_cb = one_cycle(lr, pct_start=pct, div_start=25., div_end=1e4)
    assert [lr_cb.sched_funcs(p) for p in (0., pct, 1.)] == [lr / 25., lr, lr / 1e4]
    assert [mom_cb.sched_funcs(p) for p in (0., pct, 1.)] == [0.95, 0.85, 0.95]


@pytest.mark.parametrize('sched', ['sched_lin', 'sched_cos', 'sched_exp', 'sched_no'])
def test_annealers_exact_at_both_ends(sched):
    import exp.nb_05 as nb05
    f = getattr(nb05, sched)
    for start, end in [(0.1, 1e-6), (0.4, 0.04), (3e-3, 0.7), (0.95, 0.85)]:
        s = f(start, end)
        assert s(0.) == start and s(1.) == (start if sched == 'sched_no' else end), (start, end, s(0.), s(1.))


def test_lesson_09_one_cycle_is_exact_at_the_ends():
    from exp.nb_09 import one_cycle as one_cycle_09
    lr_cb, mom_cb = one_cycle_09(0.1)
    assert [lr_cb.sched_funcs(p) for p in (0., 0.3, 1.)] == [0.1 / 10., 0.1, 0.1 / 1e5]
    assert [mom_cb.sched_funcs(p) for p in (0., 0.3, 1.)] == [0.95, 0.85, 0.95]


# ------------------------------------------------------------------ one_cycle with any optimizer: the momentum's name

class Group0(Callback):
    "The hyper-parameters of parameter group 0 at each training batch, after the schedulers (`_order` 1) set them"
    _order = 2
    def begin_fit(self): self.seen = []
    def begin_batch(self):
        if self.in_train: self.seen.append({k: v for k, v in self.opt.param_groups[0].items() if k != 'params'})


def fit_one_cycle(opt_class, epochs=1, **kwargs):
    "`one_cycle(0.1, pct_start=0.25, **kwargs)` for `epochs` on the synthetic regression (4 batches an epoch) with torch's `opt_class`"
    learn = synth_learner(n_train=32, bs=8)
    learn.opt = opt_class(learn.model.parameters(), lr=0.1)
    spy = Group0()
    Runner(cbs=one_cycle(0.1, pct_start=0.25, **kwargs) + [spy]).fit(epochs, learn)
    return spy.seen, learn


def mom_at(pos): return combine_scheds([0.25, 0.75], cos_1cycle_anneal(0.95, 0.85, 0.95))(pos)


@pytest.mark.parametrize('opt_class', [torch.optim.SGD, torch.optim.RMSprop])
def test_one_cycle_schedules_torch_momentum(opt_class):
    seen, _ = fit_one_cycle(opt_class, 2)
    test_eq([h['momentum'] for h in seen], [mom_at(i / 8) for i in range(8)])      # exactly the schedule
    test_eq([h['lr'] for h in seen][:2], [0.1 / 10, combine_scheds([0.25, 0.75], cos_1cycle_anneal(0.01, 0.1, 1e-6))(1 / 8)])


@pytest.mark.parametrize('opt_class', [torch.optim.Adam, torch.optim.AdamW])
def test_one_cycle_schedules_beta1_of_torch_adam(opt_class):
    seen, learn = fit_one_cycle(opt_class)
    test_eq([h['betas'] for h in seen], [(mom_at(i / 4), 0.999) for i in range(4)])  # β1 scheduled, β2 kept
    assert isinstance(learn.opt.param_groups[0]['betas'], tuple)


def test_one_cycle_without_momentum_schedules_the_lr_only():
    seen, learn = fit_one_cycle(torch.optim.Adagrad)
    assert momentum_name(learn.opt.param_groups[0]) is None
    test_eq([h['lr'] for h in seen][0], 0.1 / 10)
    assert not {'mom', 'momentum', 'betas'} & set(learn.opt.param_groups[0])        # nothing added


def test_one_cycle_explicit_mom_name():
    seen, _ = fit_one_cycle(torch.optim.SGD, mom_name='momentum')
    test_eq([h['momentum'] for h in seen], [mom_at(i / 4) for i in range(4)])
    e = caught(lambda: fit_one_cycle(torch.optim.SGD, mom_name='mom'), ValueError, contains="'mom'")
    assert 'momentum' in str(e)                                     # the message lists the real names
    seen, _ = fit_one_cycle(torch.optim.Adam, mom_name='betas')     # named, betas still means β1
    test_eq(seen[0]['betas'], (0.95, 0.999))


def test_momentum_name_of_each_optimizer():
    w = [torch.zeros(2, requires_grad=True)]
    pg = lambda opt: opt.param_groups[0]
    test_eq(momentum_name(pg(torch.optim.SGD(w, lr=0.1))), 'momentum')
    test_eq(momentum_name(pg(torch.optim.Adam(w))), 'betas')
    test_eq(momentum_name(pg(torch.optim.Adagrad(w))), None)
    test_eq(momentum_name({'lr': 0.1, 'mom': 0.9, 'sqr_mom': 0.99}), 'mom')      # ours (lesson 09)


def test_one_mom_scheduler_follows_each_optimizer():
    "The same callbacks reused for a second fit with another optimizer look the name up again"
    cbs = one_cycle(0.1)
    learn = synth_learner(n_train=16, bs=8)
    Runner(cbs=cbs).fit(1, learn)
    test_eq(cbs[1].pname, 'momentum')
    learn.opt = torch.optim.Adam(learn.model.parameters(), lr=0.1)
    Runner(cbs=cbs).fit(1, learn)
    test_eq(cbs[1].pname, 'betas')
