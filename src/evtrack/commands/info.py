"""``evtrack info PATH``: what a recording holds (format, sensor, events, time range, streams)."""

from __future__ import annotations

import argparse

from evtrack.cli_options import add_sensor_size_argument, reader_options


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "info",
        help="print format, sensor size, event count, time range, event rate and streams of a recording",
        description="Describe an event recording. Counts and time ranges that the format does not store "
        "(EVT2/EVT3/DAT, text, AEDAT4 counts) are measured by one streaming pass unless --no-scan is given.",
    )
    p.add_argument("path", help="event file (aedat4, raw/dat, h5, txt/csv, npy/npz)")
    p.add_argument(
        "--format", dest="fmt", default=None, help="force the input format instead of detecting it"
    )
    add_sensor_size_argument(p, "sensor height and width when the file does not state them")
    p.add_argument("--time-unit", default=None, help="text/npy timestamps: auto, s, ms, us, ns")
    p.add_argument("--columns", default=None, help="text column order, e.g. txyp or xypt")
    p.add_argument("--no-scan", action="store_true", help="do not read the events to count them")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object (sensor_size_hw is [height, width], the order --sensor-size takes)")
    p.set_defaults(func=run)


def describe(reader, *, scan: bool = True, progress: bool = True) -> dict:
    """A JSON-ready summary of ``reader``; scans the events when count or range is unknown."""
    info = reader.info
    n, t0, t1 = info.n_events, info.t_start_us, info.t_end_us
    scanned = False
    if scan and (n is None or t0 is None or t1 is None):
        from tqdm import tqdm

        n, t0, t1 = 0, None, None
        with tqdm(desc=f"scanning {info.path.name}", unit="ev", unit_scale=True, disable=not progress) as bar:
            for chunk in reader.chunks():
                if t0 is None:
                    t0 = int(chunk["t"][0])
                t1 = int(chunk["t"][-1])
                n += len(chunk)
                bar.update(len(chunk))
        scanned = True
    duration_us = None if t0 is None or t1 is None else t1 - t0
    rate = None
    if n and duration_us:
        rate = n / (duration_us / 1e6)
    frames = info.frame_timestamps_us
    return {
        "path": str(info.path),
        "format": info.format,
        "sensor_size_hw": list(info.sensor_size) if info.sensor_size else None,
        "n_events": n,
        "t_start_us": t0,
        "t_end_us": t1,
        "duration_s": None if duration_us is None else duration_us / 1e6,
        "event_rate_per_s": rate,
        "streams": list(info.streams),
        "n_frames": None if frames is None else int(len(frames)),
        "frame_range_us": None if frames is None or not len(frames) else [int(frames[0]), int(frames[-1])],
        "dropped_out_of_sensor": reader.n_dropped if scanned else None,
        "scanned": scanned,
    }


def _fmt(value, unit: str = "") -> str:
    if value is None:
        return "unknown"
    if isinstance(value, float):
        return f"{value:,.3f}{unit}"
    if isinstance(value, int):
        return f"{value:,}{unit}"
    return f"{value}{unit}"


def run(args: argparse.Namespace) -> int:
    import json

    from evtrack.io import open_events

    with open_events(args.path, **reader_options(args)) as reader:
        summary = describe(reader, scan=not args.no_scan, progress=not args.json)
    if args.json:
        print(json.dumps(summary))
        return 0
    size = summary["sensor_size_hw"]
    rows = [
        ("file", summary["path"]),
        ("format", summary["format"]),
        ("sensor", "unknown" if not size else f"{size[1]} x {size[0]} (width x height)"),
        ("events", _fmt(summary["n_events"])),
        ("time range", f"{_fmt(summary['t_start_us'])} .. {_fmt(summary['t_end_us'])} us"),
        ("duration", _fmt(summary["duration_s"], " s")),
        (
            "event rate",
            "unknown"
            if summary["event_rate_per_s"] is None
            else f"{summary['event_rate_per_s'] / 1e6:,.3f} Mev/s",
        ),
        ("streams", ", ".join(summary["streams"])),
    ]
    if summary["n_frames"] is not None:
        rows.append(("frames", f"{summary['n_frames']} (APS frame timestamps)"))
    if summary["dropped_out_of_sensor"]:
        rows.append(("out of sensor", f"{summary['dropped_out_of_sensor']:,} events (dropped)"))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0
