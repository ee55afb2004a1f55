"""Lesson 13a: the Transformer from scratch, checked against PyTorch and against its own properties.

- `attention` vs `F.scaled_dot_product_attention` (Hypothesis, fp64): outputs and gradients of q, k, v over
  shapes (with and without a heads dimension), trailing pads per sentence (0 real keys included: our output is
  then zeros, never NaN, and the gradients are finite zeros), causal with lq == lk and with lq < lk (the
  queries are the LAST lq positions); the weights sum to 1 and are 0 on masked keys.
- `MultiHeadAttention` vs `nn.MultiheadAttention(batch_first=True)` with weights copied by `copy_mha`
  (Hypothesis, fp64): self-attention with a key padding mask and the causal `causal_mask(L, L)`,
  cross-attention to a memory of another length with its pad mask; outputs, head-averaged weights and the
  projection gradients (sentences with no real key skipped: PyTorch gives NaN there; ours gives the output
  bias); the `use_sdpa=True` path gives the same outputs.
- `EncoderLayer` / `DecoderLayer` (plain and SDPA) vs `nn.TransformerEncoderLayer` /
  `nn.TransformerDecoderLayer` (`norm_first=True, batch_first=True`, eval, fp64), copied by `copy_layer`; the
  encoder is compared on the non-pad positions only (PyTorch's fast path may zero the pads).
- `Seq2SeqTransformer` (small, eval, fp64): each sentence of a padded batch gets the logits it gets alone
  without its pads, teacher-forced and greedy; causality of the teacher-forced decoder; the incremental (cached)
  greedy decoder equals the teacher-forced forward on its own output (2 layers; fixed, learned positions; SDPA);
  the greedy cross-attention weights returned by `ret_attn`.
- `smoothed_seq2seq_loss` vs `F.cross_entropy(label_smoothing=eps, ignore_index=pad)`, values and gradients,
  also for predictions shorter than the target (aligned with zero logits, as lesson 13's `align_pred`).
- `sched_inv_sqrt`: linear warm-up, the peak at the warm-up fraction, 1/sqrt after, ValueError outside (0, 1].
- `FeedTargets` in a real `Learner` fit (one tiny epoch of random tokens): teacher-forced training batches with
  a finite loss, greedy validation batches (`model.targ` None, one-word decoder steps), `model.targ` cleared
  after each prediction and None after the fit.
- `Positions` / `sinusoidal_positions`: the formula, learned and fixed both add to the input from `start`,
  a ValueError naming max_len past the table; `MultiHeadAttention` refuses d not a multiple of n_heads.
"""
import copy
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from exp.nb_00 import test_eq, test_near
from exp.nb_04 import Callback
from exp.nb_08 import DataBunch
from exp.nb_09 import sgd_opt
from exp.nb_09b import Learner
from exp.nb_13 import Seq2SeqDataset, get_seq2seq_dls
from exp.nb_13a import (DecoderLayer, EncoderLayer, FeedTargets, MultiHeadAttention, Positions,
                        Seq2SeqTransformer, attention, causal_mask, copy_layer, copy_mha, sched_inv_sqrt,
                        sinusoidal_positions, smoothed_seq2seq_loss)

pytestmark = pytest.mark.usefixtures('one_thread')
PAD, BOS, EOS = 1, 2, 3
D64 = torch.float64
HYP = dict(deadline=None, database=None)


def _pad_mask(n_real, lk):
    "(bs, lk) True at the pads: sentence b has its first n_real[b] keys real, the rest trailing pads"
    return torch.arange(lk)[None] >= torch.tensor(n_real)[:, None]


def _allowed(n_real, lq, lk, causal):
    """The oracle's (bs, lq, lk) mask, True = may attend (SDPA's convention, the opposite of ours), built without
    `causal_mask`: query i is position lk - lq + i, it sees the real keys j <= that position"""
    ok = ~_pad_mask(n_real, lk)[:, None, :].expand(-1, lq, -1)
    if causal: ok = ok & (torch.arange(lk)[None, :] <= torch.arange(lk - lq, lk)[:, None])
    return ok


