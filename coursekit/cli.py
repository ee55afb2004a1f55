"""What the training scripts (`train_imagenette.py`, `train_text.py`) share, written once.

- `UsageError`: bad input from the command line; `run_main` prints it as one line and exits with status 2.
  Under torchrun every rank checks the same arguments and files, so rank 0 alone prints, unless the error
  concerns one rank only (`this_rank=True`: a rank without a GPU of its own).
- `check_numbers(args, rules)`: each numeric argument against its rule, naming the flag.
- `check_output(flag, path, example)`: a file a run will write can be written, before the run starts.
- `pick_device(name, local_rank, world, default)`: the device of this process (CUDA's is the local rank's).
- `dist_env()`: (rank, world, local rank) as torchrun sets them, (0, 1, 0) without it; `join_group(dev, world,
  minutes)`: the process group (NCCL on CUDA, gloo elsewhere), once every check has passed.
- `first_line(error)`: an error's first line, for a message of one line.
- `run_main(fn, prog)`: runs `fn(rank, world, local_rank)`, turns a `UsageError` into exit status 2 and always
  leaves the process group.
"""
import math, os, sys
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist


class UsageError(Exception):
    "Bad input from the command line, exit status 2: reported by rank 0, or by the rank it concerns (`this_rank`)"
    def __init__(self, msg, this_rank=False): super().__init__(msg); self.this_rank = this_rank


def flag(name): return '--' + name.replace('_', '-')

def check_numbers(args, rules):
    "`rules`: (argument name, what it must be, test); None (not given) always passes. A `UsageError` for the first that fails"
    for name, what, ok in rules:
        v = getattr(args, name)
        for x in (v if isinstance(v, (list, tuple)) else [v]):
            if x is not None and not (math.isfinite(x) and ok(x)): raise UsageError(f'{flag(name)} must be {what}, got {x}')


def check_output(flag, path, example):
    "`path`, a file this run will write, can be written: not a folder, in a folder (or one to be made) we may write in"
    path = Path(path)
    if path.is_dir():
        raise UsageError(f'{flag} {path}: is a folder; give a file name, e.g. {flag} {path / example}')
    check_folder(flag, path.parent, shown=path)

def check_folder(flag, folder, shown=None):
    "`folder` exists and we may write in it, or it can be made (its nearest existing parent is a folder we may write in)"
    shown, parent = shown or folder, Path(folder)
    while not parent.exists() and parent != parent.parent: parent = parent.parent
    if not parent.is_dir(): raise UsageError(f'{flag} {shown}: {parent} is a file, not a folder')
    if not os.access(parent, os.W_OK | os.X_OK): raise UsageError(f'{flag} {shown}: cannot write in the folder {parent}')


def dist_env():
    "(rank, world size, local rank) from the environment torchrun sets; (0, 1, 0) in a plain process"
    return int(os.environ.get('RANK', 0)), int(os.environ.get('WORLD_SIZE', 1)), int(os.environ.get('LOCAL_RANK', 0))


def join_group(dev, world, minutes=30):
    "Join the process group of `world` processes (NCCL for CUDA devices, gloo otherwise); a collective waits `minutes` at most"
    if world > 1: dist.init_process_group('nccl' if dev.type == 'cuda' else 'gloo', timeout=timedelta(minutes=minutes))

def first_line(e): return (str(e).strip().splitlines() or [type(e).__name__])[0]


def pick_device(name, local_rank, world, default):
    "The device of this process: `name` ('cpu', 'cuda', 'mps') or `default()`; CUDA's is `cuda:<local_rank>`"
    if name is None: dev = default()
    else:
        try: dev = torch.device(name)
        except RuntimeError: raise UsageError(f'--device {name}: not a device (cpu, cuda, mps)') from None
    if dev.type == 'mps' and not torch.backends.mps.is_available(): raise UsageError('--device mps: MPS is not available')
    if dev.type == 'mps' and world > 1:              # gloo takes CPU and CUDA tensors, nccl CUDA ones
        what = '--device mps' if name else 'the default device, MPS'
        raise UsageError(f'{what}: {world} processes, but no torch.distributed backend moves MPS tensors. '
                         f'Run one process on MPS, or many with --device cpu')
    if dev.type == 'cuda':
        if not torch.cuda.is_available(): raise UsageError('--device cuda: CUDA is not available')
        n_gpu = torch.cuda.device_count()
        if local_rank >= n_gpu:
            raise UsageError(f'process {local_rank} of this machine has no GPU of its own: {n_gpu} CUDA device(s). '
                             f'Run one process per GPU (torchrun --nproc_per_node {n_gpu}), or pass --device cpu',
                             this_rank=True)                  # rank 0 has a GPU: this rank must say it
        dev = torch.device('cuda', local_rank)
        torch.cuda.set_device(dev)
    return dev


def run_main(fn, prog):
    "`fn(rank, world, local_rank)`; 0 when it returns, 2 (with one line on stderr) on a `UsageError`. Leaves the group"
    rank, world, local_rank = dist_env()
    try:
        fn(rank, world, local_rank)
    except UsageError as e:
        if rank == 0 or e.this_rank: print(f'{prog}: error: {e}', file=sys.stderr)
        return 2
    finally:
        if dist.is_available() and dist.is_initialized(): dist.destroy_process_group()
    return 0
