"""Lesson 08: the data block API (files, item lists, transforms, splits, labels, DataBunch, normalisation, CNN)."""
import multiprocessing as mp
import os
import pickle
import random
from functools import partial
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch
from torch import nn
import torch.nn.functional as F
from torch.utils.data import DataLoader

from raising import caught
from exp.nb_00 import URLs, test_eq, test_near, test_near_zero, test_raises, untar_data
from exp.nb_08 import (CategoryProcessor, DataBlockError, DataBunch, ImageFileError, ImageList, ItemList,
                       LabeledData, NormalizeChan, ResizeFixed, SplitData, Transform, UnknownLabelError,
                       channel_stats, compose, conv_bn_layer, get_cnn_model, get_files, get_learn_run,
                       grandparent_splitter, image_extensions, label_by_func, make_rgb, model_summary,
                       parent_labeler, prev_pow_2, random_splitter, setify, split_by_func, to_byte_tensor,
                       to_float_tensor, uniqueify)


# --- helpers -------------------------------------------------------------------------------------------

def touch_tree(root, names):
    for n in names:
        (root/n).parent.mkdir(parents=True, exist_ok=True)
        (root/n).write_bytes(b'')
    return root

def rel(root, paths): return [p.relative_to(root).as_posix() for p in paths]


@pytest.fixture(scope='module')
def imagenette():
    return untar_data(URLs.IMAGENETTE_160)


@pytest.fixture(scope='module')
def small_split(imagenette):
    "A real Imagenette subset at 32 px: every 60th file (about 160 train / 65 valid items, all 10 classes)."
    tfms = [make_rgb, ResizeFixed(32), to_byte_tensor, to_float_tensor]
    il = ImageList.from_files(imagenette, tfms=tfms)
    il = il.new(il.items[::60])
    sd = SplitData.split_by_func(il, partial(grandparent_splitter, valid_name='val'))
    return label_by_func(sd, parent_labeler, proc_y=CategoryProcessor())


# --- get_files -----------------------------------------------------------------------------------------

TREE = ['a.jpg', 'b.PNG', 'c.JPEG', 'notes.txt', 'README', '.hidden.jpg', 'sub/d.jpeg', 'sub/deeper/e.gif',
        'sub/.f.png', '.cache/g.jpg', 'other/h.jpg', 'other/.git/i.png']

def test_get_files_extensions_recurse_hidden(tmp_path):
    root = touch_tree(tmp_path, TREE)
    test_eq(rel(root, get_files(root, image_extensions, recurse=True)),
            ['a.jpg', 'b.PNG', 'c.JPEG', 'other/h.jpg', 'sub/d.jpeg', 'sub/deeper/e.gif'])
    test_eq(rel(root, get_files(root, image_extensions)), ['a.jpg', 'b.PNG', 'c.JPEG'])   # one folder only
    test_eq(rel(root, get_files(root, ['.png', 'GIF'], recurse=True)), ['b.PNG', 'sub/deeper/e.gif'])
    test_eq(rel(root, get_files(root, '.txt')), ['notes.txt'])
    test_eq(rel(root, get_files(root)), ['README', 'a.jpg', 'b.PNG', 'c.JPEG', 'notes.txt'])   # no filter, no hidden


def test_get_files_include(tmp_path):
    root = touch_tree(tmp_path, TREE)
    test_eq(rel(root, get_files(root, image_extensions, recurse=True, include=['sub'])),
            ['a.jpg', 'b.PNG', 'c.JPEG', 'sub/d.jpeg', 'sub/deeper/e.gif'])
    test_eq(rel(root, get_files(root, image_extensions, recurse=True, include={'other', 'sub'})),
            ['a.jpg', 'b.PNG', 'c.JPEG', 'other/h.jpg', 'sub/d.jpeg', 'sub/deeper/e.gif'])
    # an explicitly included hidden folder is walked (only its own hidden content is skipped)
    test_eq(rel(root, get_files(root, image_extensions, recurse=True, include='.cache')),
            ['a.jpg', 'b.PNG', 'c.JPEG', '.cache/g.jpg'])


def test_get_files_paths_equal_plain_join(tmp_path):
    root = touch_tree(tmp_path, TREE)
    for p in get_files(root, recurse=True):
        test_eq(p, Path(str(p)))
        assert isinstance(p, Path) and p.exists()


