"""``evtrack live``: track a live camera or TCP event stream, boxes out as JSON lines."""

from __future__ import annotations

import sys

from evtrack.cli_options import (
    TRACKING_KEEP_DEFAULT,
    add_checkpoint_arguments,
    add_tracking_arguments,
    checkpoint_argument,
    keep_help,
    parse_box,
    tracking_options,
)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "live", help="track a live camera or TCP event stream",
        description="Track the target given by --init in a live event stream; one JSON line per window.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--camera", nargs="?", const="", default=None, metavar="SERIAL",
                     help="an iniVation camera (the first found, or the one with SERIAL)")
    src.add_argument("--source", metavar="tcp://HOST:PORT", help="a dv network event stream (e.g. evtrack serve)")
    p.add_argument("--init", required=True, metavar="X,Y,W,H",
                   help="target box in the first window, sensor pixels; it must overlap the sensor")
    p.add_argument("--window-ms", type=float, default=20.0, help="tracking window (default 20 ms)")
    p.add_argument("--tracker", choices=("model", "centroid", "stationary"), default="model",
                   help="model = the spiking transformer (default); the others are baselines")
    add_checkpoint_arguments(p, "checkpoint of --tracker model")
    p.add_argument("--keep", default=None, help=keep_help(TRACKING_KEEP_DEFAULT))
    add_tracking_arguments(p, runtime_default="auto")
    p.add_argument("--threads", type=int, default=None, help="CPU threads of torch and the runtime")
    p.add_argument("--latency-budget-ms", type=float, default=None, metavar="MS",
                   help="pick the token keep schedule per window (dense, official, default, 0.3) so that the p99 "
                   "latency stays under MS; each JSON line says the 'keep' it used (needs --runtime onnx or "
                   "openvino; --keep is then not used)")
    p.add_argument("--out", default="-", help="JSON lines file ('-' = stdout, the default)")
    p.add_argument("--boxes-port", type=int, default=None, help="also publish boxes as a dv BoundingBox stream")
    p.add_argument("--boxes-host", default="127.0.0.1", help="address for --boxes-port (default loopback)")
    p.add_argument("--show", action="store_true", help="overlay window (needs a display)")
    p.add_argument("--video", default=None, help="write the overlay to this video file (.mp4/.avi)")
    p.add_argument("--no-skip", action="store_true", help="track every window even when behind")
    p.add_argument("--max-behind", type=int, default=2, metavar="WINDOWS",
                   help="complete windows that may wait for the tracker before the older ones are skipped "
                   "(default 2: a burst of late packets from the network costs no windows when the tracker can "
                   "catch up; 1 = always jump to the newest window)")
    p.add_argument("--retries", type=int, default=5, help="consecutive reconnect attempts before giving up")
    p.add_argument("--connect-timeout", type=float, default=5.0, help="seconds")
    p.add_argument("--idle-timeout", type=float, default=10.0, help="no events this long = reconnect (s)")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.set_defaults(func=run)


def _make_tracker(args):
    from evtrack.errors import UserError

    if args.tracker == "centroid":
        from evtrack.tracker.baselines import CentroidTracker

        return CentroidTracker()
    if args.tracker == "stationary":
        from evtrack.tracker.baselines import StationaryTracker

        return StationaryTracker()
    try:
        from evtrack.tracker import load_tracker
    except ImportError:  # not re-exported yet
        from evtrack.tracker.online import load_tracker

    budget = None
    if args.latency_budget_ms is not None:
        from evtrack.runtime.budget import BudgetConfig

        if args.keep is not None:
            raise UserError("--latency-budget-ms picks the keep schedule per window; expected no --keep with it")
        budget = BudgetConfig(args.latency_budget_ms)
    return load_tracker(checkpoint_argument(args), keep=args.keep, n_threads=args.threads, budget=budget,
                        **tracking_options(args))


