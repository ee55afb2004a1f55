"""Lesson 11b: distributed training from scratch, on the CPU (gloo, 127.0.0.1, one thread per rank).

- `run_ranks`: `hello` gives every rank the sum over ranks; a rank that raises gives a `RankError` naming the rank
  and its error's last line, within seconds; a rank that hangs gives "did not finish" once `timeout` is past; a
  rank that dies without reporting gives "died (exit code 3)", one whose result cannot be pickled "died (exit
  code 0) without a result", at once. After a failure no worker is left running. Namedtuples come back as such.
  (The hanging and dying workers are in tests/dist_workers.py: `run_ranks` needs importable functions.)
- `ShardSampler` against torch's `DistributedSampler` (Hypothesis: sizes, world sizes, seeds, epochs, with and
  without shuffling): the same indices on every rank; padded, every item at least once and `ceil(n / world)`
  per rank; unpadded, every item exactly once, and `len()` the length of each rank's list. A rank outside
  `0..world-1` is a `ValueError`.
- Data parallelism on MNIST: 2 ranks × batch 32, gradients averaged by hand, give the weights of 1 process ×
  batch 64 (1e-5), bit-identical on both ranks; `DistributedDataParallel` gives those of the run by hand (1e-6).
- `DistBatchNorm` against one `nn.BatchNorm` on the whole batch: the checks of tests/dist_bn_check.py (fp64 to
  1e-12, fp32, a large mean in fp32, momentum=None, affine=False, no running statistics, a rank without items,
  bf16) in 2 ranks of `run_ranks`; `dist_bn_halves` (mean 1000, fp64) for outputs, input gradients and running
  statistics (1e-12); `convert_dist_batchnorm` keeps the parameters (the same tensors), buffers and state-dict keys.
- `fit_on_ranks` (MNIST, 1024 training and 301 validation items, 2 epochs, 2 ranks): the ranks end bit-identical
  with the same statistics, every validation item is counted once (301) each epoch, and rank 1 logs nothing. A
  run stopped after epoch 1 and resumed from its checkpoint ends bit-identical to the uninterrupted one.
- `read_training_checkpoint`: a one-line `CheckpointError` for a missing, an empty, a JSON file, a dict without
  model/opt/epoch and an epoch of -1; `resume_training` into a model of another shape, a `CheckpointError`.
- `rank_loaders`: a batch size that is not a multiple of the world size is a `ValueError`; the ranks' training
  shards are disjoint, and an odd validation set is split with each item once.
- `step_times` in one rank: two floats >= 0 (no speed is asserted).
"""
import json, math, multiprocessing, time

import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn
from torch.utils.data import DistributedSampler

import dist_bn_check
import dist_workers
from coursekit.checkpoint import CheckpointError, MissingCheckpointError, save_torch
from exp.nb_00 import test_eq, test_near
from exp.nb_03 import Dataset
from exp.nb_08 import DataBunch
from exp.nb_09b import Learner
from exp.nb_11 import xresnet18
from exp.nb_11b import (RankError, run_ranks, hello, fail_on_rank, ShardSampler, mnist_slice, tiny_mlp, flat_params,
                        train_by_hand, train_ddp, DistBatchNorm, convert_dist_batchnorm, dist_bn_halves, rank_loaders,
                        read_training_checkpoint, resume_training, fit_on_ranks, step_times)

pytestmark = pytest.mark.usefixtures('one_thread')


@pytest.fixture(scope='module')
def mnist():
    "MNIST's first 1024 training and 301 validation images (301: the two ranks validate 151 and 150)"
    return mnist_slice(1024, 301)


def no_workers_left():
    "Every worker of the last `run_ranks` has ended (and been reaped)"
    return multiprocessing.active_children() == []


# ---------------------------------------------------------------- run_ranks

def test_run_ranks_hello():
    test_eq(run_ranks(hello, world=2), [(0, 2, 3.), (1, 2, 3.)])
    test_eq(run_ranks(hello, world=1), [(0, 1, 1.)])


def test_run_ranks_a_failing_rank():
    t0 = time.monotonic()
    with pytest.raises(RankError) as info: run_ranks(fail_on_rank, 1, world=2, timeout=60)
    assert time.monotonic() - t0 < 20
    msg = str(info.value)
    assert 'rank 1 failed: ValueError: rank 1 cannot go on' in msg and '\n' not in msg, msg
    assert any('Traceback' in n for n in getattr(info.value, '__notes__', []))    # the traceback, as a note
    assert no_workers_left()


