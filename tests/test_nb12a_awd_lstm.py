"""Lesson 12a: the LSTM from scratch and the AWD-LSTM, checked against PyTorch (nn.LSTM, nn.GRUCell,
clip_grad_norm_, F.cross_entropy, autograd through a plain LSTM)."""
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from torch import nn

from exp.nb_00 import test_eq, test_near, test_raises
from exp.nb_08 import DataBunch
from exp.nb_09 import adam_opt
from exp.nb_09b import Learner
from exp.nb_12 import get_lm_dls
from exp.nb_12a import (AWD_LSTM, WEIGHT_HH, EmbeddingDropout, FusedLSTMCell, GRUCell, GradientClipping,
                        LSTMCell, LSTMLayer, LinearDecoder, PerplexityTableCallback, RNNDropout, RNNTrainer,
                        SequentialRNN, StackedLSTM, WeightDropout, accuracy_flat, ar_loss, clip_grad_global_,
                        cross_entropy_flat, dropout_mask, get_language_model, load_lm, perplexity, save_lm,
                        shrink_vocab, take_tokens, tar_loss, to_detach)

pytestmark = pytest.mark.usefixtures('one_thread')


# ---------------------------------------------------------------- the LSTM from scratch

def _grads(params): return [p.grad.clone() for p in params]

@pytest.mark.parametrize('cell_cls', [LSTMCell, FusedLSTMCell])
@pytest.mark.parametrize('n_layers', [1, 2])
def test_stacked_lstm_matches_nn_lstm(cell_cls, n_layers):
    "Outputs, final (h, c) and every gradient (weights, input, initial states) equal nn.LSTM's within 1e-5"
    torch.manual_seed(0)
    ni, nh, bs, sl = 6, 5, 3, 7
    ref = nn.LSTM(ni, nh, num_layers=n_layers, batch_first=True)
    ours = StackedLSTM.from_lstm(ref, cell_cls)
    x = torch.randn(bs, sl, ni)
    h0, c0 = torch.randn(n_layers, bs, nh), torch.randn(n_layers, bs, nh)
    ins_r = [t.clone().requires_grad_() for t in (x, h0, c0)]
    ins_o = [t.clone().requires_grad_() for t in (x, h0, c0)]
    out_r, (h_r, c_r) = ref(ins_r[0], (ins_r[1], ins_r[2]))
    out_o, (h_o, c_o) = ours(ins_o[0], (ins_o[1], ins_o[2]))
    test_near(out_o, out_r, 1e-5); test_near(h_o, h_r, 1e-5); test_near(c_o, c_r, 1e-5)
    g = torch.randn_like(out_r)
    ((out_r * g).sum() + h_r.sum() + 2 * c_r.sum()).backward()
    ((out_o * g).sum() + h_o.sum() + 2 * c_o.sum()).backward()
    for a, b in zip(ins_o, ins_r): test_near(a.grad, b.grad, 1e-5)
    for l, layer in enumerate(ours.layers):
        gw_ih, gw_hh = getattr(ref, f'weight_ih_l{l}').grad, getattr(ref, f'weight_hh_l{l}').grad
        gb_ih, gb_hh = getattr(ref, f'bias_ih_l{l}').grad, getattr(ref, f'bias_hh_l{l}').grad
        cell = layer.cell
        if cell_cls is FusedLSTMCell:
            test_near(cell.weight.grad, torch.cat([gw_ih, gw_hh], 1), 1e-5)
            test_near(cell.bias.grad, gb_ih, 1e-5); test_near(cell.bias.grad, gb_hh, 1e-5)
        else:
            test_near(cell.ih.weight.grad, gw_ih, 1e-5); test_near(cell.hh.weight.grad, gw_hh, 1e-5)
            test_near(cell.ih.bias.grad, gb_ih, 1e-5); test_near(cell.hh.bias.grad, gb_hh, 1e-5)


def test_lstm_layer_without_initial_state_is_zero_state():
    torch.manual_seed(1)
    ref = nn.LSTM(4, 3, batch_first=True)
    x = torch.randn(2, 5, 4)
    test_near(StackedLSTM.from_lstm(ref)(x)[0], ref(x)[0], 1e-5)


