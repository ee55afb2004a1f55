"""train_imagenette.py, for real on this CPU: two gloo processes under torchrun, resume, bad input.

- `torchrun --standalone --nproc_per_node 2` (127.0.0.1 only, one thread per process, bounded by a timeout) on a
  tiny Imagenette subset: the run succeeds, both ranks end with bit-identical weights and buffers, and the
  validation accuracy the script reports is that of a single-process evaluation of the saved model on the same
  items (all 37 of them, an odd number: none dropped or counted twice).
- One epoch of 2 ranks × batch b gives the weights of 1 process × batch 2b (a small model without batch norm), and
  so does a model with batch norm under `--sync-bn` (and not without it). `DistBatchNorm` itself, the `--sync-bn`
  of gloo, is checked against `nn.BatchNorm` in tests/test_nb11b_distributed.py.
- A run stopped after epoch 1 (`--stop-after`), or killed by SIGKILL after its first checkpoint, and resumed from
  its checkpoint ends with the weights and optimizer state of an uninterrupted run, bit for bit; fp16 keeps its
  loss-scale state across the resume.
- Exit status 2 and one line naming the argument, before any process group or epoch (checked in-process with
  WORLD_SIZE=2 and no rendezvous address: a check made after `init_process_group` would fail there): unknown arch,
  missing or empty data folder, a data folder of text files, a `.JPEG` that is not an image, every numeric
  argument out of range, --bs smaller than the number of processes, --n-train smaller than the number of classes,
  --save or --dump-weights naming a folder or below a file, a checkpoint of another arch or another head, a
  checkpoint holding a pickled object, an empty, cut or non-PyTorch checkpoint, many processes on MPS. Under
  torchrun, a bad image ends both ranks with exit 2 and one message (rank 0's), without a hang.
"""
import json, os, shutil, signal, subprocess, sys, time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from coursekit.checkpoint import cpu_state_dict, read_torch, save_torch
from exp.nb_00 import URLs, test_eq, untar_data
from exp.nb_08 import NormalizeChan
from exp.nb_10 import byte_to_float
from exp.nb_10b import LabelSmoothingCrossEntropy
from exp.nb_11 import imagenette_split, xresnet18
import train_imagenette
from train_imagenette import main, tiny_cnn

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / 'train_imagenette.py'
pytestmark = pytest.mark.usefixtures('one_thread')


@pytest.fixture(scope='module')
def data_dir(): return untar_data(URLs.IMAGENETTE_160)

@pytest.fixture(scope='module')
def small_data(data_dir, tmp_path_factory):
    "3 classes of the real Imagenette: 6 training and 2 validation images each"
    root = tmp_path_factory.mktemp('small') / 'imagenette'
    for wnid in sorted(p.name for p in (data_dir / 'train').iterdir())[:3]:
        for split, n in (('train', 6), ('val', 2)):
            (root / split / wnid).mkdir(parents=True)
            for f in sorted((data_dir / split / wnid).iterdir())[:n]: shutil.copy(f, root / split / wnid / f.name)
    return root

@pytest.fixture(scope='module')
def bad_image_data(small_data, tmp_path_factory):
    "`small_data` and a training file named .JPEG that holds text"
    root = tmp_path_factory.mktemp('bad') / 'imagenette'
    shutil.copytree(small_data, root)
    wnid = sorted(p.name for p in (root / 'train').iterdir())[1]
    (root / 'train' / wnid / 'bad.JPEG').write_text('not an image\n')
    return root

def tiny_args(data, *extra):
    "One quick epoch of tiny_cnn on all of `data` (`small_data` and its variants)"
    return ['--arch', 'tiny_cnn', '--size', '32', '--bs', '4', '--epochs', '1', '--workers', '0', '--data', str(data),
            '--device', 'cpu', *map(str, extra)]

