"""Loss analysis on generated sequences: scenes rebuilt from the seed, losses found and attributed."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from evtrack.datasets import load_dataset
from evtrack.errors import UserError
from evtrack.metrics.results import read_boxes, read_flags, write_boxes
from evtrack.sim.dataset import SequenceConfig, dataset_config, ground_truth, make_dataset
from evtrack.sim.esim import SensorConfig
from evtrack.sim.failures import (
    LossRules,
    analyse_results,
    first_loss,
    rebuild_scene,
    summarise,
)
from evtrack.sim.scenes import SceneConfig

SMALL = SequenceConfig(
    render_fps=400.0,
    gt_hz=20.0,
    sensor=replace(SensorConfig(), height=96, width=128),
    scene=replace(SceneConfig(), sensor_size=(96, 128), duration_s=(1.0, 1.0), target_size_px=(16.0, 24.0),
                  max_distractors=3),
)
SEED = 11


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("failures") / "set"
    make_dataset(root, 0, 4, seed=SEED, workers=1, cfg=SMALL, show_progress=False)
    return root


def names(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "test").iterdir())


def sequences(root: Path) -> dict:
    return {s.name: s for s in load_dataset("synthetic", root, "test")}


def test_first_loss_rules():
    ok, miss = 0.8, 0.0
    absent = np.zeros(12, bool)
    assert first_loss(np.full(12, ok), absent) is None
    iou = np.array([ok] * 4 + [miss] * 8)
    assert first_loss(iou, absent) == 4
    # a short miss that recovers is not a loss
    iou = np.array([ok, ok, miss, miss, ok, ok, ok, ok, ok, ok, ok, ok])
    assert first_loss(iou, absent) is None
    # absent frames are skipped: the misses around them still count as one run
    iou = np.array([ok, ok, miss, miss, miss, miss, miss, miss, miss, miss, ok, ok])
    absent2 = absent.copy()
    absent2[3:6] = True
    assert first_loss(iou, absent2) == 2  # present misses 2, 6, 7, 8, 9: five of the next eight
    iou[9] = ok
    assert first_loss(iou, absent2) is None  # four of them
    # near the end fewer frames remain: all of them must miss
    iou = np.array([ok] * 10 + [miss] * 2)
    assert first_loss(iou, absent) == 10
    assert first_loss(iou, absent, LossRules(miss_iou=-1.0)) is None


def test_config_round_trip_and_rebuilt_scene_matches(dataset):
    seed, cfg = dataset_config(dataset)
    assert seed == SEED and cfg == SMALL
    for name, seq in sequences(dataset).items():
        scene = rebuild_scene(seq, "test", seed, cfg)
        boxes, absent = ground_truth(scene, seq.frame_times_us(), cfg.absent_visibility)
        np.testing.assert_allclose(boxes, read_boxes(dataset / "test" / name / "groundtruth_rect.txt"), atol=1e-3)
        np.testing.assert_array_equal(absent, read_flags(dataset / "test" / name / "absent_label.txt"))


def test_perfect_results_have_no_loss(dataset, tmp_path):
    for name in names(dataset):
        write_boxes(tmp_path / f"{name}.txt", read_boxes(dataset / "test" / name / "groundtruth_rect.txt"))
    losses = analyse_results(dataset, tmp_path)
    assert [s.cause for s in losses] == ["none"] * len(names(dataset))
    table = summarise(losses)
    assert table["none"]["sequences"] == len(losses) and table["distractor"]["frames_after_loss"] == 0


def test_switch_to_a_distractor_is_found(dataset, tmp_path):
    seed, cfg = dataset_config(dataset)
    picked = None
    for name, seq in sequences(dataset).items():
        scene = rebuild_scene(seq, "test", seed, cfg)
        if scene.distractors:
            picked = (name, scene)
            break
    if picked is None:
        pytest.skip("no generated sequence has a distractor")
    name, scene = picked
    seq = dataset / "test" / name
    gt = read_boxes(seq / "groundtruth_rect.txt")
    ts = np.loadtxt(seq / "frame_timestamps.txt", dtype=np.int64)
    k = len(gt) // 3
    pred = gt.copy()
    pred[k:] = [scene.distractors[0].box(t * 1e-6) for t in ts[k:]]
    write_boxes(tmp_path / f"{name}.txt", pred)
    (loss,) = analyse_results(dataset, tmp_path)
    assert loss.name == name and loss.cause == "distractor"
    assert loss.loss is not None and loss.loss >= k and loss.frames_on_distractor >= 5
    assert loss.frames_after == len(gt) - loss.loss


def test_wrong_seed_or_generator_is_refused(dataset, tmp_path):
    name = names(dataset)[0]
    _, cfg = dataset_config(dataset)
    with pytest.raises(UserError, match=f"{name}/groundtruth_rect.txt.*not made with this"):
        rebuild_scene(sequences(dataset)[name], "test", SEED + 1, cfg)
    other = tmp_path / "old"
    (other / "test").mkdir(parents=True)
    manifest = json.loads((dataset / "dataset.json").read_text())
    manifest["generator_version"] = 0
    (other / "dataset.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="generator_version 0"):
        dataset_config(other)
    manifest["generator_version"] = json.loads((dataset / "dataset.json").read_text())["generator_version"]
    manifest["config"]["scene"]["colour"] = "red"
    (other / "dataset.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="dataset.json: config: field 'scene'.*expected an object with fields"):
        dataset_config(other)
    del manifest["config"]["scene"]["colour"]
    manifest["config"]["gain"] = 2
    (other / "dataset.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match=r"unknown config field\(s\) \['gain'\]"):
        dataset_config(other)
    with pytest.raises(UserError, match="no result file"):
        analyse_results(dataset, tmp_path / "empty")
    bad = tmp_path / "short"
    bad.mkdir()
    write_boxes(bad / f"{name}.txt", np.ones((2, 4)))
    with pytest.raises(UserError, match="2 result boxes"):
        analyse_results(dataset, bad)


def test_failures_command_writes_table(dataset, tmp_path, capsys):
    from evtrack.cli import main

    results = tmp_path / "res"
    results.mkdir()
    for name in names(dataset):
        gt = read_boxes(dataset / "test" / name / "groundtruth_rect.txt")
        gt[len(gt) // 2 :] = [0, 0, 2, 2]  # the box parks in a corner halfway through
        write_boxes(results / f"{name}.txt", gt)
    out = tmp_path / "f.json"
    assert main(["failures", "--root", str(dataset), "--results", str(results), "--json", str(out), "--list"]) == 0
    text = capsys.readouterr().out
    assert "| cause | sequences |" in text
    data = json.loads(out.read_text())
    lost = [s for s in data["sequences"] if s["loss"] is not None]
    assert len(lost) == len(names(dataset)) and all(s["cause"] != "none" for s in lost)
    assert sum(row["sequences"] for row in data["table"].values()) == len(names(dataset))
    assert main(["failures", "--root", str(tmp_path / "nowhere"), "--results", str(results)]) == 2
    assert main(["failures", "--root", str(dataset), "--split", "nope", "--results", str(results)]) == 2
    assert "no folder for split 'nope'" in capsys.readouterr().err
