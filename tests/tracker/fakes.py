"""A tiny fake event dataset for tracker tests: a bright square moving on a noisy background."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from evtrack.io.events import EVENT_DTYPE

SENSOR = (96, 128)  # (height, width)
FRAME_US = 40_000


def moving_square(n_frames: int = 24, seed: int = 0, size: float = 14.0, sensor=SENSOR):
    """Events of a square's edges moving along a smooth path, plus sparse noise.

    Returns (events, boxes (N, 4), frame_times_us (N,)). Frame i's events lie in
    ``[ts[i] - FRAME_US, ts[i])``.
    """
    rng = np.random.default_rng(seed)
    h, w = sensor
    ts = (np.arange(n_frames, dtype=np.int64) + 1) * FRAME_US
    phase = rng.uniform(0, 2 * np.pi)
    cx = w / 2 + 0.3 * w * np.sin(np.linspace(0, 2, n_frames) + phase)
    cy = h / 2 + 0.25 * h * np.cos(np.linspace(0, 1.5, n_frames) + phase)
    boxes = np.stack([cx - size / 2, cy - size / 2, np.full(n_frames, size), np.full(n_frames, size)], 1)
    chunks = []
    for i in range(n_frames):
        n_obj, n_noise = 400, 60
        t_obj = rng.integers(ts[i] - FRAME_US, ts[i], n_obj)
        side = rng.integers(0, 4, n_obj)
        u = rng.uniform(0, size, n_obj)
        x0, y0 = boxes[i, 0], boxes[i, 1]
        xs = np.where(side == 0, x0, np.where(side == 1, x0 + size, x0 + u))
        ys = np.where(side == 2, y0, np.where(side == 3, y0 + size, y0 + u))
        ev = np.empty(n_obj + n_noise, EVENT_DTYPE)
        ev["t"] = np.concatenate([t_obj, rng.integers(ts[i] - FRAME_US, ts[i], n_noise)])
        ev["x"] = np.clip(np.concatenate([xs, rng.uniform(0, w, n_noise)]), 0, w - 1).astype(np.int16)
        ev["y"] = np.clip(np.concatenate([ys, rng.uniform(0, h, n_noise)]), 0, h - 1).astype(np.int16)
        ev["p"] = rng.integers(0, 2, n_obj + n_noise)
        chunks.append(ev)
    events = np.concatenate(chunks)
    events = events[np.argsort(events["t"], kind="stable")]
    return events, boxes, ts


def write_fe108_sequence(seq_dir: Path, n_frames: int = 24, seed: int = 0) -> None:
    """Write one fake sequence in the generated set's FE108 layout."""
    from evtrack.io import write_hdf5

    events, boxes, ts = moving_square(n_frames, seed)
    seq_dir.mkdir(parents=True)
    write_hdf5(seq_dir / "events.h5", events, sensor_size=SENSOR)
    np.savetxt(seq_dir / "groundtruth_rect.txt", boxes, fmt="%.3f", delimiter=",")
    np.savetxt(seq_dir / "absent_label.txt", np.zeros(n_frames, int), fmt="%d")
    np.savetxt(seq_dir / "frame_timestamps.txt", ts, fmt="%d")


def write_fake_dataset(root: Path, n_train: int = 2, n_test: int = 1) -> Path:
    for i in range(n_train):
        write_fe108_sequence(root / "train" / f"train_{i:03d}", seed=i)
    for i in range(n_test):
        write_fe108_sequence(root / "test" / f"test_{i:03d}", seed=100 + i)
    return root


class ListReader:
    """Minimal in-memory reader with the EventReader ``info`` / ``slices`` contract."""

    def __init__(self, events: np.ndarray, sensor=SENSOR) -> None:
        self.events = events
        self.info = type("Info", (), {"sensor_size": sensor, "path": "<memory>"})()

    def slices(self, edges):
        t = self.events["t"]
        edges = np.asarray(edges)
        for a, b in zip(edges[:-1], edges[1:], strict=True):
            i, j = np.searchsorted(t, [a, b])
            yield self.events[i:j]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None
