"""End-to-end dv network streams on 127.0.0.1: counts, end-of-stream, reconnect, hostile servers."""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from evtrack.errors import FormatError, UserError
from evtrack.io.events import random_events
from evtrack.live import network as net
from evtrack.live.network import EventPublisher, NetworkEventSource, SourceConfig, parse_tcp_url
from evtrack.live.protocol import FrameChecker, eos_marker, split_eos

FAST = SourceConfig(connect_timeout_s=3.0, stall_timeout_s=3.0, idle_timeout_s=5.0, max_retries=0,
                    backoff_initial_s=0.2, backoff_max_s=0.5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def recording(tmp_path) -> tuple[Path, int]:
    ev = random_events(200_000, duration_us=1_500_000, seed=3)
    path = tmp_path / "rec.npy"
    np.save(path, ev)
    return path, len(ev)


def start_server(path: Path, port: int, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "evtrack.cli", "serve", str(path), "--port", str(port), "--sensor-size", "260,346",
           "--quiet", "--linger", "5", *extra]
    return subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)


def wait_listening(port: int, timeout_s: float = 20.0) -> None:
    net.wait_listening(port, timeout_s=timeout_s)


def test_eos_marker_roundtrip_and_no_false_positive():
    ev = random_events(1000)
    marked = np.concatenate([ev, eos_marker(int(ev["t"][-1]), 123_456_789_012)])
    body, total = split_eos(marked)
    assert total == 123_456_789_012 and len(body) == len(ev)
    assert split_eos(ev) == (ev, None) or split_eos(ev)[1] is None


def test_parse_tcp_url():
    assert parse_tcp_url("tcp://127.0.0.1:7777") == ("127.0.0.1", 7777)
    with pytest.raises(UserError, match="tcp://HOST:PORT"):
        parse_tcp_url("tcp://localhost")


def test_every_event_arrives_with_the_eos_handshake(recording):
    """Unthrottled replay (1500 packets in a burst, more than dv's 1000-packet reader queue)."""
    path, n = recording
    port = free_port()
    server = start_server(path, port, "--speed", "0")
    try:
        wait_listening(port)
        statuses = []
        src = NetworkEventSource("127.0.0.1", port, config=FAST, on_status=statuses.append)
        packets = list(src)
        got = np.concatenate(packets)
        assert src.eos_total == n and src.received_events == n and len(got) == n
        ref = np.load(path)
        assert np.array_equal(got["t"], ref["t"]) and np.array_equal(got["x"], ref["x"])
        assert np.array_equal(got["p"], ref["p"])
        assert src.sensor_size == (260, 346)
        assert [s.kind for s in statuses][-1] == "eos"
        assert server.wait(timeout=20) == 0
        assert "clients drained: yes" in server.stderr.read()
    finally:
        server.kill()


def test_dropped_connection_is_reported_and_retried(recording):
    path, n = recording
    port = free_port()
    first = start_server(path, port, "--loop")
    second = None
    statuses = []
    try:
        wait_listening(port)
        cfg = SourceConfig(connect_timeout_s=3.0, idle_timeout_s=5.0, max_retries=20, backoff_initial_s=0.2,
                           backoff_max_s=0.5)
        src = NetworkEventSource("127.0.0.1", port, config=cfg, on_status=statuses.append)
        received = 0
        for packet in src:
            received += len(packet)
            if first.poll() is None and received > 50_000:
                first.kill()  # mid-stream: the sender vanishes without an end-of-stream marker
                first.wait()
                second = start_server(path, port)
        kinds = [s.kind for s in statuses]
        assert "dropped" in kinds and kinds.count("connected") == 2 and kinds[-1] == "eos"
        assert src.reconnects >= 1
        assert src.eos_total == n  # the second server's whole stream arrived after the reconnect
        assert received > n
    finally:
        first.kill()
        if second is not None:
            second.kill()


