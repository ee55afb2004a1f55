"""Tests for run_notebook.py, on tiny notebooks built in tmp_path.

Every kernel start costs one to three seconds, so each notebook here checks several things at once.
"""
import json
import re
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import run_notebook as rn  # noqa: E402
from nbio import natural_key  # noqa: E402
from run_notebook import (NotebookInputError, collect_notebooks, main,  # noqa: E402
                          parse_param_value, run_notebook, run_notebooks)


def cuda_present():
    try:
        import torch
        return torch.cuda.is_available()
    except ImportError:
        return False


def code(src, *tags):
    c = nbformat.v4.new_code_cell(src)
    if tags:
        c.metadata["tags"] = list(tags)
    return c


def raw(src, *tags):
    c = nbformat.v4.new_raw_cell(src)
    if tags:
        c.metadata["tags"] = list(tags)
    return c


def md(src):
    return nbformat.v4.new_markdown_cell(src)


def write_nb(path, cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                   "language_info": {"name": "python"}}
    nb.cells = cells
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def params_cell(src="epochs = 8   # full lesson\nname = 'full'\nlr = 0.1\n"):
    return code(src, "parameters")


def quick(src):
    "The quick cell: a code cell tagged 'quick' whose first line is the %%quick magic."
    return code("%%quick\n" + src, "quick")


LOAD_EXT = "%load_ext coursekit"


# ----------------------------------------------------------------------------- no kernel needed

def test_natural_key_and_collect(tmp_path):
    names = ["10b_c.ipynb", "10_b.ipynb", "09c_a.ipynb", "2_x.ipynb", "09_z.ipynb", "11_d.ipynb"]
    assert sorted(names, key=natural_key) == ["2_x.ipynb", "09_z.ipynb", "09c_a.ipynb", "10_b.ipynb",
                                              "10b_c.ipynb", "11_d.ipynb"]
    for n in names:
        write_nb(tmp_path / n, [code("1")])
    (tmp_path / "notes.txt").write_text("not a notebook")
    (tmp_path / ".ipynb_checkpoints").mkdir()
    write_nb(tmp_path / ".ipynb_checkpoints" / "10_b-checkpoint.ipynb", [code("1")])
    got = [p.name for p in collect_notebooks([tmp_path])]
    assert got == ["2_x.ipynb", "09_z.ipynb", "09c_a.ipynb", "10_b.ipynb", "10b_c.ipynb", "11_d.ipynb"]
    # files given explicitly are sorted too, and given twice run once
    got = [p.name for p in collect_notebooks([tmp_path / "10b_c.ipynb", tmp_path / "09c_a.ipynb",
                                              tmp_path / "10_b.ipynb", tmp_path / "10b_c.ipynb"])]
    assert got == ["09c_a.ipynb", "10_b.ipynb", "10b_c.ipynb"]


def test_parse_param_value():
    assert parse_param_value("3") == 3
    assert parse_param_value("1e-3") == 0.001
    assert parse_param_value("[1, 2]") == [1, 2]
    assert parse_param_value("True") is True
    assert parse_param_value("'quoted'") == "quoted"
    assert parse_param_value("hello") == "hello"
    assert parse_param_value("resnet-18") == "resnet-18"
    assert parse_param_value("") == ""
    assert rn._parse_param_args(["epochs=2", "arch=xresnet", "eq=a=b"]) == {
        "epochs": 2, "arch": "xresnet", "eq": "a=b"}
    with pytest.raises(NotebookInputError, match="'epochs'"):
        rn._parse_param_args(["epochs"])
    with pytest.raises(NotebookInputError, match="2x=1"):
        rn._parse_param_args(["2x=1"])