def test_run_ranks_a_hanging_rank_times_out():
    t0 = time.monotonic()
    with pytest.raises(RankError, match='did not finish in 3 s'):
        run_ranks(dist_workers.sleep_on_rank, 1, 60., world=2, timeout=3)
    assert time.monotonic() - t0 < 15
    assert no_workers_left()                           # the sleeping rank was killed


def test_run_ranks_a_rank_that_dies():
    t0 = time.monotonic()
    with pytest.raises(RankError, match=r'rank 1 died \(exit code 3\)'):
        run_ranks(dist_workers.exit_on_rank, 1, 3, world=2, timeout=60)
    assert time.monotonic() - t0 < 20
    assert no_workers_left()


def test_run_ranks_a_result_that_cannot_be_sent():
    "The rank exits 0 without a result (the queue could not pickle it): an error at once, not a wait for the timeout"
    t0 = time.monotonic()
    with pytest.raises(RankError, match=r'died \(exit code 0\) without a result'):
        run_ranks(dist_workers.unpicklable_result, world=2, timeout=60)
    assert time.monotonic() - t0 < 20
    assert no_workers_left()


def test_run_ranks_namedtuples_and_tensors_come_back():
    res = run_ranks(dist_workers.named_result, world=2)
    test_eq([type(r).__name__ for r in res], ['Pair', 'Pair'])
    test_eq(res[1].rank, 1); test_eq(res[1].value, torch.ones(2))


def test_dist_batchnorm_needs_two_values_per_channel():
    "One value per channel over all ranks cannot be normalised (nn.BatchNorm refuses it too): every rank raises"
    with pytest.raises(RankError, match='1 value.s. per channel over all ranks'):
        run_ranks(dist_workers.dist_bn_one_value, world=2, timeout=60)


# ---------------------------------------------------------------- ShardSampler

@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 200), world=st.integers(1, 8), seed=st.integers(0, 2**31), epoch=st.integers(0, 3),
       shuffle=st.booleans())
def test_shard_sampler_is_distributed_sampler(n, world, seed, epoch, shuffle):
    padded = []
    for r in range(world):
        ours = ShardSampler(n, r, world, shuffle=shuffle, seed=seed)
        theirs = DistributedSampler(range(n), num_replicas=world, rank=r, shuffle=shuffle, seed=seed)
        ours.set_epoch(epoch); theirs.set_epoch(epoch)
        idx = list(ours)
        test_eq(idx, list(theirs))
        test_eq(len(ours), len(idx))
        test_eq(len(idx), math.ceil(n / world))
        padded += idx
    test_eq(sorted(set(padded)), list(range(n)))                  # every item, at least once
    test_eq(len(padded), math.ceil(n / world) * world)            # padded to a multiple of world
    once = []
    for r in range(world):
        s = ShardSampler(n, r, world, shuffle=shuffle, seed=seed, pad=False)
        s.set_epoch(epoch)
        idx = list(s)
        test_eq(len(s), len(idx))
        once += idx
    test_eq(sorted(once), list(range(n)))                         # pad=False: every item exactly once


@pytest.mark.parametrize('rank, world', [(2, 2), (-1, 2), (0, 0)])
def test_shard_sampler_bad_rank(rank, world):
    with pytest.raises(ValueError, match='is not in'): ShardSampler(10, rank, world)


# ---------------------------------------------------------------- data parallelism by hand and with DDP

