"""StreamTracker windowing, skipping when behind, flush and errors, with a recording fake tracker."""

from __future__ import annotations

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


def test_threaded_slow_tracker_keeps_latency_bounded():
    tr = FakeTracker(delay_s=0.02)  # 20 ms per update, windows of 2 ms arrive every 2 ms
    st = StreamTracker(tr, init_box=(1, 2, 3, 4), sensor_size=(10, 10), config=StreamConfig(window_us=2000))
    t = 0
    start = time.perf_counter()
    while time.perf_counter() - start < 0.5:
        st.push(ramp(t, t + 2000, 100))
        t += 2000
        time.sleep(0.002)
    st.close(flush=False)
    s = st.stats()
    assert s["dropped_windows"] > 50  # most windows had to be skipped
    assert s["processed_events"] + s["dropped_events"] + s["late_events"] <= s["pushed_events"]
    # With skipping, latency stays about one update time, not the whole run.
    assert s["latency_p99_ms"] < 150
    assert len(tr.calls) < 40


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
    tr = FakeTracker(fail_at=2)
    st = StreamTracker(tr, init_box=(1, 2, 3, 4), sensor_size=(10, 10),
                       config=StreamConfig(window_us=1000, skip_when_behind=False),
                       on_error=errors.append)
    st.push(ramp(0, 5000, 10))
    deadline = time.time() + 5
    while not errors and time.time() < deadline:
        time.sleep(0.01)
    assert errors and isinstance(errors[0], ValueError)
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
