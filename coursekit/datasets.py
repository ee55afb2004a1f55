"""The course's datasets: where they live, how they are fetched, verified and unpacked.

Lesson 00 imports the public names below (`from coursekit.datasets import URLs, untar_data, ...`) and exports
them, so a lesson calls `untar_data(URLs.IMAGENETTE_160)` from `exp.nb_00` like any other name of the chain.

- **One data folder**: `data_dir()` is `$EXP_DATA`, else `data/` at the repository root (`repo_root()`).
- **Fetch once**: `download_data(url)` (a single file) and `untar_data(url)` (an archive, extracted) return at
  once when the file or folder is already there.
- **A local mirror first**: `$EXP_MIRROR` names a folder of canonical file names and a `SHA256SUMS` file; a file
  taken from it is always verified against that list, and a file the list lacks is refused.
- **Never a bad file under the final name**: a download is written through `coursekit.files.atomic_writer` with a
  progress bar; it becomes the file only when its length is what the server announced and its SHA-256 is the
  known one (the registry `DATASETS`, or the caller's). A cut transfer, a wrong checksum or a kill keeps nothing.
  `check_sha256` verifies a file again before it is trusted (MNIST is a pickle: unpickling runs code).
- **Safe extraction**: every member of a tar or zip is checked before it is written (no absolute path, no `..`,
  nothing written through a link, links pointing inside, only files, folders and links), and the links of the
  finished tree are resolved once more. The archive is extracted into a scratch folder, and its content takes the
  place of the dataset folder through `coursekit.files.replace_folder`: at every instant the dataset folder is
  absent, complete and old, or complete and new.

Every fault is a `DatasetError` whose message names the file and says what to do.
"""
import hashlib, http.client, importlib.util, os, re, shutil, stat, tarfile, urllib.error, urllib.parse
import urllib.request, zipfile, zlib
from dataclasses import dataclass
from pathlib import Path

from fastprogress.fastprogress import progress_bar

from .files import atomic_writer, replace_folder, temp_path

__all__ = ['URLs', 'DatasetInfo', 'DATASETS', 'DatasetError', 'repo_root', 'data_dir', 'mirror_dir', 'url_filename',
           'file_sha256', 'mirror_checksum', 'DOWNLOAD_TIMEOUT', 'download_data', 'check_sha256', 'ARCHIVE_EXTS',
           'archive_stem', 'extract_archive', 'untar_data']


class URLs:
    "Canonical download addresses of the datasets used in the course"
    # The classic deeplearning.net host is gone since 2020; this is the same classic file.
    MNIST          = 'https://github.com/mnielsen/neural-networks-and-deep-learning/raw/master/data/mnist.pkl.gz'
    IMAGENETTE_160 = 'https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-160.tgz'
    IMAGEWOOF_160  = 'https://s3.amazonaws.com/fast-ai-imageclas/imagewoof2-160.tgz'
    PETS           = 'https://s3.amazonaws.com/fast-ai-imageclas/oxford-iiit-pet.tgz'
    IMDB           = 'https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz'
    IMDB_SAMPLE    = 'https://s3.amazonaws.com/fast-ai-sample/imdb_sample.tgz'
    WIKITEXT_2     = 'https://wikitext.smerity.com/wikitext-2-v1.zip'
    WIKITEXT_103   = 'https://wikitext.smerity.com/wikitext-103-v1.zip'
    FRA_ENG        = 'https://www.manythings.org/anki/fra-eng.zip'


@dataclass(frozen=True)
class DatasetInfo:
    "What a dataset URL holds"
    name: str            # human-readable name
    folder: str | None   # the folder its archive extracts to; None for a single file
    sha256: str | None = None   # checksum of the canonical file, only where really known
    note: str = ''

