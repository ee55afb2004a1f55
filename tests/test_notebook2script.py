"""notebook2script.py: which cells are exported, where, in what form, and what it refuses.

Every test builds tiny notebooks as plain JSON in a temporary folder laid out like the repository
(`nbs/`, `exp/`), so paths in messages read `nbs/...` and `exp/...`.
"""
import ast, json, os, random, subprocess, sys
from pathlib import Path

import pytest

import notebook2script as n2s
from nbio import natural_key
from notebook2script import is_export_marker, main, module_name

SCRIPT = Path(n2s.__file__).resolve()


def code(src, **meta): return {'cell_type': 'code', 'execution_count': None, 'metadata': meta, 'outputs': [], 'source': src}
def md(src): return {'cell_type': 'markdown', 'metadata': {}, 'source': src}
def notebook(*cells): return {'cells': list(cells), 'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5}


@pytest.fixture
def repo(tmp_path):
    (tmp_path / 'nbs').mkdir()
    (tmp_path / 'exp').mkdir()
    (tmp_path / 'exp' / '__init__.py').write_text('')
    return tmp_path


def write_nb(repo, name, *cells):
    path = repo / 'nbs' / name
    path.write_text(json.dumps(notebook(*cells), ensure_ascii=False), encoding='utf-8')
    return path


def run(repo, *args):
    "main() on the temporary repository; returns the exit status."
    return main(['--nbs', str(repo / 'nbs'), '--exp', str(repo / 'exp'), *map(str, args)])


def snapshot(folder):
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_ino) for p in sorted(folder.iterdir())}


def modules(repo): return sorted(p.name for p in (repo / 'exp').glob('nb_*.py'))


# ---------------------------------------------------------------- which cells, which module

@pytest.mark.parametrize('line', ['#export', '# export', '#EXPORT', '#Export', '  #  export  ', '#export\t', '# export\n'])
def test_marker_accepted(line): assert is_export_marker(line)


@pytest.mark.parametrize('line', ['#exports', '#export foo', '# export: x', 'export', '##export', '#ex port',
                                  '# exported', 'x = 1  #export', ''])
def test_marker_rejected(line): assert not is_export_marker(line)


def test_only_code_cells_with_marker_on_first_line_are_exported(repo):
    write_nb(repo, '01_a.ipynb',
             md('#export\nnot code'),
             code('# EXPORT\na = 1'),
             code('#exports\nb = 2'),
             code('#export foo\nc = 3'),
             code('\n#export\nd = 4'),
             code('x = 0\n#export\ne = 5'),
             {'cell_type': 'raw', 'metadata': {}, 'source': '#export\nf = 6'},
             code(['  #  export  \n', 'g = 7\n']))
    assert run(repo) == 0
    body = (repo / 'exp' / 'nb_01.py').read_text()
    assert 'a = 1' in body and 'g = 7' in body
    for absent in ['not code', 'b = 2', 'c = 3', 'd = 4', 'e = 5', 'f = 6', 'EXPORT', '  #  export']:
        assert absent not in body


@pytest.mark.parametrize('path,expected', [
    ('nbs/05b_early_stopping.ipynb', 'nb_05b'), ('08_data_block.ipynb', 'nb_08'),
    ('nbs/00.ipynb', 'nb_00'), ('12a_awd_lstm_x.ipynb', 'nb_12a'), (Path('a/b/10_aug.ipynb'), 'nb_10')])
def test_module_name(path, expected): assert module_name(path) == expected


def test_natural_order():
    expected = ['00_exports', '01_matmul', '02_fully_connected', '02a_why_sqrt5', '02b_initializing',
                '03_minibatch', '05_anneal', '05a_foundations', '05b_early_stopping', '09c_progress',
                '10_augmentation', '10b_mixup', '10c_fp16', '11_imagenette', '11a_transfer', '12_text']
    shuffled = expected[:]
    random.Random(0).shuffle(shuffled)
    assert sorted(shuffled, key=natural_key) == expected
    assert sorted([f'nbs/{n}.ipynb' for n in shuffled], key=natural_key) == [f'nbs/{n}.ipynb' for n in expected]
    assert sorted(['nb_10', 'nb_2', 'nb_10b', 'nb_09c', 'nb_02'], key=natural_key) == ['nb_02', 'nb_2', 'nb_09c', 'nb_10', 'nb_10b']
    assert sorted(['10', '9', '10b', '100'], key=natural_key) == ['9', '10', '10b', '100']


