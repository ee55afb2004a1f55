"Lesson 13a: one plausible wrong solution per exercise, which the grader must fail, naming the exercise"
WRONG = {
    '13a.1': '''
        scores = q @ k.transpose(-2, -1)                      # not divided by sqrt(d)
        if causal: scores = scores.masked_fill(causal_mask(*scores.shape[-2:], device=q.device), float('-inf'))
        if pad_mask is not None:
            scores = scores.masked_fill(pad_mask.view(len(pad_mask), *[1] * (scores.dim() - 2), -1), float('-inf'))
        w = scores.softmax(-1).nan_to_num(0.)
        return (w if drop is None else drop(w)) @ v, w
    ''',
    '13a.2': '''
        if self.use_sdpa:
            allowed = None if pad_mask is None else pad_mask[:, None, None, :]     # True at the pads: SDPA reads it as allowed
            if causal: allowed = ~causal_mask(q.shape[2], k.shape[2], q.device) & (True if allowed is None else allowed)
            p = self.drop.p if self.training else 0.
            out, w = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=p), None
        else: out, w = attention(q, k, v, pad_mask, causal, self.drop if self.training else None)
        return self.out_proj(out.transpose(1, 2).reshape(x.shape[0], x.shape[1], self.d)), w
    ''',
    '13a.3': '''
        p = torch.arange(n, dtype=torch.float32)[:, None]
        freq = torch.exp(-math.log(10000.) * torch.arange(0, (d + 1) // 2, dtype=torch.float32) / d)   # i, not 2i
        enc = torch.zeros(n, d)
        enc[:, 0::2], enc[:, 1::2] = torch.sin(p * freq), torch.cos(p * freq[:d // 2])
        return enc
    ''',
    '13a.4': '''
        pred = align_pred(pred, targ)                         # every position counted, the pads too
        return LabelSmoothingCrossEntropy(eps)(pred.reshape(-1, pred.shape[-1]), targ.reshape(-1))
    ''',
}
