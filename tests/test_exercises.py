"""The exercises and their grader (issue 31), for every lesson that has exercises:

- the checks of `exercises/lessonNN.py` and the exercises marked in the lesson agree, 2 to 5 per lesson 01-14;
- the lesson's own code (the reference solution) passes every check;
- the student version (`practise.py make`) fails every check with the stub's hint;
- one planted wrong solution per exercise (tests/planted/lessonNN.py) fails its check with a sentence;
- the student version with the solutions pasted back is the lesson again, cell for cell (so the lesson's quick
  run in test_notebooks.py is the run of the pasted-back version).

All of it in this process, without training: grading runs a lesson's export cells and small oracle comparisons.
The student versions' runs in a kernel, and the grader's command line, are in test_practise.py.
"""
import importlib
import re
from pathlib import Path

import pytest

import practise
from exercises import checks_for, lesson_of
from nbio import cell_text, natural_key, read_notebook

ROOT = Path(__file__).resolve().parents[1]
LESSON_NBS = sorted((ROOT / 'nbs').glob('*.ipynb'), key=lambda p: natural_key(p.stem))
LESSONS = [p.stem.split('_')[0] for p in LESSON_NBS if checks_for(p.stem.split('_')[0])]
EXERCISES = [ex for lesson in LESSONS for ex in checks_for(lesson)]

pytestmark = pytest.mark.usefixtures('one_thread')


def _nb(lesson): return read_notebook(practise.lesson_notebook(lesson))


def _planted(lesson):
    try: return importlib.import_module(f'planted.lesson{lesson}').WRONG
    except ModuleNotFoundError: return {}


def test_every_lesson_has_exercises():
    "Lessons 01-14 have at least 2 exercises each (a number with its lettered lessons), no notebook more than 5, about 50 in all"
    per = {}
    for ex in EXERCISES: per.setdefault(re.match(r'\d+', ex)[0], []).append(ex)
    missing = sorted({f'{n:02d}' for n in range(1, 15)} - {k for k, v in per.items() if len(v) >= 2})
    assert not missing, f'lessons with fewer than 2 exercises: {missing}'
    assert all(len(checks_for(lesson)) <= 5 for lesson in LESSONS)
    assert len(EXERCISES) >= 45


@pytest.mark.parametrize('lesson', LESSONS)
def test_checks_and_markers_agree(lesson):
    "Every exercise marked in the lesson has a check, every check a marked exercise, each a planted wrong solution"
    marked = [ex for ex, _ in practise.student_notebook(_nb(lesson), lesson)[1]]
    assert marked == list(checks_for(lesson))
    assert set(_planted(lesson)) == set(marked)


@pytest.mark.parametrize('lesson', LESSONS)
def test_reference_passes_and_stubs_fail_with_their_hint(lesson):
    nb = _nb(lesson)
    ref = practise.grade_notebook(nb, lesson)
    assert [(r.ex_id, r.status, r.message) for r in ref] == [(ex, 'pass', '') for ex in checks_for(lesson)]
    student, found = practise.student_notebook(nb, lesson)
    hints = dict(found)
    for r in practise.grade_notebook(student, lesson):
        assert r.status == 'todo', r.line()
        assert r.message == f'not written yet (hint: {hints[r.ex_id]})' or re.fullmatch(
            rf'uses exercise {lesson}\.\d+, which is not written yet', r.message), r.line()
    sols = practise.solutions(nb)
    for ex in checks_for(lesson):           # each stub alone (the others solved): its own hint
        alone = student
        for other in sols.keys() - {ex}: alone = practise.with_solution(alone, other, sols[other])
        r = {r.ex_id: r for r in practise.grade_notebook(alone, lesson)}[ex]
        assert (r.status, r.message) == ('todo', f'not written yet (hint: {hints[ex]})'), r.line()


@pytest.mark.parametrize('ex', EXERCISES)
def test_planted_wrong_solution_fails_naming_the_exercise(ex):
    lesson = lesson_of(ex)
    nb = practise.with_solution(_nb(lesson), ex, _planted(lesson)[ex])
    got = {r.ex_id: r for r in practise.grade_notebook(nb, lesson)}[ex]
    assert got.status == 'FAIL', got.line()
    assert got.line().lstrip().startswith(ex) and len(got.message) > 20
    assert got.message.startswith(('your ', 'the ')), got.message      # one plain sentence about the student's code


@pytest.mark.parametrize('lesson', LESSONS)
def test_solutions_pasted_back_give_the_lesson(lesson):
    nb = _nb(lesson)
    student, _ = practise.student_notebook(nb, lesson)
    for ex, code in practise.solutions(nb).items(): student = practise.with_solution(student, ex, code)
    # the lesson's code cells, solutions kept with their markers; outputs are cleared in both
    assert [cell_text(c['source']) for c in student['cells']] == [cell_text(c['source']) for c in nb['cells']]
