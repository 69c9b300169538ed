"""Ingest throughput: read + window + voxelize, evtrack vs tonic vs numpy, in one run.

Synthetic DAVIS346-sized events (346x260, uniform random pixels and polarities, sorted times at
1 M events/s) are voxelized into 5 bins by

- ``evtrack`` `voxel_grid` (Numba, 1 thread and N threads),
- tonic's ``ToVoxelGrid`` (numpy ``np.add.at``; given int8 polarity, see the tests for the exact
  relation between the two definitions),
- two plain numpy baselines computing our definition: ``np.bincount`` with weights and ``np.add.at``,

first on the whole array in memory, then per window, then straight from files written with
``write_hdf5`` and ``write_aedat4`` (LZ4) and read back with ``open_events`` ... ``windows()``.
For AEDAT4 it also times dv-processing's own decode loop (``MonoCameraRecording`` +
``getNextEventBatch``, nothing else) against our ``open_events(...).chunks()`` on the same file.

Every time is the best of ``--repeats`` interleaved rounds after one warm-up; ratios compare rows
of the same run (and the same rounds). Prints a markdown table (paste it into BENCHMARKS.md) and
optionally writes JSON.

    python benchmarks/ingest.py                 # 1 M and 20 M events
    python benchmarks/ingest.py --quick         # 1 M events, 1 repeat, no 20 M files
    python benchmarks/ingest.py --files-only --read-only --formats aedat4 --repeats 15   # AEDAT4 read vs dv
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from evtrack.io import atomic, open_events, write_aedat4, write_hdf5
from evtrack.io.aedat4 import AEDAT4EventWriter
from evtrack.io.events import EVENT_DTYPE
from evtrack.io.representations import count_frame, sdtrack_frame, time_surface, voxel_grid

HEIGHT, WIDTH = 260, 346
RATE_EV_PER_S = 1_000_000


@dataclass
class Row:
    section: str
    method: str
    n_events: int
    seconds: float
    baseline: str = ""
    ratio: float | None = None  # baseline seconds / our seconds (> 1: faster than the baseline)

    @property
    def mev_per_s(self) -> float:
        return self.n_events / self.seconds / 1e6


def synthetic_events(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ev = np.empty(n, dtype=EVENT_DTYPE)
    duration_us = max(1, n * 1_000_000 // RATE_EV_PER_S)
    ev["t"] = np.sort(rng.integers(0, duration_us, n))
    ev["x"] = rng.integers(0, WIDTH, n)
    ev["y"] = rng.integers(0, HEIGHT, n)
    ev["p"] = rng.integers(0, 2, n)
    return ev


CLOCK: Callable[[], float] = time.perf_counter  # --clock cpu: time.process_time (this process's CPU time)


def race(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best time of each function over ``repeats`` interleaved rounds, after one warm-up each.

    Round-robin rather than one method after another so that all methods see the same background
    load: the development machine is shared, and a burst of other work should not favour anyone.
    """
    for fn in fns.values():
        fn()  # warm-up: Numba compile / cache load, page cache, allocator
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            start = CLOCK()
            fn()
            best[name] = min(best[name], CLOCK() - start)
    return best


# ----------------------------------------------------------------------------- voxelizers


def numpy_bincount_voxel(ev: np.ndarray, n_bins: int, t0: int | None = None, t1: int | None = None) -> np.ndarray:
    """Our definition (E-RAFT, (B-1) normalisation) with two weighted np.bincount calls."""
    t = ev["t"]
    t0 = int(t[0]) if t0 is None else t0
    t1 = int(t[-1]) if t1 is None else t1
    tn = (t - t0) * ((n_bins - 1) / (t1 - t0) if t1 > t0 else 0.0)
    b = np.floor(tn).astype(np.int64)
    frac = tn - b
    pol = ev["p"].astype(np.float64) * 2 - 1
    pix = ev["y"].astype(np.int64) * WIDTH + ev["x"]
    hw = HEIGHT * WIDTH
    out = np.zeros(n_bins * hw)
    for bins, w in ((b, pol * (1 - frac)), (b + 1, pol * frac)):
        ok = (bins >= 0) & (bins < n_bins)
        out += np.bincount(bins[ok] * hw + pix[ok], weights=w[ok], minlength=n_bins * hw)
    return out.reshape(n_bins, HEIGHT, WIDTH).astype(np.float32)


