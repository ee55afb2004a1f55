#!/usr/bin/env python
"""Train an XResNet on Imagenette with lesson 11's learner, on one process or many.

One process (CPU, CUDA or Apple MPS):
    python train_imagenette.py --epochs 5
Many processes on one machine (one per GPU, or CPU processes with gloo):
    torchrun --standalone --nproc_per_node 4 train_imagenette.py --epochs 5 --save ckpt.pt
Many machines (run on each, with its --node_rank):
    torchrun --nnodes 2 --node_rank 0 --nproc_per_node 8 --rdzv_backend c10d \\
             --rdzv_endpoint HOST:29500 train_imagenette.py ...
Continue an interrupted run (same arguments, plus --resume):
    python train_imagenette.py --epochs 5 --save ckpt.pt --resume ckpt.pt

The training loop is the `Learner` of the `exp` package (lessons 05b-11): DistributedDataParallel, the
distributed statistics, the per-epoch seeding and the checkpoints are callbacks of that learner. `--sync-bn` uses
torch's `nn.SyncBatchNorm` on CUDA and `DistBatchNorm`, written here from collectives, on the CPU.
"""
import argparse, math, os, random, sys, time
from functools import partial
from pathlib import Path

import PIL.Image
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, Sampler

from coursekit.datasets import URLs, DatasetError, untar_data
from exp.nb_04 import Callback
from exp.nb_05 import one_cycle
from exp.nb_05b import CancelFitException
from exp.nb_06 import default_device
from exp.nb_08 import DataBlockError, DataBunch, NormalizeChan
from exp.nb_09 import adam_opt
from exp.nb_09b import Learner
from exp.nb_09c import ProgressCallback
from exp.nb_10 import byte_to_float
from exp.nb_10b import LabelSmoothingCrossEntropy
from exp.nb_10c import AutocastMixedPrecision
from exp.nb_11 import cnn_learner, imagenette_split, xresnets
from coursekit.checkpoint import CheckpointError, cpu_state_dict, load_state, read_torch, save_torch
from coursekit.files import FileFormatError


class UsageError(Exception):
    "Bad input from the command line: reported on rank 0, exit status 2"


def tiny_cnn(c_in=3, c_out=10, bn=False):
    "Two convs and a linear layer; a batch norm after each conv if `bn`: for smoke tests and the DDP tests"
    def conv(ni, nf):
        if not bn: return [nn.Conv2d(ni, nf, 3, stride=2, padding=1), nn.ReLU()]
        return [nn.Conv2d(ni, nf, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(nf), nn.ReLU()]
    return nn.Sequential(*conv(c_in, 8), *conv(8, 16), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, c_out))

ARCHS = {**xresnets, 'tiny_cnn': tiny_cnn, 'tiny_bn_cnn': partial(tiny_cnn, bn=True)}


class _GatherRows(torch.autograd.Function):
    "Stack every rank's `t` into a (world, ...) tensor, differentiably: every rank's loss depends on every row"
    @staticmethod
    def forward(ctx, t):
        rows = [torch.empty_like(t) for _ in range(dist.get_world_size())]
        dist.all_gather(rows, t.contiguous())
        return torch.stack(rows)
    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)                         # sum over ranks of d(loss of that rank) / d(rows)
        return grad[dist.get_rank()]


class DistBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm whose training statistics are those of the whole batch, summed over all ranks.

    Our own `SyncBatchNorm`, for any backend (gloo on the CPU, where `nn.SyncBatchNorm` refuses to run). Each rank
    sends its item count, mean and sum of squared deviations per channel (one all-gather); they combine exactly
    into the mean and variance of the global batch. Not the sums of x and x²: E[x²] - E[x]² loses every digit
    when the mean is large against the spread. Autograd does the backward (the gather's gradient is an
    all-reduce). Out of training, or in a single process, it is plain batch norm.
    """
    def _check_input_dim(self, x):
        if x.dim() < 2: raise ValueError(f'DistBatchNorm expects (N, C, ...) input, got {x.dim()}D')

    def forward(self, x):
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        self._check_input_dim(x)
        dims, shape = [0, *range(2, x.dim())], (1, -1) + (1,) * (x.dim() - 2)
        xf, nc = x.to(torch.promote_types(x.dtype, torch.float32)), x.shape[1]   # fp16/bf16 (autocast): in fp32
        n = xf.new_full((1,), xf.numel() // nc)
        mean = xf.sum(dims) / n.clamp(min=1)           # a rank without items sends zeros, not NaNs
        m2 = (xf - mean.view(shape)).pow(2).sum(dims)
        rows = _GatherRows.apply(torch.cat([n, mean, m2]))          # (world, 1 + 2·C)
        ns, means, m2s = rows[:, :1], rows[:, 1:nc + 1], rows[:, nc + 1:]
        total = ns.sum()
        g_mean = (ns * means).sum(0) / total
        g_m2 = m2s.sum(0) + (ns * (means - g_mean).pow(2)).sum(0)  # Chan et al.'s parallel variance
        y = (xf - g_mean.view(shape)) * torch.rsqrt(g_m2 / total + self.eps).view(shape)
        if self.affine: y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                f = self.momentum if self.momentum is not None else 1. / self.num_batches_tracked.item()
                self.running_mean.lerp_(g_mean.to(self.running_mean.dtype), f)
                self.running_var.lerp_((g_m2 / (total - 1)).to(self.running_var.dtype), f)   # unbiased, like torch
        return y.to(x.dtype)


def convert_dist_batchnorm(module):
    "`module` with each of its batch norms replaced by a `DistBatchNorm` holding the same parameters and buffers"
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, DistBatchNorm):
        new = DistBatchNorm(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats)
        if module.affine: new.weight, new.bias = module.weight, module.bias
        if module.track_running_stats:
            new.running_mean, new.running_var = module.running_mean, module.running_var
            new.num_batches_tracked = module.num_batches_tracked
        new.train(module.training)
        return new
    for name, child in module.named_children(): setattr(module, name, convert_dist_batchnorm(child))
    return module


def get_parser():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                epilog='Run many processes with torchrun (see the README).')
    p.add_argument('--arch', default='xresnet34', help=f'architecture, one of {", ".join(ARCHS)} (default %(default)s)')
    p.add_argument('--size', type=int, default=128, help='image side in pixels (default %(default)s)')
    p.add_argument('--epochs', type=int, default=5, help='total epochs of the run, resumed or not (default %(default)s)')
    p.add_argument('--bs', type=int, default=64,
                   help='global batch size, split evenly between the processes: a multiple of their number (default %(default)s)')
    p.add_argument('--lr', type=float, default=1e-2, help='peak learning rate of the 1cycle schedule (default %(default)s)')
    p.add_argument('--pct-start', type=float, default=0.5, help='fraction of the run spent warming up (default %(default)s)')
    p.add_argument('--wd', type=float, default=1e-2, help="Adam's decoupled weight decay (default %(default)s)")
    p.add_argument('--mixup', type=float, default=0., help='mixup α; 0 turns mixup off (default %(default)s)')
    p.add_argument('--label-smoothing', type=float, default=0.1, help='ε of label smoothing; 0 for plain cross-entropy')
    p.add_argument('--precision', choices=['fp32', 'fp16', 'bf16'], default='fp32',
                   help='fp16/bf16: mixed precision with torch.autocast (fp16 with a dynamic loss scale)')
    p.add_argument('--workers', type=int, default=4, help='DataLoader worker processes per process (default %(default)s)')
    p.add_argument('--data', type=Path, default=None,
                   help='Imagenette folder holding train/ and val/ (default: imagenette2-160 from the dataset helpers)')
    p.add_argument('--n-classes', type=int, default=None, help='use only the first N classes (wnid order)')
    p.add_argument('--n-train', type=int, default=None,
                   help='subset of N training images, each class keeping its share (seeded by --seed; N >= the classes)')
    p.add_argument('--n-valid', type=int, default=None,
                   help='subset of N validation images, each class keeping its share (seeded by --seed)')
    p.add_argument('--no-augment', action='store_true', help='centre crops for training too (no random crop or flip)')
    p.add_argument('--sync-bn', action='store_true',
                   help='batch-norm statistics of the global batch: nn.SyncBatchNorm on CUDA, DistBatchNorm on the CPU')
    p.add_argument('--save', type=Path, default=None, help='checkpoint written (atomically) after every epoch')
    p.add_argument('--resume', type=Path, default=None, help='checkpoint to continue from, at its next epoch')
    p.add_argument('--stop-after', type=int, default=None,
                   help='end this process after epoch N of the run (1-based), as a time-limited job would; resume later')
    p.add_argument('--dump-weights', type=Path, default=None,
                   help='each process writes its final weights to PREFIX.rankR.pt (to check that processes agree)')
    p.add_argument('--seed', type=int, default=0, help='seed of the weights, subsets, shuffling and augmentation')
    p.add_argument('--device', default=None, help='cpu, cuda or mps (default: CUDA, else MPS, else CPU)')
    return p


class DDPCallback(Callback):
    "Train through `DistributedDataParallel`, validate with the bare model and rank 0's batch-norm statistics"
    _order = 5                                        # after DeviceCallback has moved the model
    def __init__(self, device_ids=None): self.device_ids = device_ids
    def begin_fit(self):
        self.module = self.run.model
        self.ddp = DistributedDataParallel(self.module, device_ids=self.device_ids)
    def begin_train(self): self.run.model = self.ddp
    def begin_validate(self):
        with torch.no_grad():                          # each rank updated its running stats on its own batches
            for b in self.module.buffers(): dist.broadcast(b, 0)
        self.run.model = self.module                   # no collective in a forward: ranks may have different counts
    def after_fit(self): self.run.model = self.module


class DistStatsCallback(Callback):
    "Sum the loss, metric and item counts of each phase over all ranks, before they are logged"
    _order = 6
    def _reduce(self, stats):
        dev = next(self.run.model.parameters()).device
        t = torch.tensor([float(stats.tot_loss), float(stats.count)] + [float(m) for m in stats.tot_mets],
                         dtype=torch.float64, device=dev)
        dist.all_reduce(t)
        stats.tot_loss, stats.count, stats.tot_mets = t[0].item(), round(t[1].item()), [v.item() for v in t[2:]]
    def after_train(self): self._reduce(self.avg_stats_table.train_stats)
    def after_validate(self): self._reduce(self.avg_stats_table.valid_stats)


class EpochSetupCallback(Callback):
    "Seed every RNG from (seed, epoch, rank) and tell the sampler the epoch: a resumed run repeats the same epochs"
    _order = -20
    def __init__(self, seed, rank): self.seed, self.rank = seed, rank
    def begin_epoch(self):
        s = self.seed * 1_000_003 + self.epoch * 1_009 + self.rank
        random.seed(s); torch.manual_seed(s)
        self.data.train_dl.sampler.set_epoch(self.epoch)
        self.t0 = time.perf_counter()
    def after_train(self): self.train_seconds = time.perf_counter() - self.t0


class LoadStateCallback(Callback):
    "Give the loss scaler of AutocastMixedPrecision its saved state once it exists (it is made at begin_fit)"
    _order = 100
    def __init__(self, scaler_state): self.scaler_state = scaler_state
    def begin_fit(self):
        amp = getattr(self.run, 'autocast_mixed_precision', None)
        if amp is not None and self.scaler_state: amp.scaler.load_state_dict(self.scaler_state)


def plain_args(args): return {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}

class CheckpointCallback(Callback):
    "After every epoch, on rank 0: record the epoch's statistics, write the checkpoint (if --save), stop if asked"
    _order = 50
    def __init__(self, args, norm, history, write=True):
        self.args, self.norm, self.history, self.write = args, norm, history, write
    def after_epoch(self):
        st = self.avg_stats_table
        (tl, ta), (vl, va) = st.train_stats.avg_stats, st.valid_stats.avg_stats
        self.history.append(dict(epoch=self.epoch, train_loss=tl, train_accuracy=ta, valid_loss=vl, valid_accuracy=va,
                                 n_train=st.train_stats.count, n_valid=st.valid_stats.count,
                                 train_seconds=self.epoch_setup.train_seconds))
        if self.write and self.args.save is not None:
            amp = getattr(self.run, 'autocast_mixed_precision', None)
            model = self.run.model
            if isinstance(model, DistributedDataParallel): model = model.module
            save_torch(dict(model=cpu_state_dict(model),
                            opt=self.opt.state_dict(), scaler=amp.scaler.state_dict() if amp is not None else {},
                            epoch=self.epoch + 1, args=plain_args(self.args), history=list(self.history),
                            norm=dict(mean=self.norm.mean.cpu(), std=self.norm.std.cpu())), self.args.save)
        if self.args.stop_after is not None and self.epoch + 1 >= self.args.stop_after: raise CancelFitException()


class ShardSampler(Sampler):
    "Items rank, rank+world, rank+2·world...: every item on exactly one rank, no padding (for validation)"
    def __init__(self, n, rank, world): self.n, self.rank, self.world = n, rank, world
    def __iter__(self): return iter(range(self.rank, self.n, self.world))
    def __len__(self): return len(range(self.rank, self.n, self.world))


def _flag(name): return '--' + name.replace('_', '-')

# Each numeric argument, what it must be, and the test; None (not given) is always fine
NUMBERS = [('size', 'at least 1', lambda v: v >= 1), ('epochs', 'at least 1', lambda v: v >= 1),
           ('bs', 'at least 1', lambda v: v >= 1), ('lr', 'a positive number', lambda v: v > 0),
           ('pct_start', 'in [0, 1]', lambda v: 0 <= v <= 1), ('wd', 'at least 0', lambda v: v >= 0),
           ('mixup', 'at least 0 (0: no mixup)', lambda v: v >= 0),
           ('label_smoothing', 'in [0, 1) (0: plain cross-entropy)', lambda v: 0 <= v < 1),
           ('workers', 'at least 0 (0: load in the training process)', lambda v: v >= 0),
           ('n_classes', 'at least 1', lambda v: v >= 1), ('n_train', 'at least 1', lambda v: v >= 1),
           ('n_valid', 'at least 1', lambda v: v >= 1), ('stop_after', 'at least 1', lambda v: v >= 1)]

def check_output(flag, path, example):
    "`path`, a file this run will write, can be written: not a folder, in a folder (or one to be made) we may write in"
    path = Path(path)
    if path.is_dir():
        raise UsageError(f'{flag} {path}: is a folder; give a file name, e.g. {flag} {path / example}')
    parent = path.parent                                  # the nearest folder that exists: the save makes the rest
    while not parent.exists() and parent != parent.parent: parent = parent.parent
    if not parent.is_dir(): raise UsageError(f'{flag} {path}: {parent} is a file, not a folder')
    if not os.access(parent, os.W_OK | os.X_OK): raise UsageError(f'{flag} {path}: cannot write in the folder {parent}')

def dump_path(prefix, rank): return Path(f'{prefix}.rank{rank}.pt')

def check_args(args, world):
    "Every argument that can be checked without reading the data: a `UsageError` for the first that is wrong"
    if args.arch not in ARCHS: raise UsageError(f'--arch {args.arch}: unknown, choose one of {", ".join(ARCHS)}')
    for name, what, ok in NUMBERS:
        v = getattr(args, name)
        if v is not None and not (math.isfinite(v) and ok(v)): raise UsageError(f'{_flag(name)} must be {what}, got {v}')
    if args.bs < world: raise UsageError(f'--bs {args.bs} is smaller than the number of processes ({world})')
    if args.bs % world: raise UsageError(f'--bs {args.bs} must be a multiple of the number of processes ({world})')
    if args.data is not None:
        if not args.data.is_dir(): raise UsageError(f'--data {args.data}: no such folder')
        for split in ('train', 'val'):
            d = args.data / split
            if not d.is_dir() or not any(d.iterdir()):
                raise UsageError(f'--data {args.data}: needs a non-empty {split}/ folder of class folders of images')
    if args.save is not None: check_output('--save', args.save, 'model.pt')
    if args.dump_weights is not None:
        if args.dump_weights.is_dir():
            raise UsageError(f'--dump-weights {args.dump_weights}: is a folder; give a file-name prefix, e.g. '
                             f'--dump-weights {args.dump_weights / "w"} (writes {dump_path(args.dump_weights / "w", 0)}, ...)')
        for r in range(world): check_output('--dump-weights', dump_path(args.dump_weights, r), 'w')


RESUME_FIX = "pass a checkpoint written by this script's --save"

def load_checkpoint(path, arch):
    "The checkpoint of `--resume path` (read weights-only by coursekit), checked against `--arch`"
    try: ckpt = read_torch(path, keys=('model', 'opt', 'epoch', 'args'), what='checkpoint', fix=RESUME_FIX)
    except FileFormatError as e: raise UsageError(f'--resume: {e}') from None     # also MissingFileError
    if not isinstance(ckpt['args'], dict): raise UsageError(f'--resume: {path} has no arguments dict: {RESUME_FIX}')
    if ckpt['args'].get('arch') != arch:
        raise UsageError(f"--resume {path}: the checkpoint is of --arch {ckpt['args'].get('arch')}, not {arch}")
    bad = [k for k, ok in (('model', isinstance(ckpt['model'], dict) and
                            all(isinstance(v, torch.Tensor) for v in ckpt['model'].values())),
                           ('opt', isinstance(ckpt['opt'], dict) and {'hypers', 'state'} <= set(ckpt['opt'])),
                           ('epoch', type(ckpt['epoch']) is int and ckpt['epoch'] >= 0)) if not ok]
    if bad: raise UsageError(f'--resume: {path} is not a checkpoint of this script (its {", ".join(bad)}): {RESUME_FIX}')
    return ckpt

def restore_checkpoint(learn, ckpt, path, n_classes):
    "Put the checkpoint's weights and optimizer state in `learn`, once they are known to fit its model"
    try: load_state(learn.model, ckpt['model'], where=str(path))
    except CheckpointError as e:
        a = ckpt['args']
        raise UsageError(f"--resume: {e}; the checkpoint's run had --n-classes {a.get('n_classes')} --data "
                         f"{a.get('data')}, this run has {n_classes} classes") from None
    try: learn.opt.load_state_dict(ckpt['opt'])
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise UsageError(f'--resume: {path}: its optimizer state does not fit this model ({e}): {RESUME_FIX}') from None


def get_device(args, local_rank, world=1):
    if args.device is None: dev = default_device()
    else:
        try: dev = torch.device(args.device)
        except RuntimeError: raise UsageError(f'--device {args.device}: not a device (cpu, cuda, mps)') from None
    if dev.type == 'mps' and not torch.backends.mps.is_available(): raise UsageError('--device mps: MPS is not available')
    if dev.type == 'mps' and world > 1:              # gloo takes CPU and CUDA tensors, nccl CUDA ones
        what = '--device mps' if args.device else 'the default device, MPS'
        raise UsageError(f'{what}: {world} processes, but no torch.distributed backend moves MPS tensors. '
                         f'Run one process on MPS, or many with --device cpu')
    if dev.type == 'cuda':
        if not torch.cuda.is_available(): raise UsageError('--device cuda: CUDA is not available')
        n_gpu = torch.cuda.device_count()
        if local_rank >= n_gpu:
            raise UsageError(f'process {local_rank} of this machine has no GPU of its own: {n_gpu} CUDA device(s). '
                             f'Run one process per GPU (torchrun --nproc_per_node {n_gpu}), or pass --device cpu')
        dev = torch.device('cuda', local_rank)
        torch.cuda.set_device(dev)
    return dev


PIL_ERRORS = (OSError, SyntaxError, ValueError, PIL.Image.DecompressionBombError)

def check_images(root, files):
    "Read the header of each image file: a file that is not an image stops the run now, not during an epoch"
    for fn in files:
        try:
            with PIL.Image.open(fn) as im: im.size
        except PIL.UnidentifiedImageError:
            raise UsageError(f'--data {root}: {fn} is not an image (PIL cannot identify it): remove or replace it') from None
        except PIL_ERRORS as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise UsageError(f'--data {root}: {fn} cannot be read as an image ({first}): remove or replace it') from None

def get_split(args, world):
    "The labelled train/validation split, and its images checked: all before any process group or epoch"
    try: path = args.data if args.data is not None else untar_data(URLs.IMAGENETTE_160)
    except DatasetError as e:                          # offline with no mirror, a damaged archive, ...
        first = (str(e).strip().splitlines() or ['?'])[0]
        raise UsageError(f'no --data given, and Imagenette could not be fetched: {first} (or pass --data DIR)') from None
    try: ll = imagenette_split(path, args.size, args.n_classes, n_train=args.n_train, n_valid=args.n_valid,
                              seed=args.seed, augment=not args.no_augment)
    except DataBlockError as e:                        # no image files, a validation class not in training, ...
        raise UsageError(f'--data {path}: {e}') from None
    except ValueError as e:
        if 'n_train=' not in str(e): raise
        raise UsageError(f'--n-train {args.n_train}: {e}') from None    # fewer training images than classes
    if len(ll.train) == 0 or len(ll.valid) == 0:
        raise UsageError(f'--data {path}: no images found in train/ or val/')
    n_classes = len(ll.train.proc_y[0].vocab)
    if args.n_classes is not None and args.n_classes > n_classes:
        raise UsageError(f'--n-classes {args.n_classes}: {path} has only {n_classes} classes')
    per_rank = args.bs // world
    if len(ll.train) // world < per_rank:
        raise UsageError(f'--bs {args.bs}: {len(ll.train)} training images are fewer than one batch of {per_rank} '
                         f'per process ({world} processes)')
    check_images(path, list(ll.train.x.items) + list(ll.valid.x.items))
    return ll

def get_data(args, ll, rank, world, dev):
    "Loaders of this rank's share of `ll`: made from the rank and world size alone, no process group needed"
    per_rank = args.bs // world
    kw = dict(num_workers=args.workers, pin_memory=dev.type == 'cuda', persistent_workers=args.workers > 0)
    sampler = DistributedSampler(ll.train, num_replicas=world, rank=rank, shuffle=True, seed=args.seed)
    train_dl = DataLoader(ll.train, batch_size=per_rank, sampler=sampler, drop_last=True, **kw)
    valid_dl = DataLoader(ll.valid, batch_size=2 * per_rank, sampler=ShardSampler(len(ll.valid), rank, world), **kw)
    return DataBunch(train_dl, valid_dl, c_in=3, c_out=len(ll.train.proc_y[0].vocab))


def train(args, rank, world, local_rank):
    "Check everything (arguments, data, images, checkpoint), build the learner, then join the process group and fit"
    check_args(args, world)
    ckpt = load_checkpoint(args.resume, args.arch) if args.resume is not None else None
    dev = get_device(args, local_rank, world)
    ll = get_split(args, world)
    data = get_data(args, ll, rank, world, dev)
    if ckpt is not None and 'norm' in ckpt: norm = NormalizeChan(ckpt['norm']['mean'], ckpt['norm']['std'])
    else:                                             # centre crops of validation images: the same on every rank
        xb = torch.stack([ll.valid[i][0] for i in range(min(64, len(ll.valid)))])
        norm = NormalizeChan.from_batch(byte_to_float(xb))
    loss = LabelSmoothingCrossEntropy(args.label_smoothing) if args.label_smoothing > 0 else nn.CrossEntropyLoss()
    torch.manual_seed(args.seed)
    learn = cnn_learner(ARCHS[args.arch], data, loss, adam_opt(mom=0.9, sqr_mom=0.99, eps=1e-6, wd=args.wd), args.lr,
                        norm=norm, mixup=args.mixup, progress=False, device=dev)
    if args.sync_bn and world > 1:                  # torch's fused version where it runs, else ours
        convert = nn.SyncBatchNorm.convert_sync_batchnorm if dev.type == 'cuda' else convert_dist_batchnorm
        learn.model = convert(learn.model)
    history, start_epoch = [], 0
    cbs = [EpochSetupCallback(args.seed, rank), CheckpointCallback(args, norm, history, write=rank == 0)]
    if args.precision != 'fp32':
        cbs.append(AutocastMixedPrecision(torch.float16 if args.precision == 'fp16' else torch.bfloat16))
    if world > 1: cbs += [DDPCallback([dev.index] if dev.type == 'cuda' else None), DistStatsCallback()]
    if rank == 0: cbs.append(ProgressCallback(console=True))
    else: learn.logger = lambda *a, **k: None          # rank 0 alone prints
    learn.opt = learn.create_opt()
    if ckpt is not None:
        restore_checkpoint(learn, ckpt, args.resume, data.c_out)
        start_epoch = ckpt['epoch']
        history += ckpt.get('history', [])
        cbs.append(LoadStateCallback(ckpt.get('scaler')))
    if world > 1: dist.init_process_group('nccl' if dev.type == 'cuda' else 'gloo')   # all checks passed on every rank
    if rank == 0:
        print(f'{args.arch} on {dev}, {world} process(es), {len(ll.train)} training / {len(ll.valid)} validation images '
              f'at {args.size} px, batch {args.bs} ({args.bs // world} per process), epochs {start_epoch + 1}-{args.epochs}')
    learn.fit(args.epochs, cbs=one_cycle(args.lr, args.pct_start) + cbs, start_epoch=start_epoch)
    if args.dump_weights is not None: save_torch(cpu_state_dict(learn.model), dump_path(args.dump_weights, rank))
    if rank == 0 and history:
        h = history[-1]
        print(f"final: epoch {h['epoch'] + 1} valid_loss={h['valid_loss']:.6f} valid_accuracy={h['valid_accuracy']:.6f} "
              f"n_valid={h['n_valid']} images_per_s={h['n_train'] / h['train_seconds']:.1f}")
    return history


def main(argv=None):
    args = get_parser().parse_args(argv)
    rank, world = int(os.environ.get('RANK', 0)), int(os.environ.get('WORLD_SIZE', 1))
    local_rank = int(os.environ.get('LOCAL_RANK', 0))
    try:
        train(args, rank, world, local_rank)
    except UsageError as e:
        if rank == 0: print(f'train_imagenette.py: error: {e}', file=sys.stderr)
        return 2
    finally:
        if dist.is_available() and dist.is_initialized(): dist.destroy_process_group()
    return 0


if __name__ == '__main__':
    sys.exit(main())
