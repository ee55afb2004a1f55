"""Notebook I/O shared by the project's tools: `notebook2script.py`, `run_notebook.py`, `tools/clean_nbs.py`.

- `read_notebook(path)` loads a notebook file as a dict and checks that it is one (nbformat 4, a list of
  cells, each with a `cell_type` and a string or list-of-strings `source`); every problem is raised as
  `NotebookError`, whose message names the file. `read_notebook_text` also returns the file's text.
- `natural_key` is the one sort order of notebooks and modules: `02` < `02a` < `02b` < `03` < `09c` < `10`.
- `write_atomic(path, data)` writes through `coursekit.files` (a temporary file in the same folder, then
  `os.replace`), so a reader sees the old file or the new one, never half of one.
- `cell_text(cell_or_source)` is a cell's source as one string with LF line endings.
- The exercise markers (issue 31): a solution region inside a lesson's cell, nbgrader's convention after one
  header line, `# Exercise 07.1 (hint: ...)`, `### BEGIN SOLUTION`, the code, `### END SOLUTION`.
  `exercise_header(line)` parses the header; `is_exercise_marker(line)` is true for all three kinds of line,
  which `notebook2script.py` leaves out of `exp/` and `practise.py` turns into a stub.

Standard library only, so `notebook2script.py` runs before anything is installed.
"""
import json
import re
import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parent)
if _ROOT not in sys.path: sys.path.insert(0, _ROOT)     # coursekit sits beside this file
from coursekit.files import write_bytes  # noqa: E402  (standard library only, like this module)

__all__ = ['NotebookError', 'natural_key', 'cell_text', 'check_notebook', 'read_notebook',
           'read_notebook_text', 'write_atomic', 'SOLUTION_BEGIN', 'SOLUTION_END', 'exercise_header',
           'is_exercise_marker']

_DIGITS = re.compile(r'(\d+)')

SOLUTION_BEGIN, SOLUTION_END = '### BEGIN SOLUTION', '### END SOLUTION'
_EXERCISE = re.compile(r'^\s*#\s*Exercise\s+(?P<id>\d+[a-z]?\.\d+)\s*(?:\(hint:\s*(?P<hint>.*)\))?\s*$')


def exercise_header(line):
    "`(id, hint)` of an exercise's header line `# Exercise 07.1 (hint: ...)` (hint None without one), else None"
    m = _EXERCISE.match(line)
    return (m['id'], m['hint'] and m['hint'].strip()) if m else None


def is_exercise_marker(line):
    "True for an exercise's header line and for nbgrader's `### BEGIN SOLUTION` / `### END SOLUTION` lines"
    return line.strip() in (SOLUTION_BEGIN, SOLUTION_END) or exercise_header(line) is not None


class NotebookError(ValueError):
    """A file that is not a readable nbformat 4 notebook. `messages` holds one line per problem, each
    starting with the file's name as shown to the user."""
    def __init__(self, messages):
        self.messages = [messages] if isinstance(messages, str) else list(messages)
        super().__init__('\n'.join(self.messages))


def natural_key(name):
    """Sort key putting `02` < `02a` < `02b` < `03` < `09c` < `10` < `10b` < `11`.

    Takes a name or path (`nbs/10b_mixup.ipynb`, `10b_mixup`, `nb_10b`). The prefix (before the first
    `_`) is compared first, then the rest; each is split into digit runs (compared as numbers) and other
    runs (compared as strings); the whole name breaks ties (`02` before `2`).
    """
    name = Path(str(name)).name
    if name.endswith('.ipynb'): name = name[:-len('.ipynb')]
    prefix, _, rest = name.partition('_')
    def split(s): return tuple((0, int(p), '') if p.isdigit() else (1, 0, p) for p in _DIGITS.split(s) if p)
    return (split(prefix), split(rest), name)


def cell_text(source):
    """A cell's source (a cell dict, a string or nbformat's list of strings) as one string, LF line endings."""
    if isinstance(source, dict): source = source.get('source', '')
    if isinstance(source, list): source = ''.join(source)
    return source.replace('\r\n', '\n').replace('\r', '\n')


def check_notebook(nb, shown):
    """Problems that stop `nb` (parsed JSON) from being used as an nbformat 4 notebook: a list of messages."""
    if not isinstance(nb, dict) or not isinstance(nb.get('cells'), list):
        return [f"{shown}: not a notebook (no 'cells' list)"]
    if nb.get('nbformat') != 4:
        return [f"{shown}: not an nbformat 4 notebook (nbformat={nb.get('nbformat')!r})"]
    errors = []
    for i, cell in enumerate(nb['cells']):
        if not isinstance(cell, dict) or not isinstance(cell.get('cell_type'), str):
            errors.append(f"{shown}: cell {i}: not a notebook cell (no 'cell_type')")
            continue
        if not isinstance(cell.get('metadata', {}), dict):
            errors.append(f"{shown}: cell {i}: 'metadata' is not a mapping")
        src = cell.get('source')
        if not (isinstance(src, str) or (isinstance(src, list) and all(isinstance(s, str) for s in src))):
            errors.append(f"{shown}: cell {i}: 'source' is not a string or a list of strings")
    return errors


def read_notebook_text(path, shown=None):
    """(text of the file, notebook dict) for the notebook at `path`; raises `NotebookError`.

    `shown` is how messages name the file (default: `path` as given). The text is the file decoded as
    UTF-8 as it is (a byte-order mark kept, so a cleaner can see it); the JSON is parsed without it."""
    path = Path(path)
    shown = str(path) if shown is None else shown
    if not path.exists(): raise NotebookError(f'{shown}: no such file')
    if not path.is_file(): raise NotebookError(f'{shown}: not a file')
    if path.suffix != '.ipynb': raise NotebookError(f'{shown}: not a notebook (expected a .ipynb file)')
    try: text = path.read_bytes().decode('utf-8')
    except UnicodeDecodeError as e: raise NotebookError(f'{shown}: not UTF-8 ({e.reason} at byte {e.start})') from None
    except OSError as e: raise NotebookError(f'{shown}: cannot read ({e.strerror})') from None
    try: nb = json.loads(text.removeprefix('\ufeff'))
    except json.JSONDecodeError as e:
        raise NotebookError(f'{shown}: invalid JSON (line {e.lineno}, column {e.colno}: {e.msg})') from None
    if errors := check_notebook(nb, shown): raise NotebookError(errors)
    return text, nb


def read_notebook(path, shown=None):
    """The notebook at `path` as a dict (checked with `check_notebook`); raises `NotebookError`."""
    return read_notebook_text(path, shown)[1]


def write_atomic(path, data, mode=None):
    """Write `data` (bytes, or str written as UTF-8) to `path` atomically, through `coursekit.files`.

    The bytes go to a temporary file in the same folder, which then replaces `path` (`os.replace`). The
    file keeps the permissions of the file it replaces; a new file gets `mode` (default: 0o666 less the
    umask, like `open`). On any error the temporary file is removed and `path` is left as it was."""
    return write_bytes(path, data.encode('utf-8') if isinstance(data, str) else data, new_mode=mode)
