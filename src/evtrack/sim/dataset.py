"""Synthetic tracking datasets in the FE108 layout, rendered and simulated from a seed.

Layout (docs/design.md)::

    <root>/dataset.json, README.md
    <root>/{train,test}/<seq>/events.h5            evtrack HDF5 (with /frame_timestamps_us)
                             groundtruth_rect.txt  x,y,w,h per "APS frame"
                             absent_label.txt      1 = target absent (occluded / out of view)
                             frame_timestamps.txt  int microseconds, one per frame
                             attributes.json       what the scene contains (shape, occlusion, ...)

Every sequence gets its own seed derived from ``(seed, split, index)``, so sequences can be made in
any order, in parallel, or resumed, and the bytes are the same.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from evtrack.errors import UserError
from evtrack.io import atomic
from evtrack.sim.esim import EventSimulator, SensorConfig
from evtrack.sim.scenes import Scene, SceneConfig, random_scene

GENERATOR_VERSION = 1
SPLITS = {"train": 0, "test": 1, "sample": 2}


@dataclass(frozen=True)
class SequenceConfig:
    """How a scene is turned into a recording."""

    render_fps: float = 1000.0  # internal frame rate of the renderer fed to the simulator
    gt_hz: float = 25.0  # rate of the "APS frames" the boxes belong to
    absent_visibility: float = 0.25  # target flagged absent when less than this fraction is visible
    flush_events: int = 200_000  # events buffered before a write to the HDF5 file
    sensor: SensorConfig = field(default_factory=SensorConfig)
    scene: SceneConfig = field(default_factory=SceneConfig)
    materials: str | None = None  # an RGB tracking dataset root: real targets and backgrounds (real_scenes.py)

    @classmethod
    def from_dict(cls, data: dict, *, source: str = "config") -> SequenceConfig:
        """Inverse of ``asdict`` (what ``dataset.json`` stores): nested configs rebuilt, lists as tuples."""
        parts = {"sensor": SensorConfig, "scene": SceneConfig}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(f"{source}: unknown config field(s) {unknown}; expected a subset of {sorted(known)}")
        kwargs = {}
        for key, value in data.items():
            if key in parts:
                sub = {f.name for f in fields(parts[key])}
                if not isinstance(value, dict) or set(value) - sub:
                    raise UserError(f"{source}: field {key!r} is {json.dumps(value)[:200]}; expected an object with "
                                    f"fields from {sorted(sub)}")
                value = parts[key](**{k: tuple(v) if isinstance(v, list) else v for k, v in value.items()})
            kwargs[key] = value
        return cls(**kwargs)


@dataclass(frozen=True)
class SequenceSummary:
    name: str
    n_events: int
    n_frames: int
    duration_s: float
    n_absent: int


def sequence_seed(seed: int, split: str, index: int) -> np.random.SeedSequence:
    """The seed of one sequence: independent of how many others are made or in which order."""
    return np.random.SeedSequence([int(seed), SPLITS[split], int(index)])


def frame_times_us(duration_s: float, hz: float) -> np.ndarray:
    """Ground-truth frame times: ``period, 2 period, ...`` up to the duration (frame 0 gets [0, period))."""
    period = int(round(1e6 / hz))
    n = int((duration_s * 1e6) // period)
    return (np.arange(1, n + 1, dtype=np.int64) * period)


def ground_truth(scene: Scene, ts_us: np.ndarray, absent_visibility: float) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (clipped to the sensor) and absent flags at the given times."""
    h, w = scene.sensor_size
    boxes = np.zeros((len(ts_us), 4))
    absent = np.zeros(len(ts_us), dtype=bool)
    for i, t in enumerate(ts_us):
        x, y, bw, bh = scene.target_box(t * 1e-6)
        x0, y0 = max(x, 0.0), max(y, 0.0)
        x1, y1 = min(x + bw, float(w)), min(y + bh, float(h))
        boxes[i] = (x0, y0, max(x1 - x0, 0.0), max(y1 - y0, 0.0))
        absent[i] = scene.target_visibility(t * 1e-6) < absent_visibility or x1 - x0 < 2 or y1 - y0 < 2
    return boxes, absent


def simulate_scene(scene: Scene, cfg: SequenceConfig, rng: np.random.Generator, writer=None,
                   progress=None) -> int:
    """Render the scene at ``cfg.render_fps`` and feed the simulator; returns the event count.

    Events go to ``writer.write`` in buffered chunks (or are dropped when writer is None).
    """
    sensor = replace(cfg.sensor, height=scene.sensor_size[0], width=scene.sensor_size[1])
    sim = EventSimulator(sensor, rng)
    n_frames = int(np.floor(scene.duration_s * cfg.render_fps)) + 1
    buf: list[np.ndarray] = []
    n_buf = n_total = 0
    for i in range(n_frames):
        t_us = int(round(i * 1e6 / cfg.render_fps))
        ev = sim.feed(scene.render(t_us * 1e-6), t_us)
        if len(ev):
            buf.append(ev)
            n_buf += len(ev)
        if n_buf >= cfg.flush_events or (i == n_frames - 1 and buf):
            chunk = np.concatenate(buf)
            if writer is not None:
                writer.write(chunk)
            n_total += len(chunk)
            buf, n_buf = [], 0
        if progress is not None:
            progress(i + 1, n_frames)
    return n_total


