"""The format-independent half of every event reader.

Each format only implements ``_read_chunks(start_us)``: bounded-size packets of canonical events
in file order. Everything else (validation, time windows, ground-truth slices, fixed-count packets,
``read_all``) is written once here on top of it, so a 1 GB recording never has to be in memory at
once: at most one window plus one chunk is held.

Validation policy (applied to every chunk, for every format):

- timestamps that go backwards raise :class:`~evtrack.errors.FormatError` naming the file, the
  event index and both timestamps: windows over an unsorted stream would be silently wrong;
- events whose ``x``/``y`` fall outside the declared sensor are *dropped* and counted
  (``reader.n_dropped``); one :class:`EventRepairWarning` with the total is issued when the
  iteration ends. Pass ``on_out_of_bounds="error"`` to get a FormatError instead.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from evtrack.errors import EvtrackWarning, FormatError, UserError
from evtrack.io.events import EVENT_DTYPE, concat_events, empty_events, first_decrease
from evtrack.io.packing import scan_events

#: Default upper bound on events per chunk: 16 MiB of canonical events, small enough to stay bounded,
#: large enough that per-chunk Python overhead is negligible.
DEFAULT_CHUNK_EVENTS = 1 << 20
_NO_TIME = np.iinfo(np.int64).min


class EventRepairWarning(EvtrackWarning):
    """Events were dropped or a file was read only up to its valid prefix."""


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields explicitly
class RecordingInfo:
    """What is known about a recording without decoding all of it.

    ``t_start_us``/``t_end_us`` are the first and last event timestamps (both inclusive) or None
    when the format does not store them; ``n_events`` is None when unknown without a full scan.
    """

    path: Path
    format: str  # e.g. "hdf5", "dsec-hdf5", "aedat4", "evt2", "evt3", "dat", "text", "npy", "npz"
    sensor_size: tuple[int, int] | None  # (height, width)
    n_events: int | None = None
    t_start_us: int | None = None
    t_end_us: int | None = None
    streams: tuple[str, ...] = ("events",)
    frame_timestamps_us: np.ndarray | None = field(default=None, repr=False)
    metadata: dict = field(default_factory=dict, repr=False)  # format-specific extras (header lines ...)


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields explicitly
class Window:
    """Events in the half-open time interval ``[t0_us, t1_us)``."""

    t0_us: int
    t1_us: int
    events: np.ndarray

    def __len__(self) -> int:
        return len(self.events)


class EventReader:
    """Base class: a context-managed, re-iterable source of canonical event chunks.

    Subclasses set ``self._info`` in ``__init__`` and implement :meth:`_read_chunks`.
    Every public iterator starts again from the beginning of the file (or from a seek point).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        chunk_events: int = DEFAULT_CHUNK_EVENTS,
        on_out_of_bounds: str = "drop",
    ) -> None:
        if on_out_of_bounds not in ("drop", "error"):
            raise UserError(f"on_out_of_bounds must be 'drop' or 'error', got {on_out_of_bounds!r}")
        if int(chunk_events) <= 0:
            raise UserError(f"chunk_events must be positive, got {chunk_events}")
        self.path = Path(path)
        self.chunk_events = int(chunk_events)
        self.on_out_of_bounds = on_out_of_bounds
        self.n_dropped = 0  # events dropped by the last completed iteration (out of sensor)
        self._info: RecordingInfo | None = None

    # ---------------------------------------------------------------- subclass interface
    def _read_chunks(self, start_us: int | None) -> Iterator[np.ndarray]:
        """Yield canonical event arrays in file order.

        ``start_us`` is a hint: a reader that can seek may skip events with ``t < start_us``
        (it must not skip any event at or after it); others simply start at the beginning.
        """
        raise NotImplementedError

    def close(self) -> None:
        """Release file handles (subclasses override when they keep any open)."""

    # ---------------------------------------------------------------- public API
    @property
    def info(self) -> RecordingInfo:
        assert self._info is not None, "reader subclass did not set _info"
        return self._info

    def __enter__(self) -> EventReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

    def chunks(self, start_us: int | None = None) -> Iterator[np.ndarray]:
        """Validated packets of at most about ``chunk_events`` events, in file order."""
        return self._validated(self._read_chunks(start_us))

    def read_all(self) -> np.ndarray:
        """Every event of the recording in one array (only for recordings that fit in memory)."""
        return concat_events(list(self.chunks()))

    def time_range(self) -> tuple[int, int] | None:
        """``(first, last)`` event timestamp, None without events: the span :meth:`windows` covers.

        From the header when the format stores both (HDF5, npy), else one streaming pass over the
        validated events (EVT2/EVT3/DAT, text, AEDAT4), in bounded memory.
        """
        info = self.info
        if info.t_start_us is not None and info.t_end_us is not None:
            return int(info.t_start_us), int(info.t_end_us)
        first = last = None
        for chunk in self.chunks():
            if first is None:
                first = int(chunk["t"][0])
            last = int(chunk["t"][-1])
        return None if first is None else (first, last)

    def windows(
        self, window_us: int, t_start_us: int | None = None, t_end_us: int | None = None
    ) -> Iterator[Window]:
        """Consecutive half-open windows ``[t0, t0 + window_us)``, empty ones included.

        The grid starts at ``t_start_us`` (default: the first event). Without ``t_end_us`` it runs
        until the window holding the last event; with it, windows stop at ``t_end_us`` and the
        last one is cut short there.
        """
        window_us = int(window_us)
        if window_us <= 0:
            raise UserError(f"window_us must be positive, got {window_us}")
        if t_start_us is not None and t_end_us is not None and t_end_us < t_start_us:
            raise UserError(f"t_end_us ({t_end_us}) is before t_start_us ({t_start_us})")
        cursor = _Cursor(self.chunks(t_start_us))
        try:
            if t_start_us is None:
                first = cursor.peek_time()
                if first is None:
                    return
                t_start_us = first
            t0 = int(t_start_us)
            cursor.skip_before(t0)
            while True:
                if t_end_us is not None:
                    if t0 >= t_end_us:
                        return
                    t1 = min(t0 + window_us, int(t_end_us))
                else:
                    if cursor.exhausted():
                        return
                    t1 = t0 + window_us
                yield Window(t0, t1, cursor.take_before(t1))
                t0 = t1
        finally:
            cursor.close()

    def slices(self, edges_us: Iterable[int]) -> Iterator[np.ndarray]:
        """Events in ``[edges[i], edges[i + 1])``: one array per interval, empty ones included."""
        edges = np.asarray(list(edges_us) if not isinstance(edges_us, np.ndarray) else edges_us)
        if edges.ndim != 1:
            raise UserError(f"edges_us must be one-dimensional, got shape {edges.shape}")
        if len(edges) < 2:
            return
        edges = edges.astype(np.int64)
        i = first_decrease(edges)
        if i is not None:
            raise UserError(
                f"edges_us must be non-decreasing: edges[{i + 1}] = {edges[i + 1]} < edges[{i}] = {edges[i]}"
            )
        cursor = _Cursor(self.chunks(int(edges[0])))
        try:
            cursor.skip_before(int(edges[0]))
            for t1 in edges[1:]:
                yield cursor.take_before(int(t1))
        finally:
            cursor.close()

    def counts(self, n_events: int) -> Iterator[np.ndarray]:
        """Packets of exactly ``n_events`` events in file order (the last one may be shorter)."""
        n_events = int(n_events)
        if n_events <= 0:
            raise UserError(f"n_events must be positive, got {n_events}")
        pending: list[np.ndarray] = []
        n_pending = 0
        for chunk in self.chunks():
            pos = 0
            while pos < len(chunk):
                take = min(n_events - n_pending, len(chunk) - pos)
                pending.append(chunk[pos : pos + take])
                n_pending += take
                pos += take
                if n_pending == n_events:
                    yield concat_events(pending)
                    pending, n_pending = [], 0
        if n_pending:
            yield concat_events(pending)

    # ---------------------------------------------------------------- validation
    def _validated(self, raw: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        size = self.info.sensor_size
        h, w = size if size is not None else ("?", "?")
        # No declared sensor: only negative coordinates are impossible (32768 = beyond int16).
        h_lim, w_lim = (32768, 32768) if size is None else (min(int(h), 32768), min(int(w), 32768))
        prev_t: int | None = None
        offset = 0  # index (in file order, before dropping) of the chunk's first event
        dropped = 0
        try:
            for chunk in raw:
                if len(chunk) == 0:
                    continue
                if chunk.dtype != EVENT_DTYPE:
                    raise TypeError(f"{type(self).__name__} yielded dtype {chunk.dtype}, not EVENT_DTYPE")
                # One compiled pass: order and bounds together (numpy needed ~6 passes and copies).
                i_back, first, n_bad = scan_events(chunk, _NO_TIME if prev_t is None else prev_t, w_lim, h_lim)
                if i_back >= 0:
                    before = prev_t if i_back == 0 else int(chunk["t"][i_back - 1])
                    raise FormatError(
                        f"{self.path}: timestamps go backwards at event {offset + i_back}: "
                        f"t = {int(chunk['t'][i_back])} us after t = {before} us (expected non-decreasing)"
                    )
                n = len(chunk)
                prev_t = int(chunk["t"][n - 1])
                if n_bad:
                    if self.on_out_of_bounds == "error":
                        x, y = int(chunk["x"][first]), int(chunk["y"][first])
                        raise FormatError(
                            f"{self.path}: event {offset + first} at (x={x}, y={y}) "
                            f"is outside the declared {w}x{h} sensor (expected 0 <= x < {w}, 0 <= y < {h})"
                        )
                    dropped += n_bad
                    x, y = chunk["x"], chunk["y"]
                    ok = (x >= 0) & (x < w_lim) & (y >= 0) & (y < h_lim)
                    chunk = chunk[np.flatnonzero(ok)]  # take: ~10x faster than a boolean mask on records
                offset += n
                if len(chunk):
                    yield chunk
        finally:
            self.n_dropped = dropped
            if dropped:
                warnings.warn(
                    f"{self.path}: dropped {dropped} events with coordinates outside the declared "
                    f"{w}x{h} sensor (of {offset} read)",
                    EventRepairWarning,
                    stacklevel=2,
                )


class _Cursor:
    """Walks a chunk stream and hands out the events before a given time, holding one chunk."""

    def __init__(self, chunks: Iterator[np.ndarray]) -> None:
        self._chunks = chunks
        self._chunk = empty_events(0)
        self._t = np.empty(0, dtype=np.int64)
        self._pos = 0
        self._done = False

    def _fill(self) -> bool:
        """Make sure the current chunk has unread events; False at the end of the stream."""
        while self._pos >= len(self._chunk):
            if self._done:
                return False
            nxt = next(self._chunks, None)
            if nxt is None:
                self._done = True
                return False
            # searchsorted needs a contiguous key array; the record's t column is strided and
            # would be copied on every call, so extract it once per chunk.
            self._chunk, self._t, self._pos = nxt, np.ascontiguousarray(nxt["t"]), 0
        return True

    def exhausted(self) -> bool:
        return not self._fill()

    def peek_time(self) -> int | None:
        return int(self._t[self._pos]) if self._fill() else None

    def _advance(self, t_us: int, keep: bool) -> np.ndarray:
        parts = []
        while self._fill():
            t = self._t
            end = self._pos + int(np.searchsorted(t[self._pos :], t_us, side="left"))
            if keep and end > self._pos:
                parts.append(self._chunk[self._pos : end])
            self._pos = end
            if end < len(t):
                break
        # Copy so a yielded window never pins the whole underlying chunk in memory.
        return concat_events(parts)

    def take_before(self, t_us: int) -> np.ndarray:
        return self._advance(t_us, keep=True)

    def skip_before(self, t_us: int) -> None:
        self._advance(t_us, keep=False)

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()