def test_gru_cell_matches_torch():
    "Like nn.GRUCell: returns the new h (not a tuple), h defaults to zeros; outputs and gradients over a few steps"
    torch.manual_seed(0)
    ref, ours = nn.GRUCell(4, 6), GRUCell(4, 6)
    with torch.no_grad():
        ours.ih.weight.copy_(ref.weight_ih); ours.ih.bias.copy_(ref.bias_ih)
        ours.hh.weight.copy_(ref.weight_hh); ours.hh.bias.copy_(ref.bias_hh)
    xs, h0 = torch.randn(5, 3, 4), torch.randn(3, 6)
    out = ours(xs[0], h0)
    assert torch.is_tensor(out), type(out)
    test_near(out, ref(xs[0], h0), 1e-5)
    test_near(ours(xs[0]), ref(xs[0]), 1e-5)                      # no h: zeros, as nn.GRUCell
    h, h_ref = h0, h0
    for x in xs: h, h_ref = ours(x, h), ref(x, h_ref)             # the loop nn.GRUCell's users write
    test_near(h, h_ref, 1e-5)
    h.sum().backward(); h_ref.sum().backward()
    test_near(ours.ih.weight.grad, ref.weight_ih.grad, 1e-5); test_near(ours.hh.bias.grad, ref.bias_hh.grad, 1e-5)
    test_raises(lambda: ours(xs[0][0], h0[0]), ValueError, contains='(bs, 4)')


# ---------------------------------------------------------------- dropouts

@pytest.mark.parametrize('p', [0.1, 0.5, 0.8])
def test_dropout_mask_divides_by_one_minus_p(p):
    "The divisor is 1-p (not sqrt(1-p)): values are 0 and 1/(1-p), and the mean is 1"
    torch.manual_seed(0)
    m = dropout_mask(torch.zeros(1, dtype=torch.float64), (400, 500), p)
    vals = set(np.round(m.unique().numpy(), 9).tolist())
    assert vals <= {0., round(1 / (1 - p), 9)} and len(vals) == 2
    test_near(m.mean(), 1., 0.02)
    test_near((m == 0).double().mean(), p, 0.01)
    test_eq(m.dtype, torch.float64)


def test_dropout_p_checked():
    for bad in (1., -0.1, 1.5):
        test_raises(lambda: dropout_mask(torch.zeros(1), (2,), bad), ValueError, contains='dropout_mask')
        test_raises(lambda: RNNDropout(bad), ValueError, contains='RNNDropout')
        test_raises(lambda: WeightDropout(nn.LSTM(2, 2), bad), ValueError, contains='weight_p')
        test_raises(lambda: EmbeddingDropout(nn.Embedding(3, 2), bad), ValueError, contains='embed_p')


@settings(max_examples=25, deadline=None)
@given(bs=st.integers(1, 5), sl=st.integers(1, 8), nf=st.integers(1, 6), p=st.floats(0.05, 0.9),
       seed=st.integers(0, 1000))
def test_rnn_dropout_same_units_every_step(bs, sl, nf, p, seed):
    "Property: the output has the input's shape, and a unit dropped at one step is dropped at every step"
    torch.manual_seed(seed)
    x = torch.rand(bs, sl, nf) + 0.5
    y = RNNDropout(p)(x)
    test_eq(y.shape, x.shape)
    zero = y == 0
    assert (zero == zero[:, :1]).all()
    kept = ~zero
    test_near(y[kept], x[kept] / (1 - p), 1e-5)


def test_rnn_dropout_preserves_expectation_and_eval_is_identity():
    torch.manual_seed(0)
    dp = RNNDropout(0.4)
    x = torch.randn(2, 3, 4)
    mean = torch.stack([dp(x) for _ in range(4000)]).mean(0)
    test_near(mean, x, 0.1)
    dp.eval(); assert dp(x) is x


def _lstm_pair(p, seed=0, ni=4, nh=5):
    "A plain nn.LSTM and a WeightDropout(nn.LSTM) with the same weights"
    torch.manual_seed(seed)
    plain = nn.LSTM(ni, nh, batch_first=True)
    wd = WeightDropout(nn.LSTM(ni, nh, batch_first=True), p)
    wd.load_state_dict({(WEIGHT_HH + '_raw' if k == WEIGHT_HH else 'module.' + k): v
                        for k, v in plain.state_dict().items()})
    return plain, wd


