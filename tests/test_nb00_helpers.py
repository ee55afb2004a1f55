"""The test helpers of exp.nb_00: each passes when it should and fails (AssertionError) when it should; and the
dataset names lesson 00 exports from coursekit.datasets (tested themselves in test_datasets.py)."""
import operator

import numpy as np
import pytest
import torch

from exp.nb_00 import equals, near, test, test_eq, test_ne, test_near, test_near_zero, test_raises

HELPERS = [test, test_eq, test_ne, test_near, test_near_zero, test_raises]


@pytest.mark.parametrize('helper', HELPERS, ids=[h.__name__ for h in HELPERS])
def test_helpers_are_hidden_from_pytest(helper):
    assert helper.__test__ is False


def test_test_passes_and_fails_with_both_values_and_name():
    test(3, 3, operator.eq)
    test([1], [1, 2], lambda a, b: len(a) < len(b), 'shorter')
    with pytest.raises(AssertionError) as e: test(3, 4, operator.eq)
    msg = str(e.value)
    assert 'eq' in msg and '3' in msg and '4' in msg
    with pytest.raises(AssertionError, match='shorter'): test([1, 2], [1], lambda a, b: len(a) < len(b), 'shorter')


@pytest.mark.parametrize('a,b', [
    (2, 2), ('abc', 'abc'), (None, None), (2.5, 2.5),
    (torch.tensor([1, 2, 3]), torch.tensor([1, 2, 3])),
    (torch.tensor([1, 2, 3]), [1., 2., 3.]),                      # values count, not dtypes
    (np.arange(6).reshape(2, 3), torch.arange(6).reshape(2, 3)),
    (torch.tensor([1., 2.], dtype=torch.bfloat16), [1., 2.]),
    ([torch.ones(2), (1, 'a')], [np.ones(2), [1, 'a']]),           # nested, list vs tuple
    ({'w': torch.zeros(2, 2), 'lr': 0.1}, {'w': np.zeros((2, 2)), 'lr': 0.1}),
    ({1, 2}, {2, 1}),
])
def test_test_eq_passes(a, b):
    test_eq(a, b)
    with pytest.raises(AssertionError, match='!='): test_ne(a, b)


@pytest.mark.parametrize('a,b', [
    (2, 3), ('abc', 'abd'), (None, 0),
    (torch.tensor([1, 2, 3]), torch.tensor([1, 2, 4])),
    (torch.zeros(2, 3), torch.zeros(3, 2)),                         # same values, other shape
    (torch.zeros(3), torch.zeros(1, 3)),                            # no broadcasting
    (torch.tensor([1, 2]), [[1], [2, 3]]),                          # ragged list
    ([1, 2], [1, 2, 3]), ([[1, 2], [3]], [[1, 2], [4]]),
    ({'a': 1}, {'a': 1, 'b': 2}), ({'a': torch.ones(2)}, {'a': torch.zeros(2)}),
    ('ab', ['a', 'b']),
])
def test_test_eq_fails(a, b):
    with pytest.raises(AssertionError, match='==') as e: test_eq(a, b)
    assert repr(a) in str(e.value) and repr(b) in str(e.value)
    test_ne(a, b)


def test_equals_returns_plain_bools():
    assert equals(torch.ones(3), torch.ones(3)) is True
    assert equals(torch.ones(3), torch.zeros(3)) is False


def test_near_and_test_near():
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(20, 30, generator=g), torch.randn(30, 5, generator=g)
    test_near(x @ w, x.double() @ w.double())
    test_near(0.1 + 0.2, 0.3)
    test_near(torch.tensor([1.0, 2.0]), np.array([1.0005, 2.0]))
    assert near([1.0, 2.0], [1.0, 2.0])
    assert not near(torch.tensor([1.0, 2.0]), [1.01, 2.0])
    assert near(torch.tensor([1.0, 2.0]), [1.01, 2.0], eps=0.1)
    assert not near(torch.zeros(3), torch.zeros(1, 3))               # shapes must match
    assert not near(torch.tensor([float('nan')]), torch.tensor([float('nan')]))
    with pytest.raises(AssertionError, match='near') as e: test_near(torch.tensor([1.0, 2.0]), [1.01, 2.0])
    assert '1.01' in str(e.value)
    test_near(torch.tensor([1.0, 2.0]), [1.01, 2.0], eps=0.1)
    with pytest.raises(AssertionError): test_near(torch.zeros(2, 3), torch.zeros(3, 2))
    with pytest.raises(AssertionError): test_near(1.0, 1.003)      # tolerance 1e-3 + 1e-3 * 1.003


def test_test_near_zero():
    test_near_zero(torch.tensor(1e-4))
    test_near_zero(torch.full((3, 4), -5e-4))
    test_near_zero(np.zeros(5))
    test_near_zero(0.05, tol=0.1)
    test_near_zero(torch.zeros(0))                                   # nothing is far from zero
    with pytest.raises(AssertionError, match='near zero') as e: test_near_zero(torch.tensor([0., -2e-3, 0.]))
    assert '0.002' in str(e.value)
    with pytest.raises(AssertionError): test_near_zero(0.05)
    with pytest.raises(AssertionError): test_near_zero(torch.tensor(float('nan')))


def test_test_raises(capsys):
    assert test_raises(lambda: 1 / 0, ZeroDivisionError) is None     # a check returns nothing (no `Out:`)
    assert capsys.readouterr().out == ''
    test_raises(lambda: {}['key'], KeyError, 'key', show=True)
    assert capsys.readouterr().out == "KeyError (as expected): 'key'\n"
    test_raises(lambda: {}['key'], KeyError, 'key')
    test_raises(lambda: int('x'))                                    # any Exception by default
    with pytest.raises(AssertionError, match='raised nothing'): test_raises(lambda: 1 + 1)
    with pytest.raises(AssertionError, match='expected KeyError, but ZeroDivisionError'):
        test_raises(lambda: 1 / 0, KeyError)
    with pytest.raises(AssertionError, match='does not contain'):
        test_raises(lambda: 1 / 0, ZeroDivisionError, 'by ten')
    test_raises(lambda: test_eq(1, 2), AssertionError, '==')


# the names students call from `exp.nb_00` (and from every later star import), implemented in coursekit.datasets
DATASET_NAMES = ['URLs', 'DatasetInfo', 'DATASETS', 'DatasetError', 'repo_root', 'data_dir', 'mirror_dir',
                 'url_filename', 'file_sha256', 'mirror_checksum', 'DOWNLOAD_TIMEOUT', 'download_data', 'check_sha256',
                 'ARCHIVE_EXTS', 'archive_stem', 'extract_archive', 'untar_data']


def test_nb00_exports_the_dataset_names_of_coursekit():
    import coursekit.datasets as ds
    import exp.nb_00 as nb00
    assert DATASET_NAMES == ds.__all__
    for name in DATASET_NAMES:
        assert name in nb00.__all__, name
        assert getattr(nb00, name) is getattr(ds, name), name                  # the same objects, not copies
    assert 'ls' in nb00.__all__ and 'progress_bar' not in nb00.__all__ and 'coursekit' not in nb00.__all__


def test_later_lessons_still_get_the_dataset_names():
    "A star import of a later module gives them, and exp/nb_12.py's explicit import of exp.nb_00 works."
    import coursekit.datasets as ds
    ns = {}
    exec('from exp.nb_01 import *', ns)
    assert all(ns[name] is getattr(ds, name) for name in DATASET_NAMES)
    exec('from exp.nb_00 import URLs, untar_data, data_dir, test_eq, test_raises', ns)
    assert ns['untar_data'] is ds.untar_data
