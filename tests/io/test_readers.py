"""Readers: every real sample file against its README table, and the windowing logic."""

from __future__ import annotations

import numpy as np
import pytest

from evtrack.io import EVENT_DTYPE, EventReader, RecordingInfo, open_events, write_hdf5
from evtrack.io.events import as_events, empty_events, random_events

# From /work/shared/data/events/README.md
REAL = {
    "tonic_sample.aedat4": ("aedat4", (240, 320), 111_954, 1605537493718345, 1605537494308262),
    "evt3_sample.raw": ("evt3", (720, 1280), 219_596, 11718656, 11772513),
    "evt2_sample.raw": ("evt2", (480, 640), 539_481, 1317888, 1367888),
    "faery_evt2.raw": ("evt2", (480, 640), 521_252, 913716224, 913812095),
}


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_file_matches_readme(shared_data, name):
    fmt, size, count, t0, t1 = REAL[name]
    with open_events(shared_data / "events" / name) as reader:
        assert reader.info.format == fmt
        assert reader.info.sensor_size == size
        ev = reader.read_all()
        if reader.info.t_start_us is not None:  # AEDAT4 knows its range without decoding
            assert (reader.info.t_start_us, reader.info.t_end_us) == (t0, t1)
    assert ev.dtype == EVENT_DTYPE
    assert len(ev) == count
    assert (int(ev["t"][0]), int(ev["t"][-1])) == (t0, t1)
    assert np.all(np.diff(ev["t"]) >= 0)
    assert set(np.unique(ev["p"])) <= {0, 1}
    assert reader.n_dropped == 0


def test_aedat4_streams(shared_data):
    with open_events(shared_data / "events" / "tonic_sample.aedat4") as reader:
        assert reader.info.streams == ("events", "imu", "triggers")
        assert reader.info.frame_timestamps_us is None  # no frame stream in this file


def test_evt3_matches_reference_decode(shared_data):
    ref = np.load(shared_data / "events" / "evt3_sample.npy")
    with open_events(shared_data / "events" / "evt3_sample.raw", chunk_events=50_000) as reader:
        chunks = list(reader.chunks())
    assert len(chunks) > 1  # really read in pieces
    ev = np.concatenate(chunks)
    assert len(ev) == len(ref)
    for field in "txyp":
        np.testing.assert_array_equal(ev[field], ref[field].astype(ev[field].dtype), err_msg=field)


class ListReader(EventReader):
    """A reader over an in-memory array with uneven chunk sizes, to stress chunk boundaries."""

    def __init__(self, events, sizes=(7, 1, 30, 3), sensor_size=(260, 346)):
        super().__init__("memory")
        self._events, self._sizes = events, sizes
        self._info = RecordingInfo(
            path=self.path, format="memory", sensor_size=sensor_size, n_events=len(events)
        )

    def _read_chunks(self, start_us):
        i, k = 0, 0
        while i < len(self._events):
            n = self._sizes[k % len(self._sizes)]
            yield self._events[i : i + n]
            i, k = i + n, k + 1


def _bursty_events():
    """Events with gaps (empty windows), duplicate timestamps and events exactly on boundaries."""
    ev = random_events(500, duration_us=10_000, seed=3)
    ev["t"][100:140] = 5_000  # many events sharing a boundary timestamp
    ev["t"][200:] += 30_000  # a 30 ms hole
    ev["t"] = np.sort(ev["t"])
    return ev


@pytest.fixture(params=["memory", "hdf5"])
def bursty_reader(request, tmp_path):
    ev = _bursty_events()
    if request.param == "memory":
        return ev, ListReader(ev)
    path = write_hdf5(tmp_path / "b.h5", ev, sensor_size=(260, 346))
    return ev, open_events(path, chunk_events=13)


def test_windows_partition_the_stream(bursty_reader):
    ev, reader = bursty_reader
    windows = list(reader.windows(1_000))
    t0 = int(ev["t"][0])
    assert windows[0].t0_us == t0
    for i, w in enumerate(windows):
        assert (w.t0_us, w.t1_us) == (t0 + 1_000 * i, t0 + 1_000 * (i + 1))
        mask = (ev["t"] >= w.t0_us) & (ev["t"] < w.t1_us)
        np.testing.assert_array_equal(w.events, ev[mask])
    assert any(len(w) == 0 for w in windows)  # the hole gives empty windows
    assert windows[-1].t0_us <= ev["t"][-1] < windows[-1].t1_us
    np.testing.assert_array_equal(np.concatenate([w.events for w in windows]), reader.read_all())


