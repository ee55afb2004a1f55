"""coursekit.files and coursekit.checkpoint: saves that are whole or absent, reads whose faults name the file.

Atomicity is tested the hard way: a child process is killed (SIGKILL) in the middle of a save, and a reader
polls the final name while saves run in a loop.
"""
import json, os, signal, subprocess, sys, textwrap, threading, time
from pathlib import Path

import pytest
import torch
from torch import nn

from coursekit import files
from coursekit.checkpoint import (CheckpointError, check_state_dict, cpu_state_dict, load_state, read_state_dict,
                                  read_torch, save_torch)
from coursekit.files import (FileFormatError, atomic_writer, iter_lines, leftovers, read_json, read_text, remove_leftovers,
                             replace_folder, write_json, write_text)

ROOT = Path(__file__).resolve().parents[1]


def one_line(e): return '\n' not in str(e) and '\x1b' not in str(e)


# ------------------------------------------------------------------ atomic files

def test_atomic_writer_replaces_whole_file_and_leaves_nothing(tmp_path):
    p = tmp_path/'a.txt'
    write_text(p, 'old')
    os.chmod(p, 0o640)
    write_text(p, 'new')
    assert p.read_text() == 'new' and (p.stat().st_mode & 0o777) == 0o640
    assert [q.name for q in tmp_path.iterdir()] == ['a.txt']

def test_failed_write_keeps_old_content(tmp_path):
    p = tmp_path/'a.txt'
    write_text(p, 'old')
    with pytest.raises(RuntimeError):
        with atomic_writer(p) as f:
            f.write(b'half')
            raise RuntimeError('disk full')
    assert p.read_text() == 'old' and [q.name for q in tmp_path.iterdir()] == ['a.txt']

def test_save_to_a_folder_is_refused_before_writing(tmp_path):
    (tmp_path/'ckpt').mkdir()
    with pytest.raises(FileFormatError, match='is a folder') as e: write_text(tmp_path/'ckpt', 'x')
    assert one_line(e.value) and sorted(q.name for q in tmp_path.iterdir()) == ['ckpt']


KILLED_SAVE = textwrap.dedent('''
    import os, sys, time
    sys.path.insert(0, {root!r})
    from coursekit import files
    target, kind = sys.argv[1], sys.argv[2]
    if kind == 'file':
        with files.atomic_writer(target) as f:
            f.write(b'half of the new')
            print('writing', flush=True); time.sleep(60)
    else:
        if kind == 'fallback': files._exchange = lambda a, b: False
        real_rename = os.rename
        def slow_rename(a, b):
            real_rename(a, b)
            if str(b).endswith('.old'): print('between', flush=True); time.sleep(60)
        os.rename = slow_rename
        with files.replace_folder(target) as tmp:
            (tmp/'weights').write_text('new')
            if kind == 'folder': print('writing', flush=True); time.sleep(60)
''')

def kill_during_save(tmp_path, target, kind):
    script = tmp_path/'killed_save.py'
    script.write_text(KILLED_SAVE.format(root=str(ROOT)))
    proc = subprocess.Popen([sys.executable, str(script), str(target), kind], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.strip() in ('writing', 'between'), line
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)

def test_killed_file_save_keeps_old_file_and_next_save_removes_leftover(tmp_path):
    p = tmp_path/'model.pth'
    write_text(p, 'old')
    kill_during_save(tmp_path, p, 'file')
    assert p.read_text() == 'old'
    left = leftovers(p)
    assert len(left) == 1 and left[0][0].name.startswith('.model.pth.') and left[0][0].name.endswith('.tmp')
    write_text(p, 'new')
    assert p.read_text() == 'new' and leftovers(p) == []

@pytest.mark.parametrize('kind', ['folder', 'fallback'])
def test_killed_folder_save_keeps_a_whole_folder(tmp_path, kind):
    d = tmp_path/'lm'
    with replace_folder(d) as tmp: (tmp/'weights').write_text('old')
    kill_during_save(tmp_path, d, kind)
    if kind == 'fallback':              # killed between the two renames: the old folder is set aside as .old
        assert not d.exists() and sorted(k for _, _, k in leftovers(d)) == ['old', 'tmp']
        with pytest.raises(FileFormatError, match='interrupted'): read_text(d)
        remove_leftovers(d)             # what the next save of `d` does first: the .old folder goes back
    assert (d/'weights').read_text() == 'old'
    with replace_folder(d) as tmp: (tmp/'weights').write_text('new')
    assert (d/'weights').read_text() == 'new' and leftovers(d) == []
    assert sorted(q.name for q in tmp_path.iterdir()) == ['killed_save.py', 'lm']

def test_folder_is_never_missing_while_replaced(tmp_path):
    "A reader polling the final name always finds one whole version (needs the atomic exchange of two names)"
    d = tmp_path/'out'
    with replace_folder(d) as tmp: (tmp/'a').write_text('0'); (tmp/'b').write_text('0')
    seen, stop = [], threading.Event()
    def poll():
        while not stop.is_set():
            try: seen.append(((d/'a').read_text(), (d/'b').read_text()))
            except FileNotFoundError: seen.append(None)
    t = threading.Thread(target=poll); t.start()
    try:
        for i in range(1, 40):
            with replace_folder(d) as tmp: (tmp/'a').write_text(str(i)); (tmp/'b').write_text(str(i))
    finally:
        stop.set(); t.join()
    assert seen and None not in seen
    # a torn read (a from one version, b from the next) is possible between the two reads; a missing folder is not

