#!/usr/bin/env python3
"""Export the `#export` cells of the lesson notebooks to the modules of the `exp` package.

`nbs/08_data_block.ipynb` becomes `exp/nb_08.py`: the code cells whose first line is an export
marker (`#export`, `# export`, any case), in notebook order, after a header saying the file is
generated. With no notebook given, every notebook in `nbs/` is exported and `exp/nb_*.py` files
that no notebook produces any more are removed. `--check` compares instead of writing.

Every requested notebook is validated before anything is written: a missing or malformed
notebook, two notebooks sharing a prefix, a prefix that is no module name, IPython magics, shell
escapes or a syntax error in an export cell all stop the run (exit status 2) with `exp/` untouched.

Every module starts with `__all__`: the `__all__` of the module its first export cell star-imports
(`from exp.nb_05 import *`), plus the public names its export cells define (def, class, assignment;
not imports, not `_private`) and the names they import from the support package with
`from coursekit.<module> import a, b` (explicit names, where an assignment would count; a star import
from `coursekit` is an error), minus names retired with a comment line `# retire: Name1, Name2 - reason`
(see CONTRIBUTING.md). Retiring a name the previous module does not export, or one this notebook
defines again, is an error. So is a function attached to a class with `@add_to_class(Cls)` whose name
the previous module exports (unless this notebook retires it) or this notebook defines: the decorator
returns the function, so the module name would silently become the method. The file lists only what
the module changes: it imports the previous `__all__` as `_base_all` and adds its own names
(`__all__ = _base_all + [...]`), so the names of a lesson are written once, in its own module.

An exercise's marker lines in an export cell (`# Exercise 07.1 (hint: ...)`, `### BEGIN SOLUTION`,
`### END SOLUTION`: see `practise.py`) are left out, so the module holds the reference solution as plain code.

Stdlib only, so it runs before anything is installed; notebook reading, natural order and atomic
writes come from `nbio.py`. Importable: `module_name`, `export_cells`,
`module_all`, `module_source`, `export_notebooks`, `main`.
"""
import argparse
import ast
import io
import os
import re
import sys
import tokenize
import warnings
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path: sys.path.insert(0, str(ROOT))
from nbio import NotebookError, cell_text, is_exercise_marker, natural_key, read_notebook, write_atomic  # noqa: E402
PROG = 'notebook2script'

_MARKER = re.compile(r'\s*#\s*export\s*', re.IGNORECASE)
# An IPython line that is not Python: `%magic`, `%%cell_magic`, `!shell`, `x = !shell`, `x = %magic`.
_MAGIC = re.compile(r'\s*(%{1,2})\s*\w')
_SHELL = re.compile(r'\s*!(?!=)')
_ASSIGN_ESCAPE = re.compile(r'\s*[\w.,\s()\[\]]+?\s*=\s*([!%])')


class ExportError(Exception):
    """Raised when notebooks cannot be exported; `messages` holds one line per problem."""
    def __init__(self, messages):
        self.messages = list(messages)
        super().__init__('\n'.join(self.messages))


@dataclass
class ExportResult:
    """What `export_notebooks` did (or, with `check=True`, found)."""
    modules: dict = field(default_factory=dict)    # module path -> notebook path, for every module produced
    written: list = field(default_factory=list)     # modules written (new or changed)
    unchanged: list = field(default_factory=list)   # modules already up to date
    removed: list = field(default_factory=list)     # stale modules removed
    no_export: list = field(default_factory=list)   # notebooks without an export cell
    differs: list = field(default_factory=list)     # check: (module, notebook) whose content differs
    missing: list = field(default_factory=list)     # check: (module, notebook) not written yet
    stale: list = field(default_factory=list)       # check: modules no notebook produces

    @property
    def in_sync(self):
        return not (self.differs or self.missing or self.stale)


