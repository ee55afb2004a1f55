"""The dataset helpers of coursekit.datasets (lesson 00 exports them): download (local HTTP server), mirror
verification, safe extraction, and writes through coursekit.files (whole or absent, leftovers of a kill removed).

Every test gets its own data folder (EXP_DATA=tmp) and no mirror unless it makes one; the HTTP server
binds 127.0.0.1 on a free port and is shut down at the end of each test.
"""
import hashlib, http.server, io, os, random, shutil, signal, socket, stat, subprocess, sys, tarfile, textwrap
import threading, time, zipfile
from pathlib import Path

import pytest

import coursekit.datasets as ds
from coursekit.datasets import (DATASETS, URLs, DatasetError, data_dir, download_data, extract_archive, mirror_dir,
                                repo_root, untar_data, url_filename)
from coursekit.files import leftovers

ROOT = Path(__file__).resolve().parents[1]
# The shared mirror: tests/conftest.py sets EXP_MIRROR to it when it exists.
SHARED_MIRROR = Path(os.environ.get('EXP_MIRROR') or ROOT.parent / 'shared' / 'data')
PROXY_VARS = ['http_proxy', 'https_proxy', 'all_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY']


def blob(n, seed=0): return random.Random(seed).randbytes(n)
def sha(b): return hashlib.sha256(b).hexdigest()


def closed_port():
    "A local port nobody listens on."
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def ls(path): return sorted(Path(path).iterdir())


def everything_under(folder):
    "All paths under `folder` (recursively, hidden ones included), relative, as sorted strings."
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob('*'))


@pytest.fixture
def data(tmp_path, monkeypatch):
    d = tmp_path / 'data'
    monkeypatch.setenv('EXP_DATA', str(d))
    monkeypatch.delenv('EXP_MIRROR', raising=False)
    for v in PROXY_VARS: monkeypatch.delenv(v, raising=False)
    return d