def test_param_errors(tmp_path):
    ext = code(LOAD_EXT)
    quick_bad = write_nb(tmp_path / "01_q.ipynb", [
        ext, params_cell(), quick("epochs = 1\nbatch_size = 4"), code("print(epochs)")])
    with pytest.raises(NotebookInputError, match=r"01_q\.ipynb.*'batch_size'"):
        run_notebook(quick_bad, quick=True)
    # the quick cell is checked even in a full run: a stale name shows up there too
    with pytest.raises(NotebookInputError, match="batch_size"):
        run_notebook(quick_bad)

    good = write_nb(tmp_path / "02_g.ipynb", [ext, params_cell(), quick("epochs = 1"), code("1")])
    with pytest.raises(NotebookInputError, match=r"02_g\.ipynb.*-p bs"):
        run_notebook(good, quick=True, params={"bs": 64})
    with pytest.raises(NotebookInputError, match="not a Python literal"):
        run_notebook(good, params={"epochs": object()})

    nop = write_nb(tmp_path / "03_n.ipynb", [code("print(1)")])
    with pytest.raises(NotebookInputError, match=r"03_n\.ipynb.*no cell tagged 'parameters'"):
        run_notebook(nop, params={"epochs": 1})

    two = write_nb(tmp_path / "04_t.ipynb", [ext, params_cell(), params_cell("x = 1")])
    with pytest.raises(NotebookInputError, match=r"04_t\.ipynb.*2 cells tagged 'parameters'"):
        run_notebook(two, quick=True)
    twoq = write_nb(tmp_path / "05_t.ipynb", [ext, params_cell(), quick("epochs = 1"), quick("lr = 1")])
    with pytest.raises(NotebookInputError, match=r"05_t\.ipynb.*2 quick cells"):
        run_notebook(twoq, quick=True)
    notsimple = write_nb(tmp_path / "06_s.ipynb", [ext, params_cell("epochs = 8\nprint(epochs)"), quick("")])
    with pytest.raises(NotebookInputError, match=r"06_s\.ipynb.*line 2.*print\(epochs\)"):
        run_notebook(notsimple, quick=True)
    orphan_quick = write_nb(tmp_path / "07_o.ipynb", [ext, code("x = 1"), quick("x = 2")])
    with pytest.raises(NotebookInputError, match=r"07_o\.ipynb.*no cell is tagged 'parameters'"):
        run_notebook(orphan_quick, quick=True)
    # the old form, a raw cell the runner injected, is refused with what to do instead
    old_raw = write_nb(tmp_path / "08_r.ipynb", [ext, params_cell(), raw("epochs = 1", "quick")])
    with pytest.raises(NotebookInputError, match=r"08_r\.ipynb: cell 2 is tagged 'quick' but is not a code cell whose first line is %%quick"):
        run_notebook(old_raw, quick=True)
    untagged = write_nb(tmp_path / "09_u.ipynb", [ext, params_cell(), code("%%quick\nepochs = 1")])
    with pytest.raises(NotebookInputError, match=r"09_u\.ipynb: cell 2 starts with %%quick but is not tagged"):
        run_notebook(untagged)
    apart = write_nb(tmp_path / "10_a.ipynb", [ext, params_cell(), code("y = 1"), quick("epochs = 1")])
    with pytest.raises(NotebookInputError, match=r"10_a\.ipynb: the parameters cell 1 must be followed by its %%quick cell"):
        run_notebook(apart)
    no_quick = write_nb(tmp_path / "11_n.ipynb", [ext, params_cell(), code("y = 1")])
    with pytest.raises(NotebookInputError, match=r"11_n\.ipynb: the parameters cell 1 must be followed"):
        run_notebook(no_quick, params={"epochs": 2})
    # flags and the quick cell mean nothing without the extension: refused before anything runs
    no_ext = write_nb(tmp_path / "12_x.ipynb", [code("x = 1"), code("#slow\nx = 2"), ext])
    with pytest.raises(NotebookInputError, match=r"12_x\.ipynb: cell 1 is a slow cell, but no cell before it runs `%load_ext coursekit`"):
        run_notebook(no_ext)
    no_ext_q = write_nb(tmp_path / "13_x.ipynb", [params_cell(), quick("epochs = 1")])
    with pytest.raises(NotebookInputError, match=r"13_x\.ipynb: cell 1 is the quick cell, but no cell before it"):
        run_notebook(no_ext_q)

    # every notebook is checked before the first one runs: nothing starts when one is bad
    with pytest.raises(NotebookInputError, match="batch_size"):
        run_notebooks([good, quick_bad], quick=True)


