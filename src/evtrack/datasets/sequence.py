"""One annotated recording: where its events are, its boxes, and when each box was taken."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from evtrack.errors import FormatError, UserError


@dataclass
class Sequence:
    """An annotated event recording, as every dataset adapter yields it.

    Boxes are ``x, y, w, h`` in sensor pixels, one per annotated frame. ``frame_timestamps_us``
    holds the time (microseconds, the recording's clock) each box belongs to; adapters whose
    timestamps live inside the event file (FE108's APS frame stream) leave it None and
    :meth:`frame_times_us` reads it from the recording on first use.
    """

    name: str
    events_path: Path | None  # None when only annotations are available (evaluation only)
    boxes: np.ndarray  # (N, 4) float64
    absent: np.ndarray  # (N,) bool, True = target not visible in that frame
    frame_timestamps_us: np.ndarray | None = None  # (N,) int64
    sensor_size: tuple[int, int] | None = None  # (height, width); None = ask the reader
    attributes: dict[str, bool] = field(default_factory=dict)
    dataset: str = ""
    frame_offset: int = 0  # index of the first annotated frame in the recording's frame stream

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float64)
        if self.boxes.ndim != 2 or self.boxes.shape[1] != 4:
            raise FormatError(f"sequence {self.name!r}: boxes must be (N, 4), found shape {self.boxes.shape}")
        n = self.boxes.shape[0]
        self.absent = np.asarray(self.absent, dtype=bool)
        if self.absent.shape != (n,):
            raise FormatError(
                f"sequence {self.name!r}: found {self.absent.shape[0] if self.absent.ndim else 0} absent flags, "
                f"expected {n} (one per box)"
            )
        if self.frame_timestamps_us is not None:
            self.frame_timestamps_us = self._check_times(np.asarray(self.frame_timestamps_us), "frame timestamps")
        if self.events_path is not None:
            self.events_path = Path(self.events_path)

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    @property
    def init_box(self) -> np.ndarray:
        return self.boxes[0].copy()

    def head(self, n: int) -> Sequence:
        """The first ``n`` annotated frames of this sequence (all of it when it is shorter): quick
        measurements track a prefix and score it against the same prefix of the annotations."""
        if n < 1:
            raise UserError(f"sequence {self.name!r}: a head needs at least 1 frame, got {n}")
        if n >= len(self):
            return self
        times = None if self.frame_timestamps_us is None else self.frame_timestamps_us[:n]
        return replace(self, boxes=self.boxes[:n], absent=self.absent[:n], frame_timestamps_us=times)

    def tail(self, start: int) -> Sequence:
        """This sequence from annotated frame ``start`` on, named ``<name>@<start>``: a tracker started
        there from the ground-truth box (temporal robustness evaluation, :mod:`evtrack.metrics.tre`).
        Its frame times are resolved first (from the recording when the adapter left them to it)."""
        if not 0 <= start < len(self):
            raise UserError(f"sequence {self.name!r}: start frame {start} is outside its {len(self)} frames")
        times = self.frame_timestamps_us
        if times is None and self.events_path is not None:
            times = self.frame_times_us()
        times = None if times is None else times[start:]
        return replace(self, name=f"{self.name}@{start}", boxes=self.boxes[start:], absent=self.absent[start:],
                       frame_timestamps_us=times, frame_offset=self.frame_offset + start)

    def open(self, **options: Any):
        """Open the event recording (an ``evtrack.io`` EventReader, a context manager)."""
        if self.events_path is None:
            raise UserError(
                f"sequence {self.name!r} ({self.dataset}) has annotations only, no event file: "
                "it can be evaluated but not tracked"
            )
        from evtrack.io import open_events

        if self.sensor_size is not None:
            options.setdefault("sensor_size", self.sensor_size)
        return open_events(self.events_path, **options)

    def frame_times_us(self, reader: Any = None) -> np.ndarray:
        """The ``(N,)`` int64 time of every box, reading the recording's frame stream if needed."""
        if self.frame_timestamps_us is not None:
            return self.frame_timestamps_us
        if reader is None:
            with self.open() as r:
                return self.frame_times_us(r)
        stream = reader.info.frame_timestamps_us
        if stream is None:
            raise FormatError(
                f"{self.events_path}: no frame stream to time the {len(self)} boxes of {self.name!r}; "
                "expected APS frames in the recording or a frame_timestamps.txt beside it"
            )
        stream = np.asarray(stream, dtype=np.int64)
        times = stream[self.frame_offset : self.frame_offset + len(self)]
        if times.shape[0] != len(self):
            raise FormatError(
                f"{self.events_path}: frame stream has {stream.shape[0]} frames, expected at least "
                f"{self.frame_offset + len(self)} (offset {self.frame_offset} + {len(self)} boxes of {self.name!r})"
            )
        self.frame_timestamps_us = self._check_times(times, "frame stream timestamps")
        return self.frame_timestamps_us

    def _check_times(self, times: np.ndarray, what: str) -> np.ndarray:
        if times.shape != (len(self),):
            raise FormatError(f"sequence {self.name!r}: found {times.shape[0]} {what}, expected {len(self)} (one per box)")
        times = times.astype(np.int64)
        if times.size > 1 and np.any(np.diff(times) <= 0):
            i = int(np.argmax(np.diff(times) <= 0))
            raise FormatError(
                f"sequence {self.name!r}: {what} must increase, found {times[i]} then {times[i + 1]} at frames {i}, {i + 1}"
            )
        return times


def interval_edges(frame_times_us: np.ndarray) -> np.ndarray:
    """``(N+1,)`` bounds: frame i covers ``[edges[i], edges[i+1])``; frame 0 gets the interval of the
    same length before its timestamp (design.md)."""
    ts = np.asarray(frame_times_us, dtype=np.int64)
    if ts.size == 0:
        raise UserError("a sequence needs at least one frame timestamp")
    first = ts[1] - ts[0] if ts.size > 1 else 40_000
    return np.concatenate([[ts[0] - first], ts])
