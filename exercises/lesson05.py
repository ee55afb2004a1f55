"Lesson 05's exercises: the cosine annealer, combine_scheds and the 1cycle policy against their formulas"
import math
from contextlib import contextmanager
from types import SimpleNamespace

from exercises import Wrong, close, exercise, expect


def _cos_formula(start, end, pos):
    "The cosine annealer from its definition: half a cosine wave from `start` (pos 0) to `end` (pos 1)"
    return end + (start - end) * (1 + math.cos(math.pi * pos)) / 2


@exercise('05.1')
def cosine_annealer(sched_cos):
    "sched_cos(start, end)(pos) at a few positions, both ways, against the formula; exact at both ends"
    for start, end in ((1., 3.), (0.6, 0.01)):
        f = sched_cos(start, end)
        for pos in (0., 0.1, 0.25, 0.5, 0.75, 0.9, 1.):
            close(f'your `sched_cos({start}, {end})` at pos {pos}', f(pos), _cos_formula(start, end, pos),
                  atol=1e-12, rtol=1e-9, note=' (half a cosine from start to end)')
        close(f'your `sched_cos({start}, {end})` at pos 0', f(0.), start, atol=1e-15, rtol=1e-12, note=' (exactly start)')
        close(f'your `sched_cos({start}, {end})` at pos 1', f(1.), end, atol=1e-15, rtol=1e-12, note=' (exactly end)')


def _piecewise(pcts, fs, pos):
    "combine_scheds from its definition: the piece whose [start, end) holds pos (the last one at pos 1), rescaled"
    start = 0.
    for i, (p, f) in enumerate(zip(pcts, fs)):
        end = 1. if i == len(pcts) - 1 else start + p
        if pos < end or i == len(pcts) - 1: return f((pos - start) / (end - start))
        start = end


def _call(what, f, pos):
    "f(pos), or a sentence naming `what` and pos if it raises"
    try: return f(pos)
    except NotImplementedError: raise
    except Exception as e:
        raise Wrong(f'{what} raised {type(e).__name__}: {e} at pos {pos}'.rstrip()) from None


@exercise('05.2')
def combined_schedule(combine_scheds):
    "Three pieces that do not join up (so the piece used shows), at positions inside each piece and at both ends"
    fs = [lambda p: 1 + p, lambda p: 5 - 2 * p, lambda p: 0.1 * 100 ** p]     # 1 -> 2, 5 -> 3, 0.1 -> 10
    for pcts in ([0.2, 0.3, 0.5], [0.5, 0.25, 0.25]):
        f = combine_scheds(pcts, fs)
        what = f'your `combine_scheds({pcts}, ...)` schedule'
        for pos in (0., 0.1, 0.15, 0.3, 0.45, 0.6, 0.7, 0.9, 0.9999999, 1.):
            close(f'{what} at pos {pos}', _call(what, f, pos), _piecewise(pcts, fs, pos), atol=1e-9, rtol=1e-7,
                  note=' (pieces 1 -> 2, 5 -> 3 and 0.1 -> 10, each over its fraction of [0, 1])')
    f = combine_scheds([1 / 3] * 3, fs)
    what = 'your `combine_scheds([1/3, 1/3, 1/3], ...)` schedule'
    close(f'{what} at pos 1', _call(what, f, 1.), 10., atol=1e-9, rtol=1e-9, note=' (the end of the last piece)')


def _oracle_cos(start, end): return lambda pos: _cos_formula(start, end, pos)
def _oracle_combine(pcts, fs): return lambda pos: _piecewise(pcts, fs, pos)

@contextmanager
def _oracle_helpers(func):
    """While checking `func` (the student's one_cycle), its module's `sched_cos` and `combine_scheds` are these
    oracles: so 05.3 is graded alone, whatever the state of exercises 05.1 and 05.2"""
    # func.__globals__: during grading the student's fresh module (never the library's); restored in `finally`
    g, names = func.__globals__, {'sched_cos': _oracle_cos, 'combine_scheds': _oracle_combine}
    saved = {k: g[k] for k in names if k in g}
    g.update({k: v for k, v in names.items() if k in saved})
    try: yield
    finally: g.update(saved)


