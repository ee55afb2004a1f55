"""Oracle tests for the optimizer of lesson 09 (`exp.nb_09`).

Each optimizer built from steppers and stats is run next to `torch.optim` doing the same thing: the
same float64 model, data and initial weights, 100 full-batch steps, and the weights compared after
every step (maximum relative difference <= 1e-5). LAMB is compared with a NumPy transcription of
Algorithm 2 of the paper (You et al. 2019, arXiv 1904.00962), written here.
"""
import copy
import math
from functools import partial

import numpy as np
import pytest
import torch
from torch import nn
import torch.nn.functional as F

from exp.nb_00 import test_eq, test_raises
from exp.nb_09 import (Optimizer, StatefulOptimizer, Stat, AverageGrad, AverageSqrGrad, StepCount, sgd_step,
                       momentum_step, weight_decay, l2_reg, sgd_opt, adam_step, adam_opt, lamb_step, lamb_opt,
                       debias, get_defaults, maybe_update, ParamScheduler, Recorder, LR_Find)

STEPS, RTOL = 100, 1e-5


pytestmark = pytest.mark.usefixtures('one_thread')   # conftest.py: torch on one thread


def make_problem(seed=0):
    "A small float64 MLP (tanh, so the weights do not stall) and a fixed regression batch"
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3)).double()
    x, y = torch.randn(40, 6, dtype=torch.float64), torch.randn(40, 3, dtype=torch.float64)
    return model, x, y


def trajectory(opt_func, steps=STEPS, seed=0):
    "Weights (flattened) after each of `steps` full-batch steps of `opt_func(model.parameters())`"
    model, x, y = make_problem(seed)
    opt = opt_func(model.parameters())
    out = []
    for _ in range(steps):
        F.mse_loss(model(x), y).backward()
        opt.step()
        opt.zero_grad()
        out.append(torch.cat([p.detach().flatten() for p in model.parameters()]).clone())
    return torch.stack(out)


def max_rel_diff(a, b):
    return ((a - b).abs() / b.abs().clamp_min(1e-8)).max().item()


def assert_same_trajectory(ours, theirs):
    ta, tb = trajectory(ours), trajectory(theirs)
    moved = (tb[-1] - tb[0]).abs().max().item()
    assert moved > 1e-2, f"the reference barely moved ({moved:g}): the comparison would prove nothing"
    d = max_rel_diff(ta, tb)
    assert d <= RTOL, f"max relative difference over {STEPS} steps is {d:.3g} > {RTOL}"


# ------------------------------------------------------------------ oracles against torch.optim

def test_sgd_vs_torch():
    assert_same_trajectory(partial(sgd_opt, lr=0.1), partial(torch.optim.SGD, lr=0.1))


def test_sgd_momentum_vs_torch():
    ours = partial(StatefulOptimizer, steppers=momentum_step, stats=AverageGrad(), lr=0.05, mom=0.9)
    assert_same_trajectory(ours, partial(torch.optim.SGD, lr=0.05, momentum=0.9))


def test_l2_vs_torch_sgd_weight_decay():
    ours = partial(Optimizer, steppers=[sgd_step, l2_reg], lr=0.1, wd=0.05)
    assert_same_trajectory(ours, partial(torch.optim.SGD, lr=0.1, weight_decay=0.05))


def test_l2_with_momentum_vs_torch():
    "L2 must change the gradient before the momentum average reads it, as torch's SGD weight_decay does"
    ours = partial(StatefulOptimizer, steppers=[momentum_step, l2_reg], stats=AverageGrad(), lr=0.05, wd=0.05)
    assert_same_trajectory(ours, partial(torch.optim.SGD, lr=0.05, momentum=0.9, weight_decay=0.05))


def test_weight_decay_equals_l2_for_plain_sgd_only():
    wd_sgd = trajectory(partial(sgd_opt, lr=0.1, wd=0.05))
    l2_sgd = trajectory(partial(Optimizer, steppers=[l2_reg, sgd_step], lr=0.1, wd=0.05))
    assert max_rel_diff(wd_sgd, l2_sgd) < 1e-9
    mom = dict(stats=AverageGrad(), lr=0.05, wd=0.05)
    wd_mom = trajectory(partial(StatefulOptimizer, steppers=[weight_decay, momentum_step], **mom))
    l2_mom = trajectory(partial(StatefulOptimizer, steppers=[l2_reg, momentum_step], **mom))
    assert max_rel_diff(wd_mom, l2_mom) > 1e-3


