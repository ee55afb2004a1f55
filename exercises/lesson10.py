"Lesson 10's exercises, checked against F.affine_grid, F.grid_sample, torch.rot90, trigonometry and the crop's definition"
import math
import warnings

import torch
import torch.nn.functional as F

from exercises import close, equal, exercise, expect


def _g(seed): return torch.Generator().manual_seed(seed)


def _affine_grid(theta, size, align_corners):
    with warnings.catch_warnings():              # PyTorch's note on grids with a side of 1 pixel
        warnings.simplefilter('ignore')
        return F.affine_grid(theta, size, align_corners=align_corners)


@exercise('10.1')
def fallback_crop(RandomResizedCrop):
    "The centred fallback box, against its definition: the largest centred box whose aspect ratio is inside `ratio`"
    sizes = [(1000, 20), (20, 1000), (300, 100), (100, 300), (160, 120), (120, 160), (64, 64), (2, 1), (1, 3)]
    for ratio in ((3 / 4, 4 / 3), (1., 2.)):
        rrc = RandomResizedCrop(16, ratio=ratio)
        rs = f'({ratio[0]:.4g}, {ratio[1]:.4g})'
        for w, h in sizes:
            box = rrc.fallback_corners(w, h)
            call = f'your `fallback_corners({w}, {h})` with ratio {rs}'
            expect(isinstance(box, (tuple, list)) and len(box) == 4,
                   f'{call} is {box!r}, expected a box (left, top, right, bottom)')
            left, top, right, bottom = (float(v) for v in box)
            nw, nh = right - left, bottom - top
            expect(0 <= left and 0 <= top and right <= w and bottom <= h and nw >= 1 and nh >= 1,
                   f'{call} is {box!r}, which is not a box of at least one pixel inside the {w}×{h} image')
            if ratio[0] <= w / h <= ratio[1]:
                expect((left, top, right, bottom) == (0, 0, w, h),
                       f'{call} is {box!r}, expected the whole image (0, 0, {w}, {h}): its ratio w/h = {w / h:.4g} '
                       'is already allowed')
                continue
            if w / h > ratio[1]: want, ok = f'the full height {h} and a width of about {h * ratio[1]:.4g}', \
                nh == h and abs(nw - h * ratio[1]) <= 1
            else: want, ok = f'the full width {w} and a height of about {w / ratio[0]:.4g}', \
                nw == w and abs(nh - w / ratio[0]) <= 1
            expect(ok, f'{call} is {box!r}, expected a centred box of {want} (the largest one the ratio allows)')
            expect(abs((left + right) / 2 - w / 2) <= 1 and abs((top + bottom) / 2 - h / 2) <= 1,
                   f'{call} is {box!r}, expected it centred in the {w}×{h} image (within a pixel)')


@exercise('10.2')
def pixel_centres(pixel_coords):
    "The coordinates of pixel centres, against the x coordinates F.affine_grid gives an identity theta"
    eye = torch.eye(2, 3, dtype=torch.float64)[None]
    for ac in (False, True):
        for n in (2, 3, 4, 7):
            want = _affine_grid(eye, (1, 1, 1, n), ac)[0, 0, :, 0]
            close(f'your `pixel_coords({n}, align_corners={ac})`', pixel_coords(n, ac, dtype=torch.float64), want,
                  atol=1e-9, note=' (the x coordinates of F.affine_grid for an identity theta)')
    got = pixel_coords(5, dtype=torch.float64)
    equal('the dtype of your `pixel_coords(5, dtype=torch.float64)`', got.dtype, torch.float64)


@exercise('10.3')
def affine_grid_by_hand(batch_affine_grid):
    "The sampling grid of random thetas, against F.affine_grid, for both align_corners and sides of one pixel"
    theta = torch.randn(3, 2, 3, generator=_g(5))
    for ac in (False, True):
        for size in [(3, 2, 7, 9), (3, 1, 4, 4), (3, 3, 1, 5), (3, 1, 6, 1)]:
            close(f'your `batch_affine_grid` for a random theta (3, 2, 3), size {size}, align_corners={ac}',
                  batch_affine_grid(theta, size, ac), _affine_grid(theta, size, ac), atol=1e-5,
                  note=' (F.affine_grid; it uses your `pixel_coords` too)')
    got = batch_affine_grid(theta.double(), (3, 1, 4, 5))
    equal('the dtype of your `batch_affine_grid` for a float64 theta', got.dtype, torch.float64,
          note=' (it uses your `pixel_coords` too)')


