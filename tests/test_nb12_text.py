"""Lesson 12: the text pipeline (rules, tokenizer, parallel tokenization, vocabulary, cache, LM and classifier loaders)."""
import collections
import html
import json
import os
import random
import time
from pathlib import Path

import numpy as np
import pytest
from raising import caught
import torch
from hypothesis import given, settings, strategies as st
from torch.utils.data import DataLoader

from exp.nb_00 import URLs, test_eq, test_raises, untar_data
from exp.nb_08 import CategoryProcessor, DataBlockError, SplitData, label_by_func, parent_labeler
from exp.nb_12 import (frozen_gc, guided_chunks, imdb_path, BOS, EOS, PAD, TK_MAJ, TK_REP, TK_UP, TK_WREP, UNK, LMDataset, NumericalizeProcessor,
                       SortishSampler, SortSampler, TextList, TokenizeProcessor, add_eos_bos, cache_key,
                       cached_label_by_func, clas_databunchify, clas_splitter, csv_to_folders, deal_caps,
                       default_spec_tok, fixup_text, func_key, get_lm_dls, lm_databunchify, lm_label,
                       lm_splitter, pad_collate, parallel, read_file, replace_all_caps, replace_rep,
                       replace_wrep, rm_useless_spaces, spec_add_spaces, sub_br,
                       tokenize_texts)

pytestmark = pytest.mark.usefixtures('one_thread')


@pytest.fixture(scope='module')
def imdb():
    "The IMDB sample in IMDB's layout (1,000 real reviews): extracting the whole of aclImdb (100,000 files) costs 30 s"
    return imdb_path(sample=True)

@pytest.fixture(scope='module')
def reviews(imdb):
    "The 1,000 real review files of the sample, from train/{pos,neg} and test/{pos,neg}"
    res = []
    for d in ('train/pos', 'train/neg', 'test/pos', 'test/neg'):
        res += sorted((imdb/d).iterdir())
    return res


# --- pre-rules -----------------------------------------------------------------------------------------

def test_fixup_text_entities():
    test_eq(fixup_text('Tom &amp; Jerry &lt;3 &quot;hi&quot; &#39;a&#39;'), 'Tom & Jerry <3 "hi" \'a\'')
    test_eq(fixup_text('it#39;s quot;okquot; #36;5 a&nbsp;b amp; c'), 'it\'s "ok" $5 a\xa0b & c')
    test_eq(fixup_text('3 @.@ 5 x @-@ y 1 @,@ 000 <unk>'), f'3.5 x-y 1,000 {UNK}')
    test_eq(fixup_text(''), '')
    test_eq(fixup_text('plain text, no junk'), 'plain text, no junk')

@given(st.text(alphabet='ab &;#<>lgtampquo39', max_size=40))
@settings(max_examples=200, deadline=None, database=None)
def test_fixup_text_matches_unescape_on_proper_entities(t):
    "Without broken entities (no entity name after anything but '&'), fixup_text is html.unescape (the oracle)"
    import re
    if re.search(r'(?<!&)(#39;|amp;|#146;|nbsp;|#36;|quot;|#34;)', t) or '<unk>' in t: return
    test_eq(fixup_text(t), html.unescape(t))

def test_sub_br_spaces():
    test_eq(sub_br('a.<br /><br />B<BR>c<br/>d< br / >'), 'a.\n\nB\nc\nd\n')
    test_eq(spec_add_spaces('a/b #1'), 'a / b  # 1')
    test_eq(rm_useless_spaces('a  b      c\n\n d '), 'a b c\n\n d ')

def test_replace_rep():
    test_eq(replace_rep('!' * 28), f' {TK_REP} 28 ! ')
    test_eq(replace_rep('no!!!'), 'no!!!')                       # 3 repeats stay
    test_eq(replace_rep('no!!!!'), f'no {TK_REP} 4 ! ')           # 4 are replaced
    test_eq(replace_rep('a    b'), 'a    b')                      # spaces are not characters to repeat
    test_eq(replace_rep('😀😀😀😀😀'), f' {TK_REP} 5 😀 ')

