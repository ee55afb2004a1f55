"""The generated package must match the notebooks, import on its own, and notebooks must be clean."""
import os, subprocess, sys
from pathlib import Path

import pytest

from nbio import natural_key

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted((p.stem for p in (ROOT / 'exp').glob('nb_*.py')), key=natural_key)


def test_exp_in_sync_with_notebooks():
    "Editing an export cell without re-running the exporter fails here."
    res = subprocess.run([sys.executable, str(ROOT / 'notebook2script.py'), '--check'],
                         capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, f'exp/ drifted from nbs/:\n{res.stdout}{res.stderr}'


def test_notebooks_are_clean():
    res = subprocess.run([sys.executable, str(ROOT / 'tools' / 'clean_nbs.py'), '--check'],
                         capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, f'run `python tools/clean_nbs.py`:\n{res.stdout}{res.stderr}'


@pytest.mark.parametrize('module', MODULES)
def test_module_imports_in_fresh_interpreter(module, tmp_path):
    "Each module imports alone, from an unrelated folder, without notebook globals."
    env = {**os.environ, 'PYTHONPATH': str(ROOT), 'EXP_DATA': str(tmp_path / 'data')}
    res = subprocess.run([sys.executable, '-c', f'import exp.{module}'],
                         capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert res.returncode == 0, f'import exp.{module} failed:\n{res.stderr}'
    assert not (tmp_path / 'data').exists(), f'importing exp.{module} touched the data folder'
