"""Compare tracker checkpoints on held-out sequences, paired sequence by sequence.

Scores of 30-40 sequences move by several AUC points between disjoint sets (per-sequence AUC has a
standard deviation of ~25 points), so two checkpoints are compared on the *same* sequences and the
table gives the mean paired difference to the first checkpoint with its standard error and its 95%
paired bootstrap interval (``evtrack.metrics.bootstrap``). Each
checkpoint tracks with its stored online options (as every command does); ``--keep`` runs them
token-pruned. Use validation sets that no checkpoint trained on (``evtrack make-dataset data/val
--train 40 --test 0 --seed 3``), never the test split you report.

    python benchmarks/compare_checkpoints.py src/evtrack/data/tiny.pt runs/tiny_big3/tiny.pt \\
        --data data/val data/val2 [--keep default] [--json out/compare.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def score_checkpoint(
    checkpoint: str, sequences: list, keep: str | None, workers: int
) -> dict[str, dict[str, float]]:
    """Per-sequence AUC / PR / NPR of one checkpoint, through the benchmark runner (a fresh tracker per
    sequence, one torch thread per worker process)."""
    from functools import partial

    from evtrack.benchmark_runner import BenchmarkConfig, run_benchmark
    from evtrack.tracker.online import load_tracker

    make = partial(load_tracker, checkpoint, keep=keep, n_threads=1)
    report = run_benchmark(sequences, make, BenchmarkConfig(workers=workers, plot=False, progress=False))
    return report.ope.per_sequence()


def paired(base: np.ndarray, other: np.ndarray) -> tuple[float, float, tuple[float, float]]:
    """Mean of ``other - base``, its standard error (0 with fewer than two pairs) and its 95% bootstrap
    interval over the pairs."""
    from evtrack.metrics.bootstrap import percentile_interval

    d = other - base
    se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else 0.0
    return float(d.mean()), se, percentile_interval(d)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="+", help="first = reference")
    ap.add_argument("--data", nargs="+", required=True, help="dataset root(s) of held-out sequences")
    ap.add_argument(
        "--split", default="train", help="split inside each root (make-dataset --test 0 puts all in train)"
    )
    ap.add_argument(
        "--keep", default=None, help="token-pruning keep schedule for every checkpoint (e.g. default)"
    )
    ap.add_argument("--max-sequences", type=int, default=None, help="first N sequences of each root")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", default=None, help="write per-sequence scores and the table here")
    args = ap.parse_args(argv)
    if args.split == "test":
        print(
            "compare_checkpoints: refusing the test split (rank on validation, report test once)",
            file=sys.stderr,
        )
        return 2

    from pathlib import Path

    from evtrack.datasets import load_dataset
    from evtrack.errors import UserError

    missing = [c for c in args.checkpoints if not Path(c).is_file()]
    if missing:
        print(f"compare_checkpoints: no such checkpoint: {', '.join(missing)}", file=sys.stderr)
        return 2
    sequences = {}
    for root in args.data:
        try:
            sequences[root] = load_dataset("synthetic", root, args.split)[: args.max_sequences]
        except UserError as exc:
            print(f"compare_checkpoints: {exc}", file=sys.stderr)
            return 2
    t0 = time.perf_counter()
    scores: dict[str, dict[str, dict[str, float]]] = {}
    for ckpt in args.checkpoints:  # keys root/name: make-dataset names repeat across roots
        scores[ckpt] = {
            f"{root}/{name}": row
            for root, seqs in sequences.items()
            for name, row in score_checkpoint(ckpt, seqs, args.keep, args.workers).items()
        }
    keys = sorted(scores[args.checkpoints[0]])
    ref = args.checkpoints[0]
    pruned = f", token-pruned with --keep {args.keep}" if args.keep else ""
    print(
        f"\n#### {len(keys)} held-out sequences from {', '.join(args.data)}{pruned} "
        f"({time.perf_counter() - t0:.0f} s)\n"
    )
    print("| checkpoint | AUC | PR | NPR | AUC vs first (+- s.e.) [95% CI] | PR vs first (+- s.e.) [95% CI] |")
    print("|---|---|---|---|---|---|")
    table = []
    for ckpt in args.checkpoints:
        row = {"checkpoint": ckpt}
        for m in ("auc", "pr", "npr"):
            row[m] = float(np.mean([scores[ckpt][k][m] for k in keys]))
        for m in ("auc", "pr"):
            row[f"{m}_diff"], row[f"{m}_se"], row[f"{m}_ci95"] = paired(
                np.array([scores[ref][k][m] for k in keys]), np.array([scores[ckpt][k][m] for k in keys])
            )
        diff = (
            ("", "")
            if ckpt == ref
            else tuple(
                f"{row[f'{m}_diff']:+.2f} +- {row[f'{m}_se']:.2f} [{row[f'{m}_ci95'][0]:+.2f}, {row[f'{m}_ci95'][1]:+.2f}]"
                for m in ("auc", "pr")
            )
        )
        print(f"| {ckpt} | {row['auc']:.2f} | {row['pr']:.2f} | {row['npr']:.2f} | {diff[0]} | {diff[1]} |")
        table.append(row)
    if args.json:
        from evtrack.io import atomic

        atomic.write_text(
            args.json,
            json.dumps(
                {"data": args.data, "keep": args.keep, "table": table, "per_sequence": scores}, indent=1
            ),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
