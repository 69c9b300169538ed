"""The lifecycle every streaming event writer shares, the counterpart of :class:`EventReader`.

A writer checks each chunk once (time order, sensor bounds), writes into a temporary file beside
the output, and renames it only on a clean :meth:`close`; an error or :meth:`abort` leaves the output
path untouched. Formats implement ``_append`` (store checked events), ``_finish`` (complete the
temporary file) and ``_drop`` (release it after a failure).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from evtrack.errors import UserError
from evtrack.io import atomic
from evtrack.io.events import as_events, check_frame_times


class EventWriter:
    """Base of the streaming writers (``with Writer(path, sensor_size=...) as w: w.write(chunk)``)."""

    def __init__(self, path: str | Path, sensor_size: tuple[int, int],
                 frame_timestamps_us: np.ndarray | None = None) -> None:
        if sensor_size is None or len(sensor_size) != 2 or min(int(v) for v in sensor_size) <= 0:
            raise UserError(f"sensor_size must be (height, width) with positive values, got {sensor_size!r}")
        self.path = Path(path)
        self.sensor_size = (int(sensor_size[0]), int(sensor_size[1]))
        self._frames = None if frame_timestamps_us is None else check_frame_times(frame_timestamps_us, self.path)
        self._tmp = atomic.temp_path_for(self.path)
        self._n = 0  # events accepted
        self._last_t: int | None = None
        self._closed = False

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    @property
    def n_events(self) -> int:
        return self._n

    def write(self, events: np.ndarray) -> None:
        """Append time-sorted events (any structured array with t, x, y, p; t in microseconds)."""
        if self._closed:
            raise ValueError(f"{self.path}: writer is already closed")
        ev = as_events(events, source=f"events written to {self.path}")
        if len(ev) == 0:
            return
        t = ev["t"]
        if self._last_t is not None and t[0] < self._last_t:
            raise UserError(
                f"{self.path}: event {self._n} has t = {int(t[0])} us, before the previous event "
                f"(t = {self._last_t} us); events must be written in time order"
            )
        back = np.flatnonzero(t[1:] < t[:-1])
        if len(back):
            i = int(back[0])
            raise UserError(
                f"{self.path}: event {self._n + i + 1} has t = {int(t[i + 1])} us after t = {int(t[i])} us; "
                "events must be written in time order"
            )
        h, w = self.sensor_size
        bad = (ev["x"] < 0) | (ev["x"] >= w) | (ev["y"] < 0) | (ev["y"] >= h)
        if bad.any():
            i = int(np.argmax(bad))
            raise UserError(
                f"{self.path}: event {self._n + i} at (x={int(ev['x'][i])}, y={int(ev['y'][i])}) is outside "
                f"the {w}x{h} sensor"
            )
        self._append(ev, events)
        self._n += len(ev)
        self._last_t = int(t[-1])

    def close(self) -> None:
        """Complete the file and move it to its final name."""
        if self._closed:
            return
        try:
            self._finish()
            atomic.commit(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise
        self._closed = True

    def abort(self) -> None:
        """Drop everything written so far; the final path is left untouched."""
        self._closed = True
        try:
            self._drop()
        finally:
            atomic.discard(self._tmp)

    # -- what a format implements
    def _append(self, events: np.ndarray, original: np.ndarray) -> None:
        """Store checked events (``original`` is the caller's array, which it may reuse afterwards)."""
        raise NotImplementedError

    def _finish(self) -> None:
        raise NotImplementedError

    def _drop(self) -> None:
        raise NotImplementedError
