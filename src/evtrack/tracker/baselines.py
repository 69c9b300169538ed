"""Non-learned reference trackers with the :class:`~evtrack.tracker.online.Tracker` interface.

They set the floor a learned tracker must clearly beat on the same benchmark run:

- :class:`StationaryTracker`: the first box forever (what "no tracking" scores);
- :class:`CentroidTracker`: moves the box to the mean position of the events inside a window around
  the previous box (box size fixed), the simplest event-driven tracker.
"""

from __future__ import annotations

import time

import numpy as np

from evtrack.errors import UserError
from evtrack.tracker.crops import check_init_box, clip_box
from evtrack.tracker.online import TrackResult


class _Baseline:
    def __init__(self, *, sensor_size: tuple[int, int] | None = None) -> None:
        self.sensor_size = tuple(sensor_size) if sensor_size is not None else None
        self.box: np.ndarray | None = None
        self._frames = 0
        self._busy_s = 0.0

    def init(self, events, box, *, sensor_size=None, t0_us=None, t1_us=None) -> TrackResult:
        if sensor_size is not None:
            self.sensor_size = tuple(sensor_size)
        if self.sensor_size is None:
            raise UserError("init: sensor size unknown; pass sensor_size=(height, width)")
        self.box = check_init_box(box, self.sensor_size)
        return TrackResult(self.box.copy(), 1.0, 0.0)

    def update(self, events, *, t0_us=None, t1_us=None) -> TrackResult:
        if self.box is None:
            raise UserError("update called before init")
        t = time.perf_counter()
        score = self._step(events)
        dt = time.perf_counter() - t
        self._frames += 1
        self._busy_s += dt
        return TrackResult(self.box.copy(), score, dt)

    def _step(self, events) -> float:
        raise NotImplementedError

    def stats(self) -> dict:
        return {"frames": self._frames, "fps": self._frames / self._busy_s if self._busy_s > 0 else 0.0}


class StationaryTracker(_Baseline):
    """Reports the initial box in every frame."""

    def _step(self, events) -> float:
        return 1.0


class CentroidTracker(_Baseline):
    """Box centre follows the mean of the events within ``search_factor`` x the box around it.

    ``min_events``: fewer events than this in the window (target static or gone) keep the box.
    """

    def __init__(self, *, search_factor: float = 2.0, min_events: int = 5, sensor_size=None) -> None:
        super().__init__(sensor_size=sensor_size)
        self.search_factor = float(search_factor)
        self.min_events = int(min_events)

    def _step(self, events) -> float:
        b = self.box
        cx, cy = b[0] + b[2] / 2, b[1] + b[3] / 2
        hw, hh = self.search_factor * b[2] / 2, self.search_factor * b[3] / 2
        x = events["x"].astype(np.float64)
        y = events["y"].astype(np.float64)
        inside = (np.abs(x - cx) <= hw) & (np.abs(y - cy) <= hh)
        n = int(inside.sum())
        if n < self.min_events:
            return 0.0
        mx, my = x[inside].mean() + 0.5, y[inside].mean() + 0.5  # pixel centres
        self.box = clip_box(np.array([mx - b[2] / 2, my - b[3] / 2, b[2], b[3]]), self.sensor_size)
        return min(1.0, n / (4 * (b[2] + b[3])))  # events per unit of perimeter, as a crude confidence
