"""The generated package must match the notebooks, import on its own, and notebooks must be clean."""
import ast, builtins, importlib, json, os, subprocess, symtable, sys, types
from pathlib import Path

import pytest

from nbio import natural_key

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted((p.stem for p in (ROOT / 'exp').glob('nb_*.py')), key=natural_key)


def test_exp_in_sync_with_notebooks():
    "Editing an export cell without re-running the exporter fails here."
    res = subprocess.run([sys.executable, str(ROOT / 'notebook2script.py'), '--check'],
                         capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, f'exp/ drifted from nbs/:\n{res.stdout}{res.stderr}'


def test_notebooks_are_clean():
    res = subprocess.run([sys.executable, str(ROOT / 'tools' / 'clean_nbs.py'), '--check'],
                         capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, f'run `python tools/clean_nbs.py`:\n{res.stdout}{res.stderr}'


IMPORT_EACH = """
import importlib, json, sys, traceback
from pathlib import Path
res = {}
for m in sys.argv[1:]:
    for k in [k for k in sys.modules if k == 'exp' or k.startswith(('exp.', 'coursekit'))]: del sys.modules[k]
    try: importlib.import_module('exp.' + m); res[m] = None
    except BaseException: res[m] = traceback.format_exc()
    if Path('data').exists(): res[m] = (res[m] or '') + 'importing it touched the data folder'
print(json.dumps(res))
"""

@pytest.fixture(scope='module')
def fresh_imports(tmp_path_factory):
    """{module: None or what went wrong}: each module imported with every `exp` and `coursekit` module
    forgotten first (so its whole chain runs again), from an unrelated folder. One interpreter for all
    25: torch is imported once (a fresh interpreter per module cost 4-5 s each)."""
    cwd = tmp_path_factory.mktemp('imports')
    env = {**os.environ, 'PYTHONPATH': str(ROOT), 'EXP_DATA': str(cwd / 'data')}
    res = subprocess.run([sys.executable, '-c', IMPORT_EACH, *MODULES], capture_output=True, text=True,
                         cwd=cwd, env=env, timeout=600)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])

@pytest.mark.parametrize('module', MODULES)
def test_module_imports_on_its_own(module, fresh_imports):
    "Each module imports alone, from an unrelated folder, without notebook globals, and touches no data."
    assert fresh_imports[module] is None, f'import exp.{module} failed:\n{fresh_imports[module]}'

def test_last_module_imports_in_a_fresh_interpreter(tmp_path):
    "The end of each wing in a brand-new interpreter too (nothing imported before it)"
    env = {**os.environ, 'PYTHONPATH': str(ROOT), 'EXP_DATA': str(tmp_path / 'data')}
    res = subprocess.run([sys.executable, '-c', 'import exp.nb_11a, exp.nb_14'], capture_output=True, text=True,
                         cwd=tmp_path, env=env, timeout=300)
    assert res.returncode == 0 and not (tmp_path / 'data').exists(), res.stderr


# ---------------------------------------------------------------- __all__ and imports

def _star_base(tree):
    "The `exp.nb_X` module a generated module star-imports, or None."
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and [a.name for a in node.names] == ['*']: return node.module
    return None


def unbound_globals(src, filename, provided):
    """Globals that code in `src` reads (at module level or in any function, class, lambda or
    comprehension) but that the module neither binds (def, class, assignment, import, `global` in a
    function) nor gets from `provided` (the star-imported names) or builtins: {name: scope reading it}."""
    top = symtable.symtable(src, filename, 'exec')
    bound = {s.get_name() for s in top.get_symbols() if s.is_assigned() or s.is_imported() or s.is_namespace()}
    reads = {}
    def walk(table):
        for s in table.get_symbols():
            if table is top or s.is_global():
                if table is not top and s.is_declared_global() and s.is_assigned(): bound.add(s.get_name())
                if s.is_referenced(): reads.setdefault(s.get_name(), table.get_name())
        for child in table.get_children(): walk(child)
    walk(top)
    known = bound | set(provided) | set(dir(builtins)) | {'__file__', '__name__', '__doc__', '__spec__'}
    return {n: where for n, where in reads.items() if n not in known}


def test_unbound_globals_finds_a_missing_import():
    "The checker below must see a module that uses `math` without importing it, in any scope."
    src = 'import torch\ndef f(x): return math.sqrt(x) + torch.ones(1)\nclass C:\n    y = [np.pi for _ in range(2)]\n'
    assert set(unbound_globals(src, 'm.py', provided=[])) == {'math', 'np'}
    assert unbound_globals(src, 'm.py', provided=['math', 'np']) == {}
    assert unbound_globals('def g():\n    global z\n    z = 1\nprint(z)\n', 'm.py', provided=[]) == {}