def module_name(path):
    """`nbs/05b_early_stopping.ipynb` -> `nb_05b` (`nb_` + the stem up to its first `_`)."""
    return 'nb_' + Path(path).stem.split('_', 1)[0]


def is_export_marker(line):
    """True for a first line `#export`, `# export`, `#EXPORT ` ...; False for `#exports`, `#export foo`."""
    return _MARKER.fullmatch(line.rstrip('\r\n')) is not None


def _display(path, root):
    """`path` relative to `root` with `/` separators, else the absolute path."""
    path = Path(path).resolve()
    try: return path.relative_to(root).as_posix()
    except ValueError: return path.as_posix()


def _first_line(text): return text.split('\n', 1)[0]


def _ipython_line(line):
    """Describe `line` if it is IPython syntax rather than Python (a magic or a shell escape), else None."""
    if m := _MAGIC.match(line): return f"IPython {'cell ' if len(m.group(1)) == 2 else ''}magic"
    if _SHELL.match(line): return 'shell escape'
    if (m := _ASSIGN_ESCAPE.match(line)) and not line[m.end():].startswith('='):
        return 'shell escape' if m.group(1) == '!' else 'IPython magic'
    return None


def _calls_get_ipython(text):
    """Line number of the first `get_ipython(` call in `text` (real code, not strings or comments)."""
    try: toks = [t for t in tokenize.generate_tokens(io.StringIO(text).readline)
                 if t.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT)]
    except (tokenize.TokenError, SyntaxError): return None
    for a, b in zip(toks, toks[1:]):
        if a.type == tokenize.NAME and a.string == 'get_ipython' and b.string == '(': return a.start[0]
    return None


