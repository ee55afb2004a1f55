"""Lesson 14: DeViSE (word spaces, class-name targets, cosine loss, the regression head, exact top-k search)."""
import math
import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from exp.nb_00 import test_eq, test_near
from exp.nb_08 import DataBunch
from exp.nb_09 import adam_opt
from exp.nb_11 import xresnet18
from exp.nb_12a import get_language_model
from exp.nb_12b import save_pretrained
from exp.nb_14 import (IMAGENETTE_NAMES, NAME_SUBSTITUTES, MissingWordWarning, NearestClassAccuracy,
                       VectorTargetLoss, WordSpace, class_targets, content_words, cooccurrence_counts, cos_loss,
                       devise_head, devise_learner, devise_model, hnsw_index, load_word_space,
                       name_vector, nearest_class, ppmi, read_vec_file, recall_at_k, standin_word_space,
                       topk_rows, topk_search, unit_rows, word_space_from_lm)

pytestmark = pytest.mark.usefixtures('one_thread')


# ---------------------------------------------------------------- cosine loss

def test_cos_loss_is_one_minus_cosine_similarity():
    torch.manual_seed(0)
    a, b = torch.randn(32, 300), torch.randn(32, 300)
    test_near(cos_loss(a, b), (1 - F.cosine_similarity(a, b, dim=-1)).mean(), eps=1e-6)


def test_cos_loss_same_direction_zero_opposite_two_right_angle_one():
    torch.manual_seed(1)
    a = torch.randn(8, 20)
    assert abs(float(cos_loss(a, 5 * a))) < 1e-6
    test_near(cos_loss(a, -0.5 * a), 2.)
    test_near(cos_loss(torch.tensor([[2., 0.]]), torch.tensor([[0., -3.]])), 1.)


def test_cos_loss_gradient_matches_torch_cosine_similarity():
    torch.manual_seed(2)
    a, b = torch.randn(6, 10, requires_grad=True), torch.randn(6, 10)
    cos_loss(a, b).backward()
    g = a.grad.clone(); a.grad = None
    (1 - F.cosine_similarity(a, b, dim=-1)).mean().backward()
    test_near(g, a.grad, eps=1e-6)


def test_cos_loss_zero_prediction_is_finite():
    assert torch.isfinite(cos_loss(torch.zeros(2, 4), torch.ones(2, 4)))


def test_vector_target_loss_and_nearest_class():
    torch.manual_seed(3)
    cv, pred, y = unit_rows(torch.randn(5, 16)), torch.randn(12, 16), torch.randint(0, 5, (12,))
    test_near(VectorTargetLoss(cv)(pred, y), cos_loss(pred, cv[y]))
    test_near(VectorTargetLoss(cv, F.l1_loss)(pred, y), F.l1_loss(pred, cv[y]))
    loop = [max(range(5), key=lambda c: float(F.cosine_similarity(pred[i], cv[c], dim=0))) for i in range(12)]
    test_eq(nearest_class(pred, cv).tolist(), loop)
    acc = NearestClassAccuracy(cv)
    test_eq(acc.__name__, 'nearest_acc')
    test_near(acc(pred, y), sum(l == t for l, t in zip(loop, y.tolist())) / 12)
    test_eq(acc(3 * cv[y], y), 1.)


# ---------------------------------------------------------------- top-k search

def topk_loop(q, keys, k, cosine):
    "Brute force: score every key in Python, sort by (-score, index)"
    if cosine: q, keys = unit_rows(q), unit_rows(keys)
    out = []
    for x in q.tolist():
        scored = sorted((-sum(a * b for a, b in zip(x, y)), j) for j, y in enumerate(keys.tolist()))
        out.append([j for _, j in scored[:k]])
    return out


@given(st.integers(1, 9), st.integers(1, 25), st.integers(1, 5), st.integers(1, 6), st.integers(0, 10**6))
@settings(max_examples=150, deadline=None, database=None)
def test_topk_matches_brute_force_with_ties(n_q, n_keys, dim, bs, seed):
    g = torch.Generator().manual_seed(seed)
    q = torch.randint(-2, 3, (n_q, dim), generator=g).float()          # small integers: exact scores, many ties
    keys = torch.randint(-2, 3, (n_keys, dim), generator=g).float()
    k = 1 + seed % n_keys
    scores, idxs = topk_search(q, keys, k, bs=bs, cosine=False)
    test_eq(idxs.tolist(), topk_loop(q, keys, k, cosine=False))
    test_eq(scores, (q @ keys.T).gather(1, idxs))
    assert (scores[:, :-1] >= scores[:, 1:]).all()


