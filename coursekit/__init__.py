"""Support code that lives below the lessons: hand-written, tested, and never star-imported by a lesson.

- `coursekit.notebook`: the IPython extension every lesson loads in its first cell (`%load_ext coursekit`).
  It runs the `#slow` / `#cuda` cell flags and quick mode (`EXP_QUICK=1`, the `%%quick` cell) the same
  way in Jupyter, in `run_notebook.py` and in the tests.
- `coursekit.datasets`: the course's datasets (`URLs`, `download_data`, `untar_data`, ...): one data folder, a
  verified local mirror first, downloads checked for length and SHA-256, archives extracted with every member
  checked, all written through `coursekit.files`. Lesson 00 imports its names and exports them to the chain
  (`from coursekit.datasets import untar_data, ...` in an export cell is exported; see CONTRIBUTING.md).

Importing `coursekit` imports nothing else; IPython is needed only when the extension is loaded.
"""

__all__ = ['load_ipython_extension', 'unload_ipython_extension']


def load_ipython_extension(ip):
    "`%load_ext coursekit`: see `coursekit.notebook`."
    from .notebook import load_ipython_extension as load
    load(ip)


def unload_ipython_extension(ip):
    from .notebook import unload_ipython_extension as unload
    unload(ip)
