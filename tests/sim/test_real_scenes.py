"""Scenes of real material: target crops of RGB frames over RGB backgrounds, exact ground truth."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from evtrack.cli import main
from evtrack.errors import UserError
from evtrack.sim.dataset import dataset_config, sequence_scene, sequence_seed
from evtrack.sim.real_scenes import ImageBank, image_sprite, random_real_scene
from evtrack.sim.scenes import SceneConfig
from evtrack.sim.trajectories import Trajectory


def write_bank(root: Path, n_seq: int = 2, n: int = 4) -> Path:
    rng = np.random.default_rng(0)
    for k in range(n_seq):
        seq = root / f"s{k}"
        (seq / "img").mkdir(parents=True)
        for i in range(n):
            img = (rng.random((90, 120)) * 60 + 40).astype(np.uint8)
            img[30:50, 40 + i:70 + i] = 230  # the "target": a bright 30x20 block
            cv2.imwrite(str(seq / "img" / f"{i + 1:04d}.png"), img)
        (seq / "groundtruth_rect.txt").write_text("".join(f"{40 + i},30,30,20\n" for i in range(n)))
    return root


def test_image_sprite_shows_the_box_content_at_the_requested_size():
    frame = np.full((60, 80), 0.1, np.float32)
    frame[10:30, 20:60] = 0.9  # box 20,10,40,20
    traj = Trajectory.static(1.0, (50.0, 40.0))
    sp = image_sprite(frame, np.array([20.0, 10.0, 40.0, 20.0]), 20.0, 10.0, traj)
    np.testing.assert_allclose(sp.box(0.5), [40.0, 35.0, 20.0, 10.0])
    (x0, y0, x1, y1), patch = sp.warp(0.5, (80, 100))
    pre, alpha = patch[..., 0], patch[..., 1]
    inside = alpha > 0.99
    assert inside.sum() >= 150  # about 20 x 10 pixels fully covered
    np.testing.assert_allclose(pre[inside], 0.9, atol=0.02)  # the box content only (no background)


def test_real_scene_renders_with_exact_box(tmp_path):
    bank = ImageBank.load(write_bank(tmp_path / "rgb"))
    cfg = replace(SceneConfig(), sensor_size=(96, 128), duration_s=(1.0, 1.0), target_size_px=(16.0, 24.0),
                  p_occlusion=0.0, max_distractors=0, camera_speed_px_s=(0.0, 0.0))
    scene = random_real_scene(np.random.default_rng(1), bank, cfg)
    assert scene.attributes["material"] == "real" and scene.attributes["source"] in ("s0", "s1")
    t = 0.5
    img = scene.render(t)
    x, y, w, h = scene.target_box(t)
    assert 14 <= max(w, h) <= 40
    cx, cy = int(x + w / 2), int(y + h / 2)
    # the target is the bright block of a real frame, the background a real (darker) frame
    assert img[cy, cx] > 0.6 and np.median(img) < 0.45


def test_make_dataset_with_materials_is_deterministic_and_rebuildable(tmp_path):
    bank = write_bank(tmp_path / "rgb")
    args = ["make-dataset", None, "--train", "2", "--test", "0", "--seed", "4", "--materials", str(bank),
            "--duration", "0.3,0.4", "--sensor", "96x128", "--quiet"]
    for out in ("d1", "d2"):
        args[1] = str(tmp_path / out)
        assert main(args) == 0
    for name in ("synth_train_0000", "synth_train_0001"):
        a = (tmp_path / "d1" / "train" / name / "events.h5").read_bytes()
        assert a == (tmp_path / "d2" / "train" / name / "events.h5").read_bytes()
    seed, cfg = dataset_config(tmp_path / "d1")
    assert cfg.materials == str(bank.resolve())
    scene, _ = sequence_scene(sequence_seed(seed, "train", 0), cfg)
    stored = np.loadtxt(tmp_path / "d1" / "train" / "synth_train_0000" / "groundtruth_rect.txt", delimiter=",")
    assert scene.attributes["material"] == "real" and len(stored) >= 7


def test_materials_without_sequences_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["make-dataset", str(tmp_path / "out"), "--train", "1", "--test", "0",
                 "--materials", str(tmp_path / "empty"), "--quiet"]) == 2
    assert "no tracking sequences found" in capsys.readouterr().err
    with pytest.raises(UserError):
        ImageBank([], tmp_path)
