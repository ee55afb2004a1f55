"""Lesson 13: seq2seq translation (data helpers, loss, bidirectional state, teacher forcing, attention, BLEU)."""
import math
import random
import zipfile

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from exp.nb_00 import DATASETS, URLs, test_eq, test_near, untar_data
from exp.nb_04 import Callback
from exp.nb_08 import DataBlockError, DataBunch
from exp.nb_09 import sgd_opt
from exp.nb_09b import Learner
from exp.nb_13 import (AdditiveAttention, Seq2SeqAttn, Seq2SeqDataset, Seq2SeqRNN, TeacherForcing, align_pred,
                       bleu_stats, cat_directions, corpus_bleu, get_seq2seq_dls, ids_to_tokens, is_question,
                       length_cut, load_vectors, read_pairs, seq2seq_acc, seq2seq_collate, seq2seq_eval,
                       seq2seq_loss)

pytestmark = pytest.mark.usefixtures('one_thread')
PAD, BOS, EOS = 1, 2, 3


# ---------------------------------------------------------------- data

def test_fra_eng_registered_and_read():
    info = DATASETS[URLs.FRA_ENG]
    assert URLs.FRA_ENG == 'https://www.manythings.org/anki/fra-eng.zip' and info.folder == 'fra-eng'
    pairs = read_pairs(untar_data(URLs.FRA_ENG) / 'fra.txt')
    test_eq(len(pairs), 76036)
    test_eq(pairs[0], ('Go.', 'Va !'))
    assert all(en and fr for en, fr in pairs)


def test_read_pairs_three_columns_and_errors(tmp_path):
    fn = tmp_path / 'fra.txt'
    fn.write_text('Hi.\tSalut !\tCC-BY 2.0 (France) Attribution: tatoeba.org\n\nRun!\tCours !\n', encoding='utf-8')
    test_eq(read_pairs(fn), [('Hi.', 'Salut !'), ('Run!', 'Cours !')])
    fn.write_text('Hi.\tSalut !\nonly English\n', encoding='utf-8')
    with pytest.raises(DataBlockError, match=r'fra\.txt, line 2'): read_pairs(fn)
    fn.write_bytes(b'Hi.\t\xff\n')
    with pytest.raises(DataBlockError, match='fra.txt'): read_pairs(fn)


def test_is_question():
    for q in ['What is it?', 'Who is he?', 'Why not?', 'How old are you?', 'Which one is yours?']: assert is_question(q)
    for s in ['What a day!', 'Where? There.', 'Are you ok?', 'Whoa!', 'Howdy?', 'He asked what it was.']:
        assert not is_question(s), s


@given(st.lists(st.tuples(st.integers(1, 30), st.integers(1, 30)), min_size=1, max_size=60), st.integers(1, 100))
@settings(max_examples=100, deadline=None, database=None)
def test_length_cut_property(lens, pct):
    xs, ys = [np.arange(a) for a, b in lens], [np.arange(b) for a, b in lens]
    xt, yt, xv, yv, cx, cy = length_cut(xs, ys, xs[:5], ys[:5], pct)
    test_eq(cx, int(np.percentile([a for a, b in lens], pct)))
    kept = [(a, b) for a, b in lens if a <= cx and b <= cy]
    test_eq([(len(x), len(y)) for x, y in zip(xt, yt)], kept)
    test_eq(len(xv), sum(a <= cx and b <= cy for a, b in lens[:5]))
    with pytest.raises(ValueError, match='pct'): length_cut(xs, ys, xs, ys, 0)


@given(st.lists(st.tuples(st.lists(st.integers(4, 50), min_size=1, max_size=9),
                          st.lists(st.integers(4, 50), min_size=1, max_size=9)), min_size=1, max_size=12))
