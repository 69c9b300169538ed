"""``evtrack track``: track one object through an event recording and write its boxes."""

from __future__ import annotations

import argparse

from evtrack.cli_options import (
    add_checkpoint_arguments,
    add_tracking_arguments,
    checkpoint_argument,
    format_ops,
    keep_label,
    ops_summary,
    parse_box,
    tracking_options,
)


def register(subparsers) -> None:
    from evtrack.cli_options import TRACKING_KEEP_DEFAULT, add_sensor_size_argument, keep_help

    p = subparsers.add_parser(
        "track",
        help="track one object in a recording (boxes to a text file, optional overlay video)",
        description="Track the object given by --init through RECORDING. Events are fed per fixed time "
        "window (--window-ms, starting at the first event) or per APS frame interval of the recording "
        "(--frames).",
    )
    p.add_argument("recording", help="event file (any format evtrack reads)")
    p.add_argument("--init", required=True, metavar="X,Y,W,H",
                   help="initial box in sensor pixels; it must overlap the sensor (negative x, y are fine: "
                   "--init -30,-30,60,60)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--window-ms", type=float, default=None, help="time window per update (default 20)")
    mode.add_argument("--frames", action="store_true", help="one update per frame interval of the recording")
    p.add_argument("--start-us", type=int, default=None,
                   help="time of the initial box (default: first event + one window)")
    p.add_argument("--out", default=None, help="write boxes here, one 'x,y,w,h' line per update (default: stdout)")
    p.add_argument("--video", default=None, help="write an overlay video (mp4)")
    add_checkpoint_arguments(p)
    p.add_argument("--keep", default=None, help=keep_help(TRACKING_KEEP_DEFAULT))
    p.add_argument("--threads", type=int, default=1, help="CPU threads of torch and the runtime (default 1)")
    add_sensor_size_argument(p, "sensor height and width when the recording does not state them")
    p.add_argument("--json", action="store_true",
                   help="print one JSON summary (updates, fps, SOPs, energy, tokens kept) on stdout; the boxes "
                   "then go to --out, or into the JSON as 'boxes' without --out")
    p.add_argument("--no-count-ops", action="store_true", help="skip SOP/energy/token accounting")
    add_tracking_arguments(p, runtime_default="auto")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys
    import time

    import numpy as np

    from evtrack.errors import UserError
    from evtrack.io import atomic, open_events

    t_command = time.perf_counter()
    init = parse_box(args.init)
    checkpoint = checkpoint_argument(args)  # before any work: a bad name must not wait for the recording
    if args.window_ms is not None and args.window_ms <= 0:
        raise UserError(f"--window-ms must be > 0, got {args.window_ms}")
    for option, path in (("--out", args.out), ("--video", args.video)):
        if path:  # before any work: a bad output path must not cost the whole run
            atomic.check_writable(path, option)
    options = {"sensor_size": tuple(args.sensor_size)} if args.sensor_size else {}
    with open_events(args.recording, **options) as reader:
        info = reader.info
        sensor = info.sensor_size
        if sensor is None:
            raise UserError(f"{args.recording}: sensor size unknown; pass --sensor-size H W")
        from evtrack.tracker.crops import check_init_box
        from evtrack.tracker.online import load_tracker, track_sequence

        box = check_init_box(init, sensor)
        if args.frames:
            if info.frame_timestamps_us is None or len(info.frame_timestamps_us) < 2:
                raise UserError(f"{args.recording}: no frame stream (streams: {info.streams}); use --window-ms")
            edges = np.asarray(info.frame_timestamps_us, dtype=np.int64)
            if args.start_us is not None:
                edges = edges[edges >= args.start_us]
        else:
            window_us = int(round((args.window_ms or 20.0) * 1000))
            span = reader.time_range()  # the first event, as reader.windows() starts (.raw has no stored start)
            if span is None:
                raise UserError(f"{args.recording}: no events to track")
            start = args.start_us if args.start_us is not None else span[0] + window_us
            edges = np.arange(start, span[1] + window_us, window_us, dtype=np.int64)
        if len(edges) < 2:
            raise UserError(f"{args.recording}: fewer than two update intervals to track")
        tracking = tracking_options(args, count_ops=not args.no_count_ops)
        tracker = load_tracker(checkpoint, keep=args.keep, n_threads=args.threads,
                               count_ops=not args.no_count_ops, **tracking)
        t = time.perf_counter()
        res = track_sequence(tracker, reader, box, edges, progress=True)
        wall = time.perf_counter() - t
    lines = [f"{b[0]:.2f},{b[1]:.2f},{b[2]:.2f},{b[3]:.2f}" for b in res.boxes]
    if args.out:
        atomic.write_text(args.out, "\n".join(lines) + "\n")
    elif not args.json:
        sys.stdout.write("\n".join(lines) + "\n")
    if args.video:
        from evtrack.datasets.sequence import interval_edges
        from evtrack.tracker.overlay import PRED_COLOUR, write_video

        full = interval_edges(edges)
        with open_events(args.recording, **options) as reader:
            frames = ((ev, [(b, PRED_COLOUR)]) for ev, b in zip(reader.slices(full), res.boxes, strict=False))
            write_video(args.video, frames, sensor, fps=min(60.0, 1e6 / max(1, int(np.median(np.diff(full))))))
    ops = ops_summary(res.stats)
    command_s = time.perf_counter() - t_command
    if args.json:
        import json

        summary = {"recording": str(args.recording), "updates": len(res.boxes), "wall_s": round(wall, 3),
                   "command_wall_s": round(command_s, 3), "fps": round(res.fps, 2), "keep": keep_label(args.keep, res.stats.get("pruning")), "runtime": tracking["runtime"],
                   **ops}
        if args.out:
            summary["out"] = str(args.out)
        else:
            summary["boxes"] = [[round(float(v), 2) for v in b] for b in res.boxes]
        print(json.dumps(summary))
    print(f"tracked {len(res.boxes)} updates in {wall:.1f} s ({res.fps:.1f} updates/s end to end); "
          f"{command_s:.1f} s wall time for the whole command (loading, reading, tracking, writing)", file=sys.stderr)
    if "sops" in ops:
        print(format_ops(ops), file=sys.stderr)
    return 0