def test_replace_wrep():
    test_eq(replace_wrep('very very good'), 'very very good')      # twice stays
    test_eq(replace_wrep('very very very good'), f' {TK_WREP} 3 very  good')
    test_eq(replace_wrep('so so so so so.'), f' {TK_WREP} 5 so .')
    test_eq(replace_wrep('the then then'), 'the then then')
    test_eq(replace_wrep(''), '')

def test_post_rules():
    test_eq(replace_all_caps(['I', 'LOVED', 'it', 'A+', 'ÉTÉ']), ['I', TK_UP, 'loved', 'it', TK_UP, 'a+', TK_UP, 'été'])
    test_eq(deal_caps(['The', 'I', 'iPhone', 'McD', 'x', 'Élan']), [TK_MAJ, 'the', TK_MAJ, 'i', 'iPhone', 'McD', 'x', TK_MAJ, 'élan'])
    test_eq(add_eos_bos(['a']), [BOS, 'a', EOS])


# --- the tokenizer -------------------------------------------------------------------------------------

def test_tokenize_texts_rules_together():
    res = tokenize_texts(['I HATED it!!!!! <br /><br />Très bien 😀 日本語', ''])
    test_eq(res[0], [BOS, TK_MAJ, 'i', TK_UP, 'hated', 'it', TK_REP, '5', '!', '\n\n', TK_MAJ, 'très', 'bien', '😀', '日本語', EOS])
    test_eq(res[1], [BOS, EOS])

@pytest.mark.parametrize('tok', default_spec_tok)
def test_special_tokens_never_split(tok):
    toks = tokenize_texts([f'({tok}) {tok}, "{tok}"'], pre_rules=[], post_rules=[])[0]
    test_eq(toks.count(tok), 3)
    assert all(t == tok or tok not in t for t in toks)

def test_read_file_and_textlist(tmp_path):
    (tmp_path/'train'/'pos').mkdir(parents=True)
    (tmp_path/'train'/'pos'/'a.txt').write_text('Héllo 😀', encoding='utf-8')
    (tmp_path/'train'/'pos'/'b.md').write_text('skip')
    il = TextList.from_files(tmp_path)
    test_eq(len(il), 1); test_eq(il[0], 'Héllo 😀')
    (tmp_path/'train'/'pos'/'bad.txt').write_bytes(b'caf\xe9')
    test_raises(lambda: TextList.from_files(tmp_path)[:], DataBlockError, contains='bad.txt')
    test_raises(lambda: TextList.from_files(tmp_path/'train', extensions='.csv'), DataBlockError, contains='.csv')
    test_eq(TextList(['in memory'])[0], 'in memory')

def test_csv_to_folders(tmp_path):
    csv = tmp_path/'t.csv'
    csv.write_text('label,text,is_valid\nnegative,"bad, bad",False\npositive,good,True\n', encoding='utf-8')
    dest = csv_to_folders(csv, tmp_path/'out', label_map={'negative': 'neg', 'positive': 'pos'})
    test_eq(read_file(dest/'train'/'neg'/'0.txt'), 'bad, bad'); test_eq(read_file(dest/'test'/'pos'/'1.txt'), 'good')
    test_eq([p.name for p in tmp_path.iterdir() if p.name.startswith('.')], [])    # no temporary folder left
    test_raises(lambda: csv_to_folders(csv, tmp_path/'o2', text_col='review'), DataBlockError, contains='review')

def test_splitters():
    names = [Path(f'/d/{s}/{c}/{i}_1.txt') for s in ('train', 'test') for c in ('pos', 'neg') for i in range(2500)]
    valid = [lm_splitter(n) for n in names]
    assert 0.08 < sum(valid) / len(valid) < 0.12
    test_eq(valid, [lm_splitter(n) for n in names])                          # seeded: the same every time
    pairs = [(lm_splitter(Path(f'/d/train/pos/{i}.txt')), lm_splitter(Path(f'/d/test/pos/{i}.txt'))) for i in range(5000)]
    assert sum(a and b for a, b in pairs) < 150                               # train and test drawn independently (~50)
    test_eq(clas_splitter(Path('/d/train/unsup/1.txt')), None)
    test_eq(clas_splitter(Path('/d/test/neg/1.txt')), True); test_eq(clas_splitter(Path('/d/train/pos/1.txt')), False)