def test_topk_cosine_matches_loop_and_batches_agree():
    torch.manual_seed(4)
    q, keys = torch.randn(40, 8), torch.randn(300, 8)
    s1, i1 = topk_search(q, keys, 7, bs=1024)
    s2, i2 = topk_search(q, keys, 7, bs=3)
    test_eq(i1, i2); test_near(s1, s2, eps=1e-6)          # another matmul shape may round differently
    test_eq(i1.tolist(), topk_loop(q, keys, 7, cosine=True))
    test_near(s1[:, 0], F.cosine_similarity(q, keys[i1[:, 0]], dim=-1), eps=1e-5)


@given(st.integers(1, 6), st.integers(1, 40), st.integers(0, 10**6))
@settings(max_examples=150, deadline=None, database=None)
def test_topk_rows_equals_a_full_stable_sort(n_rows, n_cols, seed):
    "Rows with few distinct values: ties before, at and after the k-th place; also rows without ties"
    g = torch.Generator().manual_seed(seed)
    s = torch.randint(0, 1 + seed % 4, (n_rows, n_cols), generator=g).float()
    if seed % 3 == 0: s = torch.randn(n_rows, n_cols, generator=g)
    k = 1 + seed % n_cols
    v, j = topk_rows(s, k)
    vs, js = torch.sort(s, dim=1, descending=True, stable=True)
    test_eq(j, js[:, :k]); test_eq(v, vs[:, :k])


def test_topk_rows_tie_straddling_the_kth_place():
    s = torch.tensor([[1., 3., 2., 2., 2., 0.],         # the 2s straddle k=3: keep the lower indices 2 and 3
                      [5., 4., 3., 2., 1., 0.]])        # no tie: topk's set as it is
    test_eq(topk_rows(s, 3)[1].tolist(), [[1, 2, 3], [0, 1, 2]])
    test_eq(topk_rows(s, 3)[0].tolist(), [[3., 2., 2.], [5., 4., 3.]])


def test_topk_ties_go_to_lower_index():
    keys = torch.tensor([[1., 0.], [0., 1.], [1., 0.], [2., 0.]])     # rows 0, 2 and 3 point the same way
    test_eq(topk_search(torch.tensor([1., 0.]), keys, 4)[1].tolist(), [0, 2, 3, 1])


def test_query_word_is_its_own_nearest_neighbour():
    torch.manual_seed(5)
    space = WordSpace([f'w{i}' for i in range(200)], torch.randn(200, 16))
    _, idxs = topk_search(space.vecs, space.vecs, 3, bs=64)
    test_eq(idxs[:, 0], torch.arange(200))
    test_eq(space.words[int(topk_search(space['w17'], space.vecs, 1)[1][0])], 'w17')


def test_topk_bad_input_names_the_problem():
    keys = torch.randn(5, 3)
    with pytest.raises(ValueError, match='k=6'): topk_search(torch.randn(2, 3), keys, 6)
    with pytest.raises(ValueError, match='k=0'): topk_search(torch.randn(2, 3), keys, 0)
    with pytest.raises(ValueError, match=r'\(2, 4\)'): topk_search(torch.randn(2, 4), keys, 2)


def test_recall_at_k():
    test_eq(recall_at_k([[1, 2], [3, 4]], [[2, 1], [3, 5]]), 0.75)
    test_eq(recall_at_k(torch.tensor([[0, 1, 2]]), torch.tensor([[5, 6, 7]])), 0.)
    with pytest.raises(ValueError, match='1 approximate and 2 exact'): recall_at_k([[1]], [[1], [2]])


def test_hnsw_index_finds_the_exact_neighbours_of_a_small_set():
    pytest.importorskip('hnswlib', reason='hnswlib is optional (python -m pip install hnswlib)')
    torch.manual_seed(8)
    keys = torch.randn(500, 16)
    index = hnsw_index(keys, ef=100)
    approx, _ = index.knn_query(keys.numpy(), k=5, num_threads=1)
    _, exact = topk_search(keys, keys, 5)
    assert recall_at_k(approx.astype('int64'), exact) > 0.95


def test_hnsw_index_is_none_without_hnswlib(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, 'hnswlib', None)             # makes `import hnswlib` raise ImportError
    assert hnsw_index(torch.randn(10, 4)) is None


# ---------------------------------------------------------------- word spaces