def raw_server(payload: bytes, hold_s: float = 10.0) -> int:
    """A thread that accepts one client, sends ``payload`` and keeps the socket open."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def run():
        srv.settimeout(30)
        try:
            c, _ = srv.accept()
            c.sendall(payload)
            time.sleep(hold_s)
            c.close()
        except OSError:
            pass
        finally:
            srv.close()

    threading.Thread(target=run, daemon=True).start()
    return srv.getsockname()[1]


@pytest.fixture(scope="module")
def dv_header() -> bytes:
    """The exact header bytes a real dv NetworkWriter sends (captured from one)."""
    port = free_port()
    pub = EventPublisher("127.0.0.1", port, (260, 346))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        data = b""
        while len(data) < 4 or len(data) < 4 + struct.unpack_from("<I", data)[0]:
            data += c.recv(65536)
    pub.close()
    size = struct.unpack_from("<I", data)[0]
    return data[: 4 + size]


@pytest.mark.parametrize(
    "case, match",
    [
        ("random", "expected b'IOHE'|header size"),
        ("huge_header", "header size"),
        ("huge_packet", "packet size 2147483647"),
        ("bad_stream", "packet stream id 7"),
        ("negative_size", "packet size -5"),
        ("wrong_packet_type", "packet type b'TRIG'"),
    ],
)
def test_hostile_server_is_rejected_quickly(case, match, dv_header):
    rng = np.random.default_rng(1)
    payload = {
        "random": b"\x10\x00\x00\x00" + rng.bytes(5000),
        "huge_header": struct.pack("<I", 2**31) + b"x" * 100,
        "huge_packet": dv_header + struct.pack("<ii", 0, 2**31 - 1) + b"\0" * 64,
        "bad_stream": dv_header + struct.pack("<ii", 7, 100) + b"\0" * 100,
        "negative_size": dv_header + struct.pack("<ii", 0, -5) + b"\0" * 100,
        "wrong_packet_type": dv_header + struct.pack("<ii", 0, 64) + b"\0" * 8 + b"TRIG" + b"\0" * 52,
    }[case]
    port = raw_server(payload)
    start = time.monotonic()
    with pytest.raises(FormatError, match=match) as info:
        list(NetworkEventSource("127.0.0.1", port, config=FAST))
    assert f"tcp://127.0.0.1:{port}" in str(info.value)
    assert time.monotonic() - start < 15


def test_silent_server_times_out_with_a_clear_error():
    port = raw_server(b"", hold_s=10)
    with pytest.raises(UserError, match="no dv stream header within"):
        list(NetworkEventSource("127.0.0.1", port, config=FAST))


def test_wrong_stream_type_is_rejected():
    import dv_processing as dv

    port = free_port()
    writer = dv.io.NetworkWriter("127.0.0.1", port, dv.io.Stream.TriggerStream(0, "triggers", "x"))
    try:
        with pytest.raises(FormatError, match=r"carries \['TRIG'\] packets, expected events"):
            list(NetworkEventSource("127.0.0.1", port, config=FAST))
    finally:
        del writer


def test_frame_checker_accepts_split_real_stream(dv_header):
    pkt = struct.pack("<ii", 0, 24) + struct.pack("<II", 20, 16) + b"EVTS" + b"\0" * 12
    stream = dv_header + pkt + pkt
    fc = FrameChecker("test")
    out = b"".join(fc.feed(stream[i:i + 5]) for i in range(0, len(stream), 5))
    assert out == stream and fc.packets == 2


def test_no_camera_is_a_clear_error(recording):
    from evtrack.live.camera import discover_cameras, select_camera

    if discover_cameras():
        pytest.skip("a camera is attached")
    with pytest.raises(UserError, match="no iniVation camera found"):
        select_camera(None)
    r = subprocess.run([sys.executable, "-m", "evtrack.cli", "live", "--camera", "--init", "1,2,3,4"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "no iniVation camera found" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_cli_live_over_replay(recording, tmp_path):
    path, n = recording
    port = free_port()
    server = start_server(path, port)
    out = tmp_path / "boxes.jsonl"
    try:
        wait_listening(port)
        r = subprocess.run(
            [sys.executable, "-m", "evtrack.cli", "live", "--source", f"tcp://127.0.0.1:{port}", "--init",
             "100,100,40,40", "--tracker", "centroid", "--out", str(out), "--retries", "0"],
            capture_output=True, text=True, timeout=60, env={**os.environ, "DISPLAY": ""},
        )
        assert r.returncode == 0, r.stderr
        lines = [json.loads(x) for x in out.read_text().splitlines()]
        boxes = [x for x in lines if x["type"] == "box"]
        summary = lines[-1]
        assert summary["type"] == "summary"
        assert summary["received_events"] == summary["sent_events"] == n
        assert boxes[0]["kind"] == "init" and boxes[0]["box"] == [100.0, 100.0, 40.0, 40.0]
        # every event is either tracked or reported as dropped: nothing vanishes silently
        assert summary["processed_events"] + summary["dropped_events"] + summary["late_events"] == n
        assert len(boxes) + summary["dropped_windows"] == 75  # 1.5 s in 20 ms windows
    finally:
        server.kill()


def test_real_aedat4_recording_end_to_end(shared_data):
    """evtrack serve on a real DVXplorer recording; the client gets exactly the file's events."""
    from evtrack.io import open_events

    path = shared_data / "events" / "tonic_sample.aedat4"
    with open_events(path) as reader:
        ref = reader.read_all()
        sensor = reader.info.sensor_size
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "evtrack.cli", "serve", str(path), "--port", str(port),
                               "--quiet", "--speed", "0", "--linger", "5"], stderr=subprocess.PIPE, text=True)
    try:
        wait_listening(port)
        src = NetworkEventSource("127.0.0.1", port, config=FAST)
        got = np.concatenate(list(src))
        assert src.sensor_size == sensor
        assert len(got) == len(ref) == src.eos_total == 111_954
        assert np.array_equal(got, ref)
    finally:
        server.kill()


def test_garbage_from_a_client_does_not_disturb_the_server(recording):
    path, n = recording
    port = free_port()
    server = start_server(path, port, "--speed", "0")
    try:
        wait_listening(port)  # this probe connection already came and went
        rogue = socket.create_connection(("127.0.0.1", port), timeout=5)
        rogue.sendall(np.random.default_rng(0).bytes(100_000))
        src = NetworkEventSource("127.0.0.1", port, config=FAST)
        total = sum(len(p) for p in src)
        rogue.close()
        assert total == src.eos_total == n
    finally:
        server.kill()
