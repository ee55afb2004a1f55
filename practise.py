#!/usr/bin/env python
"""Exercises from the lessons, and their grader (issue 31): `make`, `grade`, `list`.

A lesson marks what a student should write with nbgrader's markers, inside its ordinary `#export` cells, so the
lesson still runs and reads as it is (the markers are comments, left out of `exp/` by notebook2script.py):

    def bn_stats(x):
        "Mean and variance of `x` over every axis but the channels (axis 1)"
        # Exercise 07.1 (hint: x.mean((0, 2, 3), keepdim=True), and var with unbiased=False)
        ### BEGIN SOLUTION
        m = x.mean((0, 2, 3), keepdim=True)
        return m, x.var((0, 2, 3), keepdim=True, unbiased=False)
        ### END SOLUTION

`python practise.py make 07` writes the student's version of lesson 07 to `practice/` (or `--out DIR`): every
solution region replaced by `raise NotImplementedError('Exercise 07.1: <hint>')` at the region's indentation,
everything else as it is. It never writes into `nbs/` or `exp/`, and it does not overwrite a notebook the student
has edited since it was made (it keeps the SHA-256 of what it wrote in `DIR/.practise.json`) unless `--force`.
`python practise.py make all` makes every lesson that has exercises.

`python practise.py grade 07 [NOTEBOOK]` runs the notebook's `#export` cells as one fresh module in a child
process (earlier lessons come from the reference `exp/` they import), then each check of `exercises/lesson07.py`
against it, and prints a table: exercise, cell, pass / FAIL / todo / error / missing, and the first failing check
in one sentence. Exit 0 when every exercise passes, 1 otherwise, 2 for bad input (one line, before any work).

`python practise.py list [LESSON]` prints the exercises and their hints.
"""
import argparse, contextlib, hashlib, io, json, os, subprocess, sys, tempfile, traceback, types, warnings
from dataclasses import asdict, dataclass
from pathlib import Path

from notebook2script import export_cells, is_export_marker
from nbio import (SOLUTION_BEGIN as BEGIN, SOLUTION_END as END, NotebookError, cell_text, exercise_header,
                  natural_key, read_notebook, write_atomic)

ROOT = Path(__file__).resolve().parent
NBS = ROOT / 'nbs'
PRACTICE = ROOT / 'practice'
GRADE_TIMEOUT = 600        # seconds for one grading: a student's endless loop ends the run, not the grader


class PractiseError(Exception):
    "Bad input or a badly marked lesson: one line naming the notebook, cell or argument, exit status 2"


def stub_source(src, where):
    """`src` (a cell's text) with each solution region replaced by a one-line stub; the exercises found, as
    [(id, hint)]. Each region must follow an `# Exercise NN.k (hint: ...)` line and end before the cell does."""
    out, found, lines, i = [], [], src.split('\n'), 0
    while i < len(lines):
        line = lines[i]
        if line.strip() == END: raise PractiseError(f'{where}, line {i + 1}: {END} without {BEGIN}')
        if line.strip() != BEGIN:
            out.append(line); i += 1; continue
        m = exercise_header(lines[i - 1]) if i else None
        if m is None: raise PractiseError(f'{where}, line {i + 1}: {BEGIN} must follow an "# Exercise NN.k (hint: ...)" line')
        j = next((k for k in range(i + 1, len(lines)) if lines[k].strip() in (BEGIN, END)), None)
        if j is None or lines[j].strip() != END: raise PractiseError(f'{where}, line {i + 1}: {BEGIN} without its {END}')
        indent = line[:len(line) - len(line.lstrip())]
        ex_id, hint = m[0], m[1] or 'write it'
        out.append(f'{indent}raise NotImplementedError({f"Exercise {ex_id}: {hint}"!r})')
        found.append((ex_id, hint))
        i = j + 1
    return '\n'.join(out), found


def solutions(nb):
    "{exercise id: the solution's code, dedented} of a lesson notebook dict (what a student's stub replaces)"
    import textwrap
    found = {}
    for cell in nb['cells']:
        if cell.get('cell_type') != 'code': continue
        lines = cell_text(cell['source']).split('\n')
        for i, line in enumerate(lines):
            if line.strip() == BEGIN and i and (h := exercise_header(lines[i - 1])):
                j = next(k for k in range(i + 1, len(lines)) if lines[k].strip() == END)
                found[h[0]] = textwrap.dedent('\n'.join(lines[i + 1:j]))
    return found


