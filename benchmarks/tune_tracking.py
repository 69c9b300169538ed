"""Tune the online-tracking options of a checkpoint on held-out sequences, then store the best.

A score threshold only means something for the network that produced the score, so ``min_score``
(below it the target counts as lost and the box coasts) and ``motion`` (constant-velocity prior) are
chosen per checkpoint: every combination of the grid tracks the first ``--sequences`` sequences of
the ``train`` split of each ``--data`` root, the table prints AUC / PR / NPR over all of them, and
``--write`` stores the best (by AUC) in the checkpoint's ``tracking`` field, which ``load_tracker``
(and so every command) uses as its default. Use validation sets the checkpoint did not train on
(``evtrack make-dataset data/val --train 40 --test 0 --seed 3``): tracking outcomes flip with the
threshold sequence by sequence, so 40 sequences, or sequences the network has learned, mislead.
The test split is never looked at.

With ``--keep default`` the network runs token-pruned and the best threshold is written as
``min_score_pruned`` (pruning lowers the peak scores a little), which ``load_tracker`` uses whenever
the network is pruned; the motion prior is then the stored one unless ``--motion`` is given.

    python benchmarks/tune_tracking.py --checkpoint src/evtrack/data/tiny.pt --data data/val data/val2 \
        --sequences 60 --min-score 0.2 0.25 0.3 0.35 --motion 0.5 1.0 --write
    python benchmarks/tune_tracking.py --checkpoint src/evtrack/data/tiny.pt --data data/synth --keep default --write
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor


def _score(job: tuple) -> tuple[dict, dict]:
    checkpoint, roots, split, n, keep, options = job
    import torch

    from evtrack.datasets import load_roots
    from evtrack.metrics import evaluate_ope
    from evtrack.tracker.online import load_tracker, track_sequence

    torch.set_num_threads(1)
    results, gt, absent = {}, {}, {}
    for key, seq in load_roots("synthetic", roots, split, n).items():  # several roots: one set
        tracker = load_tracker(checkpoint, keep=keep, **options)
        with seq.open() as reader:
            results[key] = track_sequence(tracker, reader, seq.init_box, seq.frame_times_us(reader)).boxes
        gt[key], absent[key] = seq.boxes, seq.absent
    return options, evaluate_ope(results, gt, absent).summary()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--data", required=True, nargs="+",
                    help="dataset root(s) with train/<seq>/ folders (several: scored as one set)")
    ap.add_argument("--split", default="train")
    ap.add_argument("--sequences", type=int, default=40, help="first N sequences of the split of each root")
    ap.add_argument("--min-score", type=float, nargs="+", default=[0.0, 0.15, 0.2, 0.25, 0.3, 0.35])
    ap.add_argument("--motion", type=float, nargs="+", default=None,
                    help="motion values to try (default 0 0.5 1; with --keep: the checkpoint's stored value)")
    ap.add_argument("--keep", default=None, help="tune the token-pruned network (e.g. default): writes min_score_pruned")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--write", action="store_true", help="store the best options in the checkpoint")
    ap.add_argument("--json", default=None, help="write every row here")
    args = ap.parse_args(argv)
    if args.split == "test":
        print("tune_tracking: refusing to tune on the test split", file=sys.stderr)
        return 2

    from evtrack.network.checkpoint import load_checkpoint, set_tracking_options

    stored = load_checkpoint(args.checkpoint).get("tracking", {})
    motions = args.motion or ([stored.get("motion", 0.0)] if args.keep else [0.0, 0.5, 1.0])
    grid = [{"min_score": s, "motion": m} for s, m in itertools.product(args.min_score, motions)]
    jobs = [(args.checkpoint, args.data, args.split, args.sequences, args.keep, o) for o in grid]
    t0 = time.perf_counter()
    rows = []
    with ProcessPoolExecutor(args.workers) as pool:
        for options, summary in pool.map(_score, jobs):
            rows.append({**options, **summary})
            print(f"  min_score {options['min_score']:.2f} motion {options['motion']:.2f}: "
                  f"AUC {summary['auc']:.2f} PR {summary['pr']:.2f}", file=sys.stderr, flush=True)
    wall = time.perf_counter() - t0
    best = max(rows, key=lambda r: r["auc"])
    pruned = f", token-pruned with --keep {args.keep}" if args.keep else ""
    print(f"\n#### Online options of {args.checkpoint}{pruned} on {args.split} of {', '.join(args.data)} "
          f"({rows[0]['n_sequences']} sequences, {wall:.0f} s)\n")
    print("| min_score | motion | AUC | PR | NPR |")
    print("|---|---|---|---|---|")
    for r in rows:
        mark = " **best**" if r is best else ""
        print(f"| {r['min_score']:.2f} | {r['motion']:.2f} | {r['auc']:.2f}{mark} | {r['pr']:.2f} | {r['npr']:.2f} |")
    if args.keep:
        chosen = {"min_score_pruned": best["min_score"]}
        if best["motion"] != stored.get("motion", 0.0):
            print(f"note: best motion with pruning is {best['motion']}; only min_score_pruned is written")
    else:
        chosen = {"min_score": best["min_score"], "motion": best["motion"]}
    if args.write:
        set_tracking_options(args.checkpoint, {**stored, **chosen})
        print(f"\nwrote tracking options {chosen} into {args.checkpoint}")
    if args.json:  # temporary name, then rename: no half-written file
        from evtrack.io import atomic

        atomic.write_text(args.json, json.dumps({"checkpoint": args.checkpoint, "rows": rows, "best": chosen,
                                                 "wall_s": wall}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