def numpy_add_at_voxel(ev: np.ndarray, n_bins: int, t0: int | None = None, t1: int | None = None) -> np.ndarray:
    """Same definition with np.add.at (the scatter most Python event code uses)."""
    t = ev["t"]
    t0 = int(t[0]) if t0 is None else t0
    t1 = int(t[-1]) if t1 is None else t1
    tn = (t - t0) * ((n_bins - 1) / (t1 - t0) if t1 > t0 else 0.0)
    b = np.floor(tn).astype(np.int64)
    frac = tn - b
    pol = ev["p"].astype(np.float64) * 2 - 1
    pix = ev["y"].astype(np.int64) * WIDTH + ev["x"]
    hw = HEIGHT * WIDTH
    out = np.zeros(n_bins * hw)
    for bins, w in ((b, pol * (1 - frac)), (b + 1, pol * frac)):
        ok = (bins >= 0) & (bins < n_bins)
        np.add.at(out, bins[ok] * hw + pix[ok], w[ok])
    return out.reshape(n_bins, HEIGHT, WIDTH).astype(np.float32)


def make_tonic(n_bins: int):
    from tonic.transforms import ToVoxelGrid

    transform = ToVoxelGrid(sensor_size=(WIDTH, HEIGHT, 2), n_time_bins=n_bins)  # copies events itself
    return transform


def window_bounds(t: np.ndarray, window_us: int) -> list[tuple[int, int, int, int]]:
    """(t0, t1, start, stop) per half-open window over the events' time range."""
    t_first, t_last = int(t[0]), int(t[-1])
    edges = np.arange(t_first, t_last + window_us + 1, window_us, dtype=np.int64)
    idx = np.searchsorted(t, edges, side="left")
    return [(int(edges[i]), int(edges[i + 1]), int(idx[i]), int(idx[i + 1])) for i in range(len(edges) - 1)]


# ----------------------------------------------------------------------------- sections


def bench_memory(ev: np.ndarray, n_bins: int, repeats: int, threads: int, with_add_at: bool) -> list[Row]:
    n = len(ev)
    rows: list[Row] = []
    ours = voxel_grid(ev, (HEIGHT, WIDTH), n_bins)
    check = numpy_bincount_voxel(ev, n_bins)
    if not np.allclose(ours, check, atol=1e-2, rtol=1e-4):
        raise SystemExit("evtrack voxel_grid disagrees with the numpy baseline: not benchmarking a wrong answer")
    tonic = make_tonic(n_bins)
    tonic_ev = ev.copy()  # int8 polarity, as tonic needs for signed voxels
    fns = {
        "evtrack voxel_grid, 1 thread": lambda: voxel_grid(ev, (HEIGHT, WIDTH), n_bins),
        f"evtrack voxel_grid, {threads} threads": lambda: voxel_grid(ev, (HEIGHT, WIDTH), n_bins, n_threads=threads),
        "numpy bincount (same definition)": lambda: numpy_bincount_voxel(ev, n_bins),
        "tonic ToVoxelGrid": lambda: tonic(tonic_ev),
    }
    if with_add_at:
        fns["numpy np.add.at (same definition)"] = lambda: numpy_add_at_voxel(ev, n_bins)
    times = race(fns, repeats)
    base = times["tonic ToVoxelGrid"]
    for name, sec in times.items():
        rows.append(Row("voxelize, whole array in memory", name, n, sec, "tonic", base / sec))
    return rows


