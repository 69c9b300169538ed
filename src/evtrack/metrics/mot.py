"""Multi-object metrics (MOTA, MOTP, IDF1, ID switches) through motmetrics.

motmetrics 1.4.0 calls ``np.asfarray``, which numpy 2 removed. Rather than put the function
back on the global ``numpy`` module (which would hide the same bug in any other library), the
shim below gives motmetrics' own ``distances`` module a private numpy namespace that has
``asfarray`` and forwards everything else to numpy. It is installed once, on first use, and
is the only place evtrack touches motmetrics internals.
"""

from __future__ import annotations

import types
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evtrack.errors import FormatError, UserError

# The metrics we report, with motmetrics' names.
MOT_METRICS = ("mota", "motp", "idf1", "num_switches", "num_false_positives", "num_misses", "num_objects")

_shim_installed = False


class _NumpyWithAsfarray(types.ModuleType):
    """numpy as seen by motmetrics.distances: numpy plus the removed ``asfarray``."""

    def __getattr__(self, name: str) -> Any:
        return getattr(np, name)

    @staticmethod
    def asfarray(a: Any, dtype: Any = np.float64) -> np.ndarray:
        # numpy 1.x semantics: float array, integer dtypes promoted to float64.
        dtype = np.dtype(dtype)
        if not np.issubdtype(dtype, np.inexact):
            dtype = np.dtype(np.float64)
        return np.asarray(a, dtype=dtype)


def motmetrics():
    """Import motmetrics with the numpy-2 shim installed (idempotent)."""
    global _shim_installed
    import motmetrics as mm

    if not _shim_installed and not hasattr(np, "asfarray"):
        mm.distances.np = _NumpyWithAsfarray("numpy")
        _shim_installed = True
    return mm


@dataclass(frozen=True)
class MOTFrame:
    """Ground truth and hypotheses of one frame: ids and x,y,w,h boxes."""

    gt_ids: np.ndarray  # (G,)
    gt_boxes: np.ndarray  # (G, 4)
    hyp_ids: np.ndarray  # (H,)
    hyp_boxes: np.ndarray  # (H, 4)


def accumulate(frames: Iterable[MOTFrame], *, iou_threshold: float = 0.5):
    """A motmetrics accumulator fed frame by frame; pairs with IoU < threshold never match."""
    mm = motmetrics()
    acc = mm.MOTAccumulator(auto_id=True)
    for fr in frames:
        dist = mm.distances.iou_matrix(
            np.asarray(fr.gt_boxes, dtype=np.float64).reshape(-1, 4),
            np.asarray(fr.hyp_boxes, dtype=np.float64).reshape(-1, 4),
            max_iou=1.0 - iou_threshold,
        )
        if dist.size == 0:
            dist = np.empty((len(fr.gt_ids), len(fr.hyp_ids)))
        acc.update(list(fr.gt_ids), list(fr.hyp_ids), dist)
    return acc


def summarize(accumulators: dict[str, Any], *, metrics: Iterable[str] = MOT_METRICS) -> dict[str, dict[str, float]]:
    """Metrics per named accumulator plus ``OVERALL`` (when more than one), as plain floats.

    MOTA, MOTP and IDF1 are fractions as motmetrics returns them; MOTP is motmetrics' mean
    *distance* (1 - IoU) of matches, so lower is better.
    """
    mm = motmetrics()
    mh = mm.metrics.create()
    names = list(accumulators)
    table = mh.compute_many(
        [accumulators[n] for n in names], metrics=list(metrics), names=names, generate_overall=len(names) > 1
    )
    return {str(row): {k: float(v) for k, v in table.loc[row].items()} for row in table.index}


def evaluate_motchallenge(gt_file: str, hyp_file: str, *, iou_threshold: float = 0.5):
    """Accumulator for a pair of MOTChallenge text files (``frame,id,x,y,w,h,...``)."""
    mm = motmetrics()
    with warnings.catch_warnings():
        # motmetrics' loader uses a pandas idiom that pandas 3 deprecates; harmless here.
        warnings.simplefilter("ignore", category=FutureWarning)
        warnings.simplefilter("ignore", category=DeprecationWarning)
        gt = mm.io.loadtxt(gt_file)
        hyp = mm.io.loadtxt(hyp_file)
    return mm.utils.compare_to_groundtruth(gt, hyp, "iou", distth=iou_threshold)


def evaluate_motchallenge_dir(results_dir: str | Path, root: str | Path, *, iou_threshold: float = 0.5):
    """Score ``<results_dir>/<seq>.txt`` against ``<root>/<seq>/gt/gt.txt`` (MOTChallenge layout).

    Returns ``summarize`` output: one row per sequence plus ``OVERALL``.
    """
    results_dir, root = Path(results_dir), Path(root)
    if not root.is_dir():
        raise UserError(f"MOTChallenge root {root} is not a directory")
    if not results_dir.is_dir():
        raise UserError(f"results folder {results_dir} is not a directory")
    names = sorted(p.name for p in root.iterdir() if (p / "gt" / "gt.txt").is_file())
    if not names:
        raise FormatError(f"{root}: no <seq>/gt/gt.txt found (MOTChallenge layout)")
    missing = [n for n in names if not (results_dir / f"{n}.txt").is_file()]
    if missing:
        raise FormatError(f"{results_dir}: no result file for {len(missing)} of {len(names)} sequences "
                          f"(expected <seq>.txt): {', '.join(missing[:8])}")
    accs = {}
    for n in names:
        try:
            accs[n] = evaluate_motchallenge(str(root / n / "gt" / "gt.txt"), str(results_dir / f"{n}.txt"),
                                            iou_threshold=iou_threshold)
        except (ValueError, IndexError, KeyError) as exc:
            raise FormatError(f"{results_dir / (n + '.txt')} or its gt.txt: not MOTChallenge "
                              f"'frame,id,x,y,w,h,...' text ({exc})") from None
    return summarize(accs)
