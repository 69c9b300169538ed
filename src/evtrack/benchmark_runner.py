"""Track every sequence of a dataset, write official result files, score them.

This is the one evaluation loop: ``evtrack benchmark``, ``evtrack tune``, ``evtrack compare`` and the
measuring scripts in ``benchmarks/`` all track and score through :func:`run_benchmark`.
The core knows nothing about the real tracker: it takes a picklable
``make_tracker()`` factory and a ``track_fn(tracker, reader, init_box, edges_us)`` (default
``evtrack.tracker.track_sequence``), so tests drive it with fakes. Work is spread

- over processes on one machine (``workers``), one fresh tracker per sequence, and
- over machines/ranks under ``torchrun`` (``WORLD_SIZE`` > 1): each rank tracks a shard balanced
  by frame count, rank 0 gathers the boxes and stats over ``torch.distributed`` (gloo works on
  CPU) and scores them. Non-zero ranks return None.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from evtrack.errors import EvtrackError, FormatError, UserError
from evtrack.io import atomic
from evtrack.metrics.ope import OPEResult
from evtrack.metrics.report import score_sequences, summary_json
from evtrack.metrics.results import write_boxes
from evtrack.metrics.tre import score_tre, tre_runs

# Per-frame averages in Tracker.stats() that are aggregated frame-weighted across sequences.
AVERAGED_STATS = ("sops", "macs", "transformer_sops", "energy_mj", "tokens_kept", "tokens_kept_frac")


@dataclass(frozen=True)
class BenchmarkConfig:
    """Where and how to run; ``workers`` processes per rank (1 = in this process)."""

    out_dir: Path | None = None  # results <seq>.txt, summary.json, success_precision.png
    workers: int = 1
    progress: bool = True
    mp_context: str = "spawn"  # spawn: safe with torch's thread pools (fork can deadlock OpenMP)
    plot: bool = True
    label: str = "evtrack"
    max_frames: int | None = None  # track and score only the first N frames of each sequence
    tre_segments: int = 0  # 0: one run per sequence (OPE); N: up to N runs from later frames (evtrack.metrics.tre)

    def __post_init__(self) -> None:
        if self.tre_segments < 0:
            raise UserError(f"TRE segments must be >= 0 (0 = OPE), got {self.tre_segments}")


@dataclass
class SequenceRun:
    """What tracking one sequence produced."""

    name: str
    boxes: np.ndarray  # (N, 4)
    seconds: float  # wall time of track_fn (reading events + tracking)
    stats: dict[str, Any] = field(default_factory=dict)  # tracker.stats() after the sequence
    latency_s: np.ndarray | None = None  # per-frame init/update times, when track_fn reports them

    @property
    def n_frames(self) -> int:
        return int(self.boxes.shape[0])


@dataclass
class BenchmarkReport:
    ope: OPEResult
    runs: dict[str, SequenceRun]
    stats: dict[str, float]
    summary: dict[str, Any]
    out_dir: Path | None = None


def default_track_fn() -> Callable:
    """``evtrack.tracker.track_sequence`` (design.md contract)."""
    try:
        from evtrack.tracker import track_sequence
    except ImportError:  # package not re-exporting it yet: the defining module
        from evtrack.tracker.online import track_sequence
    return track_sequence


def track_one(sequence: Any, make_tracker: Callable[[], Any], track_fn: Callable | None = None) -> SequenceRun:
    """Track one sequence with a fresh tracker (runs in a worker process)."""
    if track_fn is None:
        track_fn = default_track_fn()
    tracker = make_tracker()
    try:
        with sequence.open() as reader:
            times = sequence.frame_times_us(reader)
            t0 = time.perf_counter()
            result = track_fn(tracker, reader, sequence.init_box, times)
            seconds = time.perf_counter() - t0
    except EvtrackError as exc:
        raise type(exc)(f"sequence {sequence.name}: {exc}") from exc
    boxes = np.asarray(getattr(result, "boxes", result), dtype=np.float64)
    if boxes.shape != (len(sequence), 4):
        raise FormatError(f"sequence {sequence.name}: tracker returned boxes of shape {boxes.shape}, "
                          f"expected ({len(sequence)}, 4)")
    stats = dict(tracker.stats()) if hasattr(tracker, "stats") else {}
    latency = getattr(result, "latency_s", None)
    return SequenceRun(sequence.name, boxes, seconds, stats, None if latency is None else np.asarray(latency))


def shard(sequences: Sequence[Any], rank: int, world_size: int) -> list[Any]:
    """This rank's sequences: longest first to the least-loaded rank (same answer on every rank)."""
    order = sorted(range(len(sequences)), key=lambda i: (-len(sequences[i]), sequences[i].name))
    load = [0] * world_size
    mine = []
    for i in order:
        r = min(range(world_size), key=lambda k: (load[k], k))
        load[r] += len(sequences[i])
        if r == rank:
            mine.append(i)
    return [sequences[i] for i in sorted(mine)]


def _track_many(sequences: list[Any], make_tracker, track_fn, config: BenchmarkConfig, show: bool) -> list[SequenceRun]:
    from tqdm import tqdm

    bar = tqdm(total=sum(len(s) for s in sequences), unit="frame", desc="benchmark", disable=not show)
    runs = []
    try:
        if config.workers <= 1 or len(sequences) <= 1:
            for s in sequences:
                bar.set_postfix_str(s.name)
                runs.append(track_one(s, make_tracker, track_fn))
                bar.update(len(s))
        else:
            ctx = get_context(config.mp_context)
            with ProcessPoolExecutor(max_workers=min(config.workers, len(sequences)), mp_context=ctx) as pool:
                futures = {pool.submit(track_one, s, make_tracker, track_fn): s for s in sequences}
                try:
                    for fut in as_completed(futures):
                        runs.append(fut.result())
                        bar.set_postfix_str(futures[fut].name)
                        bar.update(len(futures[fut]))
                except BaseException:
                    # One failed sequence fails the run: do not start the queued ones.
                    for fut in futures:
                        fut.cancel()
                    raise
    finally:
        bar.close()
    return runs


