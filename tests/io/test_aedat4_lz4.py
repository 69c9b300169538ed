"""Corrupt LZ4 data inside AEDAT4 packets: a FormatError naming the packet, never dv's endless loop."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from evtrack.errors import FormatError
from evtrack.io import open_events
from evtrack.io.lz4check import aedat4_streams, check_aedat4_lz4, lz4_frame_error


def _packets(data: bytes, start: int) -> list[tuple[int, int, int]]:
    """(offset, stream id, size) of each packet, as the AEDAT4 layout describes them."""
    out, pos = [], start
    while pos + 8 <= len(data):
        sid = int.from_bytes(data[pos:pos + 4], "little")
        size = int.from_bytes(data[pos + 4:pos + 8], "little", signed=True)
        if size <= 0 or pos + 8 + size > len(data):
            break
        out.append((pos, sid, size))
        pos += 8 + size
    return out


@pytest.fixture(scope="module")
def sample(shared_data):
    path = shared_data / "events" / "tonic_sample.aedat4"
    data = path.read_bytes()
    start, streams = aedat4_streams(path)
    return path, data, start, streams


def test_header_lists_the_streams(sample):
    _, _, start, streams = sample
    assert streams[0] == ("events", "LZ4") and start > 18
    assert {name for name, _ in streams.values()} >= {"events", "imu", "triggers"}


def test_every_real_packet_passes(sample):
    path, data, start, _ = sample
    packets = _packets(data, start)
    assert len(packets) == 118  # 60 of them events (README: 111,954 events)
    for pos, _, size in packets:
        assert lz4_frame_error(np.frombuffer(data[pos + 8:pos + 8 + size], np.uint8))[0] == 0
    check_aedat4_lz4(path)  # the whole file, data table included


def test_frame_errors_are_named(sample):
    _, data, start, _ = sample
    pos, _, size = next(p for p in _packets(data, start) if p[1] == 0)
    frame = np.frombuffer(data[pos + 8:pos + 8 + size], np.uint8).copy()
    assert lz4_frame_error(frame[:5])[2] == "frame shorter than its header"
    bad = frame.copy()
    bad[0] ^= 0xFF
    assert lz4_frame_error(bad)[2] == "bad LZ4 frame magic number"
    assert lz4_frame_error(frame[: size // 2])[0] in (6, 12)  # cut inside a block / before the end mark


def test_corrupt_packet_is_a_format_error_naming_it(sample, tmp_path):
    path, data, start, _ = sample
    pos, sid, size = [p for p in _packets(data, start) if p[1] == 0][30]
    bad = bytearray(data)
    bad[pos + 8 + size // 2: pos + 8 + size // 2 + 8] = np.random.default_rng(0).integers(0, 256, 8, np.uint8).tobytes()
    out = tmp_path / "bad.aedat4"
    out.write_bytes(bytes(bad))
    with pytest.raises(FormatError, match=rf"bad\.aedat4: the packet at byte offset {pos} \(stream {sid}\) is corrupt"):
        open_events(out)


@pytest.mark.parametrize("threads", [1, 2, 7])
def test_first_corrupt_packet_is_named_whatever_the_threads(sample, tmp_path, threads, monkeypatch):
    """The frames are checked in ranges by several threads; the error is still the file's first."""
    from evtrack.io import lz4check

    monkeypatch.setattr(lz4check, "_MIN_BYTES_PER_THREAD", 1)  # split even this 1 MB file
    seen = []
    real = lz4check._first_frame_error
    monkeypatch.setattr(lz4check, "_first_frame_error", lambda *a: seen.append(a[-2:]) or real(*a))
    path, data, start, _ = sample
    events = [p for p in _packets(data, start) if p[1] == 0]
    bad = bytearray(data)
    for pos, _, size in (events[20], events[50]):  # two corrupt packets, in different ranges
        bad[pos + 8 + 7: pos + 8 + size] = b"\xff" * (size - 7)  # an endless literal run
    out = tmp_path / "bad.aedat4"
    out.write_bytes(bytes(bad))
    with pytest.raises(FormatError, match=rf"packet at byte offset {events[20][0]} \(stream 0\)"):
        check_aedat4_lz4(out, threads=threads)
    assert len(seen) == threads  # one range per thread, together every frame once
    seen.sort()  # the threads record their ranges in any order
    assert seen[0][0] == 0 and all(a[1] == b[0] for a, b in zip(seen, seen[1:], strict=False))
    with pytest.raises(ValueError, match="threads must be >= 1"):
        check_aedat4_lz4(path, threads=0)


def test_random_corruptions_never_hang(sample, tmp_path):
    """Eight random bytes in random LZ4 packets (and in the data table): each read either succeeds
    or raises FormatError, in a child process with a deadline (dv's loop would hold the GIL)."""
    path, data, start, _ = sample
    packets = _packets(data, start)
    rng = np.random.default_rng(7)
    files = []
    for i in range(16):
        bad = bytearray(data)
        if i == 15:  # the data table, after the last packet
            lo, hi = packets[-1][0] + 8 + packets[-1][2] + 8, len(data) - 8
        else:
            pos, _, size = packets[int(rng.integers(len(packets)))]
            lo, hi = pos + 8 + 8, pos + 8 + size - 8
        at = int(rng.integers(lo, max(hi, lo + 1)))
        bad[at:at + 8] = rng.integers(0, 256, 8, np.uint8).tobytes()
        f = tmp_path / f"c{i}.aedat4"
        f.write_bytes(bytes(bad))
        files.append(str(f))
    script = textwrap.dedent("""
        import sys
        from evtrack.errors import FormatError
        from evtrack.io import open_events
        for f in sys.argv[1:]:
            try:
                with open_events(f) as r:
                    n = sum(len(c) for c in r.chunks())
                print("read", n, flush=True)
            except FormatError as e:
                print("error", str(e).splitlines()[0][:80], flush=True)
    """)
    done = subprocess.run([sys.executable, "-c", script, *files], capture_output=True, text=True, timeout=150)
    lines = done.stdout.splitlines()
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(lines) == len(files)
    assert sum(line.startswith("error") for line in lines) >= 8  # most random bytes break the LZ4 structure
