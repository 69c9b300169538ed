"""``evtrack convert-dataset``: an RGB tracking dataset (OTB/UAV123, GOT-10k, LaSOT) into an event dataset."""

from __future__ import annotations

import argparse

from evtrack.cli_options import add_sensor_size_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "convert-dataset",
        help="simulate events for every sequence of an RGB tracking dataset (FE108 layout out)",
        description="Convert an RGB single-object tracking dataset into an event dataset that `evtrack benchmark "
        "--dataset synthetic` and `evtrack train` read. Input layouts: OTB/UAV123 (<seq>/img/ + "
        "groundtruth_rect.txt), GOT-10k (<seq>/*.jpg + groundtruth.txt) and LaSOT (<class>/<seq>/img/ + "
        "groundtruth.txt), optionally under train/, val/, test/ split folders (kept as splits; sequences directly "
        "under SOURCE go to split 'all'). Output: OUT/<split>/<seq>/events.h5 with boxes scaled to the sensor, "
        "absent labels and frame timestamps. Each sequence's frame rate comes from its fps.txt, else the layout "
        "(OTB/LaSOT 30, GOT-10k 10), unless --fps is given. Resumable: run the same command again and finished "
        "sequences are kept. Deterministic for a --seed, whatever --workers.",
    )
    p.add_argument("source", help="dataset root (sequence folders, or train/ val/ test/ folders of them)")
    p.add_argument("out", help="output dataset root (created)")
    p.add_argument("--layout", default="auto", choices=["auto", "otb", "got10k", "lasot"],
                   help="input layout (default: detected per sequence)")
    p.add_argument("--split", nargs="+", default=None, help="convert only these splits (e.g. train)")
    p.add_argument("--names", nargs="+", default=None, help="convert only these sequences")
    add_sensor_size_argument(p, "sensor height and width; frames are resized to it (default 260 346, DAVIS346)",
                             default=(260, 346))
    p.add_argument("--fps", type=float, default=None, help="frame rate for every sequence (default: per sequence)")
    p.add_argument("--randomize", action="store_true",
                   help="draw thresholds, their spread, refractory period, noise and hot pixels per sequence "
                   "(for training sets)")
    p.add_argument("--no-upsample", action="store_true", help="never insert optical-flow sub-steps")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--workers", type=int, default=1, help="parallel processes (same output for any number)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    import sys
    import time
    from dataclasses import asdict, replace

    from evtrack.errors import UserError
    from evtrack.sim.convert_dataset import ConvertConfig, convert_dataset
    from evtrack.sim.esim import SensorConfig

    h, w = args.sensor_size
    if not (16 <= h <= 32767 and 16 <= w <= 32767):
        raise UserError(f"--sensor-size: expected H W between 16 and 32767, got {h} {w}")
    if args.fps is not None and not args.fps > 0:
        raise UserError(f"--fps must be a positive number, got {args.fps}")
    if args.seed < 0:
        raise UserError(f"--seed must be >= 0, got {args.seed}")
    cfg = ConvertConfig(sensor=replace(SensorConfig(), height=h, width=w), seed=args.seed, randomize=args.randomize,
                        fps=args.fps, upsample=not args.no_upsample, layout=args.layout)
    t0 = time.perf_counter()
    done, errors, n_kept = convert_dataset(args.source, args.out, cfg, splits=args.split, names=args.names,
                                           workers=args.workers, show_progress=not args.quiet)
    wall = time.perf_counter() - t0
    frames = sum(r.n_frames for r in done)
    events = sum(r.n_events for r in done)
    size = sum(r.bytes for r in done)
    if args.json:
        print(json.dumps({"converted": [asdict(r) for r in done], "errors": dict(errors), "kept": n_kept,
                          "frames": frames, "events": events, "bytes": size, "wall_s": round(wall, 2)}))
    else:
        if done:
            print(f"{'split':<6} {'sequence':<20} {'frames':>7} {'absent':>6} {'events':>12} {'MB':>8} {'s':>7}")
            for r in done:
                print(f"{r.split:<6} {r.name:<20} {r.n_frames:>7} {r.n_absent:>6} {r.n_events:>12,} "
                      f"{r.bytes / 1e6:>8.1f} {r.seconds:>7.1f}")
        print(f"converted {len(done)} sequences ({frames:,} frames, {events:,} events, {size / 1e6:.1f} MB) in "
              f"{wall:.1f} s; {n_kept} already complete kept; {len(errors)} failed -> {args.out}")
    for name, msg in errors:
        print(f"evtrack convert-dataset: {name}: {msg}", file=sys.stderr)
    return 1 if errors else 0
