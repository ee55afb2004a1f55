"""tools/clean_nbs.py: a dirty notebook is cleaned, --check detects it, cleaning is idempotent."""
import copy, importlib.util, json, subprocess, sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / 'tools' / 'clean_nbs.py'
_spec = importlib.util.spec_from_file_location('clean_nbs', SCRIPT)
clean_nbs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(clean_nbs)

KERNELSPEC = {'display_name': 'Python 3', 'language': 'python', 'name': 'python3'}


def dirty_notebook():
    return {
        'cells': [
            {'cell_type': 'markdown', 'id': 'a1', 'metadata': {'collapsed': True}, 'source': ['# 03: Títle α\n', 'text']},
            {'cell_type': 'code', 'id': 'b2', 'execution_count': 7,
             'metadata': {'tags': ['parameters'], 'scrolled': True, 'ExecuteTime': {'end_time': '2024-01-01'}},
             'outputs': [{'output_type': 'stream', 'name': 'stdout', 'text': ['hi\n']}],
             'source': 'epochs = 8  # full lesson'},
            {'cell_type': 'raw', 'id': 'c3', 'metadata': {'tags': ['quick']}, 'source': 'epochs = 1'},
            {'cell_type': 'code', 'id': 'd4', 'execution_count': 8, 'metadata': {'tags': []},
             'outputs': [{'output_type': 'execute_result', 'execution_count': 8, 'metadata': {},
                          'data': {'text/plain': ['2']}}],
             'source': ['#export\n', 'x = 1 + 1']},
        ],
        'metadata': {'kernelspec': {'display_name': 'venv', 'language': 'python', 'name': 'venv-py311'},
                     'language_info': {'name': 'python', 'version': '3.11.9', 'mimetype': 'text/x-python'},
                     'widgets': {'state': {}}, 'toc': {'number_sections': True}},
        'nbformat': 4, 'nbformat_minor': 5,
    }


@pytest.fixture
def dirty(tmp_path):
    path = tmp_path / 'nbs' / '03_x.ipynb'
    path.parent.mkdir()
    path.write_text(json.dumps(dirty_notebook(), indent=2), encoding='utf-8')
    return path


def test_clean_notebook_contents():
    nb = dirty_notebook()
    original = copy.deepcopy(nb)
    clean = clean_nbs.clean_notebook(nb)
    assert nb == original                                         # input left alone
    assert clean['metadata'] == {'kernelspec': KERNELSPEC, 'language_info': {'name': 'python'}}
    md, params, quick, code = clean['cells']
    assert md == {'cell_type': 'markdown', 'id': 'a1', 'metadata': {}, 'source': ['# 03: Títle α\n', 'text']}
    assert params == {'cell_type': 'code', 'id': 'b2', 'execution_count': None, 'metadata': {'tags': ['parameters']},
                      'outputs': [], 'source': ['epochs = 8  # full lesson']}
    assert quick == {'cell_type': 'raw', 'id': 'c3', 'metadata': {'tags': ['quick']}, 'source': ['epochs = 1']}
    assert code['metadata'] == {} and code['outputs'] == [] and code['execution_count'] is None
    assert (clean['nbformat'], clean['nbformat_minor']) == (4, 5)


def test_cli_cleans_and_check_detects(dirty):
    repo = dirty.parent.parent
    check = subprocess.run([sys.executable, str(SCRIPT), '--check', str(dirty)], capture_output=True, text=True, cwd=repo)
    assert check.returncode == 1 and check.stdout == 'nbs/03_x.ipynb: not clean\n'
    assert not clean_nbs.is_clean(dirty)

    res = subprocess.run([sys.executable, str(SCRIPT), str(dirty)], capture_output=True, text=True, cwd=repo)
    assert (res.returncode, res.stdout) == (0, 'cleaned nbs/03_x.ipynb\n')
    text = dirty.read_text(encoding='utf-8')
    assert text == json.dumps(clean_nbs.clean_notebook(dirty_notebook()), indent=1, sort_keys=True,
                              ensure_ascii=False) + '\n'
    assert 'Títle α' in text and 'outputs": []' in text and 'widgets' not in text and '\r' not in text
    assert clean_nbs.is_clean(dirty)
    check = subprocess.run([sys.executable, str(SCRIPT), '--check', '--nbs', 'nbs'], capture_output=True, text=True, cwd=repo)
    assert (check.returncode, check.stdout) == (0, '1 notebook clean\n')


def test_idempotent(dirty, capsys):
    assert clean_nbs.main([str(dirty)]) == 0
    once = dirty.read_bytes()
    stat = dirty.stat()
    capsys.readouterr()
    assert clean_nbs.main(['--nbs', str(dirty.parent)]) == 0
    assert capsys.readouterr().out == ''                           # nothing to clean, nothing written
    assert dirty.read_bytes() == once
    assert (dirty.stat().st_mtime_ns, dirty.stat().st_ino) == (stat.st_mtime_ns, stat.st_ino)
    nb = json.loads(once)
    assert clean_nbs.clean_notebook(nb) == nb
    assert sorted(p.name for p in dirty.parent.iterdir()) == ['03_x.ipynb']     # no temp files


def test_same_layout_as_nbformat(dirty):
    nbformat = pytest.importorskip('nbformat')
    clean_nbs.main([str(dirty)])
    text = dirty.read_text(encoding='utf-8')
    assert nbformat.writes(nbformat.reads(text, as_version=nbformat.NO_CONVERT)) + '\n' == text


def test_unreadable_notebook_stops_before_any_change(dirty, capsys):
    bad = dirty.parent / '04_bad.ipynb'
    bad.write_text('{"cells": [', encoding='utf-8')
    before = dirty.read_bytes()
    assert clean_nbs.main([str(dirty), str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith('clean_nbs: error: ') and '04_bad.ipynb: invalid JSON' in err
    assert dirty.read_bytes() == before
    assert clean_nbs.main(['--check', str(dirty.parent / 'nope.ipynb')]) == 2