# ---------------------------------------------------------------- attention vs SDPA

@st.composite
def attention_cases(draw):
    bs, h, d = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 8))
    lk, causal = draw(st.integers(1, 7)), draw(st.booleans())
    lq = draw(st.integers(1, lk)) if causal else draw(st.integers(1, 7))
    n_real = draw(st.lists(st.integers(0, lk), min_size=bs, max_size=bs))
    return bs, h, d, lq, lk, causal, n_real, draw(st.booleans()), draw(st.integers(0, 2 ** 31 - 1))


@given(attention_cases())
@settings(max_examples=40, **HYP)
def test_attention_matches_sdpa_values_and_gradients(case):
    bs, h, d, lq, lk, causal, n_real, with_heads, seed = case
    gen = torch.Generator().manual_seed(seed)
    shape = (bs, h) if with_heads else (bs,)
    q, k, v = [torch.randn(*shape, n, d, generator=gen, dtype=D64) for n in (lq, lk, lk)]
    g = torch.randn(*shape, lq, d, generator=gen, dtype=D64)
    pad = _pad_mask(n_real, lk)

    qo, ko, vo = [t.clone().requires_grad_() for t in (q, k, v)]
    out, w = attention(qo, ko, vo, pad, causal)
    (out * g).sum().backward()
    test_eq(out.shape, (*shape, lq, d)); test_eq(w.shape, (*shape, lq, lk))
    assert torch.isfinite(out).all() and torch.isfinite(w).all()
    for t in (qo, ko, vo): assert torch.isfinite(t.grad).all()

    allowed = _allowed(n_real, lq, lk, causal)
    wa = w if with_heads else w[:, None]
    test_eq(wa.masked_select(~allowed[:, None]).abs().sum().item(), 0.)          # nothing on masked keys
    test_near(wa.sum(-1), allowed.any(-1)[:, None].expand_as(wa.sum(-1)).to(D64), 1e-12)   # rows sum to 1 (or 0)

    empty = [b for b in range(bs) if n_real[b] == 0]      # no real key: zeros, and zero gradients
    for b in empty:
        test_eq(out[b].abs().max().item(), 0.)
        for t in (qo, ko, vo): test_eq(t.grad[b].abs().max().item(), 0.)
    full = [b for b in range(bs) if n_real[b] > 0]
    if not full: return
    # The oracle: SDPA on the sentences with a real key. Causal: queries for all lk positions (the last lq are
    # ours, the first ones random) under the square lower-triangular mask, then its last lq rows.
    sel = torch.tensor(full)
    qf = torch.cat([torch.randn(*q[sel].shape[:-2], lk - lq, d, generator=gen, dtype=D64), q[sel]], -2) if causal else q[sel]
    lq_f = qf.shape[-2]
    ins = [t.clone().requires_grad_() for t in (qf, k[sel], v[sel])]
    mask = _allowed([n_real[b] for b in full], lq_f, lk, causal)
    if with_heads: mask = mask[:, None]
    ref = F.scaled_dot_product_attention(*ins, attn_mask=mask)[..., lq_f - lq:, :]
    (ref * g[sel]).sum().backward()
    test_near(out[sel], ref, 1e-10)
    test_near(qo.grad[sel], ins[0].grad[..., lq_f - lq:, :], 1e-10)
    test_near(ko.grad[sel], ins[1].grad, 1e-10); test_near(vo.grad[sel], ins[2].grad, 1e-10)