@pytest.mark.parametrize('eps', [1e-8, 1e-3])
def test_adam_vs_torch(eps):
    ours = adam_opt(lr=1e-2, mom=0.9, sqr_mom=0.99, eps=eps)
    assert_same_trajectory(ours, partial(torch.optim.Adam, lr=1e-2, betas=(0.9, 0.99), eps=eps))


def test_adam_defaults_vs_torch_betas():
    "The default betas of torch (0.9, 0.999) through our `sqr_mom`"
    ours = adam_opt(lr=3e-3, sqr_mom=0.999, eps=1e-8)
    assert_same_trajectory(ours, partial(torch.optim.Adam, lr=3e-3, eps=1e-8))


def test_adamw_vs_torch():
    ours = adam_opt(lr=1e-2, mom=0.9, sqr_mom=0.99, eps=1e-6, wd=0.1)
    assert_same_trajectory(ours, partial(torch.optim.AdamW, lr=1e-2, betas=(0.9, 0.99), eps=1e-6, weight_decay=0.1))


def two_groups(opt_func, **weight_hypers):
    "`opt_func` on two groups given as dicts, PyTorch's way: the weights with their own hyper-parameters, the biases with the defaults"
    def _inner(params):
        ps = list(params)
        return opt_func([{'params': ps[0::2], **weight_hypers}, {'params': ps[1::2]}])
    return _inner


def test_dict_param_groups_vs_torch_adamw():
    ours = two_groups(adam_opt(lr=1e-2, mom=0.9, sqr_mom=0.99, eps=1e-6), lr=3e-2, wd=0.1)
    theirs = two_groups(partial(torch.optim.AdamW, lr=1e-2, betas=(0.9, 0.99), eps=1e-6, weight_decay=0.),
                        lr=3e-2, weight_decay=0.1)
    assert_same_trajectory(ours, theirs)


def test_dict_param_groups_vs_torch_sgd_momentum():
    ours = two_groups(partial(StatefulOptimizer, steppers=[l2_reg, momentum_step], stats=AverageGrad(), lr=0.05,
                              mom=0.9), lr=0.01, wd=1e-2)
    theirs = two_groups(partial(torch.optim.SGD, lr=0.05, momentum=0.9), lr=0.01, weight_decay=1e-2)
    assert_same_trajectory(ours, theirs)


def test_adam_l2_vs_torch_adam_weight_decay():
    "torch.optim.Adam's weight_decay is L2: our l2_reg stepper in front of Adam"
    ours = partial(StatefulOptimizer, steppers=[l2_reg, adam_step],
                   stats=[AverageGrad(dampening=True), AverageSqrGrad(), StepCount()],
                   lr=1e-2, mom=0.9, sqr_mom=0.99, eps=1e-6, wd=0.1)
    assert_same_trajectory(ours, partial(torch.optim.Adam, lr=1e-2, betas=(0.9, 0.99), eps=1e-6, weight_decay=0.1))


def test_adam_oracle_detects_eps_inside_sqrt():
    "The comparison is sharp enough to catch eps moved inside the square root"
    def eps_inside(p, lr, mom, mom_damp, step, sqr_mom, sqr_damp, grad_avg, sqr_avg, eps, **kwargs):
        d1, d2 = debias(mom, mom_damp, step), debias(sqr_mom, sqr_damp, step)
        p.data.addcdiv_(grad_avg, (sqr_avg / d2 + eps).sqrt(), value=-lr / d1)
    moved = partial(StatefulOptimizer, steppers=eps_inside, lr=1e-2, mom=0.9, sqr_mom=0.99, eps=1e-3,
                    stats=[AverageGrad(dampening=True), AverageSqrGrad(), StepCount()])
    with pytest.raises(AssertionError, match='max relative difference'):
        assert_same_trajectory(moved, partial(torch.optim.Adam, lr=1e-2, betas=(0.9, 0.99), eps=1e-3))


# ------------------------------------------------------------------ LAMB against the paper

