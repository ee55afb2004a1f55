#!/usr/bin/env python
"""Exercises from the lessons (issue 31, a head start: `make` only; `grade` is to come).

A lesson marks what a student should write with nbgrader's markers, inside its ordinary cells, so the lesson
still runs and reads as it is (the markers are comments), and an instructor can run nbgrader on it too:

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
"""
import argparse, hashlib, json, re, sys
from pathlib import Path

from nbio import NotebookError, cell_text, natural_key, read_notebook, write_atomic

ROOT = Path(__file__).resolve().parent
NBS = ROOT / 'nbs'
BEGIN, END = '### BEGIN SOLUTION', '### END SOLUTION'
_HEADER = re.compile(r'^\s*#\s*Exercise\s+(?P<id>\d+[a-z]?\.\d+)\s*(?:\(hint:\s*(?P<hint>.*)\))?\s*$')


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
        m = _HEADER.match(lines[i - 1]) if i else None
        if m is None: raise PractiseError(f'{where}, line {i + 1}: {BEGIN} must follow an "# Exercise NN.k (hint: ...)" line')
        j = next((k for k in range(i + 1, len(lines)) if lines[k].strip() in (BEGIN, END)), None)
        if j is None or lines[j].strip() != END: raise PractiseError(f'{where}, line {i + 1}: {BEGIN} without its {END}')
        indent = line[:len(line) - len(line.lstrip())]
        ex_id, hint = m['id'], (m['hint'] or 'write it').strip()
        out.append(f'{indent}raise NotImplementedError({f"Exercise {ex_id}: {hint}"!r})')
        found.append((ex_id, hint))
        i = j + 1
    return '\n'.join(out), found


def student_notebook(nb, shown):
    "A copy of the notebook dict `nb` with every solution stubbed, outputs cleared; and its exercises [(id, hint)]"
    nb, found = json.loads(json.dumps(nb)), []
    for n, cell in enumerate(nb['cells']):
        if cell['cell_type'] != 'code' or BEGIN not in cell_text(cell['source']): continue
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


def main(argv=None):
    p = argparse.ArgumentParser(prog='practise.py', description=__doc__.split('\n')[0])
    sub = p.add_subparsers(dest='cmd', required=True)
    m = sub.add_parser('make', help="write a lesson's student version (solutions replaced by stubs)")
    m.add_argument('lesson', help="the lesson's number, e.g. 07 or 10b, or all")
    m.add_argument('--out', type=Path, default=ROOT / 'practice', help='folder to write to (default: practice/)')
    m.add_argument('--force', action='store_true', help='overwrite notebooks edited since they were made')
    args = p.parse_args(argv)
    try: written = make(args.lesson, args.out, args.force)
    except PractiseError as e:
        print(f'practise.py: error: {e}', file=sys.stderr)
        return 2
    for dest, found in written: print(f'{dest}: {len(found)} exercise(s): {", ".join(e for e, _ in found)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
