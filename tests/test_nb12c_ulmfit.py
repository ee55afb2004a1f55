"""Lesson 12c: vocabulary matching, layer groups and gradual unfreezing, the padding-aware encoder (packed
sequences, BPT3C), concat pooling, the encoder folder, the classifier data and `predict`."""
import json
import shutil
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from raising import caught
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from exp.nb_00 import test_eq, test_near, test_raises
from exp.nb_03 import Dataset
from exp.nb_05 import one_cycle
from exp.nb_08 import CategoryProcessor, DataBunch, SplitData, label_by_func
from exp.nb_09 import adam_opt
from exp.nb_09b import Learner
from exp.nb_09c import AvgStatsTableCallback
from exp.nb_12 import NumericalizeProcessor, TextList, TokenizeProcessor, get_clas_dls, pad_collate
from exp.nb_12a import get_language_model
from exp.nb_12b import read_pretrained, reverse_docs, save_pretrained
from exp.nb_12c import (PackedAWD_LSTM, PoolingLinearClassifier, SentenceEncoder, clas_param_splitter, disc_lrs,
                        fit_stage, freeze_to, get_text_classifier, in_dataset_order, lm_param_splitter, load_encoder,
                        masked_concat_pool, match_embeds, pad_lengths, predict, save_encoder, text_clas_databunch,
                        unique_params)

pytestmark = pytest.mark.usefixtures('one_thread')

NO_DROP = dict(output_p=0., hidden_p=0., input_p=0., embed_p=0., weight_p=0.)
SPECIALS = ['xxunk', 'xxpad', 'xxbos', 'xxeos']


def tiny_lm(vocab_sz, seed=0, **kw):
    torch.manual_seed(seed)
    return get_language_model(vocab_sz, 6, 10, 2, 1, **(kw or NO_DROP))


def tiny_clas(vocab_sz=60, seed=0, bptt=5, max_len=7, **kw):
    torch.manual_seed(seed)
    return get_text_classifier(vocab_sz, 6, 10, 2, 3, 1, bptt=bptt, max_len=max_len, **{**NO_DROP, **kw})


def padded(docs, pad_idx=1):
    return pad_collate([(d, 0) for d in docs], pad_idx=pad_idx)[0]


# ---------------------------------------------------------------- match_embeds

def test_match_embeds_rows():
    old_vocab = SPECIALS + ['the', 'movie', 'house', 'river']
    new_vocab = SPECIALS + ['movie', 'film', 'the', 'plot', 'house']
    old = tiny_lm(len(old_vocab)).state_dict()
    new = match_embeds(old, old_vocab, new_vocab)
    keys = ['0.emb.weight', '0.emb_dp.emb.weight', '1.decoder.weight', '1.decoder.bias']
    for k in keys:
        test_eq(new[k].shape[0], len(new_vocab))
        for w in new_vocab:
            expect = old[k][old_vocab.index(w)] if w in old_vocab else old[k].mean(0)
            test_near(new[k][new_vocab.index(w)], expect, 1e-6)
    # the bias moved with its word: give 'house' a distinctive bias and find it at its new id
    old['1.decoder.bias'][old_vocab.index('house')] = 7.5
    test_eq(match_embeds(old, old_vocab, new_vocab)['1.decoder.bias'][new_vocab.index('house')].item(), 7.5)
    for k in old:
        if k not in keys: test_eq(new[k], old[k])                       # the LSTMs untouched
    m = get_language_model(len(new_vocab), 6, 10, 2, 1, **NO_DROP)
    m.load_state_dict(new)                                              # a model of the new size takes it
    assert m[1].decoder.weight is m[0].emb.weight                        # still tied


def test_match_embeds_errors():
    vocab = SPECIALS + ['a', 'b']
    old = tiny_lm(len(vocab)).state_dict()
    test_raises(lambda: match_embeds(old, vocab[:-1], vocab), ValueError, 'old_vocab')
    test_raises(lambda: match_embeds({'w': torch.zeros(3)}, vocab, vocab), KeyError, 'emb.weight')


# ---------------------------------------------------------------- splitters and freezing