def test_causal_mask_layout_and_all_pads_give_zeros():
    test_eq(causal_mask(3, 3), ~torch.ones(3, 3, dtype=torch.bool).tril())
    test_eq(causal_mask(2, 4), torch.tensor([[False, False, False, True], [False, False, False, False]]))
    q, k, v = (torch.randn(2, 2, n, 4, dtype=D64, requires_grad=True) for n in (3, 5, 5))
    pad = torch.tensor([[True] * 5, [False] * 2 + [True] * 3])
    for causal in (False, True):
        out, w = attention(q, k, v, pad, causal=causal)
        out.sum().backward()
        assert not out.isnan().any() and not w.isnan().any()
        test_eq(out[0], torch.zeros(2, 3, 4, dtype=D64)); test_eq(w[0], torch.zeros(2, 3, 5, dtype=D64))
        for t in (q, k, v): assert torch.isfinite(t.grad).all() and t.grad[0].abs().max() == 0
        q.grad = k.grad = v.grad = None


# ---------------------------------------------------------------- MultiHeadAttention vs nn.MultiheadAttention

@st.composite
def mha_cases(draw):
    bs, h, dh = draw(st.integers(1, 3)), draw(st.sampled_from([1, 2, 4])), draw(st.integers(1, 3))
    cross, L = draw(st.booleans()), draw(st.integers(1, 6))
    lk = draw(st.integers(1, 6)) if cross else L
    n_real = draw(st.lists(st.integers(0, lk), min_size=bs, max_size=bs))
    causal = not cross and draw(st.booleans())
    return bs, h, h * dh, L, lk, cross, causal, n_real, draw(st.integers(0, 2 ** 31 - 1))


def _their_mha(d, h, seed):
    torch.manual_seed(seed)
    theirs = nn.MultiheadAttention(d, h, batch_first=True, dtype=D64)
    with torch.no_grad():                        # PyTorch starts the biases at 0: make them count
        theirs.in_proj_bias.normal_(); theirs.out_proj.bias.normal_()
    return theirs


@given(mha_cases())
@settings(max_examples=30, **HYP)
def test_multi_head_attention_matches_torch(case):
    bs, h, d, L, lk, cross, causal, n_real, seed = case
    theirs = _their_mha(d, h, seed)
    ours = copy_mha(MultiHeadAttention(d, h).double(), theirs)
    sdpa = copy_mha(MultiHeadAttention(d, h, use_sdpa=True).double(), theirs)
    x, pad = torch.randn(bs, L, d, dtype=D64), _pad_mask(n_real, lk)
    mem = torch.randn(bs, lk, d, dtype=D64) if cross else None
    kv = mem if cross else x
    out, w = ours(x, mem, pad_mask=pad, causal=causal)
    out_s, w_s = sdpa(x, mem, pad_mask=pad, causal=causal)
    test_eq(w.shape, (bs, h, L, lk)); assert w_s is None
    assert torch.isfinite(out).all()
    for b in range(bs):                          # no real key: attention gives 0, the output is out_proj's bias
        if n_real[b] == 0: test_near(out[b], ours.out_proj.bias.expand(L, d), 1e-12)
    full = torch.tensor([b for b in range(bs) if n_real[b] > 0], dtype=torch.long)
    if not len(full): return
    attn_mask = causal_mask(L, L) if causal else None
    ref, ref_w = theirs(x[full], kv[full], kv[full], key_padding_mask=pad[full], attn_mask=attn_mask)
    test_near(out[full], ref, 1e-10); test_near(w[full].mean(1), ref_w, 1e-10)
    test_near(out_s[full], ref, 1e-10)
    # gradients of the projections, on the sentences torch can do
    g = torch.randn_like(ref)
    (ref * g).sum().backward()
    (ours(x[full], None if mem is None else mem[full], pad_mask=pad[full], causal=causal)[0] * g).sum().backward()
    test_near(ours.in_proj.weight.grad, theirs.in_proj_weight.grad, 1e-10)
    test_near(ours.in_proj.bias.grad, theirs.in_proj_bias.grad, 1e-10)
    test_near(ours.out_proj.weight.grad, theirs.out_proj.weight.grad, 1e-10)


