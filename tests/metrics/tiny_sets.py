"""Tiny FE108-layout datasets for the tests of the evaluation loop and the commands built on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from evtrack import io

LENGTHS = {"s0": 6, "s1": 9, "s2": 4, "s3": 7}
FRAME_US = 10_000


def make_dataset(root: Path, split: str = "test") -> Path:
    """A tiny FE108-layout tree (no make-dataset manifest): moving boxes, HDF5 events, 100 Hz frame
    timestamps."""
    rng = np.random.default_rng(1)
    for k, (name, n) in enumerate(LENGTHS.items()):
        d = root / split / name
        d.mkdir(parents=True)
        boxes = np.array([[20 + 2 * i + k, 15 + i, 12, 10] for i in range(n)], float)
        (d / "groundtruth_rect.txt").write_text("\n".join(",".join(map(str, b)) for b in boxes))
        (d / "absent_label.txt").write_text("\n".join("1" if i == n - 1 and k == 1 else "0" for i in range(n)))
        times = (np.arange(n) + 1) * FRAME_US
        (d / "frame_timestamps.txt").write_text("\n".join(map(str, times)))
        m = 50 * n
        t = np.sort(rng.integers(0, n * FRAME_US, m))
        ev = io.make_events(t, rng.integers(0, 64, m), rng.integers(0, 48, m), rng.integers(0, 2, m))
        io.write_hdf5(d / "events.h5", ev, sensor_size=(48, 64))
    return root
