"""``evtrack live`` starts warm: the model and its kernels run once before the stream is touched."""

from __future__ import annotations

import socket

import numpy as np

from evtrack.cli import main
from evtrack.io.events import random_events
from evtrack.tracker.online import Tracker, load_tracker


def test_warm_up_leaves_no_trace_in_results_or_stats():
    ev = random_events(6_000, height=240, width=320, duration_us=20_000, seed=4)
    fresh, warmed = load_tracker(None), load_tracker(None)
    assert warmed.warm_up() > 0
    assert warmed.box is None and warmed.stats()["frames"] == 0
    for tr in (fresh, warmed):
        tr.init(ev, (120, 80, 80, 80), sensor_size=(240, 320), t0_us=0, t1_us=20_000)
    for _ in range(3):
        a = fresh.update(ev, t0_us=0, t1_us=20_000)
        b = warmed.update(ev, t0_us=0, t1_us=20_000)
        np.testing.assert_array_equal(a.box, b.box)
        assert a.score == b.score
    assert fresh.stats()["frames"] == warmed.stats()["frames"] == 3


def test_live_warms_the_tracker_up_before_connecting(tmp_path, capsys, monkeypatch):
    """The first update used to take ~1.5 s inside the stream, so short streams lost most windows."""
    calls = []
    original = Tracker.warm_up

    def spy(self, *a, **k):
        calls.append("warm_up")
        return original(self, *a, **k)

    monkeypatch.setattr(Tracker, "warm_up", spy)
    with socket.socket() as s:  # a port nobody listens on: the connection fails at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rc = main(["live", "--source", f"tcp://127.0.0.1:{port}", "--init", "10,10,20,20", "--retries", "0",
               "--connect-timeout", "1", "--out", str(tmp_path / "o.jsonl")])
    assert rc == 2
    err = capsys.readouterr().err.splitlines()
    assert calls == ["warm_up"]
    ready = next(i for i, ln in enumerate(err) if "tracker ready: loaded and warmed up in" in ln)
    connecting = next(i for i, ln in enumerate(err) if "connecting to" in ln)
    assert ready < connecting


def test_live_checks_its_output_paths_before_loading_or_connecting(tmp_path, capsys):
    """--video used to be opened only once the first packet arrived (after loading and connecting)."""
    bad = tmp_path / "missing" / "v.mp4"
    rc = main(["live", "--source", "tcp://127.0.0.1:1", "--init", "1,1,5,5", "--video", str(bad)])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.strip() == f"evtrack live: error: --video {bad}: directory {bad.parent} does not exist (create it first)"
