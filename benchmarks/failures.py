"""Why does the tracker lose the target? Losses sorted by what caused them.

Reads the results ``evtrack benchmark --out DIR`` wrote and prints, per cause, how many sequences lost
the target there and how many frames came after those losses (the frames the loss costs in the
success/precision curves). A generated dataset (``make-dataset``) has each scene rebuilt from its seed
(``evtrack.sim.failures``: distractors and occluders are not in the annotations); any other FE108-layout
dataset, such as real footage converted by ``convert-dataset``, gets the causes that need no scene
model (``evtrack.metrics.losses``: absent, fast motion, small target, clutter).

    evtrack benchmark --dataset synthetic --root data/val4 --split train --workers 2 --no-count-ops --out out/val4
    python benchmarks/failures.py --root data/val4 --split train --results out/val4 --json out/val4_failures.json
    python benchmarks/failures.py --root data/real_val --split val --results out/real_val
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path


def main(argv=None) -> int:
    from evtrack.datasets import load_dataset
    from evtrack.errors import EvtrackError
    from evtrack.io import atomic
    from evtrack.metrics import losses as real
    from evtrack.sim import failures as generated

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True, help="generated dataset (made by evtrack make-dataset)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--results", required=True, help="folder of <sequence>.txt result files")
    ap.add_argument("--json", default=None, help="write the per-sequence losses and the table here")
    ap.add_argument("--list", action="store_true", help="also print every lost sequence")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    manifest = Path(args.root) / "dataset.json"
    is_generated = manifest.is_file() and json.loads(manifest.read_text()).get("name") == "evtrack-synthetic"
    try:
        if is_generated:
            losses = generated.analyse_results(args.root, args.results, args.split)
        else:
            losses = real.analyse_results(load_dataset("synthetic", args.root, args.split), args.results)
    except EvtrackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    causes = generated.CAUSES if is_generated else real.CAUSES
    table = real.summarise_losses(losses, causes)
    total = sum(s.n_frames for s in losses)
    print(f"\n#### Where the target was lost: {len(losses)} sequences of {args.root}/{args.split}, {total} frames "
          f"(results: {args.results})\n")
    print("| cause | sequences | frames after the loss | share of all frames |")
    print("|---|---|---|---|")
    for cause in causes:
        row = table[cause]
        share = f"{100 * row['share_of_frames']:.1f}%" if cause != "none" else ""
        after = row["frames_after_loss"] if cause != "none" else ""
        print(f"| {cause} | {row['sequences']} | {after} | {share} |")
    if args.list:
        print()
        for s in losses:
            if s.loss is not None and is_generated:
                print(f"{s.name}: frame {s.loss} of {s.n_frames}, {s.cause} (visibility >= {s.min_visibility}, "
                      f"nearest distractor {s.nearest_distractor} target sizes, {s.frames_on_distractor} frames on one)")
            elif s.loss is not None:
                print(f"{s.name}: frame {s.loss} of {s.n_frames}, {s.cause} (largest jump {s.max_jump} target sizes "
                      f"a frame, smallest {s.min_size_px} px, clutter {s.clutter})")
    print(f"\n({time.perf_counter() - t0:.1f} s)")
    if args.json:
        atomic.write_text(args.json, json.dumps({"table": table, "sequences": [asdict(s) for s in losses]}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