def check_partition(model, groups):
    ids = [id(p) for g in groups for p in g]
    test_eq(len(ids), len(set(ids)))
    test_eq(set(ids), {id(p) for p in model.parameters()})


def test_unique_params_tied():
    lm = tiny_lm(20)
    test_eq(len(unique_params(lm[0].emb, lm[1])), 2)                   # tied weight once, plus the bias


def test_splitters_partition():
    lm = tiny_lm(30)
    g = lm_param_splitter(lm)
    test_eq(len(g), 3); check_partition(lm, g)
    test_eq({id(p) for p in g[-1]}, {id(lm[0].emb.weight), id(lm[1].decoder.bias)})
    clf = tiny_clas(30)
    g = clas_param_splitter(clf)
    test_eq(len(g), 4); check_partition(clf, g)
    test_eq(len(g[0]), 1)                                                # the embedding alone


def test_gradual_unfreezing_trains_only_named_groups():
    "Each stage moves exactly its groups; a group trained before and frozen now stays bit-identical"
    clf = tiny_clas(40, max_len=50).train()
    groups = clas_param_splitter(clf)
    xb, yb = padded([torch.randint(2, 40, (n,)) for n in (12, 7, 3)]), torch.tensor([0, 2, 1])
    for n_train in (len(groups), 1, 2, 3):
        freeze_to(groups, n_train)
        before = [[p.detach().clone() for p in g] for g in groups]
        opt = adam_opt(wd=0.1)(groups, lr=1e-2)
        for _ in range(2):
            F.cross_entropy(clf(xb), yb).backward()
            opt.step(); opt.zero_grad()
        for i, (g, b) in enumerate(zip(groups, before)):
            moved = [not torch.equal(p, q) for p, q in zip(g, b)]
            if i >= len(groups) - n_train: assert all(moved), (n_train, i)
            else: assert not any(moved), (n_train, i)
    test_raises(lambda: freeze_to(groups, 5), ValueError, 'n_train')


def test_disc_lrs():
    test_near(torch.tensor(disc_lrs(1e-2, 4)), torch.tensor([1e-2 / 2.6**3, 1e-2 / 2.6**2, 1e-2 / 2.6, 1e-2]))
    test_eq(disc_lrs(5e-3, 1), [5e-3])
    test_near(torch.tensor(disc_lrs(1., 3, factor=2)), torch.tensor([0.25, 0.5, 1.]))


# ---------------------------------------------------------------- the padding-aware encoder

def test_pad_lengths():
    x = torch.tensor([[5, 6, 1, 1], [7, 8, 9, 4], [3, 1, 1, 1]])
    test_eq(pad_lengths(x, 1).tolist(), [2, 4, 1])
    test_raises(lambda: pad_lengths(torch.tensor([[1, 5, 6]]), 1), ValueError, 'pads at the end')
    assert 'pad_collate' in pad_lengths.__doc__ and 'at the end' in pad_lengths.__doc__


def test_packed_encoder_states_its_padding_contract():
    "PackedAWD_LSTM reads input[i, :lengths[i]] only: the docstring says the pads go at the end; lengths are checked"
    assert 'padded at the end' in PackedAWD_LSTM.__doc__ and 'pad_lengths' in PackedAWD_LSTM.forward.__doc__
    enc = PackedAWD_LSTM(50, 6, 10, 1, 1, **{k: v for k, v in NO_DROP.items() if k != 'output_p'}).eval()
    x = torch.tensor([[4, 5, 6], [7, 1, 1]])
    for bad in [torch.tensor([3, 4]), torch.tensor([3, -1]), torch.tensor([3]), torch.tensor([[3, 1]]), torch.tensor([3., 1.])]:
        test_raises(lambda: enc(x, bad), ValueError, contains='PackedAWD_LSTM: lengths')
    enc(x, [3, 1]); enc(x, torch.tensor([3, 0]))                      # a list, or a row of length 0


