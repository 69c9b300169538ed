"""Outputs: JSON lines (atomic file), overlay video, the dv BoundingBox stream read back by dv."""

from __future__ import annotations

import json
import socket
import time

import numpy as np
import pytest

from evtrack.errors import UserError
from evtrack.live.outputs import BoxStreamOutput, JsonLinesOutput, OverlayWindow, VideoOutput, render_overlay
from evtrack.live.stream_tracker import StreamResult


def result(i: int = 0, box=(10.0, 20.0, 30.0, 40.0)) -> StreamResult:
    return StreamResult(index=i, kind="update", t0_us=i * 20_000, t1_us=(i + 1) * 20_000, box=box, score=0.75,
                        n_events=5, latency_ms=3.0, compute_ms=2.0)


def events(n: int = 50) -> np.ndarray:
    from evtrack.io.events import EVENT_DTYPE

    ev = np.zeros(n, EVENT_DTYPE)
    ev["x"] = np.arange(n) % 100
    ev["y"] = 5
    ev["p"] = np.arange(n) % 2
    return ev


def test_json_lines_file_appears_only_when_closed(tmp_path):
    path = tmp_path / "out.jsonl"
    out = JsonLinesOutput(path)
    out.write(result(0))
    out.write_obj({"type": "status", "status": "connected"})
    assert not path.exists()  # still under its temporary name
    out.close()
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert lines[0]["box"] == [10.0, 20.0, 30.0, 40.0] and lines[0]["score"] == 0.75
    assert lines[1]["status"] == "connected"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_json_lines_failed_run_leaves_nothing(tmp_path):
    out = JsonLinesOutput(tmp_path / "out.jsonl")
    out.write(result(0))
    out.close(ok=False)
    assert list(tmp_path.iterdir()) == []


def test_overlay_draws_events_and_box():
    img = render_overlay(events(), (60, 120), result(box=(10.0, 20.0, 30.0, 30.0)))
    assert img.shape == (60, 120, 3)
    from evtrack.tracker.overlay import PRED_COLOUR, event_image

    off_on = event_image(events(), (60, 120))[5, :2]  # the offline overlay's colours: one renderer
    assert tuple(img[5, 0]) == tuple(off_on[0]) and tuple(img[5, 1]) == tuple(off_on[1])
    assert tuple(img[5, 0]) != tuple(img[5, 1]) != tuple(img[30, 60])  # OFF, ON, background differ
    assert tuple(img[20, 25]) == PRED_COLOUR  # top edge of the box


def test_video_output_writes_a_readable_file(tmp_path):
    import cv2

    path = tmp_path / "o.mp4"
    v = VideoOutput(path, (60, 120), fps=50)
    for i in range(5):
        v.write(result(i), events())
    v.close()
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 5


def test_show_without_display_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(UserError, match="--video"):
        OverlayWindow((60, 120))


def test_box_stream_is_readable_by_dv(tmp_path):
    """A raw client receives the BBOX header and a packet carrying our coordinates."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = BoxStreamOutput(port, sensor_size=(260, 346))
    c = socket.create_connection(("127.0.0.1", port), timeout=5)
    deadline = time.time() + 5
    data = b""
    c.settimeout(0.2)
    while time.time() < deadline and b"BBOX" not in data[800:]:
        out.write(result(0, box=(11.5, 22.5, 30.0, 40.0)))
        try:
            data += c.recv(65536)
        except TimeoutError:
            pass
    c.close()
    out.close()
    assert b"BBOX" in data[:1000]  # header type identifier
    assert b"target" in data
    assert np.float32(41.5).tobytes() in data and np.float32(62.5).tobytes() in data  # bottom-right x, y


def test_box_port_in_use_is_a_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        with pytest.raises(UserError, match=f"--boxes-port: cannot serve on 127.0.0.1:{port}"):
            BoxStreamOutput(port)
