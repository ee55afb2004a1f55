"""Lesson 11b's exercises: the shard sampler against torch's DistributedSampler, and DistBatchNorm's combination of
the ranks' statistics against one nn.BatchNorm2d on the whole batch.

No process group: `DistBatchNorm` is checked as one rank of a world of 2 whose all-gather is simulated (the
module's `dist` replaced, for the check only, by a stand-in that hands back the other rank's row of
(count, mean, sum of squared deviations), computed here from the other rank's slice of the batch).
"""
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DistributedSampler

from exercises import close, equal, expect, exercise


@exercise('11b.1')
def shard_sampler(ShardSampler):
    "Padded: each rank's indices those of DistributedSampler (seeds, epochs, shuffled or not); unpadded: each item once"
    for n, world in [(10, 3), (7, 4), (12, 4), (5, 8), (2, 7), (1, 2), (13, 1)]:
        for shuffle in (False, True):
            for seed, epoch in [(0, 0), (5, 2)]:
                once = []
                for rank in range(world):
                    setting = f'(n={n}, rank={rank}, world={world}, shuffle={shuffle}, seed={seed}) at epoch {epoch}'
                    ours = ShardSampler(n, rank, world, shuffle=shuffle, seed=seed)
                    theirs = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=shuffle, seed=seed)
                    ours.set_epoch(epoch); theirs.set_epoch(epoch)
                    want = list(theirs)
                    equal(f'your `ShardSampler{setting}` list of indices', list(ours), want,
                          note=" (torch's DistributedSampler)")
                    s = ShardSampler(n, rank, world, shuffle=shuffle, seed=seed, pad=False)
                    s.set_epoch(epoch)
                    got = list(s)
                    equal(f'your `ShardSampler{setting}, pad=False` list of indices', got, want[:len(s)],
                          note=' (the padded list without the repeated items at its end)')
                    once += got
                equal(f'the indices of your unpadded `ShardSampler` over the {world} ranks (n={n}, shuffle={shuffle}), sorted,',
                      sorted(once), list(range(n)))


class _FakeDist:
    "Stands for torch.distributed in the student's module: rank `rank` of 2, whose all_gather gives `other` as the other row"
    def __init__(self, rank, other): self.rank, self.other = rank, other
    def is_available(self): return True
    def is_initialized(self): return True
    def get_world_size(self): return 2
    def get_rank(self): return self.rank
    def all_gather(self, rows, t):
        rows[self.rank].copy_(t)
        rows[1 - self.rank].copy_(self.other.to(t.dtype))
    def all_reduce(self, t, *args, **kwargs): pass


def _row(x):
    "The row a rank sends (the lesson's layout): its count per channel, its means, its sums of squared deviations"
    xf = x.to(torch.promote_types(x.dtype, torch.float32))
    dims, c = [0, *range(2, x.dim())], x.shape[1]
    n = xf.new_full((1,), xf.numel() // c)
    mean = xf.sum(dims) / n
    m2 = (xf - mean.view(1, -1, *[1] * (x.dim() - 2))).pow(2).sum(dims)
    return torch.cat([n, mean, m2])


def _as_rank(DistBatchNorm, bn, rank, mine, other):
    "`bn(mine)` as rank `rank` of 2, the other rank holding the slice `other`"
    g = DistBatchNorm.forward.__globals__     # during grading the student's fresh module; restored in `finally`
    saved = g['dist']
    g['dist'] = _FakeDist(rank, _row(other))
    try: return bn(mine)
    finally: g['dist'] = saved


@exercise('11b.2')
def dist_batchnorm(DistBatchNorm):
    "Each rank's output and the running statistics (2 steps), against nn.BatchNorm2d on the whole batch of 7 + 5 items"
    splits = (7, 5)
    for kw in [dict(momentum=0.3), dict(momentum=None), dict(momentum=0.3, affine=False)]:
        g = torch.Generator().manual_seed(0)
        ref = nn.BatchNorm2d(3, **kw).double()
        if ref.affine:
            with torch.no_grad(): ref.weight.uniform_(0.5, 1.5, generator=g); ref.bias.uniform_(-1, 1, generator=g)
        mine = []
        for rank in range(2):
            bn = DistBatchNorm(3, **kw).double()
            bn.load_state_dict(ref.state_dict())
            mine.append(bn)
        for step in range(2):
            x = torch.randn(12, 3, 4, 4, generator=g, dtype=torch.float64) * 3 + 100
            want = ref(x).detach()
            parts = x[:splits[0]], x[splits[0]:]
            for rank, (xr, xo) in enumerate([parts, parts[::-1]]):
                got = _as_rank(DistBatchNorm, mine[rank], rank, xr, xo)
                lo = 0 if rank == 0 else splits[0]
                close(f'your `DistBatchNorm({3}, {", ".join(f"{k}={v}" for k, v in kw.items())})` training output '
                      f'of rank {rank} (of 2; {splits[rank]} of the 12 items) at step {step + 1}',
                      got, want[lo:lo + splits[rank]], atol=1e-6, note=' (nn.BatchNorm2d on all 12 items)')
        for rank in range(2):
            what = f'your `DistBatchNorm(3, {", ".join(f"{k}={v}" for k, v in kw.items())})` on rank {rank}, after 2 steps,'
            close(f'{what} running mean', mine[rank].running_mean, ref.running_mean, atol=1e-6,
                  note=' (nn.BatchNorm2d on the whole batch)')
            close(f'{what} running variance', mine[rank].running_var, ref.running_var, atol=1e-6,
                  note=' (nn.BatchNorm2d on the whole batch: the unbiased variance)')
            equal(f'{what} num_batches_tracked', int(mine[rank].num_batches_tracked), 2)
    g = torch.Generator().manual_seed(1)
    ref, bn = nn.BatchNorm2d(3), DistBatchNorm(3)
    x = (torch.randn(12, 3, 4, 4, generator=g) * 3 + 10).to(torch.bfloat16)
    got = _as_rank(DistBatchNorm, bn, 0, x[:7], x[7:])
    equal('the dtype of the output of your `DistBatchNorm(3)` (fp32 parameters) for a bf16 input', got.dtype, torch.bfloat16)
    close('your `DistBatchNorm(3)` output of rank 0 for a bf16 input', got.float(), ref(x.float())[:7].detach(),
          atol=3e-2, rtol=2e-2)
    equal('the dtype of the running variance of your `DistBatchNorm(3)` after a bf16 input', bn.running_var.dtype,
          torch.float32)
