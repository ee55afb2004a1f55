"""Lesson 10: per-item PIL augmentation and the batched on-device affine augmentation.

Oracles: `torch.flip` / `torch.rot90` / the identity for the batch affine, `F.affine_grid` for the grid built by
hand, the perspective formula itself for `find_coeffs`, lesson 08's tensor conversion for `np_to_float`. All on
CPU, seeded, on synthetic images (fast, and they can have any size or aspect ratio).
"""
import random

import numpy as np
import PIL.Image
import pytest
import torch
import torch.nn.functional as F

from raising import caught
from exp.nb_00 import test_eq, test_near, test_raises
from exp.nb_08 import ResizeFixed, make_rgb, to_byte_tensor, to_float_tensor
from exp.nb_10 import (DIHEDRAL, AffineAugment, AffineAugmentCallback, ByteToFloatCallback, CenterCrop,
                       GeneralCrop, PilRandomDihedral, PilRandomFlip, PilTiltRandomCrop, PilTransform,
                       RandomResizedCrop, affine_batch, byte_to_float, batch_affine_grid, default_crop_size,
                       find_coeffs, flip_matrix, np_to_float, pixel_coords, process_sz, rand_affine,
                       rotation_matrix, translation_matrix, warp, zoom_matrix)

TOL = 1e-5   # float32 interpolation noise: exact maps from pixel centres to pixel centres


def rand_img(w, h, mode='RGB', seed=0):
    "A random PIL image of `w`×`h` pixels (no symmetry, so every transform shows)."
    rng = np.random.default_rng(seed)
    shape = (h, w) if mode == 'L' else (h, w, 3)
    return PIL.Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode)


@pytest.fixture
def batch():
    torch.manual_seed(0)
    return torch.rand(6, 3, 12, 12)


# --- batch affine: the oracles ----------------------------------------------------------------------------

@pytest.mark.parametrize('shape', [(6, 3, 12, 12), (2, 1, 7, 10), (3, 2, 9, 5)])
def test_identity_returns_batch(shape):
    torch.manual_seed(0)
    x = torch.rand(*shape)
    for pad in ('zeros', 'border', 'reflection'):
        test_near(affine_batch(x, torch.eye(3).expand(shape[0], 3, 3), padding_mode=pad), x, eps=TOL)
    test_near(affine_batch(x, torch.eye(3)[:2].expand(shape[0], 2, 3)), x, eps=TOL)   # (bs, 2, 3) too


@pytest.mark.parametrize('shape', [(6, 3, 12, 12), (3, 2, 9, 5)])
def test_flip_matrix_equals_torch_flip(shape):
    torch.manual_seed(1)
    x = torch.rand(*shape)
    test_near(affine_batch(x, flip_matrix(torch.ones(shape[0], dtype=torch.bool))), torch.flip(x, dims=[-1]), eps=TOL)
    test_near(affine_batch(x, flip_matrix(torch.zeros(shape[0], dtype=torch.bool))), x, eps=TOL)


@pytest.mark.parametrize('n', [8, 9])   # even and odd sides: pixel centres map onto pixel centres both ways
def test_rotation_90_equals_rot90(n):
    torch.manual_seed(2)
    x = torch.rand(4, 3, n, n)
    # align_corners=False (our choice): +90° is rot90 from the height axis to the width axis, i.e. counter-clockwise on screen
    test_near(affine_batch(x, rotation_matrix(torch.full((4,), 90.))), torch.rot90(x, 1, dims=(-2, -1)), eps=TOL)
    test_near(affine_batch(x, rotation_matrix(torch.full((4,), -90.))), torch.rot90(x, -1, dims=(-2, -1)), eps=TOL)
    test_near(affine_batch(x, rotation_matrix(torch.full((4,), 180.))), torch.rot90(x, 2, dims=(-2, -1)), eps=TOL)
    # the same holds with align_corners=True, so the direction does not depend on that choice
    test_near(affine_batch(x, rotation_matrix(torch.full((4,), 90.)), align_corners=True),
              torch.rot90(x, 1, dims=(-2, -1)), eps=TOL)
    # and the wrong direction is really different (the test can fail)
    assert (affine_batch(x, rotation_matrix(torch.full((4,), 90.))) - torch.rot90(x, -1, dims=(-2, -1))).abs().max() > 0.1


