"""The course's notebook extension (coursekit.notebook): settings, cell flags and the %%quick cell.

The pure functions are tested here directly; the extension itself in a real IPython shell, started in a
subprocess (so this test process never becomes an IPython session), and through Jupyter's own path in
tests/test_jupyter_path.py.
"""
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from coursekit.notebook import (SettingError, assigned_names, cell_flags, is_quick_cell, param_overrides,
                                quick_mode, skip_reason)

ROOT = Path(__file__).resolve().parents[1]


def test_quick_mode_reads_exp_quick():
    for on in ('1', 'true', 'YES', ' on '):
        assert quick_mode({'EXP_QUICK': on}) is True
    for off in ('', '0', 'false', 'No', 'off'):
        assert quick_mode({'EXP_QUICK': off}) is False
    assert quick_mode({}) is False
    with pytest.raises(SettingError, match=r"^EXP_QUICK='maybe': expected 1 \(quick values\) or 0"):
        quick_mode({'EXP_QUICK': 'maybe'})


def test_param_overrides_reads_a_dict_literal():
    assert param_overrides({}) == {} and param_overrides({'EXP_PARAMS': '  '}) == {}
    assert param_overrides({'EXP_PARAMS': "{'epochs': 2, 'lr': 1e-3, 'arch': 'x', 'sizes': (1, 2)}"}) == {
        'epochs': 2, 'lr': 0.001, 'arch': 'x', 'sizes': (1, 2)}
    for bad in ('epochs=2', '[1, 2]', "{'a': f(1)}", '{'):
        with pytest.raises(SettingError, match=r"^EXP_PARAMS=.*expected a Python dict literal"):
            param_overrides({'EXP_PARAMS': bad})
    with pytest.raises(SettingError, match=r"EXP_PARAMS: 'two words' is not a parameter name"):
        param_overrides({'EXP_PARAMS': "{'two words': 1}"})


def test_cell_flags_and_skip_reason():
    assert cell_flags("#slow\nx = 1") == {"slow"}
    assert cell_flags("# Slow\nx = 1") == {"slow"}
    assert cell_flags("#SLOW #cuda\nx = 1") == {"slow", "cuda"}
    assert cell_flags("\n# slow  # CUDA \nx = 1") == {"slow", "cuda"}
    assert cell_flags("x = 1  # slow") == set()
    assert cell_flags("# this is slow because it trains\nx = 1") == set()
    assert cell_flags("x = 1\n#slow") == set()

    def no_cuda_check():
        raise AssertionError('CUDA is looked up only for a #cuda cell')
    assert skip_reason("#slow\nx", quick=True, cuda=no_cuda_check) == 'slow'
    assert skip_reason("#slow\nx", quick=False, cuda=no_cuda_check) is None
    assert skip_reason("x = 1", quick=True, cuda=no_cuda_check) is None
    assert skip_reason("#cuda\nx", quick=False, cuda=lambda: False) == 'cuda'
    assert skip_reason("#cuda\nx", quick=True, cuda=True) is None
    assert skip_reason("#slow #cuda\nx", quick=True, cuda=False) == 'slow'


def test_assigned_names_and_quick_cell():
    assert assigned_names("a = 1  # note\n\nb = [1, 2]\n", 'here') == ['a', 'b']
    with pytest.raises(SettingError, match=r"^here: line 2 is not a simple `name = value` assignment: 'print\(a\)'"):
        assigned_names("a = 1\nprint(a)", 'here')
    with pytest.raises(SettingError, match=r"^here: not valid Python"):
        assigned_names("a = ", 'here')
    assert is_quick_cell("%%quick\nepochs = 1") and is_quick_cell("\n%%quick  \n")
    assert not is_quick_cell("%%quickly\nx") and not is_quick_cell("x = 1\n%%quick")


SHELL = textwrap.dedent('''
    import contextlib, io, json, sys
    from IPython.core.interactiveshell import InteractiveShell
    ip = InteractiveShell.instance()
    results = []
    for cell in json.loads(sys.argv[1]):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            r = ip.run_cell(cell)
        e = r.error_before_exec or r.error_in_exec
        results.append(dict(out=out.getvalue(), err=f'{type(e).__name__}: {e}' if e else None))
    names = ('epochs', 'lr', 'name')
    print(json.dumps(dict(results=results, ns={n: ip.user_ns.get(n) for n in names})))
''')


