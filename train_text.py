#!/usr/bin/env python
"""Train lessons 12b and 12c's AWD-LSTM models on one process or many: pretrain, finetune, classify.

The three stages of ULMFiT, each a sub-command:
    python train_text.py pretrain                      # 12b: a language model on WikiText-2 (from the mirror)
    python train_text.py pretrain --backwards          # ... reading every article from its end
    python train_text.py finetune --pretrained data/models/wikitext-2-fwd     # 12c: the language model on IMDB
    python train_text.py classify --encoder data/models/12c-imdb-lm<hash>-fwd-enc    # 12c: gradual unfreezing
Many processes on one machine (one per GPU, or CPU processes with gloo):
    torchrun --standalone --nproc_per_node 4 train_text.py pretrain --corpus wikitext-103
Many machines (run on each, with its --node_rank):
    torchrun --nnodes 2 --node_rank 0 --nproc_per_node 8 --rdzv_backend c10d \\
             --rdzv_endpoint HOST:29500 train_text.py pretrain ...
Every stage saves after each epoch and, run again with the same arguments, continues where it stopped.

Lesson 12d (nbs/12d_text_ddp.ipynb) builds the loaders for many processes (each rank its rows of one shared
stream; one length-sorted order of reviews, each rank its slice); lesson 11b the DistributedDataParallel,
statistics and logging callbacks; lessons 12b and 12c everything else. The files written are the lessons':
`save_pretrained` and `save_encoder` folders and 12b's stage checkpoints, under the same names for the same
settings, so a notebook picks up what this script trained and the other way round. What is left here is the
command line: its arguments and their checks (all made before any training), the data, the learners, the fits.
"""
import argparse, sys, time
from functools import partial
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F

from coursekit.checkpoint import CheckpointError, check_state_dict, load_state, read_torch, settings_digest
from coursekit.cli import UsageError, check_folder, check_numbers, first_line, join_group, pick_device, run_main
from coursekit.datasets import DatasetError, data_dir, file_sha256
from coursekit.files import FileFormatError
from exp.nb_12d import (CLAS_DROPOUTS, LM_DROPOUTS, PAD, WIKI_CORPORA, AvgStatsTableCallback, Callback, DataBlockError,
                        DataBunch, DDPCallback, DeviceCallback, DistStatsCallback, GradientClipping, Learner,
                        PerplexityTableCallback, ProgressCallback, RankZeroLogging, RNNTrainer, accuracy, accuracy_flat,
                        adam_opt, clas_param_splitter, cross_entropy_flat, default_device, disc_lrs, fit_stage, freeze_to,
                        get_files, get_language_model, get_text_classifier, imdb_clas_split, imdb_lm_data, lm_data,
                        lm_param_splitter, lm_splitter, load_encoder, match_embeds, one_cycle, perplexity, rank_clas_dls,
                        rank_lm_dls, read_file, read_pretrained, reverse_docs, save_encoder, save_pretrained,
                        scaled_dropouts, text_clas_databunch, wiki_articles, wiki_path)

PROG = 'train_text.py'
MOMS = (0.8, 0.7, 0.8)                    # 1cycle's momentum at the start, the peak lr and the end (12b, 12c)