def test_multi_head_attention_checks_heads():
    with pytest.raises(ValueError, match='n_heads'): MultiHeadAttention(10, 4)


# ---------------------------------------------------------------- layers vs PyTorch's

def _seeded_layer(cls, d, h, d_ff, seed):
    torch.manual_seed(seed)
    layer = cls(d, h, d_ff, dropout=0.1, batch_first=True, norm_first=True, dtype=D64).eval()
    with torch.no_grad():                        # LayerNorm starts at (1, 0) and the MHA biases at 0: perturb
        for name, p in layer.named_parameters():
            if 'norm' in name or name.endswith('bias'): p.add_(0.3 * torch.randn_like(p))
    return layer


@st.composite
def layer_cases(draw):
    bs, L, lm = draw(st.integers(1, 3)), draw(st.integers(1, 6)), draw(st.integers(1, 6))
    n_real = draw(st.lists(st.integers(1, L), min_size=bs, max_size=bs))
    m_real = draw(st.lists(st.integers(1, lm), min_size=bs, max_size=bs))
    return bs, L, lm, n_real, m_real, draw(st.booleans()), draw(st.integers(0, 2 ** 31 - 1))


@given(layer_cases())
@settings(max_examples=25, **HYP)
def test_encoder_and_decoder_layers_match_torch(case):
    bs, L, lm, n_real, m_real, use_sdpa, seed = case
    d, h, d_ff = 8, 2, 16
    x, mem = torch.randn(bs, L, d, dtype=D64), torch.randn(bs, lm, d, dtype=D64)
    pad, mem_pad = _pad_mask(n_real, L), _pad_mask(m_real, lm)

    theirs = _seeded_layer(nn.TransformerEncoderLayer, d, h, d_ff, seed)
    ours = copy_layer(EncoderLayer(d, h, d_ff, 0.1, use_sdpa).double().eval(), theirs)
    with torch.no_grad(): out, ref = ours(x, pad), theirs(x, src_key_padding_mask=pad)
    assert torch.isfinite(out).all()
    test_near(out[~pad], ref[~pad], 1e-10)                 # the real positions only
    with torch.no_grad(): test_near(ours(x), theirs(x), 1e-10)

    theirs = _seeded_layer(nn.TransformerDecoderLayer, d, h, d_ff, seed)
    ours = copy_layer(DecoderLayer(d, h, d_ff, 0.1, use_sdpa).double().eval(), theirs)
    with torch.no_grad():
        out = ours(x, mem, mem_pad)
        ref = theirs(x, mem, tgt_mask=causal_mask(L, L), memory_key_padding_mask=mem_pad)
    test_near(out, ref, 1e-10)
    if not use_sdpa:                                       # the cross-attention weights are kept, masked at pads
        test_eq(ours.cross_w.shape, (bs, h, L, lm))
        test_eq(ours.cross_w.masked_select(mem_pad[:, None, None, :]).abs().sum().item(), 0.)


# ---------------------------------------------------------------- the model

N_IN, N_OUT = 23, 17

def _model(n_layers=2, out_len=8, seed=0, **kw):
    torch.manual_seed(seed)
    return Seq2SeqTransformer(N_IN, N_OUT, out_len, d=16, n_heads=2, n_layers=n_layers, d_ff=32, max_len=32,
                              **kw).double().eval()


def _padded_batch(src_lens, targ_lens, extra=1, seed=0):
    "Random tokens (never PAD, BOS or EOS) with trailing pads, `extra` all-pad columns beyond the longest"
    gen = torch.Generator().manual_seed(seed)
    x = torch.full((len(src_lens), max(src_lens) + extra), PAD)
    y = torch.full((len(targ_lens), max(targ_lens) + extra), PAD)
    for b, (lx, ly) in enumerate(zip(src_lens, targ_lens)):
        x[b, :lx] = torch.randint(4, N_IN, (lx,), generator=gen)
        y[b, :ly] = torch.randint(4, N_OUT, (ly,), generator=gen)
    return x, y


