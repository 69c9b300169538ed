"""``evtrack serve RECORDING --port P``: publish a recording as a live dv event stream."""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    from evtrack.cli_options import add_sensor_size_argument

    p = subparsers.add_parser(
        "serve", help="replay a recording at real time through a dv NetworkWriter",
        description="Publish RECORDING as a dv event stream on tcp://HOST:PORT, paced at real time. "
        "The stream ends with an end-of-stream marker so clients receive every event.",
    )
    p.add_argument("recording", help="event recording (any format evtrack reads)")
    p.add_argument("--port", type=int, required=True, help="TCP port to publish on (required)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback only)")
    p.add_argument("--speed", type=float, default=1.0, help="playback speed (0 = as fast as possible)")
    p.add_argument("--loop", action="store_true", help="repeat forever (timestamps keep increasing)")
    p.add_argument("--max-loops", type=int, default=None, help="with --loop: stop after this many passes")
    p.add_argument("--packet-ms", type=float, default=1.0, help="packet length in ms (default 1)")
    p.add_argument("--no-wait", action="store_true", help="start at once instead of at the first client")
    p.add_argument("--client-timeout", type=float, default=None, help="give up waiting for a client (s)")
    p.add_argument("--linger", type=float, default=10.0, help="after the end, wait this long for clients (s)")
    add_sensor_size_argument(p, "sensor height and width when the file does not state them")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from evtrack.live.replay import ReplayConfig, serve_recording

    cfg = ReplayConfig(
        host=args.host, port=args.port, speed=args.speed, loop=args.loop, packet_us=max(1, int(args.packet_ms * 1000)),
        wait_for_client=not args.no_wait, client_timeout_s=args.client_timeout, linger_s=args.linger,
        max_loops=args.max_loops,
    )

    def status(msg: str) -> None:
        print(f"evtrack serve: {msg}", file=sys.stderr, flush=True)

    from evtrack.live.network import exit_if_writers_leaked

    try:
        stats = serve_recording(args.recording, cfg, sensor_size=tuple(args.sensor_size) if args.sensor_size else None, progress=not args.quiet,
                                on_status=status)
    except KeyboardInterrupt:
        status("interrupted")
        exit_if_writers_leaked(130)
        return 130
    status(f"done: {stats.sent_events} events in {stats.packets} packets, {stats.passes} pass(es), "
           f"{stats.wall_s:.2f} s, worst lateness {stats.max_behind_ms:.1f} ms, "
           f"clients drained: {'yes' if stats.drained else 'no (linger timeout)'}")
    exit_if_writers_leaked(0)
    return 0