def test_packed_encoder_matches_lstm_alone():
    "Each row of a padded batch gets the outputs and final state of that row run alone"
    torch.manual_seed(0)
    enc = PackedAWD_LSTM(50, 6, 10, 2, 1, **{k: v for k, v in NO_DROP.items() if k != 'output_p'}).eval()
    docs = [torch.randint(2, 50, (n,)) for n in (9, 3, 6)]
    raw, outs, state = enc(padded(docs), torch.tensor([9, 3, 6]))
    for i, d in enumerate(docs):
        r1, o1, s1 = enc(d[None], torch.tensor([len(d)]))
        test_near(outs[-1][i, :len(d)], o1[-1][0], 1e-5)
        test_eq(outs[-1][i, len(d):].abs().sum().item(), 0.)
        for (h, c), (h1, c1) in zip(state, s1): test_near(h[:, i], h1[:, 0], 1e-5); test_near(c[:, i], c1[:, 0], 1e-5)


def test_packed_encoder_zero_length_keeps_state():
    torch.manual_seed(0)
    enc = PackedAWD_LSTM(50, 6, 10, 2, 1, **{k: v for k, v in NO_DROP.items() if k != 'output_p'}).eval()
    h0 = [(torch.randn(1, 2, 10), torch.randn(1, 2, 10)), (torch.randn(1, 2, 6), torch.randn(1, 2, 6))]
    _, outs, state = enc(torch.tensor([[4, 5, 6], [1, 1, 1]]), torch.tensor([3, 0]), h0)
    for (h, c), (h_, c_) in zip(state, h0): test_eq(h[:, 1], h_[:, 1]); test_eq(c[:, 1], c_[:, 1])
    test_eq(outs[-1][1].abs().sum().item(), 0.)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 30), min_size=1, max_size=5), st.integers(1, 8), st.integers(1, 12),
       st.booleans(), st.integers(0, 3))
def test_padded_batch_equals_each_alone(lengths, bptt, max_len, backwards, extra_pad):
    "Eval-mode predictions of a padded batch (with any amount of extra padding) = each review alone; forward and reversed"
    g = torch.Generator().manual_seed(sum(lengths) + bptt)
    docs = [torch.randint(2, 60, (n,), generator=g) for n in lengths]
    if backwards: docs = [torch.from_numpy(d) for d in reverse_docs([d.numpy() for d in docs])]
    clf = tiny_clas(60, seed=1, bptt=bptt, max_len=max_len).eval()
    xb = padded(docs)
    xb = torch.cat([xb, torch.ones(len(docs), extra_pad, dtype=torch.long)], 1)
    with torch.no_grad():
        together = clf(xb)
        alone = torch.cat([clf(d[None]) for d in docs])
    test_near(together, alone, 1e-5)


def test_sentence_encoder_chunks_equal_one_pass():
    torch.manual_seed(2)
    enc = PackedAWD_LSTM(80, 6, 10, 2, 1, **{k: v for k, v in NO_DROP.items() if k != 'output_p'})
    docs = [torch.randint(2, 80, (n,)) for n in (31, 12, 5, 1)]
    xb = padded(docs)
    with torch.no_grad():
        one = enc(xb, pad_lengths(xb, 1))[0][-1]
        for bptt, max_len in ((4, 7), (5, 100), (31, 3), (1, 1)):
            out, lengths = SentenceEncoder(enc, bptt, max_len)(xb)
            test_near(out, one, 1e-5)
            test_eq(lengths.tolist(), [31, 12, 5, 1])


def test_sentence_encoder_gradients_only_last_max_len():
    "Distinct token ids: exactly the embedding rows of each row's last max_len tokens get gradients, equal to a reference"
    torch.manual_seed(3)
    enc = PackedAWD_LSTM(200, 6, 10, 2, 1, **{k: v for k, v in NO_DROP.items() if k != 'output_p'})
    lens, max_len = (23, 9, 4), 7
    ids = torch.randperm(198)[:sum(lens)] + 2
    docs = list(torch.split(ids, lens))
    xb = padded(docs)
    w = torch.randn(6)
    out, lengths = SentenceEncoder(enc, bptt=5, max_len=max_len)(xb)
    (masked_concat_pool(out, lengths) @ torch.cat([w, w, w])).sum().backward()
    got = enc.emb.weight.grad.clone()
    for d in docs:
        test_eq((got[d].abs().sum(1) > 0).tolist(), [False] * max(len(d) - max_len, 0) + [True] * min(len(d), max_len))
    # reference, row by row: the early tokens in one pass without gradients, the window in one pass with them
    enc.emb.weight.grad = None
    for d in docs:
        n_early = max(len(d) - max_len, 0)
        state = None
        outs = []
        if n_early:
            with torch.no_grad():
                o, _, state = enc(d[None, :n_early], torch.tensor([n_early]))
                outs.append(o[-1])
        o, _, _ = enc(d[None, n_early:], torch.tensor([len(d) - n_early]), state)
        outs.append(o[-1])
        full = torch.cat(outs, 1)
        (masked_concat_pool(full, torch.tensor([len(d)])) @ torch.cat([w, w, w])).sum().backward()
    test_near(got, enc.emb.weight.grad, 1e-5)


