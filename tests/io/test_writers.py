"""Writers: round trips (events and frame timestamps), streaming, atomicity."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from evtrack.errors import UserError
from evtrack.io import HDF5EventWriter, open_events, write_aedat4, write_hdf5
from evtrack.io.events import random_events


def _frames(duration_us, period_us=25_000):
    return np.arange(period_us, duration_us, period_us, dtype=np.int64)


def test_hdf5_round_trip(tmp_path):
    ev = random_events(50_000, duration_us=1_000_000, seed=11)
    frames = _frames(1_000_000)
    path = write_hdf5(
        tmp_path / "r.h5", ev, sensor_size=(260, 346), frame_timestamps_us=frames, attrs={"name": "seq1"}
    )
    with open_events(path) as reader:
        info = reader.info
        assert (info.format, info.sensor_size, info.n_events) == ("hdf5", (260, 346), len(ev))
        assert (info.t_start_us, info.t_end_us) == (int(ev["t"][0]), int(ev["t"][-1]))
        assert info.streams == ("events", "frames")
        np.testing.assert_array_equal(info.frame_timestamps_us, frames)
        assert info.metadata["name"] == "seq1"
        np.testing.assert_array_equal(reader.read_all(), ev)
    with h5py.File(path) as f:  # layout documented in evtrack.io.hdf5
        ms = f["ms_to_idx"][()]
        origin = int(f["ms_to_idx"].attrs["origin_us"])
        assert f["events/t"].compression == "gzip" and f["events/t"].chunks is not None
    expected = np.searchsorted(ev["t"], origin + 1000 * np.arange(len(ms)), side="left")
    np.testing.assert_array_equal(ms, expected)
    assert ms[-1] == len(ev)


def test_hdf5_streaming_writer_matches_bulk(tmp_path):
    ev = random_events(30_000, duration_us=500_000, seed=12)
    with HDF5EventWriter(tmp_path / "s.h5", sensor_size=(260, 346)) as w:
        for s in range(0, len(ev), 777):
            w.write(ev[s : s + 777])
        w.write(ev[:0])
    assert w.n_events == len(ev)
    write_hdf5(tmp_path / "b.h5", ev, sensor_size=(260, 346))
    with h5py.File(tmp_path / "s.h5") as a, h5py.File(tmp_path / "b.h5") as b:
        np.testing.assert_array_equal(a["ms_to_idx"][()], b["ms_to_idx"][()])
    with open_events(tmp_path / "s.h5") as reader:
        np.testing.assert_array_equal(reader.read_all(), ev)


def test_hdf5_writer_is_atomic(tmp_path):
    ev = random_events(1_000, seed=13)
    target = tmp_path / "x.h5"
    with pytest.raises(RuntimeError):
        with HDF5EventWriter(target, sensor_size=(260, 346)) as w:
            w.write(ev)
            raise RuntimeError("crash in the middle")
    assert list(tmp_path.iterdir()) == []  # neither the final file nor a temp file is left
    # out-of-order input is refused and leaves nothing behind
    with pytest.raises(UserError, match="time order"):
        write_hdf5(target, ev[::-1], sensor_size=(260, 346))
    assert list(tmp_path.iterdir()) == []


def test_hdf5_writer_rejects_events_outside_sensor(tmp_path):
    ev = random_events(100, seed=14)
    with pytest.raises(UserError, match="outside the 100x50 sensor"):
        write_hdf5(tmp_path / "o.h5", ev, sensor_size=(50, 100))


@pytest.mark.parametrize("with_frames", [False, True])
def test_aedat4_round_trip(tmp_path, with_frames):
    ev = random_events(20_000, duration_us=400_000, seed=15)
    frames = _frames(400_000) if with_frames else None
    path = write_aedat4(tmp_path / "r.aedat4", ev, sensor_size=(260, 346), frame_timestamps_us=frames)
    assert [p.name for p in tmp_path.iterdir()] == ["r.aedat4"]
    with open_events(path) as reader:
        info = reader.info
        assert (info.format, info.sensor_size) == ("aedat4", (260, 346))
        assert (info.t_start_us, info.t_end_us) == (int(ev["t"][0]), int(ev["t"][-1]))
        if with_frames:
            assert info.streams == ("events", "frames")
            np.testing.assert_array_equal(info.frame_timestamps_us, frames)
        else:
            assert info.streams == ("events",) and info.frame_timestamps_us is None
        np.testing.assert_array_equal(reader.read_all(), ev)


def test_aedat4_requires_suffix(tmp_path):
    with pytest.raises(UserError, match=".aedat4"):
        write_aedat4(tmp_path / "x.h5", random_events(10), sensor_size=(260, 346))


def test_cli_convert_and_info(tmp_path, capsys):
    import json

    from evtrack.cli import main

    ev = random_events(5_000, duration_us=200_000, seed=16)
    src = tmp_path / "in.txt"
    np.savetxt(src, np.c_[ev["t"] / 1e6, ev["x"], ev["y"], ev["p"]], fmt=["%.6f", "%d", "%d", "%d"])
    out = tmp_path / "out.h5"
    assert main(["convert", str(src), str(out), "--sensor-size", "260", "346", "--no-progress"]) == 0
    assert main(["convert", str(src), str(out), "--no-progress"]) == 2  # exists, no --force
    assert main(["info", "--json", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["format"] == "hdf5" and summary["n_events"] == len(ev)
    assert summary["sensor_size_hw"] == [260, 346]
    assert summary["t_start_us"] == int(ev["t"][0]) and summary["t_end_us"] == int(ev["t"][-1])
    aed = tmp_path / "out.aedat4"
    assert main(["convert", str(out), str(aed), "--no-progress"]) == 0
    with open_events(aed) as reader:
        np.testing.assert_array_equal(reader.read_all(), ev)
    assert main(["info", str(tmp_path / "nope.h5")]) == 2


def test_hdf5_writer_copies_reused_buffers_and_sets_frames_late(tmp_path):
    """A producer that refills one array between writes (a simulator) must not corrupt the file."""
    ev = random_events(3_000, duration_us=300_000, seed=17)
    buf = np.empty(100, dtype=ev.dtype)
    with HDF5EventWriter(tmp_path / "reuse.h5", sensor_size=(260, 346)) as w:
        for s in range(0, len(ev), 100):
            buf[:] = ev[s : s + 100]
            w.write(buf)
        w.set_frame_timestamps(np.array([100_000, 200_000]))
    with open_events(tmp_path / "reuse.h5") as reader:
        np.testing.assert_array_equal(reader.read_all(), ev)
        np.testing.assert_array_equal(reader.info.frame_timestamps_us, [100_000, 200_000])


@pytest.mark.parametrize("name", ["tonic_sample.aedat4", "evt3_sample.raw"])
def test_cli_convert_real_files(shared_data, tmp_path, name, capsys):
    from evtrack.cli import main

    src = shared_data / "events" / name
    out = tmp_path / "conv.h5"
    assert main(["convert", str(src), str(out), "--no-progress"]) == 0
    with open_events(src) as a, open_events(out) as b:
        assert b.info.sensor_size == a.info.sensor_size
        assert b.info.metadata["source_format"] == a.info.format
        np.testing.assert_array_equal(b.read_all(), a.read_all())
    assert main(["info", str(src)]) == 0
    text = capsys.readouterr().out
    assert "events" in text and "unknown" not in text  # count and range measured by the scan


def test_cli_convert_measures_missing_sensor_size(tmp_path, capsys):
    from evtrack.cli import main

    ev = random_events(2_000, height=100, width=120, seed=18)
    ev["x"][0], ev["y"][1] = 119, 99  # the largest coordinates define the measured sensor
    src = tmp_path / "cols.npz"
    np.savez(src, t=ev["t"], x=ev["x"], y=ev["y"], p=ev["p"])
    out = tmp_path / "m.h5"
    assert main(["convert", str(src), str(out), "--no-progress"]) == 0
    assert "does not state its sensor size; using 120x100" in capsys.readouterr().err
    with open_events(out) as reader:
        assert reader.info.sensor_size == (100, 120)
        np.testing.assert_array_equal(reader.read_all(), ev)


def test_aedat4_chunks_are_bounded_views_and_rereadable(tmp_path):
    """dv packets are handed out zero-copy (cut when longer than chunk_events), the
    first iteration (which reuses the recording opened for the metadata) and later ones agree, and
    an abandoned iteration does not disturb the next."""
    ev = random_events(50_000, duration_us=500_000, seed=16)
    frames = _frames(500_000)
    path = write_aedat4(tmp_path / "c.aedat4", ev, sensor_size=(260, 346), frame_timestamps_us=frames)
    for chunk_events in (3_000, 25_000, 1 << 20):
        with open_events(path, chunk_events=chunk_events) as reader:
            first = list(reader.chunks())
            assert all(0 < len(c) <= chunk_events for c in first)
            np.testing.assert_array_equal(np.concatenate(first), ev)
            for _ in reader.chunks():
                break  # abandoned
            np.testing.assert_array_equal(reader.read_all(), ev)
            edges = np.arange(0, 500_001, 33_333)
            for got, t0, t1 in zip(reader.slices(edges), edges[:-1], edges[1:], strict=True):
                np.testing.assert_array_equal(got, ev[(ev["t"] >= t0) & (ev["t"] < t1)])


def test_folder_lock_admits_one_run_at_a_time(tmp_path):
    from evtrack.io.atomic import folder_lock

    with folder_lock(tmp_path, "make-dataset") as lock:
        with pytest.raises(UserError, match=rf"{tmp_path}: another make-dataset run is writing"):
            with folder_lock(tmp_path, "make-dataset"):
                pass
        assert lock.read_bytes() == b""  # nothing run-specific in the folder
    with folder_lock(tmp_path, "make-dataset"):  # released with the first holder
        pass


def test_atomic_write_text_replaces_whole_or_not_at_all(tmp_path, monkeypatch):
    from pathlib import Path

    from evtrack.io import atomic

    out = tmp_path / "summary.json"
    atomic.write_text(out, '{"auc": 1}')
    assert out.read_text() == '{"auc": 1}'

    def broken(self, text):  # a write that dies half-way (disk full, Ctrl-C)
        Path.open(self, "w").write(text[:3])
        raise OSError("disk full")

    monkeypatch.setattr(Path, "write_text", broken)
    with pytest.raises(OSError, match="disk full"):
        atomic.write_text(out, '{"auc": 2}')
    monkeypatch.undo()
    assert out.read_text() == '{"auc": 1}'  # the old file is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # no temporary left behind


@pytest.fixture
def umask_027():
    import os

    old = os.umask(0o027)
    yield 0o640  # what a plain open() gives a new file under this umask
    os.umask(old)


def test_atomic_writers_give_the_umask_mode(tmp_path, umask_027):
    """Every writer goes through evtrack.io.atomic: files get open()'s mode, not mkstemp's 0600 or a fixed 0644."""
    from evtrack.io import atomic
    from evtrack.metrics.results import write_boxes
    from evtrack.network.checkpoint import save_checkpoint
    from evtrack.network.registry import create_model
    from evtrack.tracker.overlay import write_contact_sheet

    ev = random_events(100, height=40, width=50, seed=3)
    paths = [
        atomic.write_text(tmp_path / "a.json", "{}"),
        save_checkpoint(tmp_path / "c.pt", create_model("tiny")),
        write_contact_sheet(tmp_path / "s.png", [(ev, [], "x")], (40, 50)),
    ]
    write_boxes(tmp_path / "b.txt", np.ones((2, 4)))
    paths.append(tmp_path / "b.txt")
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in paths} == {p.name: oct(umask_027) for p in paths}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)  # no temporaries left
