"""StreamTracker windowing, skipping when behind, flush and errors, with a recording fake tracker."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from evtrack.errors import UserError
from evtrack.io.events import EVENT_DTYPE
from evtrack.live.stream_tracker import StreamConfig, StreamTracker


class FakeTracker:
    """Records every call; the box x is the number of events seen, so results are checkable."""

    def __init__(self, delay_s: float = 0.0, fail_at: int | None = None) -> None:
        self.calls: list[tuple[str, int, int, int]] = []
        self.delay_s = delay_s
        self.fail_at = fail_at

    def init(self, events, box, *, sensor_size, t0_us, t1_us):
        self.calls.append(("init", len(events), t0_us, t1_us))
        return SimpleNamespace(box=np.asarray(box, float), score=1.0)

    def update(self, events, *, t0_us, t1_us):
        if self.fail_at is not None and len(self.calls) == self.fail_at:
            raise ValueError("boom")
        time.sleep(self.delay_s)
        self.calls.append(("update", len(events), t0_us, t1_us))
        return SimpleNamespace(box=np.array([len(events), 0, 1, 1], float), score=0.5)


def ramp(t0: int, t1: int, step: int) -> np.ndarray:
    t = np.arange(t0, t1, step)
    ev = np.zeros(len(t), EVENT_DTYPE)
    ev["t"] = t
    ev["x"] = 1
    ev["y"] = 2
    return ev


def test_windows_are_exact_and_nothing_lost_without_skipping():
    tr = FakeTracker()
    st = StreamTracker(tr, init_box=(1, 2, 3, 4), sensor_size=(10, 10),
                       config=StreamConfig(window_us=1000, skip_when_behind=False, threaded=False))
    ev = ramp(5000, 10_500, 10)  # 550 events, windows start at 5000
    for part in np.array_split(ev, 7):
        st.push(part)
    st.close()
    kinds = [c[0] for c in tr.calls]
    assert kinds[0] == "init" and set(kinds[1:]) == {"update"}
    assert [c[2] for c in tr.calls] == list(range(5000, 10_001, 1000))
    assert [c[1] for c in tr.calls] == [100] * 5 + [50]  # last partial window flushed
    assert sum(c[1] for c in tr.calls) == len(ev)
    s = st.stats()
    assert s["processed_events"] == len(ev) and s["dropped_events"] == 0
    res = list(st.results(timeout=0))
    assert [r.kind for r in res] == kinds
    assert res[1].box[0] == 100 and res[1].score == 0.5


def test_skips_to_newest_window_and_reports_drops():
    tr = FakeTracker()
    st = StreamTracker(tr, init_box=(1, 2, 3, 4), sensor_size=(10, 10),
                       config=StreamConfig(window_us=1000, threaded=False))
    st.push(ramp(0, 1001, 10))  # completes window 0 -> init
    st.push(ramp(1010, 6001, 10))  # completes windows 1..5 at once: 1..4 dropped, 5 tracked
    results = list(st.results(timeout=0))
    assert [r.kind for r in results] == ["init", "update"]
    upd = results[1]
    assert (upd.t0_us, upd.t1_us) == (5000, 6000)
    assert upd.dropped_windows == 4
    assert upd.dropped_events == 400  # events at 1000, 1010, ..., 4990
    assert upd.n_events == 100
    st.close(flush=False)


class GatedTracker(FakeTracker):
    """update() signals that it started, then blocks until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.gate = threading.Event()

    def update(self, events, *, t0_us, t1_us):
        self.entered.set()
        assert self.gate.wait(30), "test never opened the gate"
        return super().update(events, t0_us=t0_us, t1_us=t1_us)


def test_busy_tracker_skips_to_the_newest_window_with_bounded_backlog():
    """While one update runs, 50 more windows complete: they are not queued (latency would grow by
    one update per window) but dropped as they arrive, and the next update is the newest window."""
    tr = GatedTracker()
    st = StreamTracker(tr, init_box=(1, 2, 3, 4), sensor_size=(10, 10), config=StreamConfig(window_us=1000))
    st.push(ramp(0, 1000, 10))
    st.push(ramp(1000, 2001, 10))  # completes windows 0 (init) and 1 (update: blocks)
    assert tr.entered.wait(10)
    for part in np.array_split(ramp(2010, 52_001, 10), 50):  # windows 2..51 complete meanwhile
        st.push(part)
    s = st.stats()
    # dropped on arrival, so memory stays bounded too: at most max_pending_windows + 1 complete
    # windows (and the partial one) wait
    assert s["dropped_windows"] >= 48
    assert sum(len(c) for c in st._chunks) <= 3 * 100
    tr.gate.set()
    st.close(flush=False)
    res = list(st.results(timeout=0))
    assert [(r.kind, r.t0_us) for r in res] == [("init", 0), ("update", 1000), ("update", 51_000)]
    assert res[2].dropped_windows == 49 and res[2].dropped_events == 49 * 100 and res[2].n_events == 100
    assert [c[2] for c in tr.calls] == [0, 1000, 51_000]
    s = st.stats()
    assert s["processed_events"] + s["dropped_events"] + s["late_events"] + 1 == s["pushed_events"]  # + t=52000