@settings(max_examples=100, deadline=None, database=None)
def test_seq2seq_collate_pads_at_the_end(samples):
    xb, yb = seq2seq_collate([(np.array(x), np.array(y)) for x, y in samples], pad_idx=PAD)
    test_eq(xb.shape, (len(samples), max(len(x) for x, _ in samples)))
    test_eq(yb.shape, (len(samples), max(len(y) for _, y in samples)))
    for b, (x, y) in enumerate(samples):
        test_eq(xb[b, :len(x)].tolist(), x); test_eq(yb[b, :len(y)].tolist(), y)
        assert (xb[b, len(x):] == PAD).all() and (yb[b, len(y):] == PAD).all()


def test_seq2seq_dls_cover_everything_once():
    gen = np.random.default_rng(0)
    xs = [gen.integers(4, 20, gen.integers(1, 12)) for _ in range(203)]
    ys = [gen.integers(4, 20, gen.integers(1, 9)) for _ in range(203)]
    ds = Seq2SeqDataset(xs, ys)
    train_dl, valid_dl = get_seq2seq_dls(ds, ds, bs=16, pad_idx=PAD, seed=0)
    seen = []
    for xb, yb in train_dl:
        lens = (xb != PAD).sum(1)
        test_eq(lens.max().item(), xb.shape[1])          # no all-pad column
        seen += sorted(tuple(x[x != PAD].tolist()) for x in xb)
    test_eq(sorted(seen), sorted(tuple(x.tolist()) for x in xs))
    vl = [(xb != PAD).sum(1) for xb, _ in valid_dl]
    v = torch.cat(vl)
    assert (v[:-1] >= v[1:]).all()                      # validation: longest first
    with pytest.raises(ValueError, match='y has 2'): Seq2SeqDataset(xs[:3], ys[:2])


# ---------------------------------------------------------------- loss

def test_seq2seq_loss_equals_cross_entropy_on_hand_padded():
    torch.manual_seed(0)
    pred = torch.randn(4, 3, 11)
    targ = torch.randint(4, 11, (4, 7)); targ[0, 5:] = PAD; targ[2, 2:] = PAD
    by_hand = torch.cat([pred, torch.zeros(4, 4, 11)], 1)
    flat_p, flat_t = by_hand.reshape(-1, 11), targ.reshape(-1)
    test_near(seq2seq_loss(pred, targ, ignore_pad=False), F.cross_entropy(flat_p, flat_t))
    keep = flat_t != PAD
    test_near(seq2seq_loss(pred, targ), F.cross_entropy(flat_p[keep], flat_t[keep]))
    test_near(seq2seq_loss(pred, targ, reduction='sum'), F.cross_entropy(flat_p[keep], flat_t[keep], reduction='sum'))
    # a prediction longer than the target is cut to it
    long = torch.randn(4, 9, 11)
    test_near(seq2seq_loss(long, targ), F.cross_entropy(long[:, :7].reshape(-1, 11)[keep], flat_t[keep]))
    test_eq(align_pred(long, targ).shape, (4, 7, 11))


def test_seq2seq_loss_gradient_matches_autograd_of_cross_entropy():
    torch.manual_seed(1)
    p1 = torch.randn(3, 2, 6, requires_grad=True)
    p2 = p1.detach().clone().requires_grad_()
    targ = torch.tensor([[4, 5, 3], [5, 3, 1], [3, 1, 1]])
    seq2seq_loss(p1, targ).backward()
    keep = targ.view(-1) != PAD
    F.cross_entropy(torch.cat([p2, torch.zeros(3, 1, 6)], 1).view(-1, 6)[keep], targ.view(-1)[keep]).backward()
    test_near(p1.grad, p2.grad)


def test_seq2seq_acc_ignores_pads():
    targ = torch.tensor([[4, 5, 3, 1], [6, 3, 1, 1]])
    pred = F.one_hot(torch.tensor([[4, 7, 3, 9], [6, 8, 2, 2]]), 10).float()     # right: 4, 3, 6 of 5 real tokens
    test_near(seq2seq_acc(pred, targ), 3 / 5)
    test_near(seq2seq_acc(pred[:, :2], targ), 2 / 5)          # padded predictions never match


