"Lesson 02's exercises: hand-written backward passes, checked against autograd on the same inputs"
import torch
import torch.nn.functional as F

from exercises import close, exercise, expect

D = torch.float64      # double precision: a right gradient agrees with autograd to ~1e-12


def _grad_of(fn, who, t, name):
    "The `.g` that `fn` stored on `t`, or a failure naming it"
    g = getattr(t, 'g', None)
    expect(g is not None, f'your `{fn}` left no gradient in {name}.g{who}')
    return g


def _mlp(n=8, m=5, nh=4, seed=0):
    "Inputs, float targets and the weights of an m-nh-1 MLP, with a bias that puts some ReLUs below zero"
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(n, m, generator=g, dtype=D), torch.randn(n, generator=g, dtype=D) * 2
    params = [torch.randn(m, nh, generator=g, dtype=D) / m ** 0.5, torch.randn(nh, generator=g, dtype=D) * 0.5,
              torch.randn(nh, 1, generator=g, dtype=D) / nh ** 0.5, torch.randn(1, generator=g, dtype=D)]
    return x, y, params


def _autograd_mlp(x, y, params):
    "Loss and gradients of (w1, b1, w2, b2, x) by autograd, on fresh leaf copies: the oracle"
    leaves = [t.clone().requires_grad_(True) for t in (*params, x)]
    w1, b1, w2, b2, xx = leaves
    loss = F.mse_loss((F.relu(xx @ w1 + b1) @ w2 + b2).squeeze(-1), y)
    loss.backward()
    return loss.detach(), [t.grad for t in leaves]


def _compare_mlp(fn, x, y, params, note):
    _, want = _autograd_mlp(x, y, params)
    for name, t, w in zip(('w1', 'b1', 'w2', 'b2', 'x'), (*params, x), want):
        close(f"your `{fn}`'s {name}.g", _grad_of(fn, '', t, name), w, atol=1e-9, rtol=1e-7, note=note)


@exercise('02.1')
def linear_backward(lin_grad):
    "inp.g, w.g and b.g of out = inp @ w + b for an arbitrary out.g, against autograd's vector-Jacobian product"
    g = torch.Generator().manual_seed(1)
    inp, w, b = (torch.randn(6, 4, generator=g, dtype=D), torch.randn(4, 3, generator=g, dtype=D),
                 torch.randn(3, generator=g, dtype=D))
    up = torch.randn(6, 3, generator=g, dtype=D)
    out = inp @ w + b
    out.g = up
    lin_grad(inp, out, w, b)
    leaves = [t.clone().requires_grad_(True) for t in (inp, w, b)]
    (leaves[0] @ leaves[1] + leaves[2]).backward(up)
    who = ' (input (6, 4), a 4 -> 3 layer, against autograd)'
    for name, t, l in zip(('inp', 'w', 'b'), (inp, w, b), leaves):
        close(f"your `lin_grad`'s {name}.g", _grad_of('lin_grad', who, t, name), l.grad, atol=1e-9, rtol=1e-7, note=who)


@exercise('02.2')
def backward_pass(forward_and_backward):
    "The gradients of every weight and of the input after the hand-written backward, against autograd"
    for seed in (0, 1):
        x, y, params = _mlp(seed=seed)
        loss = forward_and_backward(x, y, *params)
        want, _ = _autograd_mlp(x, y, params)
        close('the loss returned by your `forward_and_backward`', loss, want, atol=1e-9)
        _compare_mlp('forward_and_backward', x, y, params,
                     ' (a 5-4-1 MLP on 8 items, against autograd; it uses your `lin_grad` too)')


@exercise('02.3')
def model_backward(Model):
    "Model(x, targ) then Model.backward(): the gradients in .g of the weights and the input, against autograd"
    x, y, params = _mlp(n=10, m=6, nh=5, seed=2)
    model = Model(*params)
    loss = model(x, y)
    want, _ = _autograd_mlp(x, y, params)
    close('the loss of your `Model`', loss, want, atol=1e-9)
    model.backward()
    _compare_mlp('Model.backward', x, y, params, ' (a 6-5-1 MLP on 10 items, against autograd; it uses your `lin_grad` too)')
