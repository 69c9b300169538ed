"""One-pass evaluation (OPE) metrics, reproducing the official single-object tracking kits.

The FE108 MATLAB kit (an OTB/LaSOT descendant) is followed to the letter, quirks included,
so that numbers computed here equal published ones:

- IoU uses the inclusive pixel convention (right = x + w - 1) with area = w * h, and centres
  are ``x + (w - 1) / 2``;
- a result line (from frame 2 on) with a NaN or a non-positive width/height is replaced by the
  previous result line, then frame 1 is replaced by the ground truth;
- frames whose ground truth is not all-positive (any of x, y, w, h <= 0) get IoU -1 and centre
  error -1, so they fail every success threshold but pass every precision threshold;
- absent frames are removed, but the denominator stays the full number of ground-truth lines;
- result lines beyond the ground-truth length are cut;
- success at threshold t counts IoU > t for t in 0:0.05:1; AUC is the mean over the thresholds
  of the mean over sequences; PR is precision at 20 px (thresholds 0:50) and NPR the normalised
  precision at 0.20 (thresholds 0:0.01:0.5).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from evtrack.errors import FormatError

SUCCESS_THRESHOLDS = np.linspace(0.0, 1.0, 21)  # 0:0.05:1
PRECISION_THRESHOLDS_PX = np.arange(51, dtype=np.float64)  # 0:50
NORM_PRECISION_THRESHOLDS = np.linspace(0.0, 0.5, 51)  # 0:0.01:0.5
PRECISION_AT_PX = 20.0
NORM_PRECISION_AT = 0.20


def iou_inclusive(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise IoU of ``(N, 4)`` x,y,w,h boxes with the kits' inclusive-pixel convention."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    left = np.maximum(a[:, 0], b[:, 0])
    right = np.minimum(a[:, 0] + a[:, 2] - 1, b[:, 0] + b[:, 2] - 1)
    top = np.maximum(a[:, 1], b[:, 1])
    bottom = np.minimum(a[:, 1] + a[:, 3] - 1, b[:, 1] + b[:, 3] - 1)
    inter = np.maximum(0.0, right - left + 1) * np.maximum(0.0, bottom - top + 1)
    union = a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return inter / union


def centers(boxes: np.ndarray) -> np.ndarray:
    """Box centres ``x + (w - 1) / 2, y + (h - 1) / 2`` (the kits' pixel-centre convention)."""
    boxes = np.asarray(boxes, dtype=np.float64)
    return np.stack([boxes[:, 0] + (boxes[:, 2] - 1) / 2, boxes[:, 1] + (boxes[:, 3] - 1) / 2], axis=1)


def clean_results(pred: np.ndarray, gt: np.ndarray, *, name: str = "results") -> np.ndarray:
    """Cut extra lines, repair invalid lines with the previous one, put the GT in frame 1.

    A result file shorter than the ground truth is an error (the official kit refuses it too):
    padding it would silently score a half-finished run.
    """
    pred = np.array(pred, dtype=np.float64, copy=True)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.ndim != 2 or pred.shape[1] != 4:
        raise FormatError(f"{name}: expected (N, 4) boxes, found shape {pred.shape}")
    if pred.shape[0] < gt.shape[0]:
        raise FormatError(
            f"{name}: found {pred.shape[0]} result lines, expected at least {gt.shape[0]} (one per ground-truth line)"
        )
    pred = pred[: gt.shape[0]]
    with np.errstate(invalid="ignore"):
        bad = (np.isnan(pred).any(axis=1) | (pred[:, 2] <= 0) | (pred[:, 3] <= 0)) & ~np.isnan(gt).any(axis=1)
    bad[:1] = False
    # The kit copies line i-1 into a bad line i, in order, so a run of bad lines all take the
    # last good line before them: a forward fill.
    source = np.maximum.accumulate(np.where(bad, 0, np.arange(pred.shape[0])))
    pred = pred[source]
    if pred.shape[0]:
        pred[0] = gt[0]
    return pred


@dataclass(frozen=True)
class SequenceErrors:
    """Per-frame errors of one sequence after the kit's clean-up (absent frames removed)."""

    name: str
    iou: np.ndarray  # (M,) IoU, -1 where the GT is not all-positive
    center_error_px: np.ndarray  # (M,) centre distance in pixels, -1 where the GT is invalid
    norm_center_error: np.ndarray  # (M,) centre distance in GT-size units, -1 where the GT is invalid
    n_frames: int  # denominator: every ground-truth line, absent ones included


def sequence_errors(
    pred: np.ndarray, gt: np.ndarray, absent: np.ndarray | None = None, *, name: str = "sequence"
) -> SequenceErrors:
    """Per-frame IoU and centre errors of one result against its ground truth."""
    gt = np.asarray(gt, dtype=np.float64)
    if gt.ndim != 2 or gt.shape[1] != 4 or gt.shape[0] == 0:
        raise FormatError(f"{name}: ground truth must be non-empty (N, 4) boxes, found shape {gt.shape}")
    n = gt.shape[0]
    if absent is None:
        absent = np.zeros(n, dtype=bool)
    absent = np.asarray(absent, dtype=bool)
    if absent.shape != (n,):
        raise FormatError(f"{name}: found {absent.shape[0]} absent flags, expected {n} (one per ground-truth line)")
    rect = clean_results(pred, gt, name=name)

    valid = (gt > 0).all(axis=1)
    iou = -np.ones(n)
    iou[valid] = iou_inclusive(rect[valid], gt[valid])
    c_pred, c_gt = centers(rect), centers(gt)
    err = np.sqrt(((c_pred - c_gt) ** 2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        size = gt[:, 2:4]
        norm = np.sqrt((((c_pred - c_gt) / size) ** 2).sum(axis=1))
    err[~valid] = -1.0
    norm[~valid] = -1.0
    keep = ~absent
    return SequenceErrors(name, iou[keep], err[keep], norm[keep], n)


def success_curve(errors: SequenceErrors) -> np.ndarray:
    """Fraction of all GT lines with IoU > t for each t in ``SUCCESS_THRESHOLDS``."""
    return (errors.iou[:, None] > SUCCESS_THRESHOLDS[None, :]).sum(axis=0) / errors.n_frames


def precision_curve(errors: SequenceErrors) -> np.ndarray:
    """Fraction of all GT lines with centre error <= t px for t in ``PRECISION_THRESHOLDS_PX``."""
    return (errors.center_error_px[:, None] <= PRECISION_THRESHOLDS_PX[None, :]).sum(axis=0) / errors.n_frames


def norm_precision_curve(errors: SequenceErrors) -> np.ndarray:
    """Fraction of all GT lines with normalised centre error <= t for t in ``NORM_PRECISION_THRESHOLDS``."""
    hits = errors.norm_center_error[:, None] <= NORM_PRECISION_THRESHOLDS[None, :]
    return hits.sum(axis=0) / errors.n_frames


@dataclass(frozen=True)
class OPEResult:
    """Success / precision / normalised-precision curves of one tracker over a set of sequences.

    ``auc``, ``pr`` and ``npr`` are percentages, as papers report them.
    """

    names: tuple[str, ...]
    success: np.ndarray  # (S, 21)
    precision: np.ndarray  # (S, 51)
    norm_precision: np.ndarray  # (S, 51)
    n_frames: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # (S,)

    def __post_init__(self) -> None:
        if len(self.names) == 0:
            raise ValueError("OPEResult needs at least one sequence")

    @property
    def success_mean(self) -> np.ndarray:
        return self.success.mean(axis=0)

    @property
    def precision_mean(self) -> np.ndarray:
        return self.precision.mean(axis=0)

    @property
    def norm_precision_mean(self) -> np.ndarray:
        return self.norm_precision.mean(axis=0)

    @property
    def auc(self) -> float:
        return float(self.success_mean.mean() * 100)

    @property
    def pr(self) -> float:
        return float(self.precision_mean[_index(PRECISION_THRESHOLDS_PX, PRECISION_AT_PX)] * 100)

    @property
    def npr(self) -> float:
        return float(self.norm_precision_mean[_index(NORM_PRECISION_THRESHOLDS, NORM_PRECISION_AT)] * 100)

    def per_sequence(self) -> dict[str, dict[str, float]]:
        """AUC / PR / NPR (percent) of every sequence on its own."""
        i_pr = _index(PRECISION_THRESHOLDS_PX, PRECISION_AT_PX)
        i_npr = _index(NORM_PRECISION_THRESHOLDS, NORM_PRECISION_AT)
        return {
            name: {
                "auc": float(self.success[k].mean() * 100),
                "pr": float(self.precision[k, i_pr] * 100),
                "npr": float(self.norm_precision[k, i_npr] * 100),
            }
            for k, name in enumerate(self.names)
        }

    def subset(self, names: Sequence[str]) -> OPEResult:
        """The same curves restricted to some sequences (for per-attribute breakdowns)."""
        idx = [self.names.index(n) for n in names]
        return OPEResult(
            tuple(self.names[i] for i in idx),
            self.success[idx],
            self.precision[idx],
            self.norm_precision[idx],
            self.n_frames[idx] if self.n_frames.size else self.n_frames,
        )

    def summary(self) -> dict[str, float | int]:
        return {"auc": self.auc, "pr": self.pr, "npr": self.npr, "n_sequences": len(self.names)}


def _index(thresholds: np.ndarray, value: float) -> int:
    return int(np.argmin(np.abs(thresholds - value)))


def evaluate_ope(
    results: Mapping[str, np.ndarray],
    ground_truth: Mapping[str, np.ndarray],
    absent: Mapping[str, np.ndarray] | None = None,
    *,
    sources: Mapping[str, str] | None = None,
) -> OPEResult:
    """Score tracker boxes against ground truth, sequence by sequence, the official way.

    Args:
        results: sequence name -> ``(N', 4)`` predicted x,y,w,h (N' >= N; extra lines are cut).
        ground_truth: sequence name -> ``(N, 4)`` ground-truth boxes; its keys set the sequences.
        absent: sequence name -> ``(N,)`` bool, True where the target is absent (optional).
        sources: sequence name -> where its results came from (a file), used in error messages.
    """
    names = tuple(ground_truth)
    missing = [n for n in names if n not in results]
    if missing:
        raise FormatError(f"results missing for {len(missing)} sequence(s): {', '.join(missing[:5])}")
    succ, prec, nprec, n_frames = [], [], [], []
    for name in names:
        err = sequence_errors(results[name], ground_truth[name], None if absent is None else absent.get(name),
                              name=(sources or {}).get(name, name))
        succ.append(success_curve(err))
        prec.append(precision_curve(err))
        nprec.append(norm_precision_curve(err))
        n_frames.append(err.n_frames)
    return OPEResult(names, np.array(succ), np.array(prec), np.array(nprec), np.array(n_frames, dtype=np.int64))


def attribute_breakdown(
    result: OPEResult, attributes: Mapping[str, Mapping[str, bool]]
) -> dict[str, dict[str, float | int]]:
    """AUC / PR / NPR over the sequences that carry each attribute (sequences without any are skipped)."""
    members: dict[str, list[str]] = {}
    for name in result.names:
        for attr, flag in attributes.get(name, {}).items():
            if flag:
                members.setdefault(attr, []).append(name)
    return {attr: result.subset(names).summary() for attr, names in sorted(members.items())}