MODEL_KINDS = [dict(), dict(learned_pos=True), dict(use_sdpa=True)]
KIND_IDS = ['fixed-pos', 'learned-pos', 'sdpa']


@pytest.mark.parametrize('kw', MODEL_KINDS, ids=KIND_IDS)
def test_padding_invariance_teacher_forced_and_greedy(kw):
    m = _model(**kw)
    src_lens, targ_lens = [5, 3, 1, 4], [4, 2, 6, 1]
    x, y = _padded_batch(src_lens, targ_lens)
    with torch.no_grad():
        m.targ = y
        forced = m(x)
        test_eq(forced.shape, (4, y.shape[1], N_OUT))
        m.targ = None
        greedy = m(x)
        for b, (lx, ly) in enumerate(zip(src_lens, targ_lens)):
            m.targ = y[b:b + 1, :ly]
            test_near(forced[b, :ly], m(x[b:b + 1, :lx])[0], 1e-10)
            m.targ = None
            alone = m(x[b:b + 1, :lx])[0]
            assert len(alone) <= greedy.shape[1]
            test_near(greedy[b, :len(alone)], alone, 1e-10)


def test_teacher_forced_decoder_is_causal():
    m = _model()
    x, y = _padded_batch([5, 3, 6], [6, 4, 6], extra=0, seed=1)
    with torch.no_grad():
        m.targ = y
        base = m(x)
        for j in range(y.shape[1]):
            y2 = y.clone(); y2[:, j] = 4 + (y2[:, j] - 3) % (N_OUT - 4)     # another real token
            m.targ = y2
            out = m(x)
            test_near(out[:, :j + 1], base[:, :j + 1], 1e-12)             # positions 0..j read BOS and targ[:j]
            if j + 1 < y.shape[1]: assert (out[:, j + 1] - base[:, j + 1]).abs().max() > 1e-6
    m.targ = None


@pytest.mark.parametrize('kw', MODEL_KINDS, ids=KIND_IDS)
def test_incremental_decoder_equals_teacher_forced_on_its_output(kw):
    m = _model(n_layers=2, out_len=9, **kw)
    with torch.no_grad(): m.out.bias[EOS] = -50.           # never stop early: use every cached step
    x, _ = _padded_batch([6, 2, 4], [1, 1, 1], seed=2)
    with torch.no_grad():
        greedy = m(x)
        test_eq(greedy.shape, (3, 9, N_OUT))
        m.targ = greedy.argmax(-1)
        forced = m(x)
    m.targ = None
    test_near(forced, greedy, 1e-10)
    with torch.no_grad(): m.out.bias[EOS] = 50.            # everyone says EOS at once: one step
    with torch.no_grad(): test_eq(m(x).shape, (3, 1, N_OUT))


def test_greedy_returns_masked_cross_attention():
    m = _model(out_len=5)
    x, _ = _padded_batch([5, 2, 3], [1, 1, 1], seed=3)
    with torch.no_grad(): logits, attn = m(x, ret_attn=True)
    test_eq(attn.shape, (3, logits.shape[1], x.shape[1]))
    test_near(attn.sum(-1), torch.ones(3, logits.shape[1], dtype=D64), 1e-12)
    test_eq(attn.masked_select((x == PAD)[:, None, :]).abs().sum().item(), 0.)
    with torch.no_grad(): test_near(m(x), logits, 0)


def test_source_longer_than_max_len_names_max_len():
    m = _model()
    with pytest.raises(ValueError, match='max_len is 32'): m(torch.full((1, 33), 5))


# ---------------------------------------------------------------- loss and schedule

