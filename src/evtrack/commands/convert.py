"""``evtrack convert IN OUT``: any readable event format to evtrack HDF5 (or AEDAT4), streaming."""

from __future__ import annotations

import argparse

from evtrack.cli_options import add_sensor_size_argument, reader_options


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "convert",
        help="convert an event recording to evtrack HDF5 (or AEDAT4 when OUT ends in .aedat4)",
        description="Stream IN into OUT chunk by chunk (bounded memory) with a progress bar. OUT is written "
        "under a temporary name and renamed when complete. APS frame timestamps are carried over. When the "
        "input does not state its sensor size and --sensor-size is not given, one extra pass measures it.",
    )
    p.add_argument("input", help="input event file (aedat4, raw/dat, h5, txt/csv, npy/npz)")
    p.add_argument("output", help="output file: .h5/.hdf5 (evtrack layout) or .aedat4")
    p.add_argument(
        "--format", dest="fmt", default=None, help="force the input format instead of detecting it"
    )
    add_sensor_size_argument(p, "sensor height and width when the input does not state them")
    p.add_argument("--time-unit", default=None, help="text/npy timestamps: auto, s, ms, us, ns")
    p.add_argument("--columns", default=None, help="text column order, e.g. txyp or xypt")
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _measure_sensor(reader, progress: bool) -> tuple[int, int]:
    from tqdm import tqdm

    max_x = max_y = -1
    with tqdm(reader.chunks(), desc="measuring sensor size", unit="chunk", disable=not progress) as bar:
        for chunk in bar:
            max_x = max(max_x, int(chunk["x"].max()))
            max_y = max(max_y, int(chunk["y"].max()))
    if max_x < 0:
        return (1, 1)
    return (max_y + 1, max_x + 1)


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from tqdm import tqdm

    from evtrack.errors import UserError
    from evtrack.io import open_events
    from evtrack.io.aedat4 import AEDAT4EventWriter
    from evtrack.io.hdf5 import HDF5EventWriter

    src, dst = Path(args.input), Path(args.output)
    if dst.suffix.lower() not in (".h5", ".hdf5", ".aedat4"):
        raise UserError(
            f"{dst}: output must end in .h5, .hdf5 or .aedat4 (got {dst.suffix or 'no suffix'!r})"
        )
    if dst.exists() and not args.force:
        raise UserError(f"{dst}: already exists (use --force to overwrite)")
    if dst.resolve() == src.resolve():
        raise UserError(f"{dst}: output is the input file")
    progress = not args.no_progress
    with open_events(src, **reader_options(args)) as reader:
        info = reader.info
        size = info.sensor_size
        if size is None:
            size = _measure_sensor(reader, progress)
            print(
                f"evtrack convert: {src} does not state its sensor size; using {size[1]}x{size[0]} "
                "(width x height) from the largest coordinates (pass --sensor-size H W to set it)",
                file=sys.stderr,
            )
        frames = info.frame_timestamps_us
        if dst.suffix.lower() == ".aedat4":
            writer = AEDAT4EventWriter(dst, sensor_size=size, frame_timestamps_us=frames)
        else:
            attrs = {"source_file": str(src.name), "source_format": info.format}
            writer = HDF5EventWriter(dst, sensor_size=size, frame_timestamps_us=frames, attrs=attrs)
        with (
            writer,
            tqdm(
                total=info.n_events,
                desc=f"{src.name} -> {dst.name}",
                unit="ev",
                unit_scale=True,
                disable=not progress,
            ) as bar,
        ):
            for chunk in reader.chunks():
                writer.write(chunk)
                bar.update(len(chunk))
    print(f"wrote {writer.n_events:,} events to {dst}")
    return 0
