"Lesson 05: one plausible wrong solution per exercise, which the grader must fail, naming the exercise"
WRONG = {
    '05.1': '''
        w = (1 - math.cos(pos)) / 2                   # pi forgotten: a small part of the cosine wave
        return start * (1 - w) + end * w
    ''',
    '05.2': '''
        def _inner(pos):
            pos = min(max(float(pos), 0.), 1.)
            i = min(bisect_right(bounds, pos) - 1, last)
            return scheds[i]((pos - bounds[i]) / bounds[i + 1])     # divided by the piece's end, not its length
        return _inner
    ''',
    '05.3': '''
        pcts, lrs = [pct_start, 1 - pct_start], listify(lr_max)
        # the final lr divided from the starting one (torch's final_div_factor), not from lr_max
        lr_scheds = [combine_scheds(pcts, cos_1cycle_anneal(lr / div_start, lr, lr / div_start / div_end)) for lr in lrs]
        cbs = [ParamScheduler('lr', lr_scheds if isinstance(lr_max, (list, tuple)) else lr_scheds[0])]
        if moms is not None: cbs.append(MomentumScheduler(combine_scheds(pcts, cos_1cycle_anneal(*moms)), mom_name))
        return cbs
    ''',
}