def test_word_space_unit_rows_and_errors():
    space = WordSpace(['a', 'b', 'pad'], torch.tensor([[3., 4.], [0., -2.], [0., 0.]]), source='test')
    test_near(space['a'], torch.tensor([0.6, 0.8]))
    test_eq(space['pad'], torch.zeros(2))                              # a zero row stays zero
    test_near(space.sim('a', 'b'), -0.8)
    assert 'a' in space and 'z' not in space
    with pytest.raises(KeyError, match="'z'.*test"): space['z']
    with pytest.raises(ValueError, match='twice'): WordSpace(['a', 'a'], torch.eye(2))
    with pytest.raises(ValueError, match='3 words'): WordSpace(['a', 'b', 'c'], torch.eye(2))


def test_word_space_from_a_saved_language_model(tmp_path):
    torch.manual_seed(6)
    vocab = ['xxunk', 'xxpad', 'the', 'dog', 'cat', ',']
    cfg = dict(vocab_sz=len(vocab), emb_sz=8, n_hid=12, n_layers=2, pad_token=1)
    model = get_language_model(**cfg)
    save_pretrained(tmp_path/'lm', model, vocab, cfg)
    space = load_word_space(tmp_path/'lm')
    test_eq(space.words, vocab)
    test_near(space.vecs, unit_rows(model[0].emb.weight.detach()))
    test_eq(word_space_from_lm(model, vocab).vecs, space.vecs)
    test_eq(content_words(space).words, ['the', 'dog', 'cat'])
    with pytest.raises(ValueError, match='6 embedding rows'): word_space_from_lm(model, vocab[:5])


def test_missing_language_model_says_how_to_make_it(tmp_path):
    with pytest.raises(FileNotFoundError, match='12b_lm_pretrain'): load_word_space(tmp_path/'nothing')


def test_read_vec_file(tmp_path):
    fn = tmp_path/'v.vec'
    fn.write_text('3 3\ncat 1 0 0 \ndog 0.6 0.8 0\nemu 0 0 -2\n', encoding='utf-8')   # fastText ends lines with a space
    space = read_vec_file(fn)
    test_eq(space.words, ['cat', 'dog', 'emu'])
    test_near(space.sim('cat', 'dog'), 0.6)
    test_eq(read_vec_file(fn, max_words=2).words, ['cat', 'dog'])
    (tmp_path/'h.vec').write_text('cat 1 0\n', encoding='utf-8')
    with pytest.raises(ValueError, match='h.vec line 1'): read_vec_file(tmp_path/'h.vec')
    (tmp_path/'n.vec').write_text('1 2\ncat 1 x\n', encoding='utf-8')
    with pytest.raises(ValueError, match='n.vec line 2'): read_vec_file(tmp_path/'n.vec')
    (tmp_path/'s.vec').write_text('2 2\ncat 1 0\ndog 1\n', encoding='utf-8')
    with pytest.raises(ValueError, match='s.vec line 3'): read_vec_file(tmp_path/'s.vec')
    with pytest.raises(FileNotFoundError, match='no.vec'): read_vec_file(tmp_path/'no.vec')


@given(st.lists(st.integers(-1, 4), max_size=30), st.integers(1, 4))
@settings(max_examples=100, deadline=None, database=None)
def test_cooccurrence_counts_match_a_loop(ids, window):
    n = 5
    loop = torch.zeros(n, n, dtype=torch.float64)
    for i, a in enumerate(ids):
        for j in range(max(0, i - window), min(len(ids), i + window + 1)):
            if j != i and a >= 0 and ids[j] >= 0: loop[a, ids[j]] += 1
    test_eq(cooccurrence_counts(ids, n, window), loop)


def test_ppmi_matches_its_definition():
    c = torch.tensor([[0., 3., 1.], [3., 2., 0.], [1., 0., 5.]], dtype=torch.float64)
    tot, row = c.sum(), c.sum(1)
    want = torch.zeros(3, 3, dtype=torch.float64)
    for i in range(3):
        for j in range(3):
            if c[i, j] > 0: want[i, j] = max(0., math.log(c[i, j] / tot / (row[i] / tot * row[j] / tot)))
    test_near(ppmi(c), want)


def test_standin_word_space_is_deterministic_and_learns_contexts(tmp_path):
    import random
    rng = random.Random(0)
    animals, tools = ['cat', 'dog', 'cow'], ['saw', 'drill', 'hammer']
    lines = [f'the {rng.choice(animals)} eats grass and the {rng.choice(animals)} sleeps . '
             f'a {rng.choice(tools)} cuts wood with a {rng.choice(tools)} .' for _ in range(300)]
    fn = tmp_path/'text.txt'
    fn.write_text('\n'.join(lines), encoding='utf-8')
    s1 = standin_word_space(fn, n_words=20, dim=6, extra=['unicorn'], min_count=1)
    s2 = standin_word_space(fn, n_words=20, dim=6, extra=['unicorn'], min_count=1)
    test_eq(s1.words, s2.words); test_eq(s1.vecs, s2.vecs)
    test_eq(len(s1), 15)                                     # every alphabetic word; not '.', not the unseen extra
    few = standin_word_space(fn, n_words=9, dim=4, extra=['cow', 'unicorn'], min_count=1)
    test_eq(few.words[-1], 'cow'); assert 'cat' not in few and len(few) == 10
    assert s1.sim('cat', 'dog') > s1.sim('cat', 'saw') + 0.2
    assert s1.sim('saw', 'drill') > s1.sim('dog', 'drill') + 0.2