def small_args(data_dir, *extra, arch='xresnet18', device='cpu'):
    "The CPU (gloo) path, also on a machine with GPUs: two processes on one GPU would be refused"
    return ['--arch', arch, '--size', '32', '--bs', '16', '--n-classes', '2', '--n-train', '64', '--n-valid', '37',
            '--workers', '0', '--data', str(data_dir), *map(str, extra), '--device', device]

def torchrun(args, nproc=2, timeout=150, script=SCRIPT, check=True):
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1', 'GLOO_SOCKET_IFNAME': 'lo',
           'MASTER_ADDR': '127.0.0.1', 'PYTHONPATH': os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')])}
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', str(nproc),
           str(script), *args]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if check: assert r.returncode == 0, f'torchrun failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}'
    return r

def load(p): return read_torch(p)


def evaluate(ckpt, data_dir, n_valid=37):
    "Single-process evaluation of a saved xresnet18 on the validation items of `small_args`"
    ll = imagenette_split(data_dir, 32, 2, n_train=64, n_valid=n_valid, seed=0)
    model = xresnet18(c_in=3, c_out=2)
    model.load_state_dict(ckpt['model'])
    model.eval()
    norm = NormalizeChan(ckpt['norm']['mean'], ckpt['norm']['std'])
    xb = norm(byte_to_float(torch.stack([ll.valid[i][0] for i in range(len(ll.valid))])))
    yb = torch.tensor([ll.valid[i][1] for i in range(len(ll.valid))])
    with torch.no_grad(): pred = model(xb)
    return (pred.argmax(1) == yb).float().mean().item(), LabelSmoothingCrossEntropy(0.1)(pred, yb).item(), len(yb)


def test_two_ranks_torchrun(data_dir, tmp_path):
    r = torchrun(small_args(data_dir, '--epochs', 1, '--save', tmp_path / 'ck.pt', '--dump-weights', tmp_path / 'w'))
    assert 'final: epoch 1' in r.stdout and '2 process(es)' in r.stdout
    w0, w1 = load(tmp_path / 'w.rank0.pt'), load(tmp_path / 'w.rank1.pt')
    assert w0.keys() == w1.keys() and len(w0) > 100
    for k in w0: assert torch.equal(w0[k], w1[k]), f'ranks disagree on {k}'
    ckpt = load(tmp_path / 'ck.pt')
    for k in w0: assert torch.equal(ckpt['model'][k], w0[k])
    h = ckpt['history'][-1]
    assert (h['n_valid'], h['n_train']) == (37, 64)          # every validation item exactly once
    acc, loss, n = evaluate(ckpt, data_dir)
    assert n == 37
    assert abs(h['valid_accuracy'] - acc) < 1e-6, (h['valid_accuracy'], acc)
    assert abs(h['valid_loss'] - loss) < 1e-4 * max(1., abs(loss)), (h['valid_loss'], loss)
    assert not list(tmp_path.glob('.*tmp*'))                   # the atomic write left no temporary file


def test_ddp_two_ranks_batch_b_equals_one_process_batch_2b(data_dir, tmp_path):
    common = small_args(data_dir, '--epochs', 1, '--no-augment', '--label-smoothing', 0, '--lr', 3e-3, arch='tiny_cnn')
    torchrun(common + ['--save', str(tmp_path / 'ddp.pt')])                      # 2 ranks × 8
    assert main(common + ['--save', str(tmp_path / 'one.pt')]) == 0             # 1 process × 16
    a, b = load(tmp_path / 'ddp.pt'), load(tmp_path / 'one.pt')
    torch.manual_seed(0)
    init = tiny_cnn(3, 2).state_dict()                     # the script's initial weights (seeded the same way)
    for k in a['model']:
        torch.testing.assert_close(a['model'][k], b['model'][k], rtol=1e-4, atol=1e-6)
    assert min((b['model'][k] - init[k]).abs().max().item() for k in init) > 1e-4   # every tensor was trained
    assert a['history'][-1]['n_train'] == b['history'][-1]['n_train'] == 64
    assert abs(a['history'][-1]['train_loss'] - b['history'][-1]['train_loss']) < 1e-5