def _run_one_cycle(cbs, n_groups, steps):
    """Drive the callbacks as a one-epoch training loop of `steps` batches does, on an optimizer's param_groups
    (SGD's names: lr, momentum 0.9); [(lrs, momentums)] set before each batch"""
    opt = SimpleNamespace(param_groups=[{'params': [], 'lr': 0.1, 'momentum': 0.9} for _ in range(n_groups)])
    run = SimpleNamespace(opt=opt, n_epochs=0., epochs=1, in_train=True)
    for cb in cbs: cb.set_runner(run)
    for cb in cbs: cb('begin_fit')
    seen = []
    for k in range(steps):
        run.n_epochs = k / (steps - 1)
        for cb in sorted(cbs, key=lambda c: getattr(c, '_order', 0)): cb('begin_batch')
        seen.append(([g['lr'] for g in opt.param_groups], [g['momentum'] for g in opt.param_groups]))
    return seen


def _one_cycle_formula(pos, lo, high, end, pct):
    """1cycle from its definition, as torch.optim.lr_scheduler.OneCycleLR (anneal_strategy='cos') computes it:
    half a cosine from lo up to high over the first pct of training, then another from high down to end"""
    if pos <= pct: return _cos_formula(lo, high, pos / pct)
    return _cos_formula(high, end, (pos - pct) / (1 - pct))


@exercise('05.3')
def one_cycle_schedule(one_cycle):
    "The lr and momentum set before each batch of a one-epoch run, against the 1cycle formula (as torch's OneCycleLR)"
    cases = [(11, 1.0, {}), (9, [0.1, 1.], dict(pct_start=0.25, div_start=25., div_end=1e4, moms=(0.9, 0.8, 0.9))),
             (6, 0.5, dict(moms=None))]
    for steps, lr_max, kw in cases:
        pct, div_start, div_end = kw.get('pct_start', 0.3), kw.get('div_start', 10.), kw.get('div_end', 1e5)
        moms = kw.get('moms', (0.95, 0.85, 0.95))
        args = ', '.join([repr(lr_max)] + [f'{k}={v!r}' for k, v in kw.items()])
        what = f'your `one_cycle({args})`'
        lrs = lr_max if isinstance(lr_max, list) else [lr_max]
        with _oracle_helpers(one_cycle):
            cbs = one_cycle(lr_max, **kw)
            expect(isinstance(cbs, (list, tuple)) and all(hasattr(cb, 'set_runner') for cb in cbs),
                   f'{what} returned {type(cbs).__name__}, expected a list of callbacks')
            got = _run_one_cycle(cbs, len(lrs), steps)
        one = (lambda v: v[0]) if len(lrs) == 1 else (lambda v: v)       # one group: numbers, not lists
        peak = round(pct * (steps - 1))
        for k in [0, peak, steps - 1] + [k for k in range(steps) if k not in (0, peak, steps - 1)]:
            pos, (lr, mom) = k / (steps - 1), got[k]
            lr_want = [_one_cycle_formula(pos, l / div_start, l, l / div_end, pct) for l in lrs]
            mom_want = [0.9 if moms is None else _one_cycle_formula(pos, *moms, pct)] * len(lrs)
            note = f' (one epoch of {steps} batches, pos {pos:.3g}: a cosine up over the first {pct} of it, then down)'
            close(f'{what}: the learning rate at batch {k}', one(lr), one(lr_want), atol=1e-12, rtol=1e-7, note=note)
            close(f'{what}: the momentum at batch {k}', one(mom), one(mom_want), atol=1e-12, rtol=1e-7,
                  note=note if moms else " (moms=None: the optimizer's own momentum kept)")
