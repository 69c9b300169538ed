"""Square crops around a box, shared by training (sampler) and online tracking.

A crop is ``(x0, y0, side, side)`` in sensor pixels and may extend past the sensor (the
representation pads with zeros). Boxes inside a crop are normalised ``cx, cy, w, h`` in 0..1.
"""

from __future__ import annotations

import math

import numpy as np

from evtrack.errors import UserError


def format_box(box) -> str:
    """``x,y,w,h`` as plain numbers for messages (``nan``, ``1e+09``; never ``np.float64(...)``)."""
    return ",".join(f"{float(v):g}" for v in np.ravel(np.asarray(box, dtype=np.float64)))


def check_init_box(box, sensor_size: tuple[int, int]) -> np.ndarray:
    """The initial box as float64 ``x, y, w, h``, or a UserError saying what is wrong with it.

    It must be four finite numbers with ``w, h > 0``, overlap the sensor ``(height, width)`` and be
    no larger than it: a box wider than the sensor (``10,10,1e9,50``) is a typo, not a target.
    """
    b = np.asarray(box, dtype=np.float64).reshape(-1)
    if b.shape != (4,) or not np.all(np.isfinite(b)) or b[2] <= 0 or b[3] <= 0:
        raise UserError(f"initial box {format_box(b)}: expected four finite numbers x,y,w,h with w > 0 and h > 0")
    h, w = sensor_size
    if b[0] >= w or b[1] >= h or b[0] + b[2] <= 0 or b[1] + b[3] <= 0:
        raise UserError(
            f"initial box {format_box(b)} lies outside the {w}x{h} (width x height) sensor; it must overlap it"
        )
    if b[2] > w or b[3] > h:
        raise UserError(f"initial box {format_box(b)} is larger than the {w}x{h} (width x height) sensor")
    return b


def crop_side(box: np.ndarray, factor: float, min_side: float = 0.0) -> float:
    """``factor * sqrt(w h)`` (at least ``min_side`` and 1 px): SDTrack's context-scaled square."""
    w, h = max(float(box[2]), 1.0), max(float(box[3]), 1.0)
    return max(factor * math.sqrt(w * h), min_side, 1.0)


def crop_around(cx: float, cy: float, side: float) -> tuple[float, float, float, float]:
    return (cx - side / 2.0, cy - side / 2.0, side, side)


def search_side(box: np.ndarray, cfg) -> float:
    """Side of the search crop of ``box`` under a ``TrackerConfig``: ``search_factor`` x the box, at least
    ``min_search_crop_px`` (training jitters where it is centred, tracking centres it on the motion guess)."""
    return crop_side(box, cfg.search_factor, cfg.min_search_crop_px)


def template_crop(box: np.ndarray, cfg) -> tuple[float, float, float, float]:
    """The template crop of ``box`` under a ``TrackerConfig``: ``template_factor`` x the box, at least
    ``min_template_crop_px``; one rule for training and tracking, so the two cannot drift apart."""
    side = crop_side(box, cfg.template_factor, cfg.min_template_crop_px)
    return crop_around(box[0] + box[2] / 2, box[1] + box[3] / 2, side)


def box_to_crop(box: np.ndarray, crop: tuple[float, float, float, float]) -> np.ndarray:
    """Sensor ``x, y, w, h`` box -> normalised ``cx, cy, w, h`` in the crop."""
    x0, y0, s, _ = crop
    return np.array(
        [(box[0] + box[2] / 2 - x0) / s, (box[1] + box[3] / 2 - y0) / s, box[2] / s, box[3] / s], dtype=np.float32
    )


def crop_to_box(nb: np.ndarray, crop: tuple[float, float, float, float]) -> np.ndarray:
    """Normalised ``cx, cy, w, h`` in the crop -> sensor ``x, y, w, h``."""
    x0, y0, s, _ = crop
    w, h = float(nb[2]) * s, float(nb[3]) * s
    return np.array([x0 + float(nb[0]) * s - w / 2, y0 + float(nb[1]) * s - h / 2, w, h], dtype=np.float64)


def clip_box(box: np.ndarray, sensor_size: tuple[int, int], min_size: float = 2.0) -> np.ndarray:
    """Clip an ``x, y, w, h`` box to the sensor ``(height, width)``, keeping at least ``min_size`` px."""
    hgt, wid = sensor_size
    x1 = float(np.clip(box[0], 0, wid - min_size))
    y1 = float(np.clip(box[1], 0, hgt - min_size))
    x2 = float(np.clip(box[0] + box[2], x1 + min_size, wid))
    y2 = float(np.clip(box[1] + box[3], y1 + min_size, hgt))
    return np.array([x1, y1, x2 - x1, y2 - y1], dtype=np.float64)
