"""Generated datasets: FE108 layout, ground truth consistent with events, same seed -> same bytes."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from evtrack.sim.dataset import (
    SequenceConfig,
    frame_times_us,
    make_dataset,
    make_sample_sequence,
    sequence_seed,
    write_sequence,
)
from evtrack.sim.esim import SensorConfig
from evtrack.sim.scenes import SceneConfig

SMALL = SequenceConfig(
    render_fps=400.0,
    gt_hz=20.0,
    sensor=replace(SensorConfig(), height=96, width=128),
    scene=replace(SceneConfig(), sensor_size=(96, 128), duration_s=(0.5, 0.5), target_size_px=(16.0, 30.0)),
)
FILES = ("events.h5", "groundtruth_rect.txt", "absent_label.txt", "frame_timestamps.txt", "attributes.json")


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_frame_times():
    np.testing.assert_array_equal(frame_times_us(0.2, 25.0), [40_000, 80_000, 120_000, 160_000, 200_000])
    assert frame_times_us(0.039, 25.0).size == 0


def test_sequence_layout_and_consistency(tmp_path):
    from evtrack.io import open_events

    seq = tmp_path / "seq"
    s = write_sequence(seq, sequence_seed(0, "train", 3), SMALL)
    assert sorted(p.name for p in seq.iterdir()) == sorted(FILES)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no leftover temp dir
    boxes = np.loadtxt(seq / "groundtruth_rect.txt", delimiter=",", ndmin=2)
    absent = np.loadtxt(seq / "absent_label.txt", dtype=int, ndmin=1)
    ts = np.loadtxt(seq / "frame_timestamps.txt", dtype=np.int64, ndmin=1)
    assert len(boxes) == len(absent) == len(ts) == s.n_frames == 10
    np.testing.assert_array_equal(ts, np.arange(1, 11) * 50_000)
    assert set(absent.tolist()) <= {0, 1}
    assert np.all(boxes[:, :2] >= 0) and np.all(boxes[:, 0] + boxes[:, 2] <= 128 + 1e-6)
    assert np.all(boxes[:, 1] + boxes[:, 3] <= 96 + 1e-6)
    assert np.all(boxes[absent == 0, 2:] > 2)
    with open_events(seq / "events.h5") as r:
        assert r.info.sensor_size == (96, 128)
        np.testing.assert_array_equal(r.info.frame_timestamps_us, ts)
        ev = r.read_all()
    assert len(ev) == s.n_events > 0
    assert np.all(np.diff(ev["t"]) >= 0) and ev["t"].min() >= 0 and ev["t"].max() < 500_000
    # the moving target makes events: inside its box the event density is higher than elsewhere
    inside = outside = 0.0
    for i in range(1, len(ts)):
        if absent[i]:
            continue
        sel = ev[(ev["t"] >= ts[i - 1]) & (ev["t"] < ts[i])]
        x, y, w, h = boxes[i]
        m = (sel["x"] >= x) & (sel["x"] < x + w) & (sel["y"] >= y) & (sel["y"] < y + h)
        inside += m.sum() / max(w * h, 1)
        outside += (~m).sum() / (96 * 128 - w * h)
    assert inside > 2 * outside
    meta = json.loads((seq / "attributes.json").read_text())
    assert meta["n_events"] == s.n_events and meta["n_frames"] == 10


def test_same_seed_same_bytes(tmp_path):
    make_dataset(tmp_path / "a", 1, 1, seed=5, workers=1, cfg=SMALL, show_progress=False)
    time.sleep(1.1)  # HDF5 stamps datasets with the time in seconds unless told not to
    make_dataset(tmp_path / "b", 1, 1, seed=5, workers=1, cfg=SMALL, show_progress=False)
    a, b = tree_bytes(tmp_path / "a"), tree_bytes(tmp_path / "b")
    # README.md, dataset.json, the (empty) run lock, and each sequence's files
    assert sorted(a) == sorted(b) and len(a) == 3 + 2 * len(FILES)
    assert a == b
    # different sequences differ; a different seed gives a different dataset
    assert a["train/synth_train_0000/events.h5"] != a["test/synth_test_0000/events.h5"]
    make_dataset(tmp_path / "c", 1, 0, seed=6, workers=1, cfg=SMALL, show_progress=False)
    assert (tmp_path / "c/train/synth_train_0000/events.h5").read_bytes() != a["train/synth_train_0000/events.h5"]


@pytest.mark.slow
def test_parallel_workers_give_the_same_bytes(tmp_path):
    make_dataset(tmp_path / "a", 2, 1, seed=5, workers=1, cfg=SMALL, show_progress=False)
    make_dataset(tmp_path / "b", 2, 1, seed=5, workers=2, cfg=SMALL, show_progress=False)
    assert tree_bytes(tmp_path / "a") == tree_bytes(tmp_path / "b")


def test_interrupted_dataset_is_completed_identically(tmp_path):
    make_dataset(tmp_path / "d", 2, 0, seed=1, cfg=SMALL, show_progress=False)
    full = tree_bytes(tmp_path / "d")
    import shutil

    shutil.rmtree(tmp_path / "d/train/synth_train_0001")
    done = make_dataset(tmp_path / "d", 2, 0, seed=1, cfg=SMALL, show_progress=False)
    assert [s.name for s in done] == ["synth_train_0001"]
    assert tree_bytes(tmp_path / "d") == full


def test_resuming_with_another_seed_or_config_is_refused(tmp_path):
    from evtrack.errors import UserError

    make_dataset(tmp_path / "e", 1, 0, seed=1, cfg=SMALL, show_progress=False)
    before = tree_bytes(tmp_path / "e")
    with pytest.raises(UserError, match="seed = 1, this run asks for 2"):
        make_dataset(tmp_path / "e", 1, 0, seed=2, cfg=SMALL, show_progress=False)
    with pytest.raises(UserError, match="config"):
        make_dataset(tmp_path / "e", 1, 0, seed=1, cfg=replace(SMALL, gt_hz=25.0), show_progress=False)
    assert tree_bytes(tmp_path / "e") == before
    # a folder of foreign sequences without a manifest is not adopted either
    (tmp_path / "f/train/mine").mkdir(parents=True)
    with pytest.raises(UserError, match="no dataset.json"):
        make_dataset(tmp_path / "f", 1, 0, seed=1, cfg=SMALL, show_progress=False)


def test_a_second_run_on_the_same_folder_is_refused(tmp_path):
    from evtrack.errors import UserError
    from evtrack.io.atomic import folder_lock

    (tmp_path / "e").mkdir()
    with folder_lock(tmp_path / "e", "make-dataset"):  # as a first run holds it
        with pytest.raises(UserError, match="another make-dataset run is writing to this folder"):
            make_dataset(tmp_path / "e", 1, 0, seed=1, cfg=SMALL, show_progress=False)
    assert not (tmp_path / "e" / "train").exists()  # refused before any work
    make_dataset(tmp_path / "e", 1, 0, seed=1, cfg=SMALL, show_progress=False)  # free again
    assert (tmp_path / "e" / "train").is_dir()


def test_cli_make_dataset_rejects_bad_arguments(tmp_path, capsys):
    from evtrack.cli import main

    assert main(["make-dataset", str(tmp_path / "x"), "--train", "-1"]) == 2
    assert "--train -1" in capsys.readouterr().err
    assert main(["make-dataset", str(tmp_path / "x"), "--gt-hz", "2000"]) == 2
    assert "--gt-hz" in capsys.readouterr().err
    assert main(["make-dataset", str(tmp_path / "x"), "--sensor", "20x30"]) == 2
    assert "64x64" in capsys.readouterr().err
    assert main(["make-dataset", str(tmp_path / "x"), "--duration", "3"]) == 2
    assert "--duration" in capsys.readouterr().err


def test_cli_make_dataset_end_to_end(tmp_path, capsys):
    from evtrack.cli import main

    assert main(["make-dataset", str(tmp_path / "y"), "--train", "1", "--test", "1", "--seed", "3",
                 "--render-fps", "400", "--gt-hz", "20", "--sensor", "96x128", "--duration", "0.4,0.5",
                 "--quiet"]) == 0
    assert "made 2 sequences" in capsys.readouterr().out
    manifest = json.loads((tmp_path / "y/dataset.json").read_text())
    assert manifest["seed"] == 3 and manifest["splits"]["test"] == ["synth_test_0000"]
    assert (tmp_path / "y/train/synth_train_0000/events.h5").is_file()


@pytest.mark.slow
def test_sample_sequence_is_small(tmp_path):
    s = make_sample_sequence(tmp_path / "sample", seed=0)
    size = (tmp_path / "sample/events.h5").stat().st_size
    assert s.duration_s == pytest.approx(2.0)
    assert s.n_frames == 50 and s.n_events > 10_000
    assert size < 2_000_000


def test_preview_draws_event_frames_with_boxes(tmp_path):
    import cv2

    from evtrack.sim.preview import dataset_preview

    seq = tmp_path / "seq"
    write_sequence(seq, sequence_seed(0, "train", 3), SMALL)
    dataset_preview([seq, seq], tmp_path / "p.png", n_frames=4)
    img = cv2.imread(str(tmp_path / "p.png"))
    assert img.shape == (2 * 96, 4 * 128, 3)
    boxes = np.loadtxt(seq / "groundtruth_rect.txt", delimiter=",", ndmin=2)
    absent = np.loadtxt(seq / "absent_label.txt", dtype=int, ndmin=1)
    i = int(np.linspace(1, len(boxes) - 1, 4).round().astype(int)[-1])  # last tile of the first row
    x, y, w, h = (int(round(v)) for v in boxes[i])
    colour = (0, 160, 0) if not absent[i] else (0, 200, 255)
    tile = img[:96, 3 * 128:4 * 128]
    left = tile[max(y, 14):min(y + h, 95), min(x, 127)]  # the box's left side (below the caption)
    assert len(left) and np.all(left == colour)
    # events are drawn: the tile is not blank white outside the caption
    assert (tile[14:] < 250).any(axis=2).sum() > 20
