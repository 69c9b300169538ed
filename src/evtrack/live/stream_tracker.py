"""StreamTracker: a tracker for control loops fed with event packets as they arrive.

Events are cut into fixed time windows ``[t0, t0 + window_us)`` anchored at the first event.
A window is *complete* once an event at or after its end has been pushed (or the stream is
flushed). The first complete window initialises the tracker with the user's box; every later
window gives one :class:`StreamResult` (box, score, latency).

Why skip instead of queue: a robot needs the newest box, not a growing backlog. When processing
falls behind (more than ``max_pending_windows`` complete windows wait), the older ones are
dropped and the newest is tracked; the result says how many windows and events were dropped, so
latency stays bounded by roughly one update time. ``skip_when_behind=False`` processes every
window instead (offline replays, tests).

Two ways to drive it:

- threaded (default): ``push()`` only appends and returns at once; a worker thread runs the
  tracker and delivers results to ``on_result`` and to :meth:`results`;
- ``threaded=False``: ``push()`` processes the completed windows inline before returning.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from evtrack.errors import UserError
from evtrack.io.events import EVENT_DTYPE


@dataclass(frozen=True)
class StreamConfig:
    """How a stream is windowed and when windows are skipped."""

    window_us: int = 20_000  # fixed window length; 10-50 ms suits control loops
    skip_when_behind: bool = True  # drop old complete windows and track the newest
    max_pending_windows: int = 1  # complete windows allowed to wait before older ones are dropped
    max_gap_us: int = 1_000_000  # a time jump larger than this (either way) re-anchors the windows
    threaded: bool = True  # run the tracker on a worker thread (push never blocks)
    results_maxlen: int = 256  # newest results kept for results() when nobody consumes them

    def __post_init__(self) -> None:
        if self.window_us <= 0:
            raise UserError(f"window_us must be > 0, got {self.window_us}")
        if self.max_pending_windows < 1:
            raise UserError(f"max_pending_windows must be >= 1, got {self.max_pending_windows}")
        if self.max_gap_us < self.window_us:
            raise UserError(f"max_gap_us ({self.max_gap_us}) must be >= window_us ({self.window_us})")


@dataclass(frozen=True)
class StreamResult:
    """One tracked window.

    ``latency_ms``: from the arrival (push) of the packet that completed the window to the
    result; ``compute_ms``: time inside the tracker alone. ``dropped_windows``/``dropped_events``
    were skipped since the previous result to catch up (``late_events``: arrived after their
    window had been processed). ``kind`` is ``"init"`` for the first window, else ``"update"``.
    """

    index: int
    kind: str
    t0_us: int
    t1_us: int
    box: tuple[float, float, float, float]
    score: float
    n_events: int
    latency_ms: float
    compute_ms: float
    dropped_windows: int = 0
    dropped_events: int = 0
    late_events: int = 0
    wall_time: float = 0.0  # time.time() when the result was ready
    keep: str | None = None  # keep schedule a latency budget picked for this window (None: no budget)

    def to_dict(self) -> dict:
        extra = {"keep": self.keep} if self.keep is not None else {}
        return {
            "type": "box",
            "index": self.index,
            "kind": self.kind,
            "t0_us": self.t0_us,
            "t1_us": self.t1_us,
            "box": [round(float(v), 3) for v in self.box],
            "score": round(float(self.score), 5),
            "n_events": self.n_events,
            "latency_ms": round(self.latency_ms, 3),
            "compute_ms": round(self.compute_ms, 3),
            "dropped_windows": self.dropped_windows,
            "dropped_events": self.dropped_events,
            "late_events": self.late_events,
            "wall_time": round(self.wall_time, 6),
            **extra,
        }


@dataclass
class StreamStats:
    """Running totals; read with :meth:`StreamTracker.stats`."""

    pushed_events: int = 0
    processed_events: int = 0
    processed_windows: int = 0
    dropped_windows: int = 0
    dropped_events: int = 0
    late_events: int = 0
    discontinuities: int = 0  # time jumps larger than max_gap_us (stream restarted, reconnects)
    keep_windows: dict = field(default_factory=dict)  # latency budget: updates per keep schedule
    latencies_ms: collections.deque = field(default_factory=lambda: collections.deque(maxlen=100_000))

    def summary(self) -> dict:
        lat = np.asarray(self.latencies_ms, dtype=np.float64)
        out = {k: v for k, v in self.__dict__.items() if k not in ("latencies_ms", "keep_windows")}
        if self.keep_windows:
            out["keep_windows"] = dict(self.keep_windows)
        if lat.size:
            out.update(latency_p50_ms=float(np.percentile(lat, 50)), latency_p99_ms=float(np.percentile(lat, 99)),
                       latency_max_ms=float(lat.max()))
        return out


class StreamTracker:
    """Feed event packets with :meth:`push`; get one result per (non-dropped) window.

    Args:
        tracker: object with ``init(events, box, *, sensor_size, t0_us, t1_us)`` and
            ``update(events, *, t0_us, t1_us) -> result`` with ``.box`` (x, y, w, h) and ``.score``
            (:class:`evtrack.tracker.Tracker` or a baseline).
        init_box: ``x, y, w, h`` of the target in the first window, sensor pixels.
        sensor_size: ``(height, width)``.
        on_result: called with every :class:`StreamResult` (on the worker thread when threaded).
        on_error: called with an exception raised by the tracker (threaded mode); the worker stops.
        on_window: called with ``(result, events)``: the window's events too (overlays, logging).

    >>> st = StreamTracker(tracker, init_box=(10, 20, 30, 40), sensor_size=(260, 346))
    >>> for packet in source: st.push(packet)
    >>> st.close()   # flushes the last (partial) window and stops the worker
    """

    def __init__(
        self,
        tracker,
        *,
        init_box,
        sensor_size: tuple[int, int],
        config: StreamConfig = StreamConfig(),
        on_result: Callable[[StreamResult], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        on_window: Callable[[StreamResult, np.ndarray], None] | None = None,
    ) -> None:
        box = tuple(float(v) for v in init_box)
        if len(box) != 4 or box[2] <= 0 or box[3] <= 0:
            raise UserError(f"init box must be x,y,w,h with w,h > 0, got {init_box!r}")
        self.tracker = tracker
        self.init_box = box
        self.sensor_size = (int(sensor_size[0]), int(sensor_size[1]))
        self.config = config
        self.on_result = on_result
        self.on_error = on_error
        self.on_window = on_window
        self._stats = StreamStats()
        self._lock = threading.Condition()
        self._chunks: list[np.ndarray] = []  # events with t >= self._win_start, arrival order
        self._arrivals: list[float] = []  # perf_counter() of each chunk's push
        self._win_start: int | None = None
        self._t_max: int | None = None
        self._initialized = False
        self._index = 0
        self._pending_dropped = [0, 0, 0]  # windows, events, late events since the last result
        self._flushing = False
        self._closed = False
        self._results: collections.deque[StreamResult] = collections.deque(maxlen=config.results_maxlen)
        self._error: BaseException | None = None
        self._worker: threading.Thread | None = None
        if config.threaded:
            self._worker = threading.Thread(target=self._run_worker, name="StreamTracker", daemon=True)
            self._worker.start()

    # ------------------------------------------------------------------ input
    def push(self, events: np.ndarray) -> None:
        """Add a packet (canonical events, time-sorted within the packet)."""
        if events.dtype != EVENT_DTYPE:
            raise UserError(f"StreamTracker.push: events dtype {events.dtype}, expected {EVENT_DTYPE}")
        if self._error is not None:
            raise RuntimeError("StreamTracker worker failed") from self._error
        if self._closed:
            raise RuntimeError("StreamTracker.push after close()")
        if len(events) == 0:
            return
        now = time.perf_counter()
        with self._lock:
            self._stats.pushed_events += len(events)
            self._accept(events, now)
            self._lock.notify_all()
        if not self.config.threaded:
            self._drain(final=False)

    def _accept(self, events: np.ndarray, now: float) -> None:
        cfg = self.config
        t_first, t_last = int(events["t"][0]), int(events["t"][-1])
        if self._win_start is None:
            self._win_start = t_first
            self._t_max = t_first
        elif t_first < self._win_start - cfg.max_gap_us or t_first > self._t_max + cfg.max_gap_us:
            # Stream restarted or resumed after a long gap: the old partial window is meaningless.
            self._stats.discontinuities += 1
            self._pending_dropped[1] += sum(len(c) for c in self._chunks)
            self._stats.dropped_events += sum(len(c) for c in self._chunks)
            self._chunks.clear()
            self._arrivals.clear()
            self._win_start = t_first
            self._t_max = t_first
        late = events["t"] < self._win_start
        if late.any():
            n_late = int(late.sum())
            self._pending_dropped[2] += n_late
            self._stats.late_events += n_late
            events = events[~late]
            if len(events) == 0:
                return
        self._chunks.append(events)
        self._arrivals.append(now)
        self._t_max = max(self._t_max, t_last)
        # Bound memory even if the worker is stuck: never keep more than the allowed backlog.
        if self.config.skip_when_behind and self._initialized:
            n_complete = self._n_complete()
            if n_complete > cfg.max_pending_windows + 1:
                self._drop_windows(n_complete - cfg.max_pending_windows)

    def _n_complete(self) -> int:
        if self._win_start is None:
            return 0
        return max(0, (self._t_max - self._win_start) // self.config.window_us)

    def _split(self, t1: int) -> tuple[np.ndarray, float]:
        """Remove and return events with t < t1, and the arrival time of the packet completing it."""
        parts, keep, keep_arr = [], [], []
        done_at = None
        for c, arr in zip(self._chunks, self._arrivals, strict=True):
            if c["t"][-1] < t1:
                parts.append(c)
            elif c["t"][0] >= t1:
                keep.append(c)
                keep_arr.append(arr)
                done_at = arr if done_at is None else min(done_at, arr)
            else:
                m = c["t"] < t1
                parts.append(c[m])
                keep.append(c[~m])
                keep_arr.append(arr)
                done_at = arr if done_at is None else min(done_at, arr)
        self._chunks, self._arrivals = keep, keep_arr
        out = np.concatenate(parts) if len(parts) > 1 else (parts[0] if parts else np.empty(0, EVENT_DTYPE))
        return out, (done_at if done_at is not None else time.perf_counter())

    def _drop_windows(self, n: int) -> None:
        t1 = self._win_start + n * self.config.window_us
        dropped, _ = self._split(t1)
        self._win_start = t1
        self._pending_dropped[0] += n
        self._pending_dropped[1] += len(dropped)
        self._stats.dropped_windows += n
        self._stats.dropped_events += len(dropped)

    def _take(self, final: bool) -> tuple | None:
        """Next window to process under the skip policy, or None when none is complete.

        Called with the lock held. The drops counted so far are handed over with the window (and
        reset), so drops that happen while it is being tracked go to the next result.
        """
        cfg = self.config
        n_complete = self._n_complete()
        if n_complete == 0:
            if final and self._chunks:
                t0 = self._win_start
                ev, done_at = self._split(self._t_max + 1)
                self._win_start = t0 + cfg.window_us
                return t0, t0 + cfg.window_us, ev, done_at, self._take_drops()
            return None
        if cfg.skip_when_behind and self._initialized and n_complete > cfg.max_pending_windows:
            self._drop_windows(n_complete - 1)
        t0 = self._win_start
        t1 = t0 + cfg.window_us
        ev, done_at = self._split(t1)
        self._win_start = t1
        return t0, t1, ev, done_at, self._take_drops()

    def _take_drops(self) -> tuple[int, int, int]:
        drops = tuple(self._pending_dropped)
        self._pending_dropped = [0, 0, 0]
        return drops

    # --------------------------------------------------------------- processing
    def _process(self, t0: int, t1: int, ev: np.ndarray, done_at: float, drops: tuple[int, int, int]) -> StreamResult:
        start = time.perf_counter()
        budget = getattr(self.tracker, "runner", None)  # a latency budget's scheduler takes the step times
        budget = budget if hasattr(budget, "record") else None
        keep = None
        if not self._initialized:
            r = self.tracker.init(ev, self.init_box, sensor_size=self.sensor_size, t0_us=t0, t1_us=t1)
            kind = "init"
            self._initialized = True
        else:
            keep = budget.current_label if budget is not None else None
            r = self.tracker.update(ev, t0_us=t0, t1_us=t1)
            kind = "update"
        end = time.perf_counter()
        if keep is not None:
            budget.record((end - done_at) * 1e3)  # the latency the budget is for, queueing included
            self._stats.keep_windows[keep] = self._stats.keep_windows.get(keep, 0) + 1
        box = tuple(float(v) for v in (r.box if r is not None else self.init_box))
        score = float(r.score) if r is not None else 1.0
        dw, de, dl = drops
        res = StreamResult(
            index=self._index, kind=kind, t0_us=t0, t1_us=t1, box=box, score=score, n_events=len(ev),
            latency_ms=(end - done_at) * 1e3, compute_ms=(end - start) * 1e3,
            dropped_windows=dw, dropped_events=de, late_events=dl, wall_time=time.time(), keep=keep,
        )
        self._index += 1
        self._stats.processed_windows += 1
        self._stats.processed_events += len(ev)
        if kind == "update":
            self._stats.latencies_ms.append(res.latency_ms)
        with self._lock:
            self._results.append(res)
            self._lock.notify_all()
        if self.on_result is not None:
            self.on_result(res)
        if self.on_window is not None:
            self.on_window(res, ev)
        return res

    def _drain(self, final: bool) -> None:
        while True:
            with self._lock:
                item = self._take(final)
            if item is None:
                return
            self._process(*item)

    def _run_worker(self) -> None:
        try:
            while True:
                with self._lock:
                    while not self._closed and self._n_complete() == 0:
                        self._lock.wait(0.1)
                    if self._closed and self._n_complete() == 0:
                        break
                self._drain(final=False)
            if self._flushing:
                self._drain(final=True)
        except BaseException as exc:  # noqa: BLE001 - handed to the owner, never lost
            self._error = exc
            if self.on_error is not None:
                self.on_error(exc)
        finally:
            with self._lock:
                self._closed = True
                self._lock.notify_all()

    # ------------------------------------------------------------------ output
    def results(self, timeout: float | None = None) -> Iterator[StreamResult]:
        """Yield results as they become ready, until closed (or ``timeout`` s without one)."""
        while True:
            with self._lock:
                end = None if timeout is None else time.monotonic() + timeout
                while not self._results and not (self._closed and (self._worker is None or not self._worker.is_alive())):
                    remaining = None if end is None else end - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return
                    self._lock.wait(0.1 if remaining is None else min(remaining, 0.1))
                if not self._results:
                    return
                res = self._results.popleft()
            yield res

    def stats(self) -> dict:
        return self._stats.summary()

    @property
    def error(self) -> BaseException | None:
        return self._error

    def close(self, flush: bool = True, timeout_s: float | None = 60.0) -> None:
        """Stop; with ``flush`` the events after the last full window are tracked as a final window.

        Waits at most ``timeout_s`` for the worker's current update (RuntimeError if it is still
        busy then: a hung tracker; the daemon worker does not keep the process alive).
        """
        with self._lock:
            if self._closed and self._worker is None:
                return
            self._flushing = flush
            self._closed = True
            self._lock.notify_all()
        if self._worker is not None:
            self._worker.join(timeout_s)
            if self._worker.is_alive():
                raise RuntimeError(f"StreamTracker worker still busy after {timeout_s:g} s (tracker update hung?)")
            self._worker = None
        elif flush:
            self._drain(final=True)
        if self._error is not None:
            raise RuntimeError("StreamTracker worker failed") from self._error

    def __enter__(self) -> StreamTracker:
        return self

    def __exit__(self, *exc) -> None:
        self.close(flush=exc[0] is None)
