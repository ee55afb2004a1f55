#!/usr/bin/env python
"""Run lesson notebooks top to bottom, each in a fresh kernel, and report what happened.

    python run_notebook.py nbs/03_minibatch_training.ipynb      # one notebook, full lesson
    python run_notebook.py --quick nbs                          # every notebook, test-suite values
    python run_notebook.py --quick -p epochs=2 nbs/05_anneal.ipynb
    python run_notebook.py --quick --keep-going --html /tmp/html nbs

Each notebook runs in its own kernel, started on the interpreter running this script, with the
notebook's folder as working directory and the repository root on ``PYTHONPATH`` (so ``import exp``
works without installing anything). The notebook file is never written back.

Flags and quick mode are not the runner's: every lesson loads the course's notebook extension in its
first cell (``%load_ext coursekit``, see ``coursekit/notebook.py``), and the runner executes the
notebook exactly as Jupyter's "Run All" does, with nothing injected or skipped by the runner. It only
sets the kernel's environment: ``EXP_QUICK=1`` with ``--quick`` (``0`` without), and ``EXP_PARAMS`` for
``-p name=value`` overrides. In the kernel the ``%%quick`` cell after the parameters cell applies them,
``#slow`` cells are skipped in quick mode and ``#cuda`` cells when CUDA is absent, each printing a
"skipped: ..." line. Before anything runs, the runner checks every notebook: one parameters cell
followed by its ``%%quick`` cell, quick and ``-p`` names that the parameters cell assigns, and the
extension loaded before the first cell that needs it.

Time limits: 600 s per cell and 1,800 s per notebook with ``--quick``; 4 h and 8 h for a full run, so
that no full lesson is cut (``--cell-timeout``/``--timeout`` change them). ``--html DIR`` writes each
executed notebook as a page, ``--out DIR`` as an executed ``.ipynb`` with its outputs (for presenting;
never into the notebooks' own folder). A failure names the cell by its index in the file and by the
execution count its traceback shows (``cell 65 (In [43] in the traceback)``).

Threads: unless the environment sets them, the kernel gets ``OMP_WAIT_POLICY=PASSIVE`` (torch's idle
threads sleep instead of spinning, which on a busy machine fights the other processes for the cores)
and, with ``--quick``, ``OMP_NUM_THREADS=1`` (see ``thread_env`` and the README's "On a shared machine").

Exit status: 0 when every notebook passed, 1 when one failed or timed out, 2 for bad input (missing
file, not a notebook, bad parameters).

The same machinery is importable: ``run_notebook(path, quick=True)`` returns a ``NotebookResult``
whose ``report()`` is the text the command line prints for a failure.
"""
from __future__ import annotations

import argparse
import ast
import copy
import logging
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent
if str(REPO_ROOT) not in sys.path: sys.path.insert(0, str(REPO_ROOT))
from nbio import NotebookError, natural_key, read_notebook_text, write_atomic  # noqa: E402
from coursekit.notebook import (PARAMS_VAR, QUICK_VAR, SettingError, assigned_names, cell_flags,  # noqa: E402
                                is_quick_cell, skip_reason)
from coursekit.notebook import cuda_available as _cuda_available  # noqa: E402
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
SKIP_REASONS = ("slow", "cuda")
# Default time limits in seconds (per cell, per notebook). Quick mode only guards against hangs. Full
# runs must never be cut: the longest cells recorded in RESULTS.md take about 3,150 s on 2 CPU cores
# (10b's four fits), and tests/test_run_notebook.py checks these stay at least twice what it records.
QUICK_LIMITS = (600, 1800)
FULL_LIMITS = (4 * 3600, 8 * 3600)


def default_limits(quick):
    "(cell, notebook) time limits in seconds used when none are given."
    return QUICK_LIMITS if quick else FULL_LIMITS

__all__ = ["NotebookInputError", "NotebookResult", "collect_notebooks", "default_limits", "cell_flags", "thread_env",
           "parse_param_value", "run_notebook", "run_notebooks", "main"]


class NotebookInputError(ValueError):
    "Bad input: a missing or unreadable notebook, or parameters that do not fit the notebook."


# ----------------------------------------------------------------------------- finding notebooks

