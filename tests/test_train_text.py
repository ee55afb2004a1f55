"""train_text.py, for real on this CPU: the three stages under torchrun (2 gloo ranks), resume after SIGKILL, bad input.

- `pretrain` on 2 ranks with every dropout on, killed by SIGKILL during epoch 2 and run again with the same arguments,
  ends with the same weights, bit for bit, as the same run uninterrupted (lesson 12b's checkpoint, 12b's epoch seeds).
- `finetune` and `classify` on 2 ranks from it; each stage's output loads in the lessons' functions:
  `load_pretrained` (12b), `load_encoder` (12c), `read_pretrained` + `get_text_classifier`, and the stage
  checkpoints with `load_training_checkpoint`. The numbers are not a result (tiny models, seconds of training).
- Bad input exits 2 with one line on stderr, before any process group or training: an unknown corpus, an empty
  folder, a file that is not UTF-8 (named), a `--pretrained` folder whose files disagree, an encoder where a
  language model is wanted, a stage checkpoint that does not fit the model (keys named), bad numbers.
The 2-rank equality of the training step itself (2 ranks of b rows = 1 process of 2b) is lesson 12d's test.
"""
import json, os, shutil, signal, subprocess, sys, time
from pathlib import Path

import pytest
import torch

from coursekit.checkpoint import read_torch, save_torch
from exp.nb_12d import (Learner, adam_opt, cross_entropy_flat, get_language_model, get_text_classifier, load_encoder,
                        load_pretrained, load_state, load_training_checkpoint, read_pretrained, DataBunch)
from train_text import main

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / 'train_text.py'
pytestmark = pytest.mark.usefixtures('one_thread')
TINY = ['--n-train-tokens', '40000', '--n-valid-tokens', '5000', '--max-vocab', '1500', '--bs', '16', '--bptt', '20',
        '--emb-sz', '16', '--n-hid', '24', '--lr', '1e-2', '--threads', '1', '--device', 'cpu', '--max-workers', '1']


