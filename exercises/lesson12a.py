"Lesson 12a's exercises, checked against PyTorch's LSTM cell and LSTM (copied weights), F.dropout and F.embedding"
import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from exercises import close, equal, expect, exercise


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@contextlib.contextmanager
def _seeded(seed):
    "A block with the global RNG seeded (the dropouts and inits draw from it), the caller's RNG state restored after it"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@exercise('12a.1')
def lstm_cell(LSTMCell):
    "Three steps from a non-zero state, against nn.LSTMCell with the same weights (gates i, f, g, o)"
    ni, nh, bs = 3, 4, 2
    with _seeded(0): ref, cell = nn.LSTMCell(ni, nh), LSTMCell(ni, nh)
    with torch.no_grad():
        cell.ih.weight.copy_(ref.weight_ih); cell.ih.bias.copy_(ref.bias_ih)
        cell.hh.weight.copy_(ref.weight_hh); cell.hh.bias.copy_(ref.bias_hh)
    h, c = _randn(bs, nh, seed=1), _randn(bs, nh, seed=2)
    state, rstate = (h, c), (h, c)
    for step in range(3):
        x = _randn(bs, ni, seed=10 + step)
        out, state = cell(x, state)
        rstate = ref(x, rstate)
        what = f'your `LSTMCell({ni}, {nh})` at step {step}'
        close(f'{what}, the new cell state c', state[1], rstate[1], atol=1e-5,
              note=' (nn.LSTMCell with the same weights; c = σ(f)*c + σ(i)*tanh(g), chunks in the order i, f, g, o)')
        close(f'{what}, the new hidden state h', state[0], rstate[0], atol=1e-5, note=' (h = σ(o)*tanh(c))')
        close(f'{what}, the output', out, rstate[0], atol=1e-5, note=' (the output is the new h)')


@exercise('12a.2')
def rnn_dropout(RNNDropout):
    "One mask per sequence and feature, the same at every step, scaled by 1/(1-p); identity in eval or with p=0"
    p, bs, sl, nf = 0.3, 8, 6, 50
    x = torch.rand(bs, sl, nf, generator=torch.Generator().manual_seed(0)) + 0.5      # no zeros of its own
    dp = RNNDropout(p)
    with _seeded(1): y = dp(x)
    what = f'your `RNNDropout({p})` in training on a ({bs}, {sl}, {nf}) batch'
    expect(isinstance(y, torch.Tensor), f'{what} returns a {type(y).__name__}, expected a tensor')
    equal(f'the shape of the output of {what}', tuple(y.shape), (bs, sl, nf))
    zero = y == 0
    expect(bool(zero.any()), f'{what} drops nothing')
    bad = (zero != zero[:, :1]).nonzero()
    expect(len(bad) == 0, f'{what} drops unit {bad[0, 2].item() if len(bad) else 0} of sequence '
                          f'{bad[0, 0].item() if len(bad) else 0} at some steps and not at others: '
                          'one mask per sequence, the same at every time step (size (bs, 1, features))')
    close(f'{what}, the units kept', y[~zero], x[~zero] / (1 - p), note=' (kept values scaled by 1/(1-p))')
    frac = zero[:, 0].double().mean().item()
    expect(0.15 < frac < 0.45, f'{what} drops {frac:.0%} of the units, expected about {p:.0%}')
    expect(not (zero[:, 0] == zero[:1, 0]).all(), f'{what} drops the same units in every sequence: '
                                                  'each sequence draws its own mask')
    dp0 = RNNDropout(0.)
    close('your `RNNDropout(0.)` in training', dp0(x), x, atol=0, rtol=0, note=' (p=0: nothing dropped)')
    dp.eval()
    close(f'your `RNNDropout({p})` in eval mode', dp(x), x, atol=0, rtol=0, note=' (eval: the input as it is)')


def _wd_pair(WeightDropout, p, ni=3, nh=4):
    with _seeded(0): plain, inner = nn.LSTM(ni, nh, batch_first=True), nn.LSTM(ni, nh, batch_first=True)
    inner.load_state_dict(plain.state_dict())
    return plain, inner, WeightDropout(inner, p)


