"""Batch conversion of an RGB tracking dataset into an event dataset (what ``evtrack convert-dataset`` does).

Every sequence goes through the same simulator as ``evtrack simulate`` (:func:`simulate_frames`,
optical-flow sub-steps when the motion between frames is large, so 10 fps footage is fine) and is
written in the FE108 layout that ``--dataset synthetic`` reads::

    <out>/dataset.json                               converter settings (checked when resuming)
    <out>/<split>/<seq>/events.h5                    events, sensor-sized
                        groundtruth_rect.txt         boxes scaled to the sensor, one per frame
                        absent_label.txt             1 = no box for this frame
                        frame_timestamps.txt         int microseconds, frame i at (i + 1) / fps
                        attributes.json              source, frame rate, sensor parameters, counts

Sequences are built in a hidden folder and renamed when complete, so an interrupted run resumes by
running the same command again (finished sequences are kept). Each sequence's random numbers come
from ``(seed, sequence name)``, so the output does not depend on the number of workers or their order.
With ``randomize`` every sequence also draws its own sensor (thresholds, their spread, refractory
period, background activity, hot pixels), which widens what a tracker trained on it has seen.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import zlib
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from evtrack.errors import EvtrackError, UserError
from evtrack.io.atomic import folder_lock, write_text
from evtrack.sim.esim import SensorConfig
from evtrack.sim.rgb_layouts import RGBSequence, find_sequences, read_sequence

CONVERTER_VERSION = 1


@dataclass(frozen=True)
class SensorRanges:
    """Ranges the per-sequence sensor is drawn from when randomising (uniform, or log-uniform for rates)."""

    threshold: tuple[float, float] = (0.15, 0.45)  # ON and OFF drawn separately
    threshold_sigma: tuple[float, float] = (0.01, 0.06)
    refractory_us: tuple[float, float] = (10.0, 2000.0)  # log-uniform
    noise_hz: tuple[float, float] = (0.01, 2.0)  # log-uniform
    hot_pixels: tuple[int, int] = (0, 30)


@dataclass(frozen=True)
class ConvertConfig:
    sensor: SensorConfig = SensorConfig()
    seed: int = 0
    randomize: bool = False
    ranges: SensorRanges = SensorRanges()
    fps: float | None = None  # overrides every sequence's own rate (fps.txt or the layout's)
    upsample: bool = True
    layout: str = "auto"


@dataclass(frozen=True)
class ConvertedSequence:
    split: str
    name: str
    n_frames: int
    n_absent: int
    n_events: int
    seconds: float
    bytes: int


def sequence_rng(seed: int, name: str) -> np.random.Generator:
    """Random numbers of one sequence: from the seed and the name only (CRC32 is stable across runs)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(name.encode())]))


def draw_sensor(base: SensorConfig, ranges: SensorRanges, rng: np.random.Generator) -> SensorConfig:
    """A sensor of ``base``'s size with parameters drawn from ``ranges``."""
    lo, hi = ranges.threshold

    def log_uniform(r: tuple[float, float]) -> float:
        return float(np.exp(rng.uniform(np.log(r[0]), np.log(r[1]))))

    return replace(base, c_pos=round(float(rng.uniform(lo, hi)), 4), c_neg=round(float(rng.uniform(lo, hi)), 4),
                   c_sigma=round(float(rng.uniform(*ranges.threshold_sigma)), 4),
                   refractory_us=int(round(log_uniform(ranges.refractory_us))),
                   noise_rate_hz=round(log_uniform(ranges.noise_hz), 4),
                   n_hot_pixels=int(rng.integers(ranges.hot_pixels[0], ranges.hot_pixels[1] + 1)))


