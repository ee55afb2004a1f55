"""tools/device: the GPU-machine checks, run here on the CPU in their smoke mode.

`prepare.sh` splits the mirror's Imagenette archive in two halves (the device tool carries at most 64 MiB a call);
`checks.sh 1` and `checks.sh 2` are what a session with a lent GPU runs there. Here they run with
DEVICE_CHECK_DEVICE=cpu and DEVICE_CHECK_SMOKE=1 (tiny sizes), so that a session with a GPU does not spend its
minutes on a broken script. Also: a missing half stops step 2 with exit 2, a corrupted half with exit 1, before
anything trains.
"""
import os, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / 'tools' / 'device'
pytestmark = pytest.mark.skipif(not os.environ.get('EXP_MIRROR'), reason='needs the dataset mirror (EXP_MIRROR)')


def run(args, dev_dir, out, data, **extra):
    env = {**os.environ, 'DEVICE_DIR': str(dev_dir), 'DEVICE_NO_WHEELS': '1', 'DEVICE_CHECK_DEVICE': 'cpu',
           'DEVICE_CHECK_SMOKE': '1', 'OUT': str(out), 'EXP_DATA': str(data), 'PYTHON': sys.executable,
           'OMP_NUM_THREADS': '1', **extra}
    return subprocess.run(['bash', *map(str, args)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_prepare_then_both_steps(tmp_path):
    dev, out, data = tmp_path / 'dev', tmp_path / 'out', tmp_path / 'data'
    r = run([TOOLS / 'prepare.sh'], dev, out, data)
    assert r.returncode == 0, r.stderr
    parts = sorted(dev.glob('imagenette2-160.tgz.part*'))
    assert [p.name[-2:] for p in parts] == ['00', '01']
    mirror = Path(os.environ['EXP_MIRROR']) / 'imagenette2-160.tgz'
    assert sum(p.stat().st_size for p in parts) == mirror.stat().st_size
    assert max(p.stat().st_size for p in parts) < 60 * 2**20          # each half fits one call with the repository

    for step, names in [(1, ['unit-tests', 'bench-xres', 'bench-attn']),
                        (2, ['sha256', 'untar', 'train-fp32', 'train-bf16', 'data-tests', 'bench-affine', 'bench-mp'])]:
        r = run([TOOLS / 'checks.sh', step], dev, out, data)
        summary = (out / f'summary{step}.txt').read_text()
        assert r.returncode == 0, f'step {step}:\n{summary}\n{r.stderr[-2000:]}'
        for name in names: assert any(l.startswith(name) and ' ok ' in l for l in summary.splitlines()), (name, summary)
    assert 'final: epoch 1' in summary and 'ratio=' in summary

    (dev / 'imagenette2-160.tgz.part01').write_bytes(b'not the archive')
    r = run([TOOLS / 'checks.sh', 2], dev, out, tmp_path / 'data2')
    assert r.returncode == 1 and 'does not match' in r.stdout
    assert 'train-fp32' not in (out / 'summary2.txt').read_text()
    (dev / 'imagenette2-160.tgz.part01').unlink()
    r = run([TOOLS / 'checks.sh', 2], dev, out, tmp_path / 'data2')
    assert r.returncode == 2 and 'part01 is missing' in r.stdout


def test_bad_step_exit_2(tmp_path):
    r = run([TOOLS / 'checks.sh', 3], tmp_path / 'dev', tmp_path / 'out', tmp_path / 'data')
    assert r.returncode == 2 and 'usage' in r.stderr
