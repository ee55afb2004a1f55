"""practise.py make (issue 31, head start): solution regions become one-line stubs, nothing else changes, the
lessons are never written to, a student's edited notebook is not overwritten, badly marked cells are named."""
import json

import pytest

import practise
from practise import PractiseError, main, stub_source

CELL = '''#export
def bn_stats(x):
    "Mean and variance over every axis but the channels"
    # Exercise 07.1 (hint: mean over (0, 2, 3), var with unbiased=False)
    ### BEGIN SOLUTION
    m = x.mean((0, 2, 3), keepdim=True)
    return m, x.var((0, 2, 3), keepdim=True, unbiased=False)
    ### END SOLUTION

def twice(x):
    # Exercise 07.2
    ### BEGIN SOLUTION
    return 2 * x
    ### END SOLUTION'''


def test_stub_source_replaces_each_region_at_its_indentation():
    src, found = stub_source(CELL, 'cell 3')
    assert found == [('07.1', 'mean over (0, 2, 3), var with unbiased=False'), ('07.2', 'write it')]
    assert "    raise NotImplementedError('Exercise 07.1: mean over (0, 2, 3), var with unbiased=False')" in src
    assert "    raise NotImplementedError('Exercise 07.2: write it')" in src
    assert 'x.var' not in src and 'SOLUTION' not in src
    assert src.splitlines()[:4] == CELL.splitlines()[:4]                  # the rest as it was, header comment kept
    ns = {}
    exec(src.replace('#export\n', ''), ns)
    with pytest.raises(NotImplementedError, match='Exercise 07.2'): ns['twice'](1)


@pytest.mark.parametrize('bad, msg', [
    ('def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION', r'cell 3, line 2: .* must follow an "# Exercise'),
    ('def f():\n    # Exercise 07.1\n    ### BEGIN SOLUTION\n    return 1', r'cell 3, line 3: .* without its ### END SOLUTION'),
    ('def f():\n    return 1\n    ### END SOLUTION', r'cell 3, line 3: ### END SOLUTION without'),
])
def test_badly_marked_cells_are_named(bad, msg):
    with pytest.raises(PractiseError, match=msg): stub_source(bad, 'cell 3')


def notebook(*sources):
    cells = [dict(cell_type='code', execution_count=3, id=f'c{i}', metadata={}, outputs=[{'output_type': 'stream',
              'name': 'stdout', 'text': ['hi\n']}], source=s.splitlines(keepends=True)) for i, s in enumerate(sources)]
    return dict(cells=cells, metadata={}, nbformat=4, nbformat_minor=5)

@pytest.fixture
def lessons(tmp_path, monkeypatch):
    nbs = tmp_path / 'nbs'
    nbs.mkdir()
    (nbs / '07_batchnorm.ipynb').write_text(json.dumps(notebook('import torch', CELL)))
    (nbs / '08_data_block.ipynb').write_text(json.dumps(notebook('x = 1')))
    monkeypatch.setattr(practise, 'NBS', nbs)
    return nbs


def test_make_writes_the_student_version_and_keeps_the_student_work(lessons, tmp_path, capsys):
    out = tmp_path / 'practice'
    assert main(['make', '07', '--out', str(out)]) == 0
    assert '07_batchnorm.ipynb: 2 exercise(s): 07.1, 07.2' in capsys.readouterr().out
    nb = json.loads((out / '07_batchnorm.ipynb').read_text())
    assert ''.join(nb['cells'][0]['source']) == 'import torch' and not nb['cells'][1]['outputs']
    assert 'NotImplementedError' in ''.join(nb['cells'][1]['source'])
    assert json.loads((lessons / '07_batchnorm.ipynb').read_text())['cells'][1]['outputs']   # the lesson untouched
    assert main(['make', '07', '--out', str(out)]) == 0                     # unchanged since made: made again
    (out / '07_batchnorm.ipynb').write_text((out / '07_batchnorm.ipynb').read_text().replace('write it', 'my try'))
    assert main(['make', '07', '--out', str(out)]) == 2
    assert 'edited since it was made' in capsys.readouterr().err
    assert 'my try' in (out / '07_batchnorm.ipynb').read_text()
    assert main(['make', '07', '--out', str(out), '--force']) == 0
    assert 'my try' not in (out / '07_batchnorm.ipynb').read_text()
    assert main(['make', 'all', '--out', str(out), '--force']) == 0         # 08 has no exercises: skipped


def test_make_refuses(lessons, tmp_path, capsys):
    for argv, msg in ((['make', '07', '--out', str(practise.ROOT / 'nbs' / 'x')], 'inside nbs/'),
                      (['make', '07', '--out', str(practise.ROOT / 'exp')], 'inside exp/'),
                      (['make', '99', '--out', str(tmp_path / 'p')], "lesson '99': no notebook"),
                      (['make', '08', '--out', str(tmp_path / 'p')], 'no exercise marked')):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count('\n') == 1 and msg in err, err
    assert not (practise.ROOT / 'nbs' / 'x').exists()