def get_parser():
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split('\n')[0],
                                epilog='Run many processes with torchrun (see the README).')
    sub = p.add_subparsers(dest='stage', required=True, metavar='{pretrain,finetune,classify}')
    common = argparse.ArgumentParser(add_help=False)
    c = common.add_argument
    c('--out', type=Path, default=None, help='folder of the models and stage checkpoints (default: data/models)')
    c('--name', default=None, help="prefix of the files written (default: the lessons' names)")
    c('--no-resume', action='store_true', help='train every epoch again, ignoring the stage checkpoints of an earlier run')
    c('--clip', type=float, default=None, help='gradient clipping: the largest global L2 norm (default 0.1; classify: '
      'the fine-tuning\'s)')
    c('--seed', type=int, default=0, help='seed of the weights, the shuffling and the dropouts (default %(default)s)')
    c('--device', default=None, help='cpu, cuda or mps (default: CUDA, else MPS, else CPU)')
    c('--threads', type=int, default=0, help='torch threads of each process (0: PyTorch\'s default)')
    c('--max-workers', type=int, default=None, help='tokenizer processes, if a cache must be built (default: every core)')
    c('--dist-timeout', type=float, default=180, help='minutes a process waits for the others, e.g. while rank 0 '
      'tokenizes (default %(default)s)')

    pre = sub.add_parser('pretrain', parents=[common], help="lesson 12b: a language model on WikiText or your texts")
    a = pre.add_argument
    a('--corpus', default='wikitext-2', help='wikitext-2 (default, in the mirror), wikitext-103, or a folder: WikiText\'s '
      'wiki.{train,valid}.tokens, train/ and valid/ folders of .txt files, or .txt files (10%% for validation)')
    a('--backwards', action='store_true', help='the backward model: every document read from its end')
    a('--n-train-tokens', type=int, default=None, help='training tokens drawn (whole documents, seeded; default: all)')
    a('--n-valid-tokens', type=int, default=None, help='validation tokens drawn the same way (default: all)')
    a('--max-vocab', type=int, default=60_000, help='vocabulary size at most (default %(default)s)')
    a('--min-freq', type=int, default=2, help='rarer words become xxunk (default %(default)s)')
    a('--bs', type=int, default=128, help='rows of the global batch, split between the processes (default %(default)s)')
    a('--bptt', type=int, default=70, help='tokens per row of a batch (default %(default)s)')
    a('--emb-sz', type=int, default=300, help='embedding size (default %(default)s)')
    a('--n-hid', type=int, default=300, help='hidden size of the LSTM layers but the last (default %(default)s)')
    a('--n-layers', type=int, default=2, help='LSTM layers (default %(default)s)')
    a('--drop-mult', type=float, default=0.2, help='scales the five AWD-LSTM dropouts (default %(default)s)')
    a('--epochs', type=int, default=10, help='epochs of 1cycle (default %(default)s)')
    a('--lr', type=float, default=5e-3, help="Adam's peak learning rate (default %(default)s)")
    a('--pct-start', type=float, default=0.3, help='warm-up fraction of 1cycle (default %(default)s)')
    a('--alpha', type=float, default=2., help='AR: weight of the activation penalty (default %(default)s)')
    a('--beta', type=float, default=1., help='TAR: weight of the temporal activation penalty (default %(default)s)')

    fin = sub.add_parser('finetune', parents=[common], help="lesson 12c: the pretrained language model on IMDB")
    a = fin.add_argument
    a('--pretrained', type=Path, required=True, help='a save_pretrained folder (pretrain\'s, or lesson 12b\'s); its '
      'direction is the run\'s')
    a('--sample', action='store_true', help='the 1,000-review IMDB sample instead of all of IMDB')
    a('--max-vocab', type=int, default=60_000, help='IMDB words kept, the most frequent (default %(default)s)')
    a('--n-train-tokens', type=int, default=None, help='IMDB training tokens (whole reviews, seeded; default: all)')
    a('--n-valid-tokens', type=int, default=None, help='IMDB validation tokens (default: all)')
    a('--bs', type=int, default=64, help='rows of the global batch (default %(default)s)')
    a('--bptt', type=int, default=70, help='tokens per row (default %(default)s)')
    a('--drop-mult', type=float, default=0.5, help='scales 12b\'s five dropouts (default %(default)s)')
    a('--lr-head', type=float, default=2e-2, help='peak lr of stage 1: the embedding and decoder alone (default %(default)s)')
    a('--lr', type=float, default=2e-3, help='peak lr of stage 2: everything, the LSTMs at half (default %(default)s)')
    a('--epochs', type=int, nargs=2, default=[1, 10], metavar=('HEAD', 'ALL'), help='epochs of the two stages (default 1 10)')
    a('--alpha', type=float, default=2., help='AR weight (default %(default)s)')
    a('--beta', type=float, default=1., help='TAR weight (default %(default)s)')

    cla = sub.add_parser('classify', parents=[common], help="lesson 12c: the sentiment classifier, gradual unfreezing")
    a = cla.add_argument
    a('--encoder', type=Path, required=True, help="a save_encoder folder (finetune's, or lesson 12c's); its direction is the run's")
    a('--sample', action='store_true', help="the IMDB sample (default: what finetune recorded, else all of IMDB)")
    a('--bs', type=int, default=64, help='reviews of the global batch (default %(default)s)')
    a('--bptt', type=int, default=None, help="tokens read at a time (default: the fine-tuning's, else 70)")
    a('--max-len', type=int, default=1400, help='the last MAX_LEN tokens of a review get gradients (default %(default)s)')
    a('--max-tokens', type=int, default=None, help='reviews cut to their first MAX_TOKENS tokens (default: whole)')
    a('--n-train', type=int, default=None, help='training reviews, a seeded subset (default: all 25,000)')
    a('--n-valid', type=int, default=None, help='test reviews used for validation (default: all 25,000)')
    a('--drop-mult', type=float, default=0.25, help='scales the classifier dropouts (default %(default)s)')
    a('--lrs', type=float, nargs=3, default=[1e-2, 5e-3, 1e-3], metavar=('HEAD', 'LAST', 'ALL'),
      help='peak lr of the three stages (last group; earlier groups / 2.6 each; default 1e-2 5e-3 1e-3)')
    a('--epochs', type=int, nargs=3, default=[1, 1, 2], metavar=('HEAD', 'LAST', 'ALL'), help='epochs of the stages (default 1 1 2)')
    return p


