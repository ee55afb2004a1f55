"""`DistBatchNorm` against its oracle, in a gloo group of 2 ranks: `run_all()` runs every check.

tests/test_nb11b_distributed.py calls `run_all` in each rank through `exp.nb_11b.run_ranks`; the script also runs
on its own under torchrun (`torchrun --standalone --nproc_per_node 2 tests/dist_bn_check.py`: prints `rank N: ok`
and exits 0).

The oracle is one `nn.BatchNorm` on the whole batch, in every rank. Each rank feeds its own slice of that batch (of
unequal sizes, so a plain average of the ranks' means would be wrong) to a `DistBatchNorm` holding the same
parameters. Its output and input gradient must be the oracle's on that slice; its parameter gradients, summed
over the ranks, the oracle's; and its running statistics, after two steps, the oracle's. In fp64, in fp32 (also
with a mean 3,000 times the spread), with momentum=None, affine=False and track_running_stats=False, with a rank
that has no items, and for a bf16 input.
"""
import copy
import torch
import torch.distributed as dist
from torch import nn

from exp.nb_11b import DistBatchNorm, convert_dist_batchnorm


def close(a, b, tol, what):
    a, b = a.double(), b.double()
    assert a.shape == b.shape, f'rank {dist.get_rank()}: {what}: shape {tuple(a.shape)}, not {tuple(b.shape)}'
    if b.numel() == 0: return
    err = (a - b).abs().max().item() / max(1., b.abs().max().item())
    assert err <= tol, f'rank {dist.get_rank()}: {what} differs from the oracle by {err:.3g} (tolerance {tol})'


def check(bn_type, shape, dtype, shift, tol, splits=(7, 5), **kw):
    rank = dist.get_rank()
    g = torch.Generator().manual_seed(0)
    ref = bn_type(shape[1], **{'momentum': 0.3, **kw}).to(dtype)
    if ref.affine:
        with torch.no_grad(): ref.weight.uniform_(0.5, 1.5, generator=g); ref.bias.uniform_(-1, 1, generator=g)
    mine = convert_dist_batchnorm(nn.Sequential(copy.deepcopy(ref)))[0]
    assert isinstance(mine, DistBatchNorm)
    lo, hi = sum(splits[:rank]), sum(splits[:rank + 1])
    for step in range(2):
        x = (torch.randn(*shape, generator=g, dtype=torch.float64) * 3 + shift).to(dtype)
        gy = torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype)
        for p in (*ref.parameters(), *mine.parameters()): p.grad = None
        xr = x.clone().requires_grad_()
        yr = ref(xr)
        (yr * gy).sum().backward()
        xm = x[lo:hi].clone().requires_grad_()
        ym = mine(xm)
        (ym * gy[lo:hi]).sum().backward()
        what = f'{bn_type.__name__} {dtype} shift {shift} {kw or ""} splits {splits} step {step}'
        assert ym.dtype == dtype
        close(ym, yr[lo:hi].detach(), tol, f'{what}: output')
        close(xm.grad, xr.grad[lo:hi], tol, f'{what}: input gradient')
        for name in ('weight', 'bias') if ref.affine else ():
            grad = getattr(mine, name).grad.clone()
            dist.all_reduce(grad)
            close(grad, getattr(ref, name).grad, tol, f'{what}: {name} gradient summed over ranks')
    if not ref.track_running_stats: return               # (then eval mode uses each rank's own batch, as torch's)
    close(mine.running_mean, ref.running_mean, tol, f'{what}: running mean')
    close(mine.running_var, ref.running_var, tol, f'{what}: running variance')
    assert int(mine.num_batches_tracked) == int(ref.num_batches_tracked) == 2
    mine.eval(); ref.eval()                              # out of training: the running statistics, no collective
    x = torch.randn(*shape, generator=g, dtype=dtype) + shift
    close(mine(x[lo:hi]), ref(x)[lo:hi], tol, f'{what}: eval output')


def check_half(dtype=torch.bfloat16, shape=(12, 5, 4, 3), splits=(7, 5)):
    "A bf16 input (as under autocast): statistics in fp32, output in bf16, running statistics kept in fp32"
    rank = dist.get_rank()
    g = torch.Generator().manual_seed(1)
    ref = nn.BatchNorm2d(shape[1])
    mine = convert_dist_batchnorm(nn.Sequential(copy.deepcopy(ref)))[0]
    lo, hi = sum(splits[:rank]), sum(splits[:rank + 1])
    x = (torch.randn(*shape, generator=g) * 3 + 100).to(dtype)
    y = mine(x[lo:hi])
    assert y.dtype == dtype and mine.running_var.dtype == torch.float32
    close(y, ref(x.float())[lo:hi].detach(), 2e-2, 'bf16: output')
    close(mine.running_var, ref.running_var, 1e-5, 'bf16: running variance')


def run_all():
    "Every check, in this rank of an initialised group of 2 ranks; 'ok' (an `AssertionError` naming the check if not)"
    assert dist.get_world_size() == 2, f'dist_bn_check: 2 ranks, not {dist.get_world_size()} (the splits are for 2)'
    check(nn.BatchNorm2d, (12, 5, 4, 3), torch.float64, 0., 1e-12)
    check(nn.BatchNorm1d, (12, 6), torch.float64, 2., 1e-12)
    check(nn.BatchNorm2d, (12, 5, 4, 3), torch.float32, 0., 1e-5)
    check(nn.BatchNorm2d, (12, 5, 4, 3), torch.float32, 1e4, 2e-3)   # a mean 3,000 times the spread, in fp32
    check(nn.BatchNorm2d, (12, 5, 4, 3), torch.float64, 1., 1e-12, momentum=None)   # cumulative average
    check(nn.BatchNorm2d, (12, 5, 4, 3), torch.float64, 1., 1e-12, affine=False)
    check(nn.BatchNorm2d, (12, 5, 4, 3), torch.float64, 1., 1e-12, track_running_stats=False)
    check(nn.BatchNorm3d, (12, 3, 2, 2, 2), torch.float64, 0., 1e-12, splits=(12, 0))   # rank 1 has no items
    check_half()
    return 'ok'


if __name__ == '__main__':
    dist.init_process_group('gloo')
    torch.set_num_threads(1)
    print(f'rank {dist.get_rank()}: {run_all()}', flush=True)
    dist.destroy_process_group()