def _check_cell(text, where):
    """Error messages for an export cell's full text (marker line included, so line numbers match)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            compile(text, where, 'exec', dont_inherit=True)
    except SyntaxError as e:
        last = e.lineno or len(text.split('\n'))
        for i, line in enumerate(text.split('\n')[1:last], start=2):
            if kind := _ipython_line(line):
                return [f'{where} (line {i}): {kind} not allowed in an export cell: {line.strip()!r} '
                        '(export cells hold plain Python; move it to a cell without #export)']
        return [f'{where} (line {e.lineno}): syntax error: {e.msg}']
    except ValueError as e:  # e.g. null bytes in the source
        return [f'{where}: cannot compile: {e}']
    if (i := _calls_get_ipython(text)) is not None:
        return [f'{where} (line {i}): get_ipython() not allowed in an export cell '
                '(exported code must run outside IPython)']
    return []


def _read_notebook(path, shown):
    """Load and validate a notebook; returns (notebook, errors)."""
    try: return read_notebook(path, shown), []
    except NotebookError as e: return None, e.messages


def export_cells(nb, shown='notebook'):
    """The export cells of a loaded notebook as [(cell index, full text)], and error messages.

    The text keeps the marker line so that line numbers in messages match the notebook."""
    cells, errors = [], []
    for i, cell in enumerate(nb['cells']):
        if cell.get('cell_type') != 'code': continue
        text = cell_text(cell['source'])
        if not is_export_marker(_first_line(text)): continue
        cells.append((i, text))
        errors += _check_cell(text, f'{shown}: cell {i}')
    return cells, errors


def _cell_body(text):
    """An export cell's code: marker line dropped, exercise markers dropped (`# Exercise NN.k`, nbgrader's
    `### BEGIN/END SOLUTION`: the module holds the solution as plain code), trailing whitespace and outer blank
    lines removed."""
    lines = [l.rstrip() for l in text.split('\n')[1:] if not is_exercise_marker(l)]
    while lines and not lines[0]: lines.pop(0)
    while lines and not lines[-1]: lines.pop()
    return '\n'.join(lines)


# ---------------------------------------------------------------- __all__

_STAR = re.compile(r'exp\.(nb_\w+)')
_RETIRE_START = re.compile(r'#\s*retire\b', re.IGNORECASE)
_RETIRE = re.compile(r'#\s*retire:\s*(?P<names>[^\W\d]\w*(?:\s*,\s*[^\W\d]\w*)*)\s*(?:\s-\s+(?P<why>.*\S))?\s*')
RETIRE_SYNTAX = '# retire: Name1, Name2 - reason'


def base_module(cells):
    """The module the first export cell star-imports (`from exp.nb_05 import *` -> `nb_05`), else None."""
    if not cells: return None
    for node in ast.parse(cells[0][1]).body:
        if (isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                and [a.name for a in node.names] == ['*'] and (m := _STAR.fullmatch(node.module))):
            return m.group(1)
    return None


def _target_names(t):
    if isinstance(t, ast.Name): yield t.id
    elif isinstance(t, (ast.Tuple, ast.List)):
        for e in t.elts: yield from _target_names(e)
    elif isinstance(t, ast.Starred): yield from _target_names(t.value)


def _is_add_to_class(d):
    "`@add_to_class(Cls)` (or `@x.add_to_class(Cls)`): the function is a method of `Cls`, not a module name"
    f = d.func if isinstance(d, ast.Call) else d
    return (isinstance(f, ast.Name) and f.id == 'add_to_class') or (isinstance(f, ast.Attribute) and f.attr == 'add_to_class')


def _coursekit_import(node):
    "Is `node` a `from coursekit.<module> import ...` statement?"
    return (isinstance(node, ast.ImportFrom) and node.level == 0 and node.module is not None
            and node.module.startswith('coursekit.'))


def _bindings(stmts):
    """(name, line, attached) for every name a block of module-level statements binds by def, class or assignment,
    or imports from the support package with `from coursekit.<module> import a, b as c` (the bound names: `a`, `c`;
    a lesson exports the support code it puts in front of students), descending into if/try/with bodies, which
    run at import time; other imports and loop variables excluded. Star imports give nothing here
    (`coursekit_star_errors` refuses them). `attached` is True for a function decorated with `@add_to_class(Cls)`:
    a method of `Cls`, although the decorator's return value still binds the name in the module."""
    for node in stmts:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield node.name, node.lineno, any(_is_add_to_class(d) for d in node.decorator_list)
        elif isinstance(node, ast.Assign):
            for t in node.targets: yield from ((n, node.lineno, False) for n in _target_names(t))
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            yield from ((n, node.lineno, False) for n in _target_names(node.target))
        elif _coursekit_import(node):
            yield from ((a.asname or a.name, node.lineno, False) for a in node.names if a.name != '*')
        elif isinstance(node, (ast.If, ast.With, ast.Try, getattr(ast, 'TryStar', ast.Try))):
            yield from _bindings(node.body)
            yield from _bindings(getattr(node, 'orelse', []))
            for h in getattr(node, 'handlers', []): yield from _bindings(h.body)
            yield from _bindings(getattr(node, 'finalbody', []))


def _defined(stmts):
    """(name, line) for the module names a block binds (`_bindings`); methods attached to a class with
    `@add_to_class(Cls)` excluded."""
    yield from ((name, line) for name, line, attached in _bindings(stmts) if not attached)


def coursekit_star_errors(cells, shown):
    """An error message for each `from coursekit.<module> import *` in the export cells: the names a lesson
    takes from `coursekit` are listed, so that they are exported and a reader sees where they come from."""
    return [f'{shown}: cell {i} (line {node.lineno}): `from {node.module} import *` in an export cell; name the '
            f'imports (`from {node.module} import a, b`): the lesson exports exactly those'
            for i, text in cells for node in ast.walk(ast.parse(text))
            if _coursekit_import(node) and any(a.name == '*' for a in node.names)]


def defined_names(cells):
    """{public name: cell index} for the names the export cells define, or import from `coursekit.<module>`
    (first definition wins)."""
    out = {}
    for i, text in cells:
        for name, _ in _defined(ast.parse(text).body):
            if not name.startswith('_'): out.setdefault(name, i)
    return out