def test_sentence_encoder_errors():
    se = SentenceEncoder(PackedAWD_LSTM(20, 4, 4, 1, 1), 5, 5)
    test_raises(lambda: se(torch.tensor([[1, 4, 5]])), ValueError, 'pads at the end')
    test_raises(lambda: se(torch.tensor([[4, 5], [1, 1]])), ValueError, 'empty row')
    test_raises(lambda: SentenceEncoder(se.encoder, 0, 5), ValueError, 'positive')


# ---------------------------------------------------------------- pooling and the head

@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 9), min_size=1, max_size=5), st.integers(0, 3))
def test_masked_concat_pool(lengths, extra):
    "last / max / mean over each row's tokens only; whatever sits at the pads changes nothing"
    g = torch.Generator().manual_seed(sum(lengths) * 7 + extra)
    sl = max(lengths) + extra
    out = torch.randn(len(lengths), sl, 3, generator=g) - 5             # all negative: a 0 at a pad would win the max
    ln = torch.tensor(lengths)
    pooled = masked_concat_pool(out, ln)
    for i, n in enumerate(lengths):
        r = out[i, :n]
        test_near(pooled[i], torch.cat([r[-1], r.max(0).values, r.mean(0)]), 1e-6)
    noisy = out.clone()
    for i, n in enumerate(lengths): noisy[i, n:] = 1e3
    test_near(masked_concat_pool(noisy, ln), pooled, 1e-6)


def test_pooling_classifier_shapes_and_errors():
    head = PoolingLinearClassifier([12, 7, 3], [0.1, 0.2])
    test_eq(head((torch.randn(4, 5, 4), torch.tensor([5, 2, 1, 3]))).shape, (4, 3))
    test_eq(sum(isinstance(m, torch.nn.ReLU) for m in head.modules()), 1)   # between the blocks, not at the end
    test_raises(lambda: PoolingLinearClassifier([12, 3], [0.1, 0.2]), ValueError, 'dropouts')


# ---------------------------------------------------------------- the encoder folder

def test_encoder_round_trip_and_vocab_check(tmp_path):
    vocab = SPECIALS + [f'w{i}' for i in range(36)]
    lm = tiny_lm(len(vocab), seed=4)
    config = dict(vocab_sz=len(vocab), emb_sz=6, n_hid=10, n_layers=2, pad_token=1, **NO_DROP)
    dest = save_encoder(tmp_path/'enc', lm, vocab, config, note='x')
    test_eq(sorted(p.name for p in dest.iterdir()), ['config.json', 'vocab.json', 'weights.pth'])
    sd, v, c = read_pretrained(dest)
    test_eq(v, vocab); test_eq(c['part'], 'encoder'); test_eq(c['model'], config)
    clf = tiny_clas(len(vocab), seed=9)
    load_encoder(clf, dest, vocab)
    for k, t in lm[0].state_dict().items(): test_eq(clf[0].encoder.state_dict()[k], t)
    # another word order: refused, naming the file and the first differing id
    swapped = vocab[:5] + [vocab[6], vocab[5]] + vocab[7:]
    test_raises(lambda: load_encoder(tiny_clas(len(vocab)), dest, swapped), ValueError, 'vocab.json')
    test_raises(lambda: load_encoder(tiny_clas(len(vocab)), dest, swapped), ValueError, 'id 5')
    test_raises(lambda: load_encoder(tiny_clas(len(vocab)), dest, vocab[:-1]), ValueError, 'vocab.json')
    # a vocabulary file that does not fit the weights; a whole language model instead of an encoder
    bad = tmp_path/'bad'
    shutil.copytree(dest, bad)
    (bad/'vocab.json').write_text(json.dumps(vocab[:-2]))
    test_raises(lambda: load_encoder(tiny_clas(len(vocab)), bad, vocab[:-2]), ValueError, 'vocab.json')
    whole = save_pretrained(tmp_path/'lm', lm, vocab, config)
    test_raises(lambda: load_encoder(tiny_clas(len(vocab)), whole, vocab), ValueError, 'not an encoder')
    test_raises(lambda: load_encoder(tiny_clas(len(vocab)), tmp_path/'none', vocab), FileNotFoundError, 'none')