def test_rotation_180_non_square_with_aspect():
    torch.manual_seed(3)
    x = torch.rand(2, 3, 6, 10)
    m = rotation_matrix(torch.full((2,), 180.), aspect=10 / 6)
    test_near(affine_batch(x, m), torch.flip(x, dims=[-2, -1]), eps=TOL)


def test_rotation_is_rigid_in_pixels():
    w, h = 200, 50
    A = torch.diag(torch.tensor([w / 2, h / 2], dtype=torch.float64))
    for deg in (13., 45., 90., -120.):
        m = rotation_matrix(torch.tensor([deg], dtype=torch.float64), aspect=w / h)[0, :2, :2]
        P = A @ m @ A.inverse()
        test_near(P @ P.T, torch.eye(2, dtype=torch.float64), eps=1e-9)
        test_near(torch.linalg.det(P), torch.tensor(1., dtype=torch.float64), eps=1e-9)


def test_each_image_gets_its_own_matrix():
    torch.manual_seed(4)
    one = torch.rand(1, 3, 16, 16)
    x = one.expand(8, -1, -1, -1).contiguous()
    aug = AffineAugment(max_rotate=30., zoom=(0.8, 1.3), max_translate=0.2)
    mats = aug.matrices(x)
    assert all((mats[i] - mats[j]).abs().max() > 1e-4 for i in range(8) for j in range(i))
    out = aug(x, mats)
    assert all((out[i] - out[j]).abs().max() > 1e-2 for i in range(8) for j in range(i))
    # each output is its own image through its own matrix, exactly as if transformed alone
    for i in range(8): test_near(out[i:i + 1], affine_batch(one, mats[i:i + 1]), eps=1e-4)
    # the same matrix for all gives the same output for all
    same = aug(x, mats[:1].expand(8, 3, 3))
    test_near(same, same[:1].expand_as(same), eps=1e-6)


@pytest.mark.filterwarnings('ignore:Since version 1.3.0')   # PyTorch's note on unit-size grids, which we match
def test_batch_affine_grid_matches_pytorch():
    torch.manual_seed(5)
    theta = torch.randn(3, 2, 3)
    for ac in (False, True):
        for size in [(3, 2, 7, 9), (3, 1, 4, 4), (3, 3, 1, 5), (3, 1, 6, 1)]:
            test_near(batch_affine_grid(theta, size, ac), F.affine_grid(theta, size, align_corners=ac), eps=1e-5)
    test_near(pixel_coords(4), torch.tensor([-0.75, -0.25, 0.25, 0.75]), eps=1e-6)
    test_near(pixel_coords(3, align_corners=True), torch.tensor([-1., 0., 1.]), eps=1e-6)
    test_raises(lambda: batch_affine_grid(theta[:2], (3, 1, 4, 4)), ValueError, 'theta must be (3, 2, 3)')
    g64 = batch_affine_grid(theta.double(), (3, 1, 4, 5))
    test_eq(g64.dtype, torch.float64)


def test_matrices_compose_and_zoom_translate():
    ones = torch.ones(2)
    test_eq(zoom_matrix(2 * ones)[0], torch.tensor([[0.5, 0, 0], [0, 0.5, 0], [0, 0, 1]]))
    test_eq(translation_matrix(0.1 * ones, -0.2 * ones)[1], torch.tensor([[1, 0, 0.1], [0, 1, -0.2], [0, 0, 1]]))
    # zooming in by 2 then reading the centre: the centre pixel stays, the corner pixel reads from inside
    x = torch.arange(16.).view(1, 1, 4, 4)
    z = affine_batch(x, zoom_matrix(torch.tensor([2.])), mode='nearest')
    assert z.std() < x.std()
    # shifting by a whole pixel (2/w in grid units) moves the content one pixel left
    x = torch.rand(1, 1, 5, 8)
    shifted = affine_batch(x, translation_matrix(torch.tensor([2 / 8]), torch.tensor([0.])), padding_mode='zeros')
    test_near(shifted[..., :-1], x[..., 1:], eps=TOL)
    test_near(shifted[..., -1], torch.zeros(1, 1, 5), eps=TOL)