def in_shell(cells, **env):
    "Run cells in a fresh IPython shell (a subprocess) with EXP_* settings; per cell: stdout and error."
    import os
    environ = {k: v for k, v in os.environ.items() if k not in ('EXP_QUICK', 'EXP_PARAMS')}
    environ.update(env)
    proc = subprocess.run([sys.executable, '-c', SHELL, json.dumps(cells)], capture_output=True, text=True,
                          env=environ, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


PARAMS = "epochs = 8\nlr = 0.1\nname = 'full'"


def test_extension_quick_mode_and_flags_in_a_shell():
    cells = ["%load_ext coursekit", PARAMS, "%%quick\nepochs = 1\nname = 'full'",
             "#slow\nprint('ran slow')", "print('plain')", "%unload_ext coursekit", "#slow\nprint('ran slow')"]
    got = in_shell(cells, EXP_QUICK='1', EXP_PARAMS="{'lr': 0.5}")
    r = got['results']
    assert all(x['err'] is None for x in r), r
    assert r[0]['out'].startswith('quick mode is on (EXP_QUICK=1)')
    # only the values that changed are listed, the EXP_PARAMS ones marked
    assert r[2]['out'].splitlines() == ['quick mode is on (EXP_QUICK=1): the quick values replace the full ones',
                                        '  epochs  8 -> 1', '  lr      0.1 -> 0.5  (EXP_PARAMS)']
    assert r[3]['out'] == 'skipped: a #slow cell, and quick mode is on (EXP_QUICK=1)\n'
    assert r[4]['out'] == 'plain\n' and r[6]['out'] == 'ran slow\n'     # unloaded: flags mean nothing
    assert got['ns'] == {'epochs': 1, 'lr': 0.5, 'name': 'full'}

    full = in_shell(cells[:5])                                          # EXP_QUICK unset: full values
    r = full['results']
    assert r[0]['out'] == '' and r[3]['out'] == 'ran slow\n'
    assert r[2]['out'].startswith('quick mode is off: the full values above are used')
    assert '->' not in r[2]['out'] and full['ns'] == {'epochs': 8, 'lr': 0.1, 'name': 'full'}
    # an override applies in a full run too
    over = in_shell(cells[:3], EXP_PARAMS="{'epochs': 3}")
    assert over['ns']['epochs'] == 3 and '  epochs  8 -> 3  (EXP_PARAMS)' in over['results'][2]['out']


def test_extension_errors_are_one_line_usage_errors():
    got = in_shell(["%load_ext coursekit"], EXP_QUICK='maybe')['results']
    assert got[0]['err'] == "UsageError: EXP_QUICK='maybe': expected 1 (quick values) or 0 (full values)"
    got = in_shell(["%load_ext coursekit"], EXP_PARAMS='epochs=2')['results']
    assert got[0]['err'].startswith("UsageError: EXP_PARAMS='epochs=2': expected a Python dict literal")
    got = in_shell(["%load_ext coursekit", "%%quick\nepochs = 1"], EXP_QUICK='1')['results']
    assert got[1]['err'] == ("UsageError: the %%quick cell sets 'epochs', which is not defined: run the "
                             "parameters cell above first (every quick value must be one of its parameters)")
    got = in_shell(["%load_ext coursekit", PARAMS, "%%quick\nepochs = 1"], EXP_PARAMS="{'bs': 4}")['results']
    assert got[2]['err'].startswith("UsageError: EXP_PARAMS sets 'bs', which is not defined")
    got = in_shell(["%load_ext coursekit", PARAMS, "%%quick\nepochs = 1\nprint(epochs)"])['results']
    assert got[2]['err'].startswith("UsageError: the %%quick cell: line 3 is not a simple `name = value` assignment")
    # a setting changed after loading (`%env EXP_QUICK=x`) is caught when a flagged cell runs
    got = in_shell(["%load_ext coursekit", "%env EXP_QUICK=x", "#slow\nprint('ran')"])['results']
    assert got[2]['err'].startswith("UsageError: EXP_QUICK='x'") and got[2]['out'] == ''