def train_one_process(x, y, steps=5, bs=64, lr=0.1):
    "`train_by_hand`'s run in one process with the whole global batch (as the notebook's)"
    model = tiny_mlp(seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for i in range(steps):
        idx = torch.arange(i * bs, (i + 1) * bs)
        nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step(); opt.zero_grad()
    return flat_params(model)


def test_two_ranks_by_hand_is_one_process_and_ddp_is_by_hand(mnist):
    x, y = mnist[0][:512], mnist[1][:512]                         # mnist_slice(512)'s
    by_hand = run_ranks(train_by_hand, x, y, world=2)
    assert isinstance(by_hand[0], torch.Tensor)                   # tensors come back as tensors
    assert torch.equal(by_hand[0], by_hand[1])                    # the two copies are bit-identical
    one = train_one_process(x, y)
    assert not torch.equal(one, flat_params(tiny_mlp(seed=0)))    # it trained
    test_near(by_hand[0], one, 1e-5)
    ddp = run_ranks(train_ddp, x, y, world=2)
    assert torch.equal(ddp[0], ddp[1])
    test_near(ddp[0], by_hand[0], 1e-6)


# ---------------------------------------------------------------- DistBatchNorm

def test_dist_batchnorm_oracle_checks():
    test_eq(run_ranks(dist_bn_check.run_all, world=2), ['ok', 'ok'])


def test_dist_bn_halves_is_the_whole_batch():
    halves = run_ranks(dist_bn_halves, 8, 3, 1000., world=2)
    torch.manual_seed(0)
    x, w = torch.randn(8, 3, 4, 4, dtype=torch.float64) + 1000., torch.randn(8, 3, 4, 4, dtype=torch.float64)
    x.requires_grad_()
    bn = nn.BatchNorm2d(3).double()
    y = bn(x); (y * w).sum().backward()
    test_eq([h[0].shape[0] for h in halves], [4, 4])
    test_near(torch.cat([h[0] for h in halves]), y.detach(), 1e-12)   # outputs of the whole batch
    test_near(torch.cat([h[1] for h in halves]), x.grad, 1e-12)       # and its input gradients
    for h in halves: test_near(h[2], bn.running_mean, 1e-12); test_near(h[3], bn.running_var, 1e-12)


def test_convert_dist_batchnorm_keeps_the_weights():
    torch.manual_seed(0)
    model = xresnet18(c_in=3, c_out=4)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d): m.running_mean.uniform_(); m.weight.uniform_()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    params = list(model.parameters())
    x = torch.randn(2, 3, 32, 32)
    model.eval(); y = model(x)
    model = convert_dist_batchnorm(model)
    n_bn = sum(isinstance(m, DistBatchNorm) for m in model.modules())
    assert n_bn == 3 + 8 * 2 + 3 and not any(type(m) is torch.nn.BatchNorm2d for m in model.modules())
    after = list(model.parameters())
    assert len(after) == len(params) and all(a is b for a, b in zip(params, after))   # the optimizer's tensors
    assert model.state_dict().keys() == before.keys()                   # checkpoints load into the plain model
    for k, v in model.state_dict().items(): assert torch.equal(v, before[k]), k
    test_eq(model.training, False)
    torch.testing.assert_close(model(x), y, rtol=0, atol=0)              # eval: the running statistics
    model.train(); xb = torch.randn(4, 3, 32, 32)                        # no process group: plain batch norm
    ref = xresnet18(c_in=3, c_out=4); ref.load_state_dict(before); ref.train()
    torch.testing.assert_close(model(xb), ref(xb), rtol=0, atol=0)
    with pytest.raises(ValueError, match='expects'): DistBatchNorm(3)(torch.randn(3))


# ---------------------------------------------------------------- fit_on_ranks, checkpoints, resuming

@pytest.fixture(scope='module')
def full_run(mnist):
    "An uninterrupted 2-epoch `fit_on_ranks` in 2 ranks: (weights, history, log) by rank"
    return run_ranks(fit_on_ranks, *mnist, 2, world=2)


@pytest.fixture(scope='module')
def stopped_run(mnist, tmp_path_factory):
    "The same fit stopped after epoch 1, with a checkpoint: (its path, its results by rank)"
    path = tmp_path_factory.mktemp('ckpt') / 'run.pt'
    return path, run_ranks(fit_on_ranks, *mnist, 2, path=str(path), stop_after=1, world=2)


def stats(history): return [{k: v for k, v in row.items() if k != 'train_seconds'} for row in history]


def test_fit_on_ranks(full_run):
    (w0, h0, log0), (w1, h1, log1) = full_run
    assert torch.equal(w0, w1)                                    # the ranks end bit-identical
    test_eq(stats(h0), stats(h1))                                 # with the same statistics, summed over ranks
    test_eq([h['epoch'] for h in h0], [0, 1])
    test_eq([h['n_valid'] for h in h0], [301, 301])               # every validation item once
    test_eq([h['n_train'] for h in h0], [1024, 1024])             # 16 global batches of 64
    assert log0 and log1 == []                                    # only rank 0 logs
    assert h0[-1]['valid_accuracy'] > 0.6


