"""Files that are whole or absent, and reads that name the file when it is not what it should be.

Every save in the course goes through this module, so that a kill at any instant (Ctrl-C, an out-of-memory
kill, a job running out of time) leaves either the complete old content or the complete new content under
the final name, never half of one:

- `atomic_writer(path)` opens a temporary file beside `path` (same folder, so the same file system); when the
  `with` block ends normally the file is flushed to disk and renamed over `path` in one step (`os.replace`).
  `write_bytes`, `write_text` and `write_json` are the one-call forms.
- `replace_folder(dest)` gives a fresh temporary folder beside `dest` to fill; at the end it takes the place
  of `dest` in one step: an atomic exchange of the two names (Linux `renameat2(RENAME_EXCHANGE)`, macOS
  `renamex_np(RENAME_SWAP)`), then the old content is removed. Where the system cannot exchange two names, the
  old folder is first renamed aside to a `.old` name, which the next save or read of `dest` puts back if the
  process died in between.
- A temporary name is `.<name>.<pid>-<8 hex>.tmp` (or `.old`), hidden and next to the final name. The next save
  of the same name removes those whose process is no longer running (`remove_leftovers`).

Reading: `read_bytes`, `read_text`, `iter_lines` (a big file, line by line) and `read_json` raise `FileFormatError` (a `ValueError`) with one line that
names the file, says what is wrong with it and what to do: a missing file, a folder where a file should be, text
that is not UTF-8, JSON that is cut short.

Standard library only: the tools that run before anything is installed (`notebook2script.py`) use it too.
"""
import contextlib, ctypes, errno, json, os, re, shutil, stat, sys, uuid
from pathlib import Path

__all__ = ['FileFormatError', 'MissingFileError', 'temp_path', 'leftovers', 'remove_leftovers', 'atomic_writer', 'write_bytes',
           'write_text', 'write_json', 'replace_folder', 'read_bytes', 'read_text', 'iter_lines', 'read_json']


class FileFormatError(ValueError):
    "A file that is missing or is not what it should be; the message (one line) names the file and what to do"

class MissingFileError(FileFormatError, FileNotFoundError):
    "A file that is not there (or is a folder): both a `FileFormatError` and the `FileNotFoundError` Python users expect"


_LEFTOVER = re.compile(r'\.(?P<name>.+)\.(?P<pid>\d+)-[0-9a-f]{8}\.(?P<kind>tmp|old)')

def temp_path(path, kind='tmp'):
    "A fresh hidden name beside `path` for a save in progress: `.<name>.<pid>-<8 hex>.<kind>`"
    path = Path(path)
    return path.with_name(f'.{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.{kind}')

def _running(pid):
    if pid == os.getpid(): return True
    if os.name == 'nt': return True                  # os.kill(pid, 0) would send Ctrl-C there: keep, to be safe
    try: os.kill(pid, 0)
    except ProcessLookupError: return False
    except (PermissionError, OSError): return True    # someone else's process, or a system that cannot tell
    return True

def leftovers(path, kind=None):
    "The temporary files and folders a save of `path` left beside it (newest first), `kind` 'tmp' or 'old' or both"
    path = Path(path)
    if not path.parent.is_dir(): return []
    found = []
    for p in path.parent.iterdir():
        m = _LEFTOVER.fullmatch(p.name)
        if m and m['name'] == path.name and kind in (None, m['kind']): found.append((p, int(m['pid']), m['kind']))
    return sorted(found, key=lambda o: o[0].lstat().st_mtime_ns, reverse=True)

def _remove(p):
    if p.is_dir() and not p.is_symlink(): shutil.rmtree(p, ignore_errors=True)
    else: p.unlink(missing_ok=True)

def remove_leftovers(path):
    """Tidy what a killed save of `path` left: put a set-aside `.old` folder back if `path` is missing, remove the
    other temporaries of processes that are no longer running. Returns the paths removed or restored."""
    path, done = Path(path), []
    for p, pid, kind in leftovers(path):
        if _running(pid): continue                       # a save still in progress, maybe in another process
        if kind == 'old' and not os.path.lexists(path): os.rename(p, path)   # killed between the two renames
        else: _remove(p)
        done.append(p)
    return done


def _new_file_mode(path, new_mode=None):
    "The mode a save to `path` gets: that of the file it replaces, else `new_mode`, else 0o666 less the umask (as `open`)"
    if path.is_file(): return stat.S_IMODE(path.stat().st_mode)
    return new_mode if new_mode is not None else 0o666 & ~_umask()

def _check_file_target(path):
    if path.is_dir():
        raise FileFormatError(f"{path} is a folder: a file cannot be saved under that name; give a file name, "
                              f"e.g. {path/'model.pth'}")

@contextlib.contextmanager
def atomic_writer(path, mode='wb', encoding=None, new_mode=None):
    """`with atomic_writer(path) as f:` write to `f`; at the end `path` holds all of it, or (on an error) what it held.
    The file keeps the permissions of the file it replaces; a new one gets `new_mode` (default: as `open` would)."""
    if mode not in ('wb', 'w'): raise ValueError(f"atomic_writer: mode must be 'wb' or 'w', got {mode!r}")
    path = Path(path)
    _check_file_target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(path)
    tmp, file_mode = temp_path(path), _new_file_mode(path, new_mode)
    try:
        with open(tmp, mode.replace('w', 'x'), encoding=encoding if 'b' not in mode else None) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, file_mode)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)