# ---------------------------------------------------------------- class-name targets

def small_space():
    return WordSpace(['garbage', 'truck', 'fish', 'dog', 'english'],
                     torch.tensor([[1., 0., 0.], [0., 2., 0.], [0., 0., 1.], [1., 1., 1.], [0., 1., 1.]]), source='small')


def test_multi_word_target_is_the_normalised_mean():
    space = small_space()
    v, used = name_vector('Garbage Truck', space)
    test_eq(used, ['garbage', 'truck'])
    test_near(v, unit_rows((space['garbage'] + space['truck']) / 2))
    test_near(v.norm(), 1.)


def test_missing_word_is_substituted_or_left_out_with_a_warning():
    space = small_space()
    with pytest.warns(MissingWordWarning, match="'springer'.*using 'dog'"):
        v, used = name_vector('English springer', space, NAME_SUBSTITUTES)
    test_eq(used, ['english', 'dog'])
    with pytest.warns(MissingWordWarning, match="'blue'.*left out"):
        test_eq(name_vector('blue truck', space)[1], ['truck'])


def test_name_with_no_word_left_is_an_error():
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        with pytest.raises(KeyError, match="tench"): name_vector('tench', small_space())
        with pytest.raises(KeyError, match="chain saw"): name_vector('chain saw', small_space(), NAME_SUBSTITUTES)


def test_class_targets_stack_one_unit_row_per_class():
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        vecs, used = class_targets(['tench', 'garbage truck', 'dog'], small_space(), NAME_SUBSTITUTES)
    test_eq(vecs.shape, (3, 3))
    test_near(vecs.norm(dim=1), torch.ones(3))
    test_eq(used, [['fish'], ['garbage', 'truck'], ['dog']])
    test_eq(len(IMAGENETTE_NAMES), 10)


# ---------------------------------------------------------------- model and learner

def test_devise_model_shape_and_head():
    m = devise_model(xresnet18, 300, n_hidden=1024, p=0.2)
    test_eq(m.eval()(torch.randn(2, 3, 32, 32)).shape, (2, 300))
    linears = [l for l in m[1] if isinstance(l, nn.Linear)]
    test_eq([(l.in_features, l.out_features) for l in linears], [(1024, 1024), (1024, 300)])
    test_eq([l.p for l in m[1] if isinstance(l, nn.Dropout)], [0.1, 0.2])
    assert not any(isinstance(l, (nn.Softmax, nn.LogSoftmax)) for l in m.modules())
    with pytest.raises(ValueError, match='wider'): devise_head(512, 300, n_hidden=300)


class _Pairs(torch.utils.data.Dataset):
    def __init__(self, x, y): self.x, self.y = x, y
    def __len__(self): return len(self.x)
    def __getitem__(self, i): return self.x[i], self.y[i]


def test_devise_learner_fits_and_get_preds_is_ordered():
    torch.manual_seed(7)
    n, cv = 32, unit_rows(torch.randn(3, 8))
    x = torch.randint(0, 256, (n, 3, 16, 16), dtype=torch.uint8)
    y = torch.arange(n) % 3
    dl = lambda shuffle: torch.utils.data.DataLoader(_Pairs(x, y), batch_size=8, shuffle=shuffle, drop_last=shuffle)
    data = DataBunch(dl(True), dl(False), c_in=3, c_out=3)
    learn = devise_learner(xresnet18, data, cv, adam_opt(), lr=1e-3, n_hidden=16, progress=False, device='cpu')
    learn.fit(1)
    preds, ys = learn.get_preds()                                     # lesson 09b's, through the learner's callbacks
    test_eq(preds.shape, (n, 8)); test_eq(ys, y)
    learn.model.eval()
    with torch.no_grad(): test_eq(preds, torch.cat([learn.model(xb.float() / 255) for xb, _ in data.valid_dl]))
    with pytest.raises(ValueError, match='4 rows'):
        devise_learner(xresnet18, data, unit_rows(torch.randn(4, 8)), adam_opt(), progress=False)
