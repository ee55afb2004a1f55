"""Lesson 11a: transfer learning, on the CPU with tiny models and images.

Oracles: `Module.state_dict` for `state_dict_by_hand`, `F.adaptive_max_pool2d`/`F.adaptive_avg_pool2d` for
`AdaptiveConcatPool2d`, `model.parameters()` for `bn_splitter`'s partition, bit-identical parameters for
freezing (by `requires_grad` and by a learning rate of 0), and tiny image folders laid out like Imagenette
and Pets for the data recipes.
"""
from functools import partial
from pathlib import Path

import PIL.Image
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from raising import caught
from exp.nb_00 import test_eq, test_raises
from exp.nb_05 import one_cycle
from exp.nb_05b import TrainLoop, CancelFitException
from exp.nb_08 import DataBunch, DataBlockError, random_splitter
from exp.nb_09 import adam_opt
from exp.nb_10c import bn_types
from exp.nb_11 import xresnet18, xresnet34, cnn_learner
from exp.nb_11a import (state_dict_by_hand, CheckpointError, save_model, read_state_dict, load_model,
                        check_state_dict, EpochCheckpoint, RegexLabeler, pets_labeler, sample_per_class,
                        folder_split, pets_split, transfer_split, TRANSFER_DATASETS, IMAGENETTE_FIRST5,
                        IMAGENETTE_LAST5, AdaptiveConcatPool2d, cut_at_pool, adapt_model, apply_mod, set_grad,
                        bn_splitter, cb_types, DebugCallback)

pytestmark = pytest.mark.usefixtures('one_thread')


# ---------------------------------------------------------------- state dicts, saving and loading

class _WithBuffers(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, bias=False)                # bias None: not in the state dict
        self.register_buffer('kept', torch.ones(2))
        self.register_buffer('dropped', torch.zeros(2), persistent=False)
        self.seq = nn.Sequential(nn.BatchNorm2d(4), nn.Linear(4, 2))


@pytest.mark.parametrize('make', [lambda: xresnet18(c_out=5), _WithBuffers])
def test_state_dict_by_hand_matches_torch(make):
    torch.manual_seed(0)
    m = make()
    ours, theirs = state_dict_by_hand(m), m.state_dict()
    test_eq(list(ours), list(theirs))
    for k in theirs: assert torch.equal(ours[k], theirs[k]), k


def _trained_model(seed=0):
    torch.manual_seed(seed)
    m = xresnet18(c_out=5)
    m.train()(torch.randn(8, 3, 32, 32))                         # running statistics move away from 0/1
    with torch.no_grad():
        for p in m.parameters(): p.add_(0.01 * torch.randn_like(p))
    return m


def test_save_load_roundtrip_gives_identical_outputs(tmp_path):
    m = _trained_model()
    path = save_model(m, tmp_path/'sub'/'m.pt')                  # parent folders are made
    m2 = load_model(xresnet18(c_out=5), path)
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad(): test_eq(m.eval()(x), m2.eval()(x))
    test_eq(sorted(p.name for p in path.parent.iterdir()), ['m.pt'])   # no temporary file left
    (tmp_path/'plain').write_bytes(b'')
    test_eq(path.stat().st_mode, (tmp_path/'plain').stat().st_mode)   # the permissions of any new file
    assert all(v.device.type == 'cpu' for v in read_state_dict(path).values())


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path/'m.pt'
    save_model(xresnet18(c_out=5), path)
    good = path.read_bytes()
    def broken_save(obj, f):
        f.write(b'half a file')
        raise OSError('disk full')
    monkeypatch.setattr(torch, 'save', broken_save)
    with pytest.raises(OSError, match='disk full'): save_model(xresnet18(c_out=5), path)
    test_eq(path.read_bytes(), good)                             # the old checkpoint is intact
    test_eq([p.name for p in tmp_path.iterdir()], ['m.pt'])      # and the temporary file is gone


