"""``evtrack track`` as a new user runs it: window grid, outputs checked first, --init parsing."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from evtrack.cli import main


def test_raw_recording_windows_start_at_the_first_event(shared_data, tmp_path, capsys):
    """.raw files store no start time; the grid used to start at t = 0 (589 mostly empty updates)."""
    rec = shared_data / "events" / "evt3_sample.raw"  # 11,718,656 .. 11,772,513 us
    rc = main(["track", str(rec), "--init", "600,300,80,80", "--window-ms", "10", "--json", "--no-count-ops",
               "--out", str(tmp_path / "boxes.txt")])
    assert rc == 0
    out, err = capsys.readouterr()
    summary = json.loads(out)
    span_ms = (11_772_513 - 11_718_656) / 1000
    assert 2 <= summary["updates"] <= math.ceil(span_ms / 10) + 1
    assert len((tmp_path / "boxes.txt").read_text().splitlines()) == summary["updates"]
    assert summary["command_wall_s"] >= summary["wall_s"]
    closing = [ln for ln in err.splitlines() if "tracked" in ln][-1]
    assert "s wall time for the whole command" in closing


@pytest.mark.parametrize("option", ["--video", "--out"])
def test_unwritable_output_fails_before_tracking(shared_data, tmp_path, capsys, option):
    rec = shared_data / "events" / "evt3_sample.raw"
    bad = tmp_path / "missing_dir" / ("x.mp4" if option == "--video" else "b.txt")
    assert main(["track", str(rec), "--init", "600,300,80,80", option, str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"evtrack track: error: {option} {bad}: directory {bad.parent} does not exist" in err
    assert "tracked" not in err and "Traceback" not in err  # stopped before any tracking
    assert main(["track", str(rec), "--init", "600,300,80,80", option, str(tmp_path)]) == 2
    assert "is a directory, expected a file name" in capsys.readouterr().err


def test_init_takes_negative_numbers(shared_data, tmp_path, capsys):
    """``--init -30,-30,...`` used to fail in argparse ('expected one argument')."""
    rec = shared_data / "events" / "evt3_sample.raw"
    out = tmp_path / "b.txt"
    assert main(["track", str(rec), "--init", "-30,-30,80,80", "--no-count-ops", "--out", str(out)]) == 0
    first = [float(v) for v in out.read_text().splitlines()[0].split(",")]
    assert first[:2] == [-30.0, -30.0]


@pytest.mark.parametrize(
    ("init", "message"),
    [
        ("10,10,1e9,50", "initial box 10,10,1e+09,50 is larger than the 1280x720 (width x height) sensor"),
        ("2000,10,20,20", "initial box 2000,10,20,20 lies outside the 1280x720 (width x height) sensor"),
        ("nan,0,10,10", "--init: expected four finite numbers x,y,w,h with w > 0 and h > 0, got 'nan,0,10,10'"),
    ],
)
def test_bad_init_boxes_are_one_plain_line(shared_data, capsys, init, message):
    rec = shared_data / "events" / "evt3_sample.raw"
    assert main(["track", str(rec), "--init", init]) == 2
    err = capsys.readouterr().err
    assert err == f"evtrack track: error: {message}" + err.split(message, 1)[1]
    assert len(err.strip().splitlines()) == 1 and "np.float64" not in err


def test_error_line_starts_its_own_line_after_a_progress_bar(tmp_path, capsys):
    """An error in the middle of tracking used to be printed onto the progress bar's line."""
    from evtrack.io.events import random_events

    ev = random_events(20_000, height=100, width=120, duration_us=400_000, seed=5)
    ev["t"][10_000:10_010] -= 200_000  # time goes backwards half-way through: found while tracking
    path = tmp_path / "bad.npy"
    np.save(path, ev)
    assert main(["track", str(path), "--init", "40,40,20,20", "--sensor-size", "100,120", "--no-count-ops",
                 "--out", str(tmp_path / "b.txt")]) == 2
    err = capsys.readouterr().err
    assert "track:" in err  # the bar was drawn
    line = [ln for ln in err.split("\n") if "error:" in ln][0]
    assert line.split("\r")[-1].startswith("evtrack track: error: ")
    assert "timestamps go backwards" in line


def test_track_runs_on_onnx_runtime_by_default_unless_it_counts_ops(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from evtrack.commands.demo import load_sample

    seq = load_sample()
    init = ",".join(f"{v:.2f}" for v in seq.boxes[0])
    runs = {}
    for flags in ([], ["--no-count-ops"]):
        out = tmp_path / f"boxes{len(flags)}.txt"
        assert main(["track", str(seq.events_path), "--init", init, "--frames", "--json", "--out", str(out), *flags]) == 0
        summary = json.loads(capsys.readouterr().out)
        runs[summary["runtime"]] = (summary, np.loadtxt(out, delimiter=","))
    assert set(runs) == {"torch", "onnx"}  # counting SOPs needs torch; without, auto is ONNX Runtime
    assert "sops" in runs["torch"][0] and "sops" not in runs["onnx"][0]
    torch_boxes, onnx_boxes = runs["torch"][1], runs["onnx"][1]
    assert torch_boxes.shape == onnx_boxes.shape == (len(seq), 4)
    centre = lambda b: b[:, :2] + b[:, 2:] / 2  # noqa: E731
    assert np.median(np.linalg.norm(centre(torch_boxes) - centre(onnx_boxes), axis=1)) < 2.0