def test_rand_affine_ranges_and_generator():
    ms = rand_affine(2000, generator=torch.Generator().manual_seed(0))
    det = torch.linalg.det(ms[:, :2, :2])
    assert abs((det < 0).float().mean().item() - 0.5) < 0.05            # half flipped
    assert (det.abs() >= 1 / 1.2**2 - 1e-5).all() and (det.abs() <= 1 + 1e-5).all()
    assert (ms[:, :2, 2].abs() <= 0.1 + 1e-6).all()
    test_eq(ms[:, 2], torch.tensor([0., 0., 1.]).expand(2000, 3))
    test_eq(rand_affine(5, generator=torch.Generator().manual_seed(7)), rand_affine(5, generator=torch.Generator().manual_seed(7)))
    test_eq(rand_affine(3, max_rotate=0., zoom=(1., 1.), p_flip=0., max_translate=0.), torch.eye(3).expand(3, 3, 3))
    # rotation angles stay within max_rotate: with no flip/zoom/shift, the matrix is a pure rotation
    r = rand_affine(500, max_rotate=20., zoom=(1., 1.), p_flip=0., max_translate=0., generator=torch.Generator().manual_seed(1))
    angles = torch.rad2deg(torch.atan2(r[:, 1, 0], r[:, 0, 0]))
    assert angles.abs().max() <= 20 + 1e-4 and angles.abs().max() > 18


def test_affine_batch_size_device_dtype_and_errors(batch):
    out = affine_batch(batch, torch.eye(3).expand(6, 3, 3), size=(5, 7))
    test_eq(out.shape, (6, 3, 5, 7))
    test_eq(affine_batch(batch, torch.eye(3).expand(6, 3, 3), size=4).shape, (6, 3, 4, 4))
    out64 = affine_batch(batch.double(), torch.eye(3).expand(6, 3, 3))                    # matrices follow the batch
    test_eq(out64.dtype, torch.float64)
    meta = affine_batch(torch.empty(2, 3, 8, 8, device='meta'), rand_affine(2, device='meta'))
    test_eq((meta.device.type, tuple(meta.shape)), ('meta', (2, 3, 8, 8)))
    test_raises(lambda: affine_batch(batch, torch.eye(3).expand(5, 3, 3)), ValueError, 'mats must be (6, 3, 3)')
    test_raises(lambda: affine_batch(batch[0], torch.eye(3)[None]), ValueError, 'must be a batch')
    test_raises(lambda: AffineAugment(padding_mode='mirror'), ValueError, 'padding_mode')


def test_augment_draws_on_the_batch_device():
    x = torch.empty(4, 3, 8, 8, device='meta')
    aug = AffineAugment()
    test_eq(aug.matrices(x).device.type, 'meta')
    test_eq(aug(x).device.type, 'meta')


# --- the callbacks --------------------------------------------------------------------------------------

class FakeLearner:
    "Just what a batch callback reads and writes."
    def __init__(self, xb, in_train): self.xb, self.in_train = xb, in_train


def run_begin_batch(cb, xb, in_train):
    learn = FakeLearner(xb, in_train)
    cb.set_runner(learn)
    res = cb.begin_batch()
    return learn.xb, res


def test_affine_callback_train_only(batch):
    torch.manual_seed(6)
    cb = AffineAugmentCallback(max_rotate=20.)
    out, res = run_begin_batch(cb, batch, in_train=True)
    assert res is None                       # returning True would skip the batch
    test_eq(out.shape, batch.shape)
    assert (out - batch).abs().max() > 1e-2
    out, res = run_begin_batch(cb, batch, in_train=False)
    assert out is batch and res is None
    assert AffineAugmentCallback._order > 0  # after the move to the device


def test_byte_to_float():
    x = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)
    test_eq(byte_to_float(x), x.float() / 255.)
    f = torch.rand(2, 3)
    assert byte_to_float(f) is f
    out, res = run_begin_batch(ByteToFloatCallback(), x, in_train=False)
    test_eq(out, x.float() / 255.)
    assert res is None
    assert 0 < ByteToFloatCallback._order < AffineAugmentCallback._order


