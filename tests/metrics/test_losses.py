"""Loss causes on recorded sequences (no scene model): absent, fast motion, small, clutter."""

from __future__ import annotations

import numpy as np

from evtrack.io.events import make_events
from evtrack.metrics.losses import RealLossRules, clutter_ratio, first_loss, sequence_loss


def _events(xs, ys):
    xs, ys = np.asarray(xs), np.asarray(ys)
    return make_events(np.arange(len(xs)), xs, ys, np.ones(len(xs)))


def _track(n=20, size=20.0, step=2.0, lose_at=10):
    gt = np.array([[10 + step * i, 50, size, size] for i in range(n)], dtype=float)
    pred = gt.copy()
    pred[lose_at:] = [200, 200, size, size]  # the box leaves the target at lose_at
    return gt, pred


def quiet(i):  # events on the target only
    return _events(np.full(50, 25 + 2 * i), np.full(50, 60))


def test_first_loss_needs_several_misses():
    iou = np.ones(20)
    iou[5] = 0.0  # one miss alone is not a loss
    iou[12:] = 0.0
    assert first_loss(iou, np.zeros(20, bool)) == 12


def test_causes_in_order():
    gt, pred = _track()
    absent = np.zeros(len(gt), bool)
    assert sequence_loss("s", gt, absent, gt.copy(), quiet).cause == "none"
    assert sequence_loss("s", gt, absent, pred, quiet).cause == "other"
    a = absent.copy()
    a[9] = True
    assert sequence_loss("s", gt, a, pred, quiet).cause == "absent"
    fast = gt.copy()
    fast[9:, 0] += 30  # a jump of 1.5 target sizes into frame 9
    assert sequence_loss("s", fast, absent, pred, quiet).cause == "fast_motion"
    small_gt, small_pred = _track(size=6.0, step=0.5)
    assert sequence_loss("s", small_gt, absent, small_pred, quiet).cause == "small"

    def busy(i):  # as many events per pixel around the target as on it
        rng = np.random.default_rng(i)
        return _events(rng.integers(0, 120, 20000), rng.integers(10, 110, 20000))

    loss = sequence_loss("s", gt, absent, pred, busy)
    assert loss.cause == "clutter" and loss.clutter > RealLossRules().clutter_ratio


def test_clutter_ratio_compares_densities():
    box = np.array([40.0, 40.0, 10.0, 10.0])
    on_target = _events(np.full(100, 45), np.full(100, 45))
    assert clutter_ratio(on_target, box, 4.0) == 0.0
    ring = _events([20, 60], [20, 60])
    assert clutter_ratio(np.concatenate([on_target, ring]), box, 4.0) > 0
