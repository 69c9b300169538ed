"""Visual output: event frames with boxes, as an mp4 video (OpenCV, mp4v) or a PNG contact sheet.

Files are written to a temporary name in the same directory and renamed when complete.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

GT_COLOUR = (80, 220, 80)  # BGR green
PRED_COLOUR = (60, 60, 240)  # BGR red
BASE_COLOUR = (230, 160, 40)  # BGR blue-ish, for a baseline


def event_image(events: np.ndarray, sensor_size: tuple[int, int]) -> np.ndarray:
    """BGR uint8 ``[H, W, 3]``: ON events white-blue, OFF events orange on dark grey."""
    h, w = sensor_size
    img = np.full((h, w, 3), 30, np.uint8)
    if len(events):
        x = events["x"].astype(np.intp)
        y = events["y"].astype(np.intp)
        on = events["p"] > 0
        img[y[on], x[on]] = (255, 200, 120)
        img[y[~on], x[~on]] = (60, 140, 255)
    return img


def draw_box(img: np.ndarray, box, colour, thickness: int = 1) -> None:
    import cv2

    if box is None or not np.all(np.isfinite(box)):
        return
    x, y, w, h = (float(v) for v in box)
    cv2.rectangle(img, (round(x), round(y)), (round(x + w), round(y + h)), colour, thickness)


def write_video(
    path: str | Path,
    frames: Iterable[tuple[np.ndarray, Sequence]],
    sensor_size: tuple[int, int],
    *,
    fps: float = 25.0,
    scale: int = 2,
) -> Path:
    """``frames``: ``(events, [(box, colour), ...])`` per frame -> mp4 video (upscaled by ``scale``)."""
    import cv2

    from evtrack.io import atomic

    path = Path(path)
    h, w = sensor_size
    with atomic.replacing(path) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (w * scale, h * scale))
        if not writer.isOpened():
            raise OSError(f"{path}: OpenCV could not open an mp4v video writer")
        try:
            for events, boxes in frames:
                img = event_image(events, sensor_size)
                img = cv2.resize(img, (w * scale, h * scale), interpolation=cv2.INTER_NEAREST)
                for box, colour in boxes:
                    draw_box(img, None if box is None else np.asarray(box, float) * scale, colour, 2)
                writer.write(img)
        finally:
            writer.release()
    return path


def write_contact_sheet(
    path: str | Path,
    frames: Sequence[tuple[np.ndarray, Sequence, str]],
    sensor_size: tuple[int, int],
    *,
    columns: int = 3,
    scale: int = 2,
) -> Path:
    """PNG grid of a few frames ``(events, [(box, colour), ...], label)``."""
    import cv2

    path = Path(path)
    h, w = sensor_size
    tiles = []
    for events, boxes, label in frames:
        img = cv2.resize(event_image(events, sensor_size), (w * scale, h * scale), interpolation=cv2.INTER_NEAREST)
        for box, colour in boxes:
            draw_box(img, None if box is None else np.asarray(box, float) * scale, colour, 2)
        cv2.putText(img, label, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(img)
    while len(tiles) % columns:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.concatenate(tiles[i : i + columns], axis=1) for i in range(0, len(tiles), columns)]
    sheet = np.concatenate(rows, axis=0)
    from evtrack.io import atomic

    with atomic.replacing(path) as tmp:
        if not cv2.imwrite(str(tmp), sheet):
            raise OSError(f"{path}: OpenCV could not write the PNG")
    return path
