"""Every lesson notebook, run top to bottom in a fresh kernel in quick mode, in course order.

One test per notebook, named after it: ``pytest -k 07_batchnorm`` runs one lesson. A failure reports
the notebook, the cell index, the cell's source and the traceback. One lesson (tests/test_jupyter_path.py's)
runs as Jupyter's "Run All" runs it, with no runner in between; the runner runs the others the same way.
"""
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
    "`pytest -m lesson09b` collects 09b's notebook run and the tests of tests/test_nb09b_*.py, without warnings."
    import subprocess, sys
    res = subprocess.run([sys.executable, '-m', 'pytest', '--collect-only', '-q', '-m', 'lesson09b', '-W', 'error',
                          'tests/test_notebooks.py', 'tests/test_nb09b_learner.py', 'tests/test_nb09_optimizers.py'],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    ids = [l for l in res.stdout.splitlines() if '::' in l]
    assert 'tests/test_notebooks.py::test_notebook[09b_learner]' in ids
    assert len(ids) > 1 and all(i.startswith('tests/test_nb09b_learner.py::') for i in ids
                                if i != 'tests/test_notebooks.py::test_notebook[09b_learner]')
    assert 'PytestUnknownMarkWarning' not in res.stdout + res.stderr