# ---------------------------------------------------------------- modes

def test_all_notebooks_in_natural_order(repo, capsys):
    for name in ['10_c', '02b_b', '02_a', '09c_x', '10b_d', '02a_z']:
        write_nb(repo, f'{name}.ipynb', code(f'#export\nname = {name!r}'))
    assert run(repo) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f'wrote exp/nb_{p}.py' for p in ['02', '02a', '02b', '09c', '10', '10b']]
    assert "name = '10b_d'" in (repo / 'exp' / 'nb_10b.py').read_text()


def test_explicit_notebooks_only(repo, capsys):
    a = write_nb(repo, '01_a.ipynb', code('#export\na = 1'))
    b = write_nb(repo, '02_b.ipynb', code('#export\nb = 2'))
    write_nb(repo, '03_c.ipynb', code('#export\nc = 3'))
    (repo / 'exp' / 'nb_99.py').write_text('# stale, but not our business in explicit mode\n')
    assert run(repo, a, b) == 0
    assert modules(repo) == ['nb_01.py', 'nb_02.py', 'nb_99.py']
    assert capsys.readouterr().out.splitlines() == ['wrote exp/nb_01.py', 'wrote exp/nb_02.py']


def test_no_arg_mode_removes_stale_modules_only(repo, capsys):
    write_nb(repo, '01_a.ipynb', code('#export\na = 1'))
    write_nb(repo, '02b_theory.ipynb', md('# no export'), code('x = 1'))
    exp = repo / 'exp'
    for name in ['nb_02c.py', 'nb_02b.py']: (exp / name).write_text('old = 1\n')
    (exp / 'helpers.py').write_text('keep = 1\n')
    (exp / 'nb_notes.txt').write_text('keep\n')
    init = snapshot(exp)['__init__.py']
    assert run(repo) == 0
    assert capsys.readouterr().out.splitlines() == ['wrote exp/nb_01.py', 'removed stale exp/nb_02b.py',
                                                    'removed stale exp/nb_02c.py']
    assert sorted(p.name for p in exp.iterdir()) == ['__init__.py', 'helpers.py', 'nb_01.py', 'nb_notes.txt']
    assert snapshot(exp)['__init__.py'] == init


def test_notebook_without_export_cell_writes_nothing(repo):
    nb = write_nb(repo, '02b_theory.ipynb', md('# Theory'), code('x = 1'))
    assert run(repo, nb) == 0
    assert modules(repo) == []


def test_wrong_nbs_folder_does_not_wipe_exp(repo, tmp_path):
    (repo / 'exp' / 'nb_01.py').write_text('a = 1\n')
    empty = tmp_path / 'empty'
    empty.mkdir()
    assert main(['--nbs', str(empty), '--exp', str(repo / 'exp')]) == 2
    assert main(['--nbs', str(tmp_path / 'nope'), '--exp', str(repo / 'exp')]) == 2
    assert modules(repo) == ['nb_01.py']


# ---------------------------------------------------------------- output format

def test_output_format_exact(repo):
    write_nb(repo, '08_data_block.ipynb',
             md('# 08: Data block'),
             code('#export\n\n\nimport math   \n\n\ndef double(α):  \n    "Twice α."\n    return 2*α\n\n'),
             code('x = double(2)'),
             code(['# export\n', 'β = 0.9\t\n', '\n']),
             code('#export\n\n'))
    assert run(repo) == 0
    data = (repo / 'exp' / 'nb_08.py').read_bytes()
    assert data.decode('utf-8') == (
        '# Generated from nbs/08_data_block.ipynb by notebook2script.py. DO NOT EDIT this file:\n'
        '# edit the notebook, then run `python notebook2script.py`.\n'
        '\n'
        "__all__ = ['double', 'β']\n"
        '\n'
        '\n'
        'import math\n'
        '\n'
        '\n'
        'def double(α):\n'
        '    "Twice α."\n'
        '    return 2*α\n'
        '\n'
        '\n'
        'β = 0.9\n')
    assert b'\r' not in data and data.endswith(b'\n') and not data.endswith(b'\n\n')
    assert 'α' in data.decode('utf-8')          # written as UTF-8, not escaped
    ns = {}
    exec(compile(data.decode('utf-8'), 'nb_08', 'exec'), ns)
    assert ns['double'](3) == 6 and ns['β'] == 0.9