def test_bad_input_cli(tmp_path, capsys):
    missing = tmp_path / "nope.ipynb"
    assert main([str(missing)]) == 2
    assert "nope.ipynb" in capsys.readouterr().err
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{ this is not json")
    assert main([str(broken)]) == 2
    err = capsys.readouterr().err
    assert "broken.ipynb" in err and "JSON" in err
    notnb = tmp_path / "list.ipynb"
    notnb.write_text("[1, 2, 3]")
    assert main([str(notnb)]) == 2
    assert "list.ipynb" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([str(empty)]) == 2
    assert "empty" in capsys.readouterr().err
    ok = write_nb(tmp_path / "ok.ipynb", [code("1")])
    assert main(["-p", "epochs", str(ok)]) == 2
    assert "-p 'epochs'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["--cell-timeout", "0", str(ok)])
    assert e.value.code == 2


def test_summary_text():
    r = [rn.NotebookResult(Path("a.ipynb"), skipped={"slow": 2}),
         rn.NotebookResult(Path("b.ipynb"), status="FAILED", skipped={"cuda": 1})]
    assert rn.summary(r, 3, 45.12) == "3 notebooks: 1 passed, 1 failed, 1 not run, 3 cells skipped in 45.1s"
    r = [rn.NotebookResult(Path("a.ipynb"), cells_run=41, seconds=12.34, skipped={"slow": 1, "cuda": 1})]
    assert r[0].line() == "ok        12.3s  a  (41 cells, 2 skipped: 1 slow, 1 cuda)"
    assert rn.summary(r, 1, 1.0) == "1 notebook: 1 passed, 0 failed, 2 cells skipped in 1.0s"
    assert rn.summary([], 2, 0.5) == "2 notebooks: 0 passed, 0 failed, 2 not run, 0 cells skipped in 0.5s"


# ----------------------------------------------------------------------------- running kernels

def flags_notebook(path):
    "The extension, parameters + quick cells, flagged cells; records what ran into seen.json (cwd)."
    return write_nb(path, [
        md("# 01: flags"),                                                              # 0
        code(LOAD_EXT),                                                                 # 1
        code("import json, os, sys\nimport matplotlib.pyplot as plt"),                  # 2
        params_cell(),                                                                  # 3
        quick("epochs = 1  # quick\nlr = 0.5"),                                         # 4
        code("#slow\nopen('ran_slow', 'w').close()"),                                   # 5
        code("# CUDA\nopen('ran_cuda', 'w').close()"),                                  # 6
        code("#Slow #cuda\nopen('ran_slow_cuda', 'w').close()"),                        # 7
        md("The record:"),                                                              # 8
        code("import exp\n"
             "seen = dict(epochs=epochs, name=name, lr=lr, cwd=os.getcwd(), exp=exp.__file__,\n"
             "            python=sys.executable, backend=plt.get_backend(),\n"
             "            omp=os.environ.get('OMP_WAIT_POLICY'), threads=os.environ.get('OMP_NUM_THREADS'))\n"
             "json.dump(seen, open('seen.json', 'w'))\n"
             "print('values', epochs, name, lr)\n"
             "plt.plot([0, 1], [1, 0]); plt.show()"),                                   # 9
    ])


def stream_text(cell):
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def test_quick_params_flags_cwd_html_out(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)       # tests/conftest.py sets both for this process
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("EXP_PARAMS", "{'name': 'from the caller'}")      # never leaks into the kernel
    nb_path = flags_notebook(tmp_path / "nbs" / "01_flags.ipynb")
    before_nb = nb_path.read_bytes()
    html, out = tmp_path / "html", tmp_path / "executed"
    rc = main(["--quick", "-p", "name=hello", "-p", "lr=1e-3", "--html", str(html), "--out", str(out), str(nb_path)])
    stdout = capsys.readouterr().out
    assert rc == 0, stdout
    nbs = nb_path.parent
    seen = json.loads((nbs / "seen.json").read_text())  # written with a relative path: cwd is nbs/
    assert seen["epochs"] == 1 and seen["lr"] == 0.001 and seen["name"] == "hello"
    assert Path(seen["cwd"]).resolve() == nbs.resolve()
    assert Path(seen["exp"]).resolve() == (ROOT / "exp" / "__init__.py").resolve()
    assert Path(seen["python"]).resolve() == Path(sys.executable).resolve()
    assert "inline" in seen["backend"] and (seen["omp"], seen["threads"]) == ("PASSIVE", "1")   # rn.thread_env
    cuda = cuda_present()
    assert not (nbs / "ran_slow").exists() and not (nbs / "ran_slow_cuda").exists()
    assert (nbs / "ran_cuda").exists() == cuda
    # cell 7 (#Slow #cuda) counts as slow in quick mode
    skipped = "2 skipped: 2 slow" if cuda else "3 skipped: 2 slow, 1 cuda"
    cells = 6 if cuda else 5                      # the code cells that ran their own code
    assert f"01_flags  ({cells} cells, {skipped})" in stdout, stdout
    assert stdout.splitlines()[0].startswith("ok ")
    assert "1 notebook: 1 passed, 0 failed, " + skipped.split(":")[0].split()[0] + " cells skipped" in stdout
    text = (html / "01_flags.html").read_text()
    assert "values 1 hello 0.001" in text and "image/png" in text
    # the quick cell says what it changed; skipped cells say why (printed by the kernel's extension)
    assert "quick mode is on (EXP_QUICK=1)" in text and "8 -&gt; 1" in text and "(EXP_PARAMS)" in text
    assert "skipped: a #slow cell, and quick mode is on (EXP_QUICK=1)" in text
    assert text.count("skipped: a #") == (2 if cuda else 3)
    assert [p.name for p in html.iterdir()] == ["01_flags.html"]       # no temp file left behind
    # --out: the executed notebook with its outputs, as Jupyter would save it
    assert [p.name for p in out.iterdir()] == ["01_flags.ipynb"]
    executed = nbformat.read(str(out / "01_flags.ipynb"), as_version=4)
    assert "epochs  8 -> 1" in stream_text(executed.cells[4]) and "values 1 hello" in stream_text(executed.cells[9])
    assert stream_text(executed.cells[5]).startswith("skipped: a #slow cell")
    assert [c.source for c in executed.cells] == [c.source for c in nbformat.reads(before_nb.decode(), as_version=4).cells]
    assert nb_path.read_bytes() == before_nb                            # notebook never written

    # a full run: the lesson values, #slow cells run, the quick cell changes nothing
    for f in nbs.glob("ran_*"):
        f.unlink()
    res = run_notebook(nb_path, html_dir=html)
    assert res.ok, res.report()
    assert res.env == {"EXP_QUICK": "0"} and len(res.nb.cells) == 10
    assert stream_text(res.nb.cells[4]).startswith("quick mode is off") and "->" not in stream_text(res.nb.cells[4])
    text = (html / "01_flags.html").read_text()
    assert "values 8 full 0.1" in text and "skipped: a #slow cell" not in text
    seen = json.loads((nbs / "seen.json").read_text())
    assert (seen["epochs"], seen["name"], seen["lr"]) == (8, "full", 0.1)
    assert (seen["omp"], seen["threads"]) == ("PASSIVE", None)        # a full run keeps every core
    assert (nbs / "ran_slow").exists()
    assert (nbs / "ran_slow_cuda").exists() == cuda
    assert res.skipped == ({} if cuda else {"cuda": 2})
    assert res.cells_run == (8 if cuda else 6)
    assert nb_path.read_bytes() == before_nb

    # --out never writes into the notebooks' own folder
    assert main(["--quick", "--out", str(nbs), str(nb_path)]) == 2
    assert "--out" in capsys.readouterr().err and nb_path.read_bytes() == before_nb


def failing_notebook(path):
    return write_nb(path, [
        md("# 10: fails"),                                          # 0
        code(LOAD_EXT),                                             # 1
        params_cell("n = 10  # full\n"),                            # 2
        quick("n = 3"),                                             # 3
        md("Now the failure:"),                                     # 4
        code("xs = list(range(n))\nprint('n is', n)"),              # 5
        code("def boom(v):\n    return 1 / v\n\nboom(xs[0])"),      # 6: ZeroDivisionError
        code("open('after_failure', 'w').close()"),                 # 7
    ])


def test_failure_reports_file_cell_index(tmp_path):
    bad = failing_notebook(tmp_path / "10_b.ipynb")
    nxt = write_nb(tmp_path / "10b_c.ipynb", [code("open('ran_10b', 'w').close()")])
    results = run_notebooks([nxt, bad], quick=True)      # natural order: 10_b first; stops there
    assert len(results) == 1
    res = results[0]
    assert res.status == "FAILED" and not res.ok
    assert res.failed_cell == 6                          # index in the file (markdown cells count)
    assert res.failed_count == 5                         # code cells 1, 2, 3, 5, 6: the traceback's In[5]
    assert "Cell In[5]" in res.error
    assert res.cell_source.startswith("def boom(v):")
    assert "ZeroDivisionError" in res.error and "boom" in res.error
    report = res.report()
    assert "10_b.ipynb, cell 6 (In [5] in the traceback)" in report and "def boom(v):" in report and "ZeroDivisionError" in report
    assert "\x1b[" not in report
    assert not (tmp_path / "after_failure").exists()
    assert not (tmp_path / "ran_10b").exists()
    assert "n is 3" in res.nb.cells[5].outputs[0]["text"]


def test_cli_folder_keep_going_html(tmp_path):
    folder = tmp_path / "nbs"
    write_nb(folder / "10b_c.ipynb", [code("print('third')")])
    failing_notebook(folder / "10_b.ipynb")
    write_nb(folder / "09c_a.ipynb", [code(LOAD_EXT), code("#slow\nprint('never')"), code("print('first')")])
    html = tmp_path / "html"
    proc = subprocess.run([sys.executable, str(ROOT / "run_notebook.py"), "--quick", "--keep-going",
                           "--html", str(html), str(folder)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    lines = [l for l in out.splitlines() if re.match(r"(ok|FAILED|TIMEOUT) +[\d.]+s  ", l)]
    assert [l.split()[2] for l in lines] == ["09c_a", "10_b", "10b_c"]
    assert lines[0].startswith("ok ") and "(2 cells, 1 skipped: 1 slow)" in lines[0]
    assert lines[1].startswith("FAILED ") and lines[2].startswith("ok ")
    assert "10_b.ipynb, cell 6" in out and "def boom(v):" in out and "ZeroDivisionError" in out
    assert "\x1b[" not in out
    assert out.strip().splitlines()[-1].startswith("3 notebooks: 2 passed, 1 failed, 1 cell skipped in ")
    assert sorted(p.name for p in html.iterdir()) == ["09c_a.html", "10_b.html", "10b_c.html"]
    assert "n is 3" in (html / "10_b.html").read_text()          # failed notebooks rendered up to the failure
    assert "third" in (html / "10b_c.html").read_text()
    assert "never" not in (html / "09c_a.html").read_text().split("skipped: a #slow cell")[1]


def test_timeouts_name_the_cell_and_stop_the_kernel(tmp_path):
    def alive(pid):
        try:
            state = [l for l in open(f"/proc/{pid}/status") if l.startswith("State")][0]
        except (FileNotFoundError, IndexError):
            return False
        return "Z" not in state.split()[1]

    nb_path = write_nb(tmp_path / "20_t.ipynb", [
        code("import os, time\nopen('pid', 'w').write(str(os.getpid()))"),   # 0
        code("time.sleep(0.2)"),                                              # 1
        code("print('sleeping')\ntime.sleep(20)"),                            # 2
        code("open('after', 'w').close()"),                                   # 3
    ])
    res = run_notebook(nb_path, cell_timeout=2)
    assert res.status == "TIMEOUT" and res.limit == "cell"
    assert res.failed_cell == 2 and "time.sleep(20)" in res.cell_source
    report = res.report()
    assert "TIMEOUT in" in report and "cell 2" in report and "--cell-timeout" in report
    assert res.seconds < 15
    assert not (tmp_path / "after").exists()
    if sys.platform.startswith("linux"):
        assert not alive(int((tmp_path / "pid").read_text()))

    res = run_notebook(nb_path, cell_timeout=600, timeout=6)
    assert res.status == "TIMEOUT" and res.limit == "notebook"
    assert res.failed_cell == 2 and "--timeout" in res.report()
    assert "sleeping" in res.nb.cells[2].outputs[0]["text"]
    assert 5 < res.seconds < 15


# ----------------------------------------------------------------------------- default time limits

def recorded_times(text):
    """Wall times in seconds recorded in RESULTS.md's tables: {notebook: [row total, ...]}.

    A row's total adds every `N s` in its wall-time column (several fits of one row may share a cell),
    so it bounds the longest cell of that row from above; `ms`/`µs` timings are not seconds."""
    out, col = {}, None
    for line in text.splitlines():
        if not line.startswith("|"):
            col = None
            continue
        cells = [c.strip() for c in line.replace("\\|", "/").strip("|").split("|")]
        if "wall time" in cells:
            col = cells.index("wall time")
            continue
        if col is None or set(cells[0]) <= set("-: "):
            continue
        secs = [float(n.replace(",", "")) for n in re.findall(r"(?<![\w.,])(\d[\d,]*(?:\.\d+)?) s\b", cells[col])]
        if secs:
            out.setdefault(cells[0], []).append(sum(secs))
    return out


def test_recorded_times_parser():
    table = ("| notebook | what | wall time |\n|---|---|---|\n| 10b_x | four fits \\| a | 809 s / 1,801 s |\n"
             "| 10b_x | again | 1.5 ms / 3 s (notebook) |\n| 01_y | tiny | 168 µs |\n\ntext 99 s\n")
    assert recorded_times(table) == {"10b_x": [2610.0, 3.0]}


def test_full_run_defaults_cover_recorded_times():
    """`python run_notebook.py nbs/` must not cut a full lesson: the default limits of a full run are at
    least twice the longest cell and the longest notebook recorded in RESULTS.md (a slower machine)."""
    times = recorded_times((ROOT / "RESULTS.md").read_text(encoding="utf-8"))
    assert len(times) >= 10 and "10b_mixup_label_smoothing" in times      # the parser still finds the tables
    longest_cell = max(max(v) for v in times.values())
    longest_notebook = max(sum(v) for v in times.values())
    assert longest_cell >= 3000                                            # 10b's four fits, 3,153 s
    cell, notebook = rn.default_limits(quick=False)
    assert cell >= 2 * longest_cell, (cell, longest_cell)
    assert notebook >= 2 * longest_notebook, (notebook, longest_notebook)
    assert rn.default_limits(quick=True) == (600, 1800)                    # quick mode / CI keep theirs
    args = rn.build_parser().parse_args(["nbs"])
    assert (args.cell_timeout, args.timeout) == (None, None)               # resolved per mode


# ----------------------------------------------------------------------------- the README's commands

def readme_commands():
    "Every `python run_notebook.py ...` command of the README (code blocks and inline), as argument lists."
    import shlex
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    cmds = []
    lines = [l for block in re.findall(r"```bash\n(.*?)```", text, re.S) for l in block.splitlines()]
    lines += re.findall(r"(?<!`)`(python run_notebook\.py [^`]*)`", text)       # inline, as in the tables
    for line in lines:
        for part in line.split("&&"):
            words = shlex.split(part, comments=True)
            if words[:2] == ["python", "run_notebook.py"]:
                cmds.append(words[2:])
    return cmds


def _expand(paths):
    import glob
    out = []
    for p in paths:
        hits = sorted(glob.glob(str(ROOT / p))) if any(c in p for c in "*?[") else [str(ROOT / p)]
        assert hits, f"README: {p} matches nothing"
        out += hits
    return out


def test_readme_commands_resolve():
    """Every README command parses, names notebooks that exist and parameters they have."""
    cmds = readme_commands()
    assert len(cmds) >= 5 and any("--quick" in c for c in cmds)
    for words in cmds:
        args = rn.build_parser().parse_args(words)
        params = rn._parse_param_args(args.param)
        plans = rn.prepare(_expand(args.paths), args.quick, params)
        assert plans, words


def test_readme_single_lesson_quick_command_runs(tmp_path):
    """The first quick-mode command for one notebook in the README runs for real and passes."""
    single = [w for w in readme_commands() if "--quick" in w and len(w) and w[-1].endswith(".ipynb")
              and "--html" not in w]
    assert single, "the README should show a quick run of one lesson"
    words = single[0]
    args = rn.build_parser().parse_args(words)
    res = rn.run_notebooks(_expand(args.paths), quick=True, params=rn._parse_param_args(args.param))
    assert len(res) == 1 and res[0].ok, res[0].report()
