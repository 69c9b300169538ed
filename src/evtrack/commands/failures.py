"""evtrack failures: why did the tracker lose the target? Losses sorted by what caused them.

Reads the result files evtrack benchmark --out DIR wrote and prints, per cause, how many sequences
lost the target there and how many frames came after those losses (the frames the loss costs in the
success/precision curves). A generated dataset (make-dataset) has each scene rebuilt from its seed
(evtrack.sim.failures: look-alike distractors and occluders are not in the annotations); any other
dataset, such as real footage converted by convert-dataset, gets the causes that need no scene
model (evtrack.metrics.losses: absent, fast motion, small target, clutter).
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "failures",
        help="where and why a tracker lost the target (look-alike switch, occlusion, fast motion, ...)",
        description=__doc__.split("\n\n", 1)[1],
    )
    p.add_argument("--root", required=True, help="dataset root (made by make-dataset, or any --dataset layout)")
    p.add_argument("--dataset", default="synthetic",
                   help="layout of a dataset that make-dataset did not generate (default synthetic: FE108 layout)")
    p.add_argument("--split", default="test", help="split the results belong to (default: test)")
    p.add_argument("--results", required=True, help="folder of <sequence>.txt result files")
    p.add_argument("--json", default=None, metavar="PATH", help="write the per-sequence losses and the table here")
    p.add_argument("--list", action="store_true", help="also print every lost sequence")
    p.set_defaults(func=run)


def is_generated(root: str) -> bool:
    """Whether ``root`` was made by ``evtrack make-dataset`` (its scenes can then be rebuilt)."""
    import json
    from pathlib import Path

    manifest = Path(root) / "dataset.json"
    if not manifest.is_file():
        return False
    try:
        return json.loads(manifest.read_text()).get("name") == "evtrack-synthetic"
    except (json.JSONDecodeError, AttributeError):
        return False


def describe(loss, generated: bool) -> str:
    """One line of ``--list`` for a lost sequence."""
    if generated:
        return (f"{loss.name}: frame {loss.loss} of {loss.n_frames}, {loss.cause} (visibility >= {loss.min_visibility}, "
                f"nearest distractor {loss.nearest_distractor} target sizes, {loss.frames_on_distractor} frames on one)")
    return (f"{loss.name}: frame {loss.loss} of {loss.n_frames}, {loss.cause} (largest jump {loss.max_jump} target sizes "
            f"a frame, smallest {loss.min_size_px} px, clutter {loss.clutter})")


def run(args: argparse.Namespace) -> int:
    import json
    import time
    from dataclasses import asdict

    from evtrack.datasets import load_dataset
    from evtrack.metrics import losses as recorded
    from evtrack.sim import failures as generated

    if args.json:
        from evtrack.io.atomic import check_writable

        check_writable(args.json, "--json")
    t0 = time.perf_counter()
    gen = is_generated(args.root)
    if gen:
        losses = generated.analyse_results(args.root, args.results, args.split)
    else:
        losses = recorded.analyse_results(load_dataset(args.dataset, args.root, args.split), args.results)
    causes = generated.CAUSES if gen else recorded.CAUSES
    table = recorded.summarise_losses(losses, causes)
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
            if s.loss is not None:
                print(describe(s, gen))
    print(f"\n({time.perf_counter() - t0:.1f} s)")
    if args.json:
        from evtrack.io import atomic

        atomic.write_text(args.json, json.dumps({"table": table, "sequences": [asdict(s) for s in losses]}, indent=1))
    return 0
