#!/usr/bin/env python
"""Benchmark: per-item PIL augmentation against lesson 10's batched affine augmentation, per image.

Both sides start from the same N decoded Imagenette (160 px) training images and produce SIZE x SIZE float
tensors in [0, 1] (JPEG decoding is left out of both: it is the same work either way).

  PIL lesson pipeline (the headline, as the issue names it): per image, `RandomResizedCrop(SIZE, scale=(0.35, 1))`
                 + `PilRandomFlip` + `np_to_float`: the per-item training pipeline of lessons 10/10b.
  PIL affine:    per image, the same kind of random affine as the batch side (flip, zoom in up to 1.2x, rotation up
                 to 10 degrees, shift up to 5%, bilinear): the matrix drawn in plain Python, one
                 `img.transform(size, AFFINE, coeffs)` call (PIL's C code on bytes), then `np_to_float`. The matrix is
                 our grid matrix converted to PIL's pixel coordinates, so PIL and the batch do the same resampling
                 (checked first).
  batch affine:  the images collated as a uint8 batch (bs, 3, 160, 160), as the data loader delivers them in the
                 lesson; per batch, `byte_to_float` then `AffineAugment(size=SIZE)`: one matrix per image, one grid
                 (`batch_affine_grid`, equal to `F.affine_grid`) and one `F.grid_sample` call for the whole batch.
                 With `--device cuda` the batches are on the GPU (moved there before timing, as `DeviceCallback` does).

PIL is single-threaded, so the CPU headline compares one core with one core: torch is limited to 1 thread for the
rows marked "1" (the all-threads row is shown too). Each figure is the best of REPEATS passes over all N images
(least disturbed by other processes); per-image time = pass time / N. The last lines are

    ratio_pil_affine=<PIL affine per-image time / batch affine per-image time>
    ratio=<PIL lesson pipeline per-image time / batch affine per-image time>     (goal: >= 10)

both against the batch on one thread (CPU) or on the GPU (`--device cuda`).

Usage: python tests/benchmarks/bench_pil_vs_batch_affine.py [--n 512] [--bs 64] [--size 128] [--repeats 5]
                                                           [--device cpu|cuda]
Set EXP_MIRROR to the dataset mirror folder if Imagenette is not in the data folder yet.
"""
import argparse, math, os, random, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))   # the repository root, for `exp`

import PIL.Image
import torch

from exp.nb_10 import (URLs, untar_data, ImageList, make_rgb, np_to_float, AffineAugment, RandomResizedCrop,
                       PilRandomFlip, rand_affine, affine_batch, byte_to_float, to_byte_tensor)


def pil_affine_coeffs(m, in_wh, out_wh):
    """PIL AFFINE data (a, b, c, d, e, f) doing what grid matrix `m` (3, 3) does with align_corners=False.

    PIL reads output pixel (x, y) at source (a x + b y + c, d x + e y + f), both in continuous pixel coordinates
    (pixel i spans [i, i+1]); the grid works in [-1, 1] across each image's edges."""
    (wi, hi), (wo, ho) = in_wh, out_wh
    if isinstance(m, torch.Tensor): m = m.tolist()
    a, b, c = wi * m[0][0] / wo, wi * m[0][1] / ho, wi / 2 * (m[0][2] + 1 - m[0][0] - m[0][1])
    d, e, f = hi * m[1][0] / wo, hi * m[1][1] / ho, hi / 2 * (m[1][2] + 1 - m[1][0] - m[1][1])
    return (a, b, c, d, e, f)


def pil_affine(img, m, size):
    "One image through matrix `m`, in PIL (zero fill outside the image), as a float tensor."
    out = img.transform((size, size), PIL.Image.Transform.AFFINE, pil_affine_coeffs(m, img.size, (size, size)),
                        resample=PIL.Image.Resampling.BILINEAR)
    return np_to_float(out)


def py_rand_affine(max_rotate=10., zoom=(1., 1.2), p_flip=0.5, max_translate=0.1):
    "One matrix drawn as `rand_affine` draws it (flip, zoom, rotation, translation), in plain Python for the per-item side."
    sx = -1. if random.random() < p_flip else 1.
    s = 1 / random.uniform(*zoom)
    t = math.radians(random.uniform(-max_rotate, max_rotate))
    c, si = math.cos(t), math.sin(t)
    tx, ty = random.uniform(-max_translate, max_translate), random.uniform(-max_translate, max_translate)
    return [[c * s * sx, -si * s, tx], [si * s * sx, c * s, ty], [0., 0., 1.]]


