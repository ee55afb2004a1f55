"Lesson 09: one plausible wrong solution per exercise, which the grader must fail, naming the exercise"
WRONG = {
    '09.1': '''
        if wd != 0: p.data.mul_(1 - wd)               # the learning rate forgotten: decays far too fast
        return p
    ''',
    '09.2': '''
        state['mom_damp'] = 1 - mom                   # always dampened, even when dampening=False
        state['grad_avg'].mul_(mom).add_(p.grad.data, alpha=state['mom_damp'])
        return state
    ''',
    '09.3': '''
        if mom == 1: return damp * step
        return (1 - mom ** step) / (1 - mom)          # damp forgotten: right only when damp is 1
    ''',
    '09.4': '''
        debias1 = debias(mom, mom_damp, step)
        denom = sqr_avg.sqrt().add_(eps)              # the squared average is not bias-corrected
        p.data.addcdiv_(grad_avg, denom, value=-lr / debias1)
        return p
    ''',
    '09.5': '''
        debias1 = debias(mom, mom_damp, step)
        debias2 = debias(sqr_mom, sqr_damp, step)
        r = (grad_avg / debias1).div_((sqr_avg / debias2).sqrt_().add_(eps))
        r_norm = r.norm()                             # the norm taken before wd*p is added
        if wd != 0: r.add_(p.data, alpha=wd)
        w_norm = p.data.norm()
        trust = torch.where((w_norm > 0) & (r_norm > 0), (w_norm / r_norm).clamp(max=max_trust), 1.)
        p.data.add_(r.mul_(trust), alpha=-lr)
        return p
    ''',
}
