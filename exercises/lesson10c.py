"Lesson 10c's exercises: master gradients, the overflow test and the dynamic loss scale, against torch's own"
import torch

from exercises import close, equal, expect, exercise


def _grads(*shapes, seed=0, dtype=torch.float16):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(*s, generator=g) * 3).to(dtype) for s in shapes]


@exercise('10c.1')
def master_grads(to_master_grads):
    "fp16 gradients copied into fp32 master params, over two param groups; a missing gradient gives None"
    shapes = [(3, 4), (4,), (2, 2), (5,)]
    model = [torch.zeros(s, dtype=torch.float16, requires_grad=True) for s in shapes]
    master = [torch.zeros(s, requires_grad=True) for s in shapes]
    model_pgs, master_pgs = [model[:2], model[2:]], [master[:2], master[2:]]
    for p, gr in zip(model, _grads(*shapes, seed=1)): p.grad = gr
    model[2].grad = None
    to_master_grads(model_pgs, master_pgs)
    _master_grads_match(model, master, '')
    # a second step: the master params hold the gradients of the step before (copied over, or set to None)
    for p, gr in zip(model, _grads(*shapes, seed=2)): p.grad = gr
    model[0].grad = None
    to_master_grads(model_pgs, master_pgs)
    _master_grads_match(model, master, 'at the second step, ')


def _master_grads_match(model, master, when):
    "Each master gradient is its model gradient in fp32, or None where the model param has none"
    for i, (p, mp) in enumerate(zip(model, master)):
        what = f'your `to_master_grads`: {when}the master gradient of param {i}'
        if p.grad is None:
            expect(mp.grad is None, f'{what} is set, expected None (its model param has no gradient now)')
            continue
        expect(mp.grad is not None, f'{what} is None, expected the model gradient in fp32')
        equal(f'your `to_master_grads`: {when}the dtype of the master gradient of param {i}', mp.grad.dtype, torch.float32)
        close(what, mp.grad, p.grad.float(), atol=0, rtol=0)

@exercise('10c.2')
def overflow(grad_overflow):
    "Finite gradients whose fp16 sum overflows, a nan, +inf, -inf, params without gradients, none at all"
    def params(n=20):
        ps = [torch.zeros(5, dtype=torch.float16, requires_grad=True) for _ in range(n)]
        for p in ps: p.grad = torch.full((5,), 30000., dtype=torch.float16)     # finite; 150000 overflows fp16
        return ps
    ps = params()
    equal('your `grad_overflow` on 20 fp16 gradients full of 30000 (finite, but their fp16 sum is inf)',
          bool(grad_overflow(ps)), False)
    for bad in (float('nan'), float('inf'), -float('inf')):
        ps = params()
        ps[13].grad[2] = bad
        equal(f'your `grad_overflow` with one {bad} in the gradient of param 13 of 20', bool(grad_overflow(ps)), True)
    ps = params()
    ps[0].grad = None; ps[7].grad = None
    equal('your `grad_overflow` with finite gradients and two params without a gradient', bool(grad_overflow(ps)), False)
    ps[11].grad[0] = float('inf')
    equal('your `grad_overflow` with an inf and two params without a gradient', bool(grad_overflow(ps)), True)
    equal('your `grad_overflow` on params that have no gradient', bool(grad_overflow(params(3)[:0])), False)
    nograd = [torch.zeros(3, requires_grad=True) for _ in range(2)]
    equal('your `grad_overflow` on 2 params whose grad is None', bool(grad_overflow(nograd)), False)
    ps = params(4)
    ps[3].grad[4] = float('nan')
    equal('your `grad_overflow` on a generator of params (as AutocastMixedPrecision calls it), one nan',
          bool(grad_overflow(p for p in ps)), True)


def _rule_update(scale, tracker, found_inf, factor, backoff, interval):
    "GradScaler's update rule written out (in place, as torch's kernel): back off on overflow, grow after `interval` clean steps"
    if found_inf.item():
        scale.mul_(backoff); tracker.zero_()
    else:
        tracker.add_(1)
        if tracker.item() == interval: scale.mul_(factor); tracker.zero_()


def _torch_scales(init, factor, backoff, interval, overflows, n):
    """The scale after each of `n` steps, by torch's own GradScaler update (the private kernel `GradScaler.update`
    calls; its rule written out here if a torch version lacks it)"""
    update = getattr(torch, '_amp_update_scale_', _rule_update)
    scale, tracker, scales = torch.tensor([init]), torch.zeros(1, dtype=torch.int32), []
    for i in range(n):
        found_inf = torch.tensor([1. if i in overflows else 0.])
        update(scale, tracker, found_inf, factor, backoff, interval)
        scales.append(scale.item())
    return scales


@exercise('10c.3')
def loss_scaler(LossScaler):
    "The scale sequence with overflows on chosen steps, against torch.amp.GradScaler's update; the cap at max_scale"
    for init, factor, backoff, interval, overflows in [(2.**10, 2., 0.5, 3, {2, 3, 9, 10, 11, 17, 20}),
                                                       (2.**5, 4., 0.25, 1, {4, 5, 6, 12}),
                                                       (2.**16, 2., 0.5, 4, {0, 7, 8, 21})]:
        s = LossScaler(init, growth_factor=factor, backoff_factor=backoff, growth_interval=interval, max_scale=None)
        got = []
        for i in range(25):
            s.update(i in overflows)
            got.append(s.scale)
        want = _torch_scales(init, factor, backoff, interval, overflows, 25)
        step = next((i for i, (g, w) in enumerate(zip(got, want)) if g != w), None)
        if step is not None:
            expect(False, f'your `LossScaler` scale after step {step} is {got[step]:g}, expected {want[step]:g} '
                          f'(as torch.amp.GradScaler; init {init:g}, growth ×{factor:g} every {interval} clean steps, '
                          f'backoff ×{backoff:g}, overflows at steps {sorted(overflows)})')
    s = LossScaler(2.**22, growth_interval=2, max_scale=2.**24)
    got = []
    for _ in range(8):
        s.update(False)
        got.append(s.scale)
    want = [2.**22, 2.**23, 2.**23, 2.**24, 2.**24, 2.**24, 2.**24, 2.**24]
    equal('your `LossScaler` scales over 8 clean steps from 2**22 (growth ×2 every 2 steps, max_scale 2**24)', got, want)
