"Lesson 13: one plausible wrong solution per exercise, which the grader must fail, naming the exercise"
WRONG = {
    '13.1': '''
        pred = align_pred(pred, targ)
        return F.cross_entropy(pred.reshape(-1, pred.shape[-1]), targ.reshape(-1),
                               reduction=reduction)           # pads always counted: ignore_index forgotten
    ''',
    '13.2': '''
        logs, k = [], 1
        for m, t in zip(matches, totals):
            if t == 0: return 0.
            if m == 0:
                if smooth == 'none': return 0.
                k *= 2
                logs.append(math.log(1 / (k * t)))
            else: logs.append(math.log(m / t))
        bp = 1. if hyp_len >= ref_len else math.exp(1 - hyp_len / ref_len)    # the ratio upside down
        return 100 * bp * math.exp(sum(logs) / max_n)
    ''',
    '13.3': '''
        scores = torch.tanh(keys + self.W2(h)[:, None]) @ self.V
        a = F.softmax(scores, dim=1)                          # the pads not masked
        return (a[..., None] * enc_out).sum(1), a
    ''',
}