def bench_windows(ev: np.ndarray, n_bins: int, window_us: int, repeats: int) -> list[Row]:
    n = len(ev)
    bounds = window_bounds(ev["t"], window_us)
    tonic = make_tonic(n_bins)
    sensor = (HEIGHT, WIDTH)

    def ours():
        for t0, t1, a, b in bounds:
            voxel_grid(ev[a:b], sensor, n_bins, t0_us=t0, t1_us=t1)

    def theirs():
        for _, _, a, b in bounds:
            if b - a >= 2:
                tonic(ev[a:b])

    def numpy_bc():
        for t0, t1, a, b in bounds:
            if b > a:
                numpy_bincount_voxel(ev[a:b], n_bins, t0, t1)

    times = race(
        {
            "evtrack voxel_grid per window": ours,
            "numpy bincount per window": numpy_bc,
            "tonic ToVoxelGrid per window": theirs,
        },
        repeats,
    )
    base = times["tonic ToVoxelGrid per window"]
    label = f"voxelize, {window_us // 1000} ms windows ({len(bounds)} windows) in memory"
    return [Row(label, name, n, sec, "tonic", base / sec) for name, sec in times.items()]


def bench_other(ev: np.ndarray, window_us: int, repeats: int) -> list[Row]:
    """The other representations per window, full frame and as a tracker's resized search crop."""
    n = len(ev)
    bounds = window_bounds(ev["t"], window_us)
    sensor = (HEIGHT, WIDTH)
    # SDTrack search region: 4x a 40x40 target centred in the frame, resized to 256x256
    search = dict(crop=(WIDTH / 2 - 80, HEIGHT / 2 - 80, 160.0, 160.0), out_size=(256, 256))
    calls = {
        "count_frame": lambda e, t0, t1: count_frame(e, sensor),
        "time_surface": lambda e, t0, t1: time_surface(e, sensor),
        "sdtrack_frame (n_sub=4), full frame": lambda e, t0, t1: sdtrack_frame(e, sensor, t0_us=t0, t1_us=t1),
        "sdtrack_frame, 160 px search crop -> 256x256": lambda e, t0, t1: sdtrack_frame(
            e, sensor, t0_us=t0, t1_us=t1, **search
        ),
        "voxel_grid 5 bins, 160 px search crop -> 256x256": lambda e, t0, t1: voxel_grid(
            e, sensor, 5, t0_us=t0, t1_us=t1, **search
        ),
    }
    def runner(fn):
        def run():
            for t0, t1, a, b in bounds:
                fn(ev[a:b], t0, t1)

        return run

    times = race({name: runner(fn) for name, fn in calls.items()}, repeats)
    section = f"other representations, {window_us // 1000} ms windows in memory"
    return [Row(section, name, n, sec) for name, sec in times.items()]


def dv_decode(path: Path, to_numpy: bool = False) -> int:
    """dv-processing's own decode loop; with ``to_numpy`` also ``EventStore.numpy()`` per packet
    (the least any numpy consumer pays)."""
    import dv_processing as dv

    rec = dv.io.MonoCameraRecording(str(path))
    n = 0
    while True:
        batch = rec.getNextEventBatch()
        if batch is None:
            break
        n += len(batch.numpy()) if to_numpy else batch.size()
    return n


def dv_decode_only(path: Path) -> int:
    return dv_decode(path)


def dv_decode_numpy(path: Path) -> int:
    return dv_decode(path, to_numpy=True)


def ours_read_only(path: Path, **options) -> int:
    n = 0
    with open_events(path, **options) as reader:
        for chunk in reader.chunks():
            n += len(chunk)
    return n


def read_window_voxelize(path: Path, n_bins: int, window_us: int, how: str) -> int:
    tonic = make_tonic(n_bins) if how == "tonic" else None
    n = 0
    with open_events(path) as reader:
        sensor = reader.info.sensor_size or (HEIGHT, WIDTH)
        for w in reader.windows(window_us):
            n += len(w.events)
            if how == "evtrack":
                voxel_grid(w.events, sensor, n_bins, t0_us=w.t0_us, t1_us=w.t1_us)
            elif how == "numpy" and len(w.events):
                numpy_bincount_voxel(w.events, n_bins, w.t0_us, w.t1_us)
            elif how == "tonic" and len(w.events) >= 2:
                tonic(w.events)
    return n  # how == "none": reading and windowing alone


