"Lesson 08's exercises: splitting by folder and by function, the labels' vocab, PIL images as tensors (against NumPy's view)"
from pathlib import Path

import numpy as np
import PIL.Image
import torch

from exercises import close, equal, exercise, expect


@exercise('08.1')
def grandparent(grandparent_splitter):
    "Paths as str and Path: the grandparent folder decides, not the parent; other folders give None; other names"
    cases = [('data/train/cat/1.jpg', {}, False), (Path('data/valid/dog/2.png'), {}, True),
             ('data/test/cat/3.jpg', {}, None), ('/x/valid/train/4.jpg', {}, True), ('data/train/valid/5.jpg', {}, False),
             ('valid/6.jpg', {}, None), ('data/val/cat/7.jpg', {'valid_name': 'val', 'train_name': 'trn'}, True),
             ('data/trn/cat/8.jpg', {'valid_name': 'val', 'train_name': 'trn'}, False),
             ('data/train/cat/9.jpg', {'valid_name': 'val', 'train_name': 'trn'}, None)]
    for fn, kw, want in cases:
        args = ', '.join([repr(fn)] + [f'{k}={v!r}' for k, v in kw.items()])
        got = grandparent_splitter(fn, **kw)
        ok = got is None if want is None else isinstance(got, (bool, np.bool_)) and bool(got) == want
        expect(ok,
               f'your `grandparent_splitter({args})` is {got!r}, expected {want!r}'
               ' (True for the validation folder, False for the training one, None for any other)')


@exercise('08.2')
def split_items(split_by_func):
    "Ten items, a function giving True, False or None: the two lists, in the items' order, None left out"
    items = [f'item{i}' for i in range(10)]
    f = lambda o: None if int(o[4:]) % 4 == 3 else int(o[4:]) % 3 == 0          # valid: 0, 6, 9; left out: 3, 7
    got = split_by_func(items, f)
    expect(isinstance(got, (tuple, list)) and len(got) == 2,
           f'your `split_by_func` returned {type(got).__name__} {got!r:.60}, expected a pair (train, valid)')
    train, valid = got
    want_train = [o for o in items if f(o) is False]
    want_valid = [o for o in items if f(o) is True]
    note = ' (f is True for item0, item6, item9; None for item3, item7)'
    equal('the train list of your `split_by_func(items, f)`', list(train), want_train, note=note)
    equal('the valid list of your `split_by_func(items, f)`', list(valid), want_valid, note=note)


@exercise('08.3')
def category_vocab(CategoryProcessor):
    "The vocab of the training labels, the indices, the round trip, the vocab kept for validation, an unknown label"
    train = ['dog', 'cat', 'bird', 'cat', 'dog', 'dog']
    p = CategoryProcessor()
    idx = p(train)
    vocab = sorted(set(train))
    equal('the vocab of your `CategoryProcessor` after the training labels ' + repr(train), p.vocab, vocab,
          note=' (the distinct labels, sorted)')
    equal('your `CategoryProcessor` indices of the training labels', list(idx), [vocab.index(o) for o in train],
          note=f' (vocab {vocab})')
    equal('your `CategoryProcessor` labels after `deprocess` of the indices', p.deprocess(idx), train)
    valid = ['dog', 'bird', 'dog']
    got = p(valid)
    equal(f'the vocab of your `CategoryProcessor` after the validation labels {valid}', p.vocab, vocab,
          note=' (the vocab is built on the first list only)')
    equal(f'your `CategoryProcessor` indices of the validation labels {valid}', list(got), [2, 0, 2],
          note=f' (with the training vocab {vocab})')
    p = CategoryProcessor()
    equal('your `CategoryProcessor` indices of the integer labels [30, 10, 30, 20]', list(p([30, 10, 30, 20])),
          [2, 0, 2, 1], note=' (vocab [10, 20, 30])')
    p = CategoryProcessor(unknown='#na#')
    train = ['b', 'a', '#na#', 'b']
    idx = p(train)
    equal(f"the vocab of your `CategoryProcessor(unknown='#na#')` after {train}", p.vocab, ['#na#', 'a', 'b'],
          note=' (the unknown label first, then the others sorted)')
    equal(f"your `CategoryProcessor(unknown='#na#')` indices of {train}", list(idx), [2, 1, 0, 2])
    equal("your `CategoryProcessor(unknown='#na#')` indices of ['c', 'a'] after training", list(p(['c', 'a'])), [0, 1],
          note=" (an unseen label is the unknown one, index 0)")


def _image(mode, w, h, seed):
    "A PIL image of `mode` and size (w, h) with random bytes; and the same bytes as NumPy sees them, (h, w[, c])"
    rng = np.random.default_rng(seed)
    c = len(mode)                                  # L: 1, RGB: 3, RGBA: 4
    arr = rng.integers(0, 256, size=(h, w, c) if c > 1 else (h, w), dtype=np.uint8)
    img = PIL.Image.fromarray(arr)
    assert img.mode == mode
    return img, arr


@exercise('08.4')
def byte_tensor(to_byte_tensor):
    "Images that are not square (so height and width cannot be swapped unseen), RGB, grayscale and RGBA"
    for mode, w, h in (('RGB', 5, 3), ('L', 4, 6), ('RGBA', 7, 2)):
        img, arr = _image(mode, w, h, seed=len(mode) + w)
        want = torch.from_numpy(arr if arr.ndim == 3 else arr[..., None]).permute(2, 0, 1)
        got = to_byte_tensor(img)
        what = f'your `to_byte_tensor` of {"an" if mode[0] in "RL" else "a"} {mode} image of width {w} and height {h}'
        expect(isinstance(got, torch.Tensor), f'{what} is a {type(got).__name__}, expected a tensor')
        equal(f'the dtype of {what}', got.dtype, torch.uint8)
        close(what, got, want, atol=0, rtol=0, note=' (index [channel, row, column])')
