"""OPE metrics: hand-computed cases for every rule of the official kit, then the real FE108 results."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from evtrack.errors import FormatError
from evtrack.metrics import (
    SUCCESS_THRESHOLDS,
    attribute_breakdown,
    evaluate_ope,
    iou_inclusive,
    read_boxes,
    read_flags,
    sequence_errors,
)
from evtrack.metrics.ope import clean_results


def test_iou_hand_values():
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10], [2.5, 0, 5, 10]], float)
    b = np.array([[0, 0, 10, 10], [5, 5, 10, 10], [10, 0, 10, 10], [0, 0, 5, 5], [0, 0, 5, 10]], float)
    # overlap of the last pair: x in [2.5, 4.5] inclusive -> 2.5 px wide, 10 high
    expected = [1.0, 25 / 175, 0.0, 25 / 100, 25 / (50 + 50 - 25)]
    np.testing.assert_allclose(iou_inclusive(a, b), expected)


def test_clean_results_rules():
    gt = np.array([[10, 10, 5, 5]] * 5, float)
    pred = np.array(
        [
            [1, 1, 4, 4],  # frame 1: replaced by GT, but is what frame 2 inherits
            [np.nan, 2, 3, 3],  # NaN -> previous raw line
            [3, 3, 0, 4],  # zero width -> previous (already repaired) line
            [4, 4, 4, 4],
            [5, 5, -1, 4],  # negative width -> previous
            [9, 9, 9, 9],  # extra line: cut
        ]
    )
    out = clean_results(pred, gt)
    np.testing.assert_array_equal(
        out, [[10, 10, 5, 5], [1, 1, 4, 4], [1, 1, 4, 4], [4, 4, 4, 4], [4, 4, 4, 4]]
    )


def test_short_results_are_an_error():
    gt = np.ones((5, 4))
    with pytest.raises(FormatError, match="found 3 result lines, expected at least 5"):
        clean_results(np.ones((3, 4)), gt, name="seqA")


def test_perfect_tracker_scores_the_kits_95_2_auc():
    # IoU = 1 is not > 1, so the last of the 21 thresholds always fails: AUC = 20/21.
    gt = np.array([[10, 20, 30, 40], [11, 21, 30, 40], [12, 22, 31, 41]], float)
    res = evaluate_ope({"s": gt}, {"s": gt})
    assert res.auc == pytest.approx(100 * 20 / 21)
    assert res.pr == pytest.approx(100.0)
    assert res.npr == pytest.approx(100.0)


def test_absent_frames_removed_but_counted_in_denominator():
    gt = np.array([[10, 10, 10, 10]] * 4, float)
    pred = gt.copy()
    absent = np.array([False, True, False, False])
    err = sequence_errors(pred, gt, absent)
    assert err.n_frames == 4 and err.iou.shape == (3,)
    res = evaluate_ope({"s": pred}, {"s": gt}, {"s": absent})
    assert res.success[0, 0] == pytest.approx(3 / 4)
    assert res.pr == pytest.approx(75.0)


def test_invalid_ground_truth_fails_success_but_passes_precision():
    # Frame 2's GT has x = 0 (not all-positive): IoU -1, centre error -1 (kit quirk).
    gt = np.array([[10, 10, 10, 10], [0, 10, 10, 10]], float)
    pred = np.array([[10, 10, 10, 10], [100, 100, 10, 10]], float)
    err = sequence_errors(pred, gt)
    assert err.iou[1] == -1 and err.center_error_px[1] == -1 and err.norm_center_error[1] == -1
    res = evaluate_ope({"s": pred}, {"s": gt})
    assert res.success[0, 0] == pytest.approx(0.5)  # only frame 1 has IoU > 0
    assert res.precision[0, 0] == pytest.approx(1.0)  # both frames "within" 0 px


def test_precision_and_normalised_precision_thresholds():
    gt = np.array([[0, 0, 100, 50]] * 3, float) + [[1, 1, 0, 0]]
    # frame 2 centre off by 20 px in x (0.2 of the width) -> inside PR@20 and NPR@0.2
    # frame 3 off by 21 px in y (0.42 of the height) -> outside both
    pred = gt + [[0, 0, 0, 0], [20, 0, 0, 0], [0, 21, 0, 0]]
    err = sequence_errors(pred, gt)
    np.testing.assert_allclose(err.center_error_px, [0, 20, 21])
    np.testing.assert_allclose(err.norm_center_error, [0, 0.2, 0.42])
    res = evaluate_ope({"s": pred}, {"s": gt})
    assert res.pr == pytest.approx(200 / 3)
    assert res.npr == pytest.approx(200 / 3)


def test_auc_is_mean_over_thresholds_of_mean_over_sequences():
    gt = np.array([[10, 10, 20, 20]] * 3, float)
    a = gt + [[0, 0, 0, 0], [5, 0, 0, 0], [10, 10, 0, 0]]
    b = gt + [[0, 0, 0, 0], [30, 30, 0, 0], [2, 0, 0, 0]]
    res = evaluate_ope({"a": a, "b": b}, {"a": gt, "b": gt})
    ious = {"a": iou_inclusive(np.vstack([gt[0], a[1:]]), gt), "b": iou_inclusive(np.vstack([gt[0], b[1:]]), gt)}
    curves = [(ious[k][:, None] > SUCCESS_THRESHOLDS).mean(axis=0) for k in ("a", "b")]
    assert res.auc == pytest.approx(100 * np.mean(np.mean(curves, axis=0)))
    per = res.per_sequence()
    assert per["a"]["auc"] == pytest.approx(100 * curves[0].mean())
    assert res.subset(["b"]).auc == pytest.approx(per["b"]["auc"])


def test_missing_results_and_bad_absent_length():
    gt = np.ones((3, 4))
    with pytest.raises(FormatError, match="results missing for 1 sequence"):
        evaluate_ope({}, {"s": gt})
    with pytest.raises(FormatError, match="found 2 absent flags, expected 3"):
        evaluate_ope({"s": gt}, {"s": gt}, {"s": np.zeros(2, bool)})


def test_attribute_breakdown():
    gt = np.array([[10, 10, 10, 10]] * 2, float)
    bad = gt + [[0, 0, 0, 0], [50, 50, 0, 0]]
    res = evaluate_ope({"a": gt, "b": bad, "c": gt}, {"a": gt, "b": gt, "c": gt})
    table = attribute_breakdown(res, {"a": {"low": True, "hdr": False}, "b": {"low": True}, "c": {}})
    assert set(table) == {"low"}
    assert table["low"]["n_sequences"] == 2
    assert table["low"]["pr"] == pytest.approx(75.0)


def _load_official(root):
    seqs = (root / "test_sequences.txt").read_text().split()
    gt = {s: read_boxes(root / "annos" / "gt_rect" / f"{s}.txt") for s in seqs}
    absent = {s: read_flags(root / "annos" / "absent" / f"{s}.txt") for s in seqs}
    return seqs, gt, absent


def test_fe108_published_results_reproduced(shared_data):
    root = shared_data / "fe108_official"
    seqs, gt, absent = _load_official(root)
    assert len(seqs) == 32
    with open(root / "expected_published.csv") as f:
        expected = list(csv.DictReader(f))
    assert len(expected) == 3
    for row in expected:
        res_dir = root / "results" / row["tracker"]
        results = {s: read_boxes(res_dir / f"{s}.txt") for s in seqs}
        res = evaluate_ope(results, gt, absent)
        assert abs(res.auc - float(row["fe108_auc"])) <= 0.1, (row["tracker"], res.auc)
        assert abs(res.pr - float(row["fe108_pr"])) <= 0.1, (row["tracker"], res.pr)
        assert 0 < res.npr < res.pr