def with_solution(nb, ex_id, code):
    """A copy of notebook dict `nb` whose solution of `ex_id` is `code` (dedented text, indented like the region;
    in a student version the stub is replaced): to paste a solution back, or to plant a wrong one in a test"""
    import textwrap
    nb = json.loads(json.dumps(nb))
    for cell in nb['cells']:
        if cell.get('cell_type') != 'code': continue
        lines = cell_text(cell['source']).split('\n')
        for i, line in enumerate(lines):
            if (h := exercise_header(line)) and h[0] == ex_id:
                nxt = lines[i + 1]
                ind = nxt[:len(nxt) - len(nxt.lstrip())]
                if nxt.strip() == BEGIN: j = next(k for k in range(i + 2, len(lines)) if lines[k].strip() == END)
                else: j = i + 1                                            # the stub's one line
                body = textwrap.indent(textwrap.dedent(code).strip('\n'), ind).split('\n')
                lines[i + 1:j + 1] = [ind + BEGIN, *body, ind + END]
                cell['source'] = '\n'.join(lines).splitlines(keepends=True)
                return nb
    raise PractiseError(f'exercise {ex_id}: not marked in this notebook')


def student_notebook(nb, shown):
    "A copy of the notebook dict `nb` with every solution stubbed, outputs cleared; and its exercises [(id, hint)]"
    nb, found = json.loads(json.dumps(nb)), []
    for n, cell in enumerate(nb['cells']):
        if cell['cell_type'] != 'code' or BEGIN not in cell_text(cell['source']): continue
        if not is_export_marker(cell_text(cell['source']).split('\n', 1)[0]):
            raise PractiseError(f'{shown}, cell {n}: an exercise in a cell that is not exported; the grader reads #export cells')
        src, ex = stub_source(cell_text(cell['source']), f'{shown}, cell {n}')
        cell['source'], cell['outputs'], cell['execution_count'] = src.splitlines(keepends=True), [], None
        found += ex
    ids = [e for e, _ in found]
    dup = next((e for e in ids if ids.count(e) > 1), None)
    if dup: raise PractiseError(f'{shown}: exercise {dup} is marked twice')
    return nb, found


def lesson_notebooks(which):
    "The lesson notebooks named by `which` ('07', '12d', 'all')"
    nbs = sorted(NBS.glob('*.ipynb'), key=lambda p: natural_key(p.stem))
    if which == 'all': return nbs
    got = [p for p in nbs if p.stem.split('_')[0] == which]
    if not got: raise PractiseError(f"lesson {which!r}: no notebook nbs/{which}_*.ipynb (e.g. 07, 10b, or all)")
    return got


def listing(which):
    "The exercises of `which` ('07' or 'all'), one line each with its hint, by lesson"
    lines = []
    for path in lesson_notebooks(which):
        try: _, found = student_notebook(read_notebook(path), f'nbs/{path.name}')
        except NotebookError as e: raise PractiseError(str(e)) from None
        if found: lines += [f'{path.stem}:'] + [f'  {ex:<7}{hint}' for ex, hint in found]
    if not lines: raise PractiseError(f'lesson {which}: no exercises marked')
    n = sum(l.startswith('  ') for l in lines)
    return '\n'.join(lines + [f'{n} exercises'])


def _sha(data): return hashlib.sha256(data).hexdigest()

def make(which, out, force=False):
    "Write the student versions of `which` to `out`; returns the [(path, exercises)] written"
    out = Path(out).resolve()
    for forbidden in {NBS, ROOT / 'nbs', ROOT / 'exp'}:
        if out == forbidden.resolve() or forbidden.resolve() in out.parents:
            raise PractiseError(f'--out {out}: inside {forbidden.name}/, which holds the lessons; pick another folder')
    manifest_path = out / '.practise.json'
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    plans = []
    for path in lesson_notebooks(which):
        try: nb = read_notebook(path)
        except NotebookError as e: raise PractiseError(str(e)) from None
        student, found = student_notebook(nb, f'nbs/{path.name}')
        if not found:
            if which != 'all': raise PractiseError(f'nbs/{path.name}: no exercise marked in this lesson yet')
            continue
        dest = out / path.name
        if dest.is_file() and not force and _sha(dest.read_bytes()) != manifest.get(path.name):
            raise PractiseError(f'{dest}: edited since it was made (your work?); pass --force to overwrite it, or --out elsewhere')
        plans.append((dest, student, found))
    if not plans: raise PractiseError('no lesson has exercises marked yet')
    out.mkdir(parents=True, exist_ok=True)
    for dest, student, _ in plans:
        data = (json.dumps(student, indent=1, ensure_ascii=False) + '\n').encode()
        write_atomic(dest, data)
        manifest[dest.name] = _sha(data)
    write_atomic(manifest_path, (json.dumps(manifest, indent=1, sort_keys=True) + '\n').encode())
    return [(dest, found) for dest, _, found in plans]


