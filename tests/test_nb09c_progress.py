"""Tests of what a fit shows: 09c's `FitTable` (through `AvgStatsTableCallback`) and `ProgressCallback`'s bars.

The table is the one display of a fit's per-epoch results in every lesson: one HTML table updated in
place in a notebook, aligned text lines anywhere else, nothing at all before the first epoch's row. The
bars are fastprogress's, in an output of their own above the table (cleared at the end of the fit). The
console bars print a `█` and a carriage return when they are built (fastprogress's check that the terminal
can encode the `█`), which would start every log file. Views of a tiny synthetic fit:

- a `FitTable` alone, writing its lines to a list;
- in-process, notebook mode forced and IPython's `display` replaced by a recorder: how many outputs,
  what the last update of each shows;
- in a real kernel through nbclient (as `run_notebook.py` runs lessons): the outputs the cell keeps;
- in a console, stdout captured: the log is the aligned table, header first.
"""
import contextlib
import io
import re
from functools import partial

import nbformat
import pytest
import torch.nn.functional as F
from IPython.core.formatters import format_display_data

import exp.nb_09c as nb09c
from exp.nb_00 import test_eq, test_raises
from exp.nb_05b import CancelFitException, LR_Find
from exp.nb_09b import Callback, Learner
from exp.nb_09c import FitTable, ProgressCallback, AvgStatsTableCallback as TableStatsCallback
from synthetic import RegModel, synth_data

pytestmark = pytest.mark.usefixtures('one_thread')   # conftest.py: torch on one thread

HEADER = ['epoch', 'train_loss', 'valid_loss', 'time']


def learner(progress=True, **kwargs):
    "2 training batches and 1 validation batch of the synthetic regression, a table row per epoch"
    cb_funcs = [partial(TableStatsCallback, [])] + ([partial(ProgressCallback, **kwargs)] if progress else [])
    return Learner(RegModel(), synth_data(16, 16, 8, shuffle=False), F.mse_loss, lr=0.1, cb_funcs=cb_funcs)


class CancelAt(Callback):
    "Raise CancelFitException at `event`, before any epoch has ended"
    def __init__(self, event): setattr(self, event, self.cancel)
    def cancel(self): raise CancelFitException()


def begin_epoch_cancel():
    class C(Callback):
        def begin_epoch(self): raise CancelFitException()
    return C()


def after_batch_cancel():
    class C(Callback):
        def after_batch(self): raise CancelFitException()
    return C()


CANCELS = {'begin_epoch': begin_epoch_cancel, 'after_batch': after_batch_cancel,
           'lr_find': lambda: LR_Find(max_iter=2)}     # 2 training batches: it stops at the second


def columns_at(line, cells):
    "Where each of `cells` starts in `line` (searched left to right)"
    starts, pos = [], 0
    for c in cells:
        pos = line.index(c, pos)
        starts.append(pos)
        pos += len(c)
    return starts


def assert_aligned(lines, n_rows):
    "`lines` are the header once, then `n_rows` rows whose cells start where the header's names start"
    test_eq(lines[0].split(), HEADER)
    test_eq(len(lines), 1 + n_rows)
    head = columns_at(lines[0], HEADER)
    for i, line in enumerate(lines[1:]):
        cells = line.split()
        test_eq(cells[0], str(i))
        test_eq(columns_at(line, cells), head)


# ------------------------------------------------------------------ the table alone

def test_fit_table_text_header_once_aligned():
    lines = []
    t = FitTable(['epoch', 'train_loss', 'time'], write=lines.append)
    test_eq(lines, [])
    t.add([0, '0.5', '00:01'])
    t.add(['10', '12345678901', '01:02:03'])         # longer than its column: pushes the rest, never cut
    test_eq(lines, ['epoch  train_loss  time', '0      0.5         00:01', '10     12345678901  01:02:03'])
    test_eq(t.rows, [['0', '0.5', '00:01'], ['10', '12345678901', '01:02:03']])
    test_eq(repr(t), '\n'.join(lines))
    test_raises(lambda: t.add([1, '0.4']), ValueError, '3 columns')


def test_fit_table_html_escapes_and_has_every_row():
    t = FitTable(['a<b', 'c'], write=lambda s: None)
    t.add([1, '&'])
    t.add([2, 'x'])
    test_eq(table_rows(t._repr_html_()), [['a&lt;b', 'c'], ['1', '&amp;'], ['2', 'x']])


# ------------------------------------------------------------------ notebook mode, in this process

def html_of(obj):
    data, _ = format_display_data(obj)
    return data.get('text/html', data.get('text/plain', ''))


class Handle:
    "What `display(..., display_id=True)` returns: records every update of its output"
    def __init__(self, obj): self.shown = [html_of(obj)]
    def update(self, obj): self.shown.append(html_of(obj))


@pytest.fixture
def fake_display(monkeypatch):
    "Notebook mode in this process: HTML bars, `in_notebook()` true, IPython's `display` recording what is shown"
    import IPython.display
    import fastprogress.fastprogress as fp
    calls = []
    def display(obj, display_id=None, **kwargs):
        calls.append(Handle(obj) if display_id else html_of(obj))
        return calls[-1] if display_id else None
    monkeypatch.setattr(IPython.display, 'display', display)
    monkeypatch.setattr(fp, '_style_shown', False)
    monkeypatch.setattr(nb09c, 'master_bar', fp.NBMasterBar)
    monkeypatch.setattr(nb09c, 'progress_bar', fp.NBProgressBar)
    monkeypatch.setattr(nb09c, 'in_notebook', lambda: True)
    return calls


