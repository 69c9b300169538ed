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
from evtrack.live.network import (
    EventPublisher,
    NetworkEventSource,
    SourceConfig,
    parse_tcp_url,
    wait_listening,
)
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
    """``evtrack serve`` in a child process; --client-timeout so an orphaned one exits by itself."""
    cmd = [sys.executable, "-m", "evtrack.cli", "serve", str(path), "--port", str(port), "--sensor-size", "260,346",
           "--quiet", "--linger", "5", "--client-timeout", "60", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def stop(proc: subprocess.Popen | None) -> None:
    """Kill and reap a child process (finally blocks)."""
    if proc is None:
        return
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)
    if proc.stderr is not None:
        proc.stderr.close()


def listening_address(port: int) -> str:
    """The local address a listening TCP socket on ``port`` is bound to (from /proc/net/tcp)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as fh:
            next(fh)
            for line in fh:
                f = line.split()
                addr, _, hexport = f[1].rpartition(":")
                if f[3] == "0A" and int(hexport, 16) == port:
                    if len(addr) == 8:
                        return socket.inet_ntoa(bytes.fromhex(addr)[::-1])
                    return "ipv6:" + addr
    raise AssertionError(f"nothing listens on port {port}")


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
        log = server.stderr.read()
        assert "clients drained: yes" in log and f"done: {n} events" in log
    finally:
        stop(server)


def test_dropped_connection_is_reported_and_retried(recording):
    """The sender is killed mid-stream and comes back later: the drop and every retry (with a growing
    back-off) are reported, the StreamTracker fed from the source keeps running across the gap, and
    the second stream arrives complete."""
    from evtrack.live.stream_tracker import StreamConfig, StreamTracker
    from evtrack.tracker.baselines import CentroidTracker

    path, n = recording
    port = free_port()
    servers = [start_server(path, port, "--loop")]
    statuses = []

    def on_status(s):
        statuses.append(s)
        # Restart the sender only after two failed attempts, so the back-off is exercised.
        if s.kind == "dropped" and s.attempt == 2 and len(servers) == 1:
            servers.append(start_server(path, port))

    results = []
    try:
        wait_listening(port)
        cfg = SourceConfig(connect_timeout_s=3.0, idle_timeout_s=5.0, max_retries=20, backoff_initial_s=0.2,
                           backoff_max_s=0.8)
        src = NetworkEventSource("127.0.0.1", port, config=cfg, on_status=on_status)
        st = StreamTracker(CentroidTracker(), init_box=(150, 110, 40, 40), sensor_size=(260, 346),
                           config=StreamConfig(window_us=20_000, skip_when_behind=False), on_result=results.append)
        received = 0
        windows_before_drop = None
        for packet in src:
            st.push(packet)
            received += len(packet)
            if windows_before_drop is None and received > 50_000:
                servers[0].kill()  # mid-stream: the sender vanishes without an end-of-stream marker
                servers[0].wait(timeout=10)
                windows_before_drop = len(results)
        st.close()
        kinds = [s.kind for s in statuses]
        assert kinds.count("connected") == 2 and kinds[-1] == "eos", kinds
        dropped = [s for s in statuses if s.kind == "dropped"]
        assert [s.attempt for s in dropped[:2]] == [1, 2]
        assert [s.delay_s for s in dropped[:3]] == [0.2, 0.4, 0.8][: len(dropped[:3])]  # exponential back-off
        assert src.reconnects == len(dropped) >= 2
        assert src.eos_total == n and src.session_events == n  # the second stream arrived complete
        assert src.received_events == received > n
        # The tracker ran on both sides of the gap and lost nothing silently.
        assert st.error is None and windows_before_drop > 0 and len(results) > windows_before_drop + 10
        s = st.stats()
        assert s["processed_events"] + s["dropped_events"] + s["late_events"] == received
    finally:
        for server in servers:
            stop(server)


@pytest.fixture
def raw_server():
    """Factory: a one-shot TCP server that sends ``payload`` (then optionally closes) and otherwise
    keeps the connection open until the test ends."""
    done = threading.Event()
    threads = []

    def make(payload: bytes, close_after: bool = False) -> int:
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        srv.settimeout(30)

        def run():
            try:
                c, _ = srv.accept()
                with c:
                    c.sendall(payload)
                    if not close_after:
                        done.wait(30)
            except OSError:
                pass
            finally:
                srv.close()

        t = threading.Thread(target=run, daemon=True)
        t.start()
        threads.append(t)
        return srv.getsockname()[1]

    yield make
    done.set()
    for t in threads:
        t.join(timeout=5)


@pytest.fixture(scope="module")
def dv_header() -> bytes:
    """The exact header bytes a real dv NetworkWriter sends (captured from one)."""
    port = free_port()
    pub = EventPublisher("127.0.0.1", port, (260, 346))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        data = b""
        while len(data) < 4 or len(data) < 4 + struct.unpack_from("<I", data)[0]:
            data += c.recv(65536)
    pub.close()  # the client is gone: destroyed (or parked, never a destructor deadlock)
    size = struct.unpack_from("<I", data)[0]
    return data[: 4 + size]


def evts_packet(body: bytes) -> bytes:
    """A packet whose framing is valid (stream 0, size, 'EVTS' identifier) around ``body``."""
    payload = struct.pack("<II", len(body) + 12, 16) + b"EVTS" + b"\0" * 4 + body
    return struct.pack("<ii", 0, len(payload)) + payload


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
def test_hostile_server_is_rejected_quickly(case, match, dv_header, raw_server):
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


@pytest.mark.parametrize("case", ["garbage_body", "truncated"])
def test_broken_packets_end_in_a_clear_error(case, dv_header, raw_server):
    """Packets that pass the framing check but break dv's reader (garbage flatbuffer body: the
    reader process may crash) or a stream cut mid-packet: a clear error, no crash, no hang."""
    rng = np.random.default_rng(2)
    if case == "garbage_body":
        payload = dv_header + b"".join(evts_packet(rng.bytes(4096)) for _ in range(20))
    else:
        payload = dv_header + evts_packet(b"\0" * 64)[:40]
    port = raw_server(payload, close_after=True)
    start = time.monotonic()
    with pytest.raises(UserError, match=rf"tcp://127.0.0.1:{port}: .*gave up after 1 attempts") as info:
        list(NetworkEventSource("127.0.0.1", port, config=FAST))
    assert "Traceback" not in str(info.value)
    assert time.monotonic() - start < 30


def test_silent_server_times_out_with_a_clear_error(raw_server):
    port = raw_server(b"")
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
        # never a bare `del`: destroying a writer that still counts a client deadlocks dv (GIL held)
        net.release_writer(writer)


def test_frame_checker_accepts_split_real_stream(dv_header):
    pkt = struct.pack("<ii", 0, 24) + struct.pack("<II", 20, 16) + b"EVTS" + b"\0" * 12
    stream = dv_header + pkt + pkt
    fc = FrameChecker("test")
    out = b"".join(fc.feed(stream[i:i + 5]) for i in range(0, len(stream), 5))
    assert out == stream and fc.packets == 2


def test_no_camera_is_a_clear_error():
    from evtrack.live.camera import discover_cameras, select_camera

    if discover_cameras():
        pytest.skip("a camera is attached")
    with pytest.raises(UserError, match="no iniVation camera found: dv_processing camera discovery listed none"):
        select_camera(None)
    for cmd in (["--camera"], ["--camera", "DXA00093"]):
        r = subprocess.run([sys.executable, "-m", "evtrack.cli", "live", *cmd, "--init", "1,2,3,4",
                            "--tracker", "centroid"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 2, r.stderr
        assert "no iniVation camera found" in r.stderr
        for trace in ("Traceback", "terminate called", "what()", "Aborted", "Segmentation"):
            assert trace not in r.stderr


def test_wrong_camera_serial_lists_what_was_found():
    from evtrack.live.camera import CameraInfo, select_camera

    found = [CameraInfo("DXA00093", "DVXPLORER"), CameraInfo("00000499", "DAVIS")]
    assert select_camera(None, found) == found[0]
    assert select_camera("00000499", found) == found[1]
    with pytest.raises(UserError, match=r"camera '123' not found; cameras found: DVXPLORER DXA00093, DAVIS 00000499"):
        select_camera("123", found)


def test_servers_bind_loopback_by_default(recording):
    from evtrack.live.outputs import BoxStreamOutput

    path, _ = recording
    port = free_port()
    server = start_server(path, port)
    try:
        wait_listening(port)
        assert listening_address(port) == "127.0.0.1"
    finally:
        stop(server)
    port = free_port()
    out = BoxStreamOutput(port, sensor_size=(260, 346))
    try:
        assert listening_address(port) == "127.0.0.1"
    finally:
        out.close()


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
        stop(server)


def test_real_aedat4_recording_end_to_end(shared_data):
    """evtrack serve on a real DVXplorer recording; the client gets exactly the file's events."""
    from evtrack.io import open_events

    path = shared_data / "events" / "tonic_sample.aedat4"
    with open_events(path) as reader:
        ref = reader.read_all()
        sensor = reader.info.sensor_size
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "evtrack.cli", "serve", str(path), "--port", str(port),
                               "--quiet", "--speed", "0", "--linger", "5", "--client-timeout", "60"],
                              stderr=subprocess.PIPE, text=True)
    try:
        wait_listening(port)
        src = NetworkEventSource("127.0.0.1", port, config=FAST)
        got = np.concatenate(list(src))
        assert src.sensor_size == sensor
        assert len(got) == len(ref) == src.eos_total == 111_954
        assert np.array_equal(got, ref)
    finally:
        stop(server)


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
        stop(server)