def test_exercise_markers_are_left_out(repo):
    "An exercise's header and nbgrader's solution markers (practise.py) are not exported: the module holds the solution as plain code"
    write_nb(repo, '07_batchnorm.ipynb', code('#export\ndef double(x):\n    "Twice x"\n    # Exercise 07.1 (hint: add it to itself)\n'
                                              '    ### BEGIN SOLUTION\n    return x + x\n    ### END SOLUTION\n'))
    assert run(repo) == 0
    assert (repo / 'exp' / 'nb_07.py').read_text().endswith('\n\ndef double(x):\n    "Twice x"\n    return x + x\n')


def test_deterministic_across_folders_and_runs(tmp_path):
    outs = []
    for sub in ['one', 'two']:
        repo = tmp_path / sub
        (repo / 'nbs').mkdir(parents=True)
        write_nb(repo, '03_x.ipynb', code('#export\nimport torch\nα = 1'), code('#export\ny = α'))
        assert main(['--nbs', str(repo / 'nbs'), '--exp', str(repo / 'exp')]) == 0   # exp/ created
        outs.append((repo / 'exp' / 'nb_03.py').read_bytes())
    assert outs[0] == outs[1]
    assert b'nbs/03_x.ipynb' in outs[0] and str(tmp_path).encode() not in outs[0]


def test_crlf_and_list_sources_give_lf(repo):
    write_nb(repo, '04_w.ipynb', code(['#export\r\n', 'def f():\r\n', '    return 1   \r\n']),
             code('#export\r\nx = 2\r\n'))
    assert run(repo) == 0
    data = (repo / 'exp' / 'nb_04.py').read_bytes()
    assert b'\r' not in data
    assert data.endswith(b'def f():\n    return 1\n\n\nx = 2\n')


