"Lesson 11's exercises: the XResNet conv layer, the residual block and its init, checked by behaviour and F.conv2d"
import math
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from exercises import Wrong, close, equal, expect, exercise


def _x(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _convs_bns(module, what):
    "The Conv2d and the batch norms inside `module`, in order"
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    expect(len(convs) == len(bns), f'{what} has {len(convs)} conv(s) and {len(bns)} batch norm(s), expected one batch norm per conv')
    return convs, bns


def _randomise(bns, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for bn in bns:
            bn.weight.uniform_(0.5, 1.5, generator=g); bn.bias.uniform_(-1, 1, generator=g)


def _conv_bn(x, conv, bn, stride, act):
    "The oracle of one layer: F.conv2d (padding ks//2, no bias), batch norm on the batch's statistics, ReLU if act"
    ks = conv.weight.shape[-1]
    y = F.conv2d(x, conv.weight, None, stride=stride, padding=ks // 2)
    y = F.batch_norm(y, None, None, bn.weight, bn.bias, training=True, eps=bn.eps)
    return y.relu() if act else y


@exercise('11.1')
def xconv_layer_(xconv_layer):
    "Shapes for kernel sizes and strides, no conv bias, γ 1 or 0, then the training output against F.conv2d + F.batch_norm"
    for ks, stride, size, want in [(3, 1, 6, 6), (3, 2, 9, 5), (1, 1, 6, 6), (1, 2, 7, 4), (5, 2, 8, 4)]:
        layer = xconv_layer(3, 8, ks=ks, stride=stride)
        what = f'your `xconv_layer(3, 8, ks={ks}, stride={stride})`'
        out = layer(_x(2, 3, size, size, seed=ks))
        equal(f'{what} output shape on a (2, 3, {size}, {size}) input', tuple(out.shape), (2, 8, want, want),
              note=' (padding ks//2)')
        n = sum(p.numel() for p in layer.parameters())
        equal(f'the number of parameters of {what}', n, 3 * 8 * ks * ks + 2 * 8,
              note=f' (a {ks}×{ks} conv without bias, and a batch norm\'s weight and bias)')
    for zero_bn, act in [(False, True), (True, True), (False, False), (True, False)]:
        what = f'your `xconv_layer(4, 6, stride=2, zero_bn={zero_bn}, act={act})`'
        layer = xconv_layer(4, 6, stride=2, zero_bn=zero_bn, act=act).train()
        convs, bns = _convs_bns(layer, what)
        equal(f'the number of convs of {what}', len(convs), 1)
        close(f'the batch norm weight (γ) of {what}', bns[0].weight, torch.full((6,), 0. if zero_bn else 1.))
        close(f'the batch norm bias (β) of {what}', bns[0].bias, torch.zeros(6))
        x = _x(3, 4, 7, 7, seed=5)
        if zero_bn:
            close(f'{what} training output at init (γ = 0)', layer(x), torch.zeros(3, 6, 4, 4))
        _randomise(bns, seed=6)
        close(f'{what} training output with random γ and β', layer(x), _conv_bn(x, convs[0], bns[0], 2, act),
              atol=1e-4, note=' (conv, batch norm, then ReLU if act)')


def _shortcut(block, x, stride, ni, nf, what):
    "The oracle of the identity path: ResNet-D's 2×2 average pool (ceil mode) if stride 2, a 1×1 conv + BN if widths differ"
    h = F.avg_pool2d(x, 2, ceil_mode=True) if stride == 2 else x
    if ni == nf:
        n = sum(p.numel() for p in block.idconv.parameters())
        equal(f'{what}: the number of parameters of idconv (the same width in and out)', n, 0,
              note=' (the identity path is then just the pool)')
        return h
    convs, bns = _convs_bns(block.idconv, f'{what}: idconv')
    equal(f'{what}: the number of convs in idconv', len(convs), 1)
    c = convs[0]
    equal(f'{what}: the kernel size of the idconv conv', tuple(c.kernel_size), (1, 1))
    equal(f'{what}: the stride of the idconv conv', tuple(c.stride), (1, 1), note=' (ResNet-D: the pool does the striding)')
    expect(c.bias is None, f'{what}: the idconv conv has a bias, expected none (a batch norm follows it)')
    return _conv_bn(h, c, bns[0], 1, act=False)


@contextmanager
def _also_uses(name):
    "A failure inside says that the code checked calls the student's `name` too (another exercise)"
    try: yield
    except Wrong as e: raise Wrong(f'{e} (it uses your `{name}` too)') from None


@exercise('11.2')
def resblock(ResBlock):
    "Output shapes; the branch 0 at init (zero γ) so the block is ReLU(identity path); then the branch against F.conv2d"
    with _also_uses('xconv_layer'): _resblock(ResBlock)


def _resblock(ResBlock):
    cases = [(1, 8, 8, 1, 6), (1, 8, 16, 2, 7), (1, 8, 8, 2, 7), (4, 4, 4, 1, 6), (4, 4, 8, 2, 7), (4, 2, 4, 2, 6)]
    for seed, (expansion, ni, nh, stride, size) in enumerate(cases):
        nin, nf = ni * expansion, nh * expansion
        what = f'your `ResBlock({expansion}, {ni}, {nh}, stride={stride})`'
        block = ResBlock(expansion, ni, nh, stride=stride).train()
        x = _x(3, nin, size, size, seed=seed)
        out = block(x)
        want_size = math.ceil(size / stride)
        equal(f'{what} output shape on a (3, {nin}, {size}, {size}) input', tuple(out.shape),
              (3, nf, want_size, want_size))
        branch = block.convs(x)
        close(f'{what}: convs(x) at init (training mode)', branch, torch.zeros_like(branch),
              note=' (the last batch norm of the branch starts at γ = 0)')
        ident = _shortcut(block, x, stride, nin, nf, what)
        close(f'{what} output at init', out, ident.relu(), atol=1e-4, note=' (ReLU of the identity path: convs give 0)')
        convs, bns = _convs_bns(block.convs, f'{what}: convs')
        if expansion == 1: kinds = [(3, stride), (3, 1)]
        else: kinds = [(1, 1), (3, stride), (1, 1)]
        equal(f'{what}: the (kernel size, stride) of the convs of its branch',
              [(c.kernel_size[0], c.stride[0]) for c in convs], kinds,
              note=' (bottleneck: the stride on the 3×3 conv)' if expansion == 4 else '')
        for i, c in enumerate(convs):
            expect(c.bias is None, f'{what}: conv {i} of its branch has a bias, expected none (a batch norm follows it)')
        _randomise(bns, seed=10 + seed)
        want = x
        for i, (c, bn) in enumerate(zip(convs, bns)):
            want = _conv_bn(want, c, bn, c.stride[0], act=i < len(convs) - 1)
        close(f'{what}: convs(x) with random batch norm weights', block.convs(x), want, atol=1e-4,
              note=' (conv, batch norm, ReLU; no ReLU after the last batch norm)')
        close(f'{what} output with random batch norm weights', block(x), (want + ident).relu(), atol=1e-4)


def _std_ok(w, want, what, tol=0.05):
    got = w.std().item()
    expect(abs(got - want) <= tol * want,
           f'{what} has standard deviation {got:.4g}, expected {want:.4g} (Kaiming: sqrt(2 / fan_in))')


@exercise('11.3')
def init(init_xresnet):
    "Every conv and linear layer, nested ones too, Kaiming with the ReLU gain (normal or uniform), zero biases, BN untouched"
    state = torch.get_rng_state()
    try:
        for uniform in (False, True):
            torch.manual_seed(0)
            m = nn.Sequential(nn.Conv2d(32, 64, 3), nn.BatchNorm2d(64),
                              nn.Sequential(nn.Conv1d(16, 64, 5, bias=False), nn.ReLU(),
                                            nn.Sequential(nn.Linear(400, 128))),
                              nn.Conv3d(8, 32, 3), nn.Linear(256, 64))
            with torch.no_grad():
                for p in m.parameters(): p.fill_(0.5) if p.dim() == 1 else None
            res = init_xresnet(m, uniform=uniform)
            what = f'your `init_xresnet(m, uniform={uniform})`'
            expect(res is m, f'{what} returns {type(res).__name__}, expected the model m itself')
            layers = {'the Conv2d(32, 64, 3)': m[0], 'the nested Conv1d(16, 64, 5)': m[2][0],
                      'the nested Linear(400, 128)': m[2][2][0], 'the Conv3d(8, 32, 3)': m[3], 'the Linear(256, 64)': m[4]}
            for name, l in layers.items():
                fan_in = l.weight[0].numel()
                w = l.weight.detach()
                _std_ok(w, math.sqrt(2 / fan_in), f'{what}: the weight of {name} (fan_in {fan_in})')
                bound = math.sqrt(6 / fan_in)
                beyond = (w.abs() > bound * (1 + 1e-6)).float().mean().item()
                if uniform:
                    expect(beyond == 0, f'{what}: the weight of {name} has {beyond:.1%} of its values beyond '
                                        f'sqrt(6 / fan_in) = {bound:.4g}, expected none (uniform)')
                else:
                    expect(beyond > 0.04, f'{what}: the weight of {name} has {beyond:.1%} of its values beyond '
                                          f'{bound:.4g} (sqrt(3) standard deviations), expected about 8% (normal)')
                if l.bias is not None:
                    close(f'{what}: the bias of {name}', l.bias, torch.zeros_like(l.bias))
            close(f'{what}: the BatchNorm2d weight (set to 0.5 before)', m[1].weight, torch.full((64,), 0.5),
                  note=' (only conv and linear layers are initialised)')
    finally:
        torch.set_rng_state(state)