# ---------------------------------------------------------------- data, probabilities, predict, stages

GOOD = ['a great film , I loved it', 'great acting and a great story', 'wonderful , great fun', 'I loved this great movie']
BAD = ['a terrible film , I hated it', 'awful acting and a boring story', 'boring , terrible mess', 'I hated this awful movie']


@pytest.fixture(scope='module')
def text_ll():
    texts = GOOD + BAD + GOOD[::-1] + BAD[::-1]
    il = TextList(texts)
    sd = SplitData(il.new(texts[:8]), il.new(texts[8:]))
    label = lambda t: 'pos' if t in GOOD else 'neg'
    return label_by_func(sd, label, proc_x=[TokenizeProcessor(max_workers=1, progress=False), NumericalizeProcessor(min_freq=1)],
                         proc_y=CategoryProcessor())


def test_text_clas_databunch(text_ll):
    full = text_ll.train.proc_x[-1].vocab
    fwd = text_clas_databunch(text_ll, 4, max_vocab=12, max_tokens=6)
    bwd = text_clas_databunch(text_ll, 4, max_vocab=12, max_tokens=6, backwards=True)
    test_eq(fwd.vocab, full[:12]); test_eq(sorted(fwd.classes), ['neg', 'pos'])
    for i in range(8):
        x, y = fwd.train_dl.dataset[i]
        expect = np.where(text_ll.train.x.items[i][:6] < 12, text_ll.train.x.items[i][:6], 0)
        test_eq(x.tolist(), expect.tolist()); test_eq(y, text_ll.train.y.items[i])
        test_eq(bwd.train_dl.dataset[i][0].tolist(), expect[::-1].tolist())
    sub = text_clas_databunch(text_ll, 4, n_train=3, n_valid=2, seed=5)
    test_eq((len(sub.train_dl.dataset), len(sub.valid_dl.dataset)), (3, 2))
    test_eq(sub.train_idx, text_clas_databunch(text_ll, 4, n_train=3, n_valid=2, seed=5).train_idx)   # seeded
    xb, _ = next(iter(fwd.valid_dl))
    pad_lengths(xb, fwd.pad_idx)                                         # pads at the end


def old_get_probs(model, ds, bs=64, pad_idx=1):
    "The oracle: lesson 12c's `get_probs` before `Learner.get_preds` replaced it (batches of `ds` built longest first)"
    order = sorted(range(len(ds)), key=lambda i: len(ds.x[i]), reverse=True)
    res = [None] * len(ds)
    model.eval()
    with torch.no_grad():
        for s in range(0, len(order), bs):
            idx = order[s:s + bs]
            xb, _ = pad_collate([ds[i] for i in idx], pad_idx=pad_idx)
            for i, p in zip(idx, F.softmax(model(xb).float(), -1).cpu()): res[i] = p
    return torch.stack(res)