POS, NONNEG, UNIT = ('at least 1', lambda v: v >= 1), ('at least 0', lambda v: v >= 0), ('in [0, 1]', lambda v: 0 <= v <= 1)
NUMBERS = [('n_train_tokens', *POS), ('n_valid_tokens', *POS), ('max_vocab', 'at least 2 (xxunk, xxpad)', lambda v: v >= 2),
           ('min_freq', *POS), ('bs', *POS), ('bptt', *POS), ('emb_sz', *POS), ('n_hid', *POS), ('n_layers', *POS),
           ('drop_mult', *NONNEG), ('epochs', *POS), ('lr', 'a positive number', lambda v: v > 0),
           ('lr_head', 'a positive number', lambda v: v > 0), ('lrs', 'positive numbers', lambda v: v > 0),
           ('pct_start', *UNIT), ('alpha', *NONNEG), ('beta', *NONNEG), ('clip', 'a positive number', lambda v: v > 0),
           ('threads', *NONNEG), ('max_workers', *POS), ('max_len', *POS), ('max_tokens', *POS), ('n_train', *POS),
           ('n_valid', *POS), ('dist_timeout', 'a positive number of minutes', lambda v: v > 0)]


def check_args(args, world):
    "Every argument that can be checked without reading the data: a `UsageError` for the first that is wrong"
    check_numbers(args, [r for r in NUMBERS if hasattr(args, r[0])])
    if args.bs < world: raise UsageError(f'--bs {args.bs} is smaller than the number of processes ({world})')
    if args.bs % world: raise UsageError(f'--bs {args.bs} must be a multiple of the number of processes ({world})')
    top = max((CLAS_DROPOUTS if args.stage == 'classify' else LM_DROPOUTS).values())
    if top * args.drop_mult >= 1:
        raise UsageError(f'--drop-mult {args.drop_mult}: the largest dropout would be {top * args.drop_mult:g}; keep it '
                         f'below {1 / top:g}')
    check_folder('--out', args.out)