def test_notebook_read_as_utf8(repo, monkeypatch):
    "A non-UTF-8 locale must not change how notebooks are read."
    write_nb(repo, '12a_awd.ipynb', code('#export\ndef f(α=0.5, β=2.0): return α*β'))
    monkeypatch.setenv('PYTHONIOENCODING', 'utf-8')
    env = {**os.environ, 'LC_ALL': 'C', 'LANG': 'C', 'PYTHONUTF8': '0', 'PYTHONCOERCECLOCALE': '0'}
    res = subprocess.run([sys.executable, str(SCRIPT), '--nbs', 'nbs', '--exp', 'exp'],
                         cwd=repo, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert 'α*β' in (repo / 'exp' / 'nb_12a.py').read_text(encoding='utf-8')


# ---------------------------------------------------------------- writing

def test_unchanged_module_not_rewritten(repo, capsys):
    write_nb(repo, '01_a.ipynb', code('#export\na = 1'))
    assert run(repo) == 0
    before = snapshot(repo / 'exp')
    capsys.readouterr()
    assert run(repo, '-v') == 0
    assert capsys.readouterr().out.splitlines() == ['unchanged exp/nb_01.py']
    assert run(repo) == 0
    assert capsys.readouterr().out == ''
    assert snapshot(repo / 'exp') == before                # same bytes, mtime and inode


def test_changed_module_replaced_atomically(repo, capsys):
    nb = write_nb(repo, '01_a.ipynb', code('#export\na = 1'))
    assert run(repo) == 0
    os.chmod(repo / 'exp' / 'nb_01.py', 0o640)
    write_nb(repo, '01_a.ipynb', code('#export\na = 2'))
    assert run(repo, nb) == 0
    path = repo / 'exp' / 'nb_01.py'
    assert path.read_text().endswith('a = 2\n')
    assert path.stat().st_mode & 0o777 == 0o640            # permissions kept across the replace
    assert sorted(p.name for p in (repo / 'exp').iterdir()) == ['__init__.py', 'nb_01.py']   # no temp files


def test_failed_write_leaves_old_module_and_no_temp(repo, monkeypatch):
    write_nb(repo, '01_a.ipynb', code('#export\na = 1'))
    assert run(repo) == 0
    before = snapshot(repo / 'exp')
    write_nb(repo, '01_a.ipynb', code('#export\na = 2'))
    def boom(src, dst): raise OSError(28, 'No space left on device')
    monkeypatch.setattr(n2s.os, 'replace', boom)
    assert run(repo) == 2
    assert snapshot(repo / 'exp') == before


# ---------------------------------------------------------------- --check

def test_check(repo, capsys):
    nb1 = write_nb(repo, '01_a.ipynb', code('#export\na = 1'))
    write_nb(repo, '02_b.ipynb', code('#export\nb = 1'))
    assert run(repo) == 0
    capsys.readouterr()
    before = snapshot(repo / 'exp')

    assert run(repo, '--check') == 0
    assert capsys.readouterr().out == 'exp/ in sync with nbs/ (2 modules)\n'

    write_nb(repo, '01_a.ipynb', code('#export\na = 2'))                    # edited, not re-exported
    assert run(repo, '--check') == 1
    assert capsys.readouterr().out == 'exp/nb_01.py: differs from nbs/01_a.ipynb\n'
    assert run(repo, '--check', nb1) == 1
    capsys.readouterr()
    write_nb(repo, '01_a.ipynb', code('#export\na = 1'))                    # back in sync

    write_nb(repo, '03_c.ipynb', code('#export\nc = 1'))                    # never exported
    (repo / 'exp' / 'nb_02c.py').write_text('old = 1\n')                    # no notebook
    assert run(repo, '--check') == 1
    assert capsys.readouterr().out.splitlines() == ['exp/nb_03.py: missing (exported from nbs/03_c.ipynb)',
                                                    'exp/nb_02c.py: stale (no notebook produces it)']
    assert run(repo, '--check', nb1) == 0                                   # explicit: no stale detection
    assert snapshot(repo / 'exp') == {**before, 'nb_02c.py': snapshot(repo / 'exp')['nb_02c.py']}


def test_check_cli_subprocess(repo):
    write_nb(repo, '01_a.ipynb', code('#export\na = 1'))
    args = [sys.executable, str(SCRIPT), '--nbs', 'nbs', '--exp', 'exp']
    res = subprocess.run(args + ['--check'], cwd=repo, capture_output=True, text=True)
    assert (res.returncode, res.stdout) == (1, 'exp/nb_01.py: missing (exported from nbs/01_a.ipynb)\n')
    res = subprocess.run(args, cwd=repo, capture_output=True, text=True)
    assert (res.returncode, res.stdout) == (0, 'wrote exp/nb_01.py\n')
    res = subprocess.run(args + ['--check'], cwd=repo, capture_output=True, text=True)
    assert (res.returncode, res.stdout) == (0, 'exp/ in sync with nbs/ (1 module)\n')


def test_help_describes_every_option():
    res = subprocess.run([sys.executable, str(SCRIPT), '--help'], capture_output=True, text=True)
    assert res.returncode == 0
    for opt in ['--nbs', '--exp', '--check', '--verbose', 'NOTEBOOK']: assert opt in res.stdout


# ---------------------------------------------------------------- errors: exit 2, exp/ untouched

def raw(repo, name, text):
    path = repo / 'nbs' / name
    path.write_text(text)
    return path


BAD = {
    'magic': (lambda r: write_nb(r, '02_m.ipynb', md('x'), code('#export\nimport math\n%timeit math.sqrt(2)')),
              ['nbs/02_m.ipynb', 'cell 1', 'line 3', 'magic']),
    'cell magic': (lambda r: write_nb(r, '02_m.ipynb', code('#export\n%%time\nx = 1')),
                   ['nbs/02_m.ipynb', 'cell 0', 'line 2', 'magic']),
    'shell': (lambda r: write_nb(r, '02_s.ipynb', code('#export\n!pip install torch')),
              ['nbs/02_s.ipynb', 'cell 0', 'line 2', 'shell']),
    'shell assign': (lambda r: write_nb(r, '02_s.ipynb', code('y = 1'), code('y = 2'), code('#export\nfiles = !ls')),
                     ['nbs/02_s.ipynb', 'cell 2', 'line 2', 'shell']),
    'get_ipython': (lambda r: write_nb(r, '02_g.ipynb', code('#export\nget_ipython().system("ls")')),
                    ['nbs/02_g.ipynb', 'cell 0', 'get_ipython']),
    'syntax': (lambda r: write_nb(r, '02_x.ipynb', md('a'), md('b'), code('#export\ndef f(:\n    pass')),
               ['nbs/02_x.ipynb', 'cell 2', 'line 2', 'syntax error']),
    'invalid json': (lambda r: raw(r, '02_j.ipynb', '{"cells": ['),
                     ['nbs/02_j.ipynb', 'invalid JSON']),
    'no cells': (lambda r: raw(r, '02_n.ipynb', '{"nbformat": 4, "metadata": {}}'),
                 ['nbs/02_n.ipynb', 'not a notebook']),
    'nbformat 3': (lambda r: raw(r, '02_n.ipynb', '{"nbformat": 3, "cells": []}'),
                   ['nbs/02_n.ipynb', 'nbformat 4']),
    'duplicate prefix': (lambda r: write_nb(r, '01_other.ipynb', code('#export\nz = 1')),
                         ['nbs/01_a.ipynb', 'nbs/01_other.ipynb', "prefix '01'"]),
    'invalid module name': (lambda r: write_nb(r, 'transforms-dali.ipynb', code('#export\nz = 1')),
                            ['nbs/transforms-dali.ipynb', 'nb_transforms-dali', 'identifier']),
}


@pytest.fixture
def synced_then_edited(repo):
    "exp/ holds an exported 01; its notebook is then edited, so a writer that did not validate first would write."
    write_nb(repo, '01_a.ipynb', code('#export\na = 1'))
    assert run(repo) == 0
    write_nb(repo, '01_a.ipynb', code('#export\na = 2'))
    (repo / 'exp' / 'nb_05.py').write_text('stale = 1\n')
    return repo


@pytest.mark.parametrize('case', list(BAD))
def test_errors_exit_2_exp_untouched(case, synced_then_edited, capsys):
    repo = synced_then_edited
    make, words = BAD[case]
    bad = make(repo)
    capsys.readouterr()
    before = snapshot(repo / 'exp')
    for args in [(), ('--check',), (repo / 'nbs' / '01_a.ipynb', bad), ('--check', bad)]:
        assert run(repo, *args) == 2, args
        out, err = capsys.readouterr()
        assert out == ''
        line = next(l for l in err.splitlines() if all(w in l for w in words))
        assert line.startswith('notebook2script: error: ')
        assert snapshot(repo / 'exp') == before


def test_missing_notebook_exits_2(synced_then_edited, capsys):
    repo = synced_then_edited
    before = snapshot(repo / 'exp')
    assert run(repo, repo / 'nbs' / '01_a.ipynb', repo / 'nbs' / '07_nope.ipynb') == 2
    assert capsys.readouterr().err == 'notebook2script: error: nbs/07_nope.ipynb: no such file\n'
    assert snapshot(repo / 'exp') == before


def test_every_error_reported_at_once(synced_then_edited, capsys):
    repo = synced_then_edited
    write_nb(repo, '02_m.ipynb', code('#export\n%matplotlib inline'))
    write_nb(repo, '03_s.ipynb', code('#export\n!ls'), code('#export\nx = ('))
    assert run(repo) == 2
    err = capsys.readouterr().err.splitlines()
    assert [l.split(': error: ')[1].split(':')[0] for l in err] == ['nbs/02_m.ipynb', 'nbs/03_s.ipynb', 'nbs/03_s.ipynb']
    assert 'cell 1' in err[2]


def test_plain_python_that_looks_like_ipython_is_fine(repo):
    write_nb(repo, '01_a.ipynb', code('#export\nr = (7\n     % 3)\nok = (1\n      != 2)\n'
                                      'doc = """\n%matplotlib inline\n!ls\n"""\n'
                                      "s = 'get_ipython()'  # get_ipython() in a comment\n"))
    assert run(repo) == 0
    ns = {}
    exec((repo / 'exp' / 'nb_01.py').read_text(), ns)
    assert ns['r'] == 1 and ns['ok'] is True


def test_error_through_cli_subprocess(synced_then_edited):
    repo = synced_then_edited
    write_nb(repo, '02_m.ipynb', md('m'), code('#export\nx = 1\n%load_ext autoreload'))
    before = snapshot(repo / 'exp')
    res = subprocess.run([sys.executable, str(SCRIPT), '--nbs', 'nbs', '--exp', 'exp'],
                         cwd=repo, capture_output=True, text=True)
    assert res.returncode == 2 and res.stdout == ''
    assert res.stderr.startswith('notebook2script: error: nbs/02_m.ipynb: cell 1 (line 3): IPython magic')
    assert snapshot(repo / 'exp') == before


def test_explicit_notebook_sharing_prefix_with_sibling(repo, capsys):
    nb = write_nb(repo, '03_a.ipynb', code('#export\na = 1'))
    write_nb(repo, '03_b.ipynb', code('#export\nb = 1'))
    assert run(repo, nb) == 2
    assert "share the prefix '03'" in capsys.readouterr().err
    assert modules(repo) == []


# ---------------------------------------------------------------- __all__ and retired names

def all_of(repo, mod):
    return n2s.module_all_from_file(repo / 'exp' / f'{mod}.py')


def test_all_is_previous_all_plus_defined_names(repo):
    write_nb(repo, '01_a.ipynb', code('#export\nimport math, os\nfrom pathlib import Path\nimport numpy as _np\n'
                                      'def f(): pass\nclass K: pass\nx, (y, *zs) = 1, (2, 3)\n_hidden = 1\n'
                                      'n: int = 3\nfor i in range(2): pass\nif True:\n    g = 1\n'
                                      'try:\n    h = 2\nexcept Exception:\n    h = None\n'))
    write_nb(repo, '02_b.ipynb', code('#export\nfrom exp.nb_01 import *\nimport torch\n'),
             code('x = "not exported"'), code('#export\ndef f(): return 2\nnew = f\n'))
    assert run(repo) == 0
    assert all_of(repo, 'nb_01') == ['f', 'K', 'x', 'y', 'zs', 'n', 'g', 'h']    # no imports, no _private, no loop var
    assert all_of(repo, 'nb_02') == ['f', 'K', 'x', 'y', 'zs', 'n', 'g', 'h', 'new']
    src = (repo / 'exp' / 'nb_02.py').read_text()
    assert src.index('__all__') < src.index('from exp.nb_01 import *')
    assert "from exp.nb_01 import __all__ as _base_all\n__all__ = _base_all + ['new']\n" in src   # only what it adds
    assert imported_all(repo, 'nb_02') == all_of(repo, 'nb_02')


def imported_all(repo, mod):
    "`__all__` of `exp.<mod>` as Python sees it on import, in a fresh interpreter"
    out = subprocess.run([sys.executable, '-c', f'import exp.{mod} as m; print(repr(m.__all__))'], cwd=repo,
                         env={**os.environ, 'PYTHONPATH': str(repo)}, capture_output=True, text=True, check=True)
    return ast.literal_eval(out.stdout)


def test_all_follows_a_chain_of_modules(repo):
    write_nb(repo, '01_a.ipynb', code('#export\na = 1\nb = 2\nc = 3'))
    write_nb(repo, '02_b.ipynb', code('#export\nfrom exp.nb_01 import *\n# retire: b\nd = 4'))
    write_nb(repo, '03_c.ipynb', code('#export\nfrom exp.nb_02 import *\n# retire: a, d'))   # adds nothing
    write_nb(repo, '04_d.ipynb', code('#export\nfrom exp.nb_03 import *'))                 # changes nothing
    assert run(repo) == 0
    for mod, names in [('nb_01', ['a', 'b', 'c']), ('nb_02', ['a', 'c', 'd']), ('nb_03', ['c']), ('nb_04', ['c'])]:
        assert all_of(repo, mod) == names == imported_all(repo, mod), mod
    assert "__all__ = ['a', 'b', 'c']" in (repo / 'exp' / 'nb_01.py').read_text()          # no base: a literal
    assert "__all__ = [n for n in _base_all if n not in {'a', 'd'}]\n" in (repo / 'exp' / 'nb_03.py').read_text()
    assert '__all__ = list(_base_all)\n' in (repo / 'exp' / 'nb_04.py').read_text()


def test_static_all_reader_refuses_what_it_cannot_follow(repo):
    (repo / 'exp' / 'nb_01.py').write_text("from exp.nb_02 import __all__ as _base_all\n__all__ = _base_all + ['x']\n")
    (repo / 'exp' / 'nb_02.py').write_text("from exp.nb_01 import __all__ as _base_all\n__all__ = _base_all + ['y']\n")
    assert all_of(repo, 'nb_01') is None                                                   # a cycle
    (repo / 'exp' / 'nb_03.py').write_text("from exp.nb_09 import __all__ as _base_all\n__all__ = _base_all + ['z']\n")
    assert all_of(repo, 'nb_03') is None                                                   # the base file is missing
    (repo / 'exp' / 'nb_04.py').write_text("__all__ = sorted(['b', 'a'])\n")
    assert all_of(repo, 'nb_04') is None                                                   # not a form we write
    (repo / 'exp' / 'nb_05.py').write_text("__all__ = ['a'] + ['b']\n")
    assert all_of(repo, 'nb_05') == ['a', 'b']


def test_methods_added_to_a_class_are_not_module_names(repo):
    write_nb(repo, '01_a.ipynb', code('#export\ndef add_to_class(cls):\n    def _add(f): setattr(cls, f.__name__, f); return f\n'
                                      '    return _add\nclass K: pass\n@add_to_class(K)\ndef forward(self): return 1\n'
                                      'import types\nns = types.SimpleNamespace(add_to_class=add_to_class)\n'
                                      '@ns.add_to_class(K)\ndef reset(self): pass\n@staticmethod\ndef helper(): pass'))
    assert run(repo) == 0
    assert all_of(repo, 'nb_01') == ['add_to_class', 'K', 'ns', 'helper']


def test_retired_names_leave_all(repo):
    write_nb(repo, '01_a.ipynb', code('#export\ndef Runner(): pass\ndef get_runner(): pass\nkeep = 1'))
    write_nb(repo, '02_b.ipynb', code('#export\nfrom exp.nb_01 import *\n'
                                      '# retire: Runner, get_runner - replaced by Learner\nclass Learner: pass'))
    write_nb(repo, '03_c.ipynb', code('#export\nfrom exp.nb_02 import *\n#retire: keep\nz = 1'))
    assert run(repo) == 0
    assert all_of(repo, 'nb_02') == ['keep', 'Learner']
    assert all_of(repo, 'nb_03') == ['Learner', 'z']


def test_all_of_a_single_notebook_uses_the_previous_module_file(repo):
    write_nb(repo, '01_a.ipynb', code('#export\na = 1\nb = 2'))
    write_nb(repo, '02_b.ipynb', code('#export\nfrom exp.nb_01 import *\n# retire: b\nc = 3'))
    assert run(repo) == 0
    assert run(repo, repo / 'nbs' / '02_b.ipynb') == 0
    assert all_of(repo, 'nb_02') == ['a', 'c']
    (repo / 'exp' / 'nb_01.py').write_text('a = 1\n')          # an old module without __all__
    assert run(repo, repo / 'nbs' / '02_b.ipynb') == 2


@pytest.mark.parametrize('cells,words', [
    (['#export\nfrom exp.nb_01 import *\n# retire: nope'], ['nbs/02_b.ipynb', 'cell 0', "'nope'", 'nb_01']),
    (['#export\nfrom exp.nb_01 import *', '#export\n# retire: a\ndef a(): pass'],
     ['nbs/02_b.ipynb', 'cell 1', "retires 'a'", 'cell 1', 'defines it']),
    (['#export\nfrom exp.nb_01 import *\n# retire a'], ['nbs/02_b.ipynb', 'cell 0', 'malformed retire marker']),
    (['#export\nfrom exp.nb_01 import *\n# retire: a; b'], ['nbs/02_b.ipynb', 'malformed retire marker']),
    (['#export\n# retire: a'], ['nbs/02_b.ipynb', "retires 'a'", 'star-imports no earlier module']),
])
def test_bad_retire_exits_2(repo, capsys, cells, words):
    write_nb(repo, '01_a.ipynb', code('#export\na = 1'))
    write_nb(repo, '02_b.ipynb', *[code(c) for c in cells])
    assert run(repo) == 2
    err = capsys.readouterr().err
    assert any(all(w in l for w in words) for l in err.splitlines()), err
    assert modules(repo) == []


def test_retire_inside_a_string_is_not_a_marker(repo):
    write_nb(repo, '01_a.ipynb', code('#export\na = 1'))
    write_nb(repo, '02_b.ipynb', code('#export\nfrom exp.nb_01 import *\ndoc = """\n# retire: a\n"""\nx = 1  # retire: a'))
    assert run(repo) == 0
    assert all_of(repo, 'nb_02') == ['a', 'doc', 'x']


def test_names_imported_from_coursekit_are_exported(repo):
    "`from coursekit.<module> import a, b as c` in an export cell exports `a` and `c`; other imports export nothing."
    (repo / 'coursekit').mkdir()
    (repo / 'coursekit' / '__init__.py').write_text('')
    (repo / 'coursekit' / 'things.py').write_text('a = b = e = _private = 1\n')
    write_nb(repo, '01_a.ipynb',
             code('#export\nimport coursekit.things\nfrom coursekit import things\nfrom os.path import join\n'
                  'x = 1\nfrom coursekit.things import (a,\n    b as c, _private)\ny = 2'),
             code('#export\ntry:\n    from coursekit.things import e   # where an assignment would count\n'
                  'except ImportError:\n    e = None\nfor _ in range(1):\n    from coursekit.things import b   # a loop: no'))
    write_nb(repo, '02_b.ipynb', code('#export\nfrom exp.nb_01 import *\n# retire: c - a test\n'
                                      'from coursekit.things import e, b'))
    assert run(repo) == 0
    assert all_of(repo, 'nb_01') == ['x', 'a', 'c', 'y', 'e'] == imported_all(repo, 'nb_01')   # in the order of the cells
    assert all_of(repo, 'nb_02') == ['x', 'a', 'y', 'e', 'b'] == imported_all(repo, 'nb_02')
    assert "__all__ = [n for n in _base_all if n not in {'c'}] + ['b']\n" in (repo / 'exp' / 'nb_02.py').read_text()


def test_star_import_from_coursekit_exits_2(repo, capsys):
    write_nb(repo, '01_a.ipynb', code('#export\nx = 1'), code('#export\nfrom coursekit.things import *'))
    assert run(repo) == 2
    err = capsys.readouterr().err
    assert 'nbs/01_a.ipynb: cell 1 (line 2)' in err and 'from coursekit.things import *' in err and 'name the imports' in err
    assert modules(repo) == []


# `@add_to_class(K) def fit(self)` returns the function, so the module name `fit` becomes the method: refused
# when an exported name (of the base module, not retired here, or of this notebook) would be rebound that way.
_ADD = '#export\ndef add_to_class(cls):\n    def _add(f): setattr(cls, f.__name__, f); return f\n    return _add\n'


@pytest.mark.parametrize('cells,words', [
    (['#export\nfrom exp.nb_01 import *\n@add_to_class(K)\ndef fit(self): pass'],
     ['nbs/02_b.ipynb', 'cell 0', 'line 4', "@add_to_class method 'fit'", 'nb_01', '# retire: fit']),
    (['#export\nfrom exp.nb_01 import *', 'x = 1', '#export\nif True:\n    @x.add_to_class(K)\n    def fit(self): pass'],
     ['nbs/02_b.ipynb', 'cell 2', 'line 4', "'fit'", 'nb_01']),
    (['#export\nfrom exp.nb_01 import *\ndef go(): pass', '#export\n@add_to_class(K)\ndef go(self): pass'],
     ['nbs/02_b.ipynb', 'cell 1', 'line 3', "'go'", 'cell 0 of the same notebook']),
    (['#export\nfrom exp.nb_01 import *\n@add_to_class(K)\ndef go(self): pass\ndef go(): pass'],
     ['nbs/02_b.ipynb', 'cell 0', 'line 4', "'go'", 'cell 0 of the same notebook']),
])
def test_add_to_class_rebinding_an_exported_name_exits_2(repo, capsys, cells, words):
    write_nb(repo, '01_a.ipynb', code(_ADD + 'class K: pass\ndef fit(epochs): pass'))
    write_nb(repo, '02_b.ipynb', *[code(c) for c in cells])
    assert run(repo) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith('notebook2script: error: ') and all(w in err[0] for w in words), err
    assert modules(repo) == []
    res = subprocess.run([sys.executable, str(SCRIPT), '--nbs', 'nbs', '--exp', 'exp'], cwd=repo, capture_output=True, text=True)
    assert res.returncode == 2 and res.stdout == '' and res.stderr.count('\n') == 1 and modules(repo) == []


def test_add_to_class_may_rebind_a_retired_or_unexported_name(repo):
    write_nb(repo, '01_a.ipynb', code(_ADD + 'class K: pass\ndef fit(epochs): pass\n_hidden = 1'))
    write_nb(repo, '02_b.ipynb', code('#export\nfrom exp.nb_01 import *\n# retire: fit - now a method of K\n'
                                      '@add_to_class(K)\ndef fit(self): pass\n@add_to_class(K)\ndef _hidden(self): pass\n'
                                      '@add_to_class(K)\ndef reset(self): pass'))
    write_nb(repo, '03_c.ipynb', code('#export\nfrom exp.nb_02 import *\n@add_to_class(K)\ndef fit(self, n): pass'))
    assert run(repo) == 0
    assert all_of(repo, 'nb_02') == ['add_to_class', 'K'] and all_of(repo, 'nb_03') == ['add_to_class', 'K']
