"""A plain NumPy version of the ESIM interval kernel, for tests and as the benchmark baseline.

Same model as :func:`evtrack.sim.esim._esim_interval` without the refractory period (which needs a
sequential scan per pixel): every crossing of ``ref + k * C`` between two frames becomes an event
with a linearly interpolated timestamp. Vectorised over pixels and crossings.
"""

from __future__ import annotations

import numpy as np

from evtrack.io.events import EVENT_DTYPE


def esim_interval_numpy(l0: np.ndarray, l1: np.ndarray, ref: np.ndarray, c_pos: np.ndarray, c_neg: np.ndarray,
                        t0_us: int, t1_us: int, width: int) -> np.ndarray:
    """Events of ``[t0, t1)`` (unsorted) for flat log frames ``l0 -> l1``; ``ref`` is updated in place."""
    d = l1 - ref
    n_pos = np.where(d > 0, np.floor(d / c_pos), 0).astype(np.int64)
    n_neg = np.where(d < 0, np.floor(-d / c_neg), 0).astype(np.int64)
    n = n_pos + n_neg
    pix = np.repeat(np.arange(len(l1)), n)
    k = np.arange(len(pix)) - np.repeat(np.cumsum(n) - n, n) + 1  # 1..n within each pixel
    sign = np.where(n_pos[pix] > 0, 1.0, -1.0)
    step = np.where(sign > 0, c_pos[pix], c_neg[pix])
    level = ref[pix] + sign * k * step
    slope = (l1 - l0)[pix]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(slope != 0, (level - l0[pix]) / slope, 1.0)
    frac = np.clip(frac, 0.0, 1.0)
    t = np.minimum(t0_us + (frac * (t1_us - t0_us)).astype(np.int64), t1_us - 1)
    ev = np.empty(len(pix), dtype=EVENT_DTYPE)
    ev["t"], ev["x"], ev["y"] = t, pix % width, pix // width
    ev["p"] = (sign > 0).astype(np.int8)
    ref += np.where(n_pos > 0, n_pos * c_pos, 0.0) - np.where(n_neg > 0, n_neg * c_neg, 0.0)
    return ev
