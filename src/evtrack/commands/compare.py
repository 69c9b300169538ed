"""evtrack compare: compare tracker checkpoints on held-out sequences, paired sequence by sequence.

Scores of 30-40 sequences move by several AUC points between disjoint sets (per-sequence AUC has a
standard deviation of ~25 points), so checkpoints are compared on the *same* sequences and the table
gives the mean paired difference to the first checkpoint with its standard error and its 95% paired
bootstrap interval (evtrack.metrics.bootstrap). Each checkpoint tracks with its stored online
options, as every command does; --keep runs them token-pruned. Use sequences that no checkpoint
trained on, never the test split you report.
"""

from __future__ import annotations

import argparse

from evtrack.cli_options import (
    TRACKING_KEEP_DEFAULT,
    add_held_out_arguments,
    add_tre_argument,
    checkpoint_values,
    keep_help,
)

METRICS = ("auc", "pr", "npr")
COMPARED = ("auc", "pr")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "compare",
        help="compare checkpoints on the same held-out sequences (paired differences, bootstrap intervals)",
        description=__doc__.split("\n\n", 1)[1],
    )
    p.add_argument("checkpoints", nargs="+", metavar="CKPT",
                   help=f"tracker checkpoints, each {checkpoint_values(folders=False)}; the first is the reference")
    add_held_out_arguments(p)
    p.add_argument("--keep", default=None, help="for every checkpoint, " + keep_help(TRACKING_KEEP_DEFAULT))
    p.add_argument("--max-sequences", type=int, default=None, metavar="N", help="first N sequences of each root")
    p.add_argument("--workers", type=int, default=2, help="tracking processes (one torch thread each)")
    add_tre_argument(p)
    p.add_argument("--json", default=None, metavar="PATH", help="write per-sequence scores and the table here")
    p.set_defaults(func=run)


def score_checkpoint(checkpoint, sequences: dict, keep: str | None, workers: int,
                     tre: int = 0) -> dict[str, dict[str, float]]:
    """Per-sequence AUC / PR / NPR of one checkpoint through the benchmark loop (a fresh tracker per
    sequence, or per run with ``tre`` > 0: evtrack.metrics.tre)."""
    from functools import partial

    from evtrack.benchmark_runner import BenchmarkConfig, run_benchmark
    from evtrack.tracker import load_tracker

    make = partial(load_tracker, checkpoint, keep=keep, n_threads=1)
    report = run_benchmark(sequences, make, BenchmarkConfig(workers=workers, plot=False, progress=False,
                                                            tre_segments=tre))
    return report.ope.per_sequence()


def paired_table(scores: dict[str, dict[str, dict[str, float]]]) -> list[dict]:
    """One row per checkpoint (the first is the reference): mean scores and, for AUC and PR, the paired
    difference to the reference with its standard error and 95% bootstrap interval."""
    import numpy as np

    from evtrack.metrics.bootstrap import paired_difference

    ref = next(iter(scores))
    keys = sorted(scores[ref])
    table = []
    for ckpt, per_seq in scores.items():
        row: dict = {"checkpoint": ckpt}
        for m in METRICS:
            row[m] = float(np.mean([per_seq[k][m] for k in keys]))
        for m in COMPARED:
            row[f"{m}_diff"], row[f"{m}_se"], row[f"{m}_ci95"] = paired_difference(
                np.array([scores[ref][k][m] for k in keys]), np.array([per_seq[k][m] for k in keys]))
        table.append(row)
    return table


def run(args: argparse.Namespace) -> int:
    import json
    import time
    from pathlib import Path

    from evtrack.cli_options import held_out_sequences
    from evtrack.errors import UserError
    from evtrack.shipped import resolve_checkpoint, shipped_names

    if args.workers < 1:
        raise UserError(f"--workers must be >= 1, got {args.workers}")
    paths, missing = {}, []
    for c in args.checkpoints:  # a file or a shipped name; the table keeps the names given
        try:
            paths[c] = resolve_checkpoint(c, folders=False)
        except UserError:
            if Path(c).exists():  # a folder: its own message
                raise
            missing.append(c)
    if missing:
        raise UserError(f"no such checkpoint: {', '.join(missing)}; expected checkpoint files or shipped names "
                        f"({shipped_names()})")
    if len({p.resolve() for p in paths.values()}) != len(args.checkpoints):
        raise UserError(f"checkpoints must differ, got {' '.join(args.checkpoints)}")
    if args.json:
        from evtrack.io.atomic import check_writable

        check_writable(args.json, "--json")
    sequences = held_out_sequences(args, args.max_sequences)
    t0 = time.perf_counter()
    scores = {c: score_checkpoint(paths[c], sequences, args.keep, args.workers, args.tre) for c in args.checkpoints}
    table = paired_table(scores)
    pruned = f", token-pruned with --keep {args.keep}" if args.keep else ""
    pruned += f", TRE with up to {args.tre} runs per sequence" if args.tre else ""
    print(f"\n#### {len(sequences)} held-out sequences from {', '.join(args.data)}{pruned} "
          f"({time.perf_counter() - t0:.0f} s)\n")
    print("| checkpoint | AUC | PR | NPR | AUC vs first (+- s.e.) [95% CI] | PR vs first (+- s.e.) [95% CI] |")
    print("|---|---|---|---|---|---|")
    for i, row in enumerate(table):
        diff = [""] * len(COMPARED) if i == 0 else [
            f"{row[f'{m}_diff']:+.2f} +- {row[f'{m}_se']:.2f} [{row[f'{m}_ci95'][0]:+.2f}, {row[f'{m}_ci95'][1]:+.2f}]"
            for m in COMPARED]
        print(f"| {row['checkpoint']} | {row['auc']:.2f} | {row['pr']:.2f} | {row['npr']:.2f} | "
              + " | ".join(diff) + " |")
    if args.json:
        from evtrack.io import atomic

        atomic.write_text(args.json, json.dumps({"data": args.data, "keep": args.keep, "tre": args.tre, "table": table,
                                                 "per_sequence": scores}, indent=1))
    return 0