def read_model_folder(flag, path, part):
    "(state dict, vocab, config) of a `save_pretrained` folder holding `part` ('model' or 'encoder'); a `UsageError` if not"
    if not Path(path).is_dir(): raise UsageError(f'{flag} {path}: no such folder')
    try: sd, vocab, config = read_pretrained(path)
    except (FileFormatError, ValueError, KeyError) as e: raise UsageError(f'{flag} {path}: {first_line(e)}') from None
    if config.get('part', 'model') != part:
        what = {'model': 'a whole language model', 'encoder': 'an encoder', 'classifier': 'a classifier'}
        want = "finetune's -enc folder (save_encoder)" if part == 'encoder' else "pretrain's folder (save_pretrained)"
        raise UsageError(f"{flag} {path}: holds {what.get(config.get('part', 'model'), config.get('part'))}, not "
                         f"{what[part]}: pass {want}")
    return sd, vocab, config

def check_stage_files(model, paths, resume):
    "A stage checkpoint of an earlier run that does not fit `model`: a `UsageError` now, not after the stages before it"
    for p in paths if resume else []:
        if not Path(p).is_file(): continue
        try: check_state_dict(model, read_torch(p, keys=('model', 'opt', 'epoch', 'history'), what='stage checkpoint')['model'],
                              str(p))
        except CheckpointError as e: raise UsageError(f'{first_line(e)}; delete it, or pass --no-resume') from None


def start_group(args, world, dev, paths):
    "Every check that needs no data has passed on every rank: join the process group; all see the same stage files?"
    join_group(dev, world, args.dist_timeout)
    if world == 1: return
    views = [None] * world
    dist.all_gather_object(views, [Path(p).is_file() for p in paths])
    if any(v != views[0] for v in views):       # resuming needs them on every rank, or the ranks' epochs would differ
        raise UsageError(f'--out {args.out}: the processes do not see the same stage checkpoints there; put --out (and '
                         f'the data folder, EXP_DATA) on a filesystem that every machine shares')

def rank0_first(fn, rank, world):
    "`fn()` on rank 0, then on the others (which find the caches it wrote); a `UsageError` of rank 0 stops every rank"
    if world == 1: return fn()
    res, msg = None, [None]
    if rank == 0:
        try: res = fn()
        except UsageError as e: msg = [str(e)]
    dist.broadcast_object_list(msg, src=0)
    if msg[0] is not None: raise UsageError(msg[0])
    if rank == 0: return res
    try: return fn()
    except UsageError as e: raise UsageError(f'rank {rank}: {e}', this_rank=True) from None   # rank 0 could not say it


class TrainTime(Callback):
    "Seconds of each epoch's training phase, validation excluded: the tokens per second the script reports"
    def __init__(self): self.seconds = []
    def begin_epoch(self): self.t0 = time.perf_counter()
    def after_train(self): self.seconds.append(time.perf_counter() - self.t0)

def run_cbs(args, rank, world, dev, stats):
    "The callbacks of every fit: rank-0 logging, DDP and summed statistics"
    cbs = [RankZeroLogging()]                       # fit_stage adds lesson 12b's EpochSeed (per-rank dropout seeds)
    if world > 1: cbs += [DDPCallback([dev.index] if dev.type == 'cuda' else None), DistStatsCallback(stats)]
    if rank == 0 and sys.stdout.isatty(): cbs.append(ProgressCallback(console=True))
    return cbs

def lm_learner(model, data, args, dev, splitter=None):
    "Lesson 12b's language-model learner: perplexity table, AR/TAR, gradient clipping, Adam"
    cbs = [PerplexityTableCallback(accuracy_flat), DeviceCallback(dev), RNNTrainer(α=args.alpha, β=args.beta),
           GradientClipping(args.clip)]
    kw = dict(splitter=splitter) if splitter else {}
    return Learner(model, data, cross_entropy_flat, opt_func=adam_opt(), lr=args.lr, cbs=cbs, **kw)