def run(args) -> int:
    import json
    import time

    from evtrack.errors import UserError
    from evtrack.live.network import NetworkEventSource, SourceConfig, SourceStatus, parse_tcp_url
    from evtrack.live.outputs import BoxStreamOutput, JsonLinesOutput, OverlayWindow, VideoOutput
    from evtrack.live.stream_tracker import StreamConfig, StreamTracker

    init = parse_box(args.init)
    if args.window_ms <= 0:
        raise UserError(f"--window-ms must be > 0, got {args.window_ms}")
    if args.max_behind < 1:
        raise UserError(f"--max-behind must be >= 1, got {args.max_behind}")
    from evtrack.io.atomic import check_writable

    for option, path in (("--out", None if args.out == "-" else args.out), ("--video", args.video)):
        if path:  # now, not when the first packet arrives
            check_writable(path, option)
    scfg = SourceConfig(connect_timeout_s=args.connect_timeout, idle_timeout_s=args.idle_timeout or None,
                        max_retries=args.retries)
    out = JsonLinesOutput(args.out)

    def on_status(s) -> None:
        print(f"evtrack live: {s.message}", file=sys.stderr, flush=True)
        out.write_obj(s.to_dict())

    if args.camera is not None:
        from evtrack.live.camera import select_camera

        cam = select_camera(args.camera or None)
        source = NetworkEventSource(kind="camera", serial=cam.serial, config=scfg, on_status=on_status)
    else:
        host, port = parse_tcp_url(args.source)
        source = NetworkEventSource(host, port, config=scfg, on_status=on_status)

    # Before connecting: loading and the first, cold update (kernel compilation, ~1.5 s) must not back
    # the stream up; a dropped-window burst at the start was the price.
    t_load = time.monotonic()
    try:
        tracker = _make_tracker(args)
        warm_up = getattr(tracker, "warm_up", None)
        if warm_up is not None:
            warm_up()
    except BaseException:
        out.close(ok=False)  # no half-written --out file when the checkpoint cannot be loaded
        raise
    on_status(SourceStatus("ready", f"tracker ready: loaded and warmed up in {time.monotonic() - t_load:.1f} s"))
    sinks: list = [out]
    st = None
    ok = False
    started = time.monotonic()
    try:
        for packet in source:
            if st is None:
                sensor = source.sensor_size
                from evtrack.tracker.crops import check_init_box

                check_init_box(init, sensor)
                if args.boxes_port is not None:
                    sinks.append(BoxStreamOutput(args.boxes_port, args.boxes_host, sensor))
                if args.show:
                    sinks.append(OverlayWindow(sensor))
                if args.video:
                    sinks.append(VideoOutput(args.video, sensor, fps=1000.0 / args.window_ms))

                def on_window(res, ev, sinks=sinks) -> None:
                    for sink in sinks:
                        sink.write(res, ev)

                st = StreamTracker(tracker, init_box=init, sensor_size=sensor, on_window=on_window,
                                   config=StreamConfig(window_us=int(args.window_ms * 1000),
                                                       skip_when_behind=not args.no_skip,
                                                       max_pending_windows=args.max_behind))
            st.push(packet)
            if args.duration is not None and time.monotonic() - started > args.duration:
                break
            if any(getattr(s, "quit", False) for s in sinks):
                break
        ok = True
    except KeyboardInterrupt:
        ok = True
    finally:
        source.close()
        if st is not None:
            try:
                st.close(flush=ok)
            finally:
                # received_events: over all connections; sent_events (the end-of-stream count) is
                # compared with last_connection_events; rejected_events: outside the sensor, dropped.
                summary = dict(st.stats(), received_events=source.received_events, sent_events=source.eos_total,
                               last_connection_events=source.session_events,
                               rejected_events=source.rejected_events, reconnects=source.reconnects)
                summary.pop("pushed_events", None)
                if source.handoff_ms:  # reader process -> this one, per packet (see benchmarks/live.py)
                    import numpy as np

                    p50, p99 = np.percentile(np.asarray(source.handoff_ms), [50, 99])
                    summary.update(handoff_p50_ms=round(float(p50), 3), handoff_p99_ms=round(float(p99), 3))
                out.write_obj({"type": "summary", **summary})
                print("evtrack live: " + json.dumps(summary), file=sys.stderr, flush=True)
        for sink in sinks:
            sink.close(ok)
    from evtrack.live.network import exit_if_writers_leaked

    exit_if_writers_leaked(0)
    return 0