def test_get_preds_of_a_text_classifier_in_dataset_order():
    clf = tiny_clas(30, seed=6)
    g = torch.Generator().manual_seed(0)
    ds = Dataset([torch.randint(2, 30, (n,), generator=g).numpy() for n in (3, 11, 1, 7, 5)], [0, 1, 2, 0, 1])
    data = DataBunch(*get_clas_dls(ds, ds, 1))                          # validation: batches of 2, longest first
    learn = Learner(clf, data, F.cross_entropy, opt_func=adam_opt())
    probs, targs = learn.get_preds(act=partial(F.softmax, dim=-1))
    test_eq(targs.tolist(), [ds.y[i] for i in (1, 3, 4, 0, 2)])        # the sampler's order
    p = in_dataset_order(probs, data.valid_dl)
    test_eq(in_dataset_order(targs, data.valid_dl).tolist(), ds.y)
    test_eq(p, old_get_probs(clf, ds, bs=2))                            # what lesson 12c printed before, exactly
    with torch.no_grad():
        for i in range(len(ds)): test_near(p[i], F.softmax(clf(torch.as_tensor(ds.x[i], dtype=torch.long)[None]), -1)[0], 1e-5)
    test_near(p.sum(1), torch.ones(5), 1e-5)
    test_raises(lambda: in_dataset_order(probs[:3], data.valid_dl), ValueError, '3 rows for the 5 items')


def test_predict_raw_text(text_ll):
    for backwards in (False, True):
        data = text_clas_databunch(text_ll, 4, backwards=backwards, max_tokens=5)
        torch.manual_seed(0)
        clf = get_text_classifier(len(data.vocab), 6, 10, 2, 2, data.pad_idx, bptt=3, max_len=4, **NO_DROP)
        learn = Learner(clf, data, F.cross_entropy, opt_func=adam_opt())
        ds = data.valid_dl.dataset
        label, probs = predict(learn, BAD[::-1][0])                      # validation review 4, as raw text
        clf.eval()
        with torch.no_grad(): ref = F.softmax(clf(torch.as_tensor(ds.x[4], dtype=torch.long)[None]), -1)[0]
        test_near(probs, ref, 1e-5)
        test_eq(label, data.classes[int(ref.argmax())])
        _, p_unknown = predict(learn, 'zyzzyva qwxq')                    # unknown words: xxunk, still a prediction
        test_eq(p_unknown.shape, (2,))


def test_fit_stage_loads_a_finished_stage(tmp_path, text_ll):
    data = text_clas_databunch(text_ll, 4)
    def learner():
        torch.manual_seed(0)
        clf = get_text_classifier(len(data.vocab), 6, 10, 2, 2, data.pad_idx, bptt=3, max_len=4, **NO_DROP)
        return Learner(clf, data, F.cross_entropy, opt_func=adam_opt(), splitter=clas_param_splitter,
                       cbs=[AvgStatsTableCallback([], logger=lambda *a: None)])
    a = learner()
    h = fit_stage(a, tmp_path/'s.pth', 2, one_cycle(disc_lrs(1e-2, 4)))
    test_eq([e['epoch'] for e in h], [0, 1])
    b = learner()
    h2 = fit_stage(b, tmp_path/'s.pth', 2, one_cycle(disc_lrs(1e-2, 4)))     # finished: loaded, not trained
    test_eq(h2, h)
    for p, q in zip(a.model.parameters(), b.model.parameters()): test_eq(p, q)
    c = learner()
    fit_stage(c, tmp_path/'s.pth', 2, one_cycle(disc_lrs(1e-2, 4)), resume=False)   # trained again: the same run
    for p, q in zip(a.model.parameters(), c.model.parameters()): test_near(p, q, 1e-6)

@pytest.mark.parametrize('fault', ['pickled', 'cut'])
def test_load_encoder_names_a_damaged_weights_file(tmp_path, fault):
    "A pickled or cut weights.pth: one line naming it (once torch's raw message, colour codes, no file name)"
    vocab = SPECIALS + [f'w{i}' for i in range(36)]
    lm = tiny_lm(len(vocab), seed=4)
    config = dict(vocab_sz=len(vocab), emb_sz=6, n_hid=10, n_layers=2, pad_token=1, **NO_DROP)
    dest = save_encoder(tmp_path/'enc', lm, vocab, config)
    w = dest/'weights.pth'
    if fault == 'pickled': torch.save({**lm[0].state_dict(), 'note': Path('x')}, w)
    else: w.write_bytes(w.read_bytes()[:1000])
    e = caught(lambda: load_encoder(tiny_clas(len(vocab)), dest, vocab), ValueError)
    assert str(w) in str(e) and '\n' not in str(e) and '\x1b' not in str(e), str(e)