def lamb_numpy(params, grad_fn, steps, lr, beta1, beta2, eps, wd):
    """Algorithm 2 (LAMB) of You et al. 2019, in NumPy, with phi the identity; each array of `params` is a layer.
    A layer whose weight norm or update norm is 0 takes the unscaled step (ratio 1)."""
    x = [p.copy() for p in params]
    m = [np.zeros_like(p) for p in x]
    v = [np.zeros_like(p) for p in x]
    out = []
    for t in range(1, steps + 1):
        g = grad_fn(x)
        for i in range(len(x)):
            m[i] = beta1 * m[i] + (1 - beta1) * g[i]
            v[i] = beta2 * v[i] + (1 - beta2) * g[i] ** 2
            m_hat = m[i] / (1 - beta1 ** t)
            v_hat = v[i] / (1 - beta2 ** t)
            r = m_hat / (np.sqrt(v_hat) + eps)
            u = r + wd * x[i]
            x_norm, u_norm = np.linalg.norm(x[i]), np.linalg.norm(u)
            ratio = x_norm / u_norm if x_norm > 0 and u_norm > 0 else 1.0
            x[i] = x[i] - lr * ratio * u
        out.append(np.concatenate([p.ravel() for p in x]))
    return np.stack(out)


def torch_grads(model, x, y):
    "grad_fn for the NumPy side: the gradients of the torch model at the given weights"
    def grad_fn(arrays):
        with torch.no_grad():
            for p, a in zip(model.parameters(), arrays): p.copy_(torch.from_numpy(a))
        model.zero_grad()
        F.mse_loss(model(x), y).backward()
        return [p.grad.detach().numpy().copy() for p in model.parameters()]
    return grad_fn


@pytest.mark.parametrize('wd', [0., 0.05])
def test_lamb_vs_numpy_paper(wd):
    hp = dict(lr=1e-2, beta1=0.9, beta2=0.99, eps=1e-6, wd=wd)
    model, x, y = make_problem()
    start = [p.detach().numpy().copy() for p in model.parameters()]
    ref = lamb_numpy(start, torch_grads(model, x, y), STEPS, **hp)
    ours = trajectory(lamb_opt(lr=hp['lr'], mom=hp['beta1'], sqr_mom=hp['beta2'], eps=hp['eps'], wd=wd,
                               max_trust=float('inf'))).numpy()
    assert np.abs(ref[-1] - ref[0]).max() > 1e-2
    d = (np.abs(ours - ref) / np.maximum(np.abs(ref), 1e-8)).max()
    assert d <= RTOL, f"LAMB differs from the NumPy transcription of the paper: {d:.3g}"


def test_lamb_trust_ratio_is_capped():
    "With `max_trust` (10 by default), a big weight and a tiny step move at most 10x the step"
    p = torch.tensor([100., 0.], dtype=torch.float64, requires_grad=True)
    p.grad = torch.tensor([1., 1.], dtype=torch.float64)
    lamb_opt(lr=0.1, eps=0.)([p]).step()     # first step: r = g/|g| = [1, 1], ||p||/||r|| = 70.7 -> 10
    assert torch.allclose(p.detach(), torch.tensor([100 - 1., -1.], dtype=torch.float64))


def test_lamb_zero_norm_layer_takes_plain_step():
    p = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    p.grad = torch.tensor([1., -1., 2.], dtype=torch.float64)
    lamb_opt(lr=0.1, eps=0.)([p]).step()
    assert torch.allclose(p.detach(), torch.tensor([-0.1, 0.1, -0.1], dtype=torch.float64))


# ------------------------------------------------------------------ hyper-parameters and defaults

def test_stepper_defaults_merged_without_overriding():
    model, _, _ = make_problem()
    opt = sgd_opt(model.parameters(), lr=0.1)
    test_eq(opt.hypers, [{'lr': 0.1, 'wd': 0.}])
    opt = sgd_opt(model.parameters(), lr=0.1, wd=1e-4)
    test_eq(opt.hypers, [{'lr': 0.1, 'wd': 1e-4}])
    opt = adam_opt(mom=0.8)(model.parameters(), lr=1e-3)
    test_eq(opt.hypers[0], {'lr': 1e-3, 'mom': 0.8, 'sqr_mom': 0.99, 'eps': 1e-5, 'wd': 0.})
    assert get_defaults(sgd_step) == {}
    d = {'wd': 1.}
    maybe_update([weight_decay, AverageGrad()], d, get_defaults)
    test_eq(d, {'wd': 1., 'mom': 0.9})


