"""HDF5 events: evtrack's own layout (read + write) and the DSEC layout (read).

evtrack layout, ``format_version`` 1::

    /                      attrs: evtrack_format="evtrack-events", format_version=1,
                                  sensor_height, sensor_width, n_events, plus user attrs
    /events/t  int64       microseconds, non-decreasing      (chunked, shuffle + gzip)
    /events/x  int16       column
    /events/y  int16       row
    /events/p  int8        polarity, 1 = ON, 0 = OFF
    /ms_to_idx uint64      ms_to_idx[k] = first event index with t >= origin_us + 1000 k
                           (dataset attr origin_us); the last entry is n_events
    /frame_timestamps_us   int64, optional: the "APS frame" times ground truth is aligned to

DSEC layout (read only): ``/events/{x,y,t,p}`` with ``t`` relative to the root scalar
``/t_offset`` and ``/ms_to_idx`` over the relative times (origin 0). DSEC files compressed with
Blosc need the ``hdf5plugin`` package; without it we say so instead of failing obscurely.

``ms_to_idx`` lets windows/slices seek straight to a time; files without it are searched by
bisection on ``/events/t`` (about log2(n) single-element reads).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from evtrack.errors import FormatError, UserError
from evtrack.io.events import EVENT_DTYPE, check_frame_times, concat_events, copy_events
from evtrack.io.packing import pack_columns
from evtrack.io.reader import DEFAULT_CHUNK_EVENTS, EventReader, RecordingInfo
from evtrack.io.writer import EventWriter

FORMAT_NAME = "evtrack-events"
FORMAT_VERSION = 1
_FIELDS = ("t", "x", "y", "p")
_STORE_DTYPES = {"t": np.int64, "x": np.int16, "y": np.int16, "p": np.int8}
_H5_CHUNK = 1 << 17  # elements per HDF5 chunk of each column
_WRITE_BUFFER = 1 << 18  # events gathered before one append: small writes (a simulator's) cost ~1 ms each


def _h5py():
    import h5py

    try:  # registers Blosc & co. for DSEC files when available; optional
        import hdf5plugin  # noqa: F401
    except ImportError:
        pass
    return h5py


class HDF5Reader(EventReader):
    """Reads the evtrack and DSEC HDF5 layouts in chunks, seeking through ``ms_to_idx``."""

    def __init__(self, path: str | Path, *, sensor_size: tuple[int, int] | None = None, **options) -> None:
        super().__init__(path, **options)
        h5py = _h5py()
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as exc:
            raise FormatError(f"{self.path}: not a readable HDF5 file ({exc})") from exc
        try:
            self._open_layout(sensor_size)
        except Exception:
            self._file.close()
            raise

    def _open_layout(self, sensor_size: tuple[int, int] | None) -> None:
        f = self._file
        if "events" not in f or not hasattr(f["events"], "keys"):
            raise FormatError(
                f"{self.path}: no 'events' group (found top-level entries {sorted(f.keys())}; "
                "expected /events/{t,x,y,p})"
            )
        group = f["events"]
        missing = [name for name in _FIELDS if name not in group]
        if missing:
            raise FormatError(
                f"{self.path}: /events is missing field(s) {missing} (found {sorted(group.keys())}; "
                "expected t, x, y, p)"
            )
        self._cols = {name: group[name] for name in _FIELDS}
        lengths = {name: ds.shape for name, ds in self._cols.items()}
        n = lengths["t"][0] if len(lengths["t"]) == 1 else -1
        for name, shape in lengths.items():
            if shape != (n,):
                raise FormatError(
                    f"{self.path}: /events/{name} has shape {shape}, expected ({n},) like /events/t"
                )
        self._n = int(n)
        attrs = f.attrs
        is_ours = attrs.get("evtrack_format") == FORMAT_NAME
        if is_ours:
            version = int(attrs.get("format_version", -1))
            if version > FORMAT_VERSION:
                raise FormatError(
                    f"{self.path}: format_version {version} is newer than this evtrack supports "
                    f"({FORMAT_VERSION}); upgrade evtrack"
                )
            self._t_add = 0
            fmt = "hdf5"
            if sensor_size is None and "sensor_height" in attrs and "sensor_width" in attrs:
                sensor_size = (int(attrs["sensor_height"]), int(attrs["sensor_width"]))
        else:
            fmt = "dsec-hdf5" if "t_offset" in f or "ms_to_idx" in f else "hdf5-generic"
            self._t_add = int(f["t_offset"][()]) if "t_offset" in f else 0
            if sensor_size is None and "sensor_height" in attrs and "sensor_width" in attrs:
                sensor_size = (int(attrs["sensor_height"]), int(attrs["sensor_width"]))
        self._ms_to_idx = None
        self._ms_origin_us = 0
        if "ms_to_idx" in f:
            ms = f["ms_to_idx"]
            self._ms_to_idx = ms[()] if ms.shape else None  # small: 8 bytes per ms of recording
            self._ms_origin_us = int(ms.attrs.get("origin_us", self._t_add if not is_ours else 0))
        frames = None
        if "frame_timestamps_us" in f:
            frames = np.asarray(f["frame_timestamps_us"][()], dtype=np.int64)
        t_start = t_end = None
        if self._n:
            t_start = int(self._cols["t"][0]) + self._t_add
            t_end = int(self._cols["t"][self._n - 1]) + self._t_add
        streams = ("events", "frames") if frames is not None else ("events",)
        self._info = RecordingInfo(
            path=self.path,
            format=fmt,
            sensor_size=tuple(sensor_size) if sensor_size is not None else None,
            n_events=self._n,
            t_start_us=t_start,
            t_end_us=t_end,
            streams=streams,
            frame_timestamps_us=frames,
            metadata={k: _plain(v) for k, v in attrs.items()},
        )

    def close(self) -> None:
        if self._file.id.valid:
            self._file.close()

    def index_at(self, t_us: int) -> int:
        """An event index ``i`` such that no event before ``i`` has ``t >= t_us`` (a safe seek point)."""
        if self._ms_to_idx is not None and len(self._ms_to_idx):
            k = (int(t_us) - self._ms_origin_us) // 1000
            if k <= 0:
                return 0
            return int(self._ms_to_idx[min(k, len(self._ms_to_idx) - 1)])
        lo, hi = 0, self._n  # bisection: first index with t >= t_us
        ds, target = self._cols["t"], int(t_us) - self._t_add
        while lo < hi:
            mid = (lo + hi) // 2
            if int(ds[mid]) < target:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def _read_chunks(self, start_us: int | None) -> Iterator[np.ndarray]:
        start = 0 if start_us is None else self.index_at(start_us)
        step = self.chunk_events
        for s in range(start, self._n, step):
            e = min(s + step, self._n)
            cols = {}
            try:
                for name in _FIELDS:
                    cols[name] = self._cols[name][s:e]
            except OSError as exc:  # truncated or corrupt chunk, missing filter plugin
                raise FormatError(
                    f"{self.path}: cannot read /events/{name}[{s}:{e}] ({exc}); the file is truncated, "
                    "corrupt, or compressed with a filter that is not installed (DSEC: pip install hdf5plugin)"
                ) from exc
            out = _pack(cols)
            if self._t_add:
                out["t"] += self._t_add
            yield out


def _pack(cols: dict[str, np.ndarray]) -> np.ndarray:
    """Interleave the four columns (fast path when they already have the canonical dtypes)."""
    if all(cols[n].dtype == np.dtype(_STORE_DTYPES[n]) for n in _FIELDS):
        return pack_columns(cols["t"], cols["x"], cols["y"], cols["p"])
    out = np.empty(len(cols["t"]), dtype=EVENT_DTYPE)  # e.g. DSEC's uint32 t / uint16 x, y: cast per field
    for name in _FIELDS:
        out[name] = cols[name]
    return out


def _plain(value):
    """HDF5 attribute values as plain Python for printing / JSON."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