def test_sync_bn_two_ranks_batch_b_equals_one_process_batch_2b(data_dir, tmp_path):
    "With batch norm, 2 ranks × b match 1 process × 2b only when the statistics are those of the global batch"
    common = small_args(data_dir, '--epochs', 1, '--no-augment', '--label-smoothing', 0, '--lr', 3e-3, arch='tiny_bn_cnn')
    torchrun(common + ['--sync-bn', '--save', str(tmp_path / 'sync.pt')])
    torchrun(common + ['--save', str(tmp_path / 'local.pt')])       # each rank normalises by its own 8 images
    assert main(common + ['--save', str(tmp_path / 'one.pt')]) == 0
    sync, local, one = (load(tmp_path / f'{n}.pt')['model'] for n in ('sync', 'local', 'one'))
    assert any('running_var' in k for k in one)
    for k in one: torch.testing.assert_close(sync[k], one[k], rtol=1e-4, atol=1e-6)
    assert max((local[k] - one[k]).abs().max().item() for k in one if one[k].is_floating_point()) > 1e-3


def test_sync_bn_under_autocast_two_ranks_agree(data_dir, tmp_path):
    "bf16 autocast feeds DistBatchNorm bf16 activations: the run finishes, and the ranks end bit-identical"
    r = torchrun(small_args(data_dir, '--epochs', 1, '--sync-bn', '--precision', 'bf16', '--dump-weights', tmp_path / 'w',
                            arch='tiny_bn_cnn'))
    assert 'final: epoch 1' in r.stdout
    w0, w1 = load(tmp_path / 'w.rank0.pt'), load(tmp_path / 'w.rank1.pt')
    for k in w0: assert torch.equal(w0[k], w1[k]), f'ranks disagree on {k}'
    assert w0['1.running_var'].dtype == torch.float32 and w0['1.num_batches_tracked'].item() == 64 // 16


@pytest.fixture(scope='module')
def uninterrupted(data_dir, tmp_path_factory):
    "The checkpoint of an uninterrupted 3-epoch run"
    path = tmp_path_factory.mktemp('full') / 'full.pt'
    n = torch.get_num_threads()          # module-scoped fixtures are set up before `one_thread`: one thread here too,
    torch.set_num_threads(1)             # or the float sums (and so the weights) differ from the 1-thread runs
    try: assert main(small_args(data_dir, '--epochs', 3, '--save', path)) == 0
    finally: torch.set_num_threads(n)
    return load(path)

def assert_same_run(full, resumed):
    assert resumed['epoch'] == full['epoch'] == 3
    for k in full['model']: assert torch.equal(full['model'][k], resumed['model'][k]), k
    for i, s in full['opt']['state'].items():
        for name, v in s.items(): assert torch.equal(torch.as_tensor(v), torch.as_tensor(resumed['opt']['state'][i][name]))
    assert [h['valid_loss'] for h in full['history']] == [h['valid_loss'] for h in resumed['history']]


def test_resume_equals_uninterrupted(data_dir, tmp_path, uninterrupted):
    args = small_args(data_dir, '--epochs', 3, '--save', tmp_path / 'part.pt')
    assert main(args + ['--stop-after', '1']) == 0
    assert load(tmp_path / 'part.pt')['epoch'] == 1
    assert main(args + ['--resume', str(tmp_path / 'part.pt')]) == 0
    assert_same_run(uninterrupted, load(tmp_path / 'part.pt'))


def test_killed_run_resumes(data_dir, tmp_path, uninterrupted):
    "SIGKILL once the first checkpoint is there (during epoch 2 or 3): the atomic write leaves a whole checkpoint"
    ck = tmp_path / 'killed.pt'
    args = small_args(data_dir, '--epochs', 3, '--save', ck)
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(SCRIPT), *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while not ck.exists() and proc.poll() is None and time.monotonic() < deadline: time.sleep(0.02)
        proc.kill()
    finally: proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, 'the run ended before it could be killed'
    epoch = load(ck)['epoch']
    assert 1 <= epoch < 3
    assert main(args + ['--resume', str(ck)]) == 0
    assert_same_run(uninterrupted, load(ck))