FILE_FORMATS = {"hdf5": "HDF5 (gzip, write_hdf5 default)", "hdf5-raw": "HDF5 (uncompressed)", "aedat4": "AEDAT4 (LZ4)"}


def bench_files(ev: np.ndarray, n_bins: int, window_us: int, repeats: int, workdir: Path,
                formats: list[str] | None = None, read_only: bool = False,
                aedat4_packet: int | None = None) -> list[Row]:  # fmt: skip
    n = len(ev)
    rows: list[Row] = []
    suffixes = {"hdf5": ".h5", "hdf5-raw": "_raw.h5", "aedat4": ".aedat4"}
    files = {FILE_FORMATS[f]: workdir / f"ingest_{n}{suffixes[f]}" for f in (formats or list(FILE_FORMATS))}
    for label, path in files.items():
        if path.exists():
            continue
        start = time.perf_counter()
        if label.startswith("AEDAT4") and aedat4_packet:
            with AEDAT4EventWriter(path, sensor_size=(HEIGHT, WIDTH)) as writer:  # one dv packet per write
                for s in range(0, n, aedat4_packet):
                    writer.write(ev[s : s + aedat4_packet])
        elif label.startswith("AEDAT4"):
            write_aedat4(path, ev, sensor_size=(HEIGHT, WIDTH))
        else:
            compression = None if "uncompressed" in label else "gzip"
            write_hdf5(path, ev, sensor_size=(HEIGHT, WIDTH), compression=compression)
        print(f"  wrote {path.name} ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - start:.1f} s",
              file=sys.stderr)  # fmt: skip
    for label, path in files.items():
        got = ours_read_only(path)
        if got != n:
            raise SystemExit(f"{path}: read back {got} events, wrote {n}")
        section = f"read + {window_us // 1000} ms windows + voxelize: {label}"
        fns: dict[str, Callable[[], object]] = {"read": lambda p=path: ours_read_only(p)}
        if label.startswith("AEDAT4"):
            from evtrack.io.lz4check import check_aedat4_lz4, default_threads

            fns["dv"] = lambda p=path: dv_decode_only(p)
            fns["dv+numpy"] = lambda p=path: dv_decode_numpy(p)
            fns["read-noverify"] = lambda p=path: ours_read_only(p, verify=False)
            fns["lz4check"] = lambda p=path: check_aedat4_lz4(p)
            fns["lz4check-1"] = lambda p=path: check_aedat4_lz4(p, threads=1)
        hows = ("none",) if read_only else ("none", "evtrack", "numpy", "tonic")
        for how in hows:
            fns[how] = lambda p=path, h=how: read_window_voxelize(p, n_bins, window_us, h)
        times = race(fns, repeats)
        if "dv" in times:
            rows.append(Row(section, "dv-processing decode loop only", n, times["dv"], "dv decode", 1.0))
            rows.append(Row(section, "dv-processing decode loop + EventStore.numpy()", n, times["dv+numpy"],
                            "dv decode", times["dv"] / times["dv+numpy"]))  # fmt: skip
            rows.append(Row(section, "evtrack open_events().chunks() only (LZ4 check on, default)", n, times["read"],
                            "dv decode", times["dv"] / times["read"]))  # fmt: skip
            rows.append(Row(section, "evtrack open_events(verify=False).chunks() only", n, times["read-noverify"],
                            "dv decode", times["dv"] / times["read-noverify"]))  # fmt: skip
            rows.append(Row(section, f"evtrack LZ4 frame check alone ({default_threads()} threads, default)", n,
                            times["lz4check"], "dv decode", times["dv"] / times["lz4check"]))  # fmt: skip
            rows.append(Row(section, "evtrack LZ4 frame check alone (1 thread)", n, times["lz4check-1"],
                            "dv decode", times["dv"] / times["lz4check-1"]))  # fmt: skip
        else:
            rows.append(Row(section, "evtrack open_events().chunks() only", n, times["read"]))
        rows.append(Row(section, "evtrack open_events().windows() only", n, times["none"]))
        for how in hows[1:]:
            rows.append(Row(section, f"read + window + {how} voxelize", n, times[how], "tonic",
                            times["tonic"] / times[how]))  # fmt: skip
    return rows