def test_pickled_objects_are_refused(tmp_path):
    torch.save({'w': torch.zeros(1), 'where': Path('x')}, tmp_path/'obj.pt')
    torch.save(xresnet18(c_out=5), tmp_path/'model.pt')          # a whole pickled model
    for name in ('obj.pt', 'model.pt'):
        test_raises(lambda: load_model(xresnet18(c_out=5), tmp_path/name), CheckpointError, 'pickled')


def test_bad_files_are_named(tmp_path):
    test_raises(lambda: load_model(xresnet18(), tmp_path/'nope.pt'), CheckpointError, 'nope.pt')
    torch.save([torch.zeros(1)], tmp_path/'list.pt')
    test_raises(lambda: read_state_dict(tmp_path/'list.pt'), CheckpointError, 'does not hold a state dict')
    (tmp_path/'text.pt').write_text('not a checkpoint')
    test_raises(lambda: read_state_dict(tmp_path/'text.pt'), CheckpointError, 'text.pt')


def test_other_architecture_names_the_keys(tmp_path):
    save_model(xresnet34(c_out=5), tmp_path/'m34.pt')
    save_model(xresnet18(c_out=5), tmp_path/'m18.pt')
    m18 = xresnet18(c_out=5)
    e = caught(lambda: load_model(m18, tmp_path/'m34.pt'), CheckpointError, 'unexpected keys: 4.2.convs.0.0.weight')
    assert 'm34.pt' in str(e) and 'missing' not in str(e)
    test_raises(lambda: load_model(xresnet34(c_out=5), tmp_path/'m18.pt'), CheckpointError, 'missing keys: 4.2.convs')
    test_raises(lambda: load_model(xresnet18(c_out=10), tmp_path/'m18.pt'), CheckpointError,
                '10.weight is (5, 512) in the file but (10, 512) in the model')
    before = [p.detach().clone() for p in m18.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(before, m18.parameters()))   # nothing was loaded
    check_state_dict(m18, read_state_dict(tmp_path/'m18.pt'))                 # a fitting one passes


# ---------------------------------------------------------------- labels, samples, splits

def test_regex_labeler_on_pets_names():
    names = {'great_pyrenees_173.jpg': 'great_pyrenees', 'Abyssinian_1.jpg': 'Abyssinian',
             'american_pit_bull_terrier_191.jpg': 'american_pit_bull_terrier', 'Maine_Coon_268.jpg': 'Maine_Coon'}
    for name, breed in names.items():
        test_eq(pets_labeler(f'/data/oxford-iiit-pet/images/{name}'), breed)
        test_eq(pets_labeler(Path('images')/name), breed)
    for bad in ('Abyssinian.jpg', 'Abyssinian_1.png', 'Abyssinian_1xjpg', 'x/Abyssinian_1.jpg.bak'):
        test_raises(lambda: pets_labeler(bad), DataBlockError, bad.split('/')[-1].split('.')[0])
    test_raises(lambda: RegexLabeler(r'\d+\.jpg'), ValueError, 'no group')
    test_eq(repr(pets_labeler), r"RegexLabeler('^(.*)_\\d+\\.jpg$')")


def _first(o): return o.split('/')[0]

@settings(max_examples=60, deadline=None)
@given(counts=st.lists(st.integers(0, 12), min_size=1, max_size=5), n=st.integers(1, 15), seed=st.integers(0, 9))
def test_sample_per_class_properties(counts, n, seed):
    items = [f'c{c}/{i}' for c, k in enumerate(counts) for i in range(k)]
    res = sample_per_class(items, _first, n, seed)
    assert set(res) <= set(items) and len(set(res)) == len(res)
    test_eq(res, sorted(res))
    for c, k in enumerate(counts): test_eq(sum(_first(o) == f'c{c}' for o in res), min(n, k))
    test_eq(res, sample_per_class(items[::-1], _first, n, seed))   # the draw depends on the items, not their order
    test_eq(sample_per_class(items, _first, None, seed), items)


