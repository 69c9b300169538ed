"""Success and precision plots in the style of the OTB/FE108 kits (one line per tracker)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from evtrack.metrics.ope import PRECISION_THRESHOLDS_PX, SUCCESS_THRESHOLDS, OPEResult


def plot_success_precision(results: Mapping[str, OPEResult], path: str | os.PathLike, *, title: str = "") -> Path:
    """Write a two-panel PNG (success vs IoU threshold, precision vs pixel threshold).

    Trackers are ranked in the legend by AUC (success) and PR (precision), as the kits do.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not results:
        raise ValueError("plot_success_precision: no results to plot")
    path = Path(path)
    fig, (ax_s, ax_p) = plt.subplots(1, 2, figsize=(11, 4.5))
    for name, res in sorted(results.items(), key=lambda kv: -kv[1].auc):
        ax_s.plot(SUCCESS_THRESHOLDS, res.success_mean, lw=2, label=f"[{res.auc:.1f}] {name}")
    for name, res in sorted(results.items(), key=lambda kv: -kv[1].pr):
        ax_p.plot(PRECISION_THRESHOLDS_PX, res.precision_mean, lw=2, label=f"[{res.pr:.1f}] {name}")
    ax_s.set(xlabel="Overlap threshold", ylabel="Success rate", xlim=(0, 1), ylim=(0, 1),
             title=f"Success plot{' - ' + title if title else ''} (AUC)")
    ax_p.set(xlabel="Location error threshold (px)", ylabel="Precision", xlim=(0, 50), ylim=(0, 1),
             title=f"Precision plot{' - ' + title if title else ''} (@20 px)")
    for ax in (ax_s, ax_p):
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left" if ax is ax_s else "lower right", fontsize=8)
    fig.tight_layout()
    return save_png(fig, path, dpi=110)


def save_png(fig, path: str | os.PathLike, *, dpi: int = 120) -> Path:
    """Write ``fig`` as a PNG atomically (temporary name, then rename: never a half-written file) and close it."""
    import matplotlib.pyplot as plt

    from evtrack.io import atomic

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic.replacing(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png")
    finally:
        plt.close(fig)
    return path