def attached_names(cells):
    """[(public name, cell index, line)] for the functions the export cells attach to a class with
    `@add_to_class(Cls)`, in order."""
    return [(name, i, line) for i, text in cells
            for name, line, attached in _bindings(ast.parse(text).body) if attached and not name.startswith('_')]


def retired_names(cells, shown):
    """({name: cell index} retired by `# retire:` comment lines in the export cells, error messages)."""
    out, errors = {}, []
    for i, text in cells:
        toks = tokenize.generate_tokens(io.StringIO(text).readline)
        for t in toks:
            if t.type != tokenize.COMMENT or t.line[:t.start[1]].strip() or not _RETIRE_START.match(t.string): continue
            m = _RETIRE.fullmatch(t.string)
            if m is None:
                errors.append(f'{shown}: cell {i} (line {t.start[0]}): malformed retire marker {t.string.strip()!r} '
                              f'(write {RETIRE_SYNTAX!r})')
                continue
            for name in re.split(r'\s*,\s*', m.group('names')): out.setdefault(name, i)
    return out, errors


def module_all(cells, shown, previous_all, base):
    """`__all__` of a module: the `base` module's `__all__` plus the public names the export cells define
    (or import from `coursekit.<module>`), minus the names retired with `# retire:`; returns (list of names,
    error messages)."""
    retired, errors = retired_names(cells, shown)
    errors += coursekit_star_errors(cells, shown)
    defined = defined_names(cells)
    prev = list(previous_all or [])
    for name, i in retired.items():
        if name not in prev:
            src = f'{base} does not export it (not in its __all__)' if base else \
                  'this module star-imports no earlier module (`from exp.nb_X import *` in its first export cell)'
            errors.append(f'{shown}: cell {i}: retires {name!r}, but {src}')
        if name in defined:
            errors.append(f'{shown}: cell {i}: retires {name!r}, but cell {defined[name]} of the same notebook defines it')
    for name, i, line in attached_names(cells):     # `@add_to_class(C) def fit` rebinds the module's `fit` too
        if name in defined:
            errors.append(f'{shown}: cell {i} (line {line}): @add_to_class method {name!r} rebinds the module name '
                          f'{name!r} that cell {defined[name]} of the same notebook defines; give one of them another name')
        elif name in prev and name not in retired:
            errors.append(f'{shown}: cell {i} (line {line}): @add_to_class method {name!r} rebinds the module name '
                          f'{name!r} that {base} exports; retire it in this notebook ("# retire: {name} - reason") '
                          'or give the method another name')
    names = [n for n in prev if n not in retired]
    names += [n for n in defined if n not in set(prev)]
    return names, errors


def _wrap_names(start, names, end=']', indent=None):
    """`start` + the repr of each name, comma-separated, wrapped at 100 columns, + `end`."""
    lines, line = [], start
    pad = ' ' * (len(start) if indent is None else indent)
    for k, n in enumerate(names):
        item = repr(n) + (', ' if k < len(names) - 1 else '')
        if len(line) + len(item.rstrip()) > 100 and line.strip():
            lines.append(line.rstrip())
            line = pad
        line += item
    lines.append(line + end)
    return '\n'.join(lines)


def _all_source(names, base=None, own=None, retired=()):
    """The `__all__` lines of a module. With no `base`: a literal list of `names`. With a `base` module:
    its `__all__` imported as `_base_all`, minus the `retired` names, plus this module's `own` names,
    so each module lists only what it adds."""
    if base is None: return _wrap_names('__all__ = [', names)
    head = f'from exp.{base} import __all__ as _base_all\n'
    kept = '_base_all'
    if retired: kept = _wrap_names('[n for n in _base_all if n not in {', sorted(retired), '}]', indent=4)
    if not own: return head + (f'__all__ = {kept}' if retired else '__all__ = list(_base_all)')
    return head + _wrap_names(f'__all__ = {kept} + [', list(own), indent=4)