def collect_notebooks(paths):
    "Expand folders to their `*.ipynb` files; check every file exists; return paths in natural order."
    found = {}
    for p in paths:
        p = Path(p)
        if p.is_dir():
            nbs = [q for q in p.glob("*.ipynb") if q.is_file()]
            if not nbs:
                raise NotebookInputError(f"{p}: folder holds no *.ipynb notebook")
            for q in nbs:
                found[q.resolve()] = q
        elif p.is_file():
            if p.suffix != ".ipynb":
                raise NotebookInputError(f"{p}: not a notebook (expected a .ipynb file)")
            found[p.resolve()] = p
        else:
            raise NotebookInputError(f"{p}: no such file or folder")
    return sorted(found.values(), key=lambda q: (natural_key(q.name), str(q)))


def load_notebook(path):
    "Read a notebook as an nbformat v4 node, raising `NotebookInputError` naming the file when it is not one."
    import nbformat
    try:
        text, _ = read_notebook_text(path)      # checked here, so every message names the file
        nb = nbformat.reads(text.removeprefix("\ufeff"), as_version=4)
        nbformat.validate(nb)
    except NotebookError as e:
        raise NotebookInputError(str(e)) from None
    except nbformat.ValidationError as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise NotebookInputError(f"{path}: not a valid notebook ({msg})") from None
    return nb


# ----------------------------------------------------------------------------- cells and flags
# The flags and quick mode are run by the course's notebook extension (coursekit.notebook) inside the
# kernel, exactly as in Jupyter; the runner only checks the cells before it starts and counts the skips.

_CUDA = None


def cuda_available():
    "Whether this (the runner's) process sees CUDA; torch is imported only when a `#cuda` cell asks."
    global _CUDA
    if _CUDA is None:
        _CUDA = _cuda_available()
    return _CUDA


_LOAD_EXT = re.compile(r"^\s*%load_ext\s+coursekit\s*$", re.M)


def _tags(cell):
    return list(cell.get("metadata", {}).get("tags", []) or [])


def parse_param_value(text):
    "A `-p` value: a Python literal when it parses as one (`3`, `1e-3`, `'a'`, `[1, 2]`), else the raw string."
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def _parse_param_args(items):
    "`['epochs=2', 'name=x']` -> {'epochs': 2, 'name': 'x'} (argument errors name the bad item)."
    out = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise NotebookInputError(f"-p {item!r}: expected name=value with a Python identifier as name")
        out[name] = parse_param_value(value)
    return out


@dataclass
class _Plan:
    "What will be executed: a copy of the notebook as it is, and the settings its kernel gets."
    path: Path
    nb: object                   # the notebook to execute (a copy of the file's cells, unchanged)
    env: dict                    # EXP_QUICK / EXP_PARAMS for the kernel
    skips: dict                  # cell index -> reason ('slow', 'cuda') the extension will skip it for


def _names(source, where):
    try:
        return assigned_names(source, where)
    except SettingError as e:
        raise NotebookInputError(str(e)) from None


