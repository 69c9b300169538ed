"""Procedural grey-level textures and shape outlines for simulated scenes.

Textures are float32 images in [0, 1]. Shapes are polygons (``(K, 2)`` float64 vertices, centred
on the origin, x right, y down) so that the exact bounding box of a rotated, scaled shape is the
min/max of its transformed vertices.
"""

from __future__ import annotations

import cv2
import numpy as np

TEXTURE_KINDS = ("noise", "checker", "stripes", "dots", "patches")
SHAPE_KINDS = ("rectangle", "ellipse", "triangle", "star", "hexagon", "blob", "cross")


def value_noise(rng: np.random.Generator, shape: tuple[int, int], base_cells: float = 4.0,
                octaves: int = 4, persistence: float = 0.55) -> np.ndarray:
    """Multi-octave smooth noise normalised to [0, 1]."""
    h, w = shape
    out = np.zeros((h, w), np.float32)
    amp, total = 1.0, 0.0
    cells = base_cells
    for _ in range(octaves):
        gh = max(2, int(round(h / max(h, w) * cells)) + 1)
        gw = max(2, int(round(w / max(h, w) * cells)) + 1)
        grid = rng.random((gh, gw)).astype(np.float32)
        out += amp * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
        total += amp
        amp *= persistence
        cells *= 2.0
    out /= total
    lo, hi = np.percentile(out, [1, 99])
    return np.clip((out - lo) / max(hi - lo, 1e-6), 0, 1).astype(np.float32)


def make_texture(rng: np.random.Generator, kind: str, shape: tuple[int, int]) -> np.ndarray:
    """A texture of the given kind, values in [0, 1] spanning most of the range."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == "noise":
        tex = value_noise(rng, shape, base_cells=rng.uniform(2, 6))
    elif kind == "checker":
        cell = rng.uniform(4, 12)
        phi = rng.uniform(0, np.pi / 2)
        u = (xx * np.cos(phi) + yy * np.sin(phi)) / cell
        v = (-xx * np.sin(phi) + yy * np.cos(phi)) / cell
        tex = ((np.floor(u) + np.floor(v)) % 2).astype(np.float32)
        tex = cv2.GaussianBlur(tex, (0, 0), 0.7)
    elif kind == "stripes":
        period = rng.uniform(5, 16)
        phi = rng.uniform(0, np.pi)
        tex = 0.5 + 0.5 * np.sin(2 * np.pi * (xx * np.cos(phi) + yy * np.sin(phi)) / period)
    elif kind == "dots":
        tex = np.full(shape, rng.uniform(0.0, 0.3), np.float32)
        n = int(h * w / rng.uniform(60, 200)) + 1
        for _ in range(n):
            c = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
            cv2.circle(tex, c, int(rng.uniform(1.5, 4)), float(rng.uniform(0.6, 1.0)), -1, cv2.LINE_AA)
    elif kind == "patches":
        tex = value_noise(rng, shape, base_cells=3, octaves=2) * 0.5
        for _ in range(int(rng.integers(4, 12))):
            c = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
            ax = (int(rng.uniform(2, max(3, w / 3))), int(rng.uniform(2, max(3, h / 3))))
            cv2.ellipse(tex, c, ax, float(rng.uniform(0, 180)), 0, 360, float(rng.random()), -1, cv2.LINE_AA)
    else:
        raise ValueError(f"unknown texture kind {kind!r}; expected one of {TEXTURE_KINDS}")
    return np.clip(tex, 0, 1).astype(np.float32)


def make_background(rng: np.random.Generator, shape: tuple[int, int], contrast: float) -> np.ndarray:
    """A cluttered, low-to-moderate contrast background: smooth noise plus a few flat objects."""
    h, w = shape
    bg = value_noise(rng, shape, base_cells=rng.uniform(3, 8), octaves=5, persistence=0.5)
    for _ in range(int(rng.integers(5, 20))):
        c = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
        if rng.random() < 0.5:
            ax = (int(rng.uniform(5, 60)), int(rng.uniform(5, 60)))
            cv2.ellipse(bg, c, ax, float(rng.uniform(0, 180)), 0, 360, float(rng.random()), -1, cv2.LINE_AA)
        else:
            d = (int(rng.uniform(5, 80)), int(rng.uniform(5, 80)))
            cv2.rectangle(bg, c, (c[0] + d[0], c[1] + d[1]), float(rng.random()), -1, cv2.LINE_AA)
    bg = cv2.GaussianBlur(bg, (0, 0), 1.0)
    mean = rng.uniform(0.3, 0.6)
    return np.clip(mean + contrast * (bg - 0.5), 0.02, 1.0).astype(np.float32)


def make_shape(rng: np.random.Generator, kind: str, width: float, height: float) -> np.ndarray:
    """Polygon vertices of a shape whose axis-aligned extent is exactly ``width`` x ``height``."""
    if kind == "rectangle":
        pts = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float)
    elif kind == "ellipse":
        a = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        pts = np.stack([np.cos(a), np.sin(a)], 1)
    elif kind == "triangle":
        pts = np.array([[0, -1], [1, 1], [-1, 1]], float)
    elif kind == "hexagon":
        a = np.linspace(0, 2 * np.pi, 6, endpoint=False)
        pts = np.stack([np.cos(a), np.sin(a)], 1)
    elif kind == "star":
        n = int(rng.integers(5, 8))
        a = np.linspace(0, 2 * np.pi, 2 * n, endpoint=False) - np.pi / 2
        r = np.where(np.arange(2 * n) % 2 == 0, 1.0, rng.uniform(0.45, 0.65))
        pts = np.stack([r * np.cos(a), r * np.sin(a)], 1)
    elif kind == "blob":
        a = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        r = 1.0 + 0.25 * np.sin(int(rng.integers(2, 5)) * a + rng.uniform(0, 6)) + 0.1 * np.sin(
            int(rng.integers(5, 8)) * a + rng.uniform(0, 6))
        pts = np.stack([r * np.cos(a), r * np.sin(a)], 1)
    elif kind == "cross":
        t = rng.uniform(0.3, 0.5)
        pts = np.array([[-t, -1], [t, -1], [t, -t], [1, -t], [1, t], [t, t], [t, 1], [-t, 1],
                        [-t, t], [-1, t], [-1, -t], [-t, -t]], float)
    else:
        raise ValueError(f"unknown shape kind {kind!r}; expected one of {SHAPE_KINDS}")
    # normalise to the exact requested extent, centred on the origin
    lo, hi = pts.min(0), pts.max(0)
    pts = (pts - (lo + hi) / 2) / (hi - lo)
    return pts * np.array([width, height])


def rasterize(polygon: np.ndarray, patch_shape: tuple[int, int], origin: tuple[float, float],
              supersample: int = 4) -> np.ndarray:
    """Anti-aliased coverage mask (float32 in [0, 1]) of ``polygon + origin`` on a patch.

    Continuous coordinates: pixel (i, j) covers ``[j, j+1) x [i, i+1)``.
    """
    h, w = patch_shape
    s = supersample
    pts = (polygon + np.asarray(origin)) * s - 0.5  # to cv2 pixel-centre coordinates at s x
    shift = 4
    ipts = np.round(pts * (1 << shift)).astype(np.int32)
    big = np.zeros((h * s, w * s), np.uint8)
    cv2.fillPoly(big, [ipts], 255, lineType=cv2.LINE_8, shift=shift)
    return (cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0)
