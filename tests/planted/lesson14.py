"Lesson 14: one plausible wrong solution per exercise, which the grader must fail, naming the exercise"
WRONG = {
    '14.1': '''
        ids = torch.as_tensor(ids, dtype=torch.long)
        counts = torch.zeros(n * n, dtype=torch.float64)
        for d in range(1, window):                            # one distance short: window 1 counts nothing
            a, b = ids[:-d], ids[d:]
            keep = (a >= 0) & (b >= 0)
            counts += torch.bincount(a[keep] * n + b[keep], minlength=n * n).double()
        counts = counts.view(n, n)
        return counts + counts.T
    ''',
    '14.2': '''
        total = counts.sum()
        p_i = counts.sum(1, keepdim=True) / total
        return torch.log((counts / total) / (p_i * p_i.T)).nan_to_num(0., neginf=0., posinf=0.)   # negatives kept
    ''',
    '14.3': '''
        dot = (pred * targ).sum(-1)
        return (1 - dot / pred.norm(dim=-1).clamp_min(eps)).mean()       # as if the targets were unit vectors
    ''',
    '14.4': '''
        v, j = s.sort(dim=1, stable=True)                     # ascending, then the last k reversed: ties by higher index
        return v[:, -k:].flip(1), j[:, -k:].flip(1)
    ''',
}