def plan_notebook(path, quick=False, params=None):
    """Load a notebook and check its parameters, quick cell and flags against `quick`/`params`; raise
    NotebookInputError if they do not fit. Nothing in the notebook is changed: the kernel's extension
    applies quick mode and the flags from the environment the plan carries."""
    path = Path(path)
    nb = load_notebook(path)
    params = dict(params or {})
    cells = nb.cells
    param_cells = [i for i, c in enumerate(cells) if "parameters" in _tags(c)]
    quick_cells = [i for i, c in enumerate(cells) if "quick" in _tags(c)
                   or (c.cell_type == "code" and is_quick_cell(c.source))]
    if len(param_cells) > 1:
        raise NotebookInputError(
            f"{path}: {len(param_cells)} cells tagged 'parameters' (cells {param_cells}); expected one")
    if len(quick_cells) > 1:
        raise NotebookInputError(
            f"{path}: {len(quick_cells)} quick cells (cells {quick_cells}); expected one")
    pidx = param_cells[0] if param_cells else None
    qidx = quick_cells[0] if quick_cells else None
    if pidx is not None and cells[pidx].cell_type != "code":
        raise NotebookInputError(f"{path}: cell {pidx} is tagged 'parameters' but is not a code cell")
    if qidx is not None and not (cells[qidx].cell_type == "code" and is_quick_cell(cells[qidx].source)):
        raise NotebookInputError(f"{path}: cell {qidx} is tagged 'quick' but is not a code cell whose "
                                 f"first line is %%quick (make it one: the extension applies it)")
    if qidx is not None and "quick" not in _tags(cells[qidx]):
        raise NotebookInputError(f"{path}: cell {qidx} starts with %%quick but is not tagged 'quick'")
    if qidx is not None and pidx is None:
        raise NotebookInputError(f"{path}: cell {qidx} is a quick cell but no cell is tagged 'parameters'")
    if pidx is not None and qidx != pidx + 1:
        raise NotebookInputError(f"{path}: the parameters cell {pidx} must be followed by its %%quick cell "
                                 f"(cell {pidx + 1}), which applies quick mode and -p overrides")
    if params and pidx is None:
        raise NotebookInputError(
            f"{path}: -p {', '.join(params)} given, but the notebook has no cell tagged 'parameters'")

    # the extension must be loaded before the first cell that needs it
    loaded_at = next((i for i, c in enumerate(cells) if c.cell_type == "code" and _LOAD_EXT.search(c.source)), None)
    needs = [i for i, c in enumerate(cells) if c.cell_type == "code" and (cell_flags(c.source) & {"slow", "cuda"})]
    needs = sorted(needs + ([qidx] if qidx is not None else []))
    if needs and (loaded_at is None or loaded_at > needs[0]):
        what = "the quick cell" if needs[0] == qidx else f"a {'/'.join(sorted(cell_flags(cells[needs[0]].source)))} cell"
        raise NotebookInputError(f"{path}: cell {needs[0]} is {what}, but no cell before it runs "
                                 f"`%load_ext coursekit` (the extension that applies flags and quick values)")

    env = {QUICK_VAR: "1" if quick else "0"}
    if pidx is not None:
        known = set(_names(cells[pidx].source, f"{path}: parameters cell {pidx}"))
        # checked in every mode, so a stale quick cell shows up in a full run too
        qsrc = re.sub(r"^(\s*)%%quick", r"\1", cells[qidx].source, count=1)   # lines keep their numbers
        for name in _names(qsrc, f"{path}: quick cell {qidx}"):
            if name not in known:
                raise NotebookInputError(
                    f"{path}: quick cell {qidx} sets {name!r}, which the parameters cell {pidx} "
                    f"does not assign (it assigns: {', '.join(sorted(known)) or 'nothing'})")
        for name, value in params.items():
            if name not in known:
                raise NotebookInputError(
                    f"{path}: -p {name}: not assigned in the parameters cell {pidx} "
                    f"(it assigns: {', '.join(sorted(known)) or 'nothing'})")
            text = repr(value)
            try:
                ok = ast.literal_eval(text) == value
            except Exception:
                ok = False
            if not ok:
                raise NotebookInputError(f"{path}: -p {name}: value {value!r} is not a Python literal")
        if params:
            env[PARAMS_VAR] = repr(params)
    skips = {}
    for i, c in enumerate(cells):
        if c.cell_type == "code" and (reason := skip_reason(c.source, quick, cuda_available)):
            skips[i] = reason
    return _Plan(path, copy.deepcopy(nb), env, skips)


# ----------------------------------------------------------------------------- results

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def strip_ansi(text):
    return _ANSI.sub("", text)


@dataclass
class NotebookResult:
    "The outcome of one notebook run. `report()` is what the command line prints."
    path: Path
    status: str = "ok"                        # 'ok', 'FAILED' or 'TIMEOUT'
    seconds: float = 0.0
    cells_run: int = 0                        # the file's code cells that were executed
    skipped: dict = field(default_factory=dict)   # reason ('slow', 'cuda') -> count
    failed_cell: int | None = None            # index in the file's `cells` list (0-based)
    failed_count: int | None = None           # its execution count: the traceback's `Cell In[n]`
    cell_source: str | None = None
    error: str | None = None                  # traceback / message, ANSI codes stripped
    limit: str | None = None                  # for TIMEOUT: 'cell' or 'notebook'
    env: dict = field(default_factory=dict)   # the quick-mode settings the kernel got
    nb: object = None                         # the executed notebook (outputs included)
    html: Path | None = None
    out: Path | None = None                   # the executed .ipynb written with --out

    @property
    def ok(self):
        return self.status == "ok"

    @property
    def n_skipped(self):
        return sum(self.skipped.values())

    def line(self):
        "One status line: `ok      12.3s  03_minibatch_training  (41 cells, 2 skipped: 1 slow, 1 cuda)`."
        counts = f"{self.cells_run} cell{'s' if self.cells_run != 1 else ''}"
        if self.n_skipped:
            detail = ", ".join(f"{n} {r}" for r, n in self.skipped.items() if n)
            counts += f", {self.n_skipped} skipped: {detail}"
        return f"{self.status:<7} {self.seconds:6.1f}s  {Path(self.path).stem}  ({counts})"

    def report(self):
        "The status line, and for a failure: notebook, cell index, the cell's source and the traceback."
        out = [self.line()]
        if self.ok:
            return out[0]
        where = f"{self.path}"
        if self.failed_cell is not None:
            where += f", cell {self.failed_cell}"
            if self.failed_count is not None:
                where += f" (In [{self.failed_count}] in the traceback)"
        out.append(f"{self.status} in {where}")
        if self.cell_source is not None:
            out.append("---- cell source ----")
            out.append(self.cell_source.rstrip("\n"))
        if self.error:
            out.append("---- error ----" if self.status == "TIMEOUT" else "---- traceback ----")
            out.append(self.error.rstrip("\n"))
        return "\n".join(out)