# ---------------------------------------------------------------- grading

@dataclass
class Result:
    "The outcome of one exercise: status is pass, FAIL (a check's sentence), todo (a stub), error or missing"
    ex_id: str
    status: str
    message: str = ''
    cell: int | None = None

    def line(self):
        where = '' if self.cell is None else str(self.cell)
        return f'  {self.ex_id:<8}{where:>5}  {self.status:<8}{self.message}'.rstrip()


def exercise_cells(nb):
    "{exercise id: index of the code cell holding its header line} of a notebook dict"
    found = {}
    for n, cell in enumerate(nb['cells']):
        if cell.get('cell_type') != 'code': continue
        for line in cell_text(cell['source']).split('\n'):
            if (h := exercise_header(line)): found.setdefault(h[0], n)
    return found


def _first_line(exc):
    text = f'{type(exc).__name__}: {exc}'.strip().split('\n')[0]
    return text[:200] + ('...' if len(text) > 200 else '')


def _where(exc):
    "'cell 12, line 5' for the innermost frame of the student's code in a traceback, else ''"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith('<cell ')]
    return f'{frames[-1].filename[1:-1]}, line {frames[-1].lineno}' if frames else ''


def run_export_cells(cells, lesson):
    """Execute export cells [(index, text)] in order as one fresh module; returns (module, {index: error line}).
    Each cell is compiled as `<cell N>` so tracebacks name it; a cell that raises is recorded and the next ones
    still run. What the cells print is swallowed."""
    mod = types.ModuleType(f'practice_{lesson}')
    mod.__file__ = f'<lesson {lesson}>'
    sys.modules[mod.__name__] = mod
    errors = {}
    for i, text in cells:
        body = '\n' + text.split('\n', 1)[1] if '\n' in text else ''      # the marker line blank: line numbers kept
        try:
            code = compile(body, f'<cell {i}>', 'exec')
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                exec(code, mod.__dict__)
        except BaseException as e:                      # noqa: BLE001 (a student's cell may raise anything, even SystemExit)
            if isinstance(e, KeyboardInterrupt): raise
            line = f'SyntaxError at line {e.lineno}: {e.msg}' if isinstance(e, SyntaxError) else _first_line(e)
            errors[i] = line
    return mod, errors


def run_check(check, ns, cell, cell_errors):
    "Result of one check against the namespace `ns` of the student's module"
    ex_id = check.ex_id
    if cell is not None and cell in cell_errors:
        return Result(ex_id, 'error', f'cell {cell} raised {cell_errors[cell]} when run, so the exercise was not checked', cell)
    missing = [n for n in check.needs if n not in ns]
    if missing:
        before = f' (cell {min(cell_errors)} raised {cell_errors[min(cell_errors)]} first)' if cell_errors else ''
        return Result(ex_id, 'missing', f'`{missing[0]}` is not defined by your export cells (renamed or deleted?){before}', cell)
    from exercises import Wrong
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
             warnings.catch_warnings():
            warnings.simplefilter('ignore')             # the table is the output: a warning is no verdict
            check(*[ns[n] for n in check.needs])
    except Wrong as e:
        return Result(ex_id, 'FAIL', str(e), cell)
    except NotImplementedError as e:
        other = str(e).split(':')[0].removeprefix('Exercise ')
        if str(e).startswith('Exercise ') and other != ex_id:      # the check reached another exercise's stub
            return Result(ex_id, 'todo', f'uses exercise {other}, which is not written yet', cell)
        hint = str(e).removeprefix(f'Exercise {ex_id}: ')
        return Result(ex_id, 'todo', f'not written yet (hint: {hint})' if hint else 'not written yet', cell)
    except BaseException as e:                          # noqa: BLE001
        if isinstance(e, KeyboardInterrupt): raise
        where = _where(e)
        return Result(ex_id, 'error', f'your code raised {_first_line(e)}' + (f' ({where})' if where else ''), cell)
    return Result(ex_id, 'pass', '', cell)


def grade_notebook(nb, lesson):
    "Grade a notebook dict for `lesson` in this process: the [Result] of every exercise of the lesson, in order"
    from exercises import checks_for
    checks = checks_for(lesson)
    if not checks: raise PractiseError(f'lesson {lesson}: no exercises to grade (exercises/lesson{lesson}.py)')
    cells, _ = export_cells(nb, f'lesson {lesson}')       # a magic in a cell: its SyntaxError is recorded when run
    where = exercise_cells(nb)
    mod, errors = run_export_cells(cells, lesson)
    try: return [run_check(c, vars(mod), where.get(k), errors) for k, c in checks.items()]
    finally: sys.modules.pop(mod.__name__, None)