# Only MNIST's canonical checksum is known (the test mirror's SHA256SUMS lists the same file). The others stay
# None rather than invented: an invented checksum would turn every correct download into an error.
DATASETS = {
    URLs.MNIST: DatasetInfo('MNIST', None, sha256='83390dc2e85a0f578a4a61ef919e56b43ef760d05511117686cfc2ec41965672',
                            note='gzipped pickle ((x_train, y_train), (x_valid, y_valid), '
                            '(x_test, y_test)); 50,000/10,000/10,000 flattened 28x28 images, floats in [0, 1)'),
    URLs.IMAGENETTE_160: DatasetInfo('Imagenette (160 px)', 'imagenette2-160',
                                     note='10 easy ImageNet classes, {train,val}/<wnid>/*.JPEG; 9,469 / 3,925 images'),
    URLs.IMAGEWOOF_160: DatasetInfo('Imagewoof (160 px)', 'imagewoof2-160',
                                    note='10 dog breeds from ImageNet, {train,val}/<wnid>/*.JPEG'),
    URLs.PETS: DatasetInfo('Oxford-IIIT Pets', 'oxford-iiit-pet',
                           note='37 cat and dog breeds; images/ with the breed in each file name'),
    URLs.IMDB: DatasetInfo('IMDB movie reviews', 'aclImdb',
                           note='{train,test}/{pos,neg}: 25,000 labelled reviews each; train/unsup: 50,000'),
    URLs.IMDB_SAMPLE: DatasetInfo('IMDB sample', 'imdb_sample',
                                  note='texts.csv: 1,000 reviews, columns label, text, is_valid'),
    URLs.WIKITEXT_2: DatasetInfo('WikiText-2', 'wikitext-2',
                                 note='wiki.{train,valid,test}.tokens: ~2M tokens of Wikipedia articles'),
    URLs.WIKITEXT_103: DatasetInfo('WikiText-103', 'wikitext-103',
                                   note='wiki.{train,valid,test}.tokens: ~103M tokens of Wikipedia articles'),
    URLs.FRA_ENG: DatasetInfo('Tatoeba English-French pairs', 'fra-eng',
                              note='fra.txt: one English<TAB>French pair a line (the canonical export adds an '
                              'attribution column), plus _about.txt; extracts with no top folder'),
}


class DatasetError(Exception):
    "A dataset could not be fetched, verified or extracted; the message says which file and what to do"


def _holds_exp(d): return (Path(d)/'exp'/'__init__.py').is_file()

def repo_root():
    "The repository root: the folder that holds the `exp` package (and `coursekit/`, this module's package)"
    beside = Path(__file__).resolve().parent.parent      # coursekit/ sits beside exp/ in a checkout
    if _holds_exp(beside): return beside
    cwd = Path.cwd().resolve()
    for d in (cwd, *cwd.parents):                        # e.g. a notebook running in nbs/ of its repository
        if _holds_exp(d): return d
    spec = importlib.util.find_spec('exp')
    if spec is not None and spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0]).resolve().parent
    return cwd.parent

def data_dir():
    "The folder datasets live in: $EXP_DATA if set, else <repo root>/data"
    d = os.environ.get('EXP_DATA')
    return Path(d).expanduser() if d else repo_root()/'data'

def mirror_dir():
    "The local mirror folder named by $EXP_MIRROR, or None when it is not set"
    m = os.environ.get('EXP_MIRROR')
    if not m: return None
    m = Path(m).expanduser()
    if not m.is_dir(): raise DatasetError(f"EXP_MIRROR is set to {m}, which is not a folder; fix it or unset it")
    return m


# ---------------------------------------------------------------- downloading, verifying, copying

def url_filename(url):
    "The file name at the end of `url` (`.../data/mnist.pkl.gz` -> `mnist.pkl.gz`)"
    if not isinstance(url, str): raise DatasetError(f"url must be a string, got {type(url).__name__}: {url!r}")
    name = Path(urllib.parse.unquote(urllib.parse.urlparse(url).path)).name
    if not name: raise DatasetError(f"cannot tell a file name from the URL {url!r}")
    return name

def file_sha256(path):
    "SHA-256 hex digest of the file at `path`"
    with open(path, 'rb') as f: return hashlib.file_digest(f, 'sha256').hexdigest()

def _mismatch(fname, source, expected, got):
    return DatasetError(f"checksum mismatch for {fname} from {source}:\n  expected sha256 {expected}\n"
                        f"  got      sha256 {got}\nThe file was not kept.")