def lm_databunch(docs, vocab, args, rank, world):
    "This rank's language-model loaders (lesson 12d)"
    for split, d, rows in (('training', docs[0], args.bs), ('validation', docs[1], 2 * args.bs)):
        n = sum(map(len, d))
        if n // rows <= args.bptt:                      # each row needs a window of bptt tokens and its next token
            raise UsageError(f'{n:,} {split} tokens make no batch of {rows} rows x {args.bptt} tokens: pass a smaller --bs '
                             f'or --bptt, or more tokens (--n-train-tokens, --n-valid-tokens)')
    dls = rank_lm_dls(docs[0], docs[1], args.bs // world, args.bptt, rank, world, seed=args.seed)
    return DataBunch(*dls, c_in=len(vocab), c_out=len(vocab))

def report(rank, what, hist, tokens_per_epoch=None, timer=None):
    "Rank 0's last line: the final epoch's validation numbers, and the training tokens per second of this session"
    if rank != 0 or not hist: return
    (loss, acc), n = hist[-1]['valid'], len(hist)
    line = f'final: {what} epoch {n} valid_loss={loss:.6f} '
    line += f'perplexity={perplexity(loss):.2f} accuracy={acc:.6f}' if tokens_per_epoch else f'valid_accuracy={acc:.6f}'
    if tokens_per_epoch and timer is not None and timer.seconds:
        line += f' tokens_per_s={tokens_per_epoch / timer.seconds[-1]:.1f}'
    print(line, flush=True)


# ---- pretrain (lesson 12b) ----

def corpus_texts(corpus):
    "(training texts, validation texts, name) of --corpus: WikiText by name, or a folder (see --help)"
    flag, path = f'--corpus {corpus}', Path(corpus)
    try:
        if corpus in WIKI_CORPORA:
            try: path = wiki_path(corpus)
            except DatasetError as e: raise UsageError(f'{flag}: could not be fetched: {first_line(e)}') from None
        elif not path.is_dir(): raise UsageError(f'{flag}: no such folder (nor one of {", ".join(WIKI_CORPORA)})')
        name = corpus if corpus in WIKI_CORPORA else path.resolve().name
        if (path/'wiki.train.tokens').is_file():                        # WikiText's layout
            if not (path/'wiki.valid.tokens').is_file():
                raise UsageError(f'{flag}: has wiki.train.tokens but no wiki.valid.tokens')
            return [wiki_articles(path/f'wiki.{s}.tokens') for s in ('train', 'valid')] + [name]
        if (path/'train').is_dir() and (path/'valid').is_dir():
            parts = [get_files(path/s, '.txt', recurse=True) for s in ('train', 'valid')]
        else:
            files = get_files(path, '.txt', recurse=True)
            if not files:
                raise UsageError(f'{flag}: no .txt file in it (nor wiki.train.tokens): give a folder of UTF-8 text files')
            parts = [[f for f in files if not lm_splitter(f)], [f for f in files if lm_splitter(f)]]
        texts = [[t for t in (read_file(f).strip() for f in fs) if t] for fs in parts]    # a file not UTF-8 is named
    except DataBlockError as e: raise UsageError(f'{flag}: {first_line(e)}') from None
    for t, what in zip(texts, ('training', 'validation')):
        if not t: raise UsageError(f'{flag}: no {what} text (empty files, or none drawn for {what}): add .txt files, or put '
                                   f'them in train/ and valid/ folders')
    return texts + [name]

def with_seed(settings, seed):
    "The lessons' settings dict, and the seed when it is not theirs (0): a run of another seed is another run"
    return dict(settings, seed=seed) if seed else settings

def pretrain(args, rank, world, dev):
    "Lesson 12b on this rank: the language model, saved with `save_pretrained` to <out>/<name>"
    settings = dict(corpus=args.corpus, backwards=args.backwards, n_train_tokens=args.n_train_tokens,   # 12b's names:
                    n_valid_tokens=args.n_valid_tokens, max_vocab=args.max_vocab, min_freq=args.min_freq,  # the same
                    bs=args.bs, bptt=args.bptt, emb_sz=args.emb_sz, n_hid=args.n_hid, n_layers=args.n_layers,  # settings,
                    drop_mult=args.drop_mult, epochs=args.epochs, lr=args.lr, pct_start=args.pct_start,  # the same
                    moms=MOMS, clip=args.clip, alpha=args.alpha, beta=args.beta)                # checkpoint
    texts = corpus_texts(args.corpus)                                # read on every rank: a bad file stops them all
    corpus_name = texts.pop()
    name = args.name or f"{corpus_name}-{'bwd' if args.backwards else 'fwd'}"
    ckpt = args.out/f'{name}-{settings_digest(with_seed(settings, args.seed))}.ckpt.pth'
    start_group(args, world, dev, [ckpt])
    prep = lambda: lm_data(texts[0], texts[1], args.n_train_tokens, args.n_valid_tokens, args.max_vocab, args.min_freq,
                           args.max_workers, verbose=rank == 0)     # lesson 12b's data steps, its cache
    train, valid, vocab = rank0_first(prep, rank, world)
    texts.clear()                                                    # the raw corpus: not needed any more
    docs = [reverse_docs(train), reverse_docs(valid)] if args.backwards else [train, valid]
    data = lm_databunch(docs, vocab, args, rank, world)
    config = dict(vocab_sz=len(vocab), emb_sz=args.emb_sz, n_hid=args.n_hid, n_layers=args.n_layers,
                  pad_token=vocab.index(PAD), **scaled_dropouts(args.drop_mult))
    torch.manual_seed(args.seed)
    model = get_language_model(**config)
    check_stage_files(model, [ckpt], not args.no_resume)
    learn, timer = lm_learner(model, data, args, dev), TrainTime()
    if rank == 0:
        print(f'pretrain {name} on {dev}, {world} process(es): {sum(map(len, docs[0])):,} training / '
              f'{sum(map(len, docs[1])):,} validation tokens, vocabulary {len(vocab):,}, batch {args.bs}x{args.bptt} '
              f'({args.bs // world} rows a process), {args.epochs} epochs; checkpoint {ckpt}', flush=True)
    cbs = one_cycle(args.lr, args.pct_start, moms=MOMS) + run_cbs(args, rank, world, dev, 'perplexity_table') + [timer]
    hist = fit_stage(learn, ckpt, args.epochs, cbs, not args.no_resume, stats='perplexity_table', seed=args.seed)
    if rank == 0:
        dest = save_pretrained(args.out/name, model, vocab, config, corpus=corpus_name,
                               backwards=args.backwards, epochs_done=len(hist), history=hist)
        print(f'saved {dest}')
    report(rank, 'pretrain', hist, len(data.train_dl) * args.bs * args.bptt, timer)


# ---- finetune and classify (lesson 12c) ----

def imdb_data(fn, sample):
    "`fn()` (one of lesson 12c's IMDB data steps); a dataset that cannot be fetched or read is a `UsageError`"
    what = 'the IMDB sample' if sample else 'IMDB'
    try: return fn()
    except DatasetError as e: raise UsageError(f'{what} could not be fetched: {first_line(e)}') from None
    except DataBlockError as e: raise UsageError(f'{what}: {first_line(e)}') from None

def direction(config): return 'bwd' if config.get('backwards') else 'fwd'

def finetune(args, rank, world, dev):
    "Lesson 12c's two language-model stages on IMDB; the encoder saved with `save_encoder` to <out>/<name>-<dir>-enc"
    sd0, v0, c0 = read_model_folder('--pretrained', args.pretrained, 'model')
    d, stem = direction(c0), args.pretrained.resolve().name
    settings = dict(sample=args.sample, pretrained=stem[:-4] if stem.endswith(('-fwd', '-bwd')) else stem,   # 12c's
                    pretrain_tiny=False, max_vocab=args.max_vocab, lm_train_tokens=args.n_train_tokens,     # lm_settings
                    lm_valid_tokens=args.n_valid_tokens, lm_bs=args.bs, bptt=args.bptt, lm_drop_mult=args.drop_mult,
                    lm_lr_head=args.lr_head, lm_lr=args.lr, lm_epochs=tuple(args.epochs), moms=MOMS, clip=args.clip,
                    alpha=args.alpha, beta=args.beta, weights=file_sha256(args.pretrained/'weights.pth')[:16])
    settings = with_seed(settings, args.seed)
    name = f"{args.name or '12c-' + ('imdb_sample' if args.sample else 'imdb')}-lm{settings_digest(settings)}"
    paths = [args.out/f'{name}-{d}-lm{i}.ckpt.pth' for i in (1, 2)]
    start_group(args, world, dev, paths)
    prep = lambda: imdb_data(lambda: imdb_lm_data(args.sample, args.max_vocab, args.n_train_tokens, args.n_valid_tokens,
                                                  args.max_workers, rank == 0), args.sample)
    train, valid, vocab, _ = rank0_first(prep, rank, world)
    docs = [reverse_docs(train), reverse_docs(valid)] if d == 'bwd' else [train, valid]
    config = dict(c0['model'], vocab_sz=len(vocab), **scaled_dropouts(args.drop_mult))
    model = get_language_model(**config)
    try: load_state(model, match_embeds(sd0, v0, vocab), where=str(args.pretrained/'weights.pth'))   # lesson 12c
    except CheckpointError as e: raise UsageError(f'--pretrained {args.pretrained}: {first_line(e)}') from None
    check_stage_files(model, paths, not args.no_resume)
    data = lm_databunch(docs, vocab, args, rank, world)
    learn, timer = lm_learner(model, data, args, dev, splitter=lm_param_splitter), TrainTime()
    if rank == 0:
        print(f'finetune {args.pretrained} ({d}) on {dev}, {world} process(es): {sum(map(len, docs[0])):,} / '
              f'{sum(map(len, docs[1])):,} IMDB tokens, vocabulary {len(vocab):,}; stages {paths[0].name}, '
              f'{paths[1].name}', flush=True)
    cbs = run_cbs(args, rank, world, dev, 'perplexity_table') + [timer]
    groups = lm_param_splitter(learn.model)
    freeze_to(groups, 1)                                              # stage 1: the embedding and (tied) decoder
    head = fit_stage(learn, paths[0], args.epochs[0], one_cycle(args.lr_head, 0.3, moms=MOMS) + cbs, not args.no_resume,
                     stats='perplexity_table', seed=args.seed)
    freeze_to(groups, len(groups))                                    # stage 2: everything, the LSTMs at half the lr
    lrs = [args.lr / 2] * (len(groups) - 1) + [args.lr]
    every = fit_stage(learn, paths[1], args.epochs[1], one_cycle(lrs, 0.3, moms=MOMS) + cbs, not args.no_resume,
                      stats='perplexity_table', seed=args.seed)
    if rank == 0:
        dest = save_encoder(args.out/f'{name}-{d}-enc', model, vocab, config, backwards=d == 'bwd',
                            history=dict(head=head, all=every), sample=args.sample, settings=settings)
        print(f'saved {dest}')
    report(rank, 'finetune', every, len(data.train_dl) * args.bs * args.bptt, timer)


STAGES = [('head', 1), ('last', 2), ('all', None)]          # groups trained: the head; + the last LSTM; everything

def classify(args, rank, world, dev):
    "Lesson 12c's classifier: gradual unfreezing in three stages; saved with `save_pretrained` to <out>/<name>-<dir>-clas"
    _, enc_vocab, c_enc = read_model_folder('--encoder', args.encoder, 'encoder')
    d, lm = direction(c_enc), c_enc.get('settings') or {}             # the fine-tuning's settings, as 12c records them
    sample = args.sample or bool(c_enc.get('sample', False))
    bptt, clip = args.bptt or lm.get('bptt', 70), args.clip or lm.get('clip', 0.1)
    settings = dict(lm or dict(encoder=file_sha256(args.encoder/'weights.pth')[:16]), bptt=bptt, clip=clip,  # 12c's
                    clas_bs=args.bs, max_len=args.max_len, max_tokens=args.max_tokens, n_train=args.n_train,  # clas_settings
                    n_valid=args.n_valid, clas_drop_mult=args.drop_mult, clas_lrs=tuple(args.lrs),
                    clas_epochs=tuple(args.epochs))
    name = f"{args.name or '12c-' + ('imdb_sample' if sample else 'imdb')}-clas{settings_digest(with_seed(settings, args.seed))}"
    paths = {s: args.out/f'{name}-{d}-clas-{s}.ckpt.pth' for s, _ in STAGES}
    start_group(args, world, dev, list(paths.values()))
    def prep():
        full_vocab = imdb_data(lambda: imdb_lm_data(sample, max_workers=args.max_workers, verbose=rank == 0), sample)[3]
        return imdb_data(lambda: imdb_clas_split(sample, full_vocab, args.max_workers, rank == 0), sample)[1]
    ll = rank0_first(prep, rank, world)
    data = text_clas_databunch(ll, args.bs // world, len(enc_vocab), d == 'bwd', args.max_tokens, args.n_train, args.n_valid,
                               dls=partial(rank_clas_dls, rank=rank, world=world, seed=args.seed))
    config = dict({k: c_enc['model'][k] for k in ('vocab_sz', 'emb_sz', 'n_hid', 'n_layers', 'pad_token')},
                  n_out=len(data.classes), bptt=bptt, max_len=args.max_len, **scaled_dropouts(args.drop_mult, CLAS_DROPOUTS))
    torch.manual_seed(args.seed)
    model = get_text_classifier(**config)
    try: load_encoder(model, args.encoder, data.vocab)
    except ValueError as e:
        hint = '' if sample or 'sample' in c_enc else ' (fine-tuned on the IMDB sample? pass --sample)'
        raise UsageError(f'--encoder {args.encoder}: {first_line(e)}{hint}') from None
    check_stage_files(model, paths.values(), not args.no_resume)
    learn = Learner(model, data, F.cross_entropy, opt_func=adam_opt(), lr=args.lrs[0], splitter=clas_param_splitter,
                    cbs=[AvgStatsTableCallback(accuracy), DeviceCallback(dev), GradientClipping(clip)])
    if rank == 0:
        print(f'classify with {args.encoder} ({d}) on {dev}, {world} process(es): {len(data.train_ds):,} training / '
              f'{len(data.valid_ds):,} validation reviews, batch {args.bs} ({args.bs // world} a process)', flush=True)
    cbs, groups, hist = run_cbs(args, rank, world, dev, 'avg_stats_table'), clas_param_splitter(learn.model), {}
    for (s, n), lr, ep in zip(STAGES, args.lrs, args.epochs):
        freeze_to(groups, n or len(groups))
        hist[s] = fit_stage(learn, paths[s], ep, one_cycle(disc_lrs(lr, len(groups)), 0.3, moms=MOMS) + cbs,
                            not args.no_resume, seed=args.seed)
    if rank == 0:
        dest = save_pretrained(args.out/f'{name}-{d}-clas', model, data.vocab, config, part='classifier',
                               classes=data.classes, backwards=d == 'bwd', history=hist, encoder=str(args.encoder))
        print(f'saved {dest}')
    report(rank, 'classify', hist['all'])


def train(args, rank, world, local_rank):
    "Check the arguments, pick the device, run the stage (which joins the process group once its own checks pass)"
    if args.out is None: args.out = data_dir()/'models'
    if args.clip is None and args.stage != 'classify': args.clip = 0.1
    check_args(args, world)
    if args.threads: torch.set_num_threads(args.threads)
    dev = pick_device(args.device, local_rank, world, default_device)
    {'pretrain': pretrain, 'finetune': finetune, 'classify': classify}[args.stage](args, rank, world, dev)


def main(argv=None):
    args = get_parser().parse_args(argv)
    return run_main(lambda rank, world, local_rank: train(args, rank, world, local_rank), PROG)


if __name__ == '__main__':
    sys.exit(main())
