"Lesson 13a's exercises, checked against F.scaled_dot_product_attention, nn.MultiheadAttention, the sinusoid formula and F.cross_entropy"
import math

import torch
import torch.nn.functional as F
from torch import nn

from exercises import close, exercise, expect, finite

D64 = torch.float64


def _gen(seed): return torch.Generator().manual_seed(seed)


def _pad_mask(n_real, lk):
    "(bs, lk) True at the pads: sentence b has n_real[b] real keys, then pads"
    return torch.arange(lk)[None, :] >= torch.tensor(n_real)[:, None]


def _allowed(n_real, lq, lk, causal):
    "SDPA's (bs, lq, lk) mask, True = may attend: the real keys, and with `causal` the keys up to the query's position"
    ok = ~_pad_mask(n_real, lk)[:, None, :].expand(-1, lq, -1)
    if causal: ok = ok & (torch.arange(lk)[None, :] <= torch.arange(lk - lq, lk)[:, None])   # queries: the last lq keys
    return ok


def _sdpa(q, k, v, allowed):
    "Output and weights from F.scaled_dot_product_attention (the weights: the attention of the identity matrix)"
    eye = torch.eye(k.shape[-2], dtype=k.dtype).expand(*k.shape[:-1], k.shape[-2])
    return F.scaled_dot_product_attention(q, k, v, attn_mask=allowed), F.scaled_dot_product_attention(q, k, eye, attn_mask=allowed)


@exercise('13a.1')
def attention_check(attention):
    "Outputs and weights against F.scaled_dot_product_attention: plain, causal (fewer queries than keys too), pad masks, heads"
    g = _gen(0)
    bs, h, d = 2, 2, 4
    cases = [(3, 5, False, [5, 5], 'no mask'), (4, 4, True, [4, 4], 'causal=True'),
             (2, 5, True, [5, 5], 'causal=True, 2 queries (the last 2 of 5 positions)'),
             (3, 5, False, [5, 2], 'a pad mask (5 and 2 real keys)'),
             (3, 5, True, [4, 2], 'causal=True and a pad mask (4 and 2 real keys)')]
    for lq, lk, causal, n_real, desc in cases:
        for shape in ((bs, h), (bs,)):
            q, k, v = [torch.randn(*shape, n, d, generator=g, dtype=D64) for n in (lq, lk, lk)]
            pad = None if min(n_real) == lk else _pad_mask(n_real, lk)
            allowed = _allowed(n_real, lq, lk, causal)
            if len(shape) == 2: allowed = allowed[:, None]
            want, want_w = _sdpa(q, k, v, allowed)
            out, w = attention(q, k, v, pad, causal)
            what = f'(bs, {"heads, " if len(shape) == 2 else ""}{lq}, {d}) queries and {lk} keys, {desc}'
            close(f'your `attention` weights for {what}', w, want_w, atol=1e-10, note=' (the softmax of F.scaled_dot_product_attention)')
            close(f'your `attention` output for {what}', out, want, atol=1e-10, note=' (F.scaled_dot_product_attention)')
    q, k, v = [torch.randn(2, 2, n, d, generator=g, dtype=D64) for n in (3, 5, 5)]
    keep = torch.tensor([0., 2., 2., 0., 2.], dtype=D64)
    want_w = _sdpa(q, k, v, None)[1]
    out, _ = attention(q, k, v, drop=lambda w: w * keep)
    close('your `attention` output with a `drop` that zeroes keys 0 and 3 and doubles the others', out,
          (want_w * keep) @ v, atol=1e-10, note=' (drop(weights) @ v)')
    pad = torch.tensor([[True] * 5, [False, False, True, True, True]])     # the first sentence: pads only
    for causal in (False, True):
        out, w = attention(q, k, v, pad, causal)
        finite(f'your `attention` output for a sentence of pads only (causal={causal})', out)
        finite(f'your `attention` weights for a sentence of pads only (causal={causal})', w)
        close(f'your `attention` weights for a sentence of pads only (causal={causal})', w[0], torch.zeros(2, 3, 5, dtype=D64),
              note=' (no key to attend to: zero weights)')
        close(f'your `attention` output for a sentence of pads only (causal={causal})', out[0], torch.zeros(2, 3, d, dtype=D64),
              note=' (no key to attend to: zeros)')


def _their_mha(d, h, seed):
    torch.manual_seed(seed)
    theirs = nn.MultiheadAttention(d, h, batch_first=True, dtype=D64).eval()
    with torch.no_grad():                        # PyTorch starts the biases at 0: make them count
        theirs.in_proj_bias.normal_(); theirs.out_proj.bias.normal_()
    return theirs


def _copied(MultiHeadAttention, theirs, d, h, use_sdpa):
    ours = MultiHeadAttention(d, h, use_sdpa=use_sdpa).double().eval()
    with torch.no_grad():
        ours.in_proj.weight.copy_(theirs.in_proj_weight); ours.in_proj.bias.copy_(theirs.in_proj_bias)
        ours.out_proj.weight.copy_(theirs.out_proj.weight); ours.out_proj.bias.copy_(theirs.out_proj.bias)
    return ours