# ----------------------------------------------------------------------------- report


def markdown(rows: list[Row]) -> str:
    lines = ["| section | method | events | time (s) | M events/s | ratio |", "|---|---|---:|---:|---:|---|"]
    for r in rows:
        ratio = f"{r.ratio:.2f}x vs {r.baseline}" if r.ratio is not None else ""
        lines.append(
            f"| {r.section} | {r.method} | {r.n_events:,} | {r.seconds:.4f} | {r.mev_per_s:.1f} | {ratio} |"
        )
    return "\n".join(lines)


def environment(threads: int) -> dict:
    import numba
    import tonic

    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "tonic": tonic.__version__,
        "threads": threads,
        "load_avg_1min": os.getloadavg()[0],
        "clock": "process_time" if CLOCK is time.process_time else "perf_counter",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 20_000_000], help="event counts")
    parser.add_argument("--bins", type=int, default=5, help="voxel time bins")
    parser.add_argument("--window-us", type=int, default=50_000, help="window length for the windowed rows")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per row (best is reported)")
    parser.add_argument("--threads", type=int, default=2, help="threads for the multi-threaded row")
    parser.add_argument("--workdir", type=Path, default=None, help="where to write the test files (default: temp)")
    parser.add_argument("--no-files", action="store_true", help="skip the file sections")
    parser.add_argument("--files-only", action="store_true", help="only the file sections (read + window + voxelize)")
    parser.add_argument("--read-only", action="store_true", help="file sections: reading rows only, no voxelizing")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="wall: perf_counter; cpu: process_time, less disturbed by other jobs")  # fmt: skip
    parser.add_argument("--aedat4-packet", type=int, default=None,
                        help="write the AEDAT4 file one dv packet per N events (default: write_aedat4; dv then stores 10,000-event packets)")  # fmt: skip
    parser.add_argument("--formats", nargs="+", choices=list(FILE_FORMATS), default=list(FILE_FORMATS),
                        help="file formats for the file sections")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="1 M events, 1 repeat: a fast smoke run")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows and environment as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.repeats = [1_000_000], 1
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    if any(s < 2 for s in args.sizes) or args.bins < 1 or args.window_us < 1 or args.repeats < 1 or args.threads < 1:
        parser.error("sizes must be >= 2; bins, window-us, repeats and threads must be >= 1")

    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="evtrack-ingest-", dir=args.workdir) as tmp:
        for n in args.sizes:
            print(f"{n:,} events: generating", file=sys.stderr)
            ev = synthetic_events(n)
            if not args.files_only:
                rows += bench_memory(ev, args.bins, args.repeats, args.threads, with_add_at=n <= 2_000_000)
                rows += bench_windows(ev, args.bins, args.window_us, args.repeats)
                if n == args.sizes[0]:
                    rows += bench_other(ev, args.window_us, args.repeats)
            if not args.no_files:
                rows += bench_files(ev, args.bins, args.window_us, args.repeats, Path(tmp), args.formats, args.read_only,
                                    args.aedat4_packet)  # fmt: skip
            print(markdown([r for r in rows if r.n_events == n]), file=sys.stderr)
    env = environment(args.threads)
    print(f"\nenvironment: {env}\n")
    print(markdown(rows))
    if args.json:
        payload = {"environment": env, "rows": [asdict(r) | {"mev_per_s": r.mev_per_s} for r in rows]}
        atomic.write_text(args.json, json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