def test_weight_dropout_raw_weight_is_the_only_parameter():
    _, wd = _lstm_pair(0.5)
    names = [n for n, _ in wd.named_parameters()]
    assert 'weight_hh_l0_raw' in names and not any(n.endswith(WEIGHT_HH) for n in names)
    test_eq(len(names), 4)
    keys = list(wd.state_dict())
    wd.train(); wd(torch.randn(2, 3, 4)); wd.eval(); wd(torch.randn(2, 3, 4))
    test_eq(list(wd.state_dict()), keys)                        # stable across forwards
    test_eq(sorted(keys), sorted(['weight_hh_l0_raw', 'module.weight_ih_l0', 'module.bias_ih_l0', 'module.bias_hh_l0']))
    test_raises(lambda: WeightDropout(nn.LSTM(2, 2), 0.5, layer_names='weight_xx'), ValueError, contains='weight_xx')


def test_weight_dropout_eval_and_p0_equal_plain_lstm():
    plain, wd = _lstm_pair(0.5)
    x = torch.randn(3, 6, 4)
    wd.eval(); test_near(wd(x)[0], plain(x)[0], 1e-6)
    plain0, wd0 = _lstm_pair(0.)
    wd0.train(); test_near(wd0(x)[0], plain0(x)[0], 1e-6)


def test_weight_dropout_training_first_step_equal_later_differ():
    plain, wd = _lstm_pair(0.5)
    x = torch.randn(3, 6, 4)
    wd.train()
    out, ref = wd(x)[0], plain(x)[0]
    test_near(out[:, 0], ref[:, 0], 1e-6)                      # h0 = 0: weight_hh has no effect yet
    assert not torch.allclose(out[:, 1:], ref[:, 1:], atol=1e-4)


def test_weight_dropout_gradient_reaches_raw_weight_times_mask():
    "grad(raw) = grad through a plain LSTM given the dropped copy, times the mask (autograd oracle)"
    p = 0.5
    plain, wd = _lstm_pair(p, seed=3)
    wd.train()
    x, g = torch.randn(2, 5, 4), torch.randn(2, 5, 5)
    torch.manual_seed(11)
    dropped = wd.dropped_weights()[WEIGHT_HH].detach()
    raw = wd.weight_hh_l0_raw.detach()
    mask = (dropped != 0).float() / (1 - p)
    test_near(dropped, raw * mask, 1e-6)
    with torch.no_grad(): plain.weight_hh_l0.copy_(dropped)
    (plain(x)[0] * g).sum().backward()
    torch.manual_seed(11)                                       # the same RNG state: the same mask
    (wd(x)[0] * g).sum().backward()
    assert wd.weight_hh_l0_raw.grad is not None
    test_near(wd.weight_hh_l0_raw.grad, plain.weight_hh_l0.grad * mask, 1e-5)
    test_near(wd.module.weight_ih_l0.grad, plain.weight_ih_l0.grad, 1e-5)


def test_weight_dropout_optimizer_step_and_state_dict_round_trip(tmp_path):
    _, wd = _lstm_pair(0.5)
    opt = torch.optim.SGD(wd.parameters(), lr=0.1)
    before = wd.weight_hh_l0_raw.detach().clone()
    wd.train(); wd(torch.randn(2, 4, 4))[0].sum().backward(); opt.step()
    assert not torch.equal(before, wd.weight_hh_l0_raw)
    torch.save(wd.state_dict(), tmp_path / 'wd.pth')
    _, wd2 = _lstm_pair(0.5, seed=9)
    wd2.load_state_dict(torch.load(tmp_path / 'wd.pth', weights_only=True))
    x = torch.randn(2, 4, 4)
    wd.eval(); wd2.eval(); test_near(wd2(x)[0], wd(x)[0], 1e-6)


def test_weight_dropout_to_before_first_forward_and_no_warnings():
    _, wd = _lstm_pair(0.5)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        wd = wd.to(torch.float64)                                 # _apply before any forward
        test_eq(wd.weight_hh_l0_raw.dtype, torch.float64)
        wd.train()
        for _ in range(3): wd(torch.randn(2, 3, 4, dtype=torch.float64))[0].sum().backward()


