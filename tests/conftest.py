"""Test-suite settings shared by every test module.

The dataset mirror: tests read archives from ``EXP_MIRROR``. When it is unset and the shared mirror
(``../shared/data`` beside the repository) exists, point at it, so ``pytest`` works the same from a
fresh clone as from ``.ci/run``.
"""
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Threads that degrade gracefully on a busy machine, as run_notebook.py gives its quick kernels: the
# tests' tensors are small, and a spinning second thread beside another process slows a run many times
# over (README, "On a shared machine"). Set before torch is imported; a value of your own wins.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
os.environ.setdefault('OMP_NUM_THREADS', '1')

_shared_mirror = ROOT.parent / 'shared' / 'data'
if not os.environ.get('EXP_MIRROR') and _shared_mirror.is_dir():
    os.environ['EXP_MIRROR'] = str(_shared_mirror)


@pytest.fixture
def no_rendezvous(monkeypatch):
    """A training script's rank 0 of 2 with no address to meet at: `init_process_group` would fail, so an exit 2
    seen under it came before the process group (train_imagenette.py's and train_text.py's bad-input tests)"""
    for k in ('MASTER_ADDR', 'MASTER_PORT', 'TORCHELASTIC_RUN_ID'): monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv('WORLD_SIZE', '2'); monkeypatch.setenv('RANK', '0'); monkeypatch.setenv('LOCAL_RANK', '0')


@pytest.fixture
def one_thread():
    """Torch limited to one thread for the test (restored after). The oracle tests use tiny tensors: one
    thread is fastest, and on a busy machine spare threads only spin. Modules opt in with
    ``pytestmark = pytest.mark.usefixtures('one_thread')``."""
    import torch
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# ---------------------------------------------------------------- one marker per lesson

def lesson_marker(name):
    """The lesson marker of a notebook stem or test file name: `09b_learner` and `test_nb09b_learner.py`
    give `lesson09b`; anything else gives None."""
    import re
    m = re.match(r'(?:test_nb)?(\d+[a-z]*)_', Path(name).name)
    return f'lesson{m.group(1)}' if m else None


LESSONS = sorted({lesson_marker(p.stem) for p in (ROOT / 'nbs').glob('*.ipynb')} - {None})


def pytest_configure(config):
    "Register `lesson00` ... `lesson14` (one per notebook in nbs/), so `-m lesson09b` selects a lesson without warnings."
    for m in LESSONS:
        config.addinivalue_line('markers', f'{m}: lesson {m[6:]}: its notebook quick run, tests/test_nb{m[6:]}_*.py '
                                           'and its exercises')


def _item_lesson(item):
    """The lesson marker of a test: a notebook run of tests/test_notebooks.py by its notebook, a test parametrized
    by `lesson` ('07') or `ex` ('07.1') by that lesson, and every test in tests/test_nbNN*_*.py by its file name"""
    params = getattr(getattr(item, 'callspec', None), 'params', {})
    if item.path.name == 'test_notebooks.py' and 'nb' in params: return lesson_marker(Path(params['nb']).stem)
    if isinstance(params.get('lesson'), str): return f"lesson{params['lesson']}"
    if isinstance(params.get('ex'), str): return f"lesson{params['ex'].split('.')[0]}"
    return lesson_marker(item.path.name)


def pytest_collection_modifyitems(config, items):
    "Mark each test with its lesson (`_item_lesson`), so `pytest -m lesson07` runs one lesson's tests"
    for item in items:
        if (m := _item_lesson(item)) in LESSONS:
            item.add_marker(getattr(pytest.mark, m))
