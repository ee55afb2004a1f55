"""Saving and reading PyTorch files: one atomic writer, one weights-only reader, one line per fault.

- `save_torch(obj, path)`: `torch.save` through `coursekit.files.atomic_writer`: the file is whole or absent.
- `cpu_state_dict(model)`: the model's state dict, detached and on the CPU, ready to save.
- `read_torch(path, keys=...)`: `torch.load(..., weights_only=True)` on the CPU, for every checkpoint and weights
  file of the course. Nothing in the file is ever run: a pickled Python object is refused (the message names
  its class). An empty file, a cut file, a file in another format (JSON, text, an image) and a dict that lacks
  the expected keys each raise a `CheckpointError` of one line naming the file, what is wrong and what to do; a
  missing file raises `MissingCheckpointError` (also a `FileNotFoundError`).
- `read_state_dict(path)`: `read_torch` for a file that must hold names -> tensors.
- `settings_digest(settings)`: 8 hex digits naming a checkpoint fit for exactly those settings.
- `check_state_dict(model, sd, where)`: names the missing, unexpected and mis-shaped keys before
  `load_state_dict` would fail with a page of them; `load_state(model, sd, where)` checks, then loads.
"""
import hashlib, json, pickle, re, zipfile
from pathlib import Path

import torch

from .files import FileFormatError, atomic_writer, read_bytes

__all__ = ['CheckpointError', 'MissingCheckpointError', 'save_torch', 'cpu_state_dict', 'read_torch', 'read_state_dict',
           'settings_digest', 'check_state_dict', 'load_state']


class CheckpointError(FileFormatError):
    "A PyTorch file that cannot be read, or does not fit; the message (one line) names the file and what to do"

class MissingCheckpointError(CheckpointError, FileNotFoundError):
    "A checkpoint that is not there: a `CheckpointError` and the `FileNotFoundError` Python users expect"


def save_torch(obj, path):
    "`torch.save(obj, path)`, atomically: `path` holds the whole new file or what it held before"
    with atomic_writer(path) as f: torch.save(obj, f)
    return Path(path)

def cpu_state_dict(model):
    "`model.state_dict()` with every tensor detached and on the CPU (a checkpoint that loads anywhere)"
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


def _some(names, n=5):
    names = [str(o) for o in names]
    return ', '.join(names[:n]) + (f' ... ({len(names)} in all)' if len(names) > n else '')

def _sniff(path, fix):
    "A `CheckpointError` if the first bytes of `path` show it is no PyTorch file, else None"
    with open(path, 'rb') as f: head = f.read(64)
    if not head: return CheckpointError(f"{path} is empty (0 bytes): a save that never finished; {fix}")
    if head.startswith(b'PK'):
        if not zipfile.is_zipfile(path):
            return CheckpointError(f"{path} is cut short or damaged (its zip directory is missing): {fix}")
        return None
    if head[:1] == b'\x80': return None                 # a pickle: torch's legacy format
    kind = 'JSON' if head.lstrip()[:1] in (b'{', b'[') else 'text' if _is_text(head) else 'another format'
    return CheckpointError(f"{path} is not a PyTorch file (it holds {kind}, starting {head[:12]!r}): {fix}")

def _is_text(head):
    try: head.decode('utf-8')
    except UnicodeDecodeError: return False
    return True

_GLOBAL = re.compile(r'GLOBAL ([\w.]+)')

def read_torch(path, keys=(), what='checkpoint', fix=''):
    """The object `torch.load` reads from `path` with `weights_only=True`, on the CPU. `keys`: names the file's
    dict must hold. Every fault is one `CheckpointError` line naming the file; `fix` says what to do about it."""
    path = Path(path)
    fix = fix or f'save the {what} again'
    if not path.is_file():                                # the one missing-file message, of files.py
        try: read_bytes(path, what=what, fix=fix)
        except FileFormatError as e: raise MissingCheckpointError(str(e)) from None
    err = _sniff(path, fix)
    if err is not None: raise err
    try: obj = torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as e:
        m = _GLOBAL.search(str(e))
        if m is None: raise CheckpointError(f"{path} is damaged or not a PyTorch file: {fix}") from None
        raise CheckpointError(f"{path} holds a pickled Python object ({m[1]}), not only tensors and plain values; it "
                              f"was refused and not run. Save a state dict (cpu_state_dict) instead") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise CheckpointError(f"{path} is cut short or damaged ({first[:80]}): {fix}") from None
    if keys:
        if not isinstance(obj, dict):
            raise CheckpointError(f"{path} is not a {what}: it holds a {type(obj).__name__}, not a dict with "
                                  f"{_some(keys)}: {fix}")
        missing = [k for k in keys if k not in obj]
        if missing:
            raise CheckpointError(f"{path} is not a {what}: it lacks {_some(missing)} (it has {_some(list(obj)) or 'nothing'}): {fix}")
    return obj

def read_state_dict(path, what='model weights file', fix=''):
    "The state dict (names -> tensors) in `path`, read by `read_torch`"
    sd = read_torch(path, what=what, fix=fix)
    if not (isinstance(sd, dict) and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in sd.items())):
        raise CheckpointError(f"{path} does not hold a state dict (a dict of names to tensors) but a "
                              f"{type(sd).__name__}: {fix or 'save one with cpu_state_dict(model)'}")
    return sd


def settings_digest(settings):
    "8 hex digits that change with any value of the dict `settings` (BLAKE2b of its JSON, keys sorted)"
    return hashlib.blake2b(json.dumps(settings, sort_keys=True).encode(), digest_size=4).hexdigest()


def check_state_dict(model, sd, where='the state dict'):
    "A one-line `CheckpointError` naming the missing, unexpected and mis-shaped keys if `sd` does not fit `model`"
    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    shapes = [f'{k} is {tuple(sd[k].shape)} in the file but {tuple(own[k].shape)} in the model'
              for k in own if k in sd and sd[k].shape != own[k].shape]
    problems = [f'{what}: {_some(ks)}' for what, ks in (('missing keys', missing), ('unexpected keys', unexpected),
                                                         ('shape mismatches', shapes)) if ks]
    if problems:
        raise CheckpointError(f"{where} does not fit this {type(model).__name__}: " + '; '.join(problems)
                              + ': load it into the model it was saved from')

def load_state(model, sd, where='the state dict'):
    "`model.load_state_dict(sd)` after `check_state_dict`; returns `model`"
    check_state_dict(model, sd, where)
    model.load_state_dict(sd)
    return model