def _save_stream(read, dest, source, expected=None, total=None, progress=False):
    """Write the chunks `read(n)` returns to `dest` through `atomic_writer`, hashing them on the way; `dest` is
    written only if the length is `total` (when known) and the SHA-256 is `expected` (when given)"""
    pb = None
    try:
        with atomic_writer(dest, new_mode=0o644) as f:   # a temporary file beside dest, renamed over it at the end
            h, done = hashlib.sha256(), 0
            if progress:
                pb = progress_bar(None, total=total if total else 'noinfer', leave=False)
                pb.comment = dest.name
                pb.update(0)
            while chunk := read(1 << 20):
                f.write(chunk); h.update(chunk); done += len(chunk)
                if pb is not None: pb.update(done)
            if total is not None and done != total:
                raise DatasetError(f"{source} sent {done:,} bytes of {dest.name} where it announced {total:,}: "
                                   "the transfer was cut short. Nothing was kept; try again.")
            if pb is not None and not total:   # unknown length: close the bar ourselves
                if done: pb.total = done; pb.update(done)
                else: pb.on_iter_end()
            got = h.hexdigest()
            if expected and got != expected.lower(): raise _mismatch(dest.name, source, expected.lower(), got)
        return dest
    except BaseException:                      # the writer has removed its temporary file: nothing is kept
        if pb is not None and pb.last_v is not None: pb.on_interrupt()
        raise


def mirror_checksum(mirror, fname):
    "The SHA-256 that `mirror`/SHA256SUMS lists for `fname`; a DatasetError if there is none"
    sums = Path(mirror)/'SHA256SUMS'
    if not sums.is_file():
        raise DatasetError(f"the mirror {mirror} holds {fname} but has no SHA256SUMS file, so {fname} cannot be "
                           f"verified. Add one (`sha256sum * > SHA256SUMS` in the mirror folder).")
    for line in sums.read_text(encoding='utf-8').splitlines():
        digest, _, name = line.strip().partition(' ')
        if name.strip().lstrip('*') == fname: return digest.lower()
    raise DatasetError(f"{sums} has no line for {fname}, so the mirror's {fname} cannot be verified")

def _from_mirror(fname):
    "The path of `fname` in the mirror (None if no mirror or not there) and the checksum it must have"
    mirror = mirror_dir()
    if mirror is None or not (mirror/fname).is_file(): return None, None
    return mirror/fname, mirror_checksum(mirror, fname)


DOWNLOAD_TIMEOUT = 30   # seconds without data before a download is abandoned

def _missing(url, dest, err):
    fname, mirror = dest.name, os.environ.get('EXP_MIRROR')
    where = (f"the mirror {mirror} has no {fname}" if mirror else "EXP_MIRROR is not set")
    reason = err if isinstance(err, urllib.error.HTTPError) else getattr(err, 'reason', None) or err
    return DatasetError(
        f"{fname} is not in the data folder ({dest.parent}) and could not be downloaded from {url} "
        f"({reason}); {where}.\nTo fix it, put the file there by hand ({dest}), or set EXP_MIRROR to a "
        f"folder holding {fname} and a SHA256SUMS file that lists it.")

def _download(url, dest, expected):
    "Download `url` to `dest` with a progress bar, checking its length and (if known) its checksum"
    try: resp = urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT)
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e: raise _missing(url, dest, e) from e
    with resp:
        length = resp.headers.get('Content-Length')
        total = int(length) if length and length.strip().isdigit() else None
        try: _save_stream(resp.read, dest, url, expected, total, progress=True)
        except (http.client.HTTPException, OSError) as e:
            raise DatasetError(f"the download of {dest.name} from {url} broke off ({e}). "
                               "Nothing was kept; try again.") from e
    print(f"downloaded {dest.name}: {dest.stat().st_size:,} bytes from {url}")
    return dest

def download_data(url, dest=None, sha256=None, force=False):
    "Local path of the file at `url`: from the data folder, else copied from the mirror, else downloaded"
    fname = url_filename(url)
    dest = Path(dest) if dest is not None else data_dir()/fname
    if dest.is_dir(): dest = dest/fname
    if dest.exists() and not force: return dest
    src, mirror_sum = _from_mirror(fname)
    if src is not None:   # the mirror's files are checked against its SHA256SUMS, not the canonical checksum
        with open(src, 'rb') as f: return _save_stream(f.read, dest, f'the mirror {src.parent}', mirror_sum)
    info = DATASETS.get(url)
    return _download(url, dest, sha256 or (info.sha256 if info else None))


def check_sha256(path, expected):
    "Return `path` if its SHA-256 is `expected`; otherwise a DatasetError (the file is left as it is, and not read further)"
    path = Path(path)
    if not path.is_file(): raise DatasetError(f"{path} is not a file, so its checksum cannot be checked")
    got = file_sha256(path)
    if got != expected.lower():
        raise DatasetError(f"checksum mismatch for {path}:\n  expected sha256 {expected.lower()}\n  got      sha256 {got}\n"
                           f"It is not the file it should be, so it was not opened. Delete it and fetch it again.")
    return path