# ---------------------------------------------------------------- model

def _copy_layer(src, dst, layer):
    "Copy layer `layer` (both directions) of bidirectional GRU `src` into the one-layer bidirectional GRU `dst`"
    for suffix in ('', '_reverse'):
        for kind in ('weight_ih', 'weight_hh', 'bias_ih', 'bias_hh'):
            getattr(dst, f'{kind}_l0{suffix}').data.copy_(getattr(src, f'{kind}_l{layer}{suffix}').data)


def test_cat_directions_matches_bidirectional_gru_per_layer():
    torch.manual_seed(0)
    gru = nn.GRU(5, 4, 2, batch_first=True, bidirectional=True)
    x = torch.randn(3, 6, 5)
    out, h = gru(x)
    hc = cat_directions(h, 2)
    # layer 0: a one-layer bidirectional GRU with the same weights; its final states are ours
    g0 = nn.GRU(5, 4, 1, batch_first=True, bidirectional=True)
    _copy_layer(gru, g0, 0)
    out0, _ = g0(x)
    test_near(hc[0], torch.cat([out0[:, -1, :4], out0[:, 0, 4:]], 1))
    # layer 1 (top): forward state at the last position, backward state at the first
    test_near(hc[1], torch.cat([out[:, -1, :4], out[:, 0, 4:]], 1))
    with pytest.raises(ValueError, match='expected 4'): cat_directions(h[:3], 2)


def test_encoder_ignores_trailing_pads():
    torch.manual_seed(0)
    for bidir in (False, True):
        m = Seq2SeqRNN(20, 15, 5, emb_sz=6, nh=5, bidir=bidir).eval()
        x = torch.randint(4, 20, (3, 4)); x[1, 2:] = PAD
        h1, (o1, mask1) = m.encode(x)
        h2, (o2, mask2) = m.encode(torch.cat([x, torch.full((3, 3), PAD)], 1))
        test_near(h1, h2); test_near(o1, o2[:, :4]); test_eq(o2[:, 4:], torch.zeros(3, 3, o2.shape[2]))
        # the second sentence alone gives the same state as inside the padded batch
        h3, _ = m.encode(x[1:2, :2])
        test_near(h3[:, 0], h1[:, 1])
    with pytest.raises(ValueError, match='all padding'): m.encode(torch.full((2, 3), PAD))


def _forced_bias(m, token):
    with torch.no_grad():
        m.out.bias.fill_(-1e4)
        m.out.bias[token] = 1e4


def test_greedy_decoding_stops_at_eos_and_never_exceeds_out_len():
    torch.manual_seed(0)
    for cls in (Seq2SeqRNN, Seq2SeqAttn):
        m = cls(20, 15, out_len=7, emb_sz=6, nh=5).eval()
        x = torch.randint(4, 20, (4, 5))
        _forced_bias(m, EOS)
        test_eq(m(x).shape, (4, 1, 15))                  # everyone said EOS at once: one step
        _forced_bias(m, 9)
        test_eq(m(x).shape, (4, 7, 15))                  # nobody stops: exactly out_len steps
        with torch.no_grad(): m.out.bias.zero_()
        for _ in range(5): assert m(torch.randint(4, 20, (4, int(torch.randint(1, 9, ()))))).shape[1] <= 7
    with pytest.raises(ValueError, match='out_len'): Seq2SeqRNN(5, 5, out_len=0)


def test_decoder_stops_only_when_whole_batch_is_done():
    torch.manual_seed(0)
    m = Seq2SeqRNN(20, 15, out_len=6, emb_sz=6, nh=5).eval()
    calls = []
    orig = m.decode_step
    def step(inp, h, enc):                 # item 0 says EOS at step 1, item 1 at step 3
        logits, h, a = orig(inp, h, enc)
        k = len(calls); calls.append(k)
        logits = torch.full_like(logits, -1e4)
        logits[0, EOS if k == 1 else 5] = 0; logits[1, EOS if k == 3 else 6] = 0
        return logits, h, a
    m.decode_step = step
    out = m(torch.randint(4, 20, (2, 3)))
    test_eq(out.shape[1], 4)


