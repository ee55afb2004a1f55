"""Test-suite settings shared by every test module.

The dataset mirror: tests read archives from ``EXP_MIRROR``. When it is unset and the shared mirror
(``../shared/data`` beside the repository) exists, point at it, so ``pytest`` works the same from a
fresh clone as from ``.ci/run``.
"""
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_shared_mirror = ROOT.parent / 'shared' / 'data'
if not os.environ.get('EXP_MIRROR') and _shared_mirror.is_dir():
    os.environ['EXP_MIRROR'] = str(_shared_mirror)


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