def test_embedding_dropout_whole_rows_scaled_and_eval_plain():
    torch.manual_seed(0)
    emb = nn.Embedding(200, 6, padding_idx=1)
    p = 0.3
    edp = EmbeddingDropout(emb, p)
    words = torch.arange(200).repeat(2, 1)
    out = edp(words)
    test_eq(out[0], out[1])                                        # one mask for the batch: the same word, the same fate
    dropped = (out[0] == 0).all(1)
    assert 0 < dropped.sum() < 200
    assert ((out[0] == 0).any(1) == dropped).all()                 # rows are all zero or none zero
    test_near(out[0][~dropped], emb.weight[~dropped] / (1 - p), 1e-6)
    edp.eval(); test_eq(edp(words), emb(words))


def test_embedding_dropout_keeps_padding_idx():
    torch.manual_seed(0)
    emb = nn.Embedding(10, 3, padding_idx=1)
    edp = EmbeddingDropout(emb, 0.2)
    edp(torch.tensor([[1, 2, 1, 3]])).sum().backward()
    test_eq(emb.weight.grad[1], torch.zeros(3))


# ---------------------------------------------------------------- AR, TAR

def test_ar_tar_direct_formulas_time_not_batch():
    "A tensor where differencing along the batch axis and along time give different numbers"
    h = torch.tensor([[[0., 1.], [1., 1.], [3., 2.]],
                      [[10., 0.], [11., 0.], [13., 4.]]])          # bs 2, sl 3, 2 features
    along_time = ((h[:, 1:] - h[:, :-1]) ** 2).mean()
    along_batch = ((h[1:] - h[:-1]) ** 2).mean()
    assert abs(along_time - along_batch) > 10
    manual = sum((h[b, t, f] - h[b, t - 1, f]) ** 2 for b in range(2) for t in (1, 2) for f in range(2)) / 8
    test_near(tar_loss(h, 1.5), 1.5 * manual, 1e-6)
    test_near(ar_loss(h, 2.), 2 * (h ** 2).sum() / h.numel(), 1e-6)


# ---------------------------------------------------------------- the model

def test_hidden_state_carried_two_batches_equal_one_long():
    torch.manual_seed(0)
    enc = AWD_LSTM(30, 6, 8, 3, pad_token=1).eval()
    ids = torch.randint(0, 30, (4, 12))
    full_raw, _ = enc(ids)
    enc.reset()
    a, b = enc(ids[:, :7])[0], enc(ids[:, 7:])[0]
    for l in range(3): test_near(torch.cat([a[l], b[l]], 1), full_raw[l], 1e-6)


def test_no_gradient_into_the_previous_batch():
    torch.manual_seed(0)
    lm = get_language_model(30, 6, 8, 2, pad_token=1, output_p=0., hidden_p=0., input_p=0., embed_p=0., weight_p=0.)
    ids = torch.randint(0, 30, (3, 8))
    first, raw1, _ = lm(ids)
    assert all(not t.requires_grad for h in lm[0].hidden for t in h)
    second, _, _ = lm(ids)
    (g,) = torch.autograd.grad(second.sum(), raw1[-1], allow_unused=True)
    assert g is None                                              # batch 2's graph does not reach batch 1's
    assert not torch.allclose(first, second)                      # but the state was carried over


def test_reset_on_new_batch_size_and_output_sizes():
    torch.manual_seed(0)
    enc = AWD_LSTM(30, 6, 8, 2, pad_token=1)
    raw, outs = enc(torch.randint(0, 30, (4, 5)))
    test_eq([o.shape for o in raw], [(4, 5, 8), (4, 5, 6)])
    test_eq(len(outs), 2)
    raw, _ = enc(torch.randint(0, 30, (7, 5)))
    test_eq(enc.bs, 7); test_eq(enc.hidden[0][0].shape, (1, 7, 8))
    test_raises(lambda: AWD_LSTM(30, 6, 8, 0, pad_token=1), ValueError, contains='n_layers')


def test_weight_tying_survives_an_optimizer_step():
    torch.manual_seed(0)
    lm = get_language_model(40, 6, 8, 2, pad_token=1)
    emb, dec = lm[0].emb, lm[1].decoder
    assert dec.weight is emb.weight
    test_eq(sum(p is emb.weight for p in lm.parameters()), 1)     # one parameter, counted once
    opt = torch.optim.Adam(lm.parameters(), 1e-2)
    before = emb.weight.detach().clone()
    out, _, _ = lm(torch.randint(0, 40, (2, 5)))
    out.sum().backward(); opt.step()
    assert dec.weight is emb.weight and dec.weight.data_ptr() == emb.weight.data_ptr()
    assert not torch.equal(before, emb.weight)
    untied = get_language_model(40, 6, 8, 2, pad_token=1, tie_weights=False)
    assert untied[1].decoder.weight is not untied[0].emb.weight