_BASE_ALL = '_base_all'


def _eval_all(node, base_all):
    """The value of the `__all__` expression `node` as `_all_source` writes it (`base_all`: the base's)."""
    if isinstance(node, ast.Name) and node.id == _BASE_ALL and base_all is not None: return list(base_all)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _eval_all(node.left, base_all) + _eval_all(node.right, base_all)
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == 'list'
            and len(node.args) == 1 and not node.keywords):
        return _eval_all(node.args[0], base_all)
    if isinstance(node, ast.ListComp) and len(node.generators) == 1:
        g = node.generators[0]
        ok = (isinstance(node.elt, ast.Name) and isinstance(g.target, ast.Name) and node.elt.id == g.target.id
              and len(g.ifs) == 1 and isinstance(g.ifs[0], ast.Compare) and len(g.ifs[0].ops) == 1
              and isinstance(g.ifs[0].ops[0], ast.NotIn))
        if ok:
            drop = set(ast.literal_eval(g.ifs[0].comparators[0]))
            return [n for n in _eval_all(g.iter, base_all) if n not in drop]
    value = ast.literal_eval(node)
    if not isinstance(value, (list, tuple)): raise ValueError('__all__ is not a list')
    return list(value)


def module_all_from_file(path, _seen=None):
    """The `__all__` of a generated module file, read without importing it (following
    `from exp.nb_X import __all__ as _base_all` to the file `nb_X.py` beside it), or None."""
    path = Path(path)
    seen = set() if _seen is None else _seen
    if path.resolve() in seen: return None                  # an import cycle
    seen.add(path.resolve())
    try: tree = ast.parse(path.read_text(encoding='utf-8'))
    except (OSError, SyntaxError, UnicodeDecodeError): return None
    base_all = None
    for node in tree.body:
        if (isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                and [(a.name, a.asname) for a in node.names] == [('__all__', _BASE_ALL)]
                and (m := _STAR.fullmatch(node.module))):
            base_all = module_all_from_file(path.parent / f'{m.group(1)}.py', seen)
            if base_all is None: return None
        if isinstance(node, ast.Assign) and [getattr(t, 'id', None) for t in node.targets] == ['__all__']:
            try: return _eval_all(node.value, base_all)
            except (ValueError, TypeError, SyntaxError): return None
    return None


def module_source(cells, notebook_shown, all_names=None, base=None, base_all=None):
    """The text of a generated module from export cells [(index, text)] of notebook `notebook_shown`:
    the header, `__all__` (when `all_names` is given: as the `base` module's `base_all` plus this
    module's changes, or a literal list without a base), then the cells' code."""
    header = (f'# Generated from {notebook_shown} by notebook2script.py. DO NOT EDIT this file:\n'
              '# edit the notebook, then run `python notebook2script.py`.\n')
    bodies = [b for b in (_cell_body(t) for _, t in cells) if b]
    if all_names is not None:
        if base is None or base_all is None: bodies.insert(0, _all_source(all_names))
        else:
            kept = set(all_names)
            retired = [n for n in base_all if n not in kept]
            own = [n for n in all_names if n not in set(base_all)]
            bodies.insert(0, _all_source(all_names, base, own, retired))
    return header + ('\n' + '\n\n\n'.join(bodies) + '\n' if bodies else '')


def _notebooks_in(nbs_dir, shown, exp_dir, check):
    """Every notebook of `nbs_dir` in natural order."""
    if not nbs_dir.is_dir(): raise ExportError([f'{shown}: no such folder'])
    found = sorted(nbs_dir.glob('*.ipynb'), key=natural_key)
    if not found and not check and any(exp_dir.glob('nb_*.py')):  # most likely a wrong --nbs
        raise ExportError([f'{shown}: no notebooks found; refusing to remove every module as stale'])
    return found