@pytest.mark.parametrize('module', MODULES)
def test_module_imports_what_it_uses(module):
    """A module reads only globals it defines, imports, or gets from the previous module's `__all__`:
    names imported by earlier modules are not re-exported, so each module imports torch, nn, F, ... itself."""
    src = (ROOT / 'exp' / f'{module}.py').read_text(encoding='utf-8')
    base = _star_base(ast.parse(src))
    provided = importlib.import_module(base).__all__ if base else []
    missing = unbound_globals(src, f'exp/{module}.py', provided)
    assert not missing, f'exp/{module}.py reads globals it neither defines nor imports: {missing}'


def test_all_of_every_module_lists_live_objects_only():
    "Every name in `__all__` exists; no module objects; nothing private; each module's `__all__` is unique."
    for module in MODULES:
        m = importlib.import_module(f'exp.{module}')
        assert isinstance(m.__all__, list) and len(set(m.__all__)) == len(m.__all__), module
        absent = [n for n in m.__all__ if not hasattr(m, n)]
        assert not absent, f'exp.{module}.__all__ names what it does not define: {absent}'
        assert not [n for n in m.__all__ if n.startswith('_')], module


def test_all_holds_no_method_attached_with_add_to_class():
    """`@add_to_class(Cls) def fit(self, ...)` returns the method, which then sits under the module name `fit`:
    an exported name must not be such a method (lesson 04 retires lesson 03's `fit` for that reason)."""
    for module in MODULES:
        m = importlib.import_module(f'exp.{module}')
        methods = [n for n in m.__all__ if isinstance(getattr(m, n), types.FunctionType)
                   and '.' in getattr(m, n).__qualname__ and '<locals>' not in getattr(m, n).__qualname__]
        assert not methods, f'exp.{module}.__all__ exports methods of classes: ' + \
            ', '.join(f'{n} ({getattr(m, n).__qualname__})' for n in methods)


def test_nb_10c_all_holds_no_modules():
    m = importlib.import_module('exp.nb_10c')
    mods = [n for n in m.__all__ if isinstance(getattr(m, n), types.ModuleType)]
    assert not mods, f'exp.nb_10c.__all__ exports modules: {mods}'
    for name in ['torch', 'nn', 'F', 'math', 'partial', 'Path', 'plt', 'np']: assert name not in m.__all__
    ns = {}
    exec('from exp.nb_10c import *', ns)
    assert 'torch' not in ns and set(ns) - {'__builtins__'} == set(m.__all__)


def test_00_exports_finds_its_notebook_from_any_folder(tmp_path):
    "00's cell that opens 00_exports.ipynb works whatever the working directory (issue 17 item 6)."
    import json
    cells = json.loads((ROOT / 'nbs' / '00_exports.ipynb').read_text(encoding='utf-8'))['cells']
    src = lambda c: ''.join(c['source'])
    imports = next(src(c) for c in cells if c['cell_type'] == 'code' and 'import' in src(c))
    opener = next(src(c) for c in cells if c['cell_type'] == 'code' and "'00_exports.ipynb'" in src(c))
    code = imports + '\n' + opener + '\nprint(nb_path.resolve(), len(nb["cells"]))\n'
    env = {**os.environ, 'PYTHONPATH': str(ROOT)}
    for cwd in [tmp_path, ROOT, ROOT / 'nbs']:
        res = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=cwd, env=env, timeout=120)
        assert res.returncode == 0, f'from {cwd}:\n{res.stderr}'
        assert res.stdout.split()[0] == str((ROOT / 'nbs' / '00_exports.ipynb').resolve())
        assert int(res.stdout.split()[1]) == len(cells)


def test_the_text_wing_branches_off_the_core():
    "Lessons 12-13 import the trunk (00-09c) and not the vision wing (10-11a): no XResNet in a translation lesson"
    import subprocess, sys
    code = ("import sys, exp.nb_13; "
            "print(sorted(m for m in sys.modules if m.startswith('exp.nb_1') and m[7:] < '12'))")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == '[]', f'the text wing loads vision lessons: {r.stdout}'
    import exp.nb_13, exp.nb_11a, exp.nb_09c
    vision = {n for n in set(exp.nb_11a.__all__) - set(exp.nb_09c.__all__)       # the support package is shared
              if not getattr(getattr(exp.nb_11a, n), '__module__', '').startswith('coursekit')}
    assert not vision & set(exp.nb_13.__all__), sorted(vision & set(exp.nb_13.__all__))[:10]