def test_replace_folder_keep_existing_and_file_in_the_way(tmp_path):
    d = tmp_path/'cache'
    with replace_folder(d) as tmp: (tmp/'x').write_text('first')
    with replace_folder(d, keep_existing=True) as tmp: (tmp/'x').write_text('second')
    assert (d/'x').read_text() == 'first' and sorted(q.name for q in tmp_path.iterdir()) == ['cache']
    (tmp_path/'f').write_text('a file')
    with pytest.raises(FileFormatError, match='is a file') as e:
        with replace_folder(tmp_path/'f'): pass
    assert one_line(e.value)

def test_leftovers_of_a_running_process_are_kept(tmp_path):
    p = tmp_path/'a.txt'
    mine = files.temp_path(p)            # this process is alive: its save may be in progress
    mine.write_text('in progress')
    write_text(p, 'x')
    assert mine.exists()


# ------------------------------------------------------------------ reading text and JSON

def test_read_text_names_file_on_decode_error(tmp_path):
    p = tmp_path/'latin1.txt'
    p.write_bytes('café'.encode('latin-1'))
    with pytest.raises(FileFormatError) as e: read_text(p)
    assert str(p) in str(e.value) and 'utf-8' in str(e.value) and one_line(e.value)
    with pytest.raises(FileFormatError, match='no such'): read_text(tmp_path/'none.txt')

def test_iter_lines_names_file_and_line(tmp_path):
    p = tmp_path/'words.vec'
    p.write_bytes(b'2 1\r\nchat 0.5\nl\xe9t\xe9 0.1\n')          # line 3 in latin-1
    lines = iter_lines(p)
    assert next(lines) == '2 1' and next(lines) == 'chat 0.5'
    with pytest.raises(FileFormatError, match=r'words.vec line 3 is not valid utf-8') as e: next(lines)
    assert one_line(e.value)

@pytest.mark.parametrize('content,expect', [('{"a": [1, 2', 'cut short'), ('', 'empty'), ('{a: 1}', 'not valid JSON')])
def test_read_json_faults(tmp_path, content, expect):
    p = tmp_path/'config.json'
    p.write_text(content)
    with pytest.raises(FileFormatError, match=expect) as e: read_json(p)
    assert str(p) in str(e.value) and one_line(e.value)

def test_write_json_round_trip(tmp_path):
    write_json(tmp_path/'v.json', ['é', 1, None])
    assert read_json(tmp_path/'v.json') == ['é', 1, None]


# ------------------------------------------------------------------ checkpoints

class Evil:
    def __reduce__(self): return (os.system, ('echo pwned > /dev/null',))

@pytest.fixture
def ckpts(tmp_path):
    m = nn.Linear(3, 2)
    good = save_torch({'model': cpu_state_dict(m), 'epoch': 1}, tmp_path/'good.pth')
    data = good.read_bytes()
    (tmp_path/'cut.pth').write_bytes(data[:len(data) // 2])
    (tmp_path/'empty.pth').write_bytes(b'')
    (tmp_path/'config.pth').write_text('{"vocab_sz": 3}')
    (tmp_path/'noise.pth').write_bytes(bytes(range(200, 256)) * 4)
    torch.save({'model': Evil()}, tmp_path/'pickled.pth')
    return tmp_path, m

@pytest.mark.parametrize('name,expect', [('cut.pth', 'cut short or damaged'), ('empty.pth', 'is empty'),
                                         ('config.pth', 'not a PyTorch file (it holds JSON'),
                                         ('noise.pth', 'not a PyTorch file'),
                                         ('pickled.pth', 'pickled Python object'),
                                         ('missing.pth', 'no such')])
def test_read_torch_faults_are_one_line_naming_the_file(ckpts, name, expect):
    d, _ = ckpts
    with pytest.raises(FileNotFoundError if name == 'missing.pth' else CheckpointError) as e:
        read_torch(d/name, keys=('model',), fix='train it again')
    msg = str(e.value)
    assert expect in msg and str(d/name) in msg and one_line(e.value)
    assert 'train it again' in msg if name != 'pickled.pth' else 'system' in msg and 'not run' in msg
    assert 'weights_only=False' not in msg

def test_read_torch_names_missing_keys(ckpts):
    d, m = ckpts
    with pytest.raises(CheckpointError) as e: read_torch(d/'good.pth', keys=('model', 'opt', 'epoch'), what='training checkpoint')
    assert 'lacks opt' in str(e.value) and 'it has model, epoch' in str(e.value) and one_line(e.value)
    assert read_torch(d/'good.pth', keys=('model',))['epoch'] == 1

def test_state_dict_round_trip_and_mismatch(ckpts, tmp_path):
    d, m = ckpts
    save_torch(cpu_state_dict(m), tmp_path/'w.pth')
    m2 = load_state(nn.Linear(3, 2), read_state_dict(tmp_path/'w.pth'), 'w.pth')
    assert torch.equal(m2.weight, m.weight)
    with pytest.raises(CheckpointError) as e: check_state_dict(nn.Linear(3, 5), read_state_dict(tmp_path/'w.pth'), 'w.pth')
    assert 'weight is (2, 3) in the file but (5, 3) in the model' in str(e.value) and one_line(e.value)
    with pytest.raises(CheckpointError, match='does not hold a state dict'): read_state_dict(d/'good.pth')