def test_events_outside_the_sensor_are_dropped_and_counted():
    """A sender whose events lie outside the sensor it announced: they never reach the tracker."""
    ev = random_events(20_000, height=300, width=400, duration_us=200_000, seed=5)
    inside = (ev["x"] < 346) & (ev["y"] < 260)
    port = free_port()
    pub = EventPublisher("127.0.0.1", port, (260, 346))
    failures = []

    def send():
        try:
            if not pub.wait_for_client(timeout_s=30):
                failures.append("no client")
                return
            for i in range(0, len(ev), 1000):
                pub.publish(ev[i:i + 1000])
            pub.finish(linger_s=10)
        except Exception as exc:  # noqa: BLE001 - reported by the test thread
            failures.append(exc)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    statuses = []
    try:
        src = NetworkEventSource("127.0.0.1", port, config=FAST, on_status=statuses.append)
        got = np.concatenate(list(src))
    finally:
        sender.join(timeout=30)
        pub.close()
    assert not failures
    assert src.eos_total == src.received_events == len(ev)
    assert src.rejected_events == int((~inside).sum()) > 0
    assert np.array_equal(got, ev[inside])
    warnings = [s.message for s in statuses if s.kind == "warning"]
    assert len(warnings) == 1 and "outside the 346x260 sensor" in warnings[0]
