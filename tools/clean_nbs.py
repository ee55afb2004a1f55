#!/usr/bin/env python3
"""Clean lesson notebooks for committing: no outputs, no execution counts, no volatile metadata.

A clean notebook keeps only what the lesson is: cell sources (as lists of lines), cell ids, cell tags (`parameters`,
`quick`, ...), markdown attachments, `kernelspec` (python3) and `language_info` reduced to its name.
It is written the way nbformat writes (`indent=1`, sorted keys, non-ASCII kept, final newline), so a
notebook saved by Jupyter and then cleaned differs only in what cleaning removes.

`python tools/clean_nbs.py` cleans every `nbs/*.ipynb` in place; `--check` only reports (exit 1).
Importable: `clean_notebook(nb)`, `clean_text(nb)`, `is_clean(path)`, `main(argv)`.
"""
import argparse
import copy
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path: sys.path.insert(0, str(ROOT))
from nbio import NotebookError, natural_key, read_notebook_text, write_atomic  # noqa: E402

PROG = 'clean_nbs'
KERNELSPEC = {'display_name': 'Python 3', 'language': 'python', 'name': 'python3'}


def clean_notebook(nb):
    """A cleaned copy of notebook `nb` (a dict as loaded from JSON); `nb` itself is not modified."""
    nb = copy.deepcopy(nb)
    for cell in nb.get('cells', []):
        if isinstance(cell.get('source'), str):  # nbformat stores sources as lists of lines
            cell['source'] = cell['source'].splitlines(keepends=True)
        if cell.get('cell_type') == 'code':
            cell['outputs'] = []
            cell['execution_count'] = None
        else:  # only code cells may carry these in nbformat 4
            cell.pop('outputs', None)
            cell.pop('execution_count', None)
        tags = (cell.get('metadata') or {}).get('tags')
        cell['metadata'] = {'tags': list(tags)} if isinstance(tags, list) and tags else {}
    nb['metadata'] = {'kernelspec': dict(KERNELSPEC), 'language_info': {'name': 'python'}}
    return nb


def clean_text(nb):
    """The committed text of notebook `nb` once cleaned (nbformat's layout, LF line endings)."""
    return json.dumps(clean_notebook(nb), indent=1, sort_keys=True, ensure_ascii=False) + '\n'


def is_clean(path):
    """True when the file at `path` is byte for byte what cleaning would write."""
    text, nb = read_notebook_text(path)
    return text == clean_text(nb)


def clean_file(path):
    """Clean the notebook at `path` in place (atomically); returns True if it changed."""
    path = Path(path)
    text, nb = read_notebook_text(path)
    new = clean_text(nb)
    if new == text: return False
    write_atomic(path, new)
    return True


def _shown(path):
    path = Path(path).resolve()
    try: return path.relative_to(Path.cwd()).as_posix()
    except ValueError: return path.as_posix()


def main(argv=None):
    """Command-line entry point; returns the exit status (0 clean/cleaned, 1 unclean with --check, 2 error)."""
    p = argparse.ArgumentParser(
        prog='tools/clean_nbs.py',
        description='Remove outputs, execution counts and volatile metadata from notebooks, in place.',
        epilog='Exit status: 0 done / all clean, 1 --check found unclean notebooks, 2 unreadable notebook.')
    p.add_argument('notebooks', nargs='*', metavar='NOTEBOOK',
                   help='notebooks to clean (default: every *.ipynb in the notebooks folder)')
    p.add_argument('--nbs', metavar='DIR', type=Path, default=ROOT / 'nbs',
                   help='notebooks folder used when no NOTEBOOK is given (default: nbs/ of the repository)')
    p.add_argument('--check', action='store_true',
                   help='change nothing; exit 1 listing every notebook that is not clean')
    args = p.parse_args(argv)
    if args.notebooks: paths = [Path(n) for n in args.notebooks]
    elif args.nbs.is_dir(): paths = sorted(args.nbs.glob('*.ipynb'), key=natural_key)
    else:
        print(f'{PROG}: error: {args.nbs}: no such folder', file=sys.stderr)
        return 2
    try:
        if args.check:
            unclean = [path for path in paths if not is_clean(path)]
            for path in unclean: print(f'{_shown(path)}: not clean')
            if unclean:
                print(f'{PROG}: run `python tools/clean_nbs.py` to clean them', file=sys.stderr)
                return 1
            print(f"{len(paths)} notebook{'s' if len(paths) != 1 else ''} clean")
            return 0
        # read everything first, so a bad notebook stops the run before any file changes
        for path in paths: read_notebook_text(path)
        for path in paths:
            if clean_file(path): print(f'cleaned {_shown(path)}')
    except NotebookError as e:
        print(f'{PROG}: error: {e}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