# ---------------------------------------------------------------- extracting, safely

def _inside(real_root, path, resolve):
    "Is `path` inside the resolved folder `real_root`? With `resolve`, follow the links already on disk"
    p = os.path.realpath(path) if resolve else os.path.normpath(path)
    return p == real_root or p.startswith(real_root + os.sep)

def _check_member(archive, real_root, name, kind, link=None, resolve=True):
    "Raise a DatasetError if extracting member `name` (file, dir, symlink, hardlink) could write outside `real_root`"
    def refuse(why):
        raise DatasetError(f"{Path(archive).name}: refusing to extract member {name!r}: {why}. "
                           "Nothing was kept.")
    if kind not in ('file', 'dir', 'symlink', 'hardlink'): refuse(f"it is a {kind}, not a file, folder or link")
    if name.startswith(('/', '\\')) or re.match(r'[A-Za-z]:', name): refuse('its path is absolute')
    if '..' in re.split(r'[/\\]', name): refuse("its path contains '..'")
    if not _inside(real_root, os.path.join(real_root, name), resolve):
        refuse('its path leads outside the extraction folder through a link')
    if kind == 'symlink':
        if os.path.isabs(link): refuse(f'it is a symlink to the absolute path {link!r}')
        if not _inside(real_root, os.path.join(real_root, os.path.dirname(name), link), resolve):
            refuse(f'it is a symlink to {link!r}, outside the extraction folder')
    if kind == 'hardlink':
        if os.path.isabs(link) or not _inside(real_root, os.path.join(real_root, link), resolve):
            refuse(f'it is a hard link to {link!r}, outside the extraction folder')


def _tar_kind(m):
    if m.isreg(): return 'file'
    if m.isdir(): return 'dir'
    if m.issym(): return 'symlink'
    if m.islnk(): return 'hardlink'
    return {tarfile.CHRTYPE: 'character device', tarfile.BLKTYPE: 'block device',
            tarfile.FIFOTYPE: 'FIFO'}.get(m.type, f'special member (type {m.type!r})')

def _extract_tar(archive, root):
    "Check and extract the members of a tar one at a time, in one pass over the stream (any compression)"
    extra = {'filter': 'data'} if hasattr(tarfile, 'data_filter') else {}   # Python >= 3.11.4: a second line of defence
    real_root, resolve = os.path.realpath(root), False
    with tarfile.open(archive, 'r|*') as tar:
        for m in tar:
            kind = _tar_kind(m)
            _check_member(archive, real_root, m.name, kind, m.linkname if (m.issym() or m.islnk()) else None, resolve)
            resolve = resolve or kind == 'symlink'   # from now on, paths may lead through a link
            try: tar.extract(m, root, **extra)
            except tarfile.FilterError as e:
                raise DatasetError(f"{Path(archive).name}: refusing to extract member {m.name!r}: {e}. "
                                   "Nothing was kept.") from e


def _zip_kind(info):
    if info.is_dir(): return 'dir'
    mode = info.external_attr >> 16
    if info.create_system != 3 or stat.S_IFMT(mode) in (0, stat.S_IFREG): return 'file'   # 3: made on Unix
    if stat.S_ISLNK(mode): return 'symlink'
    if stat.S_ISDIR(mode): return 'dir'
    return {stat.S_IFCHR: 'character device', stat.S_IFBLK: 'block device', stat.S_IFIFO: 'FIFO',
            stat.S_IFSOCK: 'socket'}.get(stat.S_IFMT(mode), 'special member')

def _extract_zip(archive, root):
    "Check and write each member of a zip ourselves: `zipfile` rewrites dangerous names rather than refusing them"
    real_root, resolve = os.path.realpath(root), False
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            kind = _zip_kind(info)
            link = zf.read(info).decode('utf-8') if kind == 'symlink' else None
            _check_member(archive, real_root, info.filename, kind, link, resolve)
            resolve = resolve or kind == 'symlink'
            target = os.path.join(root, info.filename)
            if kind == 'dir': os.makedirs(target, exist_ok=True); continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if kind == 'symlink': os.symlink(link, target); continue
            with zf.open(info) as src, open(target, 'wb') as dst: shutil.copyfileobj(src, dst, 1 << 20)