def test_per_group_hypers():
    model, x, y = make_problem()
    groups = [list(model[0].parameters()), list(model[2].parameters())]
    opt = sgd_opt(groups, lr=0.1)
    test_eq(len(opt.hypers), 2)
    opt.hypers[0]['lr'] = 0.     # freeze the first layer through its group's lr
    assert opt.hypers[1]['lr'] == 0.1, "groups must hold their own copy of the hyper-parameters"
    before = [p.detach().clone() for p in model.parameters()]
    F.mse_loss(model(x), y).backward()
    grads = [p.grad.clone() for p in model.parameters()]
    opt.step()
    after = [p.detach() for p in model.parameters()]
    for b, a in zip(before[:2], after[:2]): assert torch.equal(a, b)
    for b, a, g in zip(before[2:], after[2:], grads[2:]): assert torch.allclose(a, b - 0.1 * g)


def test_per_group_hypers_stateful():
    "Adam with a different lr per group equals two separate Adams"
    model, x, y = make_problem()
    m2 = copy.deepcopy(model)
    opt = adam_opt(lr=1e-2)([list(model[0].parameters()), list(model[2].parameters())])
    opt.hypers[0]['lr'] = 1e-3
    o_a, o_b = adam_opt(lr=1e-3)(m2[0].parameters()), adam_opt(lr=1e-2)(m2[2].parameters())
    for _ in range(5):
        for m, opts in ((model, [opt]), (m2, [o_a, o_b])):
            F.mse_loss(m(x), y).backward()
            for o in opts: o.step(); o.zero_grad()
    for p, q in zip(model.parameters(), m2.parameters()): assert torch.allclose(p, q, rtol=1e-12, atol=0)


def test_zero_grad_and_params_without_grad():
    model, x, y = make_problem()
    model[0].weight.requires_grad_(False)
    opt = adam_opt(lr=1e-2)(model.parameters())
    F.mse_loss(model(x), y).backward()
    w = model[0].weight.detach().clone()
    opt.step()
    assert torch.equal(model[0].weight, w)          # no grad: never stepped
    assert model[0].weight not in opt.state
    opt.zero_grad()
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())


# ------------------------------------------------------------------ state, save and restore, errors

def test_stats_state():
    p = torch.tensor([1., 2.], requires_grad=True)
    opt = StatefulOptimizer([p], steppers=[], stats=[AverageGrad(dampening=True), AverageSqrGrad(), StepCount()],
                            mom=0.5, sqr_mom=0.5)
    for g in ([2., 0.], [4., 2.]):
        p.grad = torch.tensor(g)
        opt.step()
    s = opt.state[p]
    test_eq(s['step'], 2)
    assert torch.allclose(s['grad_avg'], torch.tensor([0.5 * 0.5 * 2 + 0.5 * 4, 0.5 * 2]))
    assert torch.allclose(s['sqr_avg'], torch.tensor([0.5 * 0.5 * 4 + 0.5 * 16, 0.5 * 4]))
    assert debias(0.5, 0.5, 2) == pytest.approx(1 - 0.25)
    assert debias(0.9, 1., 3) == pytest.approx(1 + 0.9 + 0.81)


def test_state_dict_round_trip():
    model, x, y = make_problem()
    opt = adam_opt(lr=1e-2)(model.parameters())
    for _ in range(3):
        F.mse_loss(model(x), y).backward(); opt.step(); opt.zero_grad()
    sd = opt.state_dict()
    saved_w = copy.deepcopy(model.state_dict())
    for _ in range(3):
        F.mse_loss(model(x), y).backward(); opt.step(); opt.zero_grad()
    after6 = [p.detach().clone() for p in model.parameters()]
    opt.hypers[0]['lr'] = 123.
    model.load_state_dict(saved_w); opt.load_state_dict(sd)
    test_eq(opt.hypers[0]['lr'], 1e-2)
    for _ in range(3):
        F.mse_loss(model(x), y).backward(); opt.step(); opt.zero_grad()
    for p, q in zip(model.parameters(), after6): assert torch.equal(p.detach(), q)


def state_devices(opt):
    return {v.device.type for st in opt.state.values() for v in st.values() if isinstance(v, torch.Tensor)}

