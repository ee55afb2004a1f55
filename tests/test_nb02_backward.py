"""Oracle tests for lesson 02: hand-written gradients against autograd and central differences."""
import pytest
import torch

from exp.nb_02 import (normalize, mse, lin, relu, mse_grad, relu_grad, lin_grad, forward_and_backward,
                       Module, Relu, Lin, Mse, Model)


def make_problem(n=32, m=12, nh=7, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, m, generator=g, dtype=dtype)
    y = torch.randint(0, 10, (n,), generator=g).to(dtype)
    params = [torch.randn(m, nh, generator=g, dtype=dtype) / m**0.5, torch.randn(nh, generator=g, dtype=dtype) * 0.1,
              torch.randn(nh, 1, generator=g, dtype=dtype) / nh**0.5, torch.randn(1, generator=g, dtype=dtype)]
    return x, y, params


def mlp_loss(x, y, w1, b1, w2, b2): return mse(lin(relu(lin(x, w1, b1)), w2, b2), y)


def autograd_grads(x, y, params):
    "Loss and gradients (w1, b1, w2, b2, x) computed by autograd on fresh leaf copies."
    x = x.clone().requires_grad_(True)
    ps = [p.clone().requires_grad_(True) for p in params]
    loss = mlp_loss(x, y, *ps)
    loss.backward()
    return loss.detach(), [p.grad for p in ps] + [x.grad]


def assert_grads(ours, theirs):
    for name, a, b in zip(['w1', 'b1', 'w2', 'b2', 'x'], ours, theirs):
        assert a is not None, f'no gradient for {name}'
        assert a.shape == b.shape, f'{name}: shape {tuple(a.shape)} vs {tuple(b.shape)}'
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-10, msg=f'gradient of {name} differs from autograd')


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_functions_match_autograd(seed):
    x, y, params = make_problem(seed=seed)
    loss = forward_and_backward(x, y, *params)
    loss_ag, grads_ag = autograd_grads(x, y, params)
    torch.testing.assert_close(loss, loss_ag)
    assert_grads([p.g for p in params] + [x.g], grads_ag)


@pytest.mark.parametrize('seed', [0, 1])
def test_class_model_matches_autograd(seed):
    x, y, params = make_problem(n=20, m=9, nh=5, seed=seed)
    model = Model(*params)
    loss = model(x, y)
    model.backward()
    loss_ag, grads_ag = autograd_grads(x, y, params)
    torch.testing.assert_close(loss, loss_ag)
    assert_grads([p.g for p in params] + [x.g], grads_ag)


def test_class_model_float32_batch():
    "Larger float32 case (the lesson's dtype), compared relative to each gradient's size."
    x, y, params = make_problem(n=500, m=784, nh=50, dtype=torch.float32, seed=3)
    model = Model(*params)
    model(x, y)
    model.backward()
    _, grads_ag = autograd_grads(x, y, params)
    for a, b in zip([p.g for p in params] + [x.g], grads_ag):
        assert ((a - b).abs().max() / b.abs().max()) < 1e-5


def test_layers_individually():
    "Each layer's backward alone, with an arbitrary upstream gradient, against autograd's vector-Jacobian product."
    g = torch.Generator().manual_seed(5)
    inp, w, b = (torch.randn(6, 4, generator=g, dtype=torch.float64), torch.randn(4, 3, generator=g, dtype=torch.float64),
                 torch.randn(3, generator=g, dtype=torch.float64))
    up = torch.randn(6, 3, generator=g, dtype=torch.float64)
    layer = Lin(w, b)
    out = layer(inp)
    out.g = up
    layer.backward()
    leaves = [t.clone().requires_grad_(True) for t in (inp, w, b)]
    (leaves[0] @ leaves[1] + leaves[2]).backward(up)
    for ours, leaf in zip((inp.g, w.g, b.g), leaves): torch.testing.assert_close(ours, leaf.grad)

    r_in = torch.randn(6, 3, generator=g, dtype=torch.float64)
    r = Relu()
    r_out = r(r_in)
    r_out.g = up
    r.backward()
    leaf = r_in.clone().requires_grad_(True)
    torch.relu(leaf).backward(up)
    torch.testing.assert_close(r_in.g, leaf.grad)


def test_central_differences():
    "The hand-written gradients against (f(p + h) - f(p - h)) / 2h on a tiny float64 problem."
    x, y, params = make_problem(n=5, m=4, nh=3, seed=7)
    forward_and_backward(x, y, *params)
    h = 1e-6
    for name, t in zip(['w1', 'b1', 'w2', 'b2', 'x'], params + [x]):
        numeric = torch.zeros_like(t)
        flat, num_flat = t.view(-1), numeric.view(-1)
        for i in range(flat.numel()):
            old = flat[i].item()
            flat[i] = old + h
            up = mlp_loss(x, y, *params).item()
            flat[i] = old - h
            down = mlp_loss(x, y, *params).item()
            flat[i] = old
            num_flat[i] = (up - down) / (2 * h)
        torch.testing.assert_close(t.g, numeric, rtol=1e-5, atol=1e-7, msg=f'gradient of {name}')


def test_mse_shapes():
    out, targ = torch.tensor([[1.], [2.], [4.]]), torch.tensor([1., 1., 1.])
    torch.testing.assert_close(mse(out, targ), torch.tensor(10 / 3))
    torch.testing.assert_close(mse(out.squeeze(-1), targ), torch.tensor(10 / 3))
    with pytest.raises(ValueError, match='does not match target shape'):
        mse(out, targ[:2])
    out.g = None
    mse_grad(out, targ)
    assert out.g.shape == out.shape


def test_normalize():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1000, 5, generator=g) * 3 + 2
    xn = normalize(x, x.mean(), x.std())
    assert abs(xn.mean()) < 1e-5 and abs(xn.std() - 1) < 1e-5
    with pytest.raises(ValueError, match='zeros'):
        normalize(x, 0., torch.tensor([1., 0.]))


def test_module_errors():
    with pytest.raises(RuntimeError, match='before a forward pass'):
        Relu().backward()
    class NoForward(Module): pass
    with pytest.raises(NotImplementedError, match='NoForward must define forward'):
        NoForward()(torch.ones(2))
    m = Mse()
    m(torch.ones(3, 1), torch.zeros(3))
    m.backward()
    torch.testing.assert_close(m.args[0].g, torch.full((3, 1), 2 / 3))
