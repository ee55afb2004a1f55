"""The path students and instructors take: Jupyter's "Run All", with no runner in between.

Jupyter starts a kernel with the server's environment (`EXP_QUICK=1 jupyter lab`) and executes every
code cell in order; nbclient does exactly that, so it stands in for Jupyter here. Two things are shown:

- the runner executes a notebook the way Jupyter does: the same cells run, print the same lines and are
  skipped for the same reasons, on a notebook with every kind of flag (tests/test_notebooks.py runs every
  lesson through the runner, so this carries that suite over to Jupyter);
- a real lesson with `#slow` and `#cuda` cells passes "Run All" in quick mode on this machine, and the
  notebook saved after the run is the committed file once its outputs are cleared: quick mode edits
  nothing (before the extension, quick values meant turning a raw cell into code, and an autosave
  committed that change).
"""
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from coursekit.notebook import cell_flags
from tools.clean_nbs import clean_text
from run_notebook import run_notebook
from test_run_notebook import cuda_present, flags_notebook, stream_text

ROOT = Path(__file__).resolve().parents[1]
LESSON = ROOT / 'nbs' / '10_augmentation.ipynb'      # parameters, #slow and #cuda cells, Imagenette


def run_all(path, tmp_path, quick):
    """Execute a notebook as Jupyter's "Run All": the installed python3 kernel, the notebook's folder as
    working directory, the environment of the process that started it; returns the executed notebook."""
    nb = nbformat.read(str(path), as_version=4)
    env = {k: v for k, v in os.environ.items() if k not in ('EXP_QUICK', 'EXP_PARAMS', 'MPLBACKEND')}
    env['EXP_QUICK'] = '1' if quick else '0'
    client = NotebookClient(nb, kernel_name='python3', timeout=300,
                            resources={'metadata': {'path': str(Path(path).parent)}})
    client.execute(env=env)
    saved = tmp_path / Path(path).name          # and saved, as Jupyter does (autosave included)
    nbformat.write(nb, str(saved))
    return nbformat.read(str(saved), as_version=4), saved


def outline(nb):
    "What a run did, cell by cell: (index, ran?, printed text), with the figures and timings left out."
    return [(i, c.get('execution_count') is not None, stream_text(c)) for i, c in enumerate(nb.cells)
            if c.cell_type == 'code']


@pytest.mark.parametrize('quick', [True, False], ids=['quick', 'full'])
def test_runner_runs_a_notebook_as_jupyter_does(tmp_path, quick):
    path = flags_notebook(tmp_path / 'nbs' / '01_flags.ipynb')
    jupyter, _ = run_all(path, tmp_path, quick)
    res = run_notebook(path, quick=quick)
    assert res.ok, res.report()
    assert outline(jupyter) == outline(res.nb)
    skipped = [t for _, _, t in outline(jupyter) if t.startswith('skipped: ')]
    assert len(skipped) == (2 if quick else 0) + (0 if cuda_present() else 1 + (not quick))
    quick_out = stream_text(jupyter.cells[4])
    assert quick_out.startswith('quick mode is on' if quick else 'quick mode is off')


def check_run_all_in_quick_mode(tmp_path, lesson=LESSON):
    """Run All on `lesson` in quick mode passes, every flagged cell says why it was skipped, the others
    ran, and the notebook saved afterwards is the committed file once cleaned. tests/test_notebooks.py
    runs this for LESSON in place of the runner (the other lessons go through the runner)."""
    committed = lesson.read_text(encoding='utf-8')
    nb, saved = run_all(lesson, tmp_path, quick=True)       # raises CellExecutionError on a failing cell
    cells = [(c, stream_text(c)) for c in nb.cells if c.cell_type == 'code']
    quick_cell = next(t for c, t in cells if c.source.startswith('%%quick'))
    assert quick_cell.startswith('quick mode is on (EXP_QUICK=1)') and ' -> ' in quick_cell
    for c, text in cells:
        flags = cell_flags(c.source)
        if 'slow' in flags:
            assert text == 'skipped: a #slow cell, and quick mode is on (EXP_QUICK=1)\n', c.source
        elif 'cuda' in flags and not cuda_present():
            assert text == 'skipped: a #cuda cell, and this machine has no CUDA device\n', c.source
        else:
            assert c.execution_count is not None and 'skipped: ' not in text
    assert any('slow' in cell_flags(c.source) for c, _ in cells)
    assert any('cuda' in cell_flags(c.source) for c, _ in cells)
    import json
    assert clean_text(json.loads(saved.read_text(encoding='utf-8'))) == committed
    assert lesson.read_text(encoding='utf-8') == committed