def test_loaded_state_follows_its_parameters():
    "A state read onto the CPU, its parameters elsewhere ('meta': shapes, no data): moved at the next step, once"
    model, x, y = make_problem()
    opt = adam_opt(lr=1e-2)(model.parameters())
    F.mse_loss(model(x), y).backward(); opt.step()
    other = copy.deepcopy(model).to_empty(device='meta')
    opt2 = adam_opt(lr=1e-2)(other.parameters())
    opt2.load_state_dict(opt.state_dict())
    test_eq(state_devices(opt2), {'cpu'})
    for p in other.parameters(): p.grad = torch.zeros_like(p)
    opt2.step()
    test_eq(state_devices(opt2), {'meta'})
    assert opt2._moved
    opt3 = adam_opt(lr=1e-2)(model.parameters())               # same device: nothing to move, the same result
    opt3.load_state_dict(opt.state_dict())
    for o in (opt, opt3): o.step()
    for p, q in zip(opt.state.values(), opt3.state.values()): assert torch.equal(p['grad_avg'], q['grad_avg'])


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_resume_on_cuda_from_a_cpu_checkpoint():
    "As the learner does it: restore on the CPU, then move the model to the GPU, then step"
    model, x, y = make_problem()
    opt = adam_opt(lr=1e-2)(model.parameters())
    F.mse_loss(model(x), y).backward(); opt.step(); opt.zero_grad()
    sd = opt.state_dict()
    ref = copy.deepcopy(model)
    opt_ref = adam_opt(lr=1e-2)(ref.parameters()); opt_ref.load_state_dict(sd)
    opt.load_state_dict(sd)
    model.cuda()
    F.mse_loss(model(x.cuda()), y.cuda()).backward(); opt.step()
    F.mse_loss(ref(x), y).backward(); opt_ref.step()
    test_eq(state_devices(opt), {'cuda'})
    for p, q in zip(model.parameters(), ref.parameters()): assert torch.allclose(p.detach().cpu(), q.detach(), atol=1e-5)


def test_bad_input_errors():
    model, _, _ = make_problem()
    test_raises(lambda: sgd_opt([], lr=0.1), ValueError, 'empty')
    test_raises(lambda: sgd_opt([[], list(model.parameters())], lr=0.1), ValueError, 'group 0 is empty')
    test_raises(lambda: sgd_opt([1, 2], lr=0.1), TypeError, 'not only tensors')
    ps = list(model.parameters())
    test_raises(lambda: sgd_opt([ps, ps[:1]], lr=0.1), ValueError, 'twice')
    test_raises(lambda: sgd_opt([{'lr': 0.1}], lr=0.1), ValueError, "dict without 'params'")
    p = torch.zeros(2, requires_grad=True); p.grad = torch.ones(2)
    test_raises(lambda: sgd_opt([p]).step(), TypeError, "needs `lr`, which is not a hyper-parameter")
    test_raises(lambda: StatefulOptimizer([p], momentum_step, lr=0.1).step(), TypeError,
                'momentum_step needs `grad_avg`')
    test_raises(lambda: StatefulOptimizer([p], momentum_step, stats=StepCount(), lr=.1, step=1).step(),
                ValueError, 'both hyper-parameters and per-parameter state')


def test_param_scheduler_and_recorder_use_hypers():
    "The 09 callbacks write and read `opt.hypers`: a bare runner stand-in drives them"
    model, _, _ = make_problem()
    opt = sgd_opt([list(model[0].parameters()), list(model[2].parameters())], lr=0.1)

    class Run: pass
    run = Run()
    run.opt, run.epochs, run.n_epochs, run.in_train, run.loss = opt, 1, 0., True, torch.tensor(1.)
    sched = ParamScheduler('lr', [lambda pos: 1. + pos, lambda pos: 2. + pos])
    rec = Recorder()
    for cb in (sched, rec): cb.set_runner(run); cb.begin_fit()
    for i in range(3):
        run.n_epochs = i / 4
        sched.begin_batch(); rec.after_batch()
    test_eq(rec.lrs, [[1., 1.25, 1.5], [2., 2.25, 2.5]])
    test_eq([h['lr'] for h in opt.hypers], [1.5, 2.5])
    bad = ParamScheduler('momentum', lambda pos: pos); bad.set_runner(run)
    test_raises(bad.begin_fit, ValueError, "no hyper-parameter 'momentum'")