def _sibling_clashes(notebooks, root):
    """Notebooks given one by one must not share a prefix with another notebook of their folder."""
    requested = {Path(p).resolve() for p in notebooks}
    errors = []
    for nb_path in sorted(requested, key=natural_key):
        if not nb_path.parent.is_dir(): continue
        for other in sorted(nb_path.parent.glob('*.ipynb'), key=natural_key):
            if other.resolve() not in requested and module_name(other) == module_name(nb_path):
                errors.append(f'{_display(nb_path, root)} and {_display(other, root)} share the prefix '
                              f'{module_name(nb_path)[3:]!r} (both would write {module_name(nb_path)}.py); '
                              'rename one')
    return errors


def _plan(notebooks, root, exp_dir, siblings=False):
    """Validate every notebook; returns {module name: (notebook shown, source)} and the no-export list.

    With `siblings`, also refuse a notebook sharing its prefix with an unrequested one in its folder."""
    errors, by_module, seen, produced, no_export, wanted = [], {}, set(), {}, [], {}
    if siblings: errors += _sibling_clashes(notebooks, root)
    for nb_path in notebooks:
        nb_path = Path(nb_path)
        key = nb_path.resolve()
        if key in seen: continue
        seen.add(key)
        shown = _display(nb_path, root)
        mod = module_name(nb_path)
        if mod == 'nb_' or not mod.isidentifier():
            errors.append(f"{shown}: prefix {mod[3:]!r} gives module name {mod!r}, which is not a valid "
                          "Python identifier (name notebooks NN[letter]_title.ipynb)")
        elif mod in by_module:
            errors.append(f'{shown} and {by_module[mod]} share the prefix {mod[3:]!r} '
                          f'(both would write {mod}.py); rename one')
        else: by_module[mod] = shown
        nb, errs = _read_notebook(nb_path, shown)
        errors += errs
        if nb is None: continue
        cells, errs = export_cells(nb, shown)
        errors += errs
        if errs or mod not in by_module or by_module[mod] != shown: continue
        if not cells:
            no_export.append(shown)
            continue
        wanted[mod] = (shown, cells)
    if errors: raise ExportError(errors)
    alls = {}
    for mod in sorted(wanted, key=natural_key):     # a module's base comes before it in natural order
        shown, cells = wanted[mod]
        base = base_module(cells)
        prev = None
        if base is not None:
            prev = alls[base] if base in alls else module_all_from_file(Path(exp_dir) / f'{base}.py')
            if prev is None:
                errors.append(f'{shown}: imports exp.{base}, whose __all__ is unknown (no notebook of this '
                              f'run produces {base} and {_display(Path(exp_dir) / (base + ".py"), root)} has '
                              'no __all__); export that notebook too')
                continue
        names, errs = module_all(cells, shown, prev, base)
        errors += errs
        if errs: continue
        alls[mod] = names
        src = module_source(cells, shown, names, base, prev)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                compile(src, f'{shown} (exported module)', 'exec', dont_inherit=True)
        except SyntaxError as e:
            errors.append(f'{shown}: the exported module does not compile (line {e.lineno}: {e.msg}); '
                          'check the order of the export cells')
            continue
        produced[mod] = (shown, src)
    if errors: raise ExportError(errors)
    return produced, no_export


