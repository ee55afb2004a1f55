"Lesson 13's exercises: the padded sequence loss against F.cross_entropy, BLEU against sacrebleu, additive attention against its formula"
import random

import torch
import torch.nn.functional as F

from exercises import close, exercise, expect, finite


def _gen(seed): return torch.Generator().manual_seed(seed)


def _targets(lens, sy, pad_idx, n_classes, seed):
    "(bs, sy) random targets (never pad_idx), padded with `pad_idx` after lens[b] tokens"
    g = _gen(seed)
    t = torch.randint(0, n_classes, (len(lens), sy), generator=g)
    t[t == pad_idx] = (pad_idx + 1) % n_classes
    for b, n in enumerate(lens): t[b, n:] = pad_idx
    return t


@exercise('13.1')
def seq2seq_loss_check(seq2seq_loss):
    "Shorter, longer and equally long predictions, pads ignored or not, against F.cross_entropy on a hand-aligned prediction"
    nc = 6
    for sp, sy, pad_idx, seed in [(5, 5, 1, 0), (7, 5, 1, 1), (3, 6, 1, 2), (4, 6, 0, 3)]:
        pred = torch.randn(3, sp, nc, generator=_gen(10 + seed), dtype=torch.float64)
        targ = _targets([sy, sy - 2, 1], sy, pad_idx, nc, seed)
        aligned = pred[:, :sy] if sp >= sy else torch.cat([pred, pred.new_zeros(3, sy - sp, nc)], 1)
        flat_p, flat_t = aligned.reshape(-1, nc), targ.reshape(-1)
        shape = f'a ({3}, {sp}, {nc}) prediction and a (3, {sy}) target'
        what = 'longer than' if sp > sy else 'shorter than' if sp < sy else 'as long as'
        note = f' (F.cross_entropy on the prediction aligned to the target; it is {what} the target, pad_idx={pad_idx})'
        for reduction in ('mean', 'sum'):
            got = seq2seq_loss(pred, targ, pad_idx=pad_idx, reduction=reduction)
            finite(f'your `seq2seq_loss` of {shape}', got)
            close(f"your `seq2seq_loss` of {shape} (reduction='{reduction}')", got,
                  F.cross_entropy(flat_p, flat_t, ignore_index=pad_idx, reduction=reduction), note=note)
        close(f'your `seq2seq_loss` of {shape} with ignore_pad=False',
              seq2seq_loss(pred, targ, pad_idx=pad_idx, ignore_pad=False), F.cross_entropy(flat_p, flat_t),
              note=note.replace(')', ', the pads counted as targets)'))


def _sacrebleu(hyps, refs, smooth, max_n):
    import sacrebleu   # the oracle (requirements.txt)
    bleu = sacrebleu.metrics.BLEU(tokenize='none', smooth_method=smooth, max_ngram_order=max_n, force=True)
    return bleu.corpus_score([' '.join(h) for h in hyps], [[' '.join(r) for r in refs]]).score


def _noisy_corpus(seed, n=40, vocab=12, max_len=9):
    rng = random.Random(seed)
    words = [f'w{i}' for i in range(vocab)]
    refs = [[rng.choice(words) for _ in range(rng.randint(2, max_len))] for _ in range(n)]
    hyps = [[w if rng.random() > 0.3 else rng.choice(words) for w in r if rng.random() > 0.15] for r in refs]
    return hyps, refs


@exercise('13.2')
def corpus_bleu_check(corpus_bleu):
    "Corpus BLEU, with and without exp smoothing, 4-grams and 2-grams, against sacrebleu (tokenize='none')"
    ref = 'the cat is on the mat'.split()
    cases = {
        'a perfect copy': ([ref, ref[:3]], [ref, ref[:3]]),
        'a 2-word hypothesis of a 6-word reference': ([['the', 'cat']], [ref]),
        "'the cat sat on the mat' (no 4-gram matches)": (['the cat sat on the mat'.split()], [ref]),
        'a hypothesis longer than its reference': (['the cat is on the mat and the dog is too'.split()], [ref]),
        'a noisy 40-sentence corpus': _noisy_corpus(0),
        'a noisy corpus with short hypotheses': ([h[:max(1, len(h) // 2)] for h in _noisy_corpus(1)[0]], _noisy_corpus(1)[1]),
    }
    for name, (hyps, refs) in cases.items():
        for max_n in (4, 2):
            for smooth in ('none', 'exp'):
                got = corpus_bleu(hyps, refs, max_n=max_n, smooth=smooth)
                expect(isinstance(got, (int, float)) or getattr(got, 'numel', lambda: 0)() == 1,
                       f'your `corpus_bleu` returned a {type(got).__name__}, expected a number')
                close(f"your `corpus_bleu` of {name} (max_n={max_n}, smooth='{smooth}')", float(got),
                      _sacrebleu(hyps, refs, smooth, max_n), atol=0.01, rtol=0, note=' (sacrebleu)')


@exercise('13.3')
def additive_attention(AdditiveAttention):
    "Weights and context against softmax(V . tanh(W1 e + W2 h)) computed here from the module's own weights"
    enc_sz, dec_sz, att_sz, bs, sx = 5, 4, 3, 3, 4
    attn = AdditiveAttention(enc_sz, dec_sz, att_sz).double()
    g = _gen(0)
    with torch.no_grad():                                    # seeded weights, a bias that counts
        for p in attn.parameters(): p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64))
    W1, W2, b2, V = attn.W1.weight, attn.W2.weight, attn.W2.bias, attn.V
    enc = torch.randn(bs, sx, enc_sz, generator=g, dtype=torch.float64)
    h = torch.randn(bs, dec_sz, generator=g, dtype=torch.float64)
    mask = torch.tensor([[False] * 4, [False, False, True, True], [False, True, True, True]])
    for m, desc in [(None, 'no mask'), (mask, 'a pad mask (sentences of 4, 2 and 1 real tokens)')]:
        with torch.no_grad():
            ctx, a = attn(attn.keys(enc), enc, h, m)
            scores = torch.einsum('bsa,a->bs', torch.tanh(enc @ W1.T + (h @ W2.T + b2)[:, None]), V)
            if m is not None: scores = scores.masked_fill(m, float('-inf'))
            want_a = scores.softmax(1)
        shape = f'on (3, 4, 5) encoder outputs with {desc}'
        close(f'your `AdditiveAttention` weights {shape}', a, want_a, atol=1e-8,
              note=' (softmax over the source of V . tanh(W1 e + W2 h))')
        close(f'your `AdditiveAttention` context {shape}', ctx, (want_a[..., None] * enc).sum(1), atol=1e-8,
              note=' (the weighted sum of the encoder outputs)')