def test_get_files_errors(tmp_path):
    touch_tree(tmp_path, ['x/a.jpg'])
    test_raises(lambda: get_files(tmp_path/'missing'), DataBlockError, contains='missing')
    test_raises(lambda: get_files(tmp_path/'x'/'a.jpg'), DataBlockError, contains='a.jpg')
    test_raises(lambda: get_files(tmp_path, include=['x']), DataBlockError, contains='recurse')
    test_raises(lambda: get_files(tmp_path, recurse=True, include=['y']), DataBlockError, contains="'y'")


def test_get_files_on_imagenette(imagenette):
    files = get_files(imagenette, image_extensions, recurse=True)
    test_eq(len(files), 13_394)
    test_eq(files, sorted(files))
    test_eq(len(get_files(imagenette, image_extensions, recurse=True, include=['train'])), 9_469)


def test_setify_and_uniqueify():
    test_eq(setify('aa'), {'aa'})
    test_eq(setify(None), set())
    test_eq(setify((1, 2, 1)), {1, 2})
    test_eq(uniqueify([3, 1, 3, 2, 1]), [3, 1, 2])
    test_eq(uniqueify([3, 1, 3, 2, 1], sort=True), [1, 2, 3])


# --- empty folders and bad images -------------------------------------------------------------------

def test_empty_folder_error_names_folder_and_extensions(tmp_path):
    (tmp_path/'empty').mkdir()
    e = caught(lambda: ImageList.from_files(tmp_path/'empty'), DataBlockError)
    assert str(tmp_path/'empty') in str(e) and '.jpeg' in str(e)
    touch_tree(tmp_path, ['texts/a.txt', 'texts/b.md'])
    e = caught(lambda: ImageList.from_files(tmp_path/'texts', extensions=['.png']), DataBlockError)
    assert 'texts' in str(e) and '.png' in str(e)