def _decoder_inputs(m, x, targ, pr):
    seen = []
    hook = m.emb_dec.register_forward_hook(lambda mod, i, o: seen.append(i[0].clone()))
    m.pr_force, m.force_targ = pr, targ
    try: pred = m(x)
    finally: hook.remove()
    return torch.stack(seen, 1), pred


@pytest.mark.parametrize('cls', [Seq2SeqRNN, Seq2SeqAttn])
def test_teacher_forcing_inputs(cls):
    torch.manual_seed(0)
    m = cls(30, 20, out_len=8, emb_sz=8, nh=8).train()
    x, targ = torch.randint(4, 30, (3, 5)), torch.randint(4, 20, (3, 5))
    inps, pred = _decoder_inputs(m, x, targ, 1.)
    test_eq(inps[:, 0], torch.full((3,), BOS))
    test_eq(inps[:, 1:6], targ)                           # exactly the target tokens, then its own argmax
    test_eq(inps[:, 6:], pred.argmax(-1)[:, 5:inps.shape[1] - 1])
    inps, pred = _decoder_inputs(m, x, targ, 0.)
    test_eq(inps[:, 1:], pred.argmax(-1)[:, :-1])
    m.eval()                                              # validation never forces
    inps, pred = _decoder_inputs(m, x, targ, 1.)
    test_eq(inps[:, 1:], pred.argmax(-1)[:, :-1])


class _Probe(Callback):
    _order = 5
    def __init__(self): self.train, self.valid = [], []
    def begin_batch(self):
        m = self.model
        (self.train if self.in_train else self.valid).append((m.pr_force, m.force_targ is self.yb))


def test_teacher_forcing_callback_schedule_and_validation():
    torch.manual_seed(0)
    gen = np.random.default_rng(0)
    xs = [gen.integers(4, 20, gen.integers(1, 6)) for _ in range(64)]
    ys = [np.append(gen.integers(4, 15, gen.integers(1, 5)), EOS) for _ in range(64)]
    ds = Seq2SeqDataset(xs, ys)
    data = DataBunch(*get_seq2seq_dls(ds, ds, bs=16, pad_idx=PAD, seed=0))
    model = Seq2SeqRNN(20, 15, out_len=7, emb_sz=6, nh=5)
    probe, tf = _Probe(), TeacherForcing(end_epoch=2)
    learn = Learner(model, data, seq2seq_loss, opt_func=sgd_opt, lr=0.1, cbs=[probe])
    learn.fit(3, cbs=[tf])
    test_eq(len(tf.prs), 12)
    test_near(torch.tensor(tf.prs), torch.tensor([max(0., 1 - i / 8) for i in range(12)]))
    assert all(is_targ for _, is_targ in probe.train)
    test_eq([p for p, _ in probe.train], tf.prs)
    assert probe.valid and all(p == 0 and not is_targ for p, is_targ in probe.valid)
    assert model.pr_force == 0 and model.force_targ is None
    with pytest.raises(ValueError, match='end_epoch'): TeacherForcing(0)


def test_attention_weights_and_context():
    torch.manual_seed(0)
    att = AdditiveAttention(6, 4, 5)
    enc, h = torch.randn(4, 8, 6), torch.randn(4, 4)
    lens = torch.tensor([8, 5, 1, 3])
    mask = torch.arange(8)[None] >= lens[:, None]
    ctx, a = att(att.keys(enc), enc, h, mask)
    test_near(a.sum(1), torch.ones(4))
    test_eq(a[mask], torch.zeros(int(mask.sum())))
    for b in range(4):                                    # the formula, position by position
        s = torch.stack([att.V @ torch.tanh(att.W1.weight @ enc[b, j] + att.W2.weight @ h[b] + att.W2.bias)
                         for j in range(lens[b])])
        test_near(a[b, :lens[b]], torch.softmax(s, 0))
        test_near(ctx[b], sum(a[b, j] * enc[b, j] for j in range(8)))