# --- PIL transforms: mode, size, _order ---------------------------------------------------------------

SIZE_TFMS = [GeneralCrop(24), GeneralCrop((24, 16)), CenterCrop(24), RandomResizedCrop(24),
             RandomResizedCrop((24, 16), scale=(0.35, 1)), PilTiltRandomCrop(24, magnitude=0.3),
             PilTiltRandomCrop((24, 16), crop_size=30, magnitude=0.2)]

@pytest.mark.parametrize('mode', ['RGB', 'L'])
@pytest.mark.parametrize('wh', [(40, 40), (64, 30), (30, 64)])
def test_pil_transforms_keep_mode_and_give_size(mode, wh):
    random.seed(0)
    img = rand_img(*wh, mode=mode)
    for t in SIZE_TFMS:
        for _ in range(5):
            out = t(img)
            test_eq(out.mode, mode)
            test_eq(out.size, t.size)        # PIL (width, height)
    for t in (PilRandomFlip(p=1.), PilRandomFlip(p=0.), PilRandomDihedral(p=1.), PilRandomDihedral(p=0.)):
        for _ in range(10):
            out = t(img)
            test_eq(out.mode, mode)
            assert out.size in (wh, wh[::-1])
            if not isinstance(t, PilRandomDihedral): test_eq(out.size, wh)


def test_size_is_height_width_like_resize_fixed():
    img = rand_img(50, 40)
    test_eq(GeneralCrop((20, 30))(img).size, (30, 20))
    test_eq(GeneralCrop((20, 30))(img).size, ResizeFixed((20, 30))(img).size)
    test_eq(process_sz(7), (7, 7))
    test_eq(process_sz((3, 5)), (5, 3))
    for bad in [0, (3,), (1, 2, 3), (-1, 4), 'ab']:
        test_raises(lambda: process_sz(bad), ValueError, 'size')


def test_orders():
    for t in (PilTransform, PilRandomFlip, PilRandomDihedral, GeneralCrop, CenterCrop, RandomResizedCrop, PilTiltRandomCrop):
        test_eq(t._order, 11)
    assert getattr(make_rgb, '_order', 0) < ResizeFixed._order < PilTransform._order   # RGB first, then resize
    assert ResizeFixed._order < PilTransform._order < to_byte_tensor._order < np_to_float._order
    test_eq(np_to_float._order, 30)


def test_flip_and_dihedral_content():
    img = rand_img(20, 12)
    a = np.asarray(img)
    test_eq(np.asarray(PilRandomFlip(p=1.)(img)), a[:, ::-1])
    assert PilRandomFlip(p=0.)(img) is img
    assert PilRandomDihedral(p=0.)(img) is img
    sq = rand_img(16, 16)
    all8 = [sq] + [sq.transpose(t) for t in DIHEDRAL]
    keys = {o.tobytes() for o in all8}
    test_eq(len(keys), 8)
    random.seed(1)
    counts = {}
    for _ in range(4000):
        k = PilRandomDihedral(p=1.)(sq).tobytes()
        counts[k] = counts.get(k, 0) + 1
    assert set(counts) == keys and all(400 < c < 600 for c in counts.values()), sorted(counts.values())
    random.seed(2)
    changed = sum(PilRandomDihedral(p=0.5)(sq) is not sq for _ in range(4000)) / 4000   # p * 7/8 change
    assert abs(changed - 0.5 * 7 / 8) < 0.04, changed


# --- crops ------------------------------------------------------------------------------------------------

def inside(b, w, h): return 0 <= b[0] < b[2] <= w and 0 <= b[1] < b[3] <= h


@pytest.mark.parametrize('wh', [(1000, 20), (20, 1000), (3000, 7), (7, 3000), (300, 100), (100, 300), (2, 1), (1, 1)])
def test_random_resized_crop_stays_inside(wh):
    w, h = wh
    rrc = RandomResizedCrop(16)
    random.seed(0)
    for _ in range(300):
        b = rrc.get_corners(w, h, w, h)
        assert inside(b, w, h), (wh, b)
    out = rrc(rand_img(w, h))
    test_eq(out.size, (16, 16))