def table_rows(html):
    "The cells of each row of the HTML table in `html`, header first"
    rows = re.findall(r'<tr>(.*?)</tr>', html)
    return [re.findall(r'<t[hd]>(.*?)</t[hd]>', r) for r in rows]


def tables(calls): return [c for c in calls if isinstance(c, Handle) and '<table' in c.shown[-1]]


@pytest.mark.parametrize('epochs', [1, 2, 3])
def test_notebook_one_table_with_a_row_per_epoch(fake_display, capsys, epochs):
    learner().fit(epochs)
    outs = tables(fake_display)
    test_eq(len(outs), 1)                                   # one table per fit...
    test_eq(len(outs[0].shown), epochs)                     # ...opened at the first row, updated at each next one
    rows = table_rows(outs[0].shown[-1])
    test_eq(rows[0], HEADER)
    test_eq([r[0] for r in rows[1:]], [str(e) for e in range(epochs)])
    test_eq(capsys.readouterr().out, '')                    # nothing printed beside it


def test_notebook_bars_above_the_table_and_gone_at_the_end(fake_display):
    learner().fit(2)
    handles = [c for c in fake_display if isinstance(c, Handle)]
    styles = [c for c in fake_display if isinstance(c, str)]
    test_eq(len(handles), 2)                                # the bars' output, then the table's
    bars, table = handles
    assert table is tables(fake_display)[0]
    assert any('<progress' in s for s in bars.shown)
    assert '<progress' not in bars.shown[-1] and '<table' not in bars.shown[-1]   # cleared, no second table
    for shown in bars.shown: assert 'object at 0x' not in shown, shown
    assert len(styles) == 1 and '<style>' in styles[0]      # fastprogress's css, once per kernel


def test_notebook_without_progress_bar_one_table(fake_display):
    learner(progress=False).fit(2)
    test_eq(len(fake_display), 1)
    test_eq(len(table_rows(fake_display[0].shown[-1])), 3)


def test_a_second_fit_gets_its_own_table(fake_display):
    learn = learner()
    learn.fit(1)
    learn.fit(2)
    test_eq([len(table_rows(t.shown[-1])) for t in tables(fake_display)], [2, 3])   # header + that fit's rows only


def test_a_logger_of_ones_own_gets_the_text_in_a_notebook_too(fake_display):
    lines = []
    learn = learner(progress=False)
    learn.logger = lines.append
    learn.fit(2)
    test_eq(fake_display, [])
    assert_aligned(lines, 2)


@pytest.mark.parametrize('cancel', list(CANCELS))
def test_notebook_fit_cancelled_before_an_epoch_shows_no_table(fake_display, capsys, cancel):
    learn = learner()
    learn.fit(1, cbs=CANCELS[cancel]())
    test_eq(tables(fake_display), [])
    test_eq(learn.avg_stats_table.table.rows, [])
    test_eq(capsys.readouterr().out, '')


# ------------------------------------------------------------------ a real kernel

KERNEL_CELLS = [
    "import sys; sys.path.insert(0, {tests!r})",
    "from test_nb09c_progress import learner",
    "learn = learner()\nlearn.fit(2)",
]


def test_one_table_per_fit_in_a_real_kernel(tmp_path):
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
    assert all(o['output_type'] == 'display_data' for o in outs), outs    # nothing printed beside them
    htmls = [o['data'].get('text/html', '') for o in outs]
    found = [h for h in htmls if '<table' in h]
    test_eq(len(found), 1)
    rows = table_rows(found[0])
    test_eq(rows[0], HEADER)
    test_eq([r[0] for r in rows[1:]], ['0', '1'])                       # the final update: every row
    text = [o['data']['text/plain'] for o in outs if '<table' in o['data'].get('text/html', '')][0]
    assert_aligned(text.splitlines(), 2)                                 # its plain-text form: the aligned table
    assert len(outs) <= 3, outs                                          # the bars, the table and (maybe) the css
    assert 'object at 0x' not in str(outs)


# ------------------------------------------------------------------ console

class Terminal(io.StringIO):
    def isatty(self): return True


def test_console_log_is_the_aligned_table():
    out = io.StringIO()                 # a log file: no bar redraws at all
    with contextlib.redirect_stdout(out):
        learner(console=True).fit(2)
    log = out.getvalue()
    assert log.startswith('epoch'), repr(log[:40])
    assert_aligned(log.splitlines(), 2)
    assert '\r' not in log and '█' not in log


def test_console_without_progress_bar_prints_the_same_table():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        learner(progress=False).fit(2)
    assert_aligned(out.getvalue().splitlines(), 2)


@pytest.mark.parametrize('cancel', list(CANCELS))
def test_console_fit_cancelled_before_an_epoch_prints_nothing(cancel):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        learner(console=True).fit(1, cbs=CANCELS[cancel]())
    test_eq(out.getvalue(), '')


def test_console_on_a_terminal_redraws_bars_then_the_rows():
    out = Terminal()                    # a terminal: the batch bars redraw themselves with '\r'
    with contextlib.redirect_stdout(out):
        learner(console=True).fit(2)
    log = out.getvalue()
    assert '\r' in log and '|' in log    # the text bars were drawn
    lines = [l for l in log.replace('\r', '\n').splitlines() if l.startswith(('epoch', '0 ', '1 '))]
    assert_aligned(lines, 2)


class AsciiTerminal(Terminal):
    encoding = 'ascii'


def test_console_bars_fall_back_to_x_when_the_terminal_cannot_show_the_block():
    out = AsciiTerminal()
    with contextlib.redirect_stdout(out):
        learner(console=True).fit(1)
    log = out.getvalue()
    assert '█' not in log and 'X' in log, repr(log)
