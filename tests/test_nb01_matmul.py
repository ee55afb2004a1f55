"""Oracle tests for lesson 01: every hand-written matrix multiply against torch.matmul."""
import gzip, pickle

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
