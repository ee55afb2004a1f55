"""The rule of CONTRIBUTING.md: lessons (`exp/`), tools and scripts save and load only through `coursekit`.

One atomic writer (coursekit.files), one folder replacement, one weights-only reader (coursekit.checkpoint).
A second writer or reader written inside a lesson is what this test catches: each pattern below is a way
to write or read a file without the support package's guarantees (whole or absent; weights only; one line
naming the file on a fault).
"""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FORBIDDEN = {
    r'\btorch\.save\(': 'torch.save (use coursekit.checkpoint.save_torch: atomic)',
    r'\btorch\.load\(': 'torch.load (use coursekit.checkpoint.read_torch: weights only, faults named)',
    r'\bos\.replace\(|\bos\.rename\(|\.rename\(|\.replace\(tmp': 'a rename (use coursekit.files: atomic_writer / replace_folder)',
    r'\bmkstemp\(|\bmkdtemp\(': 'a temporary file or folder to rename (use coursekit.files)',
    r'\bshutil\.rmtree\(': 'deleting a folder (use coursekit.files.replace_folder to replace one)',
    r'json\.loads?\(': 'reading JSON (use coursekit.files.read_json: names the file when it is cut)',
    r'\.read_text\(|\bopen\([^)]*encoding': 'decoding a text file (use coursekit.files.read_text / iter_lines)',
    r'\.write_text\(|\.write_bytes\(': 'writing a file in place (use coursekit.files: write_text / write_bytes)',
}
# Named exceptions: (file, the line's text, why)
ALLOWED = [
    ('exp/nb_12.py', "(tmp/split/label/f'{i}.txt').write_text", 'one file per review inside replace_folder: the folder is the save'),
    ('nbio.py', "nb = json.loads(text.removeprefix", "the notebook reader: keeps the text (and a BOM) for the cleaner; names the file"),
    ('notebook2script.py', "tree = ast.parse(path.read_text(", "reads a generated module's __all__; an unreadable one counts as none"),
]


def sources():
    files = (sorted((ROOT/'exp').glob('nb_*.py')) + sorted(ROOT.glob('train_*.py')) + sorted((ROOT/'tools').glob('*.py'))
             + [ROOT/'run_notebook.py', ROOT/'notebook2script.py', ROOT/'nbio.py'] + sorted((ROOT/'tests'/'benchmarks').glob('*.py')))
    return [f for f in files if f.is_file()]


def code_lines(path):
    "(line number, text) of the lines of `path` that are code, not docstrings or comments"
    in_doc = False
    for i, line in enumerate(path.read_text(encoding='utf-8').splitlines(), 1):
        s = line.strip()
        if in_doc:
            if '"""' in s: in_doc = False
            continue
        if s.startswith('"""') and s.count('"""') == 1: in_doc = True; continue
        if s.startswith(('#', '"')): continue
        yield i, line.split('  #')[0]


@pytest.mark.parametrize('path', sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_saves_and_loads_go_through_coursekit(path):
    rel = str(path.relative_to(ROOT))
    found = []
    for i, line in code_lines(path):
        for pat, what in FORBIDDEN.items():
            if re.search(pat, line) and not any(rel == f and frag in line for f, frag, _ in ALLOWED):
                found.append(f'{rel}:{i}: {what}: {line.strip()[:100]}')
    assert not found, 'a save or load outside coursekit:\n' + '\n'.join(found)


def test_the_support_package_is_where_the_writers_and_readers_are():
    "One atomic file writer, one folder replacement, one torch reader: each defined once, in coursekit"
    code = ['\n'.join(l for _, l in code_lines(p)) for p in sorted((ROOT/'coursekit').glob('*.py'))]
    assert sum(len(re.findall(r'\bos\.replace\(', c)) for c in code) == 1            # in atomic_writer
    assert sum(len(re.findall(r'\btorch\.load\(', c)) for c in code) == 1            # in read_torch
    assert sum(len(re.findall(r'\bdef replace_folder\(', c)) for c in code) == 1