@pytest.fixture
def bad_images(tmp_path, imagenette):
    good = sorted((imagenette/'train'/'n01440764').iterdir())[0]
    rng = np.random.default_rng(0)
    (tmp_path/'junk.jpg').write_bytes(rng.integers(0, 256, 3_000, dtype=np.uint8).tobytes())
    data = good.read_bytes()
    (tmp_path/'truncated.jpg').write_bytes(data[:len(data) // 2])
    (tmp_path/'empty.jpg').write_bytes(b'')
    (tmp_path/'good.jpg').write_bytes(data)
    return tmp_path


@pytest.mark.parametrize('name', ['junk.jpg', 'truncated.jpg', 'empty.jpg'])
def test_bad_image_error_names_the_file(bad_images, name):
    il = ImageList.from_files(bad_images, tfms=[make_rgb, ResizeFixed(32), to_byte_tensor, to_float_tensor])
    i = [p.name for p in il.items].index(name)
    e = caught(lambda: il[i], ImageFileError, contains=str(bad_images/name))
    test_eq(e.path, bad_images/name)
    assert isinstance(e, DataBlockError)
    test_eq(il[[p.name for p in il.items].index('good.jpg')].shape, (3, 32, 32))   # the good file still works


def test_bad_image_in_a_dataloader_is_reported_with_its_path(bad_images):
    il = ImageList.from_files(bad_images, tfms=[make_rgb, ResizeFixed(16), to_byte_tensor, to_float_tensor])
    sd = SplitData(il, il.new([]))
    ll = label_by_func(sd, lambda fn: 'x', proc_y=CategoryProcessor())
    dl = DataLoader(ll.train, batch_size=4)
    e = caught(lambda: list(dl), ImageFileError)
    assert any(str(bad_images/n) in str(e) for n in ['junk.jpg', 'truncated.jpg', 'empty.jpg']), str(e)


# --- compose and ItemList ----------------------------------------------------------------------------

def test_compose_runs_in_order_regardless_of_list_order():
    log = []
    def mk(name, order=None):
        def f(x): log.append(name); return x + [name]
        if order is not None: f._order = order
        return f
    fs = [mk('c', 30), mk('a'), mk('b', 10), mk('d', 40)]
    for perm in [fs, fs[::-1], [fs[2], fs[0], fs[3], fs[1]]]:
        log.clear()
        test_eq(compose([], perm), ['a', 'b', 'c', 'd'])
        test_eq(log, ['a', 'b', 'c', 'd'])
    test_eq(compose(2, [lambda x, k: x * k], 5), 10)            # extra args go to each function
    test_eq(compose(2, [lambda x, k=1: x + k], k=3), 5)


def test_item_list_transforms_in_order():
    class Twice(Transform):
        _order = 5
        def __call__(self, x): return x * 2
    def plus1(x): return x + 1
    for tfms in ([Twice(), plus1], [plus1, Twice()]):
        test_eq(ItemList([1, 2, 3], tfms=tfms)[[0, 2]], [4, 8])    # plus1 (order 0) first, then Twice


def test_image_pipeline_order_does_not_matter(imagenette):
    fn = sorted((imagenette/'val'/'n03888257').iterdir())[0]
    tfms = [make_rgb, ResizeFixed(40), to_byte_tensor, to_float_tensor]
    ref = compose(PIL.Image.open(fn), tfms)
    rng = random.Random(0)
    for _ in range(3):
        t = tfms[:]; rng.shuffle(t)
        test_eq(ImageList([fn], tfms=t)[0], ref)


def test_item_list_indexing():
    il = ItemList(list(range(10)), path='p', tfms=[lambda x: x * 10])
    test_eq(il[3], 30)
    test_eq(il[-1], 90)
    test_eq(il[2:5], [20, 30, 40])
    test_eq(il[[1, 1, 0]], [10, 10, 0])
    test_eq(il[[i % 3 == 0 for i in range(10)]], [0, 30, 60, 90])
    test_eq(il[np.array([i < 2 for i in range(10)])], [0, 10])
    test_eq(il[np.int64(4)], 40)
    test_eq(il[torch.tensor(5)], 50)
    test_eq(il[torch.tensor([6, 7])], [60, 70])
    test_eq(il[torch.tensor([6])], [60])                  # a 1-element list is still a list
    test_eq(len(il), 10)
    test_raises(lambda: il[[True, False]], IndexError)
    test_raises(lambda: il['a'], TypeError)
    assert 'Path: p' in repr(il)


def test_item_list_of_lists_indexes_by_idx_not_by_result_type():
    il = ItemList([[1, 2], [3, 4]])
    test_eq(il[0], [1, 2])                # one item that happens to be a list
    test_eq(il[[0, 1]], [[1, 2], [3, 4]])


def test_new_keeps_class_path_tfms():
    class MyList(ItemList): pass
    il = MyList(['a'], path='somewhere', tfms=[str.upper])
    n = il.new(['b', 'c'])
    test_eq((type(n), n.path, n.tfms, n[1]), (MyList, Path('somewhere'), [str.upper], 'C'))
    test_eq(type(il.new([], cls=ItemList)), ItemList)


def test_transform_errors_name_the_item():
    def boom(x): raise RuntimeError('nope')
    e = caught(lambda: ItemList(['item-7'], tfms=boom)[0], RuntimeError)
    assert any('item-7' in n for n in getattr(e, '__notes__', []))


# --- tensor transforms (torchvision / PIL as oracles) -----------------------------------------------------

def test_byte_and_float_tensors_match_torchvision(imagenette):
    from torchvision.transforms.v2 import functional as TF
    fn = sorted((imagenette/'train'/'n03394916').iterdir())[3]
    img = make_rgb(PIL.Image.open(fn))
    b = to_byte_tensor(img)
    test_eq((b.shape, b.dtype), ((3, 160, 160), torch.uint8))
    test_eq(b, TF.pil_to_tensor(img))
    test_near(to_float_tensor(b), TF.to_dtype(TF.pil_to_tensor(img), torch.float32, scale=True), eps=1e-6)
    r = ResizeFixed((48, 64))(img)
    test_eq(r.size, (64, 48))                                    # PIL is (width, height)
    test_eq(np.array(r), np.array(img.resize((64, 48), PIL.Image.BILINEAR)))


def test_make_rgb_and_byte_modes():
    gray = PIL.Image.fromarray(np.arange(12, dtype=np.uint8).reshape(3, 4))
    test_eq(to_byte_tensor(gray).shape, (1, 3, 4))
    rgb = make_rgb(gray)
    test_eq(to_byte_tensor(rgb).shape, (3, 3, 4))
    test_eq(to_byte_tensor(rgb)[1], to_byte_tensor(gray)[0])
    assert make_rgb(rgb) is rgb                                  # no copy of an RGB image
    i32 = PIL.Image.fromarray(np.zeros((2, 2), dtype=np.int32))
    test_raises(lambda: to_byte_tensor(i32), DataBlockError, contains="'I'")


# --- splitters ------------------------------------------------------------------------------------------

def assert_partition(items, train, valid, dropped=()):
    assert not set(train) & set(valid), 'an item is in both sets'
    test_eq(len(train) + len(valid) + len(dropped), len(items))
    test_eq(set(train) | set(valid) | set(dropped), set(items))


def test_grandparent_splitter_partitions(imagenette):
    items = get_files(imagenette, image_extensions, recurse=True)
    train, valid = split_by_func(items, partial(grandparent_splitter, valid_name='val'))
    assert_partition(items, train, valid)
    test_eq((len(train), len(valid)), (9_469, 3_925))
    assert all(p.parent.parent.name == 'val' for p in valid)
    fns = [Path(f'd/{s}/c/{i}.jpg') for i, s in enumerate(['train', 'valid', 'test', 'train'])]
    tr, va = split_by_func(fns, grandparent_splitter)
    test_eq((tr, va), ([fns[0], fns[3]], [fns[1]]))
    assert_partition(fns, tr, va, dropped=[fns[2]])


def test_random_splitter_partitions_seeded_order_free():
    items = [Path(f'x/{c}/img_{i:05d}.jpg') for c in 'abc' for i in range(2_000)]
    f = partial(random_splitter, p_valid=0.25, seed=7)
    train, valid = split_by_func(items, f)
    assert_partition(items, train, valid)
    assert abs(len(valid) / len(items) - 0.25) < 0.02, len(valid)
    test_eq(split_by_func(items, f), (train, valid))                                   # deterministic
    shuffled = items[:]; random.Random(1).shuffle(shuffled)
    test_eq(set(split_by_func(shuffled, f)[1]), set(valid))                            # order-independent
    assert set(split_by_func(items, partial(f, seed=8))[1]) != set(valid)              # the seed matters
    names = lambda c: {p.name for p in valid if p.parent.name == c}
    assert names('a') != names('b')                     # the same file names in other folders split independently
    test_eq(split_by_func(items, partial(random_splitter, p_valid=0.))[1], [])
    test_eq(split_by_func(items, partial(random_splitter, p_valid=1.))[0], [])


def test_split_by_func_custom_function_and_split_data():
    items = list(range(20))
    train, valid = split_by_func(items, lambda o: None if o % 5 == 0 else o % 2 == 1)
    assert_partition(items, train, valid, dropped=[0, 5, 10, 15])
    test_eq(valid, [1, 3, 7, 9, 11, 13, 17, 19])
    il = ItemList(items, path='here', tfms=[str])
    sd = SplitData.split_by_func(il, lambda o: o >= 15)
    test_eq((sd.train.items, sd.valid.items), (list(range(15)), list(range(15, 20))))
    test_eq((type(sd.valid), sd.valid.path, sd.valid[0]), (ItemList, Path('here'), '15'))
    test_eq(sd.path, Path('here'))                                   # forwarded to train
    sd2 = pickle.loads(pickle.dumps(sd))
    test_eq(sd2.valid.items, sd.valid.items)


# --- labelling and processors -----------------------------------------------------------------------

def split_of(train_labels, valid_labels):
    t = ItemList([f'{l}/{i}' for i, l in enumerate(train_labels)])
    v = ItemList([f'{l}/{i}' for i, l in enumerate(valid_labels)])
    return SplitData(t, v)

def first_part(s): return s.split('/')[0]


def test_category_vocab_comes_from_train_only():
    sd = split_of(['dog', 'cat', 'dog', 'bird'], ['cat', 'cat', 'dog'])
    ll = label_by_func(sd, first_part, proc_y=CategoryProcessor())
    proc = ll.train.proc_y[0]
    assert proc is ll.valid.proc_y[0]
    test_eq(proc.vocab, ['bird', 'cat', 'dog'])
    test_eq(ll.train.y.items, [2, 1, 2, 0])
    test_eq(ll.valid.y.items, [1, 1, 2])
    test_eq(ll.valid[2], ('dog/2', 2))
    test_eq((ll.valid.y_obj(2), ll.valid.y_obj([0, 2])), ('dog', ['cat', 'dog']))


def test_valid_only_label_raises_naming_it():
    sd = split_of(['dog', 'cat'], ['cat', 'zebra', 'zebra', 'emu'])
    e = caught(lambda: label_by_func(sd, first_part, proc_y=CategoryProcessor()), UnknownLabelError)
    assert "'zebra'" in str(e) and "'emu'" in str(e) and 'training' in str(e)
    assert isinstance(e, DataBlockError)


def test_valid_only_label_maps_to_unknown_when_asked():
    sd = split_of(['dog', 'cat'], ['cat', 'zebra'])
    ll = label_by_func(sd, first_part, proc_y=CategoryProcessor(unknown='#na#'))
    test_eq(ll.train.proc_y[0].vocab, ['#na#', 'cat', 'dog'])
    test_eq(ll.valid.y.items, [1, 0])
    test_eq(ll.valid.y_obj(1), '#na#')


def test_category_processor_needs_a_vocab_to_deprocess():
    test_raises(lambda: CategoryProcessor().deproc1(0), DataBlockError, contains='vocab')


def test_labeled_data_length_mismatch():
    test_raises(lambda: LabeledData(ItemList([1, 2]), ItemList([1])), DataBlockError, contains='2 inputs')


# --- DataBunch, normalisation, model -------------------------------------------------------------------

def test_to_databunch_on_real_imagenette(small_split):
    ll = small_split
    test_eq(ll.train.proc_y[0].vocab, sorted(p.name for p in (untar_data(URLs.IMAGENETTE_160)/'train').iterdir()))
    torch.manual_seed(0)
    data = ll.to_databunch(16)
    assert isinstance(data, DataBunch)
    test_eq((data.c_in, data.c_out, data.c), (3, 10, 10))
    assert data.train_ds is ll.train and data.valid_ds is ll.valid
    xb, yb = next(iter(data.train_dl))
    test_eq((xb.shape, xb.dtype, yb.shape, yb.dtype), ((16, 3, 32, 32), torch.float32, (16,), torch.int64))
    assert 0 <= xb.min() and xb.max() <= 1
    test_eq(next(iter(data.valid_dl))[0].shape[0], 32)                  # validation batches are 2*bs
    test_eq(ll.to_databunch(8, c_in=5, c_out=7).c_in, 5)               # explicit values win


def test_to_databunch_without_tensor_transforms_asks_for_c_in(imagenette):
    il = ImageList.from_files(imagenette/'val', include=['n01440764'])
    sd = SplitData(il.new(il.items[:4]), il.new(il.items[4:6]))
    ll = label_by_func(sd, parent_labeler, proc_y=CategoryProcessor())
    test_raises(lambda: ll.to_databunch(2), DataBlockError, contains='c_in')


def test_normalize_zero_mean_unit_std_on_measured_batch(small_split):
    torch.manual_seed(0)
    xb, _ = next(iter(small_split.to_databunch(64).train_dl))
    norm = NormalizeChan.from_batch(xb)
    xn = norm(xb)
    test_near_zero(xn.mean((0, 2, 3)), 1e-4)
    test_near(xn.std((0, 2, 3)), torch.ones(3), eps=1e-4)
    test_near(norm.decode(xn), xb, eps=1e-5)
    m, s = channel_stats(xb)
    test_eq(m.shape, (3,))
    assert (0.3 < m).all() and (m < 0.6).all() and (0.15 < s).all() and (s < 0.4).all()   # real photos


def test_normalize_chan_has_no_device_at_import_and_is_picklable():
    norm = NormalizeChan([0.5, 0.5, 0.5], [0.25, 0.25, 0.25])
    test_eq(norm.mean.device.type, 'cpu')
    x = torch.full((2, 3, 4, 4), 0.75)
    test_near(pickle.loads(pickle.dumps(norm))(x), torch.ones_like(x), eps=1e-6)


def test_prev_pow_2():
    test_eq([prev_pow_2(x) for x in [1, 2, 3, 7, 8, 9, 27, 100, 2**40 + 1]], [1, 2, 2, 4, 8, 8, 16, 64, 2**40])


@pytest.mark.parametrize('c_in, first', [(1, 8), (3, 16), (4, 32)])
def test_cnn_stem_sized_from_c_in(c_in, first):
    data = DataBunch(None, None, c_in=c_in, c_out=7)
    torch.manual_seed(0)
    model = get_cnn_model(data, [32, 64], conv_bn_layer)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    test_eq([(c.in_channels, c.out_channels, c.stride[0]) for c in convs],
            [(c_in, first, 1), (first, first * 2, 2), (first * 2, first * 4, 2), (first * 4, 32, 2), (32, 64, 2)])
    assert all(c.kernel_size == (3, 3) for c in convs)
    test_eq(model(torch.randn(2, c_in, 32, 32)).shape, (2, 7))


def test_model_summary_shapes(small_split):
    torch.manual_seed(0)
    data = small_split.to_databunch(8)
    norm = NormalizeChan([0.5] * 3, [0.25] * 3)
    from exp.nb_08 import AvgStatsCallback, BatchTransformXCallback, DeviceCallback, accuracy
    learn, run = get_learn_run([32, 64], data, 0.1, conv_bn_layer,
                               cbs=[partial(AvgStatsCallback, accuracy), DeviceCallback(torch.device('cpu')),
                                    partial(BatchTransformXCallback, norm)])
    bn = learn.model[0][2]
    before = bn.running_mean.clone()
    rows = model_summary(run, learn, data, print_out=False)
    test_eq([s for _, s in rows], [(16, 16, 32, 32), (16, 32, 16, 16), (16, 64, 8, 8), (16, 32, 4, 4),
                                   (16, 64, 2, 2), (16, 64, 1, 1), (16, 64), (16, 10)])
    test_eq(bn.running_mean, before)                     # eval mode: batch norm statistics untouched
    assert learn.model.training                          # and the mode is restored
    all_rows = model_summary(run, learn, data, find_all=True, print_out=False)
    test_eq([type(m).__name__ for m, _ in all_rows], ['Conv2d'] * 5 + ['Linear'])


# --- workers ----------------------------------------------------------------------------------------------

def test_labeled_data_pickles(small_split):
    ll2 = pickle.loads(pickle.dumps(small_split.valid))
    test_eq(ll2.y.items, small_split.valid.y.items)
    test_eq(ll2[0][0], small_split.valid[0][0])


def test_dataloader_with_spawned_worker(small_split):
    "A spawned worker (macOS, Windows) must rebuild the dataset by import: no lambdas, no notebook classes."
    dl = DataLoader(small_split.valid, batch_size=8, num_workers=1, multiprocessing_context=mp.get_context('spawn'))
    xb, yb = next(iter(dl))
    test_eq(xb, torch.stack([small_split.valid[i][0] for i in range(8)]))
    test_eq(yb.tolist(), small_split.valid.y.items[:8])


def test_get_batch_and_model_summary_with_the_learner(small_split):
    "Lesson 09b: `get_batch` (07a) works on the one Learner as is, `model_summary(learn)` is lesson 08's summary"
    from exp.nb_09b import (Learner, DeviceCallback, BatchTransformXCallback, get_batch,
                            model_summary as learner_summary)
    torch.manual_seed(0)
    data = small_split.to_databunch(8)
    norm = NormalizeChan([0.5] * 3, [0.25] * 3)
    learn = Learner(get_cnn_model(data, [32, 64], conv_bn_layer), data, F.cross_entropy,
                    cb_funcs=[partial(DeviceCallback, torch.device('cpu')), partial(BatchTransformXCallback, norm)])
    raw, _ = next(iter(data.valid_dl))
    xb, yb = get_batch(data.valid_dl, learn)
    test_eq(xb, norm(raw))                                # through the learner's begin_batch callbacks
    assert 'xb' not in learn.__dict__ and learn.in_train is False    # the learner is left as it was
    rows = learner_summary(learn, print_out=False)
    test_eq([s for _, s in rows], [(16, 16, 32, 32), (16, 32, 16, 16), (16, 64, 8, 8), (16, 32, 4, 4),
                                   (16, 64, 2, 2), (16, 64, 1, 1), (16, 64), (16, 10)])
    test_eq(len(learner_summary(learn, find_all=True, print_out=False)), 6)


def test_random_splitter_same_answer_for_str_and_path():
    from exp.nb_08 import random_splitter as rs
    items = [Path(f'data/train/{c}/img_{i:04d}.jpg') for c in 'ab' for i in range(500)]
    for seed in (0, 3):
        test_eq([rs(str(p), seed=seed) for p in items], [rs(p, seed=seed) for p in items])
    # the docstring: only the name and the folder name count, wherever the folder lives
    test_eq([rs(f'/elsewhere/{p.parent.name}/{p.name}') for p in items], [rs(p) for p in items])
