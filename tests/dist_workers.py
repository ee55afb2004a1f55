"""Workers for `exp.nb_11b.run_ranks` in tests/test_nb11b_distributed.py: ranks that hang or die.

`run_ranks` sends its function to fresh processes by name, so a worker must live in an importable module, not in
a test's body. Test modules import this one as `dist_workers` (pytest puts `tests/` on `sys.path`, see
pyproject.toml); the fork server of `run_ranks` gets the same `sys.path`, so the workers find it too.
"""
import collections, os, time

import torch.distributed as dist

Pair = collections.namedtuple('Pair', 'rank value')


def sleep_on_rank(bad, seconds=60.):
    "Sleep `seconds` on rank `bad` (a hung rank, for `run_ranks`'s timeout); the rank elsewhere"
    if dist.get_rank() == bad: time.sleep(seconds)
    return dist.get_rank()


def exit_on_rank(bad, code=3):
    "End rank `bad`'s process at once with exit status `code`, without reporting (a crashed rank); the rank elsewhere"
    if dist.get_rank() == bad: os._exit(code)
    return dist.get_rank()


def unpicklable_result():
    "A result that cannot cross the queue (a lambda): the rank exits 0 without having reported"
    return lambda: dist.get_rank()


def named_result():
    "A namedtuple with a tensor: it comes back as the same namedtuple"
    import torch
    return Pair(dist.get_rank(), torch.ones(2) * dist.get_rank())


def dist_bn_one_value():
    "DistBatchNorm training on one item over both ranks (rank 0 has it, rank 1 none): a ValueError on every rank"
    import torch
    from exp.nb_11b import DistBatchNorm
    DistBatchNorm(3)(torch.randn(1 - dist.get_rank(), 3))