def aggregate_stats(runs: Sequence[SequenceRun]) -> dict[str, float]:
    """Totals and frame-weighted averages of the per-sequence tracker stats."""
    frames = sum(r.n_frames for r in runs)
    seconds = sum(r.seconds for r in runs)
    out: dict[str, float] = {"frames": float(frames), "seconds": seconds,
                             "fps_wall": frames / seconds if seconds > 0 else float("nan")}
    model_fps = [(r.n_frames, r.stats["fps"]) for r in runs if r.stats.get("fps")]
    if model_fps:  # frames / total model time, so slow sequences weigh in properly
        out["fps"] = sum(n for n, _ in model_fps) / sum(n / f for n, f in model_fps)
    for key in AVERAGED_STATS:
        vals = [(r.n_frames, float(r.stats[key])) for r in runs if r.stats.get(key) is not None]
        if vals:
            out[key] = sum(n * v for n, v in vals) / sum(n for n, _ in vals)
    return out


def _gather(runs: list[SequenceRun], rank: int, world_size: int) -> list[SequenceRun] | None:
    import torch.distributed as dist

    payload = [(r.name, r.boxes, r.seconds, r.stats, r.latency_s) for r in runs]
    gathered: list | None = [None] * world_size if rank == 0 else None
    dist.gather_object(payload, gathered, dst=0)
    if rank != 0:
        return None
    return [SequenceRun(*item) for part in gathered for item in part]


def named_sequences(sequences: Sequence[Any] | Mapping[str, Any], max_frames: int | None = None) -> list[Any]:
    """The sequences as a list, each named by its key when given a mapping (``load_roots`` keys
    ``root/name``: generated datasets repeat names across roots), cut to ``max_frames`` if set."""
    if isinstance(sequences, Mapping):
        sequences = [s if s.name == key else replace(s, name=key) for key, s in sequences.items()]
    if max_frames is not None:
        sequences = [s.head(max_frames) for s in sequences]
    return list(sequences)


def run_benchmark(
    sequences: Sequence[Any] | Mapping[str, Any],
    make_tracker: Callable[[], Any],
    config: BenchmarkConfig = BenchmarkConfig(),
    *,
    track_fn: Callable | None = None,
    rank: int | None = None,
    world_size: int | None = None,
) -> BenchmarkReport | None:
    """Track, write, score. Returns the report on rank 0 (None on other ranks).

    ``sequences`` is a list or a mapping key -> sequence (results are then named by key, see
    :func:`named_sequences`). ``rank``/``world_size`` default to torchrun's ``RANK``/``WORLD_SIZE``; with more than one rank
    a ``torch.distributed`` process group must exist or is created from the environment (gloo).
    """
    sequences = named_sequences(sequences, config.max_frames)
    if not sequences:
        raise FormatError("benchmark: no sequences to track")
    if config.out_dir is not None:
        nested = [s.name for s in sequences if "/" in s.name or "\\" in s.name]
        if nested:
            raise UserError(f"benchmark: sequence keys {nested[:3]} cannot name result files in {config.out_dir}; "
                            "expected plain sequence names (write results of one dataset root at a time)")
    rank = int(os.environ.get("RANK", 0)) if rank is None else rank
    world_size = int(os.environ.get("WORLD_SIZE", 1)) if world_size is None else world_size
    if world_size > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("gloo")
    tracked = tre_runs(sequences, config.tre_segments) if config.tre_segments else sequences
    mine = shard(tracked, rank, world_size) if world_size > 1 else list(tracked)
    runs = _track_many(mine, make_tracker, track_fn, config, show=config.progress and rank == 0)
    if world_size > 1:
        runs = _gather(runs, rank, world_size)
        if runs is None:
            return None
    by_name = {r.name: r for r in runs}
    ordered = {s.name: by_name[s.name] for s in tracked}
    boxes = {n: r.boxes for n, r in ordered.items()}
    ope = score_tre(sequences, boxes) if config.tre_segments else score_sequences(sequences, boxes)
    stats = aggregate_stats(list(ordered.values()))
    summary = summary_json(ope, sequences, per_sequence=True)
    summary["stats"] = stats
    summary["label"] = config.label
    summary["protocol"] = {"name": "tre", "segments": config.tre_segments, "runs": len(tracked)} if config.tre_segments \
        else {"name": "ope"}
    summary["per_sequence_fps_wall"] = {n: r.n_frames / r.seconds if r.seconds > 0 else None for n, r in ordered.items()}
    report = BenchmarkReport(ope, ordered, stats, summary, config.out_dir)
    if config.out_dir is not None:
        write_outputs(report, config)
    return report


def write_outputs(report: BenchmarkReport, config: BenchmarkConfig) -> None:
    """``<out>/<seq>.txt`` (official tab-separated format), ``summary.json``, the plots."""
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, run in report.runs.items():
        write_boxes(out / f"{name}.txt", run.boxes)
    atomic.write_text(out / "summary.json", json.dumps(report.summary, indent=1, default=float))
    if config.plot:
        from evtrack.metrics.plots import plot_success_precision

        plot_success_precision({config.label: report.ope}, out / "success_precision.png")