def test_windows_with_explicit_range(bursty_reader):
    ev, reader = bursty_reader
    windows = list(reader.windows(700, t_start_us=4_000, t_end_us=9_000))
    assert windows[0].t0_us == 4_000 and windows[-1].t1_us == 9_000
    assert windows[-1].t1_us - windows[-1].t0_us == 5_000 % 700  # cut short at t_end
    got = np.concatenate([w.events for w in windows])
    np.testing.assert_array_equal(got, ev[(ev["t"] >= 4_000) & (ev["t"] < 9_000)])
    # a range entirely after the data gives empty windows, not nothing
    late = list(reader.windows(1_000, t_start_us=10**9, t_end_us=10**9 + 3_000))
    assert [len(w) for w in late] == [0, 0, 0]


def test_slices_match_masks(bursty_reader):
    ev, reader = bursty_reader
    edges = [-5, 2_000, 5_000, 5_000, 5_001, 20_000, 36_000, 50_000]
    parts = list(reader.slices(edges))
    assert len(parts) == len(edges) - 1
    for (a, b), part in zip(zip(edges[:-1], edges[1:], strict=True), parts, strict=True):
        np.testing.assert_array_equal(part, ev[(ev["t"] >= a) & (ev["t"] < b)])
    assert len(parts[2]) == 0  # zero-length interval
    assert len(parts[3]) == np.sum(ev["t"] == 5_000) >= 40  # [5000, 5001) holds the shared stamp