@pytest.mark.parametrize('wh', [(1000, 20), (20, 1000), (3000, 7)])
def test_random_resized_crop_falls_back(wh):
    w, h = wh
    rrc = RandomResizedCrop(16)
    fb = rrc.fallback_corners(w, h)
    random.seed(0)
    test_eq({rrc.get_corners(w, h, w, h) for _ in range(50)}, {fb})   # no draw can fit: always the fallback
    assert inside(fb, w, h)
    bw, bh = fb[2] - fb[0], fb[3] - fb[1]
    if w > h: test_eq((bh, bw), (h, round(h * 4 / 3)))   # full height, widest allowed ratio, centred
    else:     test_eq((bw, bh), (w, round(w * 4 / 3)))
    test_near((fb[0] + fb[2]) / 2, w / 2, eps=1)
    test_near((fb[1] + fb[3]) / 2, h / 2, eps=1)


def test_random_resized_crop_fallback_after_tries(monkeypatch):
    "When every draw fails (forced here), exactly `tries` draws are made, then the fallback is used."
    rrc = RandomResizedCrop(16, tries=7)
    calls = []
    def too_big(a, b):
        calls.append((a, b))
        return 50. if (a, b) == rrc.scale else 0.   # an area 50 times the image's: never fits
    monkeypatch.setattr(random, 'uniform', too_big)
    test_eq(rrc.get_corners(160, 120, 160, 120), rrc.fallback_corners(160, 120))
    test_eq(sum(c == rrc.scale for c in calls), 7)
    test_eq(rrc.fallback_corners(160, 120), (0, 0, 160, 120))   # 4/3 is inside ratio: the whole image


def test_random_resized_crop_area_and_ratio():
    rrc = RandomResizedCrop(16, scale=(0.2, 0.5), ratio=(0.5, 2.))
    random.seed(3)
    for _ in range(500):
        b = rrc.get_corners(200, 200, 200, 200)
        bw, bh = b[2] - b[0], b[3] - b[1]
        assert inside(b, 200, 200)
        assert 0.2 * 0.95 <= bw * bh / 200**2 <= 0.5 * 1.05
        assert 0.5 * 0.97 <= bw / bh <= 2 * 1.03
    test_raises(lambda: RandomResizedCrop(16, scale=(0.5, 0.2)), ValueError, 'scale')
    test_raises(lambda: RandomResizedCrop(16, ratio=(0, 1)), ValueError, 'ratio')


def test_center_crop_and_general_crop():
    img = rand_img(100, 60)
    cc = CenterCrop(20, scale=1.25)
    test_eq(cc.default_crop_size(100, 60), (48, 48))        # the centre 1/1.25 of the largest square
    b = cc.get_corners(100, 60, *cc.default_crop_size(100, 60))
    test_near(b, (26, 6, 74, 54))
    test_eq(cc(img).tobytes(), img.resize((20, 20), PIL.Image.Resampling.BILINEAR, box=b).tobytes())
    test_eq(default_crop_size(100, 60), (60, 60))
    test_near(GeneralCrop(10).get_corners(100, 60, 60, 60), (20, 0, 80, 60))
    sq = rand_img(32, 32)
    test_eq(GeneralCrop(32)(sq).tobytes(), sq.tobytes())                   # whole image at its own size


# --- perspective ------------------------------------------------------------------------------------------

def apply_persp(c, x, y):
    a, b, cc, d, e, f, g, h = c
    return ((a * x + b * y + cc) / (g * x + h * y + 1), (d * x + e * y + f) / (g * x + h * y + 1))


