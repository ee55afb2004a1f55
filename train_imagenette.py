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

Lesson 11b (nbs/11b_distributed.ipynb) builds what this script uses: the shard sampler, DistributedDataParallel,
the summed statistics, the per-epoch seeds, rank-0 logging and the checkpoints are callbacks of the `Learner`
of lessons 05b-11, exported to `exp.nb_11b`. `--sync-bn` uses torch's `nn.SyncBatchNorm` on CUDA and the
lesson's `DistBatchNorm`, written from collectives, elsewhere. What is left here is the command line: its
arguments and their checks (all made before any process joins the group), the data, the learner, the fit.
"""
import argparse, sys
from functools import partial
from pathlib import Path

import PIL.Image
import torch
from torch import nn

from coursekit.checkpoint import CheckpointError, cpu_state_dict, save_torch
from coursekit.cli import UsageError, check_numbers, check_output, first_line, join_group, pick_device, run_main
from coursekit.datasets import URLs, DatasetError, untar_data
from exp.nb_05 import one_cycle
from exp.nb_06 import default_device
from exp.nb_08 import DataBlockError, DataBunch, NormalizeChan
from exp.nb_09 import adam_opt
from exp.nb_09c import ProgressCallback
from exp.nb_10 import byte_to_float
from exp.nb_10b import LabelSmoothingCrossEntropy
from exp.nb_10c import AutocastMixedPrecision
from exp.nb_11 import cnn_learner, imagenette_split, xresnets
from exp.nb_11b import (CheckpointCallback, DDPCallback, DistStatsCallback, EpochSeedCallback, RankZeroLogging,
                        convert_dist_batchnorm, rank_loaders, read_training_checkpoint, resume_training)


def tiny_cnn(c_in=3, c_out=10, bn=False):
    "Two convs and a linear layer; a batch norm after each conv if `bn`: for smoke tests and the DDP tests"
    def conv(ni, nf):
        if not bn: return [nn.Conv2d(ni, nf, 3, stride=2, padding=1), nn.ReLU()]
        return [nn.Conv2d(ni, nf, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(nf), nn.ReLU()]
    return nn.Sequential(*conv(c_in, 8), *conv(8, 16), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, c_out))

ARCHS = {**xresnets, 'tiny_cnn': tiny_cnn, 'tiny_bn_cnn': partial(tiny_cnn, bn=True)}


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


# Each numeric argument, what it must be, and the test; None (not given) is always fine
NUMBERS = [('size', 'at least 1', lambda v: v >= 1), ('epochs', 'at least 1', lambda v: v >= 1),
           ('bs', 'at least 1', lambda v: v >= 1), ('lr', 'a positive number', lambda v: v > 0),
           ('pct_start', 'in [0, 1]', lambda v: 0 <= v <= 1), ('wd', 'at least 0', lambda v: v >= 0),
           ('mixup', 'at least 0 (0: no mixup)', lambda v: v >= 0),
           ('label_smoothing', 'in [0, 1) (0: plain cross-entropy)', lambda v: 0 <= v < 1),
           ('workers', 'at least 0 (0: load in the training process)', lambda v: v >= 0),
           ('n_classes', 'at least 1', lambda v: v >= 1), ('n_train', 'at least 1', lambda v: v >= 1),
           ('n_valid', 'at least 1', lambda v: v >= 1), ('stop_after', 'at least 1', lambda v: v >= 1)]

def dump_path(prefix, rank): return Path(f'{prefix}.rank{rank}.pt')

def check_args(args, world):
    "Every argument that can be checked without reading the data: a `UsageError` for the first that is wrong"
    if args.arch not in ARCHS: raise UsageError(f'--arch {args.arch}: unknown, choose one of {", ".join(ARCHS)}')
    check_numbers(args, NUMBERS)
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
    "The checkpoint of `--resume path`, read by lesson 11b's reader and checked against `--arch`"
    try: ckpt = read_training_checkpoint(path, fix=RESUME_FIX)
    except CheckpointError as e: raise UsageError(f'--resume: {e}') from None     # missing, damaged, pickled, ...
    if not isinstance(ckpt.get('args'), dict): raise UsageError(f'--resume: {path} has no arguments dict: {RESUME_FIX}')
    if ckpt['args'].get('arch') != arch:
        raise UsageError(f"--resume {path}: the checkpoint is of --arch {ckpt['args'].get('arch')}, not {arch}")
    return ckpt

def restore_checkpoint(learn, ckpt, path, n_classes):
    "Put the checkpoint's weights and optimizer state in `learn`, once they are known to fit: the epoch to start from"
    try: return resume_training(learn, ckpt, path)
    except CheckpointError as e:
        a = ckpt['args']
        raise UsageError(f"--resume: {e}; the checkpoint's run had --n-classes {a.get('n_classes')} --data "
                         f"{a.get('data')}, this run has {n_classes} classes") from None


def get_device(args, local_rank, world=1): return pick_device(args.device, local_rank, world, default_device)


PIL_ERRORS = (OSError, SyntaxError, ValueError, PIL.Image.DecompressionBombError)

def check_images(root, files):
    "Read the header of each image file: a file that is not an image stops the run now, not during an epoch"
    for fn in files:
        try:
            with PIL.Image.open(fn) as im: im.size
        except PIL.UnidentifiedImageError:
            raise UsageError(f'--data {root}: {fn} is not an image (PIL cannot identify it): remove or replace it') from None
        except PIL_ERRORS as e:
            first = first_line(e)
            raise UsageError(f'--data {root}: {fn} cannot be read as an image ({first}): remove or replace it') from None

def get_split(args, world):
    "The labelled train/validation split, and its images checked: all before any process group or epoch"
    try: path = args.data if args.data is not None else untar_data(URLs.IMAGENETTE_160)
    except DatasetError as e:                          # offline with no mirror, a damaged archive, ...
        first = first_line(e)
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
    "Loaders of this rank's share of `ll` (lesson 11b's shard sampler): no process group needed"
    kw = dict(num_workers=args.workers, pin_memory=dev.type == 'cuda', persistent_workers=args.workers > 0)
    dls = rank_loaders(ll.train, ll.valid, args.bs, rank, world, seed=args.seed, **kw)
    return DataBunch(*dls, c_in=3, c_out=len(ll.train.proc_y[0].vocab))


def get_learner(args, data, dev, norm, world):
    "Lesson 11's XResNet learner: label smoothing, Adam, 1cycle (at fit), and the global batch norm of --sync-bn"
    loss = LabelSmoothingCrossEntropy(args.label_smoothing) if args.label_smoothing > 0 else nn.CrossEntropyLoss()
    torch.manual_seed(args.seed)
    learn = cnn_learner(ARCHS[args.arch], data, loss, adam_opt(mom=0.9, sqr_mom=0.99, eps=1e-6, wd=args.wd), args.lr,
                        norm=norm, mixup=args.mixup, progress=False, device=dev)
    if args.sync_bn and world > 1:                  # torch's fused version where it runs, else the lesson's
        convert = nn.SyncBatchNorm.convert_sync_batchnorm if dev.type == 'cuda' else convert_dist_batchnorm
        learn.model = convert(learn.model)
    learn.opt = learn.create_opt()
    return learn


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
    learn = get_learner(args, data, dev, norm, world)
    start_epoch = restore_checkpoint(learn, ckpt, args.resume, data.c_out) if ckpt is not None else 0
    extra = dict(args={k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                 norm=dict(mean=norm.mean.cpu(), std=norm.std.cpu()))
    ckpt_cb = CheckpointCallback(args.save, extra, args.stop_after, resumed=ckpt)
    cbs = [EpochSeedCallback(args.seed, rank), RankZeroLogging(), ckpt_cb]
    if args.precision != 'fp32':
        cbs.append(AutocastMixedPrecision(torch.float16 if args.precision == 'fp16' else torch.bfloat16))
    if world > 1: cbs += [DDPCallback([dev.index] if dev.type == 'cuda' else None), DistStatsCallback()]
    if rank == 0: cbs.append(ProgressCallback(console=True))
    join_group(dev, world)                        # all checks passed on every rank
    if rank == 0:
        print(f'{args.arch} on {dev}, {world} process(es), {len(ll.train)} training / {len(ll.valid)} validation images '
              f'at {args.size} px, batch {args.bs} ({args.bs // world} per process), epochs {start_epoch + 1}-{args.epochs}')
    learn.fit(args.epochs, cbs=one_cycle(args.lr, args.pct_start) + cbs, start_epoch=start_epoch)
    if args.dump_weights is not None: save_torch(cpu_state_dict(learn.model), dump_path(args.dump_weights, rank))
    h = ckpt_cb.history
    if rank == 0 and h:
        print(f"final: epoch {h[-1]['epoch'] + 1} valid_loss={h[-1]['valid_loss']:.6f} "
              f"valid_accuracy={h[-1]['valid_accuracy']:.6f} n_valid={h[-1]['n_valid']} "
              f"images_per_s={h[-1]['n_train'] / h[-1]['train_seconds']:.1f}")
    return h


def main(argv=None):
    args = get_parser().parse_args(argv)
    return run_main(lambda rank, world, local_rank: train(args, rank, world, local_rank), 'train_imagenette.py')


if __name__ == '__main__':
    sys.exit(main())