def test_attention_model_returns_masked_weights():
    torch.manual_seed(0)
    m = Seq2SeqAttn(30, 20, out_len=6, emb_sz=8, nh=8, bidir=True).eval()
    x = torch.randint(4, 30, (3, 5)); x[1, 2:] = PAD
    pred, attn = m(x, ret_attn=True)
    test_eq(attn.shape, (3, pred.shape[1], 5))
    test_near(attn.sum(-1), torch.ones(3, pred.shape[1]))
    test_eq(attn[1, :, 2:], torch.zeros(pred.shape[1], 3))
    _, none = Seq2SeqRNN(30, 20, out_len=6, emb_sz=8, nh=8).eval()(x, ret_attn=True)
    assert none is None


def test_tied_weights_and_load_vectors():
    m = Seq2SeqRNN(10, 6, out_len=3, emb_sz=4, nh=3)
    assert m.out.weight is m.emb_dec.weight
    vocab = ['xxunk', 'xxpad', 'xxbos', 'xxeos', 'chat', 'chien']
    missed = load_vectors(m.emb_dec, vocab, {'chat': np.ones(4), 'chien': np.arange(4.)}, scale=3.)
    test_eq(missed, vocab[:4])
    test_eq(m.emb_dec.weight[4], torch.full((4,), 3.)); test_eq(m.emb_dec.weight[5], 3 * torch.arange(4.))


# ---------------------------------------------------------------- BLEU

def _sacre(hyps, refs, smooth):
    import sacrebleu   # the oracle (requirements.txt)
    bleu = sacrebleu.metrics.BLEU(tokenize='none', smooth_method=smooth, force=True)
    return bleu.corpus_score([' '.join(h) for h in hyps], [[' '.join(r) for r in refs]]).score


def _corpus(seed, n, vocab, max_len, min_len=1):
    rng = random.Random(seed)
    words = [f'w{i}' for i in range(vocab)]
    refs = [[rng.choice(words) for _ in range(rng.randint(min_len, max_len))] for _ in range(n)]
    hyps = []
    for r in refs:                                       # noisy copies: dropped, swapped and changed words
        h = [w if rng.random() > 0.3 else rng.choice(words) for w in r if rng.random() > 0.15]
        if rng.random() < 0.2: h = h + [rng.choice(words)]
        hyps.append(h)
    return hyps, refs


@pytest.mark.parametrize('seed,n,vocab,max_len,min_len', [(0, 300, 30, 15, 1), (1, 200, 8, 6, 1),
                                                         (2, 400, 100, 25, 5), (3, 250, 15, 4, 1)])
@pytest.mark.parametrize('smooth', ['none', 'exp'])
def test_bleu_matches_sacrebleu(seed, n, vocab, max_len, min_len, smooth):
    hyps, refs = _corpus(seed, n, vocab, max_len, min_len)
    ours = corpus_bleu(hyps, refs, smooth=smooth)
    assert ours > 1
    assert abs(ours - _sacre(hyps, refs, smooth)) < 0.01


def test_bleu_edge_cases_against_sacrebleu():
    ref = 'the cat is on the mat'.split()
    cases = {
        'perfect': ([ref, ref[:3]], [ref, ref[:3]]),
        'no overlap': ([['a', 'b', 'c', 'd', 'e']], [ref]),
        'no 4-gram match': (['the cat sat on the mat'.split()], [ref]),
        'short hypothesis': ([['the', 'cat']], [ref]),
        'one-word hypotheses': ([['the'], ['mat']], [ref, ref]),
        'longer than the reference': (['the cat is on the mat and the dog is too'.split()], [ref]),
        'empty hypothesis': ([[], ref], [ref, ref]),
    }
    for name, (hyps, refs) in cases.items():
        for smooth in ('none', 'exp'):
            assert abs(corpus_bleu(hyps, refs, smooth=smooth) - _sacre(hyps, refs, smooth)) < 0.01, (name, smooth)
    test_near(corpus_bleu(*cases['perfect']), 100.)
    test_eq(corpus_bleu(*cases['no overlap']), 0.)
    test_eq(corpus_bleu(*cases['no 4-gram match']), 0.)
    assert corpus_bleu(*cases['no 4-gram match'], smooth='exp') > 0
    test_eq(corpus_bleu([[]], [ref]), 0.)
    with pytest.raises(ValueError, match='2 hyps but 1 refs'): corpus_bleu([ref, ref], [ref])
    with pytest.raises(ValueError, match='smooth'): corpus_bleu([ref], [ref], smooth='add-k')