def test_resume_keeps_the_loss_scale(data_dir, tmp_path):
    args = small_args(data_dir, '--epochs', 2, '--precision', 'fp16', arch='tiny_cnn')
    assert main(args + ['--save', str(tmp_path / 'full.pt')]) == 0
    assert main(args + ['--save', str(tmp_path / 'part.pt'), '--stop-after', '1']) == 0
    assert main(args + ['--save', str(tmp_path / 'part.pt'), '--resume', str(tmp_path / 'part.pt')]) == 0
    full, resumed = load(tmp_path / 'full.pt'), load(tmp_path / 'part.pt')
    assert full['scaler'] == resumed['scaler'] and full['scaler']['_growth_tracker'] == 8   # 4 clean steps per epoch
    for k in full['model']: assert torch.equal(full['model'][k], resumed['model'][k]), k


def run_main(capsys, argv):
    rc = main(argv)
    return rc, capsys.readouterr().err


def test_bad_input_exit_2(data_dir, tmp_path, capsys, monkeypatch):
    rc, err = run_main(capsys, small_args(data_dir, arch='resnet9000'))
    assert rc == 2 and '--arch resnet9000: unknown' in err
    rc, err = run_main(capsys, small_args(tmp_path / 'nowhere'))
    assert rc == 2 and 'no such folder' in err
    (tmp_path / 'empty' / 'train').mkdir(parents=True); (tmp_path / 'empty' / 'val').mkdir()
    rc, err = run_main(capsys, small_args(tmp_path / 'empty'))
    assert rc == 2 and 'non-empty train/' in err
    monkeypatch.setenv('WORLD_SIZE', '4')
    rc, err = run_main(capsys, small_args(data_dir)[:4] + ['--bs', '2'] + small_args(data_dir)[6:])
    assert rc == 2 and 'smaller than the number of processes (4)' in err
    monkeypatch.delenv('WORLD_SIZE')
    other = tmp_path / 'other.pt'
    save_torch(dict(model={}, opt={'hypers': [{}], 'state': {}}, epoch=1, args=dict(arch='xresnet50')), other)
    rc, err = run_main(capsys, small_args(data_dir, '--resume', other))
    assert rc == 2 and 'of --arch xresnet50, not xresnet18' in err
    rc, err = run_main(capsys, small_args(data_dir, '--resume', tmp_path / 'missing.pt'))
    assert rc == 2 and 'missing.pt: no such checkpoint' in err
    few = small_args(data_dir)
    few[few.index('--n-classes') + 1] = '10'; few[few.index('--n-train') + 1] = '6'
    rc, err = run_main(capsys, few)
    assert rc == 2 and '--n-train 6' in err and 'fewer than the 10 classes' in err
    few[few.index('--n-train') + 1] = '0'
    rc, err = run_main(capsys, few)
    assert rc == 2 and '--n-train must be at least 1' in err


def test_two_ranks_bad_image_exit_2(bad_image_data):
    "A .JPEG that is not an image, under torchrun: each rank finds it before the group, exits 2, rank 0 alone says why"
    r = torchrun(tiny_args(bad_image_data), timeout=90, check=False)
    assert r.returncode != 0
    assert r.stderr.count('train_imagenette.py: error:') == 1, r.stderr[-3000:]
    assert 'bad.JPEG is not an image' in r.stderr, r.stderr[-3000:]
    assert 'train_imagenette.py", line' not in r.stderr, r.stderr[-3000:]     # torchrun's traceback only, not ours
    assert 'exitcode  : 2' in r.stderr or 'exitcode: 2' in r.stderr, r.stderr[-3000:]
    assert 'process(es)' not in r.stdout                   # no rank got as far as the fit


def one_error(rc, err, start):
    "Exit status 2 and one line on stderr, the script's error starting with `start` (the argument at fault)"
    assert rc == 2, (rc, err)
    assert err.count('\n') == 1 and err.startswith(f'train_imagenette.py: error: {start}'), err
    return err