def test_decoder_outputs_and_sequential_reset():
    torch.manual_seed(0)
    lm = get_language_model(40, 6, 8, 2, pad_token=1)
    assert isinstance(lm, SequentialRNN) and isinstance(lm[1], LinearDecoder)
    lm.eval()
    dec, raw, outs = lm(torch.randint(0, 40, (2, 5)))
    test_eq(dec.shape, (2, 5, 40))
    test_near(outs[-1], raw[-1], 1e-7)                             # eval: no output dropout
    lm[0].hidden = [(torch.ones_like(h), torch.ones_like(c)) for h, c in lm[0].hidden]
    lm.reset()
    assert all((h == 0).all() and (c == 0).all() for h, c in lm[0].hidden)


def test_to_detach_nested():
    a = torch.ones(2, requires_grad=True) * 2
    res = to_detach([(a, a), (a, a)])
    assert isinstance(res, list) and isinstance(res[0], tuple)
    assert all(not t.requires_grad for pair in res for t in pair)


# ---------------------------------------------------------------- training pieces

def test_flat_loss_and_accuracy_match_torch():
    torch.manual_seed(0)
    sc, tg = torch.randn(3, 4, 7), torch.randint(0, 7, (3, 4))
    test_near(cross_entropy_flat(sc, tg), F.cross_entropy(sc.permute(0, 2, 1), tg), 1e-6)
    test_near(accuracy_flat(sc, tg), (sc.argmax(-1) == tg).float().mean(), 1e-7)
    test_near(perplexity(2.0), math.e ** 2, 1e-9)


@pytest.mark.parametrize('max_norm', [0.5, 100.])
def test_clip_grad_global_matches_clip_grad_norm(max_norm):
    torch.manual_seed(0)
    a = [nn.Parameter(torch.randn(5, 3)) for _ in range(4)]
    b = [nn.Parameter(p.detach().clone()) for p in a]
    for p, q in zip(a, b):
        p.grad = torch.randn_like(p); q.grad = p.grad.clone()
    test_near(clip_grad_global_(a, max_norm), nn.utils.clip_grad_norm_(b, max_norm), 1e-5)
    for p, q in zip(a, b): test_near(p.grad, q.grad, 1e-5)


class _Run:
    "A stand-in for the loop: the attributes the callbacks read"
    def __init__(self, **kw): self.__dict__.update(kw)


def test_gradient_clipping_callback():
    torch.manual_seed(0)
    model = nn.Linear(5, 5)
    for p in model.parameters(): p.grad = torch.randn_like(p) * 10
    cb = GradientClipping(0.1); cb.set_runner(_Run(model=model))
    assert cb.after_backward() is None
    total = torch.cat([p.grad.flatten() for p in model.parameters()]).norm()
    test_near(total, 0.1, 1e-4)
    test_raises(lambda: GradientClipping(0.), ValueError, contains='clip')


def test_rnn_trainer_keeps_decoded_and_adds_ar_tar_in_training_only():
    torch.manual_seed(0)
    dec, raw, out = torch.randn(2, 4, 9), [torch.randn(2, 4, 3)], [torch.randn(2, 4, 3)]
    run = _Run(pred=(dec, raw, out), loss=torch.tensor(1.), in_train=True)
    cb = RNNTrainer(α=2., β=3.); cb.set_runner(run)
    assert cb.after_pred() is None
    assert run.pred is dec
    assert cb.after_loss() is None
    test_near(run.loss, 1. + ar_loss(out[-1], 2.) + tar_loss(raw[-1], 3.), 1e-6)
    run.pred, run.loss, run.in_train = (dec, raw, out), torch.tensor(1.), False
    cb.after_pred(); cb.after_loss()
    test_near(run.loss, 1., 1e-9)


def _tiny_lm_data(seed=0, vocab=25, n_docs=40, bs=4, bptt=6):
    g = torch.Generator().manual_seed(seed)
    docs = [np.asarray(torch.randint(2, vocab, (int(torch.randint(10, 30, (1,), generator=g)),), generator=g))
            for _ in range(n_docs)]
    return DataBunch(*get_lm_dls(docs[:32], docs[32:], bs, bptt, seed=seed), c_in=vocab, c_out=vocab)