@pytest.mark.parametrize('eps', [0., 0.1, 0.3])
def test_smoothed_loss_matches_cross_entropy(eps):
    torch.manual_seed(0)
    targ = torch.randint(4, 11, (4, 7)); targ[0, 5:] = PAD; targ[2, 2:] = PAD
    for sp in (7, 4):                                      # 4: shorter, padded with zero logits
        p1 = torch.randn(4, sp, 11, dtype=D64, requires_grad=True)
        p2 = p1.detach().clone().requires_grad_()
        loss = smoothed_seq2seq_loss(p1, targ, eps=eps, pad_idx=PAD)
        ref = F.cross_entropy(F.pad(p2, (0, 0, 0, 7 - sp)).reshape(-1, 11), targ.reshape(-1),
                              label_smoothing=eps, ignore_index=PAD)
        test_near(loss, ref, 1e-12)
        loss.backward(); ref.backward()
        test_near(p1.grad, p2.grad, 1e-12)
    long = torch.randn(4, 9, 11, dtype=D64)                # longer: cut to the target
    test_near(smoothed_seq2seq_loss(long, targ, eps=eps),
              F.cross_entropy(long[:, :7].reshape(-1, 11), targ.reshape(-1), label_smoothing=eps, ignore_index=PAD),
              1e-12)


def test_sched_inv_sqrt():
    lr, wu = 1e-3, 0.2
    f = sched_inv_sqrt(lr, wu)
    pos = np.linspace(0, 1, 101)
    vals = np.array([f(p) for p in pos])
    test_eq(pos[vals.argmax()], wu); test_near(f(wu), lr, 1e-15)
    test_near(f(0.), 0., 1e-15); test_near(f(0.05), lr / 4, 1e-15); test_near(f(0.1), lr / 2, 1e-15)
    before, after = pos < wu, pos > wu
    test_near(vals[before], lr * pos[before] / wu, 1e-15)
    test_near(vals[after], lr * np.sqrt(wu / pos[after]), 1e-15)
    test_near(f(0.8), lr / 2, 1e-15)
    assert (np.diff(vals[before]) > 0).all() and (np.diff(vals[after]) < 0).all()
    test_near(sched_inv_sqrt(lr, 1.)(1.), lr, 1e-15); test_near(sched_inv_sqrt(lr, 1.)(0.5), lr / 2, 1e-15)
    for bad in (0, -0.1, 1.5):
        with pytest.raises(ValueError, match='warmup'): sched_inv_sqrt(lr, bad)


# ---------------------------------------------------------------- FeedTargets in a Learner

class _Probe(Callback):
    _order = 5                                             # after FeedTargets
    def __init__(self): self.batches, self.losses = [], []
    def begin_batch(self):
        self.batches.append(dict(train=self.in_train, fed=self.model.targ is self.yb, targ_len=self.yb.shape[1]))
    def after_pred(self): self.batches[-1]['pred_shape'] = tuple(self.pred.shape)
    def after_loss(self):
        self.losses.append((self.in_train, self.loss.item()))
        self.batches[-1]['cleared'] = self.model.targ is None       # FeedTargets clears it after the prediction