def _worker(lesson, nb_path, out_path):
    "The child process of `grade`: grade, write the results as JSON (the student's code cannot mix its output in)"
    nb = read_notebook(nb_path)
    results = grade_notebook(nb, lesson)
    Path(out_path).write_text(json.dumps([asdict(r) for r in results]))


def lesson_notebook(lesson):
    "nbs/<lesson>_*.ipynb for a lesson number such as 07 or 12a"
    got = lesson_notebooks(lesson)
    if lesson == 'all' or len(got) != 1: raise PractiseError(f'lesson {lesson!r}: grade one lesson at a time (e.g. 07)')
    return got[0]


def grade(lesson, notebook=None, timeout=GRADE_TIMEOUT):
    """Grade the student's notebook of `lesson` (default practice/<the lesson's notebook>) in a fresh process;
    returns the [Result]. Bad input (no such lesson or file, invalid JSON, no exercises) raises PractiseError."""
    from exercises import checks_for
    ref = lesson_notebook(lesson)
    path = Path(notebook) if notebook else PRACTICE / ref.name
    if notebook is None and not path.is_file():
        raise PractiseError(f'{path}: not found; make it with `python practise.py make {lesson}`, or name your notebook')
    try: read_notebook(path)
    except NotebookError as e: raise PractiseError(str(e)) from None
    if not checks_for(lesson): raise PractiseError(f'lesson {lesson}: no exercises to grade yet')
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / 'results.json'
        cmd = [sys.executable, str(Path(__file__).resolve()), '_worker', lesson, str(path.resolve()), str(out)]
        env = {**os.environ, 'PYTHONPATH': os.pathsep.join(filter(None, [str(ROOT), os.environ.get('PYTHONPATH')]))}
        try: proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)
        except subprocess.TimeoutExpired:
            raise PractiseError(f'{path}: grading ran past {timeout} s; does a cell loop forever?') from None
        if not out.is_file():
            last = (proc.stderr.strip().split('\n') or [''])[-1]
            raise PractiseError(f'{path}: the grader stopped before any result ({last})')
        return [Result(**r) for r in json.loads(out.read_text())]


def display_path(path):
    "`path` as the student typed it, or relative to the current folder when it is below it"
    path = Path(path)
    if not path.is_absolute(): return str(path)
    try: return str(path.relative_to(Path.cwd()))
    except ValueError: return str(path)


def report(lesson, path, results):
    "The table `grade` prints"
    lines = [f'Lesson {lesson}: {display_path(path)}', f'  {"exercise":<8}{"cell":>5}  {"result":<8}first failing check']
    lines += [r.line() for r in results]
    done = sum(r.status == 'pass' for r in results)
    lines.append(f'{done} of {len(results)} exercises pass' + ('.' if done < len(results) else ': lesson done.'))
    return '\n'.join(lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ['_worker']: return _worker(*argv[1:]) or 0
    p = argparse.ArgumentParser(prog='practise.py', description=__doc__.split('\n')[0])
    sub = p.add_subparsers(dest='cmd', required=True)
    m = sub.add_parser('make', help="write a lesson's student version (solutions replaced by stubs)")
    m.add_argument('lesson', help="the lesson's number, e.g. 07 or 10b, or all")
    m.add_argument('--out', type=Path, default=PRACTICE, help='folder to write to (default: practice/)')
    m.add_argument('--force', action='store_true', help='overwrite notebooks edited since they were made')
    g = sub.add_parser('grade', help="grade a student's notebook of one lesson: a table, exit 0 when all pass")
    g.add_argument('lesson', help="the lesson's number, e.g. 07 or 12a")
    g.add_argument('notebook', nargs='?', type=Path, help='the notebook to grade (default: practice/<the lesson>.ipynb)')
    ls = sub.add_parser('list', help='list the exercises of one lesson or all, with their hints')
    ls.add_argument('lesson', nargs='?', default='all', help="the lesson's number, or all (the default)")
    args = p.parse_args(argv)
    try:
        if args.cmd == 'list':
            print(listing(args.lesson))
            return 0
        if args.cmd == 'grade':
            results = grade(args.lesson, args.notebook)
            print(report(args.lesson, args.notebook or PRACTICE / lesson_notebook(args.lesson).name, results))
            return 0 if all(r.status == 'pass' for r in results) else 1
        written = make(args.lesson, args.out, args.force)
    except PractiseError as e:
        print(f'practise.py: error: {e}', file=sys.stderr)
        return 2
    for dest, found in written: print(f'{display_path(dest)}: {len(found)} exercise(s): {", ".join(e for e, _ in found)}')
    return 0

if __name__ == '__main__':
    sys.exit(main())
