"""evtrack tune: choose a checkpoint's online-tracking options on held-out sequences, then store them.

A score threshold only means something for the network that produced the score, so min_score
(below it the target counts as lost and the box coasts), motion (constant-velocity prior) and
window_power (how sharply the Hann window keeps the box near its last position) are chosen per
checkpoint: every combination of the grid tracks the first --sequences sequences of each
--data root through the benchmark loop, the table gives AUC / PR / NPR over all of them, and
--write stores the best (by AUC) in the checkpoint's tracking field, which load_tracker
(and so every command) uses as its default. With --keep the network runs token-pruned and the best
threshold is written as min_score_pruned (pruning lowers the peak scores a little).
"""

from __future__ import annotations

import argparse

from evtrack.cli_options import (
    TRACKING_KEEP_DEFAULT,
    add_checkpoint_arguments,
    add_held_out_arguments,
    add_tre_argument,
    keep_help,
)

DEFAULT_MIN_SCORES = (0.0, 0.15, 0.2, 0.25, 0.3, 0.35)
DEFAULT_MOTIONS = (0.0, 0.5, 1.0)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "tune",
        help="tune a checkpoint's lost-target threshold and motion prior on held-out sequences (--write stores them)",
        description=__doc__.split("\n\n", 1)[1],
    )
    add_checkpoint_arguments(p, "tracker checkpoint to tune (and write into with --write)", required=True, folders=False)
    add_held_out_arguments(p)
    p.add_argument("--sequences", type=int, default=40, metavar="N", help="first N sequences of each root")
    p.add_argument("--min-score", type=float, nargs="+", default=list(DEFAULT_MIN_SCORES), help="thresholds to try")
    p.add_argument("--motion", type=float, nargs="+", default=None,
                   help="motion priors to try (default 0 0.5 1; with --keep: the checkpoint's stored value)")
    p.add_argument("--window-power", type=float, nargs="+", default=None,
                   help="Hann window powers to try (default: the checkpoint's stored value, else 1)")
    p.add_argument("--keep", default=None,
                   help="tune the token-pruned network and write min_score_pruned; " + keep_help(TRACKING_KEEP_DEFAULT))
    p.add_argument("--workers", type=int, default=2, help="grid points tracked in parallel (one thread each)")
    add_tre_argument(p)
    p.add_argument("--write", action="store_true", help="store the best options in the checkpoint")
    p.add_argument("--json", default=None, metavar="PATH", help="write every row here")
    p.set_defaults(func=run)


def score_options(job: tuple) -> tuple[dict, dict]:
    """AUC / PR / NPR of one grid point (a worker process: one torch thread, sequences in turn)."""
    from functools import partial

    from evtrack.benchmark_runner import BenchmarkConfig, run_benchmark
    from evtrack.tracker import load_tracker

    checkpoint, sequences, keep, options, tre = job
    make = partial(load_tracker, checkpoint, keep=keep, n_threads=1, **options)
    report = run_benchmark(sequences, make, BenchmarkConfig(progress=False, plot=False, tre_segments=tre))
    return options, report.ope.summary()


def run_grid(jobs: list[tuple], workers: int) -> list[tuple[dict, dict]]:
    """Every grid point, in order; ``workers`` > 1 spreads them over spawned processes."""
    import sys

    def report(options: dict, summary: dict) -> None:
        print(f"  min_score {options['min_score']:.2f} motion {options['motion']:.2f} "
              f"window_power {options['window_power']:g}: "
              f"AUC {summary['auc']:.2f} PR {summary['pr']:.2f}", file=sys.stderr, flush=True)

    out = []
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            out.append(score_options(job))
            report(*out[-1])
        return out
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=get_context("spawn")) as pool:
        for options, summary in pool.map(score_options, jobs):
            out.append((options, summary))
            report(options, summary)
    return out


def run(args: argparse.Namespace) -> int:
    import itertools
    import json
    import time

    from evtrack.cli_options import checkpoint_argument, held_out_sequences
    from evtrack.errors import UserError
    from evtrack.network.checkpoint import load_checkpoint, set_tracking_options
    from evtrack.shipped import is_shipped_name

    if args.workers < 1:
        raise UserError(f"--workers must be >= 1, got {args.workers}")
    checkpoint = checkpoint_argument(args)
    name = args.backbone or args.checkpoint
    if args.write and (args.backbone or is_shipped_name(args.checkpoint)):
        raise UserError(f"--write: {name} is a checkpoint shipped inside the evtrack package; copy it "
                        f"(cp {checkpoint} mine.pt) and tune the copy, or pass its path to write into it")
    if args.json:
        from evtrack.io.atomic import check_writable

        check_writable(args.json, "--json")
    sequences = held_out_sequences(args, args.sequences)
    stored = load_checkpoint(checkpoint).get("tracking", {})
    motions = args.motion or ([stored.get("motion", 0.0)] if args.keep else list(DEFAULT_MOTIONS))
    powers = args.window_power or [stored.get("window_power", 1.0)]
    if any(not p > 0 for p in powers):
        raise UserError(f"--window-power values must be > 0, got {powers}")
    if args.keep and args.window_power:
        raise UserError("--window-power with --keep: the pruned network shares the dense one's window; "
                        "tune it without --keep")
    grid = [{"min_score": s, "motion": m, "window_power": w}
            for s, m, w in itertools.product(args.min_score, motions, powers)]
    t0 = time.perf_counter()
    rows = [{**options, **summary} for options, summary in
            run_grid([(checkpoint, sequences, args.keep, o, args.tre) for o in grid], args.workers)]
    wall = time.perf_counter() - t0
    best = max(rows, key=lambda r: r["auc"])
    pruned = f", token-pruned with --keep {args.keep}" if args.keep else ""
    pruned += f", TRE with up to {args.tre} runs per sequence" if args.tre else ""
    print(f"\n#### Online options of {name}{pruned} on {args.split} of {', '.join(args.data)} "
          f"({rows[0]['n_sequences']} sequences, {wall:.0f} s)\n")
    print("| min_score | motion | window_power | AUC | PR | NPR |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        mark = " **best**" if r is best else ""
        print(f"| {r['min_score']:.2f} | {r['motion']:.2f} | {r['window_power']:g} | {r['auc']:.2f}{mark} | "
              f"{r['pr']:.2f} | {r['npr']:.2f} |")
    if args.keep:
        chosen = {"min_score_pruned": best["min_score"]}
        if best["motion"] != stored.get("motion", 0.0):
            print(f"note: best motion with pruning is {best['motion']}; only min_score_pruned is written")
    else:
        chosen = {"min_score": best["min_score"], "motion": best["motion"], "window_power": best["window_power"]}
    if args.write:
        set_tracking_options(checkpoint, {**stored, **chosen})
        print(f"\nwrote tracking options {chosen} into {checkpoint}")
    if args.json:
        from evtrack.io import atomic

        atomic.write_text(args.json, json.dumps({"checkpoint": name, "tre": args.tre, "rows": rows, "best": chosen,
                                                 "wall_s": wall}, indent=1))
    return 0