def test_sample_per_class_bad_n():
    test_raises(lambda: sample_per_class(['a/1'], _first, 0), ValueError, 'n must be at least 1')


def _jpg(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    PIL.Image.new('RGB', (12, 10), (value, 255 - value, 40)).save(path)

@pytest.fixture
def folder_data(tmp_path):
    for part, n in (('train', 6), ('val', 2)):
        for c, cls in enumerate('abc'):
            for i in range(n): _jpg(tmp_path/part/cls/f'{cls}{i}.JPEG', 40 * c + i)
    return tmp_path

def test_folder_split_classes_and_sizes(folder_data):
    ll = folder_split(folder_data, 8, classes=['a', 'c'], n_train_per_class=4, seed=1)
    test_eq(ll.train.proc_y[0].vocab, ['a', 'c'])
    test_eq((len(ll.train), len(ll.valid)), (8, 4))
    test_eq({Path(f).parent.parent.name for f in ll.valid.x.items}, {'val'})
    test_eq(ll.valid.x[0].shape, (3, 8, 8))
    test_eq(ll.train.x[0].shape, (3, 8, 8))
    test_eq(len(folder_split(folder_data, 8, n_valid=3).valid), 3)
    test_raises(lambda: folder_split(folder_data, 8, classes=['a', 'zebra']), DataBlockError, 'zebra')


def test_pets_split_random_and_labelled(tmp_path):
    breeds = ['Abyssinian', 'great_pyrenees', 'pug']
    for b, breed in enumerate(breeds):
        for i in range(1, 21): _jpg(tmp_path/'images'/f'{breed}_{i}.jpg', 10 * b + i)
    (tmp_path/'images'/'notes.txt').write_text('not an image')
    ll = pets_split(tmp_path, 8, p_valid=0.25, seed=42)
    test_eq(ll.train.proc_y[0].vocab, sorted(breeds))
    test_eq(len(ll.train) + len(ll.valid), 60)
    want = {Path(f).name for f in (tmp_path/'images').glob('*.jpg') if random_splitter(f, 0.25, 42)}
    test_eq({Path(f).name for f in ll.valid.x.items}, want)
    test_eq([ll.valid.y_obj(i) for i in range(len(ll.valid))], [pets_labeler(f) for f in ll.valid.x.items])
    small = pets_split(tmp_path, 8, n_train_per_class=3, p_valid=0.25, seed=42)
    test_eq(len(small.train), 9)
    test_eq({Path(f).name for f in small.valid.x.items}, want)   # the validation set keeps every image


def test_transfer_datasets_registry():
    test_raises(lambda: transfer_split('imagenet', 64), ValueError, 'imagenette-first5')
    assert {'imagewoof', 'pets', 'imagenette-first5', 'imagenette-last5'} <= set(TRANSFER_DATASETS)
    test_eq(len(set(IMAGENETTE_FIRST5) | set(IMAGENETTE_LAST5)), 10)


# ---------------------------------------------------------------- the new head

@pytest.mark.parametrize('size', [1, 2, (2, 3)])
@pytest.mark.parametrize('shape', [(2, 8, 5, 7), (1, 3, 4, 4), (3, 2, 9, 6)])
def test_adaptive_concat_pool_matches_functional(size, shape):
    torch.manual_seed(0)
    x = torch.randn(*shape)
    want = torch.cat([F.adaptive_max_pool2d(x, size), F.adaptive_avg_pool2d(x, size)], dim=1)
    test_eq(AdaptiveConcatPool2d(size)(x), want)


def _tiny_data(c_out=3, n=16, bs=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    def ds(k): return TensorDataset(torch.randint(0, 256, (k, 3, 16, 16), generator=g, dtype=torch.uint8),
                                    torch.randint(0, c_out, (k,), generator=g))
    return DataBunch(DataLoader(ds(n), bs, shuffle=True, generator=torch.Generator().manual_seed(seed)),
                     DataLoader(ds(8), bs), c_in=3, c_out=c_out)

def _adapted_learner(splitter=None, seed=0):
    "A pretrained-looking learner: xresnet18 for 5 classes, then adapted to tiny 3-class data"
    torch.manual_seed(seed)
    data = _tiny_data()
    kw = {} if splitter is None else dict(splitter=splitter)
    learn = cnn_learner(xresnet18, data, F.cross_entropy, adam_opt(wd=1e-2), 1e-2, c_out=5, progress=False,
                        device='cpu', **kw)
    adapt_model(learn, data)
    return learn


def test_adapt_model_keeps_the_body_and_sizes_the_head():
    torch.manual_seed(0)
    data = _tiny_data()
    learn = cnn_learner(xresnet18, data, F.cross_entropy, adam_opt(), c_out=5, progress=False, device='cpu')
    old = learn.model
    stats = old[1][1].running_mean.clone()
    adapt_model(learn, data)
    m = learn.model
    assert all(a is b for a, b in zip(m[0], list(old)[:8]))       # the same layers, not copies
    test_eq(old[1][1].running_mean, stats)                        # measured in eval mode: statistics unchanged
    assert m.training and m[0].training
    assert isinstance(m[1], AdaptiveConcatPool2d) and isinstance(m[2], nn.Flatten)
    test_eq((m[3].in_features, m[3].out_features), (1024, 3))
    assert learn.opt is None
    test_eq(m(torch.randn(2, 3, 16, 16)).shape, (2, 3))
    test_raises(lambda: cut_at_pool(nn.Sequential(nn.Linear(2, 2))), ValueError, 'AdaptiveAvgPool2d')
    test_raises(lambda: adapt_model(learn, DataBunch(data.train_dl, data.valid_dl)), ValueError, 'c_out')


# ---------------------------------------------------------------- freezing and parameter groups

def test_bn_splitter_partitions_every_parameter_once():
    learn = _adapted_learner()
    g1, g2 = bn_splitter(learn.model)
    all_ids = [id(p) for p in learn.model.parameters()]
    test_eq(len(g1) + len(g2), len(all_ids))
    test_eq(sorted(id(p) for p in g1 + g2), sorted(all_ids))      # none lost, none twice
    names = {id(p): n for n, p in learn.model.named_parameters()}
    bn = {f'{n}.{k}' for n, l in learn.model.named_modules() if isinstance(l, bn_types) for k, _ in l.named_parameters()}
    test_eq({names[id(p)] for p in g2}, bn | {'3.weight', '3.bias'})
    assert not any(isinstance(p, nn.Parameter) and names[id(p)] in bn for p in g1)


def test_freezing_all_but_batchnorm_trains_only_batchnorm_and_head():
    learn = _adapted_learner()
    apply_mod(learn.model, partial(set_grad, b=False))
    bn = {f'{n}.{k}' for n, l in learn.model.named_modules() if isinstance(l, bn_types) for k, _ in l.named_parameters()}
    train = bn | {'3.weight', '3.bias'}
    test_eq({n for n, p in learn.model.named_parameters() if p.requires_grad}, train)
    before = {n: p.detach().clone() for n, p in learn.model.named_parameters()}
    learn.fit(2)
    changed = {n for n, p in learn.model.named_parameters() if not torch.equal(before[n], p.detach())}
    assert changed <= train, sorted(changed - train)[:5]          # every other parameter is bit-identical
    assert {'3.weight', '3.bias'} <= changed and len(changed & bn) > len(bn) // 2
    apply_mod(learn.model, partial(set_grad, b=True))
    assert all(p.requires_grad for p in learn.model.parameters())


def test_module_apply_gives_the_same_freezing():
    a, b = _adapted_learner().model, _adapted_learner().model
    apply_mod(a, partial(set_grad, b=False))
    b.apply(partial(set_grad, b=False))
    test_eq([p.requires_grad for p in a.parameters()], [p.requires_grad for p in b.parameters()])


def test_lr_zero_group_is_bit_identical():
    learn = _adapted_learner(splitter=bn_splitter)
    g1, g2 = bn_splitter(learn.model)
    b1, b2 = [p.detach().clone() for p in g1], [p.detach().clone() for p in g2]
    learn.fit(2, cbs=one_cycle([0., 1e-2]))
    test_eq([h['lr'] for h in learn.opt.hypers][0], 0.)
    assert all(torch.equal(a, p.detach()) for a, p in zip(b1, g1))
    assert sum(not torch.equal(a, p.detach()) for a, p in zip(b2, g2)) > len(g2) // 2


def test_whole_body_frozen_is_bit_identical():
    learn = _adapted_learner()
    for p in learn.model[0].parameters(): p.requires_grad_(False)
    before = [p.detach().clone() for p in learn.model[0].parameters()]
    learn.fit(1)
    assert all(torch.equal(a, p) for a, p in zip(before, learn.model[0].parameters()))


def test_epoch_checkpoint_writes_each_epoch(tmp_path):
    learn = _adapted_learner()
    seen = []
    learn.fit(2, cbs=[EpochCheckpoint(tmp_path/'c.pt'),
                      DebugCallback(cb_types.after_epoch, lambda l: seen.append((tmp_path/'c.pt').stat().st_mtime_ns))])
    test_eq(len(seen), 2)
    m = load_model(nn.Sequential(cut_at_pool(xresnet18(c_out=5)), AdaptiveConcatPool2d(), nn.Flatten(),
                                 nn.Linear(1024, 3)), tmp_path/'c.pt')
    test_eq(m[3].weight, learn.model[3].weight)


# ---------------------------------------------------------------- DebugCallback

@pytest.mark.parametrize('event', TrainLoop.EVENTS)
def test_debug_callback_handles_only_its_event(event):
    cb = DebugCallback(getattr(cb_types, event), print)
    test_eq([e for e in TrainLoop.EVENTS if hasattr(type(cb), e)], [event])
    test_eq(cb.name, 'debug')
    assert isinstance(cb, DebugCallback) and cb.event == event


def test_debug_callback_fires_at_its_event_only():
    learn = _adapted_learner()
    calls = []
    def f(l):
        assert l is learn
        calls.append((l.in_train, l.iter, l.loss is not None))
    learn.fit(2, cbs=[DebugCallback(cb_types.after_loss, f)])
    n_train, n_valid = len(learn.data.train_dl), len(learn.data.valid_dl)
    test_eq(len(calls), 2 * (n_train + n_valid))
    assert all(has_loss for _, _, has_loss in calls)
    test_eq([c[:2] for c in calls[:n_train + n_valid]],
            [(True, i) for i in range(n_train)] + [(False, i) for i in range(n_valid)])
    fits = []
    learn.fit(1, cbs=[DebugCallback(cb_types.after_fit, fits.append)])
    test_eq(fits, [learn])


def test_debug_callback_cancels_and_defaults_to_the_debugger(monkeypatch):
    import exp.nb_11a as nb
    learn = _adapted_learner()
    before = [p.detach().clone() for p in learn.model.parameters()]
    def stop(l): raise CancelFitException()
    learn.fit(1, cbs=[DebugCallback(cb_types.begin_batch, stop)])
    assert all(torch.equal(a, p.detach()) for a, p in zip(before, learn.model.parameters()))
    traces = []
    monkeypatch.setattr(nb.pdb, 'set_trace', lambda: traces.append(1))
    learn.fit(1, cbs=[DebugCallback(cb_types.begin_fit)])
    test_eq(traces, [1])
    test_raises(lambda: DebugCallback('begin_bath'), ValueError, 'begin_batch')
    test_eq(sorted(vars(cb_types)), sorted(TrainLoop.EVENTS))
