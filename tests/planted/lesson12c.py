"Lesson 12c: one plausible wrong solution per exercise, which the grader must fail, naming the exercise"
WRONG = {
    '12c.1': '''
        otoi = {w: i for i, w in enumerate(old_vocab)}
        new = dict(old_wgts)
        for k in row_keys:
            old = old_wgts[k]
            rows = old.new_zeros(len(new_vocab), *old.shape[1:])        # new words start at zero, not the mean
            for i, w in enumerate(new_vocab):
                if w in otoi: rows[i] = old[otoi[w]]
            new[k] = rows
        return new
    ''',
    '12c.2': '''
        for i, g in enumerate(groups):
            train = i >= len(groups) - n_train
            for p in g: p.requires_grad_(train)                      # the old gradients kept
    ''',
    '12c.3': '''
        pad = (torch.arange(sl, device=out.device)[None] >= lengths[:, None])[..., None]
        last = out[:, -1]                                           # the last column: a pad for short rows
        mx = out.masked_fill(pad, float('-inf')).max(1).values
        mean = out.masked_fill(pad, 0.).sum(1) / lengths[:, None].to(out.dtype)
        return torch.cat([last, mx, mean], 1)
    ''',
}