def test_find_coeffs_maps_the_corners():
    rng = random.Random(0)
    targ = ((0, 0), (0, 64), (64, 64), (64, 0))
    for _ in range(20):
        src = [(x + rng.uniform(-10, 10), y + rng.uniform(-10, 10)) for x, y in ((5, 5), (5, 100), (120, 110), (110, 0))]
        c = find_coeffs(src, targ)
        test_eq(len(c), 8)
        test_near(torch.tensor([apply_persp(c, *t) for t in targ], dtype=torch.float64),
                  torch.tensor(src, dtype=torch.float64), eps=1e-8)
    # a scaling is recovered exactly: no perspective terms
    c = find_coeffs(((0, 0), (0, 20), (40, 20), (40, 0)), ((0, 0), (0, 10), (20, 10), (20, 0)))
    test_near(torch.tensor(c), torch.tensor([2., 0, 0, 0, 2, 0, 0, 0]), eps=1e-9)
    test_raises(lambda: find_coeffs(((0, 0),) * 3, targ), ValueError, '4 source')


def test_warp_of_a_rectangle_is_a_crop():
    img = rand_img(80, 60)
    out = warp(img, (30, 40), ((10, 5), (10, 55), (70, 55), (70, 5)), resample=PIL.Image.Resampling.NEAREST)
    ref = img.transform((40, 30), PIL.Image.Transform.EXTENT, (10, 5, 70, 55), resample=PIL.Image.Resampling.NEAREST)
    test_eq(out.size, (40, 30))
    assert np.mean(np.asarray(out) != np.asarray(ref)) < 0.02


def test_tilt_corners_stay_inside():
    random.seed(4)
    for t in (PilTiltRandomCrop(16, crop_size=50, magnitude=0.5), PilTiltRandomCrop(16, magnitude=1.)):
        for _ in range(500):
            pts = t.get_corners(80, 60)
            assert all(0 <= x <= 80 and 0 <= y <= 60 for x, y in pts), pts
    test_eq(PilTiltRandomCrop(16).get_corners(40, 40), [(0, 0), (0, 40), (40, 40), (40, 0)])


# --- bytes to floats ----------------------------------------------------------------------------------

def test_np_to_float_matches_lesson_08():
    for mode, c in (('RGB', 3), ('L', 1)):
        img = rand_img(13, 7, mode=mode)
        x = np_to_float(img)
        test_eq((x.shape, x.dtype), ((c, 7, 13), torch.float32))
        test_eq(x, to_float_tensor(to_byte_tensor(img)))
        assert 0 <= x.min() and x.max() <= 1


# --- in the Learner of lesson 09b -----------------------------------------------------------------------

def test_callbacks_in_a_learner():
    "Bytes become floats in every batch; the affine changes training batches only; the loop runs as usual."
    from torch import nn
    from torch.utils.data import TensorDataset
    from exp.nb_10 import Callback, DataBunch, Learner, get_dls
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (24, 3, 8, 8), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 2, (24,), generator=g)
    ds = TensorDataset(x, y)
    data = DataBunch(*get_dls(ds, ds, 8), c_in=3, c_out=2)

    class Raw(Callback):
        _order = -5
        def begin_fit(self): self.seen = []
        def begin_batch(self): self.seen.append(self.run.xb.clone())
    class Seen(Callback):
        _order = 10
        def begin_fit(self): self.seen = []
        def begin_batch(self): self.seen.append((self.run.in_train, self.run.xb.clone()))

    torch.manual_seed(0)
    raw, seen = Raw(), Seen()
    learn = Learner(nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 2)), data, F.cross_entropy, lr=0.01,
                    cbs=[AffineAugmentCallback(max_rotate=30.), ByteToFloatCallback(), raw, seen])
    learn.fit(1)
    n_train, n_valid = len(data.train_dl), len(data.valid_dl)
    test_eq(len(seen.seen), n_train + n_valid)
    for xb_raw, (in_train, xb) in zip(raw.seen, seen.seen):
        test_eq(xb.dtype, torch.float32)
        if in_train: assert (xb - xb_raw.float() / 255).abs().max() > 0.05
        else: test_eq(xb, xb_raw.float() / 255)
    test_eq(sum(t for t, _ in seen.seen), n_train)


def test_affine_batch_refuses_bytes_and_says_to_convert_first():
    x = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)
    mats = torch.eye(3).expand(2, 3, 3)
    e = caught(lambda: affine_batch(x, mats), TypeError, 'byte_to_float')
    assert 'uint8' in str(e)
    test_near(affine_batch(byte_to_float(x), mats), byte_to_float(x), eps=1e-5)    # converted, it works
