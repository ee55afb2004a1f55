"""The course's notebook extension: cell flags and quick mode, one mechanism for Jupyter and the runner.

Every lesson loads it in its first code cell::

    %load_ext coursekit

From then on, in Jupyter's "Run All", in `run_notebook.py` and in the tests alike:

- **Cell flags.** A code cell whose first line is a flag line (`#slow`, `#cuda`, `#slow #cuda`) is
  checked before it runs. A `#cuda` cell is skipped when this machine has no CUDA device, and a `#slow`
  cell is skipped in quick mode; a skipped cell prints one line saying so instead of running.
- **Quick mode.** `EXP_QUICK=1` in the environment (`EXP_QUICK=1 jupyter lab`) switches it on. The cell
  right after a lesson's parameters cell starts with `%%quick` and holds the small values the tests use.
  With quick mode on it applies them and prints each value it changed; with quick mode off it prints
  one line and changes nothing. No file is edited to switch.
- **Single overrides.** `EXP_PARAMS` holds a Python dict literal (`EXP_PARAMS="{'epochs': 2}"`); the
  `%%quick` cell applies it after the quick values, in either mode. `run_notebook.py -p epochs=2` sets it.

Every name the `%%quick` cell or `EXP_PARAMS` sets must already be defined by the parameters cell.
A bad setting is a `UsageError` of one line, raised before any long work starts.
"""
import ast
import os
import re

__all__ = ['QUICK_VAR', 'PARAMS_VAR', 'SKIP_NOTES', 'SettingError', 'quick_mode', 'param_overrides',
           'cell_flags', 'skip_reason', 'assigned_names', 'is_quick_cell', 'cuda_available',
           'load_ipython_extension', 'unload_ipython_extension']

QUICK_VAR, PARAMS_VAR = 'EXP_QUICK', 'EXP_PARAMS'
_ON, _OFF = {'1', 'true', 'yes', 'on'}, {'', '0', 'false', 'no', 'off'}
SKIP_NOTES = {'slow': 'skipped: a #slow cell, and quick mode is on (EXP_QUICK=1)',
              'cuda': 'skipped: a #cuda cell, and this machine has no CUDA device'}


class SettingError(ValueError):
    "A bad quick-mode setting: an environment variable or a `%%quick` cell. The message is one line."


# ----------------------------------------------------------------------------- settings

def quick_mode(environ=None):
    "Whether quick mode is on: `EXP_QUICK` is 1/true/yes/on (off when unset, empty or 0/false/no/off)."
    value = (os.environ if environ is None else environ).get(QUICK_VAR, '')
    if value.strip().lower() in _ON: return True
    if value.strip().lower() in _OFF: return False
    raise SettingError(f"{QUICK_VAR}={value!r}: expected 1 (quick values) or 0 (full values)")


def param_overrides(environ=None):
    "The overrides in `EXP_PARAMS`: a Python dict literal mapping parameter names to literal values."
    text = (os.environ if environ is None else environ).get(PARAMS_VAR, '').strip()
    if not text: return {}
    try: value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        value = None
    if not isinstance(value, dict):
        raise SettingError(f"{PARAMS_VAR}={text!r}: expected a Python dict literal, "
                           f"like {PARAMS_VAR}=\"{{'epochs': 2}}\"")
    bad = [k for k in value if not (isinstance(k, str) and k.isidentifier())]
    if bad: raise SettingError(f"{PARAMS_VAR}: {bad[0]!r} is not a parameter name")
    return value


# ----------------------------------------------------------------------------- cells

_FLAG_LINE = re.compile(r"^\s*#\s*[A-Za-z_]\w*(\s+#\s*[A-Za-z_]\w*)*\s*$")


def cell_flags(source):
    "Flags on a code cell's first line, lower-cased: `#slow #cuda` -> {'slow', 'cuda'}."
    first = source.lstrip('\n').split('\n', 1)[0]
    if not _FLAG_LINE.match(first): return set()
    return {w.lower() for w in re.findall(r"#\s*(\w+)", first)}


def skip_reason(source, quick, cuda):
    """Why a cell with this source is skipped ('slow' or 'cuda'), or None when it runs. `cuda` is a bool
    or a function returning one (called only for a `#cuda` cell, so torch is imported only then)."""
    flags = cell_flags(source)
    if quick and 'slow' in flags: return 'slow'
    if 'cuda' in flags and not (cuda() if callable(cuda) else cuda): return 'cuda'
    return None