def convert_sequence(seq: RGBSequence, seq_dir: Path, cfg: ConvertConfig) -> ConvertedSequence:
    """Simulate one sequence into ``seq_dir`` (built under a hidden name, renamed when complete)."""
    import cv2

    from evtrack.sim.convert import UpsampleConfig, simulate_frames, write_groundtruth
    from evtrack.sim.video import IMREAD_GREY, FrameSource

    t0 = time.perf_counter()
    rng = sequence_rng(cfg.seed, seq.name)
    sensor = draw_sensor(cfg.sensor, cfg.ranges, rng) if cfg.randomize else cfg.sensor
    first = cv2.imread(str(seq.frames[0]), IMREAD_GREY)
    if first is None:
        raise EvtrackError(f"sequence {seq.name}: {seq.frames[0]}: not an image OpenCV can read")
    fps = cfg.fps or seq.fps
    source = FrameSource(seq.folder, fps, first.shape[:2], len(seq.frames), None, list(seq.frames))
    tmp = Path(tempfile.mkdtemp(prefix=f".{seq_dir.name}.partial-", dir=seq_dir.parent))
    try:
        try:
            res = simulate_frames(source, tmp / "events.h5", sensor, seed=int(rng.integers(2**31)),
                                  upsample=UpsampleConfig(enabled=cfg.upsample), show_progress=False)
        except EvtrackError as exc:
            raise type(exc)(f"sequence {seq.name}: {exc}") from None
        fh, fw = first.shape[:2]
        scale = np.array([sensor.width / fw, sensor.height / fh, sensor.width / fw, sensor.height / fh])
        write_groundtruth(tmp, seq.boxes * scale, res.frame_timestamps_us, seq.absent)
        meta = {"source": {"path": str(seq.folder), "size_hw": [fh, fw]}, "layout": seq.layout, "fps": fps,
                "n_frames": len(seq.frames), "n_absent": int(seq.absent.sum()), "n_events": res.n_events,
                "simulator_steps": res.n_substeps, "sensor": asdict(sensor)}
        (tmp / "attributes.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
        os.chmod(tmp, 0o755)
        size = sum(f.stat().st_size for f in tmp.iterdir())
        os.replace(tmp, seq_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ConvertedSequence(seq_dir.parent.name, seq.name, len(seq.frames), int(seq.absent.sum()), res.n_events,
                             time.perf_counter() - t0, size)


def _convert_task(task: tuple[str, str, str, str, str, ConvertConfig]) -> ConvertedSequence:
    split, name, folder, layout, out, cfg = task
    seq = read_sequence(Path(folder), layout, name)
    return convert_sequence(seq, Path(out) / split / name, cfg)


def _manifest(cfg: ConvertConfig, source: Path) -> dict:
    return {"name": "evtrack-converted", "converter_version": CONVERTER_VERSION, "source": str(source),
            "config": json.loads(json.dumps(asdict(cfg))),
            "layout": "FE108: <split>/<seq>/{events.h5, groundtruth_rect.txt, absent_label.txt, "
                      "frame_timestamps.txt, attributes.json}"}


def _check_resume(out: Path, manifest: dict) -> None:
    path = out / "dataset.json"
    if not path.is_file():
        return
    try:
        old = json.loads(path.read_text())
    except ValueError as exc:
        raise UserError(f"{path}: not valid JSON ({exc}); expected the manifest convert-dataset writes") from None
    for key in ("converter_version", "config"):
        if old.get(key) != manifest[key]:
            raise UserError(f"{out}: was converted with {key} = {json.dumps(old.get(key))[:300]}, this run asks for "
                            f"{json.dumps(manifest[key])[:300]}; use a new output folder or the same settings")


def convert_dataset(source: str | Path, out: str | Path, cfg: ConvertConfig = ConvertConfig(), *,
                    splits: list[str] | None = None, names: list[str] | None = None, workers: int = 1,
                    show_progress: bool = True) -> tuple[list[ConvertedSequence], list[tuple[str, str]], int]:
    """Convert every sequence under ``source`` into ``out``.

    Returns ``(converted now, [(sequence, error)], n already complete)``. A sequence that fails is
    reported and skipped (the others go on); nothing of it is left in ``out``.
    """
    if workers < 1:
        raise UserError(f"--workers must be >= 1, got {workers}")
    source, out = Path(source), Path(out)
    found = find_sequences(source, cfg.layout)
    if splits:
        unknown = sorted(set(splits) - set(found))
        if unknown:
            raise UserError(f"{source}: no split(s) {unknown}; found {sorted(found)}")
        found = {s: v for s, v in found.items() if s in splits}
    if names:
        wanted = set(names)
        found = {s: [e for e in v if e[0] in wanted] for s, v in found.items()}
        missing = wanted - {e[0] for v in found.values() for e in v}
        if missing:
            raise UserError(f"{source}: no sequence(s) named {sorted(missing)}")
    manifest = _manifest(cfg, source)
    out.mkdir(parents=True, exist_ok=True)
    with folder_lock(out, "convert-dataset"):
        return _convert_into(found, source, out, cfg, manifest, workers, show_progress)


def _convert_into(found: dict, source: Path, out: Path, cfg: ConvertConfig, manifest: dict, workers: int,
                  show_progress: bool) -> tuple[list[ConvertedSequence], list[tuple[str, str]], int]:
    from tqdm import tqdm

    _check_resume(out, manifest)
    write_text(out / "dataset.json", json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    tasks, n_done = [], 0
    for split, entries in found.items():
        (out / split).mkdir(exist_ok=True)
        for name, folder, layout in entries:
            if (out / split / name).is_dir():
                n_done += 1
                continue
            tasks.append((split, name, str(folder), layout, str(out), cfg))
    results: list[ConvertedSequence] = []
    errors: list[tuple[str, str]] = []
    bar = tqdm(total=len(tasks), desc="convert-dataset", unit="seq", disable=not show_progress)
    try:
        if workers == 1:
            for task in tasks:
                try:
                    results.append(_convert_task(task))
                except EvtrackError as exc:
                    errors.append((task[1], str(exc)))
                bar.update(1)
        else:
            import multiprocessing as mp

            with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
                futures = {pool.submit(_convert_task, t): t for t in tasks}
                for fut in as_completed(futures):
                    try:
                        results.append(fut.result())
                    except EvtrackError as exc:
                        errors.append((futures[fut][1], str(exc)))
                    bar.update(1)
    finally:
        bar.close()
    return sorted(results, key=lambda r: (r.split, r.name)), errors, n_done