# --- parallel ------------------------------------------------------------------------------------------

@pytest.mark.parametrize('method', ['fork', 'spawn'])
def test_parallel_keeps_order(method):
    arr = [[0] * random.Random(i).randint(0, 30) for i in range(40)]
    test_eq(parallel(len, arr, max_workers=2, start_method=method, progress=False), [len(a) for a in arr])

@given(st.integers(0, 3000), st.integers(1, 8), st.integers(1, 600), st.one_of(st.none(), st.integers(0, 700)))
@settings(max_examples=200, deadline=None, database=None)
def test_guided_chunks(n, n_workers, max_size, min_size):
    chunks = guided_chunks(range(n), n_workers, max_size, min_size)
    test_eq([i for c in chunks for i in c], list(range(n)))                  # consecutive, nothing lost or repeated
    sizes = [len(c) for c in chunks]
    assert all(0 < s <= max_size for s in sizes)
    assert sizes == sorted(sizes, reverse=True)                              # shrinking towards the end
    lo = min(max_size // 10, -(-n // (4 * n_workers))) if min_size is None else min_size
    lo = min(max(1, lo), max_size)
    assert all(s >= lo for s in sizes[:-1])                                  # only the last may be smaller
    if n >= 2 * n_workers * max_size: test_eq(sizes[0], max_size)            # plenty left: full chunks
    if sizes: assert sizes[-1] <= max(lo, -(-n // (2 * n_workers)))         # the tail is small

def test_guided_chunks_small_input_feeds_every_worker():
    sizes = [len(c) for c in guided_chunks(range(600), 2, 2000)]                # 600 long articles, 2 workers
    assert len(sizes) >= 4 and max(sizes) <= 150, sizes

def test_guided_chunks_bad_args():
    test_raises(lambda: guided_chunks(range(5), 0, 10), ValueError, 'n_workers=0')
    test_raises(lambda: guided_chunks(range(5), 2, 0), ValueError, 'max_size=0')

def test_frozen_gc_unfreezes_even_on_error():
    import gc
    before = gc.get_freeze_count()
    with frozen_gc(): assert gc.get_freeze_count() > before
    test_eq(gc.get_freeze_count(), before)
    def boom():
        with frozen_gc(): raise KeyError('x')
    test_raises(boom, KeyError)
    test_eq(gc.get_freeze_count(), before)
    parallel(len, [[1], [2, 3]], max_workers=2, progress=False)
    test_eq(gc.get_freeze_count(), before)

def test_parallel_equals_serial_on_real_reviews(reviews):
    serial = TokenizeProcessor(chunksize=2000, max_workers=1, progress=False)(reviews)
    test_eq(len(serial), 1000)
    assert all(t[0] == BOS and t[-1] == EOS for t in serial)
    for method in ('fork', 'spawn'):
        par = TokenizeProcessor(chunksize=250, max_workers=2, start_method=method, progress=False)(reviews)
        assert par == serial, method


# --- numericalizing ------------------------------------------------------------------------------------

def ref_vocab(items, max_vocab, min_freq):
    "The oracle: specials, then every word with count >= min_freq by (-count, word), cut at max_vocab"
    c = collections.Counter(t for toks in items for t in toks)
    words = sorted((w for w in c if c[w] >= min_freq and w not in default_spec_tok), key=lambda w: (-c[w], w))
    return (default_spec_tok + words)[:max_vocab]

@given(st.lists(st.lists(st.sampled_from(list('abcdefghij') + [UNK, PAD]), max_size=12), max_size=15),
       st.integers(1, 4), st.integers(len(default_spec_tok), len(default_spec_tok) + 12))
@settings(max_examples=150, deadline=None, database=None)
def test_vocab_matches_oracle(items, min_freq, max_vocab):
    num = NumericalizeProcessor(max_vocab=max_vocab, min_freq=min_freq)
    ids = num(items)
    test_eq(num.vocab, ref_vocab(items, max_vocab, min_freq))
    assert len(num.vocab) <= max_vocab
    shuffled = items[::-1]
    num2 = NumericalizeProcessor(max_vocab=max_vocab, min_freq=min_freq); num2(shuffled)
    test_eq(num2.vocab, num.vocab)                                            # ties broken by the word, not the order
    for toks, row in zip(items, ids):
        test_eq(num.deproc1(row), [t if t in num.otoi else UNK for t in toks])

def test_min_freq_boundary():
    items = [['two', 'two', 'one', 'three', 'three', 'three']]
    num = NumericalizeProcessor(min_freq=2); num(items)
    assert 'two' in num.vocab and 'one' not in num.vocab                      # "at least min_freq times"
    num = NumericalizeProcessor(min_freq=3); num(items)
    assert 'three' in num.vocab and 'two' not in num.vocab
    test_eq(num.vocab[:2], [UNK, PAD]); test_eq(num([['one', 'zzz']])[0].tolist(), [0, 0])

def test_vocab_from_training_only():
    sd = SplitData(TextList([['a', 'a', 'b', 'b']]), TextList([['c', 'c', 'c', 'a']]))
    num = NumericalizeProcessor()
    ll = label_by_func(sd, lm_label, proc_x=[num])
    assert 'c' not in num.vocab
    test_eq(ll.valid.x[0].tolist(), [0, 0, 0, num.otoi['a']])
    test_eq(ll.valid.x_obj(0), [UNK, UNK, UNK, 'a'])
    test_raises(lambda: NumericalizeProcessor(vocab=['a', UNK]), DataBlockError, contains=UNK)


# --- the language-model loader -------------------------------------------------------------------------

@given(st.lists(st.integers(1, 40), min_size=1, max_size=25), st.integers(1, 7), st.integers(1, 9))
@settings(max_examples=100, deadline=None, database=None)
def test_lm_dataset_stream(doc_lens, bs, bptt):
    total = sum(doc_lens)
    if total // bs < 2: return
    starts = np.cumsum([0] + doc_lens)
    docs = [np.arange(a, b) for a, b in zip(starts[:-1], starts[1:])]           # each token id once: the stream position
    ds = LMDataset(docs, bs=bs, bptt=bptt)
    n_batch = total // bs
    test_eq(len(ds), ((n_batch - 1) // bptt) * bs)
    batches = list(DataLoader(ds, batch_size=bs))
    seen = []
    for k, (x, y) in enumerate(batches):
        test_eq(x.shape, (bs, bptt)); test_eq(y, x + 1)                          # y is x shifted by one in the stream
        test_eq(x[:, 0], torch.arange(bs) * n_batch + k * bptt)                  # row r, batch k: stream offset r*n + k*bptt
        if k: test_eq(x[:, 0], batches[k - 1][1][:, -1])                         # continues where the last batch ended
        seen += x.flatten().tolist()
    test_eq(len(seen), len(set(seen)))                                          # no token twice in an epoch
    assert total - len(seen) < bs * (bptt + 1)                                 # the documented remainder

def test_lm_new_order_each_epoch():
    docs = [np.full(10, i) for i in range(40)]
    train, valid = get_lm_dls(docs, docs, bs=4, bptt=5, seed=0)
    firsts = []
    for _ in range(3):
        xs = torch.cat([x for x, _ in train], 1)
        firsts.append(xs[:, 0].tolist())
        test_eq(sorted(set(xs.flatten().tolist())), list(range(40)))           # every document still there
    assert firsts[0] != firsts[1] or firsts[1] != firsts[2]
    v = [torch.cat([x for x, _ in valid], 1) for _ in range(2)]
    test_eq(v[0], v[1]); test_eq(v[0].shape[0], 8)                              # validation: fixed, 2*bs rows

def test_lm_dataset_too_short():
    test_raises(lambda: LMDataset([np.arange(5)], bs=4, bptt=2), DataBlockError, contains='too few')


# --- samplers and padding (property-based) -------------------------------------------------------------

@given(st.lists(st.integers(0, 50), max_size=200))
@settings(max_examples=150, deadline=None, database=None)
def test_sort_sampler(lens):
    idx = list(SortSampler(lens, key=lambda i: lens[i]))
    test_eq(sorted(idx), list(range(len(lens))))
    assert all(lens[a] >= lens[b] for a, b in zip(idx, idx[1:]))

@given(st.lists(st.integers(0, 1000), max_size=300), st.integers(1, 16), st.integers(1, 5), st.integers(0, 2**31))
@settings(max_examples=200, deadline=None, database=None)
def test_sortish_sampler(lens, bs, mb, seed):
    s = SortishSampler(lens, key=lambda i: lens[i], bs=bs, megabatch=mb, generator=torch.Generator().manual_seed(seed))
    idx = list(s)
    test_eq(sorted(idx), list(range(len(lens))))                                # a permutation of every index
    if lens: test_eq(max(lens[i] for i in idx[:bs]), max(lens))                 # the first batch holds the longest item

def test_sortish_sorts_inside_megabatches_and_shuffles():
    rng = random.Random(0)
    lens = [rng.randint(1, 1000) for _ in range(2000)]
    gen = torch.Generator().manual_seed(0)
    s = SortishSampler(lens, key=lambda i: lens[i], bs=10, megabatch=50, generator=gen)
    a, b = list(s), list(s)
    assert a != b                                                               # a new order each epoch
    spread = [max(lens[i] for i in a[k:k+10]) - min(lens[i] for i in a[k:k+10]) for k in range(0, 2000, 10)]
    assert np.mean(spread) < 100                                                # batches of similar lengths (random: ~800)

@given(st.lists(st.lists(st.integers(2, 99), max_size=12), min_size=1, max_size=10), st.integers(0, 1), st.booleans())
@settings(max_examples=200, deadline=None, database=None)
def test_pad_collate(seqs, pad_idx, pad_first):
    "Ids that never equal the pad id (0 or 1 here, as xxunk and xxpad are), padded at the end or, with `pad_first`, the start"
    x, y = pad_collate([(np.array(s, dtype=np.int32), i) for i, s in enumerate(seqs)], pad_idx=pad_idx, pad_first=pad_first)
    m = max(len(s) for s in seqs)
    test_eq(x.shape, (len(seqs), m)); test_eq(x.dtype, torch.long); test_eq(y.tolist(), list(range(len(seqs))))
    for row, s in zip(x.tolist(), seqs):
        n = len(s)
        body, pad = (row[m - n:], row[:m - n]) if pad_first else (row[:n], row[n:])
        test_eq(body, s); test_eq(pad, [pad_idx] * (m - n))



def test_pad_collate_contract():
    "Returns (ids, labels) and no lengths, which 12c reads from the pads: so a sample holding the pad id is refused"
    doc = pad_collate.__doc__
    assert 'no lengths' in doc and 'pad_lengths' in doc, doc
    x, y = pad_collate([(np.array([5, 6, 7]), 0), (np.array([8]), 1)])
    test_eq(x, torch.tensor([[5, 6, 7], [8, 1, 1]])); test_eq(y, torch.tensor([0, 1]))
    for pad_first in (False, True):
        test_raises(lambda: pad_collate([(np.array([5, 6]), 0), (np.array([8, 1]), 1)], pad_first=pad_first),
                    ValueError, contains='sample 1 holds the pad id 1')
    test_eq(pad_collate([(np.array([5, 1]), 0)], pad_idx=0)[0], torch.tensor([[5, 1]]))   # 1 is a token when the pad is 0

# --- the cache and the data bunches --------------------------------------------------------------------

def _sd(il):
    return SplitData.split_by_func(il, clas_splitter)

@pytest.fixture
def small_imdb(tmp_path, reviews):
    "120 real reviews copied into an IMDB-shaped folder (train/test x pos/neg)"
    root = tmp_path/'imdb'
    for i, fn in enumerate(reviews[:240:2]):
        d = root/('test' if i % 4 == 0 else 'train')/('pos' if i % 2 else 'neg')
        d.mkdir(parents=True, exist_ok=True)
        (d/fn.name).write_bytes(fn.read_bytes())
    return root

def _build(root, cache, capsys, max_vocab=60000, pre_rules=None):
    sd = _sd(TextList.from_files(root))
    procs = [TokenizeProcessor(max_workers=1, progress=False, pre_rules=pre_rules), NumericalizeProcessor(max_vocab=max_vocab)]
    cat = CategoryProcessor()
    t = time.perf_counter()
    ll = cached_label_by_func(sd, parent_labeler, proc_x=procs, proc_y=cat, cache_dir=cache)
    return ll, time.perf_counter() - t, capsys.readouterr().out, procs[1], cat

def test_cache(small_imdb, tmp_path, capsys):
    cache = tmp_path/'cache'
    ll, t1, out, num, cat = _build(small_imdb, cache, capsys)
    assert 'saved' in out
    ll2, t2, out, num2, cat2 = _build(small_imdb, cache, capsys)
    assert 'loaded' in out and t2 < t1 / 5, (t1, t2)                            # read, not recomputed
    test_eq(num2.vocab, num.vocab); test_eq(cat2.vocab, ['neg', 'pos'])
    for a, b in ((ll.train, ll2.train), (ll.valid, ll2.valid)):
        test_eq(len(a), len(b)); test_eq(a.y.items, b.y.items)
        assert all(np.array_equal(u, v) for u, v in zip(a.x.items, b.x.items))
    test_eq(ll2.train.x_obj(0), ll.train.x_obj(0))
    assert not any(p.name.endswith('.tmp') for p in cache.iterdir())
    # no pickles: every file is JSON or a NumPy array readable without pickle
    (folder,) = cache.iterdir()
    for f in folder.iterdir():
        if f.suffix == '.npy': np.load(f, allow_pickle=False)
        else: json.loads(f.read_text())

def test_cache_rebuilds_on_changes(small_imdb, tmp_path, capsys):
    cache = tmp_path/'cache'
    _build(small_imdb, cache, capsys)
    _, _, out, num, _ = _build(small_imdb, cache, capsys, max_vocab=50)          # another setting
    assert 'saved' in out; test_eq(len(num.vocab), 50)
    _, _, out, _, _ = _build(small_imdb, cache, capsys, pre_rules=[fixup_text])  # other rules
    assert 'saved' in out
    fn = next((small_imdb/'train'/'pos').iterdir())
    fn.write_text(fn.read_text() + ' one more sentence.')                        # a changed file
    _, _, out, _, _ = _build(small_imdb, cache, capsys)
    assert 'saved' in out
    test_eq(len(list(cache.iterdir())), 4)

@pytest.mark.parametrize('damage', ['flip', 'truncate', 'manifest', 'delete'])
def test_cache_corrupt_is_rebuilt(small_imdb, tmp_path, capsys, damage):
    cache = tmp_path/'cache'
    ll, _, _, _, _ = _build(small_imdb, cache, capsys)
    (folder,) = cache.iterdir()
    f = folder/'train_x.npy'
    if damage == 'flip':
        b = bytearray(f.read_bytes()); b[-3] ^= 0xFF; f.write_bytes(bytes(b))   # a valid array with a wrong id
    elif damage == 'truncate': f.write_bytes(f.read_bytes()[:100])
    elif damage == 'manifest': (folder/'manifest.json').write_text('{"key": ')
    else: f.unlink()
    ll2, _, out, _, _ = _build(small_imdb, cache, capsys)
    assert 'rebuilding' in out and 'saved' in out
    assert all(np.array_equal(u, v) for u, v in zip(ll.train.x.items, ll2.train.x.items))
    _, _, out, _, _ = _build(small_imdb, cache, capsys)
    assert 'loaded' in out

def test_cache_key_is_stable():
    sd = SplitData(TextList(['a b', 'c']), TextList(['d']))
    k = lambda: cache_key(sd, lm_label, [TokenizeProcessor(), NumericalizeProcessor()], [])
    test_eq(k(), k())
    assert cache_key(sd, lm_label, [TokenizeProcessor(post_rules=[])], []) != cache_key(sd, lm_label, [TokenizeProcessor()], [])
    test_eq(func_key(fixup_text), func_key(fixup_text))
    assert func_key(fixup_text) != func_key(sub_br)

def test_databunches(small_imdb, tmp_path, capsys):
    ll, _, _, num, _ = _build(small_imdb, tmp_path/'cache', capsys)
    data = clas_databunchify(ll, bs=8)
    test_eq(data.c_out, 2); test_eq(data.c_in, len(num.vocab))
    n = 0
    for x, y in data.train_dl:
        n += len(y)
        assert (x[:, 0] != 1).all()                                             # padded at the end: each row starts with text
    test_eq(n, len(ll.train))
    xs = [x for x, _ in data.valid_dl]
    test_eq(sum(len(x) for x in xs), len(ll.valid))
    assert all(a.shape[1] >= b.shape[1] for a, b in zip(xs, xs[1:]))           # validation: longest first
    lm = lm_databunchify(ll, bs=4, bptt=10)
    x, y = next(iter(lm.train_dl))
    test_eq(x.shape, (4, 10)); test_eq(lm.c_out, len(num.vocab)); test_eq(x[:, 1:], y[:, :-1])

def test_func_key_ignores_unrelated_globals_and_sees_constants():
    ns = {'re': __import__('re')}
    exec("_pat = re.compile('a+')\ndef rule(t):\n    return _pat.sub('a', t.lower())", ns)
    k = func_key(ns['rule'])
    ns['vocab'], ns['lower'], ns['sub'] = ['x'], 'attribute names are not globals', 3
    test_eq(func_key(ns['rule']), k)
    ns['_pat'] = ns['re'].compile('b+')
    assert func_key(ns['rule']) != k

def test_csv_to_folders_names_a_csv_that_is_not_utf8(tmp_path):
    "A latin-1 or random-bytes CSV: one line naming the file (once a bare UnicodeDecodeError), nothing written"
    for i, data in enumerate(['label,text,is_valid\nneg,caf\xe9,False\n'.encode('latin-1'), bytes(range(128, 256))]):
        csv = tmp_path/f't{i}.csv'
        csv.write_bytes(data)
        e = caught(lambda: csv_to_folders(csv, tmp_path/f'out{i}'), ValueError)
        assert csv.name in str(e) and 'utf-8' in str(e) and '\n' not in str(e)
        assert not (tmp_path/f'out{i}').exists()
    test_eq(sorted(p.name for p in tmp_path.iterdir()), ['t0.csv', 't1.csv'])   # no temporary folder left

def test_cache_rebuild_killed_before_the_swap_leaves_a_whole_folder(small_imdb, tmp_path, capsys, monkeypatch):
    """Lesson 12's cache used to delete the old folder, then rename the new one: a kill between left no cache and a
    hidden temporary folder. Now the rebuild is exchanged in one step, and a killed one leaves the old folder whole"""
    from coursekit import files
    cache = tmp_path/'cache'
    _build(small_imdb, cache, capsys)
    (folder,) = cache.iterdir()
    (folder/'manifest.json').write_text('{"key": ')                      # damaged: the next build rebuilds it
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    real = files._swap_in
    def killed(a, b): raise KeyboardInterrupt('killed')
    monkeypatch.setattr(files, '_swap_in', killed)
    with pytest.raises(KeyboardInterrupt): _build(small_imdb, cache, capsys)
    test_eq({p.name: p.read_bytes() for p in folder.iterdir()}, before)   # the old folder, as it was
    test_eq([p.name for p in cache.iterdir()], [folder.name])               # no hidden temporary folder
    monkeypatch.setattr(files, '_swap_in', real)
    _, _, out, _, _ = _build(small_imdb, cache, capsys)
    assert 'rebuilding' in out and 'saved' in out
    test_eq([p.name for p in cache.iterdir()], [folder.name])
