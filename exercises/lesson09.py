"Lesson 09's exercises, checked against torch.optim (AdamW, SGD, Adam) and against formulas computed here"
import torch

from exercises import Wrong, close, exercise, expect


def _t(*shape, seed=0, scale=1.):
    "A float64 tensor of the given shape from a seeded generator"
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64) * scale


def _param(w, grad=None):
    "A leaf parameter holding a copy of `w`, with a copy of `grad` as its gradient"
    p = w.clone().requires_grad_()
    if grad is not None: p.grad = grad.clone()
    return p


@exercise('09.1')
def decoupled_weight_decay(weight_decay):
    "One call on a weight with a gradient, against what torch.optim.AdamW's decay alone does (its Adam part sees a zero gradient)"
    w, g = _t(3, 4, seed=1), _t(3, 4, seed=2)
    for lr, wd in ((0.1, 0.05), (0.5, 0.2)):
        p = _param(w, g)
        weight_decay(p, lr=lr, wd=wd)
        q = _param(w, torch.zeros_like(w))
        torch.optim.AdamW([q], lr=lr, weight_decay=wd).step()
        close(f'the (3, 4) weight after your `weight_decay` with lr={lr}, wd={wd}', p, q, atol=1e-12, rtol=1e-9,
              note=" (torch.optim.AdamW's decoupled decay: the weight times 1 - lr*wd)")
        close(f'the gradient after your `weight_decay` with lr={lr}, wd={wd}', p.grad, g, atol=0, rtol=0,
              note=' (decoupled weight decay leaves the gradient as it was; adding wd*p to it is L2, `l2_reg`)')
    p = _param(w, g)
    weight_decay(p, lr=0.1, wd=0.)
    close('the weight after your `weight_decay` with wd=0', p, w, atol=0, rtol=0, note=' (no decay: unchanged)')


@exercise('09.2')
def average_grad(AverageGrad, StatefulOptimizer, momentum_step):
    "The running average called by hand, against the formula, then inside the optimizer against torch.optim.SGD's momentum"
    w = _t(3, 4, seed=3)
    grads = [_t(3, 4, seed=10 + i) for i in range(4)]
    mom = 0.8
    for damp in (False, True):
        stat, p = AverageGrad(dampening=damp), _param(w, grads[0])
        state, want, md = stat.init_state(p), torch.zeros_like(w), (1 - mom if damp else 1.)
        for step, g in enumerate(grads, 1):
            p.grad = g.clone()
            state = stat.update(p, state, mom=mom)
            expect(isinstance(state, dict), f'your `AverageGrad.update` returned {type(state).__name__}, expected '
                   'the state dict (the optimizer keeps what `update` returns)')
            expect('mom_damp' in state, "your `AverageGrad.update` does not store `mom_damp` in the state "
                   "(Adam's `debias` needs it)")
            close(f'the `mom_damp` your `AverageGrad(dampening={damp})` stores (mom={mom})', state['mom_damp'], md)
            want = mom * want + md * g
            close(f'the `grad_avg` of your `AverageGrad(dampening={damp})` after {step} steps (mom={mom})',
                  state['grad_avg'], want, atol=1e-10, rtol=1e-8,
                  note=f' (grad_avg = mom*grad_avg + {"(1-mom)" if damp else "1"}*grad)')
    p, q = _param(w), _param(w)
    mine = StatefulOptimizer([p], steppers=momentum_step, stats=AverageGrad(), lr=0.05, mom=0.9)
    ref = torch.optim.SGD([q], lr=0.05, momentum=0.9)
    for step, g in enumerate(grads, 1):
        p.grad, q.grad = g.clone(), g.clone()
        mine.step(); ref.step()
        close(f'the weight after {step} steps of `momentum_step` with your `AverageGrad()` (lr=0.05, mom=0.9)', p, q,
              atol=1e-10, rtol=1e-8, note=' (torch.optim.SGD with momentum=0.9)')


@exercise('09.3')
def debias_weights(debias):
    "The total weight a running average of ones reaches, computed here step by step"
    cases = [(0.9, 0.1, 1), (0.9, 0.1, 2), (0.9, 0.1, 5), (0.9, 1., 3), (0.99, 0.01, 10), (0.5, 0.5, 2),
             (0.999, 1., 100), (1., 1., 4)]
    for mom, damp, step in cases:
        avg = 0.
        for _ in range(step): avg = mom * avg + damp * 1.      # averaging ones: the sum of the weights it gave
        try: got = debias(mom, damp, step)
        except ZeroDivisionError:
            raise Wrong(f'your `debias` divides by zero with mom={mom} (damp={damp}, step={step}); with mom=1 '
                        'the average is a plain sum, its weights add up to damp*step') from None
        close(f'your `debias(mom={mom}, damp={damp}, step={step})`', got, avg, atol=1e-12, rtol=1e-9,
              note=' (the sum of the weights damp*mom**i a running average has given its inputs)')


