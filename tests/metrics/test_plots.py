from __future__ import annotations

import numpy as np
import pytest

from evtrack.metrics import evaluate_ope
from evtrack.metrics.ope import PRECISION_THRESHOLDS_PX, SUCCESS_THRESHOLDS
from evtrack.metrics.plots import plot_success_precision


def test_plot_draws_each_trackers_curves_ranked_by_auc_and_pr(tmp_path, monkeypatch):
    """The kits' layout: one success and one precision line per tracker, the legend ranked by AUC / PR
    and labelled with them; the PNG lands at the path with no temporary file left."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = []
    real_close = plt.close
    monkeypatch.setattr(plt, "close", lambda fig=None: (figures.append(fig), real_close(fig)))
    gt = np.array([[10, 10, 20, 20]] * 5, float)
    res = {"shifted": evaluate_ope({"s": gt + [15, 15, 0, 0]}, {"s": gt}), "perfect": evaluate_ope({"s": gt}, {"s": gt})}
    out = plot_success_precision(res, tmp_path / "plots" / "fe108.png", title="test")

    (fig,) = figures
    ax_s, ax_p = fig.axes
    assert [t.get_text() for t in ax_s.get_legend().get_texts()] == [
        f"[{res['perfect'].auc:.1f}] perfect", f"[{res['shifted'].auc:.1f}] shifted"]
    assert [t.get_text() for t in ax_p.get_legend().get_texts()] == [
        f"[{res['perfect'].pr:.1f}] perfect", f"[{res['shifted'].pr:.1f}] shifted"]
    for ax, thresholds, curve in ((ax_s, SUCCESS_THRESHOLDS, "success_mean"),
                                  (ax_p, PRECISION_THRESHOLDS_PX, "precision_mean")):
        for line, name in zip(ax.get_lines(), ("perfect", "shifted"), strict=True):
            assert np.array_equal(line.get_xdata(), thresholds)
            assert np.array_equal(line.get_ydata(), getattr(res[name], curve))
    assert "test" in ax_s.get_title() and "test" in ax_p.get_title()
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in out.parent.iterdir()) == ["fe108.png"]


def test_plot_without_results_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no results"):
        plot_success_precision({}, tmp_path / "x.png")
