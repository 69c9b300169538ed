"""``evtrack train``: train a spiking tracker on a dataset in the FE108 layout (CPU, GPU, torchrun)."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    from evtrack.cli_options import checkpoint_values

    p = subparsers.add_parser(
        "train",
        help="train a tracker (resumable; under torchrun it uses DDP)",
        description="Train an SDTrack-style spiking tracker on <data>/<split>/<seq>/ sequences. "
        "Writes OUT/last.pt (resumable) every --ckpt-every-s seconds and OUT/log.csv. "
        "Pruned fine-tuning: --resume CKPT --keep default (or ratios) fine-tunes the token-pruned model "
        "for --steps steps. --resume continues a run (step, optimiser) only when CKPT has optimiser state "
        "and the same pruning settings; otherwise a new run starts at step 0 from CKPT's weights.",
    )
    p.add_argument("--config", default="tiny", help="model config name (see `evtrack model-info`)")
    p.add_argument("--data", required=True, nargs="+", help="dataset root(s) holding train/<seq>/ folders")
    p.add_argument("--data-shares", type=float, nargs="+", default=None, metavar="SHARE",
                   help="share of the training pairs drawn from each --data root, e.g. 0.4 0.4 0.2 (default: in "
                   "proportion to their usable frames)")
    p.add_argument("--split", default="train", help="dataset split to train on (default train)")
    p.add_argument("--out", required=True, help="run directory (created)")
    p.add_argument("--steps", type=int, default=2000, help="total optimiser steps")
    p.add_argument("--batch", type=int, default=16, help="pairs per step and process")
    p.add_argument("--lr", type=float, default=4e-4, help="peak learning rate (default 4e-4)")
    p.add_argument("--resume", default=None, help="checkpoint to continue from (e.g. OUT/last.pt)")
    p.add_argument("--init-from", default=None, metavar="CKPT",
                   help="start a new run from another checkpoint's weights wherever a name and shape fit the "
                   "--config (e.g. a new backbone from tiny's stem and head); unlike --resume the configs may differ; "
                   f"{checkpoint_values(folders=False)}")
    p.add_argument("--export", default=None, help="also write fp16 inference weights here at the end")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads; keep it at or below the cores nothing else uses: with another busy "
                   "process on one of them, 2 threads took 4.8 s per step instead of 0.45 (BENCHMARKS.md)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--ckpt-every-s", type=float, default=180.0,
                   help="write OUT/last.pt this often, in seconds (default 180)")
    p.add_argument("--max-sequences", type=int, default=None, help="use only the first N sequences")
    p.add_argument("--negative-prob", type=float, default=0.2,
                   help="share of training pairs whose search crop does not hold the target (teaches the score "
                   "to say 'lost'; 0 = positives only, as SDTrack)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    from evtrack.cli_options import add_pruning_arguments, keep_help

    p.add_argument("--keep", default=None,
                   help="train token-pruned (TP-Spikformer fine-tuning) with these "
                   + keep_help("the pruning stored in the --resume checkpoint, else 1.0 = dense"))
    add_pruning_arguments(p, defaults=False)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from evtrack.cli_options import options_from_args
    from evtrack.errors import UserError
    from evtrack.shipped import resolve_checkpoint
    from evtrack.training.sampler import SamplerConfig
    from evtrack.training.train import TrainConfig, train

    for name in ("steps", "batch"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name} must be >= 1, got {getattr(args, name)}")
    if not 0.0 <= args.negative_prob < 1.0:
        raise UserError(f"--negative-prob must be in [0, 1), got {args.negative_prob}")
    if args.resume and args.init_from:
        raise UserError("--resume and --init-from exclude each other: --resume continues a checkpoint of the same "
                        "config, --init-from starts a new run from another config's weights")
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads must be >= 1, got {args.threads}")
    tc = TrainConfig(
        data=[Path(d) for d in args.data], out=Path(args.out), model=args.config, split=args.split, steps=args.steps,
        batch=args.batch, lr=args.lr, seed=args.seed, threads=args.threads, ckpt_every_s=args.ckpt_every_s,
        resume=Path(args.resume) if args.resume else None,
        init_from=resolve_checkpoint(args.init_from, "--init-from", folders=False) if args.init_from else None,
        export=Path(args.export) if args.export else None,
        max_sequences=args.max_sequences, data_shares=args.data_shares, progress=not args.no_progress,
        keep=args.keep, pruning=options_from_args(args), sampler=SamplerConfig(negative_prob=args.negative_prob),
    )
    last = train(tc)
    print(f"checkpoint: {last}")
    return 0
