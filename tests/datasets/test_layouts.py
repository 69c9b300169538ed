"""Dataset adapters on tiny fake trees in each layout."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from evtrack.datasets import list_datasets, load_dataset, load_roots
from evtrack.datasets.fe108 import name_attributes
from evtrack.errors import FormatError, UserError

BOXES = np.array([[10, 20, 30, 40], [11, 21, 30, 40], [12, 22.5, 31, 41]])


def _write_boxes(path: Path, boxes: np.ndarray, sep: str = ",") -> None:
    path.write_text("\n".join(sep.join(f"{v:g}" for v in row) for row in boxes) + "\n")


def _seq(folder: Path, *, gt="groundtruth.txt", absent=None, absent_flags=(0, 1, 0), events="events.aedat4",
         boxes=BOXES, times=None, extra: dict | None = None) -> Path:
    folder.mkdir(parents=True)
    _write_boxes(folder / gt, boxes)
    if absent:
        (folder / absent).write_text("\n".join(str(f) for f in absent_flags) + "\n")
    if events:
        (folder / events).write_bytes(b"placeholder: loaders must not read events")
    if times is not None:
        (folder / "frame_timestamps.txt").write_text("\n".join(str(t) for t in times) + "\n")
    for name, text in (extra or {}).items():
        (folder / name).write_text(text)
    return folder


def test_registry_lists_all_layouts():
    assert set(list_datasets()) == {"fe108", "visevent", "felt", "coesot", "eventvot", "synthetic"}
    with pytest.raises(UserError, match="unknown dataset 'otb'"):
        load_dataset("otb", ".")


def test_fe108_release_layout(tmp_path):
    _seq(tmp_path / "test" / "dove_mul222", gt="groundtruth_rect.txt", absent="absent_label.txt")
    _seq(tmp_path / "test" / "bike_low", gt="groundtruth_rect.txt")
    _seq(tmp_path / "train" / "cup", gt="groundtruth_rect.txt")
    (tmp_path / "test.txt").write_text("dove_mul222\nbike_low\n")
    seqs = load_dataset("fe108", tmp_path)
    assert [s.name for s in seqs] == ["dove_mul222", "bike_low"]
    s = seqs[0]
    np.testing.assert_array_equal(s.boxes, BOXES)
    np.testing.assert_array_equal(s.absent, [False, True, False])
    assert s.events_path == tmp_path / "test" / "dove_mul222" / "events.aedat4"
    assert s.sensor_size == (260, 346) and s.frame_timestamps_us is None
    assert s.attributes["similar_objects"] and not s.attributes["normal"]
    assert seqs[1].attributes["low_light"] and not seqs[1].absent.any()
    assert [s.name for s in load_dataset("fe108", tmp_path, "train")] == ["cup"]


def test_fe108_frame_times_come_from_the_frame_stream(tmp_path):
    _seq(tmp_path / "test" / "dog", gt="groundtruth_rect.txt")
    s = load_dataset("fe108", tmp_path)[0]
    reader = SimpleNamespace(info=SimpleNamespace(frame_timestamps_us=np.array([100, 200, 300, 400])))
    np.testing.assert_array_equal(s.frame_times_us(reader), [100, 200, 300])
    short = SimpleNamespace(info=SimpleNamespace(frame_timestamps_us=np.array([100, 200])))
    s.frame_timestamps_us = None
    with pytest.raises(FormatError, match="frame stream has 2 frames, expected at least 3"):
        s.frame_times_us(short)
    none = SimpleNamespace(info=SimpleNamespace(frame_timestamps_us=None))
    with pytest.raises(FormatError, match="no frame stream"):
        s.frame_times_us(none)


def test_fe108_official_annos_layout(shared_data):
    seqs = load_dataset("fe108", shared_data / "fe108_official")
    assert len(seqs) == 32
    dog = next(s for s in seqs if s.name == "dog")
    assert len(dog) == 642 and dog.events_path is None
    assert dog.attributes["normal"] and "att17" in dog.attributes
    with pytest.raises(UserError, match="annotations only"):
        dog.open()


def test_synthetic_layout_requires_timestamps(tmp_path):
    _seq(tmp_path / "test" / "s0", gt="groundtruth_rect.txt", absent="absent_label.txt", events="events.h5",
         times=[1000, 2000, 3000])
    s = load_dataset("synthetic", tmp_path)[0]
    np.testing.assert_array_equal(s.frame_times_us(), [1000, 2000, 3000])
    assert s.events_path.name == "events.h5" and s.sensor_size is None and s.dataset == "synthetic"
    _seq(tmp_path / "test" / "s1", gt="groundtruth_rect.txt", events="events.h5")
    with pytest.raises(FormatError, match="s1 has no frame_timestamps.txt"):
        load_dataset("synthetic", tmp_path)


def test_load_roots_keys_repeated_names_by_root(tmp_path):
    for root in ("a", "b"):
        for name in ("s0", "s1", "s2"):
            _seq(tmp_path / root / "train" / name, gt="groundtruth_rect.txt", events="events.h5", times=[1, 2, 3])
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    one = load_roots("synthetic", [a], "train")
    assert list(one) == ["s0", "s1", "s2"]
    both = load_roots("synthetic", [a, b], "train", max_per_root=2)
    assert list(both) == [f"{a}/s0", f"{a}/s1", f"{b}/s0", f"{b}/s1"]
    assert both[f"{b}/s1"].events_path == tmp_path / "b" / "train" / "s1" / "events.h5"


def test_synthetic_opens_real_hdf5_events(tmp_path):
    io = pytest.importorskip("evtrack.io", exc_type=ImportError)
    from evtrack.io.events import make_events

    folder = _seq(tmp_path / "test" / "s0", gt="groundtruth_rect.txt", events=None, times=[1000, 2000, 3000])
    ev = make_events([0, 500, 1500, 2500], [1, 2, 3, 4], [5, 6, 7, 8], [1, 0, 1, 0])
    io.write_hdf5(folder / "events.h5", ev, sensor_size=(20, 30))
    (seq,) = load_dataset("synthetic", tmp_path)
    with seq.open() as reader:
        assert reader.info.sensor_size == (20, 30)
        np.testing.assert_array_equal(reader.read_all()["t"], ev["t"])


def test_visevent_layout(tmp_path):
    _seq(tmp_path / "test_subset" / "00141_tank", absent="absent_label.txt", events="00141_tank.aedat4")
    (tmp_path / "testlist.txt").write_text("00141_tank\n")
    (seq,) = load_dataset("visevent", tmp_path)
    assert seq.events_path.name == "00141_tank.aedat4" and seq.absent[1]
    assert seq.dataset == "visevent"


def test_felt_zero_boxes_are_absent(tmp_path):
    boxes = BOXES.copy()
    boxes[2] = 0
    _seq(tmp_path / "test" / "airplane_1", events="airplane_1.aedat4", boxes=boxes)
    (seq,) = load_dataset("felt", tmp_path)
    np.testing.assert_array_equal(seq.absent, [False, False, True])


def test_coesot_start_index_offsets_the_frame_stream(tmp_path):
    _seq(tmp_path / "test" / "dvSave-1", absent="absent.txt", events="dvSave-1.aedat4",
         extra={"start_end_index.txt": "2 4\n"})
    (seq,) = load_dataset("coesot", tmp_path)
    assert seq.frame_offset == 2
    reader = SimpleNamespace(info=SimpleNamespace(frame_timestamps_us=np.arange(6) * 10))
    np.testing.assert_array_equal(seq.frame_times_us(reader), [20, 30, 40])


def test_eventvot_csv_events_and_hd_sensor(tmp_path):
    _seq(tmp_path / "test" / "ball1", absent="absent.txt", events="ball1.csv")
    (seq,) = load_dataset("eventvot", tmp_path)
    assert seq.sensor_size == (720, 1280) and seq.events_path.suffix == ".csv"


@pytest.mark.parametrize(
    ("setup", "match"),
    [
        (lambda r: None, "no folder for split 'test'"),
        (lambda r: _seq(r / "test" / "a", events=None), "has no event file"),
        (lambda r: _seq(r / "test" / "a", absent="absent_label.txt", absent_flags=(0, 1)), "found 2 absent flags, expected 3"),
        (lambda r: _seq(r / "test" / "a", gt="gt.txt"), "has no ground-truth file"),
        (lambda r: (_seq(r / "test" / "a"), (r / "testlist.txt").write_text("a\nb\n")), "lists 1 sequence"),
        (lambda r: _seq(r / "test" / "a", times=[3, 2, 1]), "must increase"),
    ],
)
def test_bad_trees_raise_clear_errors(tmp_path, setup, match):
    setup(tmp_path)
    with pytest.raises(FormatError, match=match):
        load_dataset("visevent", tmp_path)


def test_missing_root_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="is not a directory"):
        load_dataset("felt", tmp_path / "nope")


def test_name_attributes():
    assert name_attributes("giraffe_motion") == {
        "low_light": False, "hdr": False, "fast_motion": True, "similar_objects": False, "normal": False}
    assert name_attributes("tower333")["normal"]


def test_fe108_release_reads_aps_frame_times_from_aedat4(tmp_path):
    io = pytest.importorskip("evtrack.io", exc_type=ImportError)
    if not hasattr(io, "write_aedat4"):
        pytest.skip("evtrack.io.write_aedat4 not available")
    from evtrack.io.events import make_events

    folder = _seq(tmp_path / "test" / "star_motion", gt="groundtruth_rect.txt", absent="absent_label.txt", events=None)
    ev = make_events(np.arange(0, 40_000, 1000), np.arange(40) % 346, np.arange(40) % 260, np.arange(40) % 2)
    frames = np.array([5_000, 15_000, 25_000, 35_000])  # one more APS frame than boxes: the tail is unused
    io.write_aedat4(folder / "events.aedat4", ev, sensor_size=(260, 346), frame_timestamps_us=frames)
    (seq,) = load_dataset("fe108", tmp_path)
    np.testing.assert_array_equal(seq.frame_times_us(), frames[:3])
    with seq.open() as reader:
        assert reader.info.sensor_size == (260, 346)
        assert sum(len(x) for x in reader.slices(seq.frame_times_us())) == 20  # events in [5000, 25000)


def test_synthetic_scene_attributes(tmp_path):
    import json

    _seq(tmp_path / "test" / "s0", gt="groundtruth_rect.txt", events="events.h5", times=[1, 2, 3],
         extra={"attributes.json": json.dumps({"shape": "ellipse", "distractors": 0, "n_absent": 4,
                                               "size_px": 27.2, "low_contrast": True})})
    _seq(tmp_path / "test" / "s1", gt="groundtruth_rect.txt", events="events.h5", times=[1, 2, 3])
    s0, s1 = load_dataset("synthetic", tmp_path)
    assert s0.attributes == {"shape=ellipse": True, "distractors": False, "absent": True, "low_contrast": True}
    assert s1.attributes == {}
    (tmp_path / "test" / "s1" / "attributes.json").write_text("[1, 2")
    with pytest.raises(FormatError, match="attributes.json: not valid JSON"):
        load_dataset("synthetic", tmp_path)
