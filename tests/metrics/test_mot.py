"""Multi-object metrics: motmetrics' own MOTChallenge reference values, and the numpy-2 shim."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evtrack.metrics.mot import MOTFrame, accumulate, evaluate_motchallenge, motmetrics, summarize


def test_shim_does_not_touch_global_numpy():
    mm = motmetrics()
    assert not hasattr(np, "asfarray")
    d = mm.distances.iou_matrix([[0, 0, 10, 10]], [[0, 0, 10, 10], [5, 0, 10, 10]], max_iou=0.9)
    np.testing.assert_allclose(d, [[0.0, 1 - 50 / 150]])


def test_motchallenge_reference_values():
    # The TUD sequences and expected numbers ship with motmetrics (tests/test_metrics.py).
    mm = motmetrics()
    data = Path(mm.__file__).parent / "data"
    if not (data / "TUD-Campus" / "gt.txt").exists():
        pytest.skip("motmetrics sample data not installed")
    accs = {d: evaluate_motchallenge(str(data / d / "gt.txt"), str(data / d / "test.txt"))
            for d in ("TUD-Campus", "TUD-Stadtmitte")}
    out = summarize(accs, metrics=("idf1", "mota", "motp", "num_switches", "num_false_positives", "num_misses"))
    expected = {
        "TUD-Campus": (0.557659, 0.526462, 0.277201, 7, 13, 150),
        "TUD-Stadtmitte": (0.644619, 0.564014, 0.345904, 7, 45, 452),
        "OVERALL": (0.624296, 0.555116, 0.330177, 14, 58, 602),
    }
    for name, (idf1, mota, motp, sw, fp, fn) in expected.items():
        row = out[name]
        assert row["idf1"] == pytest.approx(idf1, abs=1e-3)
        assert row["mota"] == pytest.approx(mota, abs=1e-3)
        assert row["motp"] == pytest.approx(motp, abs=1e-3)
        assert (row["num_switches"], row["num_false_positives"], row["num_misses"]) == (sw, fp, fn)


def test_accumulate_hand_case_with_switch_and_empty_frames():
    box_a, box_b = [0, 0, 10, 10], [50, 50, 10, 10]
    frames = [
        MOTFrame(np.array([1, 2]), np.array([box_a, box_b]), np.array([7, 8]), np.array([box_a, box_b])),
        # hypotheses swap ids: two ID switches
        MOTFrame(np.array([1, 2]), np.array([box_a, box_b]), np.array([8, 7]), np.array([box_a, box_b])),
        # a miss and no hypotheses at all
        MOTFrame(np.array([1]), np.array([box_a]), np.array([], int), np.zeros((0, 4))),
        # a false positive with no ground truth
        MOTFrame(np.array([], int), np.zeros((0, 4)), np.array([9]), np.array([box_b])),
    ]
    row = summarize({"s": accumulate(frames)})["s"]
    assert row["num_objects"] == 5
    assert row["num_switches"] == 2
    assert row["num_misses"] == 1 and row["num_false_positives"] == 1
    assert row["mota"] == pytest.approx(1 - (1 + 1 + 2) / 5)
    assert row["motp"] == pytest.approx(0.0)


def test_evaluate_command_motchallenge_layout(tmp_path, capsys):
    import json
    import shutil

    from evtrack.cli import main

    data = Path(motmetrics().__file__).parent / "data"
    if not (data / "TUD-Campus" / "gt.txt").exists():
        pytest.skip("motmetrics sample data not installed")
    for d in ("TUD-Campus", "TUD-Stadtmitte"):
        (tmp_path / "gt" / d / "gt").mkdir(parents=True)
        shutil.copy(data / d / "gt.txt", tmp_path / "gt" / d / "gt" / "gt.txt")
        (tmp_path / "res").mkdir(exist_ok=True)
        shutil.copy(data / d / "test.txt", tmp_path / "res" / f"{d}.txt")
    assert main(["evaluate", str(tmp_path / "res"), "--dataset", "motchallenge", "--root", str(tmp_path / "gt"),
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_sequences"] == 2
    assert out["mota"] == pytest.approx(0.555116, abs=1e-3) and out["idf1"] == pytest.approx(0.624296, abs=1e-3)
    assert out["num_switches"] == 14

    (tmp_path / "res" / "TUD-Campus.txt").unlink()
    assert main(["evaluate", str(tmp_path / "res"), "--dataset", "motchallenge", "--root", str(tmp_path / "gt")]) == 2
    assert "no result file for 1 of 2 sequences" in capsys.readouterr().err