def test_bleu_stats_clipped():
    m, t, hl, rl = bleu_stats('the the the the'.split(), 'the cat the'.split())
    test_eq((m, t, hl, rl), ([2, 0, 0, 0], [4, 3, 2, 1], 4, 3))


def test_ids_to_tokens_and_eval():
    vocab = ['xxunk', 'xxpad', 'xxbos', 'xxeos', 'xxmaj', 'a', 'b']
    test_eq(ids_to_tokens([4, 5, 0, 6, 3, 5], vocab), ['a', 'xxunk', 'b'])
    test_eq(ids_to_tokens([5, 1, 6], vocab), ['a'])
    torch.manual_seed(0)
    gen = np.random.default_rng(0)
    xs = [gen.integers(4, 20, gen.integers(1, 6)) for _ in range(40)]
    ys = [np.append(gen.integers(4, 7, gen.integers(1, 5)), EOS) for _ in range(40)]
    ds = Seq2SeqDataset(xs, ys)
    _, valid_dl = get_seq2seq_dls(ds, ds, bs=8, pad_idx=PAD)
    m = Seq2SeqRNN(20, 7, out_len=6, emb_sz=6, nh=5)
    stats, (srcs, hyps, refs) = seq2seq_eval(m, valid_dl, vocab, device='cpu')
    test_eq(len(hyps), 40)
    # the loss is the per-token mean over the whole set: recompute it batch by batch
    tot, n = 0., 0
    with torch.no_grad():
        for xb, yb in valid_dl:
            tot += seq2seq_loss(m(xb), yb, reduction='sum').item(); n += (yb != PAD).sum().item()
    test_near(stats['loss'], tot / n)
    test_near(stats['bleu'], corpus_bleu(hyps, refs))


def test_sample_pairs_and_split_translation():
    "Lesson 13's data steps as functions (13a uses them): a seeded sample, a seeded split, vocabularies of the training part"
    from exp.nb_13 import sample_pairs, split_translation
    pairs = [(f'What {i}?', f'Quoi {i} ?') if i % 3 else (f'Go {i}.', f'Va {i} !') for i in range(40)]
    test_eq(sample_pairs(pairs), pairs)
    test_eq(sample_pairs(pairs, 10), sample_pairs(pairs, 10))                       # seeded
    assert len(sample_pairs(pairs, 10)) == 10 and set(sample_pairs(pairs, 10)) <= set(pairs)
    assert all(en.startswith('What') for en, fr in sample_pairs(pairs, questions_only=True))
    fr_toks = [fr.split() + ['xxeos'] for en, fr in pairs]
    en_toks = [en.split() + ['xxeos'] for en, fr in pairs]
    td = split_translation(fr_toks, en_toks, p_valid=0.25, pct_cut=100, min_freq=1)
    test_eq((len(td.x_train), len(td.x_valid)), (30, 10))
    train_words = {w for i in range(30) for w in td.proc_y.deproc1(td.y_train[i])}
    assert set(td.proc_y.vocab) - train_words <= {'xxunk', 'xxpad', 'xxbos', 'xxeos', 'xxfld', 'xxrep', 'xxwrep', 'xxup', 'xxmaj'}
    test_eq(td.cut_y, max(len(y) for y in td.y_train))
