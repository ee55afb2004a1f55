"""Every lesson notebook, run top to bottom in a fresh kernel in quick mode, in course order.

One test per notebook, named after it: ``pytest -k 07_batchnorm`` runs one lesson. A failure reports
the notebook, the cell index, the cell's source and the traceback. One lesson (tests/test_jupyter_path.py's)
runs as Jupyter's "Run All" runs it, with no runner in between; the runner runs the others the same way.
"""
import re
from pathlib import Path

import pytest

from nbio import natural_key
from run_notebook import run_notebook
from test_jupyter_path import LESSON as JUPYTER_LESSON, check_run_all_in_quick_mode

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / 'nbs').glob('*.ipynb'), key=lambda p: natural_key(p.stem))

# Quick mode keeps each lesson well under a minute on a 2-core CPU; these limits only catch hangs.
CELL_TIMEOUT, NOTEBOOK_TIMEOUT = 300, 600


@pytest.mark.notebook
@pytest.mark.parametrize('nb', NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook(nb, tmp_path):
    if nb == JUPYTER_LESSON:     # run as Jupyter's "Run All" runs it, with no runner (test_jupyter_path.py)
        check_run_all_in_quick_mode(tmp_path, nb)
        return
    res = run_notebook(nb, quick=True, cell_timeout=CELL_TIMEOUT, timeout=NOTEBOOK_TIMEOUT)
    if res.status != 'ok':
        pytest.fail(res.report(), pytrace=False)


def test_lesson_marker_selects_notebook_and_its_tests():
    """`pytest -m lesson07` collects 07's notebook run, the tests of tests/test_nb07_*.py and of its exercises (not
    07a's), without warnings."""
    import subprocess, sys
    res = subprocess.run([sys.executable, '-m', 'pytest', '--collect-only', '-q', '-m', 'lesson07', '-W', 'error',
                          'tests/test_notebooks.py', 'tests/test_nb07_norm.py', 'tests/test_nb07a_lsuv.py',
                          'tests/test_exercises.py', 'tests/test_practise.py'],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    ids = [l for l in res.stdout.splitlines() if '::' in l]
    for must in ('tests/test_notebooks.py::test_notebook[07_batchnorm]', 'tests/test_practise.py::test_student_version_runs_to_its_first_stub[07]',
                 'tests/test_exercises.py::test_planted_wrong_solution_fails_naming_the_exercise[07.1]',
                 'tests/test_exercises.py::test_reference_passes_and_stubs_fail_with_their_hint[07]'):
        assert must in ids, must
    others = [i for i in ids if not i.startswith('tests/test_nb07_norm.py::') and not re.search(r'\[07(\.\d+|_batchnorm)?\]$', i)]
    assert not others and any(i.startswith('tests/test_nb07_norm.py::') for i in ids), others
    assert 'PytestUnknownMarkWarning' not in res.stdout + res.stderr
