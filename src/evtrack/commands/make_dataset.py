"""``evtrack make-dataset``: render and simulate a synthetic tracking dataset (FE108 layout)."""

from __future__ import annotations

import argparse

from evtrack.cli_options import add_sensor_size_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "make-dataset",
        help="generate a synthetic event-tracking dataset (train/test, FE108 layout)",
        description="Render procedural tracking scenes at a high frame rate, convert them to events with the "
        "ESIM-style simulator and write <OUT>/{train,test}/<seq>/ with events.h5 and ground truth. "
        "Deterministic for a seed; an interrupted run is completed by running the same command again.",
    )
    p.add_argument("out", help="output directory (created; finished sequences in it are kept)")
    p.add_argument("--train", type=int, default=100, help="number of training sequences (default 100)")
    p.add_argument("--test", type=int, default=30, help="number of test sequences (default 30)")
    p.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    p.add_argument("--workers", type=int, default=1, help="parallel processes (same bytes for any number)")
    p.add_argument("--render-fps", type=float, default=1000.0, help="internal render rate in Hz (default 1000)")
    p.add_argument("--gt-hz", type=float, default=25.0, help="ground-truth frame rate in Hz (default 25)")
    p.add_argument("--duration", default="2,4", help="MIN,MAX sequence length in seconds (default 2,4)")
    add_sensor_size_argument(p, "sensor height and width (default 260 346, DAVIS346)", default=(260, 346))
    p.add_argument("--sensor", default=None, help=argparse.SUPPRESS)  # old spelling HEIGHTxWIDTH, still read
    p.add_argument("--materials", default=None, metavar="RGB_ROOT",
                   help="make the scenes of real footage: target crops and backgrounds from the frames of this RGB "
                   "tracking dataset (OTB, GOT-10k or LaSOT layout), moved by the same trajectories; targets 5-64 px "
                   "drawn log-uniformly, as sizes spread in real footage")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import time
    from dataclasses import replace

    from evtrack.errors import UserError
    from evtrack.sim.dataset import SequenceConfig, make_dataset
    from evtrack.sim.esim import SensorConfig, parse_sensor
    from evtrack.sim.scenes import SceneConfig

    if args.render_fps <= 0 or args.gt_hz <= 0 or args.gt_hz > args.render_fps:
        raise UserError(f"need 0 < --gt-hz <= --render-fps, got --gt-hz {args.gt_hz} --render-fps {args.render_fps}")
    if args.seed < 0:
        raise UserError(f"--seed must be >= 0, got {args.seed}")
    try:
        d_min, d_max = (float(v) for v in args.duration.split(","))
    except ValueError:
        raise UserError(f"--duration: expected MIN,MAX in seconds such as 2,4, got {args.duration!r}") from None
    if not 0 < d_min <= d_max:
        raise UserError(f"--duration: need 0 < MIN <= MAX, got {args.duration!r}")
    if d_min * args.gt_hz < 2:
        raise UserError(f"--duration {args.duration}: sequences need at least 2 frames at --gt-hz {args.gt_hz}")
    h, w = parse_sensor(args.sensor) if args.sensor else args.sensor_size
    if h < 64 or w < 64:
        raise UserError(f"--sensor-size: scenes need at least 64x64 pixels, got {h} {w}")
    scene = replace(SceneConfig(), sensor_size=(h, w), duration_s=(d_min, d_max))
    materials = None
    if args.materials is not None:
        from pathlib import Path

        from evtrack.sim.real_scenes import load_bank

        materials = str(Path(args.materials).resolve())
        load_bank(materials)  # fails now, with the reason, if the folder holds no usable sequence
        # real footage is busier than the procedural noise backgrounds, and real targets are often small:
        # log-uniform 5-64 px puts the size percentiles near those of the real train split's boxes
        scene = replace(scene, target_size_px=(5.0, 64.0), target_size_log=True,
                        background_rate_ev_s=(50_000.0, 400_000.0), max_rate_ev_s=800_000.0)
    cfg = SequenceConfig(render_fps=args.render_fps, gt_hz=args.gt_hz,
                         sensor=replace(SensorConfig(), height=h, width=w), scene=scene, materials=materials)
    t0 = time.perf_counter()
    done = make_dataset(args.out, args.train, args.test, args.seed, workers=args.workers, cfg=cfg,
                        show_progress=not args.quiet)
    dt = time.perf_counter() - t0
    n_ev = sum(s.n_events for s in done)
    print(f"made {len(done)} sequences ({n_ev:,} events) in {dt:.1f} s under {args.out}")
    return 0
