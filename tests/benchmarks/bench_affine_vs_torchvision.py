#!/usr/bin/env python
"""Benchmark: lesson 10's batched random affine against torchvision transforms v2 doing the same random affine.

Same input for both: N Imagenette (160 px) training images resized to SIZE x SIZE, as float batches of BS in
[0, 1] (bs, 3, SIZE, SIZE), on the CPU. Same augmentation: a random left-right flip (p 0.5), rotation up to
10 degrees, zoom in up to 1.2x, shift up to 5% of the image each way, bilinear, zero fill outside the image.

  ours:                `AffineAugment(padding_mode='zeros')` on each batch: one matrix per image, one grid and one
                       `F.grid_sample` call per batch.
  torchvision, per image: `v2.Compose([RandomHorizontalFlip(0.5), RandomAffine(10, translate=(0.05, 0.05),
                       scale=(1, 1.2), interpolation=BILINEAR)])` called on each image of the batch in a loop.
                       v2 draws ONE set of parameters per call and applies it to everything it is given, so a
                       loop is the only way to give every image its own affine.
  torchvision, whole batch (reference only): the same v2 transform called once on the batch tensor. It is
                       batched, but every image gets the SAME flip and affine, so it is not the same augmentation.

Before timing, the two are checked to compute the same thing on fixed parameters (rotation + zoom, and a shift):
v2's functional `affine` against `affine_batch` with the matching matrix.

Each figure is the best of REPEATS passes over the N images, alternating the order of the methods; the table
gives images per second, the last line is

    ratio=<ours img/s / torchvision per-image img/s>        (goal: >= 1.0)

Usage: python tests/benchmarks/bench_affine_vs_torchvision.py [--n 512] [--bs 64] [--size 128] [--repeats 5] [--threads T]
Set EXP_MIRROR to the dataset mirror folder if Imagenette is not in the data folder yet.
"""
import argparse, os, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))   # the repository root, for `exp`

import PIL.Image
import torch
import torchvision
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from exp.nb_10 import (URLs, untar_data, ImageList, make_rgb, ResizeFixed, np_to_float, AffineAugment,
                       affine_batch, rotation_matrix, zoom_matrix, translation_matrix)

BILINEAR = v2.InterpolationMode.BILINEAR


def check_same_affine(x):
    "v2's affine and ours agree on fixed parameters (same sign of angle, same zoom and shift conventions)."
    bs, _, h, w = x.shape
    angle, scale, shift = 25., 1.15, 6
    tv = torch.stack([TF.affine(im, angle=angle, translate=[0, 0], scale=scale, shear=[0., 0.], interpolation=BILINEAR)
                      for im in x])
    # v2's functional `affine` turns clockwise for a positive angle; our positive angle is counter-clockwise
    m = rotation_matrix(torch.full((bs,), -angle)) @ zoom_matrix(torch.full((bs,), scale))
    d_rot = (affine_batch(x, m, padding_mode='zeros') - tv).abs().mean().item()
    tv = torch.stack([TF.affine(im, angle=0., translate=[shift, shift], scale=1., shear=[0., 0.], interpolation=BILINEAR)
                      for im in x])
    t = torch.full((bs,), -2 * shift / w)   # v2 moves the content by +shift px; ours reads from -shift
    d_shift = (affine_batch(x, translation_matrix(t, t), padding_mode='zeros') - tv).abs().mean().item()
    assert d_rot < 2e-3 and d_shift < 2e-3, f'v2 and ours disagree: mean abs diff {d_rot:.2g} (rotate+zoom), {d_shift:.2g} (shift)'
    return max(d_rot, d_shift)


def timed_pass(f, batches, store, name):
    "Time one pass of `f` over all `batches`, appending the seconds to `store[name]`."
    start = time.perf_counter()
    for xb in batches: f(xb)
    store.setdefault(name, []).append(time.perf_counter() - start)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--n', type=int, default=512, help='images per pass')
    ap.add_argument('--bs', type=int, default=64, help='batch size')
    ap.add_argument('--size', type=int, default=128, help='side of the images')
    ap.add_argument('--repeats', type=int, default=5, help='timed passes per method (the best is kept)')
    ap.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch default)')
    args = ap.parse_args(argv)
    if min(args.n, args.bs, args.size, args.repeats) < 1: ap.error('--n, --bs, --size and --repeats must be >= 1')
    if args.n % args.bs: ap.error(f'--n ({args.n}) must be a multiple of --bs ({args.bs})')
    if args.threads is not None: torch.set_num_threads(args.threads)

    path = untar_data(URLs.IMAGENETTE_160)
    files = ImageList.from_files(path, include=['train']).items
    files = files[::max(1, len(files) // args.n)][:args.n]
    resize = ResizeFixed(args.size)
    imgs = [np_to_float(resize(make_rgb(PIL.Image.open(f)))) for f in files]
    batches = [torch.stack(imgs[i:i + args.bs]) for i in range(0, len(imgs), args.bs)]
    n = len(imgs)
    diff = check_same_affine(batches[0][:8])

    ours = AffineAugment(max_rotate=10., zoom=(1., 1.2), p_flip=0.5, max_translate=0.1, padding_mode='zeros')
    tv = v2.Compose([v2.RandomHorizontalFlip(0.5),
                     v2.RandomAffine(degrees=10, translate=(0.05, 0.05), scale=(1., 1.2), interpolation=BILINEAR)])
    methods = [('ours, one call per batch', ours),
               ('torchvision v2, per image', lambda xb: torch.stack([tv(im) for im in xb])),
               ('torchvision v2, whole batch *', tv)]
    torch.manual_seed(0)
    for _, f in methods: f(batches[0])                    # warm-up
    times = {}
    for r in range(args.repeats):
        for name, f in (methods if r % 2 == 0 else methods[::-1]):
            timed_pass(f, batches, times, name)

    ips = {name: n / min(t) for name, t in times.items()}
    print(f'random affine on {n} Imagenette images at {args.size}px, batches of {args.bs}, CPU, '
          f'{torch.get_num_threads()} torch threads, best of {args.repeats}, torch {torch.__version__}, '
          f'torchvision {torchvision.__version__}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} '
          f'(same-affine check: mean abs diff {diff:.1e})')
    print(f'{"method":<32}{"images/s":>10}{"µs/image":>11}')
    for name, v in ips.items(): print(f'{name:<32}{v:>10.0f}{1e6 / v:>11.1f}')
    print('* one flip and affine shared by the whole batch: batched, but not the same augmentation')
    print(f'ratio={ips["ours, one call per batch"] / ips["torchvision v2, per image"]:.3f}')


if __name__ == '__main__':
    main()