def _check_final_links(archive, scratch, root):
    """Refuse `archive` if a symlink under `root` (in the extraction folder `scratch`) resolves, in the finished tree,
    outside `root`: a link checked when it was written may lead out through links that came later, and a `..` in
    the archive's top folder leads to the data folder once that top folder is the dataset"""
    real_root, todo = os.path.realpath(root), [str(root)]
    while todo:
        with os.scandir(todo.pop()) as it:
            for e in it:
                if e.is_symlink():
                    if not _inside(real_root, e.path, resolve=True):
                        name = Path(os.path.relpath(e.path, scratch)).as_posix()
                        raise DatasetError(f"{Path(archive).name}: refusing to extract member {name!r}: it is a symlink "
                                           f"to {os.readlink(e.path)!r}, which in the extracted tree leads outside the "
                                           "dataset folder. Nothing was kept.")
                elif e.is_dir(follow_symlinks=False): todo.append(e.path)


ARCHIVE_EXTS = ('.tar.gz', '.tgz', '.tar', '.tar.bz2', '.tbz2', '.tar.xz', '.txz', '.zip')

def archive_stem(fname):
    "`fname` without its archive extension; a DatasetError if it is not an archive"
    for ext in ARCHIVE_EXTS:
        if fname.lower().endswith(ext) and len(fname) > len(ext): return fname[:-len(ext)]
    raise DatasetError(f"{fname} is not an archive untar_data can open (it opens {', '.join(ARCHIVE_EXTS)}); "
                       "use download_data for a single file")

def _extract_checked(archive, scratch):
    "Extract `archive` into the empty folder `scratch`; the folder that is the dataset: its single top folder, else `scratch`"
    try:
        if archive.name.lower().endswith('.zip'): _extract_zip(archive, scratch)
        else: _extract_tar(archive, scratch)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, UnicodeDecodeError) as e:
        raise DatasetError(f"{archive} is damaged or not a {archive.suffix} archive ({e}). Nothing was "
                           "kept; delete it and try again.") from e
    kids = list(scratch.iterdir())
    top = kids[0] if len(kids) == 1 and kids[0].is_dir() and not kids[0].is_symlink() else scratch
    _check_final_links(archive, scratch, top)   # every link, resolved in the finished tree, stays in top
    return top

def extract_archive(archive, dest, replace=False):
    """Safely extract `archive` (tar or zip) to the folder `dest`. The archive is extracted and checked in a scratch
    folder beside `dest`, its content is moved into the folder `replace_folder` fills, and that folder takes the place
    of `dest` in one step: `dest` is never half-extracted, and a kill leaves only hidden leftovers that the next
    extraction to `dest` removes. With `replace`, an existing `dest` is replaced (it stays whole if anything fails)"""
    archive, dest = Path(archive), Path(dest)
    archive_stem(archive.name)
    if dest.exists() and not replace: raise DatasetError(f"cannot extract {archive.name}: {dest} already exists")
    # keep_existing: a dest that another process finished meanwhile is kept, unless we are asked to replace it
    with replace_folder(dest, keep_existing=not replace) as new:
        scratch = temp_path(dest)   # a leftover name of dest: the next save of dest removes it after a kill
        scratch.mkdir()
        try:
            top = _extract_checked(archive, scratch)
            for p in top.iterdir(): os.rename(p, new/p.name)   # same folder tree, so the same file system
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return dest


def _archive_for(url, force=False):
    "A verified local copy of the archive at `url`: in the data folder, in the mirror, or downloaded"
    fname = url_filename(url)
    local = data_dir()/fname
    if local.exists() and not force: return local
    src, mirror_sum = _from_mirror(fname)
    if src is not None:
        got = file_sha256(src)
        if got != mirror_sum: raise _mismatch(fname, f'the mirror {src.parent}', mirror_sum, got)
        return src
    return download_data(url, force=force)

def untar_data(url, dest=None, force=False):
    "Path of the extracted folder of the archive at `url` (default data_dir()/<folder>), fetched and extracted once"
    fname = url_filename(url)
    stem = archive_stem(fname)   # refuses a single file before fetching anything
    info = DATASETS.get(url)
    folder = info.folder if info is not None and info.folder else stem
    dest = Path(dest) if dest is not None else data_dir()/folder
    if dest.exists() and not force: return dest
    return extract_archive(_archive_for(url, force), dest, replace=force)
