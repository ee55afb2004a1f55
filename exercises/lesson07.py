"Lesson 07's exercises, checked against PyTorch's own norm layers"
import torch
import torch.nn.functional as F
from torch import nn

from exercises import close, exercise, expect


def _batch(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g) * 3 + 1


@exercise('07.1')
def batchnorm_statistics(BatchNorm):
    "Training output and running statistics after two batches, against nn.BatchNorm2d (same momentum and eps)"
    mine, ref = BatchNorm(3, mom=0.1), nn.BatchNorm2d(3, momentum=0.1)
    for step, seed in enumerate((1, 2), 1):
        x = _batch(4, 3, 5, 5, seed=seed)
        out, want = mine(x), ref(x)
        close(f'your `BatchNorm` training output at step {step}', out, want, atol=1e-4)
    close('your `BatchNorm` running mean after 2 steps', mine.means.flatten(), ref.running_mean, note=' (momentum 0.1)')
    close('your `BatchNorm` running variance after 2 steps', mine.vars.flatten(), ref.running_var,
          note=' (momentum 0.1, unbiased variance in the running statistic)')
    mine.eval(); ref.eval()
    x = _batch(2, 3, 5, 5, seed=3)
    close('your `BatchNorm` output in eval mode', mine(x), ref(x), atol=1e-4)
    mine.train(); mine(_batch(4, 3, 5, 5, seed=4).requires_grad_())
    expect(mine.means.grad_fn is None and mine.vars.grad_fn is None,
           'your `BatchNorm` running statistics carry a gradient: update them inside `torch.no_grad()`')

@exercise('07.2')
def layernorm(LayerNorm):
    "Normalising each item over (C, H, W), against F.layer_norm, then the scalar scale and shift"
    x = _batch(3, 4, 5, 5, seed=5)
    ln = LayerNorm()
    close('your `LayerNorm` output on a (3, 4, 5, 5) batch', ln(x), F.layer_norm(x, x.shape[1:]), atol=1e-4)
    with torch.no_grad(): ln.mult.fill_(2.); ln.add.fill_(0.5)
    close('your `LayerNorm` output with mult 2 and add 0.5', ln(x), F.layer_norm(x, x.shape[1:]) * 2 + 0.5, atol=1e-4)


@exercise('07.3')
def groupnorm(GroupNorm):
    "Normalising each group of channels of each item, against nn.GroupNorm with the same scale and shift"
    x = _batch(2, 8, 4, 4, seed=6)
    for groups in (1, 2, 4, 8):
        mine, ref = GroupNorm(groups, 8), nn.GroupNorm(groups, 8)
        w, b = torch.linspace(0.5, 2, 8), torch.linspace(-1, 1, 8)
        with torch.no_grad():
            mine.mults.copy_(w.view(8, 1, 1)); mine.adds.copy_(b.view(8, 1, 1))
            ref.weight.copy_(w); ref.bias.copy_(b)
        close(f'your `GroupNorm({groups}, 8)` output', mine(x), ref(x), atol=1e-4)
