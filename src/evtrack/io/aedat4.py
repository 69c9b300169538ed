"""AEDAT4 (iniVation DV) through dv-processing: events, stream list and APS frame timestamps.

Reading views each packet through ``EventStore.numpy()`` (no copy: dv's records have the canonical
16-byte layout; no per-event Python). dv-processing
refuses truncated or corrupt files ("FileDataTable set but not present"); we report that as a
FormatError rather than guess a valid prefix.

dv-processing 2.0.4 loops forever (holding the GIL, so no watchdog thread can stop it) when random
bytes sit *inside* a packet's LZ4 data. The reader therefore checks every LZ4 frame of the file
first (:mod:`evtrack.io.lz4check`, over the memory-mapped file, ``verify=True``), so such a
file is a FormatError naming the packet and byte offset. The check costs about as much CPU as dv's
own decode, split over the cores this process may use (BENCHMARKS.md); ``verify=False`` skips it
for trusted files. Corrupted headers, data
tables and truncations are reported as FormatError.

Writing: dv-processing 2.0.4 has no numpy-to-EventStore path, so events go through
``EventStore.push_back``. Passing one tuple per event is about 2.5x faster than the four-argument
overload (measured ~1.8 M vs ~0.7 M events/s in isolation), so that is what we use.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from evtrack.errors import FormatError, UserError
from evtrack.io.events import EVENT_DTYPE, is_padded_event_layout
from evtrack.io.reader import EventReader, RecordingInfo
from evtrack.io.writer import EventWriter

_DV_NAMES = ("timestamp", "x", "y", "polarity")
_WRITE_PACKET = 1 << 16  # events per EventStore handed to the dv writer


def _dv():
    import dv_processing

    return dv_processing


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


class AEDAT4Reader(EventReader):
    """Reads the ``events`` stream of an AEDAT4 file packet by packet."""

    def __init__(
        self,
        path: str | Path,
        *,
        sensor_size: tuple[int, int] | None = None,
        stream: str = "events",
        frame_stream: str = "frames",
        verify: bool = True,
        **options,
    ) -> None:
        super().__init__(path, **options)
        self._stream = stream
        if verify:  # before dv touches the file: a corrupt LZ4 frame would hang dv's decoder
            from evtrack.io.lz4check import check_aedat4_lz4

            check_aedat4_lz4(self.path)
        # The recording opened here, positioned after its first event packet (kept as well), so
        # that the first iteration does not open and decode the start again (~1 ms of a 10 ms read).
        self._spare: tuple | None = None
        rec = self._open()
        names = tuple(rec.getStreamNames())
        if not rec.isEventStreamAvailable(stream):
            event_streams = [n for n in names if rec.isStreamOfEventType(n)]
            if len(event_streams) != 1:
                raise FormatError(
                    f"{self.path}: no event stream named {stream!r} (streams: {list(names)}); "
                    "pass stream=<name> to choose one"
                )
            stream = self._stream = event_streams[0]  # e.g. recordings renamed in DV
        if frame_stream not in names:
            frame_streams = [n for n in names if rec.isStreamOfFrameType(n)]
            if len(frame_streams) == 1:
                frame_stream = frame_streams[0]
        if sensor_size is None:
            res = rec.getEventResolution(stream)
            if res is not None:
                sensor_size = (int(res[1]), int(res[0]))  # dv gives (width, height)
        t_start, t_end = self._event_time_range(rec)
        frames = None
        if rec.isFrameStreamAvailable(frame_stream):
            frames = self._frame_times(rec, frame_stream)
        streams = []
        for name in names:
            if rec.isStreamOfEventType(name):
                streams.append("events" if name == stream else name)
            elif rec.isStreamOfFrameType(name):
                streams.append("frames" if name == frame_stream else name)
            elif rec.isStreamOfImuType(name):
                streams.append("imu")
            elif rec.isStreamOfTriggerType(name):
                streams.append("triggers")
            else:
                streams.append(name)
        self._info = RecordingInfo(
            path=self.path,
            format="aedat4",
            sensor_size=sensor_size,
            n_events=None,
            t_start_us=None if t_start is None else int(t_start),
            t_end_us=None if t_end is None else int(t_end),
            streams=tuple(streams),
            frame_timestamps_us=frames,
            metadata={"camera": rec.getCameraName(), "stream_names": list(names)},
        )

    def _event_time_range(self, rec) -> tuple[int | None, int | None]:
        """First and last event timestamps without decoding the whole file.

        ``getTimeRange()`` spans every stream (frames, IMU ...), so we only use it as a bound:
        the first event comes from the first packet, the last from a backwards search of
        doubling width ending at the overall end time.
        """
        try:
            lo, hi = (int(v) for v in rec.getTimeRange())
            first = None
            while first is None:
                batch = rec.getNextEventBatch(self._stream)
                if batch is None:
                    return None, None  # no events at all
                if batch.size():
                    first = int(batch.getLowestTime())
                    self._spare = (rec, batch)  # getEventsTimeRange below leaves the sequence as it is
            # Start at 1 ms: the range decodes every packet it overlaps, and a wide first guess
            # (100 ms) cost 2.4 ms per open on a 1 M events/s file, more than a third of a full read.
            width = 1_000
            while True:
                start = max(first, hi - width)
                store = rec.getEventsTimeRange(start, hi + 1, self._stream)
                if store is not None and store.size():
                    return first, int(store.getHighestTime())
                if start == first:
                    return first, first
                width *= 4
        except RuntimeError as exc:
            raise FormatError(f"{self.path}: cannot read the event stream ({_first_line(exc)})") from exc

    def _open(self):
        dv = _dv()
        try:
            return dv.io.MonoCameraRecording(str(self.path))
        except RuntimeError as exc:
            raise FormatError(
                f"{self.path}: cannot open as AEDAT4 ({_first_line(exc)}); the file is truncated or corrupt"
            ) from exc

    def _frame_times(self, rec, frame_stream: str) -> np.ndarray:
        times = []
        try:
            while True:
                frame = rec.getNextFrame(frame_stream)
                if frame is None:
                    break
                times.append(int(frame.timestamp))
        except RuntimeError as exc:
            raise FormatError(
                f"{self.path}: frame stream {frame_stream!r} unreadable after {len(times)} frames "
                f"({_first_line(exc)})"
            ) from exc
        return np.asarray(times, dtype=np.int64)

    def _read_chunks(self, start_us: int | None) -> Iterator[np.ndarray]:
        """dv's packets as canonical events, zero-copy, one chunk per packet.

        ``EventStore.numpy()`` is a view of dv's packet in EVENT_DTYPE's exact byte layout, so each
        packet is handed out as it is (a view that keeps the packet alive), cut into pieces of at
        most ``chunk_events``. Measured on 1 M events (benchmarks/ingest.py, CPU time): joining
        packets into larger chunks costs more than it saves, even for 2,000-event packets
        (64 k-event chunks: 21 ms, no joining: 17 ms, dv's own loop + numpy(): 11.5 ms), and an
        earlier version that gathered ``chunk_events`` events before converting took twice as long
        as dv: fresh memory for every packet instead of reuse.
        """
        limit = self.chunk_events
        for batch in self._batches():
            if start_us is not None and batch.size() and batch.getHighestTime() < start_us:
                continue  # sequential skip: AEDAT4 packets must be decompressed to be passed over
            ev = from_dv_events(batch.numpy())
            n = len(ev)
            if n <= limit:
                if n:
                    yield ev
            else:
                for s in range(0, n, limit):
                    yield ev[s : s + limit]

    def _batches(self) -> Iterator:
        """The event stream's dv packets in file order (reusing the constructor's recording once)."""
        spare, self._spare = self._spare, None
        n_read = 0
        if spare is None:
            rec = self._open()
        else:
            rec, batch = spare
            n_read = batch.size()
            yield batch
        while True:
            try:
                batch = rec.getNextEventBatch(self._stream)
            except RuntimeError as exc:
                raise FormatError(
                    f"{self.path}: event stream unreadable after {n_read} events ({_first_line(exc)})"
                ) from exc
            if batch is None:
                return
            n_read += batch.size()
            yield batch

    def close(self) -> None:
        self._spare = None


_LAYOUT_OK: dict[np.dtype, bool] = {}  # dv's array dtype -> "is EVENT_DTYPE's bytes" (checked once)


def from_dv_events(raw: np.ndarray) -> np.ndarray:
    """A dv packet array (``timestamp, x, y, polarity``) as canonical events: a view when possible."""
    ok = _LAYOUT_OK.get(raw.dtype)
    if ok is None:
        ok = _LAYOUT_OK[raw.dtype] = is_padded_event_layout(raw.dtype, _DV_NAMES)
    if ok and raw.ndim == 1 and raw.strides[0] == EVENT_DTYPE.itemsize:
        return raw.view(EVENT_DTYPE)
    out = np.zeros(len(raw), dtype=EVENT_DTYPE)  # a dv version with another layout: slower but right
    out["t"] = raw["timestamp"]
    out["x"] = raw["x"]
    out["y"] = raw["y"]
    out["p"] = raw["polarity"]
    return out


class AEDAT4EventWriter(EventWriter):
    """Streaming AEDAT4 writer (LZ4), optionally with a frame stream of blank frames.

    The blank frames exist only to carry ``frame_timestamps_us`` (the APS frame times that ground
    truth is aligned to, as in FE108); they are black images of the sensor size, which LZ4
    compresses to almost nothing.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        sensor_size: tuple[int, int],
        frame_timestamps_us: np.ndarray | None = None,
        camera_name: str = "evtrack",
    ) -> None:
        if Path(path).suffix.lower() != ".aedat4":
            raise UserError(f"{path}: AEDAT4 output must end in .aedat4")
        super().__init__(path, sensor_size, frame_timestamps_us)
        self._next_frame = 0
        dv = _dv()
        h, w = self.sensor_size
        config = dv.io.MonoCameraWriter.Config(camera_name, dv.CompressionType.LZ4)
        config.addEventStream((w, h))
        if self._frames is not None:
            config.addFrameStream((w, h))
            self._blank = np.zeros((h, w), dtype=np.uint8)
        self._writer = dv.io.MonoCameraWriter(str(self._tmp), config)

    def _write_frames_until(self, t_us: int | None) -> None:
        if self._frames is None:
            return
        dv = _dv()
        stop = len(self._frames) if t_us is None else int(np.searchsorted(self._frames, t_us, side="right"))
        for i in range(self._next_frame, stop):
            self._writer.writeFrame(dv.Frame(int(self._frames[i]), self._blank))
        self._next_frame = max(self._next_frame, stop)

    def _append(self, ev: np.ndarray, original: np.ndarray) -> None:
        dv = _dv()
        self._write_frames_until(int(ev["t"][-1]))
        for s in range(0, len(ev), _WRITE_PACKET):
            part = ev[s : s + _WRITE_PACKET]
            store = dv.EventStore()
            # map + a zero-length deque drives push_back from C, ~1.4x faster than a for loop.
            items = zip(
                part["t"].tolist(),
                part["x"].tolist(),
                part["y"].tolist(),
                (part["p"] > 0).tolist(),
                strict=True,
            )
            deque(map(store.push_back, items), maxlen=0)
            self._writer.writeEvents(store)

    def _finish(self) -> None:
        """Write the remaining frames; dv finalises the file (data table) when the writer is deleted."""
        self._write_frames_until(None)
        del self._writer

    def _drop(self) -> None:
        if hasattr(self, "_writer"):
            del self._writer


def write_aedat4(
    path: str | Path,
    events: np.ndarray,
    *,
    sensor_size: tuple[int, int],
    frame_timestamps_us: np.ndarray | None = None,
) -> Path:
    """Write events (and optional APS frame times as blank frames) to an AEDAT4 file, atomically."""
    with AEDAT4EventWriter(path, sensor_size=sensor_size, frame_timestamps_us=frame_timestamps_us) as writer:
        for s in range(0, len(events), 1 << 20):
            writer.write(events[s : s + (1 << 20)])
    return Path(path)