def env():
    return {**os.environ, 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1', 'GLOO_SOCKET_IFNAME': 'lo',
            'MASTER_ADDR': '127.0.0.1', 'PYTHONPATH': os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')])}

def torchrun_cmd(args, nproc=2):
    return [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', str(nproc), str(SCRIPT),
            *map(str, args)]

def torchrun(args, nproc=2, timeout=180, check=True):
    r = subprocess.run(torchrun_cmd(args, nproc), cwd=ROOT, env=env(), capture_output=True, text=True, timeout=timeout)
    if check: assert r.returncode == 0, f'torchrun failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}'
    return r

def pretrain_args(out, *extra): return ['pretrain', *TINY, '--epochs', '3', '--drop-mult', '1', '--out', str(out), *extra]

def weights(folder): return read_torch(Path(folder) / 'weights.pth')


@pytest.fixture(scope='module')
def pretrained(tmp_path_factory):
    "The uninterrupted 2-rank pretraining run: (its output folder, its stdout)"
    out = tmp_path_factory.mktemp('full')
    r = torchrun(pretrain_args(out))
    return out / 'wikitext-2-fwd', r.stdout


def test_pretrain_two_ranks_logs_once_and_loads_in_lesson_12b(pretrained):
    folder, stdout = pretrained
    assert stdout.count('pretrain wikitext-2-fwd on cpu, 2 process(es)') == 1 and stdout.count('final: pretrain epoch 3') == 1
    model, vocab, config = load_pretrained(folder)                           # lesson 12b's reader
    assert config['backwards'] is False and config['epochs_done'] == 3 and len(config['history']) == 3
    assert len(vocab) == config['model']['vocab_sz'] == model[0].emb.weight.shape[0]
    ckpt = next(folder.parent.glob('wikitext-2-fwd-*.ckpt.pth'))              # the stage checkpoint: 12b's loader
    learn = Learner(get_language_model(**config['model']), DataBunch(None, None), cross_entropy_flat, opt_func=adam_opt())
    start, history = load_training_checkpoint(learn, ckpt)
    assert start == 3 and [h['epoch'] for h in history] == [0, 1, 2]


def test_killed_run_resumes_to_the_same_weights(pretrained, tmp_path):
    "SIGKILL to both ranks once epoch 1's checkpoint is there; the same command again ends bit-identical"
    out = tmp_path / 'killed'
    proc = subprocess.Popen(torchrun_cmd(pretrain_args(out)), cwd=ROOT, env=env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob('*.ckpt.pth')) and proc.poll() is None and time.monotonic() < deadline: time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
    finally: proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, 'the run ended before it could be killed'
    assert read_torch(next(out.glob('*.ckpt.pth')))['epoch'] == 1 and not (out / 'wikitext-2-fwd').exists()   # in epoch 2
    r = torchrun(pretrain_args(out))
    assert 'final: pretrain epoch 3' in r.stdout
    full, resumed = weights(pretrained[0]), weights(out / 'wikitext-2-fwd')
    assert full.keys() == resumed.keys() and all(torch.equal(full[k], resumed[k]) for k in full)


@pytest.fixture(scope='module')
def finetuned(pretrained, tmp_path_factory):
    out = tmp_path_factory.mktemp('ft')
    r = torchrun(['finetune', '--pretrained', pretrained[0], '--sample', '--max-vocab', '1500', '--n-train-tokens', '30000',
                  '--n-valid-tokens', '8000', '--bs', '16', '--bptt', '20', '--epochs', '1', '1', '--threads', '1',
                  '--device', 'cpu', '--max-workers', '1', '--out', out])
    assert 'final: finetune epoch 1' in r.stdout, r.stdout
    return next(out.glob('12c-imdb_sample-lm*-fwd-enc')), r.stdout


def test_finetune_then_classify_two_ranks(finetuned, tmp_path):
    enc, _ = finetuned
    _, vocab, config = read_pretrained(enc)
    assert config['part'] == 'encoder' and config['sample'] is True and set(config['history']) == {'head', 'all'}
    assert len(list(enc.parent.glob('*-fwd-lm[12].ckpt.pth'))) == 2
    clf = get_text_classifier(**{k: config['model'][k] for k in ('vocab_sz', 'emb_sz', 'n_hid', 'n_layers', 'pad_token')},
                              n_out=2)
    load_encoder(clf, enc, vocab)                                            # lesson 12c's loader
    r = torchrun(['classify', '--encoder', enc, '--bs', '16', '--max-len', '50', '--max-tokens', '120', '--n-train', '96',
                  '--n-valid', '50', '--epochs', '1', '1', '1', '--threads', '1', '--device', 'cpu', '--out', tmp_path])
    assert r.stdout.count('final: classify epoch 1 valid_loss=') == 1, r.stdout
    assert len(list(tmp_path.glob('*-fwd-clas-*.ckpt.pth'))) == 3
    sd, v2, c2 = read_pretrained(next(tmp_path.glob('12c-imdb_sample-clas*-fwd-clas')))
    assert v2 == vocab and c2['part'] == 'classifier' and c2['classes'] == ['neg', 'pos']
    load_state(get_text_classifier(**c2['model']), sd)                      # rebuilt from its config


# ---- bad input: exit 2, one line, before any process group ----

def one_error(capsys, argv, start):
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert rc == 2, (rc, err)
    assert err.count('\n') == 1 and err.startswith(f'train_text.py: error: {start}'), err
    return err


def test_bad_corpus_exit_2(tmp_path, capsys, no_rendezvous):
    out = ['--out', tmp_path / 'models']
    one_error(capsys, ['pretrain', '--corpus', 'wikitext-3', *out], '--corpus wikitext-3: no such folder')
    (tmp_path / 'empty').mkdir()
    one_error(capsys, ['pretrain', '--corpus', tmp_path / 'empty', *out], f'--corpus {tmp_path / "empty"}: no .txt file')
    bad = tmp_path / 'texts'
    (bad / 'train').mkdir(parents=True); (bad / 'valid').mkdir()
    (bad / 'train' / 'a.txt').write_text('Some good text .\n', encoding='utf-8')
    (bad / 'valid' / 'b.txt').write_bytes('caf\xe9 latin-1'.encode('latin-1'))
    err = one_error(capsys, ['pretrain', '--corpus', bad, *out], f'--corpus {bad}:')
    assert 'b.txt is not valid utf-8' in err
    (bad / 'valid' / 'b.txt').write_text('   \n', encoding='utf-8')          # only an empty file
    one_error(capsys, ['pretrain', '--corpus', bad, *out], f'--corpus {bad}: no validation text')


def test_bad_numbers_exit_2(tmp_path, capsys, no_rendezvous):
    out = ['--out', tmp_path]
    for flag, v, what in (('--bs', '0', 'at least 1'), ('--lr', '-1', 'a positive number'), ('--drop-mult', '-1', 'at least 0'),
                          ('--max-vocab', '1', 'at least 2')):
        one_error(capsys, ['pretrain', flag, v, *out], f'{flag} must be {what}')
    one_error(capsys, ['pretrain', '--drop-mult', '4', *out], '--drop-mult 4.0: the largest dropout would be 1; keep it below 4')
    one_error(capsys, ['pretrain', '--bs', '5', *out], '--bs 5 must be a multiple of the number of processes (2)')
    (tmp_path / 'file').write_text('x')
    one_error(capsys, ['pretrain', '--out', tmp_path / 'file' / 'models'], f'--out {tmp_path / "file" / "models"}: ')


def test_bad_model_folders_exit_2(pretrained, finetuned, tmp_path, capsys, no_rendezvous):
    out = ['--out', tmp_path / 'models']
    one_error(capsys, ['finetune', '--pretrained', tmp_path / 'nowhere', *out], f'--pretrained {tmp_path / "nowhere"}: no such folder')
    bad = tmp_path / 'bad'
    shutil.copytree(pretrained[0], bad)
    vocab = json.loads((bad / 'vocab.json').read_text())
    (bad / 'vocab.json').write_text(json.dumps(vocab[:-1]))
    err = one_error(capsys, ['finetune', '--pretrained', bad, *out], f'--pretrained {bad}: ')
    assert 'vocab.json' in err and 'not one model' in err
    one_error(capsys, ['finetune', '--pretrained', finetuned[0], *out], f'--pretrained {finetuned[0]}: holds an encoder, not a whole language model')
    one_error(capsys, ['classify', '--encoder', pretrained[0], *out], f'--encoder {pretrained[0]}: holds a whole language model')


def test_stage_checkpoint_that_does_not_fit_exit_2(tmp_path, capsys, monkeypatch):
    "A stage file of other settings under this run's name: the keys are named, before the first epoch"
    main(pretrain_args(tmp_path, '--epochs', '1', '--n-train-tokens', '8000', '--bs', '8'))
    ckpt = next(tmp_path.glob('wikitext-2-fwd-*.ckpt.pth'))
    state = read_torch(ckpt)
    state['model'] = {k.replace('0.rnns.1', '0.rnns.9'): v for k, v in state['model'].items()}
    save_torch(state, ckpt)
    capsys.readouterr()
    err = one_error(capsys, pretrain_args(tmp_path, '--epochs', '1', '--n-train-tokens', '8000', '--bs', '8'), str(ckpt))
    assert '0.rnns.9' in err and '--no-resume' in err


def test_encoder_of_another_vocabulary_exit_2(finetuned, tmp_path, capsys):
    "The same number of words in another order: read_pretrained cannot tell, the classifier's data can (the id named)"
    enc = tmp_path / 'enc'
    shutil.copytree(finetuned[0], enc)
    vocab = json.loads((enc / 'vocab.json').read_text())
    (enc / 'vocab.json').write_text(json.dumps(vocab[:2] + vocab[2:][::-1]))
    err = one_error(capsys, ['classify', '--encoder', enc, '--n-train', '16', '--n-valid', '16', '--out', tmp_path / 'm',
                             '--device', 'cpu'], f'--encoder {enc}: ')
    assert 'differ first at id 2' in err


def test_too_few_tokens_for_a_batch_exit_2(tmp_path, capsys):
    "One validation article (11,688 tokens) in 2 x 128 rows leaves no window of 70: said before training, not a NaN after it"
    err = one_error(capsys, ['pretrain', *TINY, '--bs', '128', '--bptt', '70', '--out', tmp_path], '')
    assert '11,688 validation tokens make no batch of 256 rows x 70 tokens' in err


def test_seed_names_another_run(tmp_path):
    "--seed 0 keeps the lessons' checkpoint name; another seed is another run, not a finished one to load"
    for seed in ('0', '1'): assert main(pretrain_args(tmp_path, '--epochs', '1', '--n-train-tokens', '8000', '--bs', '8',
                                                      '--seed', seed)) == 0
    assert len(list(tmp_path.glob('wikitext-2-fwd-*.ckpt.pth'))) == 2