def test_data_of_text_files_exit_2(tmp_path, capsys, no_rendezvous):
    for split in ('train', 'val'):
        (tmp_path / 'txt' / split / 'n01').mkdir(parents=True)
        (tmp_path / 'txt' / split / 'n01' / 'a.txt').write_text('hello\n')
    rc, err = run_main(capsys, tiny_args(tmp_path / 'txt', '--save', tmp_path / 'ck.pt'))
    one_error(rc, err, f'--data {tmp_path / "txt"}: ')
    assert 'no file with extension' in err and not (tmp_path / 'ck.pt').exists()


def test_jpeg_that_is_not_an_image_exit_2(bad_image_data, tmp_path, capsys, no_rendezvous):
    "Found while checking the images the run will use, before the process group and the normalisation statistics"
    t0 = time.perf_counter()
    rc, err = run_main(capsys, tiny_args(bad_image_data, '--save', tmp_path / 'ck.pt'))
    assert time.perf_counter() - t0 < 30
    one_error(rc, err, f'--data {bad_image_data}: ')
    assert 'bad.JPEG is not an image' in err and not (tmp_path / 'ck.pt').exists()
    (tmp_path / 'empty').mkdir()
    shutil.copytree(bad_image_data, tmp_path / 'empty' / 'data')
    for f in (tmp_path / 'empty' / 'data').rglob('bad.JPEG'): f.write_bytes(b'')
    rc, err = run_main(capsys, tiny_args(tmp_path / 'empty' / 'data'))
    assert 'bad.JPEG is not an image' in one_error(rc, err, '--data ')


BAD_NUMBERS = [('--workers', '-1'), ('--pct-start', '1.5'), ('--pct-start', '-0.1'), ('--lr', '0'), ('--lr', '-1e-3'),
               ('--lr', 'nan'), ('--lr', 'inf'), ('--wd', '-0.01'), ('--mixup', '-0.2'), ('--label-smoothing', '1'),
               ('--label-smoothing', '-0.1'), ('--stop-after', '0'), ('--epochs', '0'), ('--size', '0'), ('--bs', '0'),
               ('--n-classes', '0'), ('--n-valid', '-5')]

def test_numeric_arguments_out_of_range_exit_2(small_data, tmp_path, capsys, no_rendezvous):
    for flag, v in BAD_NUMBERS:                          # the last value given wins (argparse)
        rc, err = run_main(capsys, tiny_args(small_data, '--save', tmp_path / 'ck.pt', f'{flag}={v}'))
        assert ' must be ' in one_error(rc, err, f'{flag} must be '), (flag, err)
        assert not (tmp_path / 'ck.pt').exists(), flag
    for flag, v in (('--pct-start', '0'), ('--pct-start', '1'), ('--label-smoothing', '0'), ('--wd', '0')):
        assert train_imagenette.check_args(train_imagenette.get_parser().parse_args([flag, v]), 1) is None   # ends allowed
    rc, err = run_main(capsys, tiny_args(small_data, '--n-classes', 5))
    assert 'has only 3 classes' in one_error(rc, err, '--n-classes 5: ')
    rc, err = run_main(capsys, tiny_args(small_data, '--bs', 20))          # 18 images: 9 for each of 2 ranks
    assert '18 training images are fewer than one batch of 10 per process' in one_error(rc, err, '--bs 20: ')