def test_stop_and_resume_is_the_uninterrupted_run(mnist, full_run, stopped_run):
    path, stopped = stopped_run
    test_eq([h['epoch'] for h in stopped[0][1]], [0])
    assert not torch.equal(stopped[0][0], full_run[0][0])
    ckpt = read_training_checkpoint(path)
    test_eq(ckpt['epoch'], 1)
    test_eq(stats(ckpt['history']), stats(full_run[0][1][:1]))
    resumed = run_ranks(fit_on_ranks, *mnist, 2, resume=str(path), world=2)
    for r in range(2): assert torch.equal(resumed[r][0], full_run[0][0]), f'rank {r}'
    test_eq(stats(resumed[0][1]), stats(full_run[0][1]))          # the history goes on from the checkpoint's


def _training_ckpt(epoch):
    return dict(model={'w': torch.zeros(2)}, opt={'hypers': [{'lr': 0.1}]}, epoch=epoch)

BAD_CHECKPOINTS = {
    'missing': (None, 'no such checkpoint'),
    'empty': (lambda p: p.write_bytes(b''), 'empty'),
    'json': (lambda p: p.write_text(json.dumps({'model': {}, 'opt': {}, 'epoch': 1})), 'JSON'),
    'no keys': (lambda p: save_torch({'weights': torch.zeros(2)}, p), 'lacks model, opt, epoch'),
    'epoch -1': (lambda p: save_torch(_training_ckpt(-1), p), 'its epoch'),
}

@pytest.mark.parametrize('case', BAD_CHECKPOINTS)
def test_read_training_checkpoint_refuses(case, tmp_path):
    write, says = BAD_CHECKPOINTS[case]
    path = tmp_path / 'run.pt'
    if write: write(path)
    with pytest.raises(CheckpointError) as info: read_training_checkpoint(path)
    msg = str(info.value)
    assert '\n' not in msg and str(path) in msg and says in msg, msg
    if case == 'missing': assert isinstance(info.value, MissingCheckpointError)


def test_read_training_checkpoint_accepts(tmp_path):
    save_torch(_training_ckpt(0), tmp_path / 'ok.pt')
    test_eq(read_training_checkpoint(tmp_path / 'ok.pt')['epoch'], 0)


def test_resume_training_into_another_shape(stopped_run, mnist):
    ckpt = read_training_checkpoint(stopped_run[0])
    x, y, xv, yv = mnist
    data = DataBunch(*rank_loaders(Dataset(x, y), Dataset(xv, yv), 64, 0, 1), c_in=784, c_out=10)
    model = nn.Sequential(nn.Linear(784, 40), nn.BatchNorm1d(40), nn.ReLU(), nn.Linear(40, 10))   # 40, not 50
    learn = Learner(model, data, nn.functional.cross_entropy, lr=0.5)
    with pytest.raises(CheckpointError, match='shape mismatches') as info: resume_training(learn, ckpt, 'run.pt')
    assert '\n' not in str(info.value)


# ---------------------------------------------------------------- rank_loaders, step_times

def test_rank_loaders_batch_size_must_divide():
    ds = Dataset(torch.zeros(8, 1), torch.zeros(8))
    with pytest.raises(ValueError, match='multiple of the world size'): rank_loaders(ds, ds, 33, 0, 2)


def test_rank_loaders_split_the_items():
    train, valid = Dataset(torch.arange(12.)[:, None], torch.arange(12)), Dataset(torch.zeros(11, 1), torch.arange(11))
    loaders = [rank_loaders(train, valid, 4, r, 2) for r in range(2)]
    t = [torch.cat([yb for _, yb in tl]).tolist() for tl, _ in loaders]
    test_eq([len(o) for o in t], [6, 6])
    test_eq(sorted(t[0] + t[1]), list(range(12)))                 # disjoint training shards
    v = [torch.cat([yb for _, yb in vl]).tolist() for _, vl in loaders]
    test_eq([len(o) for o in v], [6, 5])
    test_eq(sorted(v[0] + v[1]), list(range(11)))                 # each validation item once


def test_step_times_one_rank():
    (times,) = run_ranks(step_times, steps=3, bs=8, width=32, world=1)
    test_eq(len(times), 2)
    assert all(isinstance(t, float) and t >= 0 for t in times), times