def _adam_run(adam_step, damped):
    "Four steps of `adam_step` fed averages computed here, each update against torch.optim.Adam's"
    lr, mom, sqr_mom, eps = 1e-2, 0.9, 0.99, 1e-3
    md, sd = (1 - mom, 1 - sqr_mom) if damped else (1., 1.)
    how = 'damped averages' if damped else 'averages without dampening, mom_damp=sqr_damp=1'
    w = _t(4, 5, seed=20)
    p, q = _param(w), _param(w)
    ref = torch.optim.Adam([q], lr=lr, betas=(mom, sqr_mom), eps=eps)
    grad_avg, sqr_avg = torch.zeros_like(w), torch.zeros_like(w)
    for step in range(1, 5):
        g = _t(4, 5, seed=30 + step, scale=0.01)
        grad_avg, sqr_avg = mom * grad_avg + md * g, sqr_mom * sqr_avg + sd * g * g
        p.grad, q.grad = g.clone(), g.clone()
        before, ga, sa = p.detach().clone(), grad_avg.clone(), sqr_avg.clone()
        adam_step(p, lr=lr, mom=mom, mom_damp=md, step=step, sqr_mom=sqr_mom, sqr_damp=sd, grad_avg=ga, sqr_avg=sa,
                  eps=eps, wd=0.)
        ref.step()
        close(f'the update of your `adam_step` at step {step} ({how})', p.detach() - before, q.detach() - before,
              atol=1e-12, rtol=1e-6, note=f' (torch.optim.Adam, lr={lr}, betas=({mom}, {sqr_mom}), eps={eps}; it uses your `debias` too)')
        expect(torch.equal(ga, grad_avg) and torch.equal(sa, sqr_avg),
               'your `adam_step` changed `grad_avg` or `sqr_avg` in place: they are the optimizer state, compute '
               'on new tensors')


@exercise('09.4')
def adam(adam_step):
    "Four steps against torch.optim.Adam, with damped averages (what adam_opt keeps) and undamped ones"
    _adam_run(adam_step, damped=True)
    _adam_run(adam_step, damped=False)


def _lamb_ref(w, m, v, step, lr, mom, sqr_mom, eps, wd, max_trust):
    "One LAMB step (You et al. 2019, Algorithm 2), from damped averages m and v; ratio 1 where a norm is 0"
    r = (m / (1 - mom ** step)) / ((v / (1 - sqr_mom ** step)).sqrt() + eps) + wd * w
    wn, rn = w.norm().item(), r.norm().item()
    trust = min(wn / rn, max_trust) if wn > 0 and rn > 0 else 1.
    return w - lr * trust * r


@exercise('09.5')
def lamb(lamb_step):
    "Steps against the paper's formula computed here: plain, with the trust ratio capped, and from zero weights"
    mom, sqr_mom = 0.9, 0.99
    cases = [('a (4, 5) weight, wd=0.05', _t(4, 5, seed=40), dict(lr=0.05, eps=1e-6, wd=0.05, max_trust=10.)),
             ('a large (3, 3) weight, max_trust=2', _t(3, 3, seed=41, scale=10.),
              dict(lr=0.05, eps=1e-6, wd=0.01, max_trust=2.)),
             ('a zero weight, wd=0.05 (trust ratio 1)', torch.zeros(3, dtype=torch.float64),
              dict(lr=0.1, eps=1e-6, wd=0.05, max_trust=10.))]
    for what, w, hp in cases:
        p = _param(w)
        m, v = torch.zeros_like(w), torch.zeros_like(w)
        for step in range(1, 4):
            g = _t(*w.shape, seed=50 + step, scale=0.1)
            m, v = mom * m + (1 - mom) * g, sqr_mom * v + (1 - sqr_mom) * g * g
            p.grad = g.clone()
            before, ma, va = p.detach().clone(), m.clone(), v.clone()
            lamb_step(p, mom=mom, mom_damp=1 - mom, step=step, sqr_mom=sqr_mom, sqr_damp=1 - sqr_mom, grad_avg=ma,
                      sqr_avg=va, **hp)
            want = _lamb_ref(before, m, v, step, mom=mom, sqr_mom=sqr_mom, **hp)
            close(f'the update of your `lamb_step` at step {step} for {what}', p.detach() - before, want - before,
                  atol=1e-12, rtol=1e-6, note=f' (LAMB as in the paper, lr={hp["lr"]}, betas=({mom}, {sqr_mom}); it uses your `debias` too)')
            expect(torch.equal(ma, m) and torch.equal(va, v),
                   'your `lamb_step` changed `grad_avg` or `sqr_avg` in place: they are the optimizer state, compute '
                   'on new tensors')
