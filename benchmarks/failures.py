"""Why does the tracker lose the target? Losses on generated sequences, sorted by what caused them.

Reads the results ``evtrack benchmark --out DIR`` wrote for a generated dataset, rebuilds each scene
from the dataset's seed (``evtrack.sim.failures``: distractors and occluders are not in the
annotations) and prints, per cause, how many sequences lost the target there and how many frames
came after those losses (the frames the loss costs in the success/precision curves).

    evtrack benchmark --dataset synthetic --root data/val4 --split train --workers 2 --no-count-ops --out out/val4
    python benchmarks/failures.py --root data/val4 --split train --results out/val4 --json out/val4_failures.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict


def main(argv=None) -> int:
    from evtrack.errors import EvtrackError
    from evtrack.io import atomic
    from evtrack.sim.failures import CAUSES, analyse_results, summarise

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True, help="generated dataset (made by evtrack make-dataset)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--results", required=True, help="folder of <sequence>.txt result files")
    ap.add_argument("--json", default=None, help="write the per-sequence losses and the table here")
    ap.add_argument("--list", action="store_true", help="also print every lost sequence")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    try:
        losses = analyse_results(args.root, args.results, args.split)
    except EvtrackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    table = summarise(losses)
    total = sum(s.n_frames for s in losses)
    print(f"\n#### Where the target was lost: {len(losses)} sequences of {args.root}/{args.split}, {total} frames "
          f"(results: {args.results})\n")
    print("| cause | sequences | frames after the loss | share of all frames |")
    print("|---|---|---|---|")
    for cause in CAUSES:
        row = table[cause]
        share = f"{100 * row['share_of_frames']:.1f}%" if cause != "none" else ""
        after = row["frames_after_loss"] if cause != "none" else ""
        print(f"| {cause} | {row['sequences']} | {after} | {share} |")
    if args.list:
        print()
        for s in losses:
            if s.loss is not None:
                print(f"{s.name}: frame {s.loss} of {s.n_frames}, {s.cause} (visibility >= {s.min_visibility}, "
                      f"nearest distractor {s.nearest_distractor} target sizes, {s.frames_on_distractor} frames on one)")
    print(f"\n({time.perf_counter() - t0:.1f} s)")
    if args.json:
        atomic.write_text(args.json, json.dumps({"table": table, "sequences": [asdict(s) for s in losses]}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
