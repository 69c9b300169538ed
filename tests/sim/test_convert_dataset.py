"""``evtrack convert-dataset``: RGB tracking layouts in, FE108-layout event datasets out."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from evtrack.cli import main
from evtrack.datasets import load_dataset
from evtrack.errors import FormatError
from evtrack.sim.convert_dataset import (
    ConvertConfig,
    SensorRanges,
    convert_dataset,
    draw_sensor,
    sequence_rng,
)
from evtrack.sim.esim import SensorConfig
from evtrack.sim.rgb_layouts import find_sequences, read_sequence


def _frames(n: int, size=(72, 96), step=3, start=10):
    h, w = size
    out, boxes = [], []
    for i in range(n):
        img = np.full((h, w), 50, np.uint8)
        x = start + i * step
        cv2.rectangle(img, (x, 20), (x + 15, 35), 210, -1)
        out.append(img)
        boxes.append((x, 20, 16, 16))
    return out, boxes


def write_otb(root: Path, name: str, n: int = 8, *, nan_at: int | None = None, fps: float | None = None) -> Path:
    seq = root / name
    (seq / "img").mkdir(parents=True)
    frames, boxes = _frames(n)
    for i, f in enumerate(frames):
        cv2.imwrite(str(seq / "img" / f"{i + 1:05d}.jpg"), f)
    lines = [f"{x},{y},{w},{h}" for x, y, w, h in boxes]
    if nan_at is not None:
        lines[nan_at] = "NaN,NaN,NaN,NaN"
    (seq / "groundtruth_rect.txt").write_text("\n".join(lines) + "\n")
    if fps is not None:
        (seq / "fps.txt").write_text(f"{fps}\n")
    return seq


def write_got10k(root: Path, name: str, n: int = 6) -> Path:
    seq = root / name
    seq.mkdir(parents=True)
    frames, boxes = _frames(n)
    for i, f in enumerate(frames):
        cv2.imwrite(str(seq / f"{i + 1:08d}.jpg"), f)
    (seq / "groundtruth.txt").write_text("".join(f"{x},{y},{w},{h}\n" for x, y, w, h in boxes))
    (seq / "absence.label").write_text("".join(f"{int(i == 2)}\n" for i in range(n)))
    return seq


def write_lasot(root: Path, cls: str, name: str, n: int = 6) -> Path:
    seq = root / cls / name
    (seq / "img").mkdir(parents=True)
    frames, boxes = _frames(n)
    for i, f in enumerate(frames):
        cv2.imwrite(str(seq / "img" / f"{i + 1:08d}.jpg"), f)
    (seq / "groundtruth.txt").write_text("".join(f"{x},{y},{w},{h}\n" for x, y, w, h in boxes))
    (seq / "full_occlusion.txt").write_text(",".join("1" if i == 1 else "0" for i in range(n)))
    (seq / "out_of_view.txt").write_text(",".join("1" if i == 4 else "0" for i in range(n)))
    return seq


def test_layouts_are_found_and_absent_frames_flagged(tmp_path):
    write_otb(tmp_path / "train", "otbseq", nan_at=3, fps=10)
    write_got10k(tmp_path / "train", "GOT-10k_Train_000001")
    write_lasot(tmp_path / "val", "cat", "cat-1")
    found = find_sequences(tmp_path)
    assert {s: [e[0] for e in v] for s, v in found.items()} == {
        "train": ["GOT-10k_Train_000001", "otbseq"], "val": ["cat-1"]}
    otb = read_sequence(tmp_path / "train" / "otbseq", "otb")
    assert otb.fps == 10 and otb.absent.tolist() == [False] * 3 + [True] + [False] * 4
    assert (otb.boxes[3] == 0).all()
    got = read_sequence(tmp_path / "train" / "GOT-10k_Train_000001", "got10k")
    assert got.fps == 10 and np.flatnonzero(got.absent).tolist() == [2]
    las = read_sequence(tmp_path / "val" / "cat" / "cat-1", "lasot")
    assert las.fps == 30 and np.flatnonzero(las.absent).tolist() == [1, 4]


def test_bad_input_names_sequence_and_line(tmp_path):
    seq = write_otb(tmp_path, "s1", n=6)
    gt = seq / "groundtruth_rect.txt"
    gt.write_text(gt.read_text() + "1,2,3,4\n")
    with pytest.raises(FormatError, match=r"sequence s1: .*7 boxes but .*6 frames"):
        read_sequence(seq, "otb")
    gt.write_text("1,2,3,4\n1,2,x,4\n")
    with pytest.raises(FormatError, match=r"sequence s1: .*line 2: '1,2,x,4' is not 4 numbers"):
        read_sequence(seq, "otb")
    gt.write_text("1,2,3,4\n\n1,2,3,4\n")
    with pytest.raises(FormatError, match=r"sequence s1: .*line 2: found 0 fields"):
        read_sequence(seq, "otb")
    seq2 = write_otb(tmp_path, "s2", n=6)
    (seq2 / "img" / "00003.jpg").unlink()
    with pytest.raises(FormatError, match=r"frame 3 is missing"):
        read_sequence(seq2, "otb")


def test_convert_writes_fe108_layout_scaled_and_resumes(tmp_path, capsys):
    src = tmp_path / "rgb"
    write_otb(src / "train", "a", nan_at=2, fps=10)
    write_otb(src / "train", "b", n=5)
    out = tmp_path / "ev"
    args = ["convert-dataset", str(src), str(out), "--sensor-size", "36", "48", "--quiet", "--seed", "3"]
    assert main(args) == 0
    seqs = load_dataset("synthetic", out, "train")
    assert [s.name for s in seqs] == ["a", "b"]
    a = seqs[0]
    assert a.absent.tolist() == [False, False, True] + [False] * 5
    np.testing.assert_allclose(a.boxes[0], [5.0, 10.0, 8.0, 8.0])  # 96x72 frames onto a 48x36 sensor
    assert a.frame_timestamps_us.tolist() == [100_000 * (i + 1) for i in range(8)]  # 10 fps from fps.txt
    assert seqs[1].frame_timestamps_us[0] == 33_333  # 30 fps, the OTB default
    with a.open() as reader:
        ev = reader.read_all()
        assert reader.info.sensor_size == (36, 48) and len(ev) > 0
    before = (out / "train" / "a" / "events.h5").read_bytes()
    assert "converted 2 sequences" in capsys.readouterr().out
    # resume: nothing left to do; the same bytes; other settings are refused
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "converted 0 sequences" in printed and "2 already complete" in printed
    assert (out / "train" / "a" / "events.h5").read_bytes() == before
    assert main(args[:-1] + ["4"]) == 2
    assert "was converted with config" in capsys.readouterr().err


def test_deterministic_across_worker_counts_and_randomized_sensors(tmp_path):
    src = tmp_path / "rgb"
    for name in ("a", "b", "c"):
        write_otb(src, name, n=5)
    cfg = ConvertConfig(sensor=SensorConfig(height=36, width=48), seed=1, randomize=True)
    done1, err1, _ = convert_dataset(src, tmp_path / "o1", cfg, workers=1, show_progress=False)
    done2, err2, _ = convert_dataset(src, tmp_path / "o2", cfg, workers=2, show_progress=False)
    assert not err1 and not err2 and len(done1) == 3
    for name in ("a", "b", "c"):
        m1 = json.loads((tmp_path / "o1" / "all" / name / "attributes.json").read_text())
        m2 = json.loads((tmp_path / "o2" / "all" / name / "attributes.json").read_text())
        assert m1["sensor"] == m2["sensor"] and m1["n_events"] == m2["n_events"]
        h1 = (tmp_path / "o1" / "all" / name / "events.h5").read_bytes()
        assert h1 == (tmp_path / "o2" / "all" / name / "events.h5").read_bytes()
    sensors = [json.loads((tmp_path / "o1" / "all" / n / "attributes.json").read_text())["sensor"] for n in "abc"]
    assert len({s["c_pos"] for s in sensors}) == 3  # each sequence draws its own sensor
    r = SensorRanges()
    s = draw_sensor(SensorConfig(), r, sequence_rng(0, "x"))
    assert r.threshold[0] <= s.c_pos <= r.threshold[1] and r.hot_pixels[0] <= s.n_hot_pixels <= r.hot_pixels[1]


def test_a_second_run_on_the_same_folder_is_refused(tmp_path, capsys):
    # a second run started beside a first one (e.g. to add workers) converted the same sequence too,
    # and the slower of the two failed with an OSError on its rename
    from evtrack.io.atomic import folder_lock

    src = tmp_path / "rgb"
    write_otb(src, "a", n=4)
    out = tmp_path / "ev"
    out.mkdir()
    with folder_lock(out, "convert-dataset"):
        assert main(["convert-dataset", str(src), str(out), "--sensor-size", "36", "48", "--quiet"]) == 2
        assert "another convert-dataset run is writing to this folder" in capsys.readouterr().err
    assert not (out / "all").exists()
    assert main(["convert-dataset", str(src), str(out), "--sensor-size", "36", "48", "--quiet"]) == 0
    assert (out / "all" / "a" / "events.h5").is_file()


def test_a_failing_sequence_is_reported_and_leaves_nothing(tmp_path, capsys):
    src = tmp_path / "rgb"
    write_otb(src, "good", n=4)
    bad = write_otb(src, "bad", n=4)
    (bad / "img" / "00002.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "ev"
    assert main(["convert-dataset", str(src), str(out), "--sensor-size", "36", "48", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "bad" in err and "00002.jpg" in err
    assert sorted(p.name for p in (out / "all").iterdir()) == ["good"]
