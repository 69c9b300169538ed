from __future__ import annotations

import numpy as np

from evtrack.metrics import evaluate_ope
from evtrack.metrics.plots import plot_success_precision


def test_plot_writes_png(tmp_path):
    gt = np.array([[10, 10, 20, 20]] * 5, float)
    res = {"perfect": evaluate_ope({"s": gt}, {"s": gt}), "shifted": evaluate_ope({"s": gt + [5, 5, 0, 0]}, {"s": gt})}
    out = plot_success_precision(res, tmp_path / "plots" / "fe108.png", title="test")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert sorted(p.name for p in out.parent.iterdir()) == ["fe108.png"]
