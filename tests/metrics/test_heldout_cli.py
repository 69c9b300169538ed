"""``evtrack tune`` and ``evtrack compare`` on tiny held-out sets with the shipped weights, and
``evtrack failures`` on a recorded (not generated) dataset."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from tiny_sets import LENGTHS, make_dataset

from evtrack.cli import main
from evtrack.datasets import load_dataset
from evtrack.metrics.losses import CAUSES
from evtrack.metrics.results import write_boxes
from evtrack.network.checkpoint import load_checkpoint, set_tracking_options
from evtrack.tracker.online import shipped_checkpoint


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    base = tmp_path_factory.mktemp("heldout")
    return [str(make_dataset(base / name, split="train")) for name in ("a", "b")]


@pytest.fixture
def checkpoint(tmp_path):
    path = tmp_path / "tiny.pt"
    shutil.copy(shipped_checkpoint(), path)
    return path


def test_tune_scores_the_grid_over_several_roots_and_writes_the_best(roots, checkpoint, tmp_path, capsys):
    out = tmp_path / "tune.json"
    before = load_checkpoint(checkpoint).get("tracking", {})
    rc = main(["tune", "--checkpoint", str(checkpoint), "--data", *roots, "--sequences", "2", "--min-score", "0.0",
               "0.99", "--motion", "0.5", "--workers", "1", "--write", "--json", str(out)])
    assert rc == 0
    data = json.loads(out.read_text())
    assert [(r["min_score"], r["motion"]) for r in data["rows"]] == [(0.0, 0.5), (0.99, 0.5)]
    assert all(r["n_sequences"] == 4 for r in data["rows"])  # two from each root: keyed root/name
    best = max(data["rows"], key=lambda r: r["auc"])
    # the window power not given: the checkpoint's stored one
    assert data["best"] == {"min_score": best["min_score"], "motion": 0.5, "window_power": before.get("window_power", 1.0)}
    assert load_checkpoint(checkpoint)["tracking"] == {**before, **data["best"]}
    assert "| min_score | motion | window_power | AUC | PR | NPR |" in capsys.readouterr().out


def test_tune_refuses_the_test_split_and_a_missing_checkpoint(roots, checkpoint, tmp_path, capsys):
    assert main(["tune", "--checkpoint", str(checkpoint), "--data", roots[0], "--split", "test"]) == 2
    assert "--split test" in capsys.readouterr().err
    assert main(["tune", "--checkpoint", str(tmp_path / "none.pt"), "--data", roots[0]]) == 2
    assert "none.pt: no such file" in capsys.readouterr().err


def test_compare_gives_paired_differences_to_the_first(roots, checkpoint, tmp_path, capsys):
    blind = tmp_path / "blind.pt"  # the same weights never following the peak: a different tracker
    shutil.copy(checkpoint, blind)
    set_tracking_options(blind, {"min_score": 0.99, "motion": 0.0})
    out = tmp_path / "compare.json"
    assert main(["compare", str(checkpoint), str(blind), "--data", roots[0], "--workers", "1",
                 "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    ref, other = (data["per_sequence"][str(c)] for c in (checkpoint, blind))
    assert sorted(ref) == sorted(LENGTHS)
    diffs = np.array([other[k]["auc"] - ref[k]["auc"] for k in sorted(ref)])
    first, second = data["table"]
    assert first["auc_diff"] == 0 and first["auc_ci95"] == [0, 0]
    assert second["auc_diff"] == pytest.approx(diffs.mean())
    assert second["auc_ci95"][0] <= diffs.mean() <= second["auc_ci95"][1]
    assert second["auc"] == pytest.approx(np.mean([other[k]["auc"] for k in other]))
    assert "AUC vs first" in capsys.readouterr().out
    assert main(["compare", str(checkpoint), str(tmp_path / "gone.pt"), "--data", roots[0]]) == 2
    assert "no such checkpoint" in capsys.readouterr().err


def test_failures_on_a_recorded_dataset(tmp_path, capsys):
    """A dataset make-dataset did not generate gets the causes that need no scene model."""
    root = make_dataset(tmp_path / "rec")
    results = tmp_path / "res"
    results.mkdir()
    sequences = load_dataset("synthetic", root)
    for s in sequences:
        boxes = s.boxes.copy()
        boxes[1:] = [40, 30, 2, 2]  # parks away from the target after the first frame
        write_boxes(results / f"{s.name}.txt", boxes)
    out = tmp_path / "f.json"
    assert main(["failures", "--root", str(root), "--results", str(results), "--json", str(out), "--list"]) == 0
    data = json.loads(out.read_text())
    assert set(data["table"]) == set(CAUSES)
    assert sum(row["sequences"] for row in data["table"].values()) == len(sequences)
    lost = [s for s in data["sequences"] if s["loss"] is not None]
    assert lost and all(s["cause"] in CAUSES and s["cause"] != "none" for s in lost)
    assert "largest jump" in capsys.readouterr().out


def test_compare_and_tune_with_tre(roots, checkpoint, tmp_path, monkeypatch, capsys):
    """--tre: every sequence tracked again from later frames, scores pooled per sequence (metrics.tre)."""
    from evtrack.metrics import tre

    monkeypatch.setattr(tre, "MIN_RUN_FRAMES", 2)  # the tiny sequences are 4-9 frames long
    blind = tmp_path / "blind.pt"
    shutil.copy(checkpoint, blind)
    set_tracking_options(blind, {"min_score": 0.99, "motion": 0.0})
    out = tmp_path / "compare.json"
    assert main(["compare", str(checkpoint), str(blind), "--data", roots[0], "--workers", "1", "--tre", "3",
                 "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["tre"] == 3 and sorted(data["per_sequence"][str(blind)]) == sorted(LENGTHS)
    assert "TRE with up to 3 runs" in capsys.readouterr().out
    # the never-following tracker holds each run's first box: its TRE score is the constant tracker's
    seqs = load_dataset("synthetic", roots[0], split="train")
    const = tre.score_tre(seqs, {r.name: np.repeat(r.boxes[:1], len(r), 0) for r in tre.tre_runs(seqs, 3)})
    assert data["table"][1]["auc"] == pytest.approx(const.auc, abs=1e-6)
    out = tmp_path / "tune.json"
    assert main(["tune", "--checkpoint", str(checkpoint), "--data", roots[0], "--min-score", "0.0", "--motion", "0",
                 "--window-power", "1", "3", "--workers", "1", "--tre", "3", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["tre"] == 3 and [r["window_power"] for r in data["rows"]] == [1.0, 3.0]
    with pytest.raises(SystemExit) as exc:
        main(["compare", str(checkpoint), str(blind), "--data", roots[0], "--tre", "-2"])
    assert exc.value.code == 2 and "argument --tre: must be >= 0" in capsys.readouterr().err