def test_counts(bursty_reader):
    ev, reader = bursty_reader
    packets = list(reader.counts(64))
    assert [len(p) for p in packets] == [64] * (len(ev) // 64) + ([len(ev) % 64] if len(ev) % 64 else [])
    np.testing.assert_array_equal(np.concatenate(packets), ev)


def test_empty_recording(tmp_path):
    path = write_hdf5(tmp_path / "empty.h5", empty_events(0), sensor_size=(10, 10))
    with open_events(path) as reader:
        assert reader.info.n_events == 0 and reader.info.t_start_us is None
        assert len(reader.read_all()) == 0
        assert list(reader.windows(1_000)) == []
        assert [len(s) for s in reader.slices([0, 10, 20])] == [0, 0]
        assert list(reader.counts(5)) == []


def test_hdf5_seek_reads_less(tmp_path):
    ev = random_events(200_000, duration_us=2_000_000, seed=1)
    path = write_hdf5(tmp_path / "s.h5", ev, sensor_size=(260, 346))
    with open_events(path, chunk_events=10_000) as reader:
        first = next(reader.chunks(start_us=1_500_000))
        assert first["t"][0] < 1_500_000  # the seek point is safe (never after the time) ...
        assert first["t"][0] >= 1_498_000  # ... and close to it thanks to ms_to_idx
        got = list(reader.slices([1_500_000, 1_600_000]))[0]
    np.testing.assert_array_equal(got, ev[(ev["t"] >= 1_500_000) & (ev["t"] < 1_600_000)])


@pytest.mark.parametrize(
    ("name", "writer"),
    [
        (
            "uzh.txt",
            lambda f, ev: np.savetxt(
                f, np.c_[ev["t"] / 1e6, ev["x"], ev["y"], ev["p"]], fmt=["%.6f", "%d", "%d", "%d"]
            ),
        ),
        (
            "mv.csv",
            lambda f, ev: (
                f.write_text("%geometry:346,260\n"),
                _append(f, np.c_[ev["x"], ev["y"], ev["p"], ev["t"]], ","),
            ),
        ),
        (
            "hdr.csv",
            lambda f, ev: (
                f.write_text("timestamp,x,y,polarity\n"),
                _append(f, np.c_[ev["t"], ev["x"], ev["y"], 2 * ev["p"].astype(int) - 1], ","),
            ),
        ),
    ],
)
def test_text_variants(tmp_path, name, writer):
    ev = random_events(3_000, seed=5)
    path = tmp_path / name
    writer(path, ev)
    with open_events(path, chunk_events=1_000) as reader:
        assert reader.info.format == "text"
        got = reader.read_all()
        if name == "mv.csv":
            assert reader.info.sensor_size == (260, 346)
    np.testing.assert_array_equal(got, ev)


def _append(path, rows, delimiter):
    with open(path, "a") as fh:
        np.savetxt(fh, rows, fmt="%d", delimiter=delimiter)


def test_text_time_unit_option(tmp_path):
    ev = random_events(100, seed=6)
    path = tmp_path / "ms.txt"
    np.savetxt(path, np.c_[ev["t"], ev["x"], ev["y"], ev["p"]], fmt="%d")
    with open_events(path, time_unit="ms") as reader:
        np.testing.assert_array_equal(reader.read_all()["t"], ev["t"] * 1000)


def test_numpy_any_field_order_and_dtype(tmp_path):
    ev = random_events(5_000, seed=7)
    odd = np.empty(len(ev), dtype=[("p", "?"), ("y", "<u2"), ("x", "<f4"), ("t", "<u8")])
    for f in "txyp":
        odd[f] = ev[f]
    np.save(tmp_path / "odd.npy", odd)
    np.savez(tmp_path / "cols.npz", t=ev["t"] / 1e6, x=ev["x"], y=ev["y"], p=ev["p"])
    with open_events(tmp_path / "odd.npy", chunk_events=999) as reader:
        assert reader.info.format == "npy" and reader.info.n_events == len(ev)
        np.testing.assert_array_equal(reader.read_all(), ev)
    with open_events(tmp_path / "cols.npz") as reader:
        assert reader.info.format == "npz"
        np.testing.assert_array_equal(reader.read_all(), ev)  # float seconds -> microseconds


def test_dsec_layout(tmp_path):
    import h5py

    ev = random_events(20_000, height=480, width=640, duration_us=300_000, seed=8)
    t_offset = 1_000_000_000
    path = tmp_path / "dsec.h5"
    with h5py.File(path, "w") as f:
        g = f.create_group("events")
        g["x"], g["y"] = ev["x"].astype(np.uint16), ev["y"].astype(np.uint16)
        g["t"], g["p"] = ev["t"].astype(np.uint32), ev["p"].astype(np.uint8)
        f["t_offset"] = np.int64(t_offset)
        f["ms_to_idx"] = np.searchsorted(ev["t"], np.arange(0, 301) * 1000).astype(np.uint64)
    with open_events(path, sensor_size=(480, 640), chunk_events=4_096) as reader:
        assert reader.info.format == "dsec-hdf5"
        assert reader.info.t_start_us == int(ev["t"][0]) + t_offset
        got = list(reader.slices([t_offset + 100_000, t_offset + 150_000]))[0]
        allev = reader.read_all()
    sel = ev[(ev["t"] >= 100_000) & (ev["t"] < 150_000)]
    np.testing.assert_array_equal(got["t"] - t_offset, sel["t"])
    np.testing.assert_array_equal(allev["x"], ev["x"])


def test_windows_use_bounded_memory(tmp_path):
    """Iterating a recording must hold about one chunk plus one window, never the whole file."""
    import tracemalloc

    ev = random_events(2_000_000, duration_us=2_000_000, seed=9)
    path = write_hdf5(tmp_path / "big.h5", ev, sensor_size=(260, 346))
    full_bytes = ev.nbytes
    del ev
    with open_events(path, chunk_events=50_000) as reader:
        tracemalloc.start()
        n = 0
        for window in reader.windows(20_000):
            n += len(window)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert n == 2_000_000
    assert peak < 0.15 * full_bytes, f"peak {peak / 1e6:.1f} MB for a {full_bytes / 1e6:.1f} MB recording"


@pytest.mark.parametrize("encoding", ["dat", "evt2", "evt3"])
def test_prophesee_encodings_against_an_independent_encoder(tmp_path, encoding):
    """Synthetic events encoded by expelliarmus' writer decode back exactly, in several chunks."""
    from expelliarmus import Wizard

    ev = random_events(20_000, height=480, width=640, duration_us=300_000, seed=10)
    ref = np.empty(len(ev), dtype=[("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "u1")])
    for f in "txyp":
        ref[f] = ev[f]
    path = tmp_path / ("events.dat" if encoding == "dat" else "events.raw")
    Wizard(encoding=encoding).save(path, ref)
    with open_events(path, chunk_events=3_000) as reader:
        assert reader.info.format == encoding
        chunks = list(reader.chunks())
    assert len(chunks) > 1
    np.testing.assert_array_equal(np.concatenate(chunks), ev)


def test_aedat4_event_stream_with_another_name(tmp_path):
    import dv_processing as dv

    path = tmp_path / "renamed.aedat4"
    config = dv.io.MonoCameraWriter.Config("test")
    config.addEventStream((346, 260), "dvs")
    writer = dv.io.MonoCameraWriter(str(path), config)
    store = dv.EventStore()
    for t in range(10):
        store.push_back(1_000 + t, t, 2 * t, bool(t % 2))
    writer.writeEvents(store, "dvs")
    del writer
    with open_events(path) as reader:
        assert reader.info.sensor_size == (260, 346)
        ev = reader.read_all()
    np.testing.assert_array_equal(ev["t"], 1_000 + np.arange(10))
    np.testing.assert_array_equal(ev["y"], 2 * np.arange(10))
    np.testing.assert_array_equal(ev["p"], np.arange(10) % 2)


def test_decoder_records_are_viewed_as_canonical_events_without_copy():
    from evtrack.io.events import canonical_view, is_padded_event_layout

    padded = np.dtype(
        {
            "names": list("txyp"),
            "formats": ["<i8", "<i2", "<i2", "u1"],
            "offsets": [0, 8, 10, 12],
            "itemsize": 16,
        }
    )
    ev = random_events(1_001, seed=11)
    raw = np.zeros(len(ev), dtype=padded)
    for f in "txyp":
        raw[f] = ev[f]
    assert is_padded_event_layout(padded)
    assert is_padded_event_layout(EVENT_DTYPE)
    assert not is_padded_event_layout(EVENT_DTYPE.newbyteorder(">"))
    assert not is_padded_event_layout(np.dtype([("t", "<f8"), ("x", "<i2"), ("y", "<i2"), ("p", "u1")]))
    packed = np.dtype([("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "i1")])  # the old 13-byte layout
    assert not is_padded_event_layout(packed)
    assert canonical_view(np.zeros(3, packed)) is None
    out = canonical_view(raw)
    assert out.dtype == EVENT_DTYPE and np.shares_memory(out, raw)
    np.testing.assert_array_equal(out, ev)
    strided = canonical_view(raw[::2])  # a strided input is copied once, then viewed
    np.testing.assert_array_equal(strided, ev[::2])
    assert len(canonical_view(raw[:0])) == 0


def test_old_packed_13_byte_arrays_are_still_accepted(tmp_path):
    packed = np.dtype([("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "i1")])
    ev = random_events(2_000, seed=12)
    old = np.empty(len(ev), dtype=packed)
    for f in "txyp":
        old[f] = ev[f]
    assert old.dtype.itemsize == 13 and EVENT_DTYPE.itemsize == 16
    np.testing.assert_array_equal(as_events(old), ev)
    np.save(tmp_path / "old.npy", old)
    with open_events(tmp_path / "old.npy", chunk_events=700) as reader:
        np.testing.assert_array_equal(reader.read_all(), ev)


@pytest.mark.parametrize("contiguous", [True, False])
def test_scan_events_matches_numpy(contiguous):
    from evtrack.io.packing import scan_events

    rng = np.random.default_rng(17)
    for trial in range(40):
        ev = random_events(int(rng.integers(1, 300)), height=260, width=346, seed=trial)
        if trial % 3 == 0:
            k = rng.integers(0, len(ev), 3)
            ev["x"][k] = rng.choice([-1, 346, 400, -32768, 32767], 3)
        if trial % 5 == 1:
            ev["y"][rng.integers(0, len(ev))] = rng.choice([-5, 260, 1000])
        if trial % 4 == 2 and len(ev) > 2:
            ev["t"][rng.integers(1, len(ev))] -= 10**6
        arr = ev
        if not contiguous:
            arr = np.zeros(2 * len(ev), ev.dtype)[::2]
            for f in "txyp":
                arr[f] = ev[f]
        t_prev = int(ev["t"][0]) - (trial % 7 == 3) * 10**7 + (trial % 7 == 4)
        for h, w in ((260, 346), (40_000, 50_000)):
            t = np.concatenate([[t_prev], ev["t"]])
            back = np.flatnonzero(t[1:] < t[:-1])
            bad = (ev["x"] < 0) | (ev["x"] >= min(w, 32768)) | (ev["y"] < 0) | (ev["y"] >= min(h, 32768))
            want = (int(back[0]), -1, 0) if len(back) else (-1, int(np.argmax(bad)) if bad.any() else -1, int(bad.sum()))
            assert scan_events(arr, t_prev, w, h) == want, (trial, h, w)