@exercise('10.4')
def rotation(rotation_matrix):
    "90° through F.grid_sample against torch.rot90, then any angle and aspect: seen in pixels, the rotation matrix of trigonometry"
    x = torch.rand(2, 3, 8, 8, generator=_g(2))
    m = rotation_matrix(torch.full((2,), 90.))
    equal('the shape of your `rotation_matrix` for 2 angles', tuple(m.shape), (2, 3, 3))
    close('the last row of your `rotation_matrix` for 90°', m[:, 2], torch.tensor([0., 0., 1.]).expand(2, 3), atol=1e-6)
    close('the translation column of your `rotation_matrix` for 90°', m[:, :2, 2], torch.zeros(2, 2), atol=1e-6)
    out = F.grid_sample(x, _affine_grid(m[:, :2].float(), x.shape, False), align_corners=False)
    close('the 8×8 images turned by your `rotation_matrix(90°)` (F.affine_grid and F.grid_sample)', out,
          torch.rot90(x, 1, dims=(-2, -1)), atol=1e-5,
          note=' (torch.rot90(x, 1, dims=(-2, -1)): +90° turns the height axis towards the width axis)')
    for (w, h) in ((200, 50), (30, 90), (64, 64)):
        A = torch.diag(torch.tensor([w / 2, h / 2], dtype=torch.float64))    # grid units -> pixels
        for deg in (13., 90., -120.):
            m = rotation_matrix(torch.tensor([deg], dtype=torch.float64), aspect=w / h)[0, :2, :2]
            t = math.radians(deg)
            want = torch.tensor([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]], dtype=torch.float64)
            close(f'your `rotation_matrix({deg:g}°, aspect={w / h:.4g})` seen in pixels of a {w}×{h} image',
                  A @ m.double() @ A.inverse(), want, atol=1e-6,
                  note=f' (with x scaled by w/2 and y by h/2, it must be a rigid rotation by {deg:g}°: '
                       '[[cos, -sin], [sin, cos]])')


@exercise('10.5')
def affine_resample(affine_batch):
    "Each setting (size, padding, mode, align_corners, (bs, 2, 3) matrices, float64) against F.affine_grid + F.grid_sample"
    x = torch.rand(3, 2, 7, 9, generator=_g(6))
    theta = torch.eye(2, 3) + 0.3 * torch.randn(3, 2, 3, generator=_g(7))
    mats = torch.cat([theta, torch.tensor([[[0., 0., 1.]]]).expand(3, 1, 3)], dim=1)
    cases = [dict(), dict(size=5), dict(size=(4, 6)), dict(padding_mode='zeros'),
             dict(align_corners=True, padding_mode='border'), dict(mode='nearest', dtype=torch.float64),
             dict(two_rows=True, dtype=torch.float64)]
    for kw in cases:
        dt, two = kw.pop('dtype', torch.float32), kw.pop('two_rows', False)
        xs, ms = x.to(dt), (theta if two else mats)
        size = kw.get('size', (7, 9))
        oh, ow = (size, size) if isinstance(size, int) else size
        ac = kw.get('align_corners', False)
        grid = _affine_grid(theta.to(dt), (3, 2, oh, ow), ac)
        want = F.grid_sample(xs, grid, mode=kw.get('mode', 'bilinear'), padding_mode=kw.get('padding_mode', 'reflection'),
                             align_corners=ac)
        what = ', '.join([f'{k}={v!r}' for k, v in kw.items()] + (['(3, 2, 3) matrices'] if two else [])
                         + (['float64'] if dt == torch.float64 else [])) or 'the default settings'
        got = affine_batch(xs, ms, **kw)
        close(f'your `affine_batch` of a (3, 2, 7, 9) batch with {what}', got, want, atol=1e-5,
              note=' (F.affine_grid then F.grid_sample; it uses your `batch_affine_grid` too)')
        equal(f'the dtype of your `affine_batch` with {what}', got.dtype, dt, note=' (it uses your `batch_affine_grid` too)')
