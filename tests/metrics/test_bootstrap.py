"""Bootstrap intervals over sequences: their size follows the spread, paired differences cancel it."""

from __future__ import annotations

import numpy as np
import pytest

from evtrack.errors import UserError
from evtrack.metrics import evaluate_ope
from evtrack.metrics.bootstrap import difference_interval, percentile_interval, score_interval


def _results(shifts: dict[str, float], n_frames: int = 30):
    """Ground truth and predictions shifted right by ``shifts[name]`` pixels on every frame."""
    gt, pred = {}, {}
    for k, (name, dx) in enumerate(shifts.items()):
        g = np.tile(np.array([[20.0 + k, 30.0, 20.0, 20.0]]), (n_frames, 1))
        gt[name] = g
        p = g.copy()
        p[:, 0] += dx
        pred[name] = p
    return evaluate_ope(pred, gt)


def test_constant_values_give_a_point_interval():
    assert percentile_interval(np.full(12, 41.5)) == pytest.approx((41.5, 41.5))


def test_interval_matches_the_normal_approximation_for_many_sequences():
    rng = np.random.default_rng(1)
    values = rng.normal(50.0, 20.0, 400)
    lo, hi = percentile_interval(values, n_resamples=4000)
    half = 1.96 * values.std() / np.sqrt(len(values))
    assert lo < values.mean() < hi
    assert (hi - lo) / 2 == pytest.approx(half, rel=0.1)
    # four times the sequences: about half the width
    lo4, hi4 = percentile_interval(np.tile(values, 4), n_resamples=4000)
    assert (hi4 - lo4) == pytest.approx((hi - lo) / 2, rel=0.15)


def test_same_seed_same_interval_and_level_widens_it():
    values = np.random.default_rng(2).uniform(0, 100, 30)
    assert percentile_interval(values, seed=3) == percentile_interval(values, seed=3)
    lo90, hi90 = percentile_interval(values, level=0.9)
    lo99, hi99 = percentile_interval(values, level=0.99)
    assert lo99 < lo90 < hi90 < hi99


def test_score_interval_brackets_the_score():
    res = _results({f"s{i}": dx for i, dx in enumerate([0, 2, 5, 9, 14, 20, 30, 0, 3, 7])})
    lo, hi = score_interval(res, "auc")
    assert lo < res.auc < hi
    lo, hi = score_interval(res, "pr")
    assert lo <= res.pr <= hi and hi - lo > 0


def test_paired_difference_cancels_what_both_share():
    shifts = {f"s{i}": dx for i, dx in enumerate([0, 3, 6, 9, 12, 15, 18, 21, 24, 27])}
    a = _results(shifts)
    # b is a everywhere except one sequence: its unpaired spread is as wide as a's,
    # the paired difference is non-zero on that one sequence only
    b = _results({**shifts, "s0": 8})
    assert difference_interval(a, a) == pytest.approx((0.0, 0.0))
    lo, hi = difference_interval(a, b)
    assert lo >= 0.0 and hi > 0.0
    assert hi - lo < (score_interval(a)[1] - score_interval(a)[0]) / 2


def test_bad_input_is_named():
    a = _results({"s0": 0, "s1": 5})
    b = _results({"s0": 0, "s2": 5})
    with pytest.raises(UserError, match="different sequences"):
        difference_interval(a, b)
    with pytest.raises(UserError, match="unknown metric 'iou'"):
        score_interval(a, "iou")
    with pytest.raises(UserError, match="non-empty"):
        percentile_interval(np.array([]))
    with pytest.raises(UserError, match="level"):
        percentile_interval(np.ones(3), level=1.5)
