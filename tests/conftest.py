"""Test-suite settings shared by every test module.

The dataset mirror: tests read archives from ``EXP_MIRROR``. When it is unset and the shared mirror
(``../shared/data`` beside the repository) exists, point at it, so ``pytest`` works the same from a
fresh clone as from ``.ci/run``.
"""
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_shared_mirror = ROOT.parent / 'shared' / 'data'
if not os.environ.get('EXP_MIRROR') and _shared_mirror.is_dir():
    os.environ['EXP_MIRROR'] = str(_shared_mirror)