def test_save_or_dump_weights_not_a_file_name_exit_2(small_data, tmp_path, capsys, no_rendezvous):
    "Refused before any epoch (today an epoch trains, then IsADirectoryError), with the fix in the message"
    (tmp_path / 'runs').mkdir(); (tmp_path / 'notes.txt').write_text('x\n')
    rc, err = run_main(capsys, tiny_args(small_data, '--save', tmp_path / 'runs'))
    assert f'is a folder; give a file name, e.g. --save {tmp_path / "runs" / "model.pt"}' in one_error(rc, err, '--save ')
    rc, err = run_main(capsys, tiny_args(small_data, '--save', tmp_path / 'notes.txt' / 'ck.pt'))
    assert f'{tmp_path / "notes.txt"} is a file, not a folder' in one_error(rc, err, '--save ')
    rc, err = run_main(capsys, tiny_args(small_data, '--dump-weights', tmp_path / 'runs'))
    assert 'is a folder; give a file-name prefix' in one_error(rc, err, '--dump-weights ')
    rc, err = run_main(capsys, tiny_args(small_data, '--dump-weights', tmp_path / 'notes.txt' / 'w'))
    assert 'is a file, not a folder' in one_error(rc, err, '--dump-weights ')
    (tmp_path / 'w.rank1.pt').mkdir()                      # the name rank 1 would write
    rc, err = run_main(capsys, tiny_args(small_data, '--dump-weights', tmp_path / 'w'))
    assert 'w.rank1.pt: is a folder' in one_error(rc, err, '--dump-weights ')
    assert sorted(p.name for p in tmp_path.iterdir()) == ['notes.txt', 'runs', 'w.rank1.pt']
    assert not any((tmp_path / 'runs').iterdir()) and not any((tmp_path / 'w.rank1.pt').iterdir())


def test_resume_another_head_exit_2(small_data, tmp_path, capsys, no_rendezvous):
    "A checkpoint of xresnet18 for 2 classes, data with 3: the keys at fault named once the model is built, before fit"
    torch.manual_seed(0)
    ck = tmp_path / 'two.pt'
    save_torch(dict(model=cpu_state_dict(xresnet18(c_in=3, c_out=2)), opt={'hypers': [{}], 'state': {}}, epoch=1,
                    args=dict(arch='xresnet18', n_classes=2, data='elsewhere')), ck)
    before = ck.read_bytes()
    args = tiny_args(small_data, '--epochs', 2, '--save', ck, '--resume', ck)
    args[args.index('--arch') + 1] = 'xresnet18'
    rc, err = run_main(capsys, args)
    one_error(rc, err, f'--resume: {ck} does not fit')
    assert 'shape mismatches' in err and '(2, 512) in the file but (3, 512) in the model' in err, err
    assert 'this run has 3 classes' in err and 'n-classes 2' in err
    assert ck.read_bytes() == before and capsys.readouterr().out == ''


def test_resume_damaged_checkpoint_exit_2(small_data, tmp_path, capsys, no_rendezvous):
    "Empty, cut, JSON and not-a-dict checkpoints: one line from coursekit's reader naming the file"
    good = tmp_path / 'good.pt'
    save_torch(dict(model=cpu_state_dict(tiny_cnn(3, 3)), opt={'hypers': [{}], 'state': {}}, epoch=1,
                    args=dict(arch='tiny_cnn')), good)
    cases = {'empty.pt': (b'', 'is empty'), 'cut.pt': (good.read_bytes()[:300], 'cut short or damaged'),
             'json.pt': (json.dumps({'model': {}}).encode(), 'is not a PyTorch file (it holds JSON'),
             'list.pt': (None, 'not a checkpoint: it holds a list')}
    save_torch([1, 2], tmp_path / 'list.pt')
    for name, (data, what) in cases.items():
        if data is not None: (tmp_path / name).write_bytes(data)
        rc, err = run_main(capsys, tiny_args(small_data, '--resume', tmp_path / name))
        assert what in one_error(rc, err, f'--resume: {tmp_path / name} '), (name, err)


def test_many_processes_on_mps_refused(monkeypatch):
    "Pretend MPS is here: one process may use it, two are refused (no backend carries MPS tensors)"
    monkeypatch.setattr(torch.backends.mps, 'is_available', lambda: True)
    args = train_imagenette.get_parser().parse_args(['--device', 'mps'])
    test_eq(train_imagenette.get_device(args, 0, world=1).type, 'mps')
    with pytest.raises(train_imagenette.UsageError, match=r'--device mps: 2 processes.*--device cpu'):
        train_imagenette.get_device(args, 0, world=2)


