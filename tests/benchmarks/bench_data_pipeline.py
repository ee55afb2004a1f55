#!/usr/bin/env python
"""Benchmark: the lesson-08 data block pipeline against torchvision doing the same work.

Both pipelines read the same N Imagenette (160 px) training images and, per image: open and decode the
JPEG, make it RGB, resize it to SIZE x SIZE (PIL bilinear), turn it into a float tensor in [0, 1]; then
batch them with a `torch.utils.data.DataLoader` of the same batch size and worker count.

  ours:        ImageList.from_files -> split -> label_by_func(parent_labeler, CategoryProcessor)
               with tfms [make_rgb, ResizeFixed(SIZE), to_byte_tensor, to_float_tensor]
  torchvision: ImageFolder(train/) restricted to the same files, with transforms v2
               Compose([Resize((SIZE, SIZE)), PILToTensor(), ToDtype(float32, scale=True)])

Each repeat iterates both loaders once over all N images (worker start-up included, as in an epoch);
the order alternates between repeats so that neither always runs on a warmer machine. The first
batches of the two are compared first (same pixels up to float rounding), so the two really do the same
work. The table gives images per second (median, min, max over repeats); the last line is

    ratio=<ours img/s / torchvision img/s>        (goal: >= 1.0)

Usage: python tests/benchmarks/bench_data_pipeline.py [--n 1024] [--workers 2] [--bs 64] [--size 128] [--repeats 5]
Set EXP_MIRROR to the dataset mirror folder if Imagenette is not in the data folder yet.
"""
import argparse, os, statistics, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))   # the repository root, for `exp`

import torch
from torch.utils.data import DataLoader, Subset
from torchvision.datasets import ImageFolder
from torchvision.transforms import v2

from exp.nb_08 import (URLs, untar_data, ImageList, SplitData, grandparent_splitter, label_by_func, parent_labeler,
                       CategoryProcessor, make_rgb, ResizeFixed, to_byte_tensor, to_float_tensor)


def our_dataset(path, files, size):
    "The lesson's pipeline over `files` (all under train/): a LabeledData of (float tensor, class index)."
    tfms = [make_rgb, ResizeFixed(size), to_byte_tensor, to_float_tensor]
    il = ImageList(files, path, tfms=tfms)
    sd = SplitData.split_by_func(il, lambda fn: grandparent_splitter(fn, valid_name='val'))
    return label_by_func(sd, parent_labeler, proc_y=CategoryProcessor()).train


def tv_dataset(path, files, size):
    "torchvision's ImageFolder over train/, with transforms v2, restricted to the same `files` in the same order."
    tfm = v2.Compose([v2.Resize((size, size)), v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True)])
    ds = ImageFolder(str(path/'train'), transform=tfm)
    where = {Path(p): i for i, (p, _) in enumerate(ds.samples)}
    return Subset(ds, [where[f] for f in files])


def images_per_second(ds, bs, workers):
    dl = DataLoader(ds, batch_size=bs, shuffle=False, num_workers=workers)
    n, start = 0, time.perf_counter()
    for xb, yb in dl: n += len(xb)
    return n / (time.perf_counter() - start)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--n', type=int, default=1024, help='images read per repeat')
    ap.add_argument('--workers', type=int, default=min(2, os.cpu_count() or 1), help='DataLoader workers (both)')
    ap.add_argument('--bs', type=int, default=64, help='batch size')
    ap.add_argument('--size', type=int, default=128, help='side of the resized images')
    ap.add_argument('--repeats', type=int, default=5, help='timed passes of each pipeline')
    args = ap.parse_args(argv)
    if args.n < 1 or args.repeats < 1 or args.bs < 1 or args.workers < 0:
        ap.error('--n, --repeats and --bs must be >= 1, --workers >= 0')

    path = untar_data(URLs.IMAGENETTE_160)
    all_train = ImageList.from_files(path, include=['train']).items
    step = max(1, len(all_train) // args.n)          # spread over the classes, deterministic
    files = all_train[::step][:args.n]
    if len(files) < args.n: print(f'note: only {len(files)} training images available; using all of them')
    ours, tv = our_dataset(path, files, args.size), tv_dataset(path, files, args.size)

    a, b = next(iter(DataLoader(ours, batch_size=8))), next(iter(DataLoader(tv, batch_size=8)))
    diff = (a[0] - b[0]).abs().max().item()
    assert a[0].shape == b[0].shape and diff < 1e-5, f'the pipelines disagree: shapes {a[0].shape} {b[0].shape}, max diff {diff}'

    runs = {'ours': [], 'torchvision': []}
    pipes = [('ours', ours), ('torchvision', tv)]
    for r in range(args.repeats):
        for name, ds in (pipes if r % 2 == 0 else pipes[::-1]):
            runs[name].append(images_per_second(ds, args.bs, args.workers))

    print(f'data pipeline: {len(files)} Imagenette-160 images -> {args.size}px float tensors, bs {args.bs}, '
          f'{args.workers} workers, {args.repeats} alternating repeats, torch {torch.__version__}, '
          f'{os.cpu_count()} CPUs (first-batch max diff {diff:.2g})')
    print(f'{"pipeline":<14}{"median img/s":>14}{"min":>10}{"max":>10}')
    for name, v in runs.items():
        print(f'{name:<14}{statistics.median(v):>14.1f}{min(v):>10.1f}{max(v):>10.1f}')
    print(f'ratio={statistics.median(runs["ours"]) / statistics.median(runs["torchvision"]):.3f}')


if __name__ == '__main__':
    main()