def best_pass(f, repeats):
    f()                                                    # warm-up
    best = float('inf')
    for _ in range(repeats):
        start = time.perf_counter(); f(); best = min(best, time.perf_counter() - start)
    return best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--n', type=int, default=512, help='images per pass')
    ap.add_argument('--bs', type=int, default=64, help='batch size of the batched affine')
    ap.add_argument('--size', type=int, default=128, help='side of the output images')
    ap.add_argument('--repeats', type=int, default=5, help='timed passes (the best is kept)')
    ap.add_argument('--device', default='cpu', help='where the batch affine runs: cpu (default) or cuda')
    args = ap.parse_args(argv)
    dev = torch.device(args.device)
    if dev.type == 'cuda' and not torch.cuda.is_available(): ap.error('--device cuda, but CUDA is not available')
    if min(args.n, args.bs, args.size, args.repeats) < 1: ap.error('--n, --bs, --size and --repeats must be >= 1')
    if args.n % args.bs: ap.error(f'--n ({args.n}) must be a multiple of --bs ({args.bs})')

    path = untar_data(URLs.IMAGENETTE_160)
    files = ImageList.from_files(path, include=['train']).items
    files = files[::max(1, len(files) // args.n)][:args.n]
    imgs = [make_rgb(PIL.Image.open(f)) for f in files]
    for im in imgs: im.load()
    if len({im.size for im in imgs}) != 1: raise SystemExit('the images must all have one size to be batched')
    batches = [torch.stack([to_byte_tensor(im) for im in imgs[i:i + args.bs]]).to(dev) for i in range(0, len(imgs), args.bs)]
    aug = AffineAugment(size=args.size)                    # reflection padding, align_corners=False: the lesson's
    n = len(imgs)

    # Same work check: PIL with our matrix against the batch with the same matrices (zero padding, as PIL fills).
    torch.manual_seed(0)
    mats = rand_affine(8)
    ref = affine_batch(byte_to_float(batches[0][:8]), mats.to(dev), size=args.size, padding_mode='zeros').cpu()
    pil = torch.stack([pil_affine(im, m, args.size) for im, m in zip(imgs[:8], mats)])
    diff = (pil - ref).abs().mean().item()
    assert diff < 0.01, f'PIL and the batch do not do the same affine: mean abs diff {diff:.4f}'

    def pil_affine_pass():
        for im in imgs: pil_affine(im, py_rand_affine(), args.size)
    rrc, flip = RandomResizedCrop(args.size, scale=(0.35, 1)), PilRandomFlip()
    def pil_lesson_pass():
        for im in imgs: np_to_float(flip(rrc(im)))
    sync = torch.cuda.synchronize if dev.type == 'cuda' else (lambda: None)
    def batch_pass():
        for xb in batches: aug(byte_to_float(xb))
        sync()

    random.seed(0); torch.manual_seed(0)
    n_threads = torch.get_num_threads()
    rows = []
    torch.set_num_threads(1)
    rows.append(('PIL lesson pipeline, per image', '1 (PIL)', best_pass(pil_lesson_pass, args.repeats)))
    rows.append(('PIL affine, per image', '1 (PIL)', best_pass(pil_affine_pass, args.repeats)))
    if dev.type == 'cpu':
        rows.append(('batch affine, one call per batch', '1', best_pass(batch_pass, args.repeats)))
        torch.set_num_threads(n_threads)
        rows.append(('batch affine, one call per batch', str(n_threads), best_pass(batch_pass, args.repeats)))
    else:
        torch.set_num_threads(n_threads)
        rows.append((f'batch affine, {torch.cuda.get_device_name(dev)}', 'GPU', best_pass(batch_pass, args.repeats)))

    print(f'per-image augmentation cost: {n} Imagenette-160 images -> {args.size}px floats, batches of {args.bs}, '
          f'best of {args.repeats}, torch {torch.__version__}, Pillow {PIL.__version__}, {os.cpu_count()} CPUs, '
          f'load average {os.getloadavg()[0]:.1f} (PIL vs batch on the same matrices: mean abs diff {diff:.4f})')
    print(f'{"method":<36}{"threads":>9}{"µs/image":>11}{"images/s":>11}')
    for name, th, t in rows:
        print(f'{name:<36}{th:>9}{t / n * 1e6:>11.1f}{n / t:>11.0f}')
    print(f'ratio_pil_affine={rows[1][2] / rows[2][2]:.3f}')
    print(f'ratio={rows[0][2] / rows[2][2]:.3f}')


if __name__ == '__main__':
    main()