def is_quick_cell(source):
    "True for a cell whose first line is the `%%quick` cell magic."
    return source.lstrip('\n').split('\n', 1)[0].split() == ['%%quick']


def assigned_names(source, where):
    "The names a cell of `name = value` lines assigns, in order; anything else raises `SettingError`."
    try: tree = ast.parse(source)
    except SyntaxError as e:
        raise SettingError(f"{where}: not valid Python: {e.msg} (line {e.lineno})") from None
    lines, names = source.split('\n'), []
    for stmt in tree.body:
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)):
            raise SettingError(f"{where}: line {stmt.lineno} is not a simple `name = value` "
                               f"assignment: {lines[stmt.lineno - 1].strip()!r}")
        names.append(stmt.targets[0].id)
    return names


def cuda_available():
    "Whether this process sees a CUDA device (imports torch)."
    try:
        import torch
        return bool(torch.cuda.is_available())
    except ImportError:
        return False


# ----------------------------------------------------------------------------- the extension

def _same(a, b):
    try: return type(a) is type(b) and bool(a == b)
    except Exception: return False


def _flag_transformer(lines):
    "IPython input transformer: a flagged cell that must be skipped becomes one line printing why."
    source = ''.join(lines)
    if not cell_flags(source): return lines
    try: reason = skip_reason(source, quick_mode(), cuda_available)
    except SettingError as e:
        return [f"raise __import__('IPython').core.error.UsageError({str(e)!r})\n"]
    return lines if reason is None else [f"print({SKIP_NOTES[reason]!r})\n"]


def _quick_magic(line, cell):
    """`%%quick`: the lesson's quick values. Applied only in quick mode (EXP_QUICK=1), then the
    EXP_PARAMS overrides in any mode; prints each value that changed."""
    from IPython import get_ipython
    from IPython.core.error import UsageError
    if line.strip(): raise UsageError(f"%%quick takes no arguments (got {line.strip()!r})")
    try:
        names = assigned_names('\n' + cell, 'the %%quick cell')   # lines numbered as in the cell
        quick, overrides = quick_mode(), param_overrides()
    except SettingError as e: raise UsageError(str(e)) from None
    ns = get_ipython().user_ns
    for name in [*names, *overrides]:
        if name not in ns:
            source = 'the %%quick cell' if name in names else PARAMS_VAR
            raise UsageError(f"{source} sets {name!r}, which is not defined: run the parameters cell above "
                             f"first (every quick value must be one of its parameters)")
    before = {n: ns[n] for n in [*names, *overrides]}
    if quick: exec(compile(cell, '<%%quick cell>', 'exec'), ns)
    ns.update(overrides)
    if quick: print(f"quick mode is on ({QUICK_VAR}=1): the quick values replace the full ones")
    else: print(f"quick mode is off: the full values above are used ({QUICK_VAR}=1 would apply these)")
    shown = [n for n in dict.fromkeys([*(names if quick else []), *overrides]) if not _same(before[n], ns[n])]
    width = max((len(n) for n in shown), default=0)
    for n in shown:
        via = f'  ({PARAMS_VAR})' if n in overrides else ''
        print(f"  {n:<{width}}  {before[n]!r} -> {ns[n]!r}{via}")


def load_ipython_extension(ip):
    "Register the flag transformer and the `%%quick` magic; a bad setting stops here, in the first cell."
    from IPython.core.error import UsageError
    try: quick, _ = quick_mode(), param_overrides()
    except SettingError as e: raise UsageError(str(e)) from None
    if _flag_transformer not in ip.input_transformers_cleanup:
        ip.input_transformers_cleanup.append(_flag_transformer)
    ip.register_magic_function(_quick_magic, magic_kind='cell', magic_name='quick')
    if quick: print(f"quick mode is on ({QUICK_VAR}=1): #slow cells are skipped and the %%quick cell applies its values")


def unload_ipython_extension(ip):
    if _flag_transformer in ip.input_transformers_cleanup:
        ip.input_transformers_cleanup.remove(_flag_transformer)
    ip.magics_manager.magics['cell'].pop('quick', None)
