"""nbio.py, the notebook I/O the three tools share: reading and checking, natural order, atomic writes."""
import json, os
from pathlib import Path

import pytest

import nbio
from nbio import NotebookError, natural_key, read_notebook, read_notebook_text, write_atomic


def nb_json(cells=()): return json.dumps({'cells': list(cells), 'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5})


def test_natural_key_one_order_for_names_paths_and_modules():
    names = ['10b_x', '02_a', '10_y', '02b_c', '09c_d', '02a_b', '11_z', '2_q']
    expected = ['02_a', '2_q', '02a_b', '02b_c', '09c_d', '10_y', '10b_x', '11_z']
    assert sorted(names, key=natural_key) == expected
    assert sorted([f'nbs/{n}.ipynb' for n in names], key=natural_key) == [f'nbs/{n}.ipynb' for n in expected]
    assert sorted(['nb_10', 'nb_09c', 'nb_10b', 'nb_2'], key=natural_key) == ['nb_2', 'nb_09c', 'nb_10', 'nb_10b']


@pytest.mark.parametrize('text,words', [
    ('{"cells": [', 'invalid JSON (line 1'),
    ('[1, 2]', "not a notebook (no 'cells' list)"),
    ('{"nbformat": 3, "cells": []}', 'nbformat 4'),
    ('{"nbformat": 4, "cells": [{"source": "x"}]}', "cell 0: not a notebook cell"),
    ('{"nbformat": 4, "cells": [{"cell_type": "code", "source": [1]}]}', "cell 0: 'source'"),
])
def test_bad_notebooks_raise_naming_the_file(tmp_path, text, words):
    path = tmp_path / '03_bad.ipynb'
    path.write_text(text, encoding='utf-8')
    with pytest.raises(NotebookError) as e: read_notebook(path, shown='nbs/03_bad.ipynb')
    assert all(m.startswith('nbs/03_bad.ipynb: ') for m in e.value.messages) and words in str(e.value)
    assert isinstance(e.value, ValueError)


def test_missing_wrong_suffix_and_not_utf8(tmp_path):
    with pytest.raises(NotebookError, match='nope.ipynb: no such file'): read_notebook(tmp_path / 'nope.ipynb')
    (tmp_path / 'a.json').write_text(nb_json())
    with pytest.raises(NotebookError, match=r'a\.json: not a notebook \(expected a \.ipynb'): read_notebook(tmp_path / 'a.json')
    (tmp_path / 'b.ipynb').write_bytes(b'\xff\xfe{}')
    with pytest.raises(NotebookError, match='b.ipynb: not UTF-8'): read_notebook(tmp_path / 'b.ipynb')


def test_bom_is_read_and_kept_in_the_text(tmp_path):
    path = tmp_path / 'c.ipynb'
    path.write_bytes(('\ufeff' + nb_json([{'cell_type': 'code', 'source': ['#export\n', 'x = 1']}])).encode('utf-8'))
    text, nb = read_notebook_text(path)
    assert text.startswith('\ufeff') and nbio.cell_text(nb['cells'][0]) == '#export\nx = 1'
    assert nbio.cell_text('a\r\nb\rc') == 'a\nb\nc'


def test_write_atomic_keeps_mode_and_leaves_no_temp(tmp_path, monkeypatch):
    path = tmp_path / 'm.py'
    write_atomic(path, 'α = 1\n', mode=0o640)
    assert path.read_text(encoding='utf-8') == 'α = 1\n' and path.stat().st_mode & 0o777 == 0o640
    os.chmod(path, 0o600)
    write_atomic(path, b'x = 2\n')
    assert path.read_bytes() == b'x = 2\n' and path.stat().st_mode & 0o777 == 0o600
    def boom(*a): raise OSError('disk full')
    monkeypatch.setattr(os, 'replace', boom)          # the rename inside coursekit.files
    with pytest.raises(OSError, match='disk full'): write_atomic(path, b'y = 3\n')
    assert path.read_bytes() == b'x = 2\n' and sorted(p.name for p in tmp_path.iterdir()) == ['m.py']
