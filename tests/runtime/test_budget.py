"""Latency budget: the keep schedule follows measured step times; state passes between pruned graphs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evtrack.errors import UserError
from evtrack.runtime.budget import BudgetConfig, KeepScheduler


class FakeRunner:
    """Counts its calls; ``state_names`` like a graph runner (empty = dense)."""

    def __init__(self, state_names=()):
        self.state_names = list(state_names)
        self._state = None
        self.calls = 0
        self.seen = []  # the state each call started from

    def template(self, z):
        return z

    def search(self, z_feat, x):
        self.calls += 1
        self.seen.append(self._state)
        if self.state_names:
            self._state = [f"state after call {self.calls} of {id(self)}"]
        return {}

    def reset(self):
        self._state = None


def scheduler(budget_ms=5.0, **kw):
    runners = [("1.0", FakeRunner()), ("official", FakeRunner(["p"])), ("default", FakeRunner(["p"])),
               ("0.3", FakeRunner(["p"]))]
    return KeepScheduler(runners, BudgetConfig(budget_ms, schedules=tuple(r[0] for r in runners), **kw))


def drive(s, step_ms: dict, frames: int) -> list[str]:
    used = []
    for _ in range(frames):
        used.append(s.current_label)
        s.search(None, None)
        s.record(step_ms[s.current_label])
    return used


def test_settles_on_the_least_pruned_schedule_within_budget():
    s = scheduler(5.0, probe_every=5)
    used = drive(s, {"1.0": 8.0, "official": 6.0, "default": 4.0, "0.3": 3.0}, 400)
    assert used[0] == "0.3"  # starts safe
    tail = used[-200:]
    assert max(set(tail), key=tail.count) == "default"
    # probes of the too-slow schedules cost one over-budget step each, and grow rarer
    over = [u for u in used if u in ("1.0", "official")]
    assert 0 < len(over) <= 12


def test_moves_to_more_pruning_when_the_machine_gets_slower():
    s = scheduler(5.0, probe_every=5)
    drive(s, {"1.0": 3.0, "official": 2.5, "default": 2.0, "0.3": 1.5}, 200)
    assert s.current_label == "1.0"
    used = drive(s, {"1.0": 9.0, "official": 7.0, "default": 4.0, "0.3": 3.0}, 100)
    assert used[-50:].count("default") >= 45


def test_state_passes_between_pruned_graphs_and_restarts_after_dense():
    s = scheduler()
    a, b = s.runners[3], s.runners[2]
    s.search(None, None)
    state = a._state
    s.current = 2
    s.search(None, None)
    assert b.seen == [state] and a._state is None  # b went on from a's state
    s.current = 0
    s.search(None, None)
    s.current = 3
    s.search(None, None)
    assert a.seen[-1] is None  # after a dense frame the pruned graph starts afresh (init graph)


def test_warming_runs_every_schedule_and_forgets_the_times():
    s = scheduler()
    with s.warming():
        for _ in range(s.warm_up_calls):
            s.search(None, None)
            s.record(100.0)
    assert all(r.calls == 2 for r in s.runners)
    assert s.current_label == "0.3" and all(len(t) == 0 for t in s.times)


def test_a_budget_needs_a_graph_runtime_and_a_positive_time():
    from evtrack.tracker.online import load_tracker

    with pytest.raises(UserError, match="expected runtime 'onnx' or 'openvino'"):
        load_tracker(budget=BudgetConfig(5.0))
    with pytest.raises(UserError, match="must be > 0 ms"):
        BudgetConfig(0.0)


def test_stream_tracker_reports_the_keep_of_every_window():
    from evtrack.io.events import random_events
    from evtrack.live.stream_tracker import StreamConfig, StreamTracker
    from evtrack.tracker.online import load_tracker

    tracker = load_tracker(runtime="onnx", n_threads=1, budget=BudgetConfig(5.0, schedules=("default", "0.3")))
    tracker.warm_up()
    ev = random_events(20_000, height=120, width=160, duration_us=200_000, seed=1)
    st = StreamTracker(tracker, init_box=(60, 40, 30, 30), sensor_size=(120, 160),
                       config=StreamConfig(window_us=20_000, threaded=False, skip_when_behind=False))
    for chunk in np.array_split(ev, 20):
        st.push(chunk)
    st.close()
    res = list(st.results(timeout=0))
    updates = [r for r in res if r.kind == "update"]
    assert updates and all(r.keep in ("default", "0.3") for r in updates)
    assert res[0].keep is None and "keep" in updates[0].to_dict()
    assert sum(st.stats()["keep_windows"].values()) == len(updates)
    assert isinstance(tracker.runner.template(torch.zeros(1, 3, 64, 64)), torch.Tensor)


def test_live_refuses_keep_with_a_budget(capsys):
    from evtrack.cli import main

    rc = main(["live", "--source", "tcp://127.0.0.1:1", "--init", "1,1,5,5", "--runtime", "onnx",
               "--latency-budget-ms", "5", "--keep", "default"])
    assert rc == 2 and "expected no --keep" in capsys.readouterr().err