class Sneaky:
    "An object whose unpickling would run code: a weights-only load must refuse the file"
    def __reduce__(self): return (print, ('unpickled!',))

def test_one_process_per_gpu(monkeypatch):
    "Without CUDA here, pretend there is one GPU: the second process of the machine is refused before it starts"
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 1)
    args = train_imagenette.get_parser().parse_args(['--device', 'cuda'])
    with pytest.raises(train_imagenette.UsageError, match=r'process 1 .* 1 CUDA device\(s\).*--nproc_per_node 1'):
        train_imagenette.get_device(args, 1)


def test_an_error_of_one_rank_is_said_by_that_rank(small_data, capsys, monkeypatch, no_rendezvous):
    "Rank 1 of 2 on a machine with one GPU: rank 0 is fine, so rank 1 itself prints the one line (exit 2)"
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 1)
    monkeypatch.setenv('RANK', '1'); monkeypatch.setenv('LOCAL_RANK', '1')
    args = tiny_args(small_data); args[args.index('--device') + 1] = 'cuda'
    rc, err = run_main(capsys, args)
    assert rc == 2 and 'process 1 of this machine has no GPU of its own' in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
@pytest.mark.parametrize('precision', ['fp32', 'fp16', 'bf16'])
def test_one_process_on_cuda(data_dir, tmp_path, precision):
    ck = tmp_path / f'{precision}.pt'
    assert main(small_args(data_dir, '--epochs', 2, '--precision', precision, '--save', ck, device='cuda')) == 0
    c = load(ck)
    assert c['epoch'] == 2 and all(v.device.type == 'cpu' for v in c['model'].values())
    assert all(torch.isfinite(v.float()).all() for v in c['model'].values())
    if precision == 'fp16': assert c['scaler']['scale'] > 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_resume_on_cuda(data_dir, tmp_path):
    "The checkpoint is read onto the CPU, the optimizer state follows the model to the GPU at the first step"
    ck = tmp_path / 'part.pt'
    args = small_args(data_dir, '--epochs', 2, '--save', ck, device='cuda')
    assert main(args + ['--stop-after', '1']) == 0
    assert main(args + ['--resume', str(ck)]) == 0
    test_eq(load(ck)['epoch'], 2)


def test_pickled_checkpoint_refused(data_dir, tmp_path, capsys):
    bad = tmp_path / 'bad.pt'
    save_torch(dict(model={}, opt={}, epoch=1, args=dict(arch='xresnet18'), extra=Sneaky()), bad)
    rc, err = run_main(capsys, small_args(data_dir, '--resume', bad))
    assert rc == 2 and 'refused' in err and 'pickled' in err
    assert 'unpickled!' not in capsys.readouterr().out


def test_exit_status_from_the_command_line(tmp_path):
    env = {**os.environ, 'PYTHONPATH': str(ROOT)}
    r = subprocess.run([sys.executable, str(SCRIPT), '--arch', 'nope', '--data', str(tmp_path)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and 'unknown' in r.stderr


def test_no_data_and_no_dataset_exit_2(tmp_path, capsys, monkeypatch):
    "No --data, an empty data folder and no mirror, offline: one line saying so (once a DatasetError traceback)"
    monkeypatch.setenv('EXP_DATA', str(tmp_path / 'data'))
    monkeypatch.setenv('EXP_MIRROR', str(tmp_path / 'mirror'))
    (tmp_path / 'mirror').mkdir()
    import coursekit.datasets as ds
    def offline(*a, **k): raise OSError('network is unreachable')
    monkeypatch.setattr(ds.urllib.request, 'urlopen', offline)
    argv = [a for a in small_args(tmp_path) if a not in ('--data', str(tmp_path))]
    rc, err = run_main(capsys, argv)
    assert rc == 2 and 'Imagenette could not be fetched' in err and '--data DIR' in err, err
    assert len(err.strip().splitlines()) == 1, err
