"""Tests of what 09c's `ProgressCallback` shows: one display per fit in a notebook, a clean console log.

fastprogress opens the master bar's display (`NBMasterBar.on_iter_begin`) on the bar's first update; a
callback that also opens it itself gets two displays per fit, the first one left behind with a
header-only table (and the repr of a bar that had not drawn yet). The console bars print a `█` and a
carriage return when they are built (fastprogress's check that the terminal can encode the `█`), which
would start every log file. Three views of a tiny synthetic fit:

- in-process, with IPython's `display` replaced by a recorder: how many displays, what the last
  update of each shows;
- in a real kernel through nbclient (as `run_notebook.py` runs lessons): the outputs the cell keeps;
- in a console, stdout captured: the log starts with the table's header.
"""
import contextlib
import io
from functools import partial

import nbformat
import pytest
import torch.nn.functional as F
from IPython.core.formatters import format_display_data

import exp.nb_09c as nb09c
from exp.nb_00 import test_eq
from exp.nb_09b import Learner
from exp.nb_09c import ProgressCallback, AvgStatsTableCallback as TableStatsCallback
from synthetic import RegModel, synth_data

pytestmark = pytest.mark.usefixtures('one_thread')   # conftest.py: torch on one thread

HEADER = ['epoch', 'train_loss', 'valid_loss', 'time']


def learner(**kwargs):
    "2 training batches and 1 validation batch of the synthetic regression, a header + one row per epoch"
    return Learner(RegModel(), synth_data(16, 16, 8, shuffle=False), F.mse_loss, lr=0.1,
                   cb_funcs=[partial(TableStatsCallback, []), partial(ProgressCallback, **kwargs)])


def html_of(obj):
    data, _ = format_display_data(obj)
    return data.get('text/html', data.get('text/plain', ''))


class Handle:
    "What `display(..., display_id=True)` returns: records every update of its output"
    def __init__(self, log, obj): self.log, self.shown = log, [html_of(obj)]
    def update(self, obj): self.shown.append(html_of(obj))


@pytest.fixture
def fake_display(monkeypatch):
    "Notebook bars in this process, with IPython's `display` recording what is displayed"
    import IPython.display
    import fastprogress.fastprogress as fp
    calls = []
    def display(obj, display_id=None, **kwargs):
        calls.append(Handle(calls, obj) if display_id else html_of(obj))
        return calls[-1] if display_id else None
    monkeypatch.setattr(IPython.display, 'display', display)
    monkeypatch.setattr(fp, '_style_shown', False)
    monkeypatch.setattr(nb09c, 'master_bar', fp.NBMasterBar)
    monkeypatch.setattr(nb09c, 'progress_bar', fp.NBProgressBar)
    return calls


def table_rows(html):
    "The cells of each row of the fastprogress table in `html`, header first"
    import re
    rows = re.findall(r'<tr>(.*?)</tr>', html)
    return [re.findall(r'<t[hd]>(.*?)</t[hd]>', r) for r in rows]


@pytest.mark.parametrize('epochs', [1, 3])
def test_one_display_per_fit_in_a_notebook(fake_display, epochs):
    learn = learner()
    learn.fit(epochs)
    bars = [c for c in fake_display if isinstance(c, Handle)]
    styles = [c for c in fake_display if isinstance(c, str)]
    test_eq(len(bars), 1)                                   # one output for the bars and the table
    assert len(styles) == 1 and '<style>' in styles[0]      # fastprogress's css, once per kernel
    final = bars[0].shown[-1]
    rows = table_rows(final)
    test_eq(rows[0], HEADER)
    test_eq([r[0] for r in rows[1:]], [str(e) for e in range(epochs)])
    assert '<progress' not in final                         # the bars are gone at the end of the fit
    for shown in bars[0].shown:
        assert 'object at 0x' not in shown, shown           # never a bar's repr instead of the bar
    assert len(bars[0].shown) > 2 * epochs                  # ...and it was updated as the fit went
    assert learn.logger is print


def test_a_second_fit_gets_its_own_single_display(fake_display):
    learn = learner()
    learn.fit(1)
    learn.fit(2)
    bars = [c for c in fake_display if isinstance(c, Handle)]
    test_eq(len(bars), 2)
    test_eq([len(table_rows(b.shown[-1])) for b in bars], [2, 3])   # header + that fit's rows only


KERNEL_CELLS = [
    "import sys; sys.path.insert(0, {tests!r})",
    "from test_nb09c_progress import learner",
    "learn = learner()\nlearn.fit(2)",
]


def test_one_output_per_fit_in_a_real_kernel(tmp_path):
    "The fit run by nbclient in an ipykernel, as run_notebook.py does: the outputs the notebook keeps"
    from nbclient import NotebookClient
    from pathlib import Path
    import run_notebook
    tests = str(Path(__file__).resolve().parent)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src.format(tests=tests)) for src in KERNEL_CELLS])
    client = NotebookClient(nb, km=run_notebook._kernel_manager(), timeout=120, resources={'metadata': {'path': str(tmp_path)}})
    with client.setup_kernel(env=run_notebook.kernel_env()):
        for i, cell in enumerate(nb.cells): client.execute_cell(cell, i)
    outs = nb.cells[-1].outputs
    htmls = [o['data'].get('text/html', '') for o in outs if o['output_type'] == 'display_data']
    tables = [h for h in htmls if 'fastprogress' in h and '<table' in h]
    test_eq(len(tables), 1)
    rows = table_rows(tables[0])
    test_eq(rows[0], HEADER)
    test_eq([r[0] for r in rows[1:]], ['0', '1'])
    assert all(o['output_type'] == 'display_data' for o in outs), outs    # nothing printed beside it
    assert len(outs) <= 2, outs                                           # the table and (maybe) the css
    assert 'object at 0x' not in str(outs)


class Terminal(io.StringIO):
    def isatty(self): return True


def test_console_log_starts_with_the_header():
    out = io.StringIO()                 # a log file: no bar redraws at all
    with contextlib.redirect_stdout(out):
        learner(console=True).fit(2)
    log = out.getvalue()
    assert log.startswith('epoch'), repr(log[:40])
    lines = log.splitlines()
    test_eq(lines[0].split(), HEADER)
    test_eq([l.split()[0] for l in lines[1:]], ['0', '1'])
    assert '\r' not in log and '█' not in log


def test_console_on_a_terminal_starts_with_the_header_then_redraws():
    out = Terminal()                    # a terminal: the batch bars redraw themselves with '\r'
    with contextlib.redirect_stdout(out):
        learner(console=True).fit(1)
    log = out.getvalue()
    assert log.startswith('epoch'), repr(log[:40])
    assert '\r' in log and '|' in log    # the text bars were drawn
    rows = [l.split() for l in log.replace('\r', '\n').splitlines() if l.startswith(('epoch', '0 '))]
    test_eq(rows[0], HEADER)
    test_eq(len(rows), 2)


class AsciiTerminal(Terminal):
    encoding = 'ascii'


def test_console_bars_fall_back_to_x_when_the_terminal_cannot_show_the_block():
    out = AsciiTerminal()
    with contextlib.redirect_stdout(out):
        learner(console=True).fit(1)
    log = out.getvalue()
    assert '█' not in log and 'X' in log, repr(log)
    assert log.startswith('epoch')
