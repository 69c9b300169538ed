"""``evtrack simulate``: frame folders and videos in, events and scaled ground truth out."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from evtrack.cli import main
from evtrack.errors import FormatError, UserError
from evtrack.sim.convert import UpsampleConfig, interpolate, substeps_needed
from evtrack.sim.video import open_frames, read_groundtruth


def moving_square_frames(n: int, step_px: int, size=(120, 160)) -> tuple[list[np.ndarray], list[tuple]]:
    h, w = size
    frames, boxes = [], []
    for i in range(n):
        img = np.full((h, w), 60, np.uint8)
        x = 10 + i * step_px
        cv2.rectangle(img, (x, 40), (x + 29, 69), 200, -1)  # inclusive corners: 30x30 pixels
        frames.append(img)
        boxes.append((x, 40, 30, 30))
    return frames, boxes


def write_otb_folder(root: Path, n: int = 12, step_px: int = 4) -> Path:
    seq = root / "seq"
    (seq / "img").mkdir(parents=True)
    frames, boxes = moving_square_frames(n, step_px)
    for i, f in enumerate(frames):
        cv2.imwrite(str(seq / "img" / f"{i + 1:04d}.png"), f)
    (seq / "groundtruth_rect.txt").write_text("".join(f"{x}\t{y}\t{w}\t{h}\n" for x, y, w, h in boxes))
    return seq


def test_frame_folder_to_hdf5_with_scaled_ground_truth(tmp_path, capsys):
    from evtrack.io import open_events

    seq = write_otb_folder(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    assert main(["simulate", str(seq), str(out / "events.h5"), "--fps", "50", "--sensor", "60x80",
                 "--noise-hz", "0", "--hot-pixels", "0", "--quiet"]) == 0
    assert "ground truth written" in capsys.readouterr().out
    ts = np.loadtxt(out / "frame_timestamps.txt", dtype=np.int64)
    np.testing.assert_array_equal(ts, np.arange(1, 13) * 20_000)
    boxes = np.loadtxt(out / "groundtruth_rect.txt", delimiter=",")
    np.testing.assert_allclose(boxes[0], [5.0, 20.0, 15.0, 15.0])  # 160x120 -> 80x60 halves everything
    assert np.loadtxt(out / "absent_label.txt").sum() == 0
    with open_events(out / "events.h5") as r:
        assert r.info.sensor_size == (60, 80)
        np.testing.assert_array_equal(r.info.frame_timestamps_us, ts)
        ev = r.read_all()
    assert np.all(np.diff(ev["t"]) >= 0) and ev["t"].min() >= ts[0] and ev["t"].max() < ts[-1]
    # a bright square moving right: ON events at its leading (right) edge, OFF at its trailing edge
    for i in (3, 8):
        sel = ev[(ev["t"] >= ts[i - 1]) & (ev["t"] < ts[i])]
        x, y, w, h = boxes[i]
        assert np.all((sel["y"] >= y - 1) & (sel["y"] < y + h + 1))
        on, off = sel[sel["p"] == 1], sel[sel["p"] == 0]
        assert on["x"].mean() > x + w / 2 > off["x"].mean()


def write_video(path: Path, frames: list[np.ndarray], fps: float = 25.0) -> Path:
    h, w = frames[0].shape
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert vw.isOpened()
    for f in frames:
        vw.write(cv2.cvtColor(f, cv2.COLOR_GRAY2BGR))
    vw.release()
    return path


def test_video_to_aedat4_and_hdf5_with_ground_truth(tmp_path):
    from evtrack.io import open_events

    frames, boxes = moving_square_frames(10, 3)
    path = write_video(tmp_path / "clip.avi", frames)
    (tmp_path / "groundtruth_rect.txt").write_text("".join(f"{x},{y},{w},{h}\n" for x, y, w, h in boxes))
    src = open_frames(path)
    assert src.fps == pytest.approx(25.0) and src.frame_size == (120, 160)
    assert src.groundtruth == tmp_path / "groundtruth_rect.txt"
    got = {}
    for name in ("a.aedat4", "h.h5"):
        out = tmp_path / name.split(".")[0]
        out.mkdir()
        assert main(["simulate", str(path), str(out / name), "--sensor", "240x320", "--quiet"]) == 0
        ts = np.loadtxt(out / "frame_timestamps.txt", dtype=np.int64)
        np.testing.assert_array_equal(ts, np.arange(1, 11) * 40_000)
        gt = np.loadtxt(out / "groundtruth_rect.txt", delimiter=",")
        np.testing.assert_allclose(gt, np.asarray(boxes, float) * 2)  # 160x120 -> 320x240 doubles the boxes
        with open_events(out / name) as r:
            assert r.info.sensor_size == (240, 320)
            # the frame times are in the recording too, whichever the format (a video's count is
            # only known at its end, so AEDAT4 is spooled and HDF5 gets them when closing)
            np.testing.assert_array_equal(r.info.frame_timestamps_us, ts)
            got[name] = r.read_all()
        assert sorted(p.name for p in out.iterdir()) == sorted(
            [name, "groundtruth_rect.txt", "absent_label.txt", "frame_timestamps.txt"])  # no spool left
    a, h = got["a.aedat4"], got["h.h5"]
    assert len(a) > 100 and a["t"].max() < 10 * 40_000
    for f in ("t", "x", "y", "p"):  # same seed: the same events in both formats
        np.testing.assert_array_equal(a[f], h[f])


def test_small_fast_target_is_upsampled():
    """A target covering 0.5 % of the frame still sets the number of sub-steps."""
    frames = []
    for x in (60, 64):
        img = np.full((120, 160), 0.3, np.float32)
        img[50:60, x:x + 10] = 0.9
        frames.append(img)
    n, flow = substeps_needed(frames[0], frames[1], UpsampleConfig(max_px_per_step=1.0))
    assert 3 <= n <= 6 and flow is not None


def test_sixteen_bit_frames_keep_their_precision(tmp_path):
    (tmp_path / "f").mkdir()
    for i, level in enumerate((1000, 1010)):
        assert cv2.imwrite(str(tmp_path / "f" / f"{i}.png"), np.full((8, 10), level, np.uint16))
    frames = [f for _, f in open_frames(tmp_path / "f", fps=100)]
    assert frames[0][0, 0] == pytest.approx(1000 / 65535) and frames[1][0, 0] == pytest.approx(1010 / 65535)


def test_upsampling_splits_fast_motion_only():
    frames, _ = moving_square_frames(2, 8)
    f0, f1 = (f.astype(np.float32) / 255 for f in frames)
    n, flow = substeps_needed(f0, f1, UpsampleConfig(max_px_per_step=1.0))
    assert 6 <= n <= 12 and flow is not None
    assert substeps_needed(f0, f0, UpsampleConfig())[0] == 1
    assert substeps_needed(f0, f1, UpsampleConfig(enabled=False))[0] == 1
    # the half-way frame shows the square half-way (about 4 px on), not a cross-fade of two squares
    mid = interpolate(f0, f1, flow, 0.5)
    cols = np.nonzero(mid[55] > (60 + 200) / 2 / 255)[0]
    assert abs(cols.min() - 14) <= 2 and abs(cols.max() - 43) <= 2


def test_fast_motion_gives_ordered_event_times_along_the_path(tmp_path):
    """With sub-steps a jumping edge fires pixel after pixel, not all at once."""
    from evtrack.io import open_events

    seq = write_otb_folder(tmp_path, n=4, step_px=12)
    for flag, name in (([], "up.h5"), (["--no-upsample"], "flat.h5")):
        assert main(["simulate", str(seq), str(tmp_path / name), "--fps", "10", "--sensor", "120x160",
                     "--noise-hz", "0", "--hot-pixels", "0", "--quiet", *flag]) == 0
    corr = {}
    for name in ("up.h5", "flat.h5"):
        with open_events(tmp_path / name) as r:
            ev = r.read_all()
        # ON events of one frame interval (the leading edge sweeping 12 px to the right)
        on = ev[(ev["p"] == 1) & (ev["t"] >= 200_000) & (ev["t"] < 300_000)]
        corr[name] = np.corrcoef(on["x"], on["t"])[0, 1] if np.ptp(on["t"]) > 0 else 0.0
    # with sub-steps, time grows with x along the sweep; without, pixels fire in an x-blind order
    assert corr["up.h5"] > 0.8 and abs(corr["flat.h5"]) < 0.5


def test_bad_inputs_give_clear_errors(tmp_path, capsys):
    seq = write_otb_folder(tmp_path, n=3)
    assert main(["simulate", str(seq), str(tmp_path / "x.h5")]) == 2
    assert "--fps" in capsys.readouterr().err
    assert main(["simulate", str(seq), str(tmp_path / "x.csv"), "--fps", "10"]) == 2
    assert ".aedat4" in capsys.readouterr().err
    assert main(["simulate", str(tmp_path / "nope.mp4"), str(tmp_path / "x.h5")]) == 2
    assert "nope.mp4" in capsys.readouterr().err
    assert main(["simulate", str(seq), str(tmp_path / "x.h5"), "--fps", "10", "--sensor", "big"]) == 2
    assert "HEIGHTxWIDTH" in capsys.readouterr().err
    (seq / "groundtruth_rect.txt").write_text("1,2,3,4\n1,2,3\n")
    with pytest.raises(FormatError, match=r"line 2 has 3 fields"):
        read_groundtruth(seq / "groundtruth_rect.txt")
    # wrong number of boxes for the frames: error, and no event file left behind
    (seq / "groundtruth_rect.txt").write_text("1,2,3,4\n")
    assert main(["simulate", str(seq), str(tmp_path / "y.h5"), "--fps", "10", "--quiet"]) == 2
    assert "1 boxes for 3 frames" in capsys.readouterr().err
    assert not (tmp_path / "y.h5").exists() and not list(tmp_path.glob(".y*"))
    (seq / "groundtruth_rect.txt").write_text("1,2,3,4\n1,2,x,4\n1,2,3,4\n")
    assert main(["simulate", str(seq), str(tmp_path / "z.h5"), "--fps", "10", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "groundtruth_rect.txt" in err and "line 2 is not numeric" in err
    (tmp_path / "junk.avi").write_bytes(b"not a video")
    with pytest.raises(FormatError, match="junk.avi"):
        open_frames(tmp_path / "junk.avi")
    assert main(["simulate", str(tmp_path / "junk.avi"), str(tmp_path / "j.h5"), "--quiet"]) == 2
    assert "junk.avi" in capsys.readouterr().err
    with pytest.raises(UserError, match="no images"):
        (tmp_path / "empty").mkdir()
        open_frames(tmp_path / "empty", fps=10)
    assert main(["simulate", str(tmp_path / "empty"), str(tmp_path / "e.h5"), "--fps", "10", "--quiet"]) == 2
    assert "no images found" in capsys.readouterr().err
    # an image that cannot be decoded, found half-way: named, and no output left behind
    frames_dir = tmp_path / "bad_frames"
    frames_dir.mkdir()
    for i in range(3):
        cv2.imwrite(str(frames_dir / f"{i}.png"), np.full((20, 30), 50 * i, np.uint8))
    (frames_dir / "1.png").write_bytes(b"broken")
    assert main(["simulate", str(frames_dir), str(tmp_path / "b.aedat4"), "--fps", "10", "--quiet"]) == 2
    assert "1.png" in capsys.readouterr().err
    assert not list(tmp_path.glob("*b.*aedat4"))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
