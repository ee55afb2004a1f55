"""Support code that lives below the lessons: hand-written, tested, and never star-imported by a lesson.

- `coursekit.notebook`: the IPython extension every lesson loads in its first cell (`%load_ext coursekit`).
  It runs the `#slow` / `#cuda` cell flags and quick mode (`EXP_QUICK=1`, the `%%quick` cell) the same
  way in Jupyter, in `run_notebook.py` and in the tests.
- `coursekit.files`: saves that are whole or absent (`atomic_writer`, `write_text`, `write_json`, and
  `replace_folder`, which exchanges a finished folder with the old one in one step) and reads whose every fault
  is one line naming the file (`read_text`, `iter_lines`, `read_json`). Standard library only.
- `coursekit.checkpoint`: every PyTorch file: `save_torch` (atomic), `read_torch` (`weights_only=True`; pickled
  objects refused, cut, empty and foreign files and missing keys named), `check_state_dict`, `settings_digest`.
- `coursekit.datasets`: the course's datasets (`URLs`, `download_data`, `untar_data`, ...): one data folder, a
  verified local mirror first, downloads checked for length and SHA-256, archives extracted with every member
  checked, all written through `coursekit.files`. Lesson 00 imports its names and exports them to the chain
  (`from coursekit.datasets import untar_data, ...` in an export cell is exported; see CONTRIBUTING.md).

Importing `coursekit` imports nothing else; IPython is needed only when the extension is loaded, torch only by
`coursekit.checkpoint`. Lessons, tools and scripts save and load only through this package (CONTRIBUTING.md).
"""

__all__ = ['load_ipython_extension', 'unload_ipython_extension']


def load_ipython_extension(ip):
    "`%load_ext coursekit`: see `coursekit.notebook`."
    from .notebook import load_ipython_extension as load
    load(ip)


def unload_ipython_extension(ip):
    from .notebook import unload_ipython_extension as unload
    unload(ip)