@exercise('13a.2')
def multi_head_attention(MultiHeadAttention):
    "Self- and cross-attention, pad and causal masks, with and without SDPA, against nn.MultiheadAttention with copied weights"
    d, h, bs, L, lk = 8, 2, 2, 4, 5
    state = torch.random.get_rng_state()
    try: theirs = _their_mha(d, h, 0)
    finally: torch.random.set_rng_state(state)
    g = _gen(1)
    x, mem = torch.randn(bs, L, d, generator=g, dtype=D64), torch.randn(bs, lk, d, generator=g, dtype=D64)
    no_future = torch.ones(L, L, dtype=torch.bool).triu(1)             # nn.MultiheadAttention: True = may not attend
    cases = [('self-attention', None, None, False), ('self-attention with pads (4 and 2 real tokens)', None, [4, 2], False),
             ('causal self-attention', None, None, True), ('causal self-attention with pads (4 and 3 real tokens)', None, [4, 3], True),
             ('cross-attention to a (2, 5, 8) memory', mem, None, False),
             ('cross-attention to a (2, 5, 8) memory with pads (5 and 2 real tokens)', mem, [5, 2], False)]
    for use_sdpa in (True, False):
        ours = _copied(MultiHeadAttention, theirs, d, h, use_sdpa)
        for desc, m, n_real, causal in cases:
            kv = x if m is None else m
            pad = None if n_real is None else _pad_mask(n_real, kv.shape[1])
            with torch.no_grad():
                want, want_w = theirs(x, kv, kv, key_padding_mask=pad, attn_mask=no_future if causal else None,
                                      average_attn_weights=False)
                out, w = ours(x, m, pad_mask=pad, causal=causal)
            what = f'your `MultiHeadAttention(8, 2, use_sdpa={use_sdpa})` output for (2, 4, 8) inputs, {desc},'
            uses = '' if use_sdpa else '; it uses your `attention` too'
            close(what, out, want, atol=1e-10, note=f' (nn.MultiheadAttention with the same weights{uses})')
            if not use_sdpa:
                expect(w is not None, f'your `MultiHeadAttention(8, 2)` returned no attention weights for {desc}, '
                                      f'expected (2, 2, 4, {kv.shape[1]}) weights from `attention`')
                close(f'your `MultiHeadAttention(8, 2)` attention weights for {desc},', w, want_w, atol=1e-10,
                      note=' (nn.MultiheadAttention per head; it uses your `attention` too)')


def _sinusoids(n, d):
    "The formula, one number at a time in double precision"
    enc = torch.zeros(n, d, dtype=D64)
    for p in range(n):
        for c in range(d):
            angle = p / 10000 ** (2 * (c // 2) / d)
            enc[p, c] = math.sin(angle) if c % 2 == 0 else math.cos(angle)
    return enc


@exercise('13a.3')
def sinusoidal_positions_check(sinusoidal_positions):
    "The table against sin(p / 10000^(2i/d)) in column 2i and cos in column 2i+1, computed here, for even and odd d"
    for n, d in [(20, 8), (6, 2), (9, 7)]:
        close(f'your `sinusoidal_positions({n}, {d})`', sinusoidal_positions(n, d), _sinusoids(n, d), atol=2e-5, rtol=0,
              note=' (sin(p / 10000^(2i/d)) in column 2i, cos in column 2i+1, position p in row p)')


@exercise('13a.4')
def smoothed_loss(smoothed_seq2seq_loss):
    "Against F.cross_entropy(label_smoothing=eps, ignore_index=pad) on the prediction aligned to the target"
    nc = 7
    for sp, sy, eps, pad_idx, seed in [(5, 5, 0.1, 1, 0), (8, 5, 0.1, 1, 1), (3, 6, 0.3, 1, 2), (5, 5, 0.2, 0, 3)]:
        g = _gen(seed)
        pred = torch.randn(3, sp, nc, generator=g, dtype=D64)
        targ = torch.randint(0, nc, (3, sy), generator=g)
        targ[targ == pad_idx] = (pad_idx + 2) % nc
        for b, n in enumerate((sy, sy - 2, 1)): targ[b, n:] = pad_idx
        aligned = pred[:, :sy] if sp >= sy else torch.cat([pred, pred.new_zeros(3, sy - sp, nc)], 1)
        want = F.cross_entropy(aligned.reshape(-1, nc), targ.reshape(-1), label_smoothing=eps, ignore_index=pad_idx)
        what = 'longer than' if sp > sy else 'shorter than' if sp < sy else 'as long as'
        close(f'your `smoothed_seq2seq_loss` of a (3, {sp}, {nc}) prediction and a (3, {sy}) target with pads, eps={eps}',
              smoothed_seq2seq_loss(pred, targ, eps=eps, pad_idx=pad_idx), want,
              note=f' (F.cross_entropy with label_smoothing={eps}, ignore_index={pad_idx}; the prediction is {what} the target)')