def test_time_reset_reanchors_windows():
    tr = FakeTracker()
    st = StreamTracker(tr, init_box=(1, 2, 3, 4), sensor_size=(10, 10),
                       config=StreamConfig(window_us=1000, skip_when_behind=False, threaded=False))
    st.push(ramp(10_000_000, 10_003_000, 10))
    st.push(ramp(0, 2500, 10))  # replay restarted from zero
    st.close()
    assert st.stats()["discontinuities"] == 1
    assert tr.calls[-1][2] == 2000  # windows now anchored at 0


def test_tracker_error_reaches_the_caller():
    errors = []
    failed = threading.Event()

    def on_error(exc):
        errors.append(exc)
        failed.set()

    tr = FakeTracker(fail_at=2)
    st = StreamTracker(tr, init_box=(1, 2, 3, 4), sensor_size=(10, 10),
                       config=StreamConfig(window_us=1000, skip_when_behind=False), on_error=on_error)
    st.push(ramp(0, 5000, 10))
    assert failed.wait(10)
    assert isinstance(errors[0], ValueError)
    with pytest.raises(RuntimeError, match="worker failed"):
        st.push(ramp(5000, 6000, 10))
    with pytest.raises(RuntimeError):
        st.close()


def test_callback_and_iterator_in_threaded_mode():
    got = []
    tr = FakeTracker()
    st = StreamTracker(tr, init_box=(1, 2, 3, 4), sensor_size=(10, 10),
                       config=StreamConfig(window_us=1000, skip_when_behind=False), on_result=got.append)
    st.push(ramp(0, 3000, 10))
    st.close()
    assert [r.t0_us for r in got] == [0, 1000, 2000]
    assert all(r.latency_ms >= r.compute_ms >= 0 for r in got[1:])


def test_bad_input_is_rejected():
    with pytest.raises(UserError, match="init box"):
        StreamTracker(FakeTracker(), init_box=(1, 2, 0, 4), sensor_size=(10, 10))
    with pytest.raises(UserError, match="window_us"):
        StreamConfig(window_us=0)
    st = StreamTracker(FakeTracker(), init_box=(1, 2, 3, 4), sensor_size=(10, 10),
                       config=StreamConfig(threaded=False))
    with pytest.raises(UserError, match="dtype"):
        st.push(np.zeros(3, dtype=[("t", "<i8")]))


def test_close_does_not_wait_forever_for_a_hung_tracker():
    tr = GatedTracker()
    st = StreamTracker(tr, init_box=(1, 2, 3, 4), sensor_size=(10, 10), config=StreamConfig(window_us=1000))
    st.push(ramp(0, 2001, 10))
    assert tr.entered.wait(10)
    with pytest.raises(RuntimeError, match="still busy after 0.2 s"):
        st.close(timeout_s=0.2)
    tr.gate.set()
    st.close()  # the update finished: now it closes
    assert [r.t0_us for r in st.results(timeout=0)] == [0, 1000, 2000]  # 2000: the flushed partial window


def test_one_window_of_slack_tracks_a_late_burst_instead_of_skipping():
    """Packets that arrive late together (network, a busy sender) complete two windows at once: with
    max_pending_windows=2 (evtrack live's default) both are tracked; with 1 the older one is skipped."""
    from evtrack.cli import build_parser

    got = {}
    for pending in (1, 2):
        st = StreamTracker(FakeTracker(), init_box=(1, 2, 3, 4), sensor_size=(10, 10),
                           config=StreamConfig(window_us=1000, threaded=False, max_pending_windows=pending))
        st.push(ramp(0, 1001, 10))  # window 0 -> init
        st.push(ramp(1010, 3001, 10))  # windows 1 and 2 complete in one burst
        st.close(flush=False)
        got[pending] = [(r.t0_us, r.dropped_windows) for r in st.results(timeout=0)]
    assert got[1] == [(0, 0), (2000, 1)]
    assert got[2] == [(0, 0), (1000, 0), (2000, 0)]
    assert build_parser().parse_args(["live", "--source", "tcp://h:1", "--init", "1,1,2,2"]).max_behind == 2