def test_learner_fit_with_rnn_callbacks_logs_perplexity():
    "A short fit through lesson 09b's Learner: the table's perplexity is exp(valid loss); the loss falls"
    torch.manual_seed(0)
    data = _tiny_lm_data()
    model = get_language_model(25, 8, 10, 2, pad_token=1)
    logs = []
    learn = Learner(model, data, cross_entropy_flat, opt_func=adam_opt(), lr=1e-2,
                    cbs=[PerplexityTableCallback(accuracy_flat, logger=logs.append), RNNTrainer(α=2., β=1.),
                         GradientClipping(0.1)])
    learn.fit(3)
    table = learn.perplexity_table.table              # lesson 09c's FitTable: names and rows of strings
    header, rows = table.names, table.rows
    test_eq(len(rows), 3)
    test_eq(logs, repr(table).split('\n'))            # the logger got the table as aligned text lines
    test_eq(logs[0].split(), header)
    i_loss, i_ppl = header.index('valid_loss'), header.index('valid_perplexity')
    for row in rows: test_near(float(row[i_ppl]), math.exp(float(row[i_loss])), 0.01)
    assert float(rows[-1][i_loss]) < float(rows[0][i_loss]) or float(rows[-1][i_loss]) < math.log(25)


# ---------------------------------------------------------------- data helpers, saving

def test_take_tokens_and_shrink_vocab():
    docs = [np.arange(n) for n in (5, 7, 3, 9)]
    test_eq(take_tokens(docs), docs)
    part = take_tokens(docs, 10, seed=0)
    assert sum(map(len, part)) >= 10 and sum(map(len, part[:-1])) < 10
    test_eq([len(d) for d in take_tokens(docs, 10, seed=0)], [len(d) for d in part])   # seeded
    new, v = shrink_vocab([np.array([0, 3, 1, 8], dtype=np.int32)], list('abcdefghi'), 3)
    test_eq(new[0], np.array([0, 0, 1, 0])); test_eq(new[0].dtype, np.int32); test_eq(v, ['a', 'b', 'c'])
    test_raises(lambda: shrink_vocab(docs, list('abc'), 1), ValueError, contains='max_vocab')


def test_save_and_load_lm(tmp_path):
    torch.manual_seed(0)
    cfg = dict(vocab_sz=20, emb_sz=4, n_hid=6, n_layers=2, pad_token=1)
    lm = get_language_model(**cfg)
    dest = save_lm(tmp_path / 'models' / 'lm.pth', lm, [f'w{i}' for i in range(20)], cfg)
    test_eq(sorted(p.name for p in dest.parent.iterdir()), ['lm.pth'])    # no temporary file left
    lm2, vocab = load_lm(dest)
    test_eq(vocab[3], 'w3')
    ids = torch.randint(0, 20, (2, 5))
    lm.eval(); lm2.eval()
    test_near(lm2(ids)[0], lm(ids)[0], 1e-6)
    (tmp_path / 'bad.pth').write_bytes(b'not a checkpoint')
    test_raises(lambda: load_lm(tmp_path / 'bad.pth'), ValueError, contains='bad.pth')
    test_raises(lambda: load_lm(tmp_path / 'none.pth'), FileNotFoundError, contains='none.pth')


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_weight_dropout_on_cuda_matches_cpu():
    "The fused (cuDNN) path: eval output and the raw weight's gradient equal the CPU's"
    plain, wd = _lstm_pair(0.5, seed=5)
    x = torch.randn(2, 5, 4)
    wd_gpu = WeightDropout(nn.LSTM(4, 5, batch_first=True), 0.5)
    wd_gpu.load_state_dict(wd.state_dict())
    wd_gpu = wd_gpu.cuda().eval()
    wd.eval()
    test_near(wd_gpu(x.cuda())[0].cpu(), wd(x)[0], 1e-4)
    wd.weight_p = wd_gpu.weight_p = 0.                          # the same (no) mask on both devices
    wd.train(); wd_gpu.train()
    wd(x)[0].sum().backward(); wd_gpu(x.cuda())[0].sum().backward()
    test_near(wd_gpu.weight_hh_l0_raw.grad.cpu(), wd.weight_hh_l0_raw.grad, 1e-4)