# ----------------------------------------------------------------------------- running

def kernel_env(extra=None, quick=False):
    """The kernel's environment: ours, the repo root on PYTHONPATH, the inline matplotlib backend, the
    thread settings (`thread_env`) unless ours has its own, and `extra`."""
    env = dict(os.environ)
    old = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + old if old else "")
    env["MPLBACKEND"] = INLINE_BACKEND     # figures are captured as outputs, never shown in a window
    for k, v in thread_env(quick).items():
        env.setdefault(k, v)
    env.pop(PARAMS_VAR, None)              # the plan's settings only, never the caller's
    env.update(extra or {})
    return env


def thread_env(quick):
    """Thread settings that degrade gracefully on a busy machine (README, "On a shared machine"): idle
    OpenMP threads sleep instead of spinning (`OMP_WAIT_POLICY=PASSIVE`), and quick runs, whose tensors
    are small, use one thread. Lesson 07 quick beside one busy process: 489 s with torch's defaults,
    39 s passive, 33 s on one thread (29-30 s idle with any of them)."""
    return {"OMP_WAIT_POLICY": "PASSIVE", **({"OMP_NUM_THREADS": "1"} if quick else {})}


def _kernel_manager():
    "A kernel manager that starts ipykernel on this interpreter, whatever kernelspecs are installed."
    from jupyter_client import AsyncKernelManager
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager

    spec = KernelSpec(argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                      display_name=f"Python ({sys.executable})", language="python", name="python3")

    class ThisInterpreter(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):
            return spec

    # kernel_name 'python3' tells nbclient it is an IPython kernel (history kept in memory only)
    km = AsyncKernelManager(kernel_name="python3", kernel_spec_manager=ThisInterpreter())
    # Recent jupyter_client/ipykernel encrypt the local TCP sockets when both sides can (and the kernel
    # warns when they are not); older versions have no such setting and run unencrypted, as Jupyter does.
    if "transport_encryption" in km.trait_names():
        import zmq
        if zmq.has("curve"):
            spec.metadata = {"supported_encryption": ["curve"]}
            km.transport_encryption = "auto"
    return km


def _quiet_logger():
    log = logging.getLogger("run_notebook.nbclient")
    log.setLevel(logging.CRITICAL)
    log.propagate = False
    return log


def _error_text(cell, exc):
    for out in getattr(cell, "outputs", []) or []:
        if out.get("output_type") == "error":
            tb = out.get("traceback") or []
            text = "\n".join(tb) if tb else f"{out.get('ename')}: {out.get('evalue')}"
            return strip_ansi(text)
    return strip_ansi(str(exc))


def _write_html(nb, path, html_dir):
    from nbconvert import HTMLExporter
    html_dir = Path(html_dir)
    html_dir.mkdir(parents=True, exist_ok=True)
    body, _ = HTMLExporter().from_notebook_node(nb)
    target = html_dir / f"{Path(path).stem}.html"
    write_atomic(target, body)
    return target


