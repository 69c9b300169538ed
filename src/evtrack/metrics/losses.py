"""Where a tracker lost the target, and why: the loss rule, and causes on recorded (real) sequences.

Generated scenes can be rebuilt from their seed (:mod:`evtrack.sim.failures`); recorded ones only
have their boxes and events. From those, the first loss (:func:`first_loss`, the rule generated
scenes use too) is put down to the first of these that held in the
``before`` frames up to it:

- ``absent``: the target was flagged absent (occluded or out of view) just before;
- ``fast_motion``: its centre moved more than ``fast_sizes`` target sizes in one frame
  (the search region is ``search_factor`` sizes wide, so such a jump leaves little margin);
- ``small``: its box was smaller than ``small_px`` sensor pixels (``sqrt(w h)``);
- ``clutter``: the background around it (the search region minus the box) fired at least
  ``clutter_ratio`` times as many events per pixel as the target itself;
- ``other``, or ``none`` when the target was never lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evtrack.errors import UserError
from evtrack.metrics.ope import centers, iou_inclusive
from evtrack.metrics.results import read_boxes


@dataclass(frozen=True)
class MissRule:
    """What defines a loss: misses (IoU <= ``miss_iou``) on ``miss_frames`` of ``window`` present frames."""

    miss_iou: float = 0.1
    miss_frames: int = 5
    window: int = 8


CAUSES = ("absent", "fast_motion", "small", "clutter", "other", "none")


@dataclass(frozen=True)
class RealLossRules(MissRule):
    """The loss rule and the thresholds of the causes (module docstring)."""

    before: int = 3
    fast_sizes: float = 0.5
    small_px: float = 10.0
    clutter_ratio: float = 0.5
    search_factor: float = 4.0


@dataclass(frozen=True)
class RealLoss:
    name: str
    n_frames: int
    loss: int | None
    cause: str
    max_jump: float | None = None  # largest centre motion per frame before the loss, in target sizes
    min_size_px: float | None = None
    clutter: float | None = None  # background / target events per pixel before the loss

    @property
    def frames_after(self) -> int:
        return 0 if self.loss is None else self.n_frames - self.loss


def clutter_ratio(events: np.ndarray, box: np.ndarray, search_factor: float) -> float:
    """Events per pixel in the search region around ``box`` (box excluded) over those inside the box."""
    x, y, w, h = (float(v) for v in box)
    side = search_factor * np.sqrt(max(w * h, 1.0))
    cx, cy = x + w / 2, y + h / 2
    ex, ey = events["x"].astype(np.float64), events["y"].astype(np.float64)
    in_box = (ex >= x) & (ex < x + w) & (ey >= y) & (ey < y + h)
    in_search = (np.abs(ex - cx) < side / 2) & (np.abs(ey - cy) < side / 2)
    n_box = int(in_box.sum())
    ring_area = max(side * side - w * h, 1.0)
    ring = (in_search & ~in_box).sum() / ring_area
    return float(ring / max(n_box / max(w * h, 1.0), 1e-9)) if n_box else float("inf")


def first_loss(iou: np.ndarray, absent: np.ndarray, rules: MissRule = MissRule()) -> int | None:
    """First present frame (> 0) from which the box misses on ``miss_frames`` of the next ``window``
    present frames (all of them when fewer remain)."""
    miss = iou <= rules.miss_iou
    present = np.flatnonzero(~absent)
    for k, f in enumerate(present):
        if f == 0 or not miss[f]:
            continue
        ahead = present[k : k + rules.window]
        if miss[ahead].sum() >= min(rules.miss_frames, len(ahead)):
            return int(f)
    return None


def locate_loss(name: str, gt: np.ndarray, absent: np.ndarray, pred: np.ndarray, rules: MissRule) -> int | None:
    """The first loss of a tracked sequence (its result boxes ``pred`` against ``gt``), or None."""
    if pred.shape != gt.shape:
        raise UserError(f"{name}: {len(pred)} result boxes for {len(gt)} ground-truth frames")
    return first_loss(iou_inclusive(gt, pred), absent, rules)


def sequence_loss(name: str, gt: np.ndarray, absent: np.ndarray, pred: np.ndarray, frame_events,
                  rules: RealLossRules = RealLossRules()) -> RealLoss:
    """``frame_events(i)`` returns the events of frame ``i`` (read only for the frames inspected)."""
    loss = locate_loss(name, gt, absent, pred, rules)
    n = len(gt)
    if loss is None:
        return RealLoss(name, n, None, "none")
    frames = range(max(loss - rules.before, 0), loss + 1)
    present = [f for f in frames if not absent[f]]
    sizes = [float(np.sqrt(gt[f, 2] * gt[f, 3])) for f in present]
    jumps = [float(np.hypot(*(centers(gt[f:f + 1]) - centers(gt[f - 1:f]))[0])) / max(np.sqrt(gt[f, 2] * gt[f, 3]), 1e-9)
             for f in present if f > 0 and not absent[f - 1]]
    clutter = [clutter_ratio(frame_events(f), gt[f], rules.search_factor) for f in present]
    max_jump = max(jumps) if jumps else 0.0
    min_size = min(sizes) if sizes else 0.0
    mean_clutter = float(np.median(clutter)) if clutter else 0.0
    if any(absent[f] for f in frames) or not present:
        cause = "absent"
    elif max_jump > rules.fast_sizes:
        cause = "fast_motion"
    elif min_size < rules.small_px:
        cause = "small"
    elif mean_clutter >= rules.clutter_ratio:
        cause = "clutter"
    else:
        cause = "other"
    return RealLoss(name, n, loss, cause, round(max_jump, 3), round(min_size, 2), round(mean_clutter, 3))


def analyse_results(sequences, results_dir: str | Path, rules: RealLossRules = RealLossRules()) -> list[RealLoss]:
    """Losses of every sequence (``evtrack.datasets.Sequence``) that has ``<results_dir>/<name>.txt``."""
    from evtrack.datasets.sequence import interval_edges

    results_dir = Path(results_dir)
    out = []
    for seq in sequences:
        res = results_dir / f"{seq.name}.txt"
        if not res.is_file():
            continue
        with seq.open() as reader:
            edges = interval_edges(seq.frame_times_us(reader))
            events = reader.read_all()
        t = events["t"]

        def frame_events(i: int, t=t, events=events, edges=edges) -> np.ndarray:
            a, b = np.searchsorted(t, [edges[i], edges[i + 1]])
            return events[a:b]

        out.append(sequence_loss(seq.name, seq.boxes, seq.absent, read_boxes(res), frame_events, rules))
    if not out:
        raise UserError(f"{results_dir}: no result file for any sequence; expected <name>.txt as written by "
                        "`evtrack benchmark --out`")
    return out


def summarise_losses(losses, causes=CAUSES) -> dict[str, dict[str, float]]:
    """Per cause: sequences, frames after the loss, and those frames as a share of all frames."""
    total = sum(s.n_frames for s in losses)
    table = {}
    for cause in causes:
        group = [s for s in losses if s.cause == cause]
        after = sum(s.frames_after for s in group)
        table[cause] = {"sequences": len(group), "frames_after_loss": after,
                        "share_of_frames": after / total if total else 0.0}
    return table