class _Handler(http.server.BaseHTTPRequestHandler):
    timeout = 10   # seconds per connection: a stuck client cannot hold the server

    def do_GET(self):
        srv = self.server
        srv.hits.append(self.path)
        body = srv.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        # /short/...: announce more bytes than are sent, then close (a cut connection);
        # /nolen/...: no Content-Length, the end of the body is the end of the connection (HTTP/1.0)
        if not self.path.startswith('/nolen/'):
            self.send_header('Content-Length', str(len(body) + (1000 if self.path.startswith('/short/') else 0)))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, *args): pass


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
    srv.daemon_threads = True
    srv.files, srv.hits = {}, []
    srv.url = lambda path: f'http://127.0.0.1:{srv.server_address[1]}{path}'
    thread = threading.Thread(target=srv.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(5)


def make_tar(path, members, mode='w:gz'):
    "Write a tar at `path`; `members` is a list of (TarInfo, content bytes or None)."
    with tarfile.open(path, mode) as tar:
        for m, data in members: tar.addfile(m, io.BytesIO(data) if data is not None else None)
    return path


def tar_file(name, data=b'hello'):
    m = tarfile.TarInfo(name)
    m.size = len(data)
    return m, data


def tar_link(name, target, kind=tarfile.SYMTYPE):
    "A symlink (or, with another `kind`, a hard link, device, FIFO) member."
    m = tarfile.TarInfo(name)
    m.type, m.linkname = kind, target
    return m, None


def zip_symlink(zf, name, target):
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    zf.writestr(info, target)


def make_zip(path, files=(), links=()):
    with zipfile.ZipFile(path, 'w') as zf:
        for name, data in files: zf.writestr(name, data)
        for name, target in links: zip_symlink(zf, name, target)
    return path


# ---------------------------------------------------------------- folders, registry

def test_data_dir_and_mirror_dir(data, tmp_path, monkeypatch):
    assert data_dir() == data
    assert mirror_dir() is None
    monkeypatch.delenv('EXP_DATA')
    assert data_dir() == repo_root() / 'data'
    assert (repo_root() / 'exp' / '__init__.py').is_file()
    monkeypatch.setenv('EXP_MIRROR', str(tmp_path))
    assert mirror_dir() == tmp_path
    monkeypatch.setenv('EXP_MIRROR', str(tmp_path / 'nowhere'))
    with pytest.raises(DatasetError, match='EXP_MIRROR'): mirror_dir()


def test_registry_and_url_filename():
    folders = {name: DATASETS[getattr(URLs, name)].folder for name in vars(URLs) if name.isupper()}
    assert folders == {'MNIST': None, 'IMAGENETTE_160': 'imagenette2-160', 'IMAGEWOOF_160': 'imagewoof2-160',
                       'PETS': 'oxford-iiit-pet', 'IMDB': 'aclImdb', 'IMDB_SAMPLE': 'imdb_sample',
                       'WIKITEXT_2': 'wikitext-2', 'WIKITEXT_103': 'wikitext-103', 'FRA_ENG': 'fra-eng'}
    # only MNIST's canonical checksum is known (the mirror's SHA256SUMS lists the same file): none invented
    assert {u: i.sha256 for u, i in DATASETS.items() if i.sha256} == {
        URLs.MNIST: '83390dc2e85a0f578a4a61ef919e56b43ef760d05511117686cfc2ec41965672'}
    assert url_filename(URLs.MNIST) == 'mnist.pkl.gz'
    assert url_filename('http://h/a/b%20c.tgz?x=1') == 'b c.tgz'
    with pytest.raises(DatasetError, match='file name'): url_filename('http://host/')
    with pytest.raises(DatasetError, match='string'): url_filename(None)


# ---------------------------------------------------------------- downloads

def test_download_with_progress_bar_then_cached(data, server, capsys):
    body = blob(2_500_000)
    server.files['/blob.bin'] = body
    url = server.url('/blob.bin')
    path = download_data(url, sha256=sha(body))
    assert path == data / 'blob.bin' and path.read_bytes() == body
    out = capsys.readouterr().out
    assert '100.00%' in out and '[2500000/2500000' in out, f'no progress bar in the output: {out!r}'
    assert 'downloaded blob.bin' in out
    assert server.hits == ['/blob.bin']
    t0 = time.perf_counter()
    assert download_data(url) == path                       # cached: the server is not asked again
    assert time.perf_counter() - t0 < 0.5
    assert server.hits == ['/blob.bin']
    assert everything_under(data) == ['blob.bin']           # no .part file left
    assert download_data(url, force=True) == path          # force fetches again
    assert server.hits == ['/blob.bin'] * 2


def test_download_without_content_length(data, server, capsys):
    body = blob(1_500_000, seed=6)
    server.files['/nolen/blob.bin'] = body
    path = download_data(server.url('/nolen/blob.bin'))
    assert path.read_bytes() == body and everything_under(data) == ['blob.bin']
    assert '[1500000/1500000' in capsys.readouterr().out


def test_download_to_dest(tmp_path, data, server):
    server.files['/f.bin'] = b'abc'
    assert download_data(server.url('/f.bin'), dest=tmp_path / 'x.bin') == tmp_path / 'x.bin'
    assert (tmp_path / 'x.bin').read_bytes() == b'abc'
    (tmp_path / 'sub').mkdir()
    assert download_data(server.url('/f.bin'), dest=tmp_path / 'sub') == tmp_path / 'sub' / 'f.bin'


def test_checksum_mismatch_names_both_hashes_and_keeps_nothing(data, server):
    body = blob(300_000, seed=1)
    server.files['/blob.bin'] = body
    wrong = '0' * 64
    with pytest.raises(DatasetError) as e: download_data(server.url('/blob.bin'), sha256=wrong)
    msg = str(e.value)
    assert 'blob.bin' in msg and wrong in msg and sha(body) in msg
    assert everything_under(data) == []


def test_truncated_download_is_an_error_and_keeps_nothing(data, server):
    server.files['/short/cut.bin'] = blob(200_000, seed=2)
    with pytest.raises(DatasetError, match='cut short') as e: download_data(server.url('/short/cut.bin'))
    assert 'cut.bin' in str(e.value)
    assert everything_under(data) == []


def test_offline_and_not_cached_says_what_to_do(data):
    url = f'http://127.0.0.1:{closed_port()}/x.tgz'
    for fetch in (download_data, untar_data):
        with pytest.raises(DatasetError) as e: fetch(url)
        msg = str(e.value)
        assert 'x.tgz' in msg and url in msg and str(data) in msg and 'EXP_MIRROR' in msg
    assert not data.exists() or everything_under(data) == []


def test_http_error_is_reported(data, server):
    with pytest.raises(DatasetError, match='404') as e: download_data(server.url('/missing.tgz'))
    assert 'missing.tgz' in str(e.value)


def test_untar_refuses_a_single_file_before_fetching(data, server):
    with pytest.raises(DatasetError, match='not an archive'): untar_data(server.url('/mnist.pkl.gz'))
    assert server.hits == []


# ---------------------------------------------------------------- the mirror

@pytest.fixture
def mirror(tmp_path, monkeypatch):
    m = tmp_path / 'mirror'
    m.mkdir()
    monkeypatch.setenv('EXP_MIRROR', str(m))
    return m


def test_mirror_copy_is_verified_and_needs_no_network(data, mirror):
    body = blob(100_000, seed=3)
    (mirror / 'a.bin').write_bytes(body)
    (mirror / 'SHA256SUMS').write_text(f'{"f" * 64}  other.bin\n{sha(body)}  a.bin\n')
    path = download_data(f'http://127.0.0.1:{closed_port()}/a.bin')   # nothing listens there
    assert path == data / 'a.bin' and path.read_bytes() == body
    assert everything_under(data) == ['a.bin']


def test_mirror_file_with_wrong_checksum_is_refused(data, mirror):
    body = blob(100_000, seed=4)
    (mirror / 'a.bin').write_bytes(body)
    (mirror / 'SHA256SUMS').write_text(f'{"a" * 64}  a.bin\n')
    with pytest.raises(DatasetError) as e: download_data(f'http://127.0.0.1:{closed_port()}/a.bin')
    msg = str(e.value)
    assert 'a.bin' in msg and 'a' * 64 in msg and sha(body) in msg
    assert everything_under(data) == []


def test_mirror_without_sha256sums_is_refused(data, mirror):
    (mirror / 'a.bin').write_bytes(b'x')
    with pytest.raises(DatasetError, match='SHA256SUMS'): download_data(f'http://127.0.0.1:{closed_port()}/a.bin')
    (mirror / 'SHA256SUMS').write_text(f'{sha(b"x")}  b.bin\n')          # a line for another file only
    with pytest.raises(DatasetError, match='no line for a.bin'):
        download_data(f'http://127.0.0.1:{closed_port()}/a.bin')
    assert not data.exists() or everything_under(data) == []


def test_untar_from_mirror_extracts_in_place_and_verifies(tmp_path, data, mirror):
    arc = make_tar(mirror / 'ds.tgz', [tar_file('ds/a.txt', b'A'), tar_file('ds/sub/b.txt', b'B')])
    (mirror / 'SHA256SUMS').write_text(f'{sha(arc.read_bytes())}  ds.tgz\n')
    url = f'http://127.0.0.1:{closed_port()}/ds.tgz'
    path = untar_data(url)
    assert path == data / 'ds' and (path / 'sub' / 'b.txt').read_text() == 'B'
    assert everything_under(data) == ['ds', 'ds/a.txt', 'ds/sub', 'ds/sub/b.txt']   # no archive copy, no temp
    (mirror / 'SHA256SUMS').write_text(f'{"b" * 64}  ds.tgz\n')
    with pytest.raises(DatasetError, match='b' * 64): untar_data(url, dest=tmp_path / 'other')
    assert not (tmp_path / 'other').exists()
    with pytest.raises(DatasetError, match='b' * 64): untar_data(url, force=True)
    assert (data / 'ds' / 'a.txt').read_text() == 'A'    # a failed forced refresh keeps the old copy


# ---------------------------------------------------------------- extraction

def test_untar_tgz_with_top_folder_over_http(tmp_path, data, server):
    arc = make_tar(tmp_path / 'pack.tgz', [tar_file('pack/x.txt', b'x'), tar_file('pack/y/z.txt', b'z'),
                                           tar_link('pack/y/link', 'z.txt')])
    server.files['/pack.tgz'] = arc.read_bytes()
    path = untar_data(server.url('/pack.tgz'))
    assert path == data / 'pack'
    assert everything_under(path) == ['x.txt', 'y', 'y/link', 'y/z.txt']
    assert (path / 'y' / 'link').is_symlink() and (path / 'y' / 'link').read_text() == 'z'
    assert untar_data(server.url('/pack.tgz')) == path and server.hits == ['/pack.tgz']
    assert sorted(p.name for p in data.iterdir()) == ['pack', 'pack.tgz']


@pytest.mark.parametrize('name,mode', [('flat.tar', 'w'), ('flat.tar.gz', 'w:gz')])
def test_untar_plain_tar_without_top_folder(tmp_path, data, server, name, mode):
    arc = make_tar(tmp_path / name, [tar_file('a.txt', b'a'), tar_file('b.txt', b'b')], mode=mode)
    server.files['/' + name] = arc.read_bytes()
    path = untar_data(server.url('/' + name))
    assert path == data / 'flat' and everything_under(path) == ['a.txt', 'b.txt']
    assert stat.S_IMODE(path.stat().st_mode) & 0o055 == 0o055   # readable by others, not private like a temp dir


def test_untar_zip(tmp_path, data, server):
    arc = make_zip(tmp_path / 'wiki.zip', files=[('wiki/t.tokens', 'tokens'), ('wiki/v.tokens', 'v')],
                   links=[('wiki/l', 't.tokens')])
    server.files['/wiki.zip'] = arc.read_bytes()
    path = untar_data(server.url('/wiki.zip'))
    assert path == data / 'wiki' and everything_under(path) == ['l', 't.tokens', 'v.tokens']
    assert (path / 'l').is_symlink() and (path / 'l').read_text() == 'tokens'
    arc2 = make_zip(tmp_path / 'flat.zip', files=[('a.txt', 'a'), ('d/b.txt', 'b')])
    server.files['/flat.zip'] = arc2.read_bytes()
    assert everything_under(untar_data(server.url('/flat.zip'))) == ['a.txt', 'd', 'd/b.txt']


def tar_attacks(tmp):
    "name -> members of a malicious tar; `tmp` is the test's folder (an absolute path outside the target)."
    return {
        'dotdot': [tar_file('ok.txt'), tar_file('../evil.txt')],
        'dotdot_inner': [tar_file('ds/../../evil.txt')],
        'absolute': [tar_file(str(tmp / 'evil.txt'))],
        'symlink_out': [tar_link('ds/link', '../../..')],
        'symlink_abs': [tar_link('ds/link', str(tmp))],
        'symlink_chain': [tar_link('t', '.'), tar_link('u', 't/..'), tar_file('u/evil.txt')],
        # 'ds/in/../..' is the extraction folder as written, but its parent once 'ds/in' -> '.' is followed
        'symlink_through_link': [tar_file('ds/ok.txt'), tar_link('ds/in', '.'), tar_link('ds/in/up', '../..'),
                                 tar_file('ds/in/up/evil.txt')],
        'hardlink_out': [tar_link('ds/h', '../../evil.txt', kind=tarfile.LNKTYPE)],
        'device': [tar_link('ds/dev', '', kind=tarfile.CHRTYPE)],
        'fifo': [tar_link('ds/fifo', '', kind=tarfile.FIFOTYPE)],
    }


@pytest.mark.parametrize('attack', list(tar_attacks(Path('/x'))))
def test_malicious_tar_is_refused_and_leaves_nothing(tmp_path, attack):
    members = tar_attacks(tmp_path)[attack]
    arc = make_tar(tmp_path / f'{attack}.tgz', members)
    out = tmp_path / 'out'
    with pytest.raises(DatasetError) as e: extract_archive(arc, out / 'ds')
    msg = str(e.value)
    assert f'{attack}.tgz' in msg and 'refusing' in msg
    assert any(repr(m.name) in msg for m, _ in members), msg            # names the member
    assert everything_under(out) == []                               # no half-extracted folder, no temp
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([arc.name, 'out'])   # nothing escaped


@pytest.mark.parametrize('attack', ['dotdot', 'absolute', 'symlink_out', 'symlink_chain', 'device'])
def test_malicious_zip_is_refused_and_leaves_nothing(tmp_path, attack):
    arc = tmp_path / f'{attack}.zip'
    with zipfile.ZipFile(arc, 'w') as zf:
        zf.writestr('ds/ok.txt', 'fine')
        if attack == 'dotdot': zf.writestr('ds/../../evil.txt', 'x'); bad = 'ds/../../evil.txt'
        if attack == 'absolute': bad = str(tmp_path / 'evil.txt'); zf.writestr(bad, 'x')
        if attack == 'symlink_out': bad = 'ds/link'; zip_symlink(zf, bad, '../../..')
        if attack == 'symlink_chain':
            zip_symlink(zf, 't', '.'); zip_symlink(zf, 'u', 't/..'); zf.writestr('u/evil.txt', 'x'); bad = 'u'
        if attack == 'device':
            bad = 'ds/dev'
            info = zipfile.ZipInfo(bad)
            info.create_system, info.external_attr = 3, (stat.S_IFCHR | 0o644) << 16
            zf.writestr(info, '')
    out = tmp_path / 'out'
    with pytest.raises(DatasetError) as e: extract_archive(arc, out / 'ds')
    assert f'{attack}.zip' in str(e.value) and repr(bad) in str(e.value)
    assert everything_under(out) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([arc.name, 'out'])


def test_untar_data_refuses_zip_slip_end_to_end(tmp_path, data, server):
    arc = make_zip(tmp_path / 'slip.zip', files=[('slip/ok.txt', 'ok'), ('../../evil.txt', 'x')])
    server.files['/slip.zip'] = arc.read_bytes()
    with pytest.raises(DatasetError, match="'../../evil.txt'"): untar_data(server.url('/slip.zip'))
    assert everything_under(data) == ['slip.zip']                   # the archive only: no folder, no temp
    assert not (tmp_path / 'evil.txt').exists()


def test_damaged_archive(tmp_path):
    for name in ('bad.tgz', 'bad.zip'):
        (tmp_path / name).write_bytes(blob(5000, seed=5))
        with pytest.raises(DatasetError, match='damaged'): extract_archive(tmp_path / name, tmp_path / 'out' / 'x')
        assert everything_under(tmp_path / 'out') == []


# ---------------------------------------------------------------- the real mirror

def test_imagenette_from_the_shared_mirror(data, monkeypatch):
    if not (SHARED_MIRROR / 'imagenette2-160.tgz').is_file():
        pytest.skip(f'no dataset mirror with imagenette2-160.tgz at {SHARED_MIRROR} (set EXP_MIRROR)')
    monkeypatch.setenv('EXP_MIRROR', str(SHARED_MIRROR))
    try:
        path = untar_data(URLs.IMAGENETTE_160)
        assert path == data / 'imagenette2-160'
        counts = {split: len(list((path / split).glob('*/*.JPEG'))) for split in ('train', 'val')}
        assert counts == {'train': 9469, 'val': 3925}
        classes = [p.name for p in ls(path / 'train')]
        assert len(classes) == 10 and [p.name for p in ls(path / 'val')] == classes
        assert [p.name for p in data.iterdir()] == ['imagenette2-160']   # from the mirror: no copy, no temp
        t0 = time.perf_counter()
        assert untar_data(URLs.IMAGENETTE_160) == path
        assert time.perf_counter() - t0 < 0.5
    finally:   # pytest keeps the last runs' tmp folders: do not leave 13,000 images in each
        shutil.rmtree(data, ignore_errors=True)


# ---------------------------------------------------------------- links checked against the final tree (issue 10)

def escaping_links_under(root):
    "Every symlink under `root` (not followed) whose fully resolved target is outside `root`, as (link, target)."
    real_root = os.path.realpath(root)
    bad = []
    for d, dirs, files in os.walk(root):                 # os.walk does not follow links to folders
        for n in dirs + files:
            p = os.path.join(d, n)
            if not os.path.islink(p): continue
            t = os.path.realpath(p)
            if not (t == real_root or t.startswith(real_root + os.sep)): bad.append((os.path.relpath(p, root), t))
    return bad


# (name, target) in archive order: each link looks fine when it is created, the finished tree escapes
LATE_LINKS = {
    'chain': [('lt/l1', 'l2/l3/../..'), ('lt/l2', '.'), ('lt/l3', '.')],
    # inside the temporary folder, but the single top folder 'lt' becomes the dataset: '..' is then its parent
    'top_parent': [('lt/up', '..')],
}


def _late_links_archive(tmp_path, kind, case):
    links = LATE_LINKS[case]
    if kind == 'zip': return make_zip(tmp_path / f'{case}.zip', files=[('lt/ok.txt', 'fine')], links=links)
    return make_tar(tmp_path / f'{case}.tgz', [tar_file('lt/ok.txt')] + [tar_link(n, t) for n, t in links])


@pytest.mark.parametrize('case', list(LATE_LINKS))
@pytest.mark.parametrize('kind', ['tar', 'zip'])
def test_links_that_escape_in_the_final_tree_are_refused(tmp_path, kind, case):
    arc = _late_links_archive(tmp_path, kind, case)
    out = tmp_path / 'data'
    try: path = extract_archive(arc, out / 'lt')
    except DatasetError as e: msg = str(e)
    else:   # whatever was extracted: walk it and resolve every link
        pytest.fail(f'extracted, with links escaping {path}: {escaping_links_under(path)}')
    assert arc.name in msg and 'refusing' in msg and 'outside' in msg, msg
    assert repr(LATE_LINKS[case][0][0]) in msg, msg                  # names the escaping link
    assert everything_under(out) == []                                # nothing kept, no temp folder
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([arc.name, 'data'])


@pytest.mark.parametrize('kind', ['tar', 'zip'])
def test_links_that_stay_inside_the_final_tree_are_kept(tmp_path, kind):
    links = [('lt/a', 'b/c/..'), ('lt/b', '.'), ('lt/c', 'sub'), ('lt/sub/back', '../ok.txt')]
    if kind == 'zip': arc = make_zip(tmp_path / 'ok.zip', files=[('lt/ok.txt', 'fine'), ('lt/sub/x', 'x')], links=links)
    else: arc = make_tar(tmp_path / 'ok.tgz', [tar_file('lt/ok.txt'), tar_file('lt/sub/x')] + [tar_link(n, t) for n, t in links])
    path = extract_archive(arc, tmp_path / 'data' / 'lt')
    assert escaping_links_under(path) == []
    assert sorted(n for n, _ in links) == sorted(f'lt/{p}' for p in everything_under(path) if (path / p).is_symlink())
    assert (path / 'sub' / 'back').read_text() == ('fine' if kind == 'zip' else 'hello')


# ---------------------------------------------------------------- the repository root, from coursekit/

def test_repo_root_is_the_checkout_from_any_folder(tmp_path):
    "coursekit/ sits beside exp/: the root is found from the module's own place, whatever the working directory."
    assert repo_root() == ROOT
    env = {**os.environ, 'PYTHONPATH': str(ROOT)}
    env.pop('EXP_DATA', None)
    out = subprocess.run([sys.executable, '-c', 'from coursekit.datasets import repo_root, data_dir\n'
                          'print(repo_root()); print(data_dir())'], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=60, check=True).stdout.split('\n')
    assert out[:2] == [str(ROOT), str(ROOT / 'data')]


# ---------------------------------------------------------------- writes through coursekit.files

def hidden_under(folder):
    "Hidden entries (temporaries of coursekit.files) anywhere under `folder`."
    return [p for p in everything_under(folder) if any(part.startswith('.') for part in Path(p).parts)]


def test_download_is_written_through_atomic_writer(data):
    "While the bytes arrive they go to a coursekit.files temporary beside the file; the file appears whole at the end."
    body, seen = blob(3_000_000, seed=7), []
    src, dest = io.BytesIO(body), data / 'big.bin'
    def read(n):
        seen.append((dest.exists(), [kind for _, _, kind in leftovers(dest)]))
        return src.read(n)
    assert ds._save_stream(read, dest, 'a test stream', sha(body), len(body)) == dest
    assert dest.read_bytes() == body and everything_under(data) == ['big.bin']
    assert len(seen) > 2 and all(s == (False, ['tmp']) for s in seen), seen


def test_failing_download_keeps_nothing_and_keeps_the_old_file(data, server):
    "A cut transfer or a wrong checksum leaves neither a new file nor a temporary, and a forced refresh keeps the old one."
    server.files['/short/f.bin'] = blob(100_000, seed=8)
    with pytest.raises(DatasetError, match='cut short'): download_data(server.url('/short/f.bin'))
    assert everything_under(data) == []
    old = data / 'g.bin'
    old.write_bytes(b'the old file')
    server.files['/g.bin'] = blob(50_000, seed=9)
    with pytest.raises(DatasetError, match='checksum'): download_data(server.url('/g.bin'), sha256='0' * 64, force=True)
    assert old.read_bytes() == b'the old file' and everything_under(data) == ['g.bin']


def run_and_kill(code, **env):
    """Run `code` in a fresh interpreter (repository importable) that SIGKILLs itself where the code says so;
    returns the dead process's result. Its temporaries stay behind, named after a process that is gone."""
    full = 'import os, signal\ndef die(*a, **k): os.kill(os.getpid(), signal.SIGKILL)\n' + textwrap.dedent(code)
    res = subprocess.run([sys.executable, '-c', full], env={**os.environ, 'PYTHONPATH': str(ROOT), **env},
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == -signal.SIGKILL, res.stderr
    return res


def test_killed_download_leaves_only_a_temporary_that_the_next_download_removes(data, server):
    body = blob(2_000_000, seed=10)
    server.files['/k.bin'] = body
    run_and_kill(f'''
        import io
        from pathlib import Path
        import coursekit.datasets as ds
        src = io.BytesIO(bytes(2_000_000))
        def read(n):
            if src.tell(): die()             # killed with the first megabyte written
            return src.read(n)
        ds._save_stream(read, Path({str(data / 'k.bin')!r}), 'a test stream')
        ''')
    assert not (data / 'k.bin').exists()
    assert [kind for _, _, kind in leftovers(data / 'k.bin')] == ['tmp']           # the killed writer's file
    assert download_data(server.url('/k.bin')).read_bytes() == body
    assert everything_under(data) == ['k.bin']                                      # the leftover is gone


def _killed_extraction(arc, dest, replace=False):
    "Extract `arc` to `dest` in a process killed after the archive is extracted and checked, before the swap."
    run_and_kill(f'''
        import coursekit.datasets as ds
        check = ds._check_final_links
        def check_then_die(*a):
            check(*a)
            die()
        ds._check_final_links = check_then_die
        ds.extract_archive({str(arc)!r}, {str(dest)!r}, replace={replace})
        ''')


def test_killed_extraction_leaves_no_dataset_and_the_next_call_tidies(tmp_path):
    arc = make_tar(tmp_path / 'pack.tgz', [tar_file('pack/a.txt', b'A'), tar_file('pack/sub/b.txt', b'B')])
    data = tmp_path / 'data'
    _killed_extraction(arc, data / 'pack')
    assert not (data / 'pack').exists()                                             # never half a dataset
    assert len(leftovers(data / 'pack')) == 2 and hidden_under(data)               # scratch and the folder to swap in
    path = extract_archive(arc, data / 'pack')
    assert everything_under(data) == ['pack', 'pack/a.txt', 'pack/sub', 'pack/sub/b.txt']   # no hidden leftovers
    assert (path / 'sub' / 'b.txt').read_text() == 'B'


def test_killed_forced_extraction_keeps_the_old_dataset_whole(tmp_path):
    data = tmp_path / 'data'
    old = make_tar(tmp_path / 'old.tgz', [tar_file('pack/a.txt', b'old'), tar_file('pack/only_old.txt', b'o')])
    new = make_tar(tmp_path / 'new.tgz', [tar_file('pack/a.txt', b'new'), tar_file('pack/only_new.txt', b'n')])
    extract_archive(old, data / 'pack')
    _killed_extraction(new, data / 'pack', replace=True)
    assert everything_under(data / 'pack') == ['a.txt', 'only_old.txt'] and (data / 'pack' / 'a.txt').read_text() == 'old'
    extract_archive(new, data / 'pack', replace=True)
    assert everything_under(data) == ['pack', 'pack/a.txt', 'pack/only_new.txt']   # whole new, nothing hidden
    assert (data / 'pack' / 'a.txt').read_text() == 'new'


def test_failed_forced_extraction_keeps_the_old_dataset_and_no_temporaries(tmp_path):
    data = tmp_path / 'data'
    extract_archive(make_tar(tmp_path / 'ok.tgz', [tar_file('ds/a.txt', b'A')]), data / 'ds')
    bad = make_tar(tmp_path / 'bad.tgz', [tar_file('ds/b.txt', b'B'), tar_file('ds/../../evil.txt')])
    with pytest.raises(DatasetError, match='refusing'): extract_archive(bad, data / 'ds', replace=True)
    (tmp_path / 'damaged.tgz').write_bytes(blob(3000, seed=11))
    with pytest.raises(DatasetError, match='damaged'): extract_archive(tmp_path / 'damaged.tgz', data / 'ds', replace=True)
    assert everything_under(data) == ['ds', 'ds/a.txt']


def test_extraction_finished_first_by_another_process_is_kept(tmp_path, monkeypatch):
    "Two extractions of the same dataset: the first to finish wins, the second drops its copy (keep_existing)."
    arc = make_tar(tmp_path / 'pack.tgz', [tar_file('pack/a.txt', b'mine')])
    dest = tmp_path / 'data' / 'pack'
    check = ds._check_final_links
    def other_process_finishes(*a):
        check(*a)
        dest.mkdir()
        (dest / 'a.txt').write_text('theirs')
    monkeypatch.setattr(ds, '_check_final_links', other_process_finishes)
    assert extract_archive(arc, dest) == dest
    assert everything_under(dest.parent) == ['pack', 'pack/a.txt'] and (dest / 'a.txt').read_text() == 'theirs'
