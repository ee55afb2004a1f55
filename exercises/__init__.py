"""The grader's checks: one module per lesson, `exercises/lesson07.py` for lesson 07 (issue 31).

A check is a function decorated with `@exercise('07.1')`. Its parameters are the names it needs from the
student's notebook (`def batchnorm(BatchNorm): ...`); `practise.py grade` runs the student's export cells,
passes those names in, and reads the outcome:
- the check returns: the exercise passes;
- it raises `Wrong('your `BatchNorm` running mean after 2 steps is 0.41 at channel 1, expected 0.37 (momentum
  0.1)')`: it fails, and that sentence is what the student reads;
- the student's code raises `NotImplementedError` (the stub of `practise.py make`): not written yet, with the hint.

Each check compares the student's code with an oracle, as the tests of `tests/` compare the lessons' code: the
PyTorch built-in with copied weights, autograd, or a reference library. Never with the lesson's own solution
alone. The helpers below turn a comparison into one plain sentence: `close` (numbers and tensors), `equal`
(anything compared with ==) and `expect` (a condition and its sentence).
"""
import importlib
import inspect

__all__ = ['Wrong', 'exercise', 'checks_for', 'lesson_of', 'close', 'equal', 'expect', 'finite', 'fmt']

_CHECKS = {}          # exercise id -> check function, in the order the lesson modules define them


class Wrong(AssertionError):
    "A check that failed: the message is one sentence for the student, saying what was got and what was expected"


def lesson_of(ex_id):
    "The lesson of an exercise id: '07.1' -> '07', '12a.3' -> '12a'"
    return ex_id.split('.')[0]


def exercise(ex_id):
    "Register the decorated function as the check of exercise `ex_id`; its parameters name what it needs"
    def register(check):
        if ex_id in _CHECKS: raise ValueError(f'exercise {ex_id}: two checks')
        check.ex_id, check.needs = ex_id, list(inspect.signature(check).parameters)
        _CHECKS[ex_id] = check
        return check
    return register


def checks_for(lesson):
    "The checks of one lesson, in order, as {id: check}; {} when the lesson has no exercises"
    try: importlib.import_module(f'exercises.lesson{lesson}')
    except ModuleNotFoundError as e:
        if e.name != f'exercises.lesson{lesson}': raise
        return {}
    return {k: c for k, c in _CHECKS.items() if lesson_of(k) == lesson}


# ---------------------------------------------------------------- plain sentences

def fmt(x):
    "A number as a student reads it: 4 significant digits"
    if isinstance(x, bool) or x is None: return str(x)
    if isinstance(x, int): return str(x)
    if isinstance(x, float): return f'{x:.4g}'
    if hasattr(x, 'item') and getattr(x, 'numel', lambda: 0)() == 1: return fmt(x.item())
    return repr(x)


def expect(cond, sentence):
    "Fail with `sentence` unless `cond`"
    if not cond: raise Wrong(sentence)


def equal(what, got, want, note=''):
    "Fail unless `got == want`: '{what} is {got}, expected {want}{note}'"
    if got != want: raise Wrong(f'{what} is {got!r}, expected {want!r}{note}')


def _as_tensor(what, x):
    import torch
    if isinstance(x, torch.Tensor): return x.detach().cpu().double()
    try: return torch.as_tensor(x).double()
    except Exception: raise Wrong(f'{what} is a {type(x).__name__}, expected a tensor') from None


def close(what, got, want, atol=1e-5, rtol=1e-4, note=''):
    """Fail unless the tensors (or numbers) `got` and `want` have the same shape and agree within `atol + rtol*|want|`:
    the sentence names the shape, or the first element that differs and its index"""
    g, w = _as_tensor(what, got), _as_tensor(what, want)
    if g.shape != w.shape:
        raise Wrong(f'{what} has shape {tuple(g.shape)}, expected {tuple(w.shape)}{note}')
    bad = ~((g - w).abs() <= atol + rtol * w.abs()) | (g.isnan() != w.isnan())
    if w.isnan().any(): bad &= ~(g.isnan() & w.isnan())
    if not bad.any(): return
    idx = tuple(int(i) for i in bad.nonzero()[0])
    at = f' at {list(idx)}' if g.ndim else ''
    gv, wv = g[idx].item(), w[idx].item()
    show = (lambda v: f'{v:.6g}') if abs(gv - wv) < 1e-3 * max(abs(wv), 1) else fmt
    n = int(bad.sum())
    more = f' ({n} of {g.numel()} values differ)' if n > 1 else ''
    raise Wrong(f'{what} is {show(gv)}{at}, expected {show(wv)}{note}{more}')


def finite(what, x):
    "Fail if `x` holds a nan or an infinity"
    t = _as_tensor(what, x)
    expect(bool(t.isfinite().all()), f'{what} holds {"nan" if t.isnan().any() else "inf"} values')