def _execute(plan, cell_timeout, timeout):
    """Run a planned notebook in a fresh kernel, every cell in order as Jupyter's "Run All" does (the
    kernel's extension skips flagged cells); return a NotebookResult."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    res = NotebookResult(path=plan.path, env=dict(plan.env), nb=plan.nb, skipped={r: 0 for r in SKIP_REASONS})
    start = time.monotonic()
    deadline = start + timeout
    limit = {"seconds": float(cell_timeout)}
    client = NotebookClient(plan.nb, km=_kernel_manager(), timeout_func=lambda cell: limit["seconds"],
                            resources={"metadata": {"path": str(plan.path.resolve().parent)}},
                            shutdown_kernel="graceful", log=_quiet_logger())
    cell = None
    idx = None
    try:
        with client.setup_kernel(env=kernel_env(plan.env, quick=plan.env.get(QUICK_VAR) == "1"), cleanup_kc=True):
            for idx, cell in enumerate(plan.nb.cells):
                if cell.cell_type != "code" or not cell.source.strip():
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    res.status, res.limit = "TIMEOUT", "notebook"
                    res.error = f"notebook time limit of {timeout:g}s (--timeout) was used up before this cell started"
                    break
                limit["seconds"] = min(float(cell_timeout), remaining)
                which = "cell" if cell_timeout <= remaining else "notebook"
                if idx in plan.skips:
                    res.skipped[plan.skips[idx]] += 1
                else:
                    res.cells_run += 1
                try:
                    client.execute_cell(cell, idx)
                except CellTimeoutError:
                    res.status, res.limit = "TIMEOUT", which
                    res.error = (f"cell time limit of {cell_timeout:g}s (--cell-timeout) hit" if which == "cell"
                                 else f"notebook time limit of {timeout:g}s (--timeout) hit while this cell ran")
                    res.error += "; the kernel was shut down"
                    break
                except DeadKernelError as e:
                    res.status, res.error = "FAILED", f"the kernel died while this cell ran ({e})"
                    break
                except CellExecutionError as e:
                    res.status, res.error = "FAILED", _error_text(cell, e)
                    break
            if not res.ok:
                client.shutdown_kernel = "immediate"
                res.failed_cell, res.cell_source = idx, cell.source
                res.failed_count = cell.get("execution_count")
    except Exception as e:  # the kernel did not start, or nbclient failed outside a cell
        if res.ok:
            res.status = "FAILED"
            res.error = f"{type(e).__name__}: {e}"
            if cell is not None:
                res.failed_cell, res.cell_source = idx, cell.source
    res.skipped = {r: n for r, n in res.skipped.items() if n}
    res.seconds = time.monotonic() - start
    return res


def _limits(quick, cell_timeout, timeout):
    "The limits to use: the given ones, else the defaults for the mode; each must be a positive number."
    dc, dn = default_limits(quick)
    cell_timeout, timeout = (dc if cell_timeout is None else cell_timeout), (dn if timeout is None else timeout)
    for name, v in (("cell_timeout", cell_timeout), ("timeout", timeout)):
        if not isinstance(v, (int, float)) or not v > 0:
            raise NotebookInputError(f"{name} must be a positive number of seconds, got {v!r}")
    return cell_timeout, timeout


def _write_executed(nb, path, out_dir):
    "The executed notebook, outputs kept, as OUT/<name>.ipynb (the way Jupyter saves one)."
    import nbformat
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / Path(path).name
    write_atomic(target, nbformat.writes(nb) + "\n")
    return target


def check_out_dir(out_dir, paths):
    "Refuse an --out folder that holds one of the notebooks to run: an executed copy must never replace a lesson."
    if out_dir is None:
        return
    out = Path(out_dir).resolve()
    if out.exists() and not out.is_dir():
        raise NotebookInputError(f"--out {out_dir}: not a folder")
    for p in paths:
        if Path(p).resolve().parent == out:
            raise NotebookInputError(f"--out {out_dir}: holds the notebook {p}; write executed copies to "
                                     f"another folder (the runner never writes into the lessons' folder)")


def _run(plan, cell_timeout, timeout, html_dir, out_dir):
    res = _execute(plan, cell_timeout, timeout)
    if html_dir is not None:
        res.html = _write_html(res.nb, plan.path, html_dir)
    if out_dir is not None:
        res.out = _write_executed(res.nb, plan.path, out_dir)
    return res


def run_notebook(path, quick=False, params=None, cell_timeout=None, timeout=None, html_dir=None, out_dir=None):
    """Execute one notebook in a fresh kernel; never writes it back.

    `params` maps parameter names to Python literal values (`{'epochs': 2}`). The time limits default
    to `default_limits(quick)`. `html_dir` / `out_dir`: folders for an HTML page / the executed .ipynb.
    Raises `NotebookInputError` for a missing/invalid notebook, parameters that do not fit it or an
    `out_dir` holding it; a failing or slow cell is reported in the returned `NotebookResult`, not raised."""
    cell_timeout, timeout = _limits(quick, cell_timeout, timeout)
    check_out_dir(out_dir, [path])
    return _run(plan_notebook(path, quick=quick, params=params), cell_timeout, timeout, html_dir, out_dir)


def prepare(paths, quick=False, params=None, out_dir=None):
    "Collect notebooks (natural order) and plan each one, so bad input is reported before anything runs."
    found = collect_notebooks(paths)
    check_out_dir(out_dir, found)
    return [plan_notebook(p, quick=quick, params=params) for p in found]


def run_notebooks(paths, quick=False, params=None, cell_timeout=None, timeout=None, html_dir=None,
                  keep_going=False, on_result=None, plans=None, out_dir=None):
    """Run notebooks (files or folders, in natural order). Every notebook is checked before the first
    runs (`NotebookInputError` on bad input; pass `plans` from `prepare` to skip that step). Stops after
    the first failure unless `keep_going`. `on_result(result)` is called as each notebook finishes."""
    cell_timeout, timeout = _limits(quick, cell_timeout, timeout)
    results = []
    for plan in prepare(paths, quick, params, out_dir) if plans is None else plans:
        results.append(_run(plan, cell_timeout, timeout, html_dir, out_dir))
        if on_result is not None:
            on_result(results[-1])
        if not results[-1].ok and not keep_going:
            break
    return results


def summary(results, n_total, seconds):
    "`3 notebooks: 2 passed, 1 failed, 3 cells skipped in 45.1s`."
    passed = sum(r.ok for r in results)
    failed = len(results) - passed
    timed_out = sum(r.status == "TIMEOUT" for r in results)
    skipped = sum(r.n_skipped for r in results)
    text = f"{n_total} notebook{'s' if n_total != 1 else ''}: {passed} passed, {failed} failed"
    if timed_out:
        text += f" ({timed_out} timed out)"
    if n_total > len(results):
        text += f", {n_total - len(results)} not run"
    text += f", {skipped} cell{'s' if skipped != 1 else ''} skipped in {seconds:.1f}s"
    return text


def _positive(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return v


def build_parser():
    p = argparse.ArgumentParser(
        prog="run_notebook.py",
        description="Execute lesson notebooks, each in a fresh kernel (cwd = its folder, repo root on "
                    "PYTHONPATH) as Jupyter's Run All does, and report one line per notebook plus a summary. "
                    "Never writes the notebooks themselves.",
        epilog="Exit status: 0 all passed, 1 a notebook failed or timed out, 2 bad input.")
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="notebooks or folders (a folder means all its *.ipynb); run in natural order")
    p.add_argument("--quick", action="store_true",
                   help="quick mode (EXP_QUICK=1 in the kernel): the %%%%quick cell applies its values, "
                        "#slow cells are skipped")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                   help="override a parameter (repeatable; EXP_PARAMS in the kernel, applied by the %%%%quick "
                        "cell); VALUE is a Python literal, else a string")
    p.add_argument("--keep-going", action="store_true", help="run the remaining notebooks after a failure")
    p.add_argument("--cell-timeout", type=_positive, default=None, metavar="S",
                   help=f"seconds one cell may run (default {QUICK_LIMITS[0]:g} with --quick, "
                        f"{FULL_LIMITS[0]:g} for a full run)")
    p.add_argument("--timeout", type=_positive, default=None, metavar="S",
                   help=f"seconds one notebook may run, kernel start included (default {QUICK_LIMITS[1]:g} "
                        f"with --quick, {FULL_LIMITS[1]:g} for a full run)")
    p.add_argument("--html", metavar="DIR", help="write each executed notebook to DIR/<stem>.html")
    p.add_argument("--out", metavar="DIR", help="write each executed notebook, outputs kept, to DIR/<name>.ipynb "
                                                "(to present or read; never the notebooks' own folder)")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    start = time.monotonic()
    try:
        params = _parse_param_args(args.param)
        plans = prepare(args.paths, args.quick, params, args.out)
    except NotebookInputError as e:
        print(f"run_notebook.py: error: {e}", file=sys.stderr)
        return 2
    results = run_notebooks(args.paths, args.quick, params, args.cell_timeout, args.timeout, args.html,
                            args.keep_going, on_result=lambda r: print(r.report(), flush=True), plans=plans,
                            out_dir=args.out)
    print(summary(results, len(plans), time.monotonic() - start), flush=True)
    return 0 if all(r.ok for r in results) and len(results) == len(plans) else 1


if __name__ == "__main__":
    sys.exit(main())
