"""Oracle tests for lesson 01: every hand-written matrix multiply against torch.matmul."""
import gzip, os, pickle

import pytest
import torch

from exp.nb_00 import DatasetError
from exp.nb_01 import get_data, matmul_loops, matmul_elementwise, matmul_broadcast, matmul_einsum

VARIANTS = [matmul_loops, matmul_elementwise, matmul_broadcast, matmul_einsum]
SHAPES = [(1, 1, 1), (1, 7, 3), (4, 4, 4), (5, 3, 9), (9, 2, 1), (3, 16, 2)]   # (rows of a, inner, cols of b)


@pytest.mark.parametrize('matmul', VARIANTS, ids=lambda f: f.__name__)
@pytest.mark.parametrize('shape', SHAPES, ids=str)
def test_matches_torch(matmul, shape):
    ar, ac, bc = shape
    g = torch.Generator().manual_seed(ar * 100 + ac * 10 + bc)
    a, b = torch.randn(ar, ac, generator=g), torch.randn(ac, bc, generator=g)
    out = matmul(a, b)
    assert out.shape == (ar, bc)
    torch.testing.assert_close(out, a @ b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('matmul', VARIANTS, ids=lambda f: f.__name__)
def test_float64_and_mnist_sized(matmul):
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 784, generator=g, dtype=torch.float64), torch.randn(784, 10, generator=g, dtype=torch.float64)
    if matmul is matmul_loops: a = a[:1]   # the triple loop is slow; one row is enough
    out = matmul(a, b)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, a @ b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('matmul', VARIANTS, ids=lambda f: f.__name__)
def test_shape_mismatch_raises(matmul):
    with pytest.raises(ValueError, match=r'columns of a \(3\) must equal the rows of b \(4\)'):
        matmul(torch.ones(2, 3), torch.ones(4, 5))
    with pytest.raises(ValueError, match='expected two matrices'):
        matmul(torch.ones(3), torch.ones(3, 2))


def test_get_data_shapes():
    x_train, y_train, x_valid, y_valid = get_data()
    assert x_train.shape == (50_000, 784) and x_valid.shape == (10_000, 784)
    assert x_train.dtype == torch.float32 and y_train.dtype == torch.int64
    assert y_train[:3].tolist() == [5, 0, 4]
    assert 0 <= x_train.min() and x_train.max() < 1
    assert sorted(y_valid.unique().tolist()) == list(range(10))


def test_get_data_bad_file(tmp_path):
    bad = tmp_path / 'mnist.pkl.gz'
    bad.write_bytes(b'not a gzip file')
    with pytest.raises(DatasetError, match='mnist.pkl.gz is not a readable MNIST pickle'):
        get_data(bad)
    wrong = tmp_path / 'wrong.pkl.gz'
    with gzip.open(wrong, 'wb') as f: pickle.dump({'not': 'mnist'}, f)
    with pytest.raises(DatasetError, match='wrong.pkl.gz'):
        get_data(wrong)


# ---------------------------------------------------------------- the MNIST pickle is verified before unpickling

MNIST_SHA256 = '83390dc2e85a0f578a4a61ef919e56b43ef760d05511117686cfc2ec41965672'   # the mirror's SHA256SUMS


def _forged_mnist(path):
    "A gzipped pickle that is not the canonical MNIST file (unpickling it would run `os.system`)."
    class Evil:
        def __reduce__(self): return (os.system, ('echo owned',))
    with gzip.open(path, 'wb') as f: pickle.dump(Evil(), f)
    return path


@pytest.fixture
def no_pickle_load(monkeypatch):
    "Make any call of pickle.load fail the test."
    def forbidden(*a, **k): raise AssertionError('pickle.load was reached for a file that is not verified')
    monkeypatch.setattr(pickle, 'load', forbidden)


def test_registry_knows_the_mnist_checksum():
    import exp.nb_00 as nb00
    assert nb00.DATASETS[nb00.URLs.MNIST].sha256 == MNIST_SHA256


def test_forged_mnist_in_the_data_folder_is_refused_before_unpickling(tmp_path, monkeypatch, no_pickle_load):
    monkeypatch.setenv('EXP_DATA', str(tmp_path))
    monkeypatch.delenv('EXP_MIRROR', raising=False)
    _forged_mnist(tmp_path / 'mnist.pkl.gz')
    with pytest.raises(DatasetError, match='checksum') as e: get_data()
    assert MNIST_SHA256 in str(e.value) and 'mnist.pkl.gz' in str(e.value)


def test_forged_mnist_from_a_mirror_is_refused_before_unpickling(tmp_path, monkeypatch, no_pickle_load):
    "A mirror that lists the forged file with its own checksum: the mirror check passes, the canonical one does not."
    import hashlib
    mirror, data = tmp_path / 'mirror', tmp_path / 'data'
    mirror.mkdir()
    forged = _forged_mnist(mirror / 'mnist.pkl.gz')
    (mirror / 'SHA256SUMS').write_text(f'{hashlib.sha256(forged.read_bytes()).hexdigest()}  mnist.pkl.gz\n')
    monkeypatch.setenv('EXP_DATA', str(data))
    monkeypatch.setenv('EXP_MIRROR', str(mirror))
    with pytest.raises(DatasetError, match='checksum'): get_data()


def test_forged_mnist_download_is_refused_and_not_kept(tmp_path, monkeypatch, no_pickle_load):
    import io, urllib.request
    body = _forged_mnist(tmp_path / 'forged.pkl.gz').read_bytes()
    class Resp(io.BytesIO):
        headers = {'Content-Length': str(len(body))}
    monkeypatch.setattr(urllib.request, 'urlopen', lambda url, timeout=None: Resp(body))
    monkeypatch.setenv('EXP_DATA', str(tmp_path / 'data'))
    monkeypatch.delenv('EXP_MIRROR', raising=False)
    with pytest.raises(DatasetError, match='checksum'): get_data()
    assert not (tmp_path / 'data' / 'mnist.pkl.gz').exists()


def test_get_data_checks_a_given_sha256(tmp_path, no_pickle_load):
    forged = _forged_mnist(tmp_path / 'mine.pkl.gz')
    with pytest.raises(DatasetError, match='checksum'): get_data(forged, sha256=MNIST_SHA256)