def _write_text(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines))


def sequence_scene(seed_seq: np.random.SeedSequence, cfg: SequenceConfig = SequenceConfig(),
                   duration_s: float | None = None) -> tuple[Scene, np.random.SeedSequence]:
    """The scene a sequence seed draws and the seed of its event simulation (pass a fresh ``seed_seq``:
    spawning advances it). Rebuilding a scene this way recovers what the files do not store, e.g. the
    distractors' paths (:mod:`evtrack.sim.failures`)."""
    scene_seed, sim_seed = seed_seq.spawn(2)
    scene_cfg = cfg.scene if duration_s is None else replace(cfg.scene, duration_s=(duration_s, duration_s))
    if cfg.materials is not None:
        from evtrack.sim.real_scenes import load_bank, random_real_scene

        return random_real_scene(np.random.default_rng(scene_seed), load_bank(cfg.materials), scene_cfg), sim_seed
    return random_scene(np.random.default_rng(scene_seed), scene_cfg), sim_seed


def write_sequence(seq_dir: str | Path, seed_seq: np.random.SeedSequence, cfg: SequenceConfig = SequenceConfig(),
                   duration_s: float | None = None) -> SequenceSummary:
    """Make one sequence directory (built under a temporary name, renamed when complete)."""
    from evtrack.io.hdf5 import HDF5EventWriter

    seq_dir = Path(seq_dir)
    scene, sim_seed = sequence_scene(seed_seq, cfg, duration_s)
    ts = frame_times_us(scene.duration_s, cfg.gt_hz)
    boxes, absent = ground_truth(scene, ts, cfg.absent_visibility)
    tmp = Path(tempfile.mkdtemp(prefix=f".{seq_dir.name}.partial-", dir=seq_dir.parent))
    try:
        attrs = {"generator": "evtrack.sim", "generator_version": GENERATOR_VERSION,
                 "duration_us": int(round(scene.duration_s * 1e6))}
        with HDF5EventWriter(tmp / "events.h5", sensor_size=scene.sensor_size, frame_timestamps_us=ts,
                            attrs=attrs) as writer:
            n_events = simulate_scene(scene, cfg, np.random.default_rng(sim_seed), writer)
        _write_text(tmp / "groundtruth_rect.txt", [",".join(f"{v:.3f}" for v in b) for b in boxes])
        _write_text(tmp / "absent_label.txt", [str(int(a)) for a in absent])
        _write_text(tmp / "frame_timestamps.txt", [str(int(t)) for t in ts])
        meta = dict(scene.attributes, duration_s=round(scene.duration_s, 4), n_events=n_events,
                    n_frames=len(ts), n_absent=int(absent.sum()))
        (tmp / "attributes.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
        os.chmod(tmp, 0o755)
        os.replace(tmp, seq_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return SequenceSummary(seq_dir.name, n_events, len(ts), scene.duration_s, int(absent.sum()))


def sequence_name(split: str, index: int) -> str:
    return f"synth_{split}_{index:04d}"


def _make_one(task: tuple[str, str, int, int, SequenceConfig]) -> SequenceSummary | None:
    root, split, index, seed, cfg = task
    seq_dir = Path(root) / split / sequence_name(split, index)
    if seq_dir.is_dir():  # done by an earlier (interrupted) run: same seed, same bytes
        return None
    return write_sequence(seq_dir, sequence_seed(seed, split, index), cfg)


def make_dataset(root: str | Path, n_train: int, n_test: int, seed: int, *, workers: int = 1,
                 cfg: SequenceConfig = SequenceConfig(), show_progress: bool = True) -> list[SequenceSummary]:
    """Generate (or complete) a dataset; already finished sequences are kept, not redone."""
    if n_train < 0 or n_test < 0:
        raise UserError(f"sequence counts must be >= 0, got --train {n_train} --test {n_test}")
    if workers < 1:
        raise UserError(f"--workers must be >= 1, got {workers}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    with atomic.folder_lock(root, "make-dataset"):
        return _make_into(root, n_train, n_test, seed, workers, cfg, show_progress)


def _make_into(root: Path, n_train: int, n_test: int, seed: int, workers: int, cfg: SequenceConfig,
               show_progress: bool) -> list[SequenceSummary]:
    from tqdm import tqdm

    _check_resume(root, seed, cfg)
    for split in ("train", "test"):
        (root / split).mkdir(exist_ok=True)
    _write_manifest(root, seed, cfg)  # records seed and config first, so a resumed run can check them
    # test split first: it is small and lets evaluation start while train is still being made
    tasks = [(str(root), "test", i, seed, cfg) for i in range(n_test)]
    tasks += [(str(root), "train", i, seed, cfg) for i in range(n_train)]
    done: list[SequenceSummary] = []
    # a context: the bar also ends on errors, so the error line does not continue the bar's line
    with tqdm(total=len(tasks), desc="make-dataset", unit="seq", disable=not show_progress) as bar:
        if workers == 1:
            for task in tasks:
                s = _make_one(task)
                if s is not None:
                    done.append(s)
                bar.update(1)
        else:
            import multiprocessing as mp

            with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
                for s in pool.map(_make_one, tasks):
                    if s is not None:
                        done.append(s)
                    bar.update(1)
    _write_manifest(root, seed, cfg)
    return done


def _read_manifest(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: unreadable ({exc}); expected the manifest written by make-dataset") from None


def dataset_config(root: str | Path) -> tuple[int, SequenceConfig]:
    """``(seed, configuration)`` a generated dataset was made with, from its ``dataset.json``."""
    path = Path(root) / "dataset.json"
    manifest = _read_manifest(path)
    version = manifest.get("generator_version")
    if version != GENERATOR_VERSION:
        raise UserError(f"{path}: generator_version {version!r}; this evtrack makes version "
                        f"{GENERATOR_VERSION} scenes only")
    if not isinstance(manifest.get("seed"), int) or not isinstance(manifest.get("config"), dict):
        raise UserError(f"{path}: fields 'seed' (an integer) and 'config' (an object) expected, found "
                        f"{json.dumps(manifest.get('seed'))[:50]} and {type(manifest.get('config')).__name__}")
    return manifest["seed"], SequenceConfig.from_dict(manifest["config"], source=f"{path}: config")


def _check_resume(root: Path, seed: int, cfg: SequenceConfig) -> None:
    """Refuse to add sequences to a folder made with another seed / configuration / generator."""
    path = root / "dataset.json"
    if not path.is_file():
        stray = [p.name for split in ("train", "test") if (root / split).is_dir()
                 for p in (root / split).iterdir() if not p.name.startswith(".")]
        if stray:
            raise UserError(f"{root}: holds sequences ({', '.join(sorted(stray)[:3])}, ...) but no dataset.json; "
                            "expected an empty folder or one made by make-dataset")
        return
    old = _read_manifest(path)
    new = {"seed": seed, "generator_version": GENERATOR_VERSION, "config": json.loads(json.dumps(asdict(cfg)))}
    for key, value in new.items():
        if old.get(key) != value:
            raise UserError(f"{root}: was made with {key} = {json.dumps(old.get(key))[:200]}, this run asks for "
                            f"{json.dumps(value)[:200]}; use a new output folder (sequences would not match)")


def _write_manifest(root: Path, seed: int, cfg: SequenceConfig) -> None:
    """dataset.json: the seed and configuration, and the sequences present now (sorted)."""
    present = {split: sorted(p.name for p in (root / split).iterdir()
                             if p.is_dir() and not p.name.startswith(".")) for split in ("train", "test")}
    manifest = {
        "name": "evtrack-synthetic",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "splits": present,
        "sequence_seed": "numpy SeedSequence([seed, split_id, index]), split_id train=0 test=1",
        "config": asdict(cfg),
        "layout": "FE108: <split>/<seq>/{events.h5, groundtruth_rect.txt, absent_label.txt, frame_timestamps.txt}",
    }
    atomic.write_text(root / "dataset.json", json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    readme = (
        "# evtrack synthetic event-tracking dataset\n\n"
        f"Generated by `evtrack make-dataset` (generator version {GENERATOR_VERSION}, seed {seed}).\n"
        "Scenes are rendered procedurally (textured target on a textured, camera-moved background, look-alike\n"
        "distractors, occluders, scale change, low-contrast and high-speed segments) at "
        f"{cfg.render_fps:g} fps and\nconverted to events by an ESIM/v2e-style simulator "
        f"(DAVIS346 {cfg.sensor.height}x{cfg.sensor.width}, thresholds\n"
        f"{cfg.sensor.c_pos}/{cfg.sensor.c_neg} +- {cfg.sensor.c_sigma}, refractory {cfg.sensor.refractory_us} us, "
        f"background activity {cfg.sensor.noise_rate_hz} Hz/pixel,\n{cfg.sensor.n_hot_pixels} hot pixels). "
        f"Ground truth: one box per {cfg.gt_hz:g} Hz frame; see dataset.json for all parameters.\n"
    )
    atomic.write_text(root / "README.md", readme)


def make_sample_sequence(out_dir: str | Path, seed: int = 0, duration_s: float = 2.0) -> SequenceSummary:
    """A small demo sequence (2 s, under 2 MB) written to ``out_dir`` (which must not exist)."""
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise UserError(f"{out_dir}: already exists; the sample sequence is written to a new directory")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # a calmer, sparser scene than the datasets' (the file ships inside the package)
    scene = replace(SceneConfig(), camera_speed_px_s=(0.0, 15.0), target_size_px=(30.0, 45.0),
                    background_rate_ev_s=(10_000.0, 30_000.0), max_rate_ev_s=150_000.0, target_contrast=(0.4, 0.7))
    cfg = SequenceConfig(scene=scene)
    return write_sequence(out_dir, sequence_seed(seed, "sample", 0), cfg, duration_s=duration_s)
