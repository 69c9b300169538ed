"""Sequence-level bootstrap intervals for OPE scores.

Why: a benchmark split of a few dozen sequences gives AUC / PR figures whose spread between
sequences is large (on our generated splits the per-sequence AUC has a standard deviation of about
24 points), so two numbers a point apart may not differ at all. OPE scores are means over
sequences of per-sequence scores, so resampling sequences with replacement gives their sampling
spread; comparing two trackers on the same sequences, resampling the per-sequence *differences*
(a paired bootstrap) removes the spread both share.
"""

from __future__ import annotations

import numpy as np

from evtrack.errors import UserError
from evtrack.metrics.ope import OPEResult

METRICS = ("auc", "pr", "npr")


def _per_sequence(result: OPEResult, metric: str) -> dict[str, float]:
    if metric not in METRICS:
        raise UserError(f"bootstrap: unknown metric {metric!r}; expected one of {', '.join(METRICS)}")
    return {name: row[metric] for name, row in result.per_sequence().items()}


def percentile_interval(values: np.ndarray, *, n_resamples: int = 10000, level: float = 0.95,
                        seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (one value per sequence)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) == 0:
        raise UserError(f"bootstrap: need a non-empty 1-D array of per-sequence values, got shape {values.shape}")
    if not 0.0 < level < 1.0:
        raise UserError(f"bootstrap: level {level} must lie in (0, 1)")
    if n_resamples < 1:
        raise UserError(f"bootstrap: n_resamples {n_resamples} must be >= 1")
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    step = max(1, 2_000_000 // len(values))  # bound the index array's memory
    for lo in range(0, n_resamples, step):
        hi = min(lo + step, n_resamples)
        means[lo:hi] = values[rng.integers(0, len(values), (hi - lo, len(values)))].mean(axis=1)
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def score_interval(result: OPEResult, metric: str = "auc", **kwargs) -> tuple[float, float]:
    """Bootstrap interval (percent) of one tracker's ``metric`` over its sequences."""
    return percentile_interval(np.array(list(_per_sequence(result, metric).values())), **kwargs)


def difference_interval(result: OPEResult, baseline: OPEResult, metric: str = "auc",
                        **kwargs) -> tuple[float, float]:
    """Paired bootstrap interval of ``metric(result) - metric(baseline)`` (percentage points).

    Both results must cover the same sequences; the difference is taken sequence by sequence.
    """
    a = _per_sequence(result, metric)
    b = _per_sequence(baseline, metric)
    if set(a) != set(b):
        only_a = sorted(set(a) - set(b))[:3]
        only_b = sorted(set(b) - set(a))[:3]
        raise UserError(f"bootstrap: the two results cover different sequences (only in the first: {only_a}, "
                        f"only in the second: {only_b}); a paired interval needs the same sequences")
    names = sorted(a)
    return percentile_interval(np.array([a[n] - b[n] for n in names]), **kwargs)


def paired_difference(base: np.ndarray, other: np.ndarray, **kwargs) -> tuple[float, float, tuple[float, float]]:
    """Mean of ``other - base`` over paired per-sequence scores, its standard error (0 with fewer than
    two pairs) and its 95% percentile bootstrap interval over the pairs."""
    d = np.asarray(other, dtype=np.float64) - np.asarray(base, dtype=np.float64)
    se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else 0.0
    return float(d.mean()), se, percentile_interval(d, **kwargs)
