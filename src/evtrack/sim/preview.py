"""Preview images of generated sequences: event frames with the ground-truth box drawn on top.

Meant for a person to check a dataset by eye (target visible, box on the target).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def event_image(events: np.ndarray, sensor_size: tuple[int, int]) -> np.ndarray:
    """BGR uint8 image: ON events blue, OFF events red, on white; brighter with more events."""
    h, w = sensor_size
    on = np.zeros((h, w), np.float32)
    off = np.zeros((h, w), np.float32)
    pos = events["p"] == 1
    np.add.at(on, (events["y"][pos], events["x"][pos]), 1)
    np.add.at(off, (events["y"][~pos], events["x"][~pos]), 1)
    on, off = np.minimum(on / 3, 1), np.minimum(off / 3, 1)
    img = np.full((h, w, 3), 255, np.float32)
    img[..., 0] -= 255 * off  # OFF: remove blue -> red-ish
    img[..., 1] -= 255 * np.maximum(on, off)
    img[..., 2] -= 255 * on  # ON: remove red -> blue-ish
    return np.clip(img, 0, 255).astype(np.uint8)


def sequence_preview(seq_dir: str | Path, n_frames: int = 5) -> np.ndarray:
    """A row of ``n_frames`` evenly spaced event frames of one sequence with its boxes."""
    from evtrack.io import open_events

    seq_dir = Path(seq_dir)
    boxes = np.loadtxt(seq_dir / "groundtruth_rect.txt", delimiter=",", ndmin=2)
    absent = np.loadtxt(seq_dir / "absent_label.txt", dtype=int, ndmin=1).astype(bool)
    ts = np.loadtxt(seq_dir / "frame_timestamps.txt", dtype=np.int64, ndmin=1)
    period = int(ts[1] - ts[0]) if len(ts) > 1 else int(ts[0])
    picks = np.linspace(1, len(ts) - 1, n_frames).round().astype(int)
    tiles = []
    with open_events(seq_dir / "events.h5") as reader:
        size = reader.info.sensor_size
        for i in picks:
            t1 = int(ts[i])
            t0 = t1 - period
            ev = next(iter(reader.slices(np.array([t0, t1]))))
            img = event_image(ev, size)
            x, y, bw, bh = boxes[i]
            colour = (0, 160, 0) if not absent[i] else (0, 200, 255)
            cv2.rectangle(img, (int(round(x)), int(round(y))), (int(round(x + bw)), int(round(y + bh))), colour, 1)
            cv2.putText(img, f"{seq_dir.name} f{i}{' absent' if absent[i] else ''} {len(ev)}ev",
                        (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
            tiles.append(img)
    return np.concatenate(tiles, axis=1)


def dataset_preview(seq_dirs: list[Path], path: str | Path, n_frames: int = 5) -> None:
    """Write a grid PNG: one row per sequence."""
    rows = [sequence_preview(d, n_frames) for d in seq_dirs]
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    grid = np.concatenate(rows, axis=0)
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    if not cv2.imwrite(str(tmp), grid):
        raise OSError(f"{path}: could not write the preview image")
    tmp.replace(path)