def write_bytes(path, data, new_mode=None):
    "Write the bytes `data` to `path` atomically (a new file gets `new_mode`); returns `path`"
    with atomic_writer(path, new_mode=new_mode) as f: f.write(data)
    return Path(path)

def write_text(path, text, encoding='utf-8'):
    "Write `text` to `path` atomically (UTF-8, `\\n` line endings kept as they are); returns `path`"
    return write_bytes(path, text.encode(encoding))

def write_json(path, obj, indent=1):
    "Write `obj` as JSON (UTF-8, non-ASCII kept) to `path` atomically; returns `path`"
    return write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False) + '\n')


def _exchange(a, b):
    "Swap the names `a` and `b` (both existing) in one step; False where this system cannot"
    a, b = os.fsencode(a), os.fsencode(b)
    try: libc = ctypes.CDLL(None, use_errno=True)
    except OSError: return False
    if sys.platform.startswith('linux') and hasattr(libc, 'renameat2'):
        f, args = libc.renameat2, (-100, a, -100, b, 2)            # AT_FDCWD, RENAME_EXCHANGE
        f.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    elif sys.platform == 'darwin' and hasattr(libc, 'renamex_np'):
        f, args = libc.renamex_np, (a, b, 2)                       # RENAME_SWAP
        f.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_uint]
    else: return False
    if f(*args) == 0: return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP): return False   # file system cannot
    raise OSError(err, os.strerror(err), os.fsdecode(a), None, os.fsdecode(b))

def _swap_in(new, dest):
    "Put the folder `new` under the name `dest`; afterwards `new` holds the old content (or nothing)"
    if not os.path.lexists(dest):
        try: return os.rename(new, dest)
        except OSError as e:
            if e.errno not in (errno.EEXIST, errno.ENOTEMPTY): raise   # else: made meanwhile; exchange below
    if _exchange(new, dest): return
    old = temp_path(dest, 'old')             # the fallback: two renames; a kill between them is undone later
    os.rename(dest, old)
    os.rename(new, dest)
    os.rename(old, new)

@contextlib.contextmanager
def replace_folder(dest, keep_existing=False):
    """`with replace_folder(dest) as tmp:` fill the empty folder `tmp`; at the end it becomes `dest` in one step.
    With `keep_existing`, a `dest` that exists by then (another process finished first) is kept and `tmp` dropped."""
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise FileFormatError(f"{dest} is a file: a folder cannot be saved under that name; remove it or pick another")
    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(dest)
    tmp = temp_path(dest)
    tmp.mkdir()
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        if not (keep_existing and dest.exists()): _swap_in(tmp, dest)
    finally:
        if os.path.lexists(tmp): _remove(tmp)

def _umask():
    m = os.umask(0); os.umask(m)
    return m


def _missing(path, what, fix):
    if path.is_dir(): return MissingFileError(f"{path} is a folder, not a {what}{'; ' + fix if fix else ''}")
    note = ' (a save of it was interrupted: run that save again)' if leftovers(path) else ''
    return MissingFileError(f"{path}: no such {what}{note}{'; ' + fix if fix else ''}")

def read_bytes(path, what='file', fix=''):
    "The bytes of `path`; a one-line `FileFormatError` naming it (and `fix`, what to do) if it is missing"
    path = Path(path)
    if not path.is_file(): raise _missing(path, what, fix)
    return path.read_bytes()

def read_text(path, encoding='utf-8', what='text file', fix=''):
    "The text of `path`; a missing file or bytes that are not `encoding` raise one line naming the file and the byte"
    path, data = Path(path), read_bytes(path, what, fix)
    try: return data.decode(encoding)
    except UnicodeDecodeError as e:
        raise FileFormatError(f"{path} is not valid {encoding} text (byte {e.start:,}: "
                              f"{data[e.start:e.start + 4]!r}): {fix or f're-save it as {encoding}'}") from None

def iter_lines(path, encoding='utf-8', what='text file', fix=''):
    "The lines of `path` (without their line ends), read as they are needed; a line that is not `encoding` is named"
    path = Path(path)
    if not path.is_file(): raise _missing(path, what, fix)
    with open(path, 'rb') as f:
        for i, raw in enumerate(f, start=1):
            try: yield raw.decode(encoding).rstrip('\r\n')
            except UnicodeDecodeError as e:
                raise FileFormatError(f"{path} line {i:,} is not valid {encoding} text (byte {e.start} of the line: "
                                      f"{raw[e.start:e.start + 4]!r}): {fix or f're-save it as {encoding}'}") from None

def read_json(path, what='JSON file', fix=''):
    "The JSON value in `path`; cut, empty or non-JSON content raises one line naming the file and where it broke"
    path = Path(path)
    text = read_text(path, what=what, fix=fix)
    try: return json.loads(text)
    except json.JSONDecodeError as e:
        how = 'is empty' if not text.strip() else \
              'is cut short' if e.pos >= len(text.rstrip()) else f'is not valid JSON ({e.msg}, line {e.lineno} column {e.colno})'
        raise FileFormatError(f"{path} {how}: {fix or f'it is not a complete {what}; write it again'}") from None