class HDF5EventWriter(EventWriter):
    """Streaming writer of the evtrack HDF5 layout; the file appears only when closed cleanly.

    >>> with HDF5EventWriter("out.h5", sensor_size=(260, 346)) as w:
    ...     for chunk in reader.chunks():
    ...         w.write(chunk)
    """

    def __init__(
        self,
        path: str | Path,
        *,
        sensor_size: tuple[int, int],
        frame_timestamps_us: np.ndarray | None = None,
        attrs: dict | None = None,
        compression: str | None = "gzip",
    ) -> None:
        if compression not in ("gzip", "lzf", None):
            raise UserError(f"compression must be 'gzip', 'lzf' or None, got {compression!r}")
        super().__init__(path, sensor_size, frame_timestamps_us)
        self._attrs = dict(attrs or {})
        h5py = _h5py()
        self._file = h5py.File(self._tmp, "w")
        # no creation/modification times in the datasets' headers (h5py 3's default, stated here because
        # the generator and convert-dataset promise byte-identical output for a seed)
        opts = {"compression": compression, "shuffle": compression is not None, "track_times": False}
        if compression == "gzip":
            opts["compression_opts"] = 1  # level 1: most of the size gain at a fraction of the cost
        group = self._file.create_group("events")
        self._ds = {
            name: group.create_dataset(
                name, shape=(0,), maxshape=(None,), dtype=_STORE_DTYPES[name], chunks=(_H5_CHUNK,), **opts
            )
            for name in _FIELDS
        }
        self._ms = self._file.create_dataset(
            "ms_to_idx", shape=(0,), maxshape=(None,), dtype=np.uint64, chunks=(1 << 14,), track_times=False
        )
        self._n_written = 0
        self._buffer: list[np.ndarray] = []
        self._n_buffered = 0
        self._origin: int | None = None
        self._next_k = 0

    def _append(self, ev: np.ndarray, original: np.ndarray) -> None:
        self._index(ev["t"], self._n)
        # The caller may reuse its array after write() returns, so the buffer keeps a copy.
        self._buffer.append(copy_events(ev) if ev is original else ev)
        self._n_buffered += len(ev)
        if self._n_buffered >= _WRITE_BUFFER:
            self._flush()

    def _flush(self) -> None:
        """Append the buffered events to the datasets (few large writes instead of many small ones)."""
        if not self._buffer:
            return
        ev = concat_events(self._buffer) if len(self._buffer) > 1 else self._buffer[0]
        n1 = self._n_written + len(ev)
        for name in _FIELDS:
            ds = self._ds[name]
            ds.resize((n1,))
            ds[self._n_written : n1] = ev[name]
        self._n_written = n1
        self._buffer, self._n_buffered = [], 0

    def set_frame_timestamps(self, frame_timestamps_us: np.ndarray) -> None:
        """Set (or replace) the APS frame times before closing, for producers that learn them late."""
        self._frames = check_frame_times(frame_timestamps_us, self.path)

    def _index(self, t: np.ndarray, offset: int) -> None:
        """Extend ms_to_idx with every millisecond boundary up to this chunk's last event."""
        if self._origin is None:
            self._origin = int(t[0])
        k_last = (int(t[-1]) - self._origin) // 1000
        if k_last < self._next_k:
            return
        ks = np.arange(self._next_k, k_last + 1, dtype=np.int64)
        idx = offset + np.searchsorted(t, self._origin + 1000 * ks, side="left")
        self._append_ms(idx)
        self._next_k = k_last + 1

    def _append_ms(self, idx: np.ndarray) -> None:
        m0 = self._ms.shape[0]
        self._ms.resize((m0 + len(idx),))
        self._ms[m0:] = idx.astype(np.uint64)

    def _finish(self) -> None:
        """Finish the index and attributes (the base class then renames the file)."""
        self._flush()
        self._append_ms(np.array([self._n]))  # sentinel: boundary after the last event
        self._ms.attrs["origin_us"] = self._origin if self._origin is not None else 0
        if self._frames is not None:
            self._file.create_dataset("frame_timestamps_us", data=self._frames, track_times=False)
        a = self._file.attrs
        for key, value in self._attrs.items():
            a[key] = value
        a["evtrack_format"] = FORMAT_NAME
        a["format_version"] = FORMAT_VERSION
        a["sensor_height"], a["sensor_width"] = self.sensor_size
        a["n_events"] = self._n
        self._file.close()

    def _drop(self) -> None:
        if self._file.id.valid:
            self._file.close()


def write_hdf5(
    path: str | Path,
    events: np.ndarray,
    *,
    sensor_size: tuple[int, int],
    frame_timestamps_us: np.ndarray | None = None,
    attrs: dict | None = None,
    compression: str | None = "gzip",
) -> Path:
    """Write a whole event array in the evtrack HDF5 layout (atomically); returns the path."""
    with HDF5EventWriter(
        path,
        sensor_size=sensor_size,
        frame_timestamps_us=frame_timestamps_us,
        attrs=attrs,
        compression=compression,
    ) as writer:
        for s in range(0, len(events), DEFAULT_CHUNK_EVENTS):
            writer.write(events[s : s + DEFAULT_CHUNK_EVENTS])
    return Path(path)