def test_feed_targets_in_a_learner_fit():
    torch.manual_seed(0)
    gen = np.random.default_rng(0)
    xs = [gen.integers(4, 20, gen.integers(1, 7)) for _ in range(48)]
    ys = [np.append(gen.integers(4, 15, gen.integers(1, 5)), EOS) for _ in range(48)]
    ds = Seq2SeqDataset(xs, ys)
    data = DataBunch(*get_seq2seq_dls(ds, ds, bs=16, pad_idx=PAD, seed=0))
    model = Seq2SeqTransformer(20, 15, out_len=7, d=16, n_heads=2, n_layers=1, d_ff=32, max_len=16)
    calls = []                                             # each forward of the model: (training?, targ set?)
    model.register_forward_pre_hook(lambda mod, args: calls.append((mod.training, mod.targ is not None)))
    steps = []                                             # the decoder's input lengths, each call
    model.decoder[0].register_forward_hook(lambda mod, args, out: steps.append((mod.training, args[0].shape[1])))
    probe = _Probe()
    learn = Learner(model, data, smoothed_seq2seq_loss, opt_func=sgd_opt, lr=0.1, cbs=[FeedTargets(), probe])
    learn.fit(1)
    assert model.targ is None
    train = [b for b in probe.batches if b['train']]
    valid = [b for b in probe.batches if not b['train']]
    test_eq(len(train), 3); assert valid
    assert all(b['fed'] and b['pred_shape'][1] == b['targ_len'] for b in train)   # teacher forcing
    assert all(not b['fed'] and b['pred_shape'][1] <= 7 for b in valid)           # greedy
    assert all(b['cleared'] for b in probe.batches)
    test_eq(calls, [(True, True)] * len(train) + [(False, False)] * len(valid))
    test_eq([n for tr, n in steps if tr], [b['targ_len'] for b in train])          # whole targets at once
    test_eq({n for tr, n in steps if not tr}, {1})                                 # one word per step
    test_eq(sum(not tr for tr, _ in steps), sum(b['pred_shape'][1] for b in valid))
    assert all(math.isfinite(l) for _, l in probe.losses)
    assert any(tr for tr, _ in probe.losses) and any(not tr for tr, _ in probe.losses)


# ---------------------------------------------------------------- positions

def test_sinusoidal_positions_formula():
    for d in (6, 7):
        enc = sinusoidal_positions(5, d)
        test_eq(enc.shape, (5, d))
        for p in range(5):
            for c in range(d):
                angle = p / 10000 ** (2 * (c // 2) / d)
                test_near(enc[p, c], math.sin(angle) if c % 2 == 0 else math.cos(angle), 1e-5)


@pytest.mark.parametrize('learned', [False, True])
def test_positions_add_and_check_max_len(learned):
    torch.manual_seed(0)
    pos = Positions(8, max_len=6, learned=learned)
    table = pos.emb.weight if learned else sinusoidal_positions(6, 8)
    x = torch.randn(2, 4, 8)
    with torch.no_grad():
        test_near(pos(x) - x, table[:4].expand(2, 4, 8), 1e-6)
        test_near(pos(x[:, :1], start=5) - x[:, :1], table[5:6].expand(2, 1, 8), 1e-6)
        test_eq(pos(torch.zeros(1, 6, 8)).shape, (1, 6, 8))
    with pytest.raises(ValueError, match='max_len is 6'): pos(torch.zeros(1, 7, 8))
    with pytest.raises(ValueError, match='max_len'): pos(torch.zeros(1, 2, 8), start=5)
    assert (len(list(pos.parameters())) == 1) == learned
    assert 'enc' not in pos.state_dict()                   # the fixed table is not saved


def test_model_refuses_what_it_cannot_do():
    "A step limit past the position table, weights from the fused kernel, more queries than keys: one line each"
    with pytest.raises(ValueError, match='out_len=10 is more than max_len=6'):
        Seq2SeqTransformer(10, 10, 10, d=8, n_heads=2, n_layers=1, d_ff=8, max_len=6)
    m = Seq2SeqTransformer(10, 10, 4, d=8, n_heads=2, n_layers=1, d_ff=8, use_sdpa=True).eval()
    with pytest.raises(ValueError, match='ret_attn needs use_sdpa=False'): m(torch.randint(4, 10, (2, 3)), ret_attn=True)
    with pytest.raises(ValueError, match='3 queries but 2 keys'): causal_mask(3, 2)


def test_teacher_forced_forward_returns_the_weights_too():
    torch.manual_seed(0)
    m = Seq2SeqTransformer(10, 10, 4, d=8, n_heads=2, n_layers=1, d_ff=8).eval()
    x, m.targ = torch.randint(4, 10, (2, 3)), torch.randint(4, 10, (2, 5))
    out, a = m(x, ret_attn=True)
    test_eq(out.shape, (2, 5, 10)); test_eq(a.shape, (2, 5, 3)); test_near(a.sum(-1), torch.ones(2, 5))
