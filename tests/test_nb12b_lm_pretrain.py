"""Lesson 12b: WikiText article splitting, the backward stream, resumable training checkpoints and the
pretrained-model folder (weights + vocabulary + settings)."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from raising import caught
import torch
from hypothesis import given, settings, strategies as st

from exp.nb_00 import test_eq, test_near, test_raises
from exp.nb_05 import one_cycle
from exp.nb_08 import DataBunch
from exp.nb_09 import adam_opt
from exp.nb_09b import Learner
from exp.nb_12 import PAD, get_lm_dls
from exp.nb_12a import (GradientClipping, PerplexityTableCallback, RNNTrainer, accuracy_flat, cross_entropy_flat,
                        get_language_model)
from exp.nb_12b import (EpochSeed, TrainingCheckpoint, is_wiki_title, load_pretrained, load_training_checkpoint,
                        next_words, reverse_docs, save_pretrained, wiki_articles, wiki_path)

pytestmark = pytest.mark.usefixtures('one_thread')


# ---------------------------------------------------------------- articles

def test_wikitext2_articles():
    "The corpus's own counts: 600 / 60 / 60 articles, each starting with its title, no text lost"
    path = wiki_path('wikitext-2')
    for split, n in (('train', 600), ('valid', 60), ('test', 60)):
        fn = path/f'wiki.{split}.tokens'
        arts = wiki_articles(fn)
        test_eq(len(arts), n)
        assert all(a.startswith('= ') and a.split('\n', 1)[0].endswith(' =') for a in arts)
        words = sum(len(l.split()) for l in fn.read_text(encoding='utf-8').split('\n'))
        test_eq(sum(len(a.split()) for a in arts), words)                # every token of the file, once


def test_title_rule():
    lines = ['', ' = Title = ', '', ' x . ', '', ' = = Section = = ', '', ' = Ref : a book = ', ' text . ', '',
             ' = Not = a title = ', '', ' = Last = ']
    test_eq([i for i in range(len(lines)) if is_wiki_title(lines, i)], [1, 12])


def test_no_title_is_an_error(tmp_path):
    fn = tmp_path/'x.tokens'
    fn.write_text(' just text . \n more . \n', encoding='utf-8')
    test_raises(lambda: wiki_articles(fn), Exception, 'x.tokens')


@given(st.lists(st.lists(st.integers(0, 50), min_size=1, max_size=20), max_size=10))
@settings(max_examples=100, deadline=None, database=None)
def test_reverse_docs(docs):
    arrs = [np.array(d) for d in docs]
    rev = reverse_docs(arrs)
    test_eq([r.tolist() for r in rev], [d[::-1] for d in docs])
    test_eq([r.tolist() for r in reverse_docs(rev)], docs)
    assert all(r.flags['C_CONTIGUOUS'] for r in rev)
    assert all(min(r.strides, default=0) >= 0 for r in rev)        # torch.from_numpy refuses negative strides
    for r in rev: torch.from_numpy(r)


# ---------------------------------------------------------------- resumable training

def _docs(n_docs=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [np.array([2] + torch.randint(9, 40, (int(torch.randint(30, 60, (1,), generator=g)),), generator=g).tolist() + [3])
            for _ in range(n_docs)]

def _learner(dps=0.1):
    torch.manual_seed(1)
    train, valid = _docs(), _docs(2, seed=1)
    data = DataBunch(*get_lm_dls(train, valid, 4, 10, seed=0), c_in=40, c_out=40)
    model = get_language_model(40, 8, 10, 2, 1, output_p=dps, hidden_p=dps, input_p=dps, embed_p=dps, weight_p=dps)
    return Learner(model, data, cross_entropy_flat, opt_func=adam_opt(), lr=1e-3,
                   cbs=[PerplexityTableCallback(accuracy_flat, logger=lambda *a: None), RNNTrainer(α=2., β=1.),
                        GradientClipping(0.5), EpochSeed(3)])

def test_resumed_run_equals_uninterrupted(tmp_path):
    "3 epochs in one go == 2 epochs, a checkpoint, then the 3rd in a new learner (dropout on, articles shuffled)"
    ck = tmp_path/'ck.pth'
    a = _learner(); a.fit(3, cbs=one_cycle(1e-2))
    b = _learner(); b.fit(3, cbs=one_cycle(1e-2) + [TrainingCheckpoint(ck, stop_after=2)])
    c = _learner(); start, hist = load_training_checkpoint(c, ck)
    test_eq(start, 2); test_eq([h['epoch'] for h in hist], [0, 1])
    saver = TrainingCheckpoint(ck, hist)
    c.fit(3, cbs=one_cycle(1e-2) + [saver], start_epoch=start)
    for p, q in zip(a.model.parameters(), c.model.parameters()): test_near(p, q, 1e-5)
    test_eq([h['epoch'] for h in saver.history], [0, 1, 2])
    test_eq(torch.load(ck, weights_only=True)['epoch'], 3)

def test_without_epoch_seed_the_resumed_run_differs(tmp_path):
    "The check above can fail: without EpochSeed the resumed epoch draws other masks and another order"
    ck = tmp_path/'ck.pth'
    def learner():
        l = _learner(); l.cbs = [cb for cb in l.cbs if not isinstance(cb, EpochSeed)]; return l
    a = learner(); a.fit(2, cbs=one_cycle(1e-2))
    b = learner(); b.fit(2, cbs=one_cycle(1e-2) + [TrainingCheckpoint(ck, stop_after=1)])
    c = learner(); start, hist = load_training_checkpoint(c, ck)
    c.fit(2, cbs=one_cycle(1e-2), start_epoch=start)
    assert not all(torch.allclose(p, q, atol=1e-5) for p, q in zip(a.model.parameters(), c.model.parameters()))

def test_checkpoint_refuses_pickled_objects_and_other_files(tmp_path):
    l = _learner()
    torch.save({'model': {}, 'opt': {}, 'epoch': 1, 'history': [Path('x')]}, tmp_path/'pickled.pth')
    test_raises(lambda: load_training_checkpoint(l, tmp_path/'pickled.pth'), ValueError, 'pickled.pth')
    torch.save({'weights': torch.zeros(1)}, tmp_path/'other.pth')
    test_raises(lambda: load_training_checkpoint(l, tmp_path/'other.pth'), ValueError, 'is not a training checkpoint: it lacks model, opt, epoch, history')

def test_checkpoint_of_another_model_names_the_keys(tmp_path):
    "A checkpoint of another architecture: a clear error naming the file and the mis-shaped key, nothing loaded"
    a = _learner(); a.fit(1, cbs=[TrainingCheckpoint(tmp_path/'a.pth')])
    torch.manual_seed(1)
    b = _learner()
    b.model = get_language_model(40, 8, 12, 2, 1)                         # another hidden size
    before = [p.detach().clone() for p in b.model.parameters()]
    test_raises(lambda: load_training_checkpoint(b, tmp_path/'a.pth'), ValueError, 'a.pth')
    test_raises(lambda: load_training_checkpoint(b, tmp_path/'a.pth'), ValueError, 'weight_hh_l0_raw')
    for p, q in zip(b.model.parameters(), before): test_eq(p, q)

# ---------------------------------------------------------------- the pretrained folder

def _lm(vocab_sz=30):
    torch.manual_seed(0)
    cfg = dict(vocab_sz=vocab_sz, emb_sz=6, n_hid=7, n_layers=2, pad_token=1)
    return get_language_model(**cfg), cfg

def test_settings_digest():
    from exp.nb_11a import settings_digest
    a = dict(epochs=10, lr=5e-3, moms=(0.8, 0.7, 0.8), n_train_tokens=None)
    d = settings_digest(a)
    assert len(d) == 8 and int(d, 16) >= 0
    test_eq(settings_digest(dict(reversed(list(a.items())))), d)            # the order of the keys does not count
    for k, v in [('epochs', 2), ('lr', 5e-4), ('moms', (0.9, 0.7, 0.8)), ('n_train_tokens', 1_000_000)]:
        assert settings_digest({**a, k: v}) != d, k
    assert settings_digest({**a, 'extra': 1}) != d


def test_pretrained_round_trip(tmp_path):
    model, cfg = _lm()
    vocab = ['xxunk', PAD] + [f'w{i}' for i in range(28)]
    dest = save_pretrained(tmp_path/'lm', model, vocab, cfg, corpus='wikitext-2', backwards=True)
    test_eq(sorted(p.name for p in tmp_path.iterdir()), ['lm'])                           # no temporary folder left
    m2, v2, c2 = load_pretrained(dest)
    test_eq(v2, vocab); test_eq(c2['model'], cfg); test_eq(c2['backwards'], True)
    x = torch.randint(0, 30, (2, 9))
    model.eval(); m2.eval(); model.reset(); m2.reset()
    with torch.no_grad(): test_eq(m2(x)[0], model(x)[0])
    assert m2[1].decoder.weight is m2[0].emb.weight                                         # still tied
    save_pretrained(dest, _lm(30)[0], vocab, cfg)                                            # overwrite whole
    test_eq(sorted(p.name for p in dest.iterdir()), ['config.json', 'vocab.json', 'weights.pth'])

def test_pretrained_mismatch_is_a_clear_error(tmp_path):
    model, cfg = _lm()
    dest = save_pretrained(tmp_path/'lm', model, [f'w{i}' for i in range(30)], cfg)
    (dest/'vocab.json').write_text(json.dumps([f'w{i}' for i in range(31)]))
    test_raises(lambda: load_pretrained(dest), ValueError, 'vocab.json has 31 words')
    (dest/'config.json').unlink()
    test_raises(lambda: load_pretrained(dest), FileNotFoundError, 'config.json')

def test_next_words_backwards_reads_the_prompt_reversed():
    model, cfg = _lm()
    vocab = [f'w{i}' for i in range(30)]
    test_eq(next_words(model, vocab, ['w3', 'w4', 'w5'], k=5, backwards=True),
            next_words(model, vocab, ['w5', 'w4', 'w3'], k=5))


# ---------------------------------------------------------------- faults of the pretrained folder (issue 27)

def _one_line(e): return '\n' not in str(e) and '\x1b' not in str(e) and 'weights_only=False' not in str(e)

@pytest.mark.parametrize('fault', ['pickled', 'cut weights', 'cut vocab', 'cut config', 'empty weights'])
def test_damaged_pretrained_folder_is_one_line_naming_the_file(tmp_path, fault):
    """Each damaged file of a save_pretrained folder: one line naming that file (once torch's raw message, or a bare
    OSError / JSONDecodeError with no file name)"""
    model, cfg = _lm()
    dest = save_pretrained(tmp_path/'lm', model, [f'w{i}' for i in range(30)], cfg)
    name = {'pickled': 'weights.pth', 'cut weights': 'weights.pth', 'empty weights': 'weights.pth',
            'cut vocab': 'vocab.json', 'cut config': 'config.json'}[fault]
    f = dest/name
    if fault == 'pickled': torch.save({**model.state_dict(), 'where': Path('x')}, f)
    elif fault == 'empty weights': f.write_bytes(b'')
    else: f.write_bytes(f.read_bytes()[:len(f.read_bytes()) // 2])
    e = caught(lambda: load_pretrained(dest), ValueError)
    assert str(f) in str(e) and _one_line(e), str(e)
    if fault == 'pickled': assert 'pickled Python object' in str(e) and 'pathlib' in str(e)

def test_save_pretrained_over_an_old_folder_is_never_missing(tmp_path, monkeypatch):
    "A save killed between its renames used to leave no model and a hidden folder; now the old folder stays whole"
    from coursekit import files
    model, cfg = _lm()
    vocab = [f'w{i}' for i in range(30)]
    dest = save_pretrained(tmp_path/'lm', model, vocab, cfg)
    before = {p.name: p.read_bytes() for p in dest.iterdir()}
    def killed(a, b): raise KeyboardInterrupt('killed')   # the step that puts the new folder in place
    monkeypatch.setattr(files, '_swap_in', killed)
    with pytest.raises(KeyboardInterrupt): save_pretrained(dest, _lm(30)[0], vocab, cfg)
    test_eq({p.name: p.read_bytes() for p in dest.iterdir()}, before)
    test_eq(sorted(p.name for p in tmp_path.iterdir()), ['lm'])          # no hidden temporary folder left

def test_wiki_articles_names_a_file_that_is_not_utf8(tmp_path):
    fn = tmp_path/'wiki.train.tokens'
    fn.write_bytes(' = Caf\xe9 = \n\n text \n'.encode('latin-1'))
    e = caught(lambda: wiki_articles(fn), ValueError)
    assert 'wiki.train.tokens' in str(e) and 'utf-8' in str(e) and _one_line(e)
    fn.write_bytes(bytes(range(128, 256)))
    assert 'wiki.train.tokens' in str(caught(lambda: wiki_articles(fn), ValueError))
