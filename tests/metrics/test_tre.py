"""Temporal robustness evaluation: start frames, sub-sequences, pooled scoring, and the commands."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_benchmark_runner import ConstantTracker, fake_track
from tiny_sets import FRAME_US, LENGTHS, make_dataset

from evtrack.benchmark_runner import BenchmarkConfig, run_benchmark
from evtrack.datasets import load_dataset
from evtrack.datasets.sequence import Sequence, interval_edges
from evtrack.errors import FormatError, UserError
from evtrack.metrics import evaluate_ope, tre
from evtrack.metrics.tre import run_base, score_tre, tre_run_names, tre_runs, tre_starts


def seq(n: int, absent=(), name: str = "a") -> Sequence:
    boxes = np.array([[10 + i, 5, 8, 6] for i in range(n)], float)
    flags = np.zeros(n, bool)
    flags[list(absent)] = True
    return Sequence(name, None, boxes, flags, (np.arange(n) + 1) * 1000)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return load_dataset("synthetic", make_dataset(tmp_path_factory.mktemp("tre")))


def test_starts_are_evenly_spaced_and_leave_min_frames():
    assert tre_starts(seq(100), 5, min_frames=20) == [0, 20, 40, 60, 80]
    assert tre_starts(seq(100), 1, min_frames=20) == [0]
    assert tre_starts(seq(100), 20) == sorted(set(tre_starts(seq(100), 20)))  # increasing, no duplicates
    assert max(tre_starts(seq(100), 20)) == 80  # default minimum run: 20 frames
    assert tre_starts(seq(15), 20) == [0]  # too short for a second run of 20 frames
    assert tre_starts(seq(10), 20, min_frames=1) == list(range(10))
    with pytest.raises(UserError, match="at least 1 segment"):
        tre_starts(seq(10), 0)


def test_starts_skip_absent_and_empty_boxes_but_run_zero_stays():
    s = seq(100, absent=[0, 20, 21, 22])
    s.boxes[40, 2] = 0  # an empty box cannot initialise a tracker
    assert tre_starts(s, 5, min_frames=20) == [0, 23, 41, 60, 80]
    # all later candidates absent: only the OPE run
    assert tre_starts(seq(30, absent=range(1, 30)), 5, min_frames=5) == [0]


def test_tail_is_the_rest_of_the_sequence():
    s = seq(10)
    t = s.tail(4)
    assert t.name == "a@4" and len(t) == 6 and t.frame_offset == 4
    assert np.array_equal(t.boxes, s.boxes[4:]) and np.array_equal(t.frame_timestamps_us, s.frame_timestamps_us[4:])
    assert np.array_equal(t.init_box, s.boxes[4])
    assert run_base(t.name) == ("a", 4) and run_base("x@y@12") == ("x@y", 12)
    with pytest.raises(UserError, match="outside its 10 frames"):
        s.tail(10)
    with pytest.raises(FormatError, match="not a TRE run name"):
        run_base("a")


def test_score_pools_the_runs_of_a_sequence():
    s = seq(40, absent=[39])
    starts = tre_starts(s, 3, min_frames=10)
    assert starts == [0, 15, 30]
    # run @0 is right for 10 frames then lost; the later runs are right to the end
    results = {}
    for k in starts:
        r = s.boxes[k:].copy()
        if k == 0:
            r[10:] += 100
        results[f"a@{k}"] = r
    got = score_tre([s], results)
    pooled_iou_ok = (10 + (25 - 1) + (10 - 1)) / (40 + 25 + 10)  # absent frame 39 counts in every denominator
    assert got.success[0, 0] == pytest.approx(pooled_iou_ok)
    # one run per sequence is plain OPE
    ope = evaluate_ope({"a": results["a@0"]}, {"a": s.boxes}, {"a": s.absent})
    assert score_tre([s], {"a@0": results["a@0"]}).auc == pytest.approx(ope.auc)
    with pytest.raises(FormatError, match="no runs for 1 sequence"):
        score_tre([s, seq(5, name="b")], results)
    with pytest.raises(FormatError, match="belongs to no sequence"):
        score_tre([s], {**results, "c@0": results["a@0"]})
    with pytest.raises(FormatError, match="a@15: 3 boxes, expected 25"):
        score_tre([s], {**results, "a@15": results["a@15"][:3]})


def test_runner_tracks_every_run_from_its_start(dataset, monkeypatch, tmp_path):
    monkeypatch.setattr(tre, "MIN_RUN_FRAMES", 2)
    out = tmp_path / "out"
    rep = run_benchmark(dataset, ConstantTracker, BenchmarkConfig(out_dir=out, progress=False, tre_segments=3),
                        track_fn=fake_track)
    runs = tre_runs(dataset, 3)
    assert list(rep.runs) == [r.name for r in runs] == tre_run_names(dataset, 3)
    assert len(runs) > len(dataset)
    # a run reads only the events from the interval before its first frame on, each of them once
    def events_from(s, start):
        with s.open() as reader:
            return sum(len(ev) for ev in list(reader.slices(interval_edges(s.frame_timestamps_us)))[start:])

    seen = sum(events_from(s, k) for s in dataset for k in tre_starts(s, 3))
    assert rep.stats["frames"] == sum(len(r) for r in runs)
    assert rep.stats["sops"] * rep.stats["frames"] == pytest.approx(seen)
    # the constant tracker holds each run's own initial box
    expected = score_tre(dataset, {r.name: np.repeat(r.boxes[:1], len(r), 0) for r in runs})
    assert rep.ope.auc == pytest.approx(expected.auc) and rep.ope.names == tuple(LENGTHS)
    ope = run_benchmark(dataset, ConstantTracker, BenchmarkConfig(progress=False), track_fn=fake_track)
    assert rep.ope.auc != pytest.approx(ope.ope.auc)  # a moving target: later starts are closer to it
    summary = json.loads((out / "summary.json").read_text())
    assert summary["protocol"] == {"name": "tre", "segments": 3, "runs": len(runs)}
    assert sorted(p.stem for p in out.glob("*.txt")) == sorted(r.name for r in runs)
    with pytest.raises(UserError, match="TRE segments must be >= 0"):
        BenchmarkConfig(tre_segments=-1)


def test_sub_sequence_reads_its_own_time_range(dataset):
    s = dataset[1]
    t = s.tail(3)
    assert t.frame_timestamps_us[0] == 4 * FRAME_US
    with t.open() as reader:
        times = t.frame_times_us(reader)
        assert np.array_equal(times, s.frame_timestamps_us[3:])


def test_benchmark_and_evaluate_commands(dataset, monkeypatch, tmp_path, capsys):
    pytest.importorskip("evtrack.tracker.baselines", exc_type=ImportError)
    from evtrack.cli import main

    monkeypatch.setattr(tre, "MIN_RUN_FRAMES", 2)
    root = str(dataset[0].events_path.parents[2])
    out = tmp_path / "st"
    assert main(["benchmark", "--dataset", "synthetic", "--root", root, "--baseline", "stationary", "--tre", "3",
                 "--out", str(out), "--json", "--no-progress"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["protocol"]["name"] == "tre" and res["protocol"]["runs"] == len(tre_runs(dataset, 3))
    const = score_tre(dataset, {r.name: np.repeat(r.boxes[:1], len(r), 0) for r in tre_runs(dataset, 3)})
    assert res["auc"] == pytest.approx(const.auc)
    assert main(["evaluate", str(out), "--dataset", "synthetic", "--root", root, "--tre", "3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["auc"] == pytest.approx(res["auc"], abs=1e-3)
    # the same folder read as one run per sequence names what is missing
    assert main(["evaluate", str(out), "--dataset", "synthetic", "--root", root]) != 0
    assert "no result file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # refused while parsing, before any tracking
        main(["benchmark", "--dataset", "synthetic", "--root", root, "--baseline", "stationary",
              "--tre", "-1", "--out", str(tmp_path / "x")])
    assert exc.value.code == 2 and "argument --tre: must be >= 0" in capsys.readouterr().err
