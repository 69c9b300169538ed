"""The benchmark runner with fake trackers: in-process, process pool, and 2 gloo ranks."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from tiny_sets import LENGTHS, make_dataset

from evtrack.benchmark_runner import BenchmarkConfig, SequenceRun, aggregate_stats, run_benchmark, shard
from evtrack.datasets import load_dataset
from evtrack.errors import FormatError, UserError
from evtrack.metrics import evaluate_ope


class ConstantTracker:
    """Stays on the initial box; counts the events it was given (reported as 'sops')."""

    def __init__(self, oracle: dict[str, np.ndarray] | None = None):
        self.oracle = oracle
        self.events = 0
        self.frames = 0

    def stats(self) -> dict:
        return {"frames": self.frames, "fps": 1000.0, "sops": self.events / max(self.frames, 1)}


def fake_track(tracker: ConstantTracker, reader, init_box, edges_us):
    edges = np.concatenate([[edges_us[0] - (edges_us[1] - edges_us[0])], edges_us])
    for ev in reader.slices(edges):
        tracker.events += len(ev)
        tracker.frames += 1
    n = len(edges_us)
    if tracker.oracle is not None:
        return tracker.oracle[Path(reader.info.path).parent.name]
    return np.repeat(np.asarray(init_box)[None], n, axis=0)


def bad_track(tracker, reader, init_box, edges_us):
    return np.zeros((2, 4))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = make_dataset(tmp_path_factory.mktemp("gen"))
    return load_dataset("synthetic", root)


def test_constant_tracker_in_process(dataset, tmp_path, capsys):
    out = tmp_path / "out"
    rep = run_benchmark(dataset, ConstantTracker, BenchmarkConfig(out_dir=out, progress=False), track_fn=fake_track)
    expected = evaluate_ope({s.name: np.repeat(s.boxes[:1], len(s), 0) for s in dataset},
                            {s.name: s.boxes for s in dataset}, {s.name: s.absent for s in dataset})
    assert rep.ope.auc == pytest.approx(expected.auc) and rep.ope.pr == pytest.approx(expected.pr)
    assert 0 < rep.ope.auc < 95
    # every event between the first edge and the last frame is seen exactly once
    assert rep.stats["frames"] == sum(LENGTHS.values())
    assert rep.stats["sops"] == pytest.approx(50.0)  # 50 events per frame interval, all inside the edges
    assert rep.stats["fps"] == pytest.approx(1000.0)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["auc"] == pytest.approx(rep.ope.auc) and set(summary["per_sequence"]) == set(LENGTHS)
    assert (out / "success_precision.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "s1.txt").read_text().splitlines()[0].count("\t") == 3

    # the written files score the same through `evtrack evaluate`
    from evtrack.cli import main

    assert main(["evaluate", str(out), "--dataset", "synthetic", "--root", str(dataset[0].events_path.parents[2]),
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["auc"] == pytest.approx(rep.ope.auc, abs=1e-3)


def test_oracle_tracker_scores_the_ceiling(dataset):
    oracle = {s.name: s.boxes for s in dataset}
    rep = run_benchmark(dataset, partial(ConstantTracker, oracle), BenchmarkConfig(progress=False), track_fn=fake_track)
    # s1's last frame is absent: removed from the numerator, kept in the denominator
    assert rep.ope.per_sequence()["s0"]["auc"] == pytest.approx(100 * 20 / 21)
    assert rep.ope.per_sequence()["s1"]["pr"] == pytest.approx(100 * 8 / 9)


def test_process_pool_matches_in_process(dataset):
    cfg = BenchmarkConfig(progress=False)
    one = run_benchmark(dataset, ConstantTracker, cfg, track_fn=fake_track)
    two = run_benchmark(dataset, ConstantTracker, BenchmarkConfig(progress=False, workers=2), track_fn=fake_track)
    assert two.ope.auc == one.ope.auc and two.ope.pr == one.ope.pr
    assert list(two.runs) == [s.name for s in dataset]
    assert two.stats["sops"] == pytest.approx(one.stats["sops"])


def test_wrong_box_count_names_the_sequence(dataset):
    with pytest.raises(FormatError, match=r"sequence s0: tracker returned boxes of shape \(2, 4\), expected \(6, 4\)"):
        run_benchmark(dataset, ConstantTracker, BenchmarkConfig(progress=False), track_fn=bad_track)


def test_shard_partitions_and_balances(dataset):
    parts = [shard(dataset, r, 2) for r in range(2)]
    names = sorted(s.name for p in parts for s in p)
    assert names == sorted(LENGTHS)
    loads = [sum(len(s) for s in p) for p in parts]
    assert abs(loads[0] - loads[1]) <= 2  # 9+4 vs 7+6


def test_aggregate_stats_weights_by_frames():
    runs = [SequenceRun("a", np.zeros((10, 4)), 1.0, {"fps": 10.0, "energy_mj": 2.0}),
            SequenceRun("b", np.zeros((30, 4)), 1.0, {"fps": 30.0, "energy_mj": 6.0})]
    st = aggregate_stats(runs)
    assert st["frames"] == 40 and st["fps_wall"] == pytest.approx(20.0)
    assert st["fps"] == pytest.approx(40 / 2.0)
    assert st["energy_mj"] == pytest.approx((10 * 2 + 30 * 6) / 40)


def _rank_main(rank: int, world: int, init_file: str, root: str, out_json: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        seqs = load_dataset("synthetic", root)
        rep = run_benchmark(seqs, ConstantTracker, BenchmarkConfig(progress=False), track_fn=fake_track,
                            rank=rank, world_size=world)
        if rank == 0:
            Path(out_json).write_text(json.dumps({"auc": rep.ope.auc, "pr": rep.ope.pr, "npr": rep.ope.npr,
                                                  "names": list(rep.runs), "sops": rep.stats["sops"]}))
        else:
            assert rep is None
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # ~12-20 s: two spawned processes import torch and join a gloo group
def test_two_gloo_ranks_match_one_process(dataset, tmp_path):
    import torch.multiprocessing as tmp_mp

    root = str(dataset[0].events_path.parents[2])
    out_json = tmp_path / "rank0.json"
    tmp_mp.spawn(_rank_main, args=(2, str(tmp_path / "init"), root, str(out_json)), nprocs=2, join=True)
    got = json.loads(out_json.read_text())
    one = run_benchmark(dataset, ConstantTracker, BenchmarkConfig(progress=False), track_fn=fake_track)
    assert got["names"] == [s.name for s in dataset]
    assert (got["auc"], got["pr"], got["npr"]) == (one.ope.auc, one.ope.pr, one.ope.npr)
    assert got["sops"] == pytest.approx(one.stats["sops"])


def test_benchmark_command_with_fake_tracker(dataset, tmp_path, monkeypatch, capsys):
    import evtrack.tracker
    from evtrack.cli import main

    created = []

    def fake_load_tracker(checkpoint=None, *, keep=None, n_threads=None, **options):
        created.append((checkpoint, keep, n_threads, options))
        return ConstantTracker()

    monkeypatch.setattr(evtrack.tracker, "load_tracker", fake_load_tracker, raising=False)
    monkeypatch.setattr(evtrack.tracker, "track_sequence", fake_track, raising=False)
    root = str(dataset[0].events_path.parents[2])
    out = tmp_path / "run"
    rc = main(["benchmark", "--dataset", "synthetic", "--root", root, "--keep", "default", "--threads", "1",
               "--out", str(out), "--json", "--no-progress", "--sequences", "s1", "s2"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    assert res["n_sequences"] == 2 and res["keep"] == "default" and res["stats"]["frames"] == 13
    # one fresh tracker per sequence; online options not given = the checkpoint's (None)
    assert created == [(None, "default", 1, {"count_ops": True, "min_score": None, "motion": None,
                                                  "window_power": None, "runtime": "torch", "precision": None})] * 2
    assert sorted(p.name for p in out.glob("*.txt")) == ["s1.txt", "s2.txt"]

    # the first run's folder can be compared against in a second run
    rc = main(["benchmark", "--dataset", "synthetic", "--root", root, "--out", str(tmp_path / "run2"),
               "--no-progress", "--sequences", "s1", "s2", "--compare", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "run2" in text and "\nrun " in text and (tmp_path / "run2" / "compare_success_precision.png").is_file()

    assert main(["benchmark", "--dataset", "synthetic", "--root", root, "--sequences", "nope"]) == 2
    assert "unknown name(s) nope" in capsys.readouterr().err


def test_failure_in_a_worker_process_propagates(dataset):
    with pytest.raises(FormatError, match="tracker returned boxes of shape"):
        run_benchmark(dataset, ConstantTracker, BenchmarkConfig(progress=False, workers=2), track_fn=bad_track)


def test_benchmark_command_runs_a_real_baseline_tracker(dataset, tmp_path, capsys):
    pytest.importorskip("evtrack.tracker.baselines", exc_type=ImportError)
    from evtrack.cli import main

    root = str(dataset[0].events_path.parents[2])
    assert main(["benchmark", "--dataset", "synthetic", "--root", root, "--baseline", "stationary",
                 "--out", str(tmp_path / "st"), "--json", "--no-progress"]) == 0
    res = json.loads(capsys.readouterr().out)
    # the stationary baseline reports the first box forever: same as the constant fake
    const = run_benchmark(dataset, ConstantTracker, BenchmarkConfig(progress=False), track_fn=fake_track)
    assert res["auc"] == pytest.approx(const.ope.auc) and res["baseline"] == "stationary"
    assert main(["benchmark", "--dataset", "synthetic", "--root", root, "--baseline", "centroid", "--keep", "0.5"]) == 2
    assert "--baseline cannot be combined" in capsys.readouterr().err


def test_keyed_sequences_and_max_frames(dataset, tmp_path):
    """A mapping names the results by key (several roots repeat names); max_frames scores a prefix."""
    keyed = {f"root{i % 2}/{s.name}": s for i, s in enumerate(dataset)}
    rep = run_benchmark(keyed, ConstantTracker, BenchmarkConfig(progress=False, plot=False, max_frames=5),
                        track_fn=fake_track)
    assert list(rep.runs) == list(keyed)
    assert [r.n_frames for r in rep.runs.values()] == [min(5, len(s)) for s in dataset]
    heads = {k: s.boxes[:5] for k, s in keyed.items()}
    expected = evaluate_ope({k: np.repeat(b[:1], len(b), 0) for k, b in heads.items()}, heads,
                            {k: s.absent[:5] for k, s in keyed.items()})
    assert rep.ope.auc == pytest.approx(expected.auc) and rep.ope.names == expected.names
    with pytest.raises(UserError, match="cannot name result files"):
        run_benchmark(keyed, ConstantTracker, BenchmarkConfig(out_dir=tmp_path, progress=False), track_fn=fake_track)
