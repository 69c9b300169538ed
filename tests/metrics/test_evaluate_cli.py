"""``evtrack evaluate`` end to end: official annos layout, a fake FE108 tree, and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evtrack.cli import main
from evtrack.metrics import write_boxes


def test_evaluate_official_layout_json(shared_data, capsys):
    root = shared_data / "fe108_official"
    rc = main(["evaluate", str(root / "results" / "ostrack"), "--dataset", "fe108", "--root", str(root),
               "--json", "--per-sequence"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_sequences"] == 32
    assert abs(out["auc"] - 54.6) <= 0.1 and abs(out["pr"] - 87.1) <= 0.1
    assert len(out["per_sequence"]) == 32
    assert out["attributes"]["fast_motion"]["n_sequences"] == 5
    # bootstrap intervals over the 32 sequences bracket the scores and are not degenerate
    for m in ("auc", "pr", "npr"):
        lo, hi = out["ci95"][m]
        assert lo < out[m] < hi and hi - lo > 1.0


def test_evaluate_table_compare_and_plot(shared_data, capsys, tmp_path):
    root = shared_data / "fe108_official"
    png = tmp_path / "cmp.png"
    rc = main(["evaluate", str(root / "results" / "hiptrack"), "--root", str(root), "--compare",
               str(root / "results" / "sdtrack_base"), "--plot", str(png)])
    assert rc == 0
    text = capsys.readouterr().out
    lines = [ln for ln in text.splitlines() if ln.startswith(("sdtrack_base", "hiptrack"))]
    assert lines[0].startswith("sdtrack_base") and "59.92" in lines[0]  # ranked by AUC
    assert png.read_bytes()[:4] == b"\x89PNG"


def _fake_fe108(root, boxes_by_seq):
    for name, boxes in boxes_by_seq.items():
        d = root / "test" / name
        d.mkdir(parents=True)
        (d / "groundtruth_rect.txt").write_text("\n".join(",".join(map(str, b)) for b in boxes))
        (d / "events.aedat4").write_bytes(b"")


def test_evaluate_fake_tree_perfect_and_missing(tmp_path, capsys):
    gt = np.array([[10, 10, 20, 20], [12, 12, 20, 20], [14, 14, 20, 20]], float)
    _fake_fe108(tmp_path / "ds", {"a": gt, "b": gt + 5})
    res = tmp_path / "res"
    write_boxes(res / "a.txt", gt)
    write_boxes(res / "b.txt", gt + 5)
    assert main(["evaluate", str(res), "--root", str(tmp_path / "ds"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["auc"] == pytest.approx(100 * 20 / 21) and out["pr"] == pytest.approx(100)

    (res / "b.txt").unlink()
    assert main(["evaluate", str(res), "--root", str(tmp_path / "ds")]) == 2
    err = capsys.readouterr().err
    assert "no result file for 1 of 2 sequences" in err and ": b" in err

    write_boxes(res / "b.txt", gt[:2])
    assert main(["evaluate", str(res), "--root", str(tmp_path / "ds")]) == 2
    assert "b.txt: found 2 result lines, expected at least 3" in capsys.readouterr().err


@pytest.mark.parametrize("dataset", ["fe108", "visevent"])
def test_evaluate_accepts_annotation_only_sequence_folders(tmp_path, capsys, dataset):
    """The released FE108 layout without its (large) event files: scoring needs only the boxes."""
    gt = np.array([[10, 10, 20, 20], [12, 12, 20, 20], [14, 14, 20, 20]], float)
    root, res = tmp_path / "ds", tmp_path / "res"
    for name in ("a", "b"):
        d = root / "test" / name
        d.mkdir(parents=True)
        (d / ("groundtruth_rect.txt" if dataset == "fe108" else "groundtruth.txt")).write_text(
            "\n".join(",".join(map(str, b)) for b in gt))
        (d / "absent_label.txt").write_text("0\n0\n0\n")
        write_boxes(res / f"{name}.txt", gt)
    assert main(["evaluate", str(res), "--dataset", dataset, "--root", str(root), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_sequences"] == 2 and out["pr"] == pytest.approx(100)
    # benchmarking still needs the recordings, and says so in one line
    assert main(["benchmark", "--dataset", dataset, "--root", str(root), "--no-progress"]) == 2
    assert "has no event file" in capsys.readouterr().err