def export_notebooks(nbs, exp_dir, check=False, root=None):
    """Export notebooks to `exp_dir`, or with `check=True` compare without writing.

    `nbs` is a folder (every `*.ipynb` in it, in natural order; stale `nb_*.py` modules are removed
    or, with `check`, reported) or a list of notebook paths (only those; no stale handling).
    Paths in messages are relative to `root` (default: the parent of `exp_dir`).
    Raises `ExportError` before touching anything when a notebook is invalid. Returns an `ExportResult`.
    """
    exp_dir = Path(exp_dir)
    root = Path(root).resolve() if root is not None else exp_dir.resolve().parent
    all_mode = isinstance(nbs, (str, os.PathLike))
    notebooks = _notebooks_in(Path(nbs), _display(nbs, root), exp_dir, check) if all_mode else [Path(p) for p in nbs]
    produced, no_export = _plan(notebooks, root, exp_dir, siblings=not all_mode)
    res = ExportResult(no_export=no_export)
    for mod, (nb_shown, src) in produced.items():
        path = exp_dir / f'{mod}.py'
        shown = _display(path, root)
        res.modules[shown] = nb_shown
        data = src.encode('utf-8')
        old = path.read_bytes() if path.is_file() else None
        if old == data: res.unchanged.append(shown)
        elif check: (res.missing if old is None else res.differs).append((shown, nb_shown))
        else:
            exp_dir.mkdir(parents=True, exist_ok=True)
            write_atomic(path, data, mode=0o644)
            res.written.append(shown)
    if all_mode and exp_dir.is_dir():
        for path in sorted(exp_dir.glob('nb_*.py'), key=natural_key):
            if path.stem in produced or not path.is_file(): continue
            shown = _display(path, root)
            if check: res.stale.append(shown)
            else:
                path.unlink()
                res.removed.append(shown)
    return res


def _parser():
    p = argparse.ArgumentParser(
        prog='notebook2script.py',
        description='Export the #export cells of lesson notebooks to exp/nb_<prefix>.py modules '
                    '(nbs/05b_early_stopping.ipynb -> exp/nb_05b.py).',
        epilog='Exit status: 0 done / in sync, 1 --check found differences, 2 invalid input '
               '(nothing written).')
    p.add_argument('notebooks', nargs='*', metavar='NOTEBOOK',
                   help='notebooks to export (default: every *.ipynb in the notebooks folder, in natural '
                        'order, and stale exp/nb_*.py modules no notebook produces are removed)')
    p.add_argument('--nbs', metavar='DIR', type=Path, default=ROOT / 'nbs',
                   help='notebooks folder used when no NOTEBOOK is given (default: nbs/ next to this script)')
    p.add_argument('--exp', metavar='DIR', type=Path, default=ROOT / 'exp',
                   help='folder the modules are written to (default: exp/ next to this script)')
    p.add_argument('--check', action='store_true',
                   help='write nothing; exit 1 listing every module that differs from its notebook, is '
                        'missing or (with no NOTEBOOK given) is stale, else exit 0')
    p.add_argument('-v', '--verbose', action='store_true',
                   help='also list modules that are already up to date and notebooks without export cells')
    return p


def main(argv=None):
    """Command-line entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    root = args.exp.resolve().parent
    try: res = export_notebooks(args.notebooks or args.nbs, args.exp, check=args.check, root=root)
    except ExportError as e:
        for msg in e.messages: print(f'{PROG}: error: {msg}', file=sys.stderr)
        return 2
    except OSError as e:
        print(f'{PROG}: error: {e}', file=sys.stderr)
        return 2
    exp_shown = _display(args.exp, root) + '/'
    if args.verbose:
        for nb in res.no_export: print(f'no export cell in {nb}')
    if args.check:
        for mod, nb in res.differs: print(f'{mod}: differs from {nb}')
        for mod, nb in res.missing: print(f'{mod}: missing (exported from {nb})')
        for mod in res.stale: print(f'{mod}: stale (no notebook produces it)')
        if not res.in_sync:
            print(f'{PROG}: run `python notebook2script.py` to regenerate {exp_shown}', file=sys.stderr)
            return 1
        src = _display(args.nbs, root) + '/' if not args.notebooks else 'the given notebooks'
        n = len(res.modules)
        print(f"{exp_shown} in sync with {src} ({n} module{'s' if n != 1 else ''})")
        return 0
    for mod in res.written: print(f'wrote {mod}')
    if args.verbose:
        for mod in res.unchanged: print(f'unchanged {mod}')
    for mod in res.removed: print(f'removed stale {mod}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
