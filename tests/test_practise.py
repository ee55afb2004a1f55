"""practise.py make (issue 31, head start): solution regions become one-line stubs, nothing else changes, the
lessons are never written to, a student's edited notebook is not overwritten, badly marked cells are named."""
import json

import pytest

import practise
from nbio import read_notebook
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


# ---------------------------------------------------------------- grading, on lesson 07's real exercises

def make_07(tmp_path):
    assert main(['make', '07', '--out', str(tmp_path / 'practice')]) == 0
    return tmp_path / 'practice' / '07_batchnorm.ipynb'


def test_grade_a_student_version_then_the_solutions(tmp_path, capsys):
    "The stubs: exit 1 and a table of todo rows with their hints; the solutions pasted back: exit 0, lesson done"
    path = make_07(tmp_path)
    capsys.readouterr()
    assert main(['grade', '07', str(path)]) == 1
    out = capsys.readouterr().out
    assert f'Lesson 07: {path}' in out and '0 of 3 exercises pass.' in out
    rows = [l.split() for l in out.splitlines() if l.startswith('  07.')]
    assert [r[0] for r in rows] == ['07.1', '07.2', '07.3'] and all(r[2] == 'todo' for r in rows)
    assert 'not written yet (hint: mean, biased var over (0, 2, 3)' in out
    nb = read_notebook(path)
    for ex, code in practise.solutions(read_notebook(practise.lesson_notebook('07'))).items():
        nb = practise.with_solution(nb, ex, code)
    path.write_text(json.dumps(nb))
    assert main(['grade', '07', str(path)]) == 0
    assert '3 of 3 exercises pass: lesson done.' in capsys.readouterr().out


def test_grade_names_a_renamed_function_and_a_cell_that_raises(tmp_path, capsys):
    "A class renamed and a cell raising when run: each exercise's row names the name or the cell, the others are graded; exit 1"
    path = make_07(tmp_path)
    nb = read_notebook(path)
    nb = practise.with_solution(nb, '07.2', 'return F.layer_norm(x, x.shape[1:]) * self.mult + self.add')
    for cell in nb['cells']:
        src = ''.join(cell['source'])
        if src.startswith('#export') and 'class BatchNorm(' in src:
            cell['source'] = src.replace('class BatchNorm(', 'class MyBatchNorm(')
        if src.startswith('#export') and 'class GroupNorm(' in src: bad = nb['cells'].index(cell)
    nb['cells'][bad]['source'] = ''.join(nb['cells'][bad]['source']) + '\nprint(1 / 0)'
    path.write_text(json.dumps(nb))
    capsys.readouterr()
    assert main(['grade', '07', str(path)]) == 1
    rows = {l.split()[0]: l for l in capsys.readouterr().out.splitlines() if l.startswith('  07.')}
    assert 'missing' in rows['07.1'] and '`BatchNorm` is not defined by your export cells (renamed or deleted?)' in rows['07.1']
    assert f'{bad}  error' in rows['07.3'] and f'cell {bad} raised ZeroDivisionError: division by zero' in rows['07.3']
    assert rows['07.2'].split()[2] == 'pass'          # the cells before and after still ran: nothing else broken


def test_grade_bad_input_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    bad = tmp_path / 'mine.ipynb'
    bad.write_text('{"cells": [')
    monkeypatch.setattr(practise, 'PRACTICE', tmp_path / 'nothing')
    for argv, msg in ((['grade', '07', str(bad)], f'{bad}: invalid JSON (line 1'),
                      (['grade', '07'], 'nothing/07_batchnorm.ipynb: not found; make it with `python practise.py make 07`'),
                      (['grade', 'all', str(bad)], "lesson 'all': grade one lesson at a time"),
                      (['grade', '99', str(bad)], "lesson '99': no notebook")):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count('\n') == 1 and msg in err, err


def test_grade_stops_a_notebook_that_loops_forever(tmp_path):
    path = make_07(tmp_path)
    nb = read_notebook(path)
    nb['cells'].append(dict(cell_type='code', execution_count=None, id='loop', metadata={}, outputs=[],
                            source='#export\nwhile True: pass'))
    path.write_text(json.dumps(nb))
    with pytest.raises(PractiseError, match='grading ran past 10 s; does a cell loop forever'):
        practise.grade('07', path, timeout=10)


# ---------------------------------------------------------------- the student versions, run as Jupyter runs them

def _lessons_with_exercises():
    from exercises import checks_for
    return [p.stem.split('_')[0] for p in practise.lesson_notebooks('all') if checks_for(p.stem.split('_')[0])]


@pytest.fixture(scope='session')
def student_runs(request, tmp_path_factory):
    """The student versions of the lessons this session selected, each made, then run in quick mode in its own
    kernel, two at a time (two kernels on two cores take about half the time of one after the other)"""
    from concurrent.futures import ThreadPoolExecutor
    from run_notebook import run_notebook
    lessons = [item.callspec.params['lesson'] for item in request.session.items
               if item.originalname == 'test_student_version_runs_to_its_first_stub']
    out = tmp_path_factory.mktemp('practice')
    made = {lesson: practise.make(lesson, out)[0] for lesson in lessons}
    def run(lesson): return run_notebook(made[lesson][0], quick=True, cell_timeout=300, timeout=600)
    with ThreadPoolExecutor(2) as pool: runs = dict(zip(lessons, pool.map(run, lessons)))
    return {lesson: (*made[lesson], runs[lesson]) for lesson in lessons}


@pytest.mark.notebook
@pytest.mark.parametrize('lesson', _lessons_with_exercises())
def test_student_version_runs_to_its_first_stub(lesson, student_runs):
    """`make`, then "Run All" in quick mode: every cell runs until a stub is called, which stops the run with the
    exercise's hint. (With the solutions pasted back the notebook is the lesson, test_exercises.py shows, and the
    lesson's quick run is test_notebooks.py's.)"""
    path, found, res = student_runs[lesson]
    assert res.status == 'FAILED', res.report()
    hints = dict(found)
    stopped = [ex for ex in hints if f'NotImplementedError: Exercise {ex}: {hints[ex]}' in (res.error or '')]
    assert stopped, res.report()
    first_cell = min(practise.exercise_cells(read_notebook(path)).values())
    assert res.failed_cell >= first_cell, res.report()


def test_grade_names_a_cell_that_does_not_compile():
    "A magic left in an export cell (not Python outside IPython): its exercise's row names the cell and the line"
    nb = read_notebook(practise.lesson_notebook('07'))
    cell = next(i for i, c in enumerate(nb['cells']) if ''.join(c['source']).startswith('#export') and 'class LayerNorm' in ''.join(c['source']))
    nb['cells'][cell]['source'] = ''.join(nb['cells'][cell]['source']) + '\n%matplotlib inline'
    rows = {r.ex_id: r for r in practise.grade_notebook(nb, '07')}
    assert rows['07.2'].status == 'error' and rows['07.2'].cell == cell
    assert rows['07.2'].message.startswith(f'cell {cell} raised SyntaxError at line ')
    assert rows['07.1'].status == rows['07.3'].status == 'pass'