@exercise('12a.3')
def weight_dropout(WeightDropout):
    "The raw weight a parameter of the wrapper only; forward = nn.LSTM with F.dropout of it (same seed); its gradient"
    p = 0.5
    plain, inner, wd = _wd_pair(WeightDropout, p)
    names = [n for n, _ in wd.named_parameters(remove_duplicate=False)]       # a shared tensor listed twice
    want = ['module.weight_ih_l0', 'module.bias_ih_l0', 'module.bias_hh_l0', 'weight_hh_l0_raw']
    expect('module.weight_hh_l0' not in names,
           f'your `WeightDropout` still has `module.weight_hh_l0` among its parameters ({names}): the LSTM must '
           'lose it, so that the raw copy is the only parameter for that matrix')
    expect('weight_hh_l0_raw' in names, f'your `WeightDropout` has no parameter `weight_hh_l0_raw` (it has {names})')
    equal('the parameters of your `WeightDropout`', sorted(names), sorted(want))
    close('your `WeightDropout` raw weight `weight_hh_l0_raw`', wd.weight_hh_l0_raw, plain.weight_hh_l0, atol=0, rtol=0,
          note=" (the LSTM's own weight_hh_l0, unchanged)")
    x, g = _randn(2, 5, 3, seed=1), _randn(2, 5, 4, seed=2)
    wd.eval()
    close('your `WeightDropout(nn.LSTM(3, 4), 0.5)` output in eval mode', wd(x)[0], plain(x)[0], atol=1e-6,
          note=' (nn.LSTM with the same weights)')
    wd.train()
    with _seeded(7): dropped = F.dropout(wd.weight_hh_l0_raw.detach(), p, True)   # the mask the forward draws
    with _seeded(7): out = wd(x)[0]
    with torch.no_grad(): plain.weight_hh_l0.copy_(dropped)
    ref = plain(x)[0]
    close('your `WeightDropout(nn.LSTM(3, 4), 0.5)` output in training', out, ref, atol=1e-6,
          note=' (nn.LSTM whose weight_hh_l0 is F.dropout(raw weight, 0.5) from the same seed)')
    (out * g).sum().backward(); (ref * g).sum().backward()
    expect(wd.weight_hh_l0_raw.grad is not None,
           'your `WeightDropout` raw weight gets no gradient from a backward pass in training')
    mask = (dropped != 0).double() / (1 - p)
    close('the gradient of your `WeightDropout` raw weight', wd.weight_hh_l0_raw.grad, plain.weight_hh_l0.grad * mask,
          atol=1e-5, note=" (the dropped weight's gradient times the mask)")
    close("the gradient of your `WeightDropout` LSTM's weight_ih_l0", inner.weight_ih_l0.grad, plain.weight_ih_l0.grad,
          atol=1e-5)


@exercise('12a.4')
def embedding_dropout(EmbeddingDropout):
    "Whole rows dropped (the same for each use of a word), the rest scaled; eval and p=0 are F.embedding; gradients"
    V, nf, p, pad = 300, 6, 0.3, 1
    with _seeded(0): emb = nn.Embedding(V, nf, padding_idx=pad)
    edp = EmbeddingDropout(emb, p)
    words = torch.arange(V).repeat(2, 1)                                # every word twice in the batch
    what = f'your `EmbeddingDropout(nn.Embedding({V}, {nf}, padding_idx={pad}), {p})` in training'
    with _seeded(3): out = edp(words)
    equal(f'the shape of the output of {what}', tuple(out.shape), (2, V, nf))
    zero = out[0] == 0
    rows = zero.all(1)
    part = (zero.any(1) & ~rows).nonzero()
    expect(len(part) == 0, f'{what} zeroes some entries of the row of word {part[0].item() if len(part) else 0} '
                           'and not others: a word is dropped whole (a mask of size (vocab, 1) on the weight)')
    close(f'{what}, the second use of each word', out[1], out[0], atol=0, rtol=0,
          note=' (one mask for the batch: a word dropped once is dropped everywhere)')
    frac = rows.double().mean().item()
    expect(0.18 < frac < 0.42, f'{what} drops {frac:.0%} of the words, expected about {p:.0%}')
    close(f'{what}, the rows kept', out[0][~rows], emb.weight[~rows].detach() / (1 - p), atol=1e-6,
          note=' (scaled by 1/(1-p))')
    out.sum().backward()
    grad = emb.weight.grad
    expect(grad is not None, f'{what} passes no gradient to the embedding weight')
    want = (~rows).double()[:, None].expand(V, nf) * 2 / (1 - p)
    want[pad] = 0
    close(f'the embedding weight\'s gradient through {what}, for the sum of the outputs', grad, want, atol=1e-5,
          note=f' (2 uses of each word, times the mask; none for the padding row {pad})')
    edp.eval()
    close('your `EmbeddingDropout` in eval mode', edp(words), F.embedding(words, emb.weight, pad), atol=0, rtol=0)
    edp0 = EmbeddingDropout(emb, 0.)
    close('your `EmbeddingDropout(emb, 0.)` in training', edp0(words), F.embedding(words, emb.weight, pad), atol=0, rtol=0)
