"""Smooth motion paths for simulated objects and for the camera.

A :class:`Trajectory` is a densely sampled pose track (centre, scale, rotation) that is linearly
interpolated between samples. Sampling every millisecond makes the interpolation error far below a
pixel while keeping every query exact and cheap: the renderer and the ground-truth boxes read the
same track, so a box is exactly where the object was drawn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SAMPLE_DT_S = 1e-3


@dataclass(frozen=True)
class Trajectory:
    """Pose over time: centre ``(cx, cy)`` in sensor pixels, scale factor, rotation in degrees."""

    t_s: np.ndarray  # (K,) increasing sample times in seconds
    cx: np.ndarray
    cy: np.ndarray
    scale: np.ndarray
    angle_deg: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.t_s)
        if n < 2 or any(len(a) != n for a in (self.cx, self.cy, self.scale, self.angle_deg)):
            raise ValueError(f"Trajectory needs >= 2 samples and equally long columns, got {n} times")
        if np.any(np.diff(self.t_s) <= 0):
            raise ValueError("Trajectory sample times must increase")
        # plain-float copies: scalar lookups on lists are ~10x cheaper than np.interp calls, and
        # the renderer asks for poses thousands of times per second of sequence
        object.__setattr__(self, "_cols", tuple(np.asarray(a, np.float64).tolist() for a in
                                                (self.t_s, self.cx, self.cy, self.scale, self.angle_deg)))
        object.__setattr__(self, "_dt", float(self.t_s[-1] - self.t_s[0]) / (n - 1))

    def at(self, t_s: float) -> tuple[float, float, float, float]:
        """``(cx, cy, scale, angle_deg)`` at time ``t_s`` (clamped to the sampled range).

        Bit-identical to ``np.interp`` on each column (same interval search, same formula).
        """
        ts, *cols = self._cols
        x = float(t_s)
        n = len(ts)
        if x <= ts[0]:
            return tuple(c[0] for c in cols)
        if x >= ts[-1]:
            return tuple(c[-1] for c in cols)
        j = min(max(int((x - ts[0]) / self._dt), 0), n - 2)
        while j > 0 and ts[j] > x:
            j -= 1
        while j < n - 2 and ts[j + 1] <= x:
            j += 1
        x0, x1 = ts[j], ts[j + 1]
        return tuple((c[j + 1] - c[j]) / (x1 - x0) * (x - x0) + c[j] for c in cols)

    @classmethod
    def linear(cls, duration_s: float, start: tuple[float, float], velocity_px_s: tuple[float, float],
               scale: float = 1.0, angle_deg: float = 0.0) -> Trajectory:
        """Constant-velocity motion (used by tests and simple demos)."""
        t = _grid(duration_s)
        return cls(t, start[0] + velocity_px_s[0] * t, start[1] + velocity_px_s[1] * t,
                   np.full_like(t, scale), np.full_like(t, angle_deg))

    @classmethod
    def static(cls, duration_s: float, centre: tuple[float, float], scale: float = 1.0) -> Trajectory:
        return cls.linear(duration_s, centre, (0.0, 0.0), scale)


def _grid(duration_s: float) -> np.ndarray:
    n = int(np.ceil(duration_s / SAMPLE_DT_S)) + 2
    return np.arange(n) * SAMPLE_DT_S


def smooth_noise(rng: np.random.Generator, n: int, corr_samples: float) -> np.ndarray:
    """Zero-mean, unit-variance noise smoothed with a Gaussian of ``corr_samples`` samples."""
    corr_samples = max(corr_samples, 1.0)
    half = int(3 * corr_samples)
    raw = rng.standard_normal(n + 2 * half)
    k = np.exp(-0.5 * (np.arange(-half, half + 1) / corr_samples) ** 2)
    out = np.convolve(raw, k / k.sum(), mode="valid")[:n]
    return out / (out.std() + 1e-12)


def speed_profile(rng: np.random.Generator, n: int, base_px_s: float, fast_factor: float,
                  p_fast: float, p_slow: float) -> np.ndarray:
    """Piecewise speed (slow / normal / fast segments of 0.3-1 s) with smooth transitions."""
    out = np.empty(n)
    i = 0
    while i < n:
        seg = int(rng.uniform(0.3, 1.0) / SAMPLE_DT_S)
        u = rng.random()
        if u < p_fast:
            v = base_px_s * fast_factor * rng.uniform(0.8, 1.2)
        elif u < p_fast + p_slow:
            v = base_px_s * rng.uniform(0.05, 0.3)
        else:
            v = base_px_s * rng.uniform(0.6, 1.4)
        out[i:i + seg] = v
        i += seg
    # ramp between segments over ~100 ms so accelerations stay physical
    k = np.ones(101) / 101
    return np.convolve(np.pad(out, 50, mode="edge"), k, mode="valid")[:n]


def random_trajectory(rng: np.random.Generator, duration_s: float, sensor_size: tuple[int, int],
                      half_extent: float, *, base_speed_px_s: float = 60.0, fast_factor: float = 4.0,
                      p_fast: float = 0.2, p_slow: float = 0.2, scale_range: tuple[float, float] = (0.6, 1.6),
                      scale_change: float = 0.25, rotation_deg: float = 15.0,
                      start: tuple[float, float] | None = None) -> Trajectory:
    """A smooth wandering path that turns back before leaving the sensor.

    Heading follows smoothed noise; near a border a steering term turns the object back towards
    the centre, so the object stays (mostly) in view. ``half_extent`` is the object's half size
    at scale 1, used for the border margin.
    """
    h, w = sensor_size
    t = _grid(duration_s)
    n = len(t)
    speed = speed_profile(rng, n, base_speed_px_s, fast_factor, p_fast, p_slow)
    turn = smooth_noise(rng, n, 0.15 / SAMPLE_DT_S) * rng.uniform(0.5, 2.5)  # rad/s
    log_s = np.log(rng.uniform(0.8, 1.2)) + np.cumsum(smooth_noise(rng, n, 0.3 / SAMPLE_DT_S)) * (
        scale_change * SAMPLE_DT_S)
    scale = np.clip(np.exp(log_s), *scale_range)
    angle = smooth_noise(rng, n, 0.4 / SAMPLE_DT_S) * rotation_deg
    if start is None:
        margin = min(half_extent * 1.5, 0.3 * min(h, w))
        start = (rng.uniform(margin, w - margin), rng.uniform(margin, h - margin))
    cx, cy = np.empty(n), np.empty(n)
    x, y = start
    heading = rng.uniform(0, 2 * np.pi)
    for i in range(n):
        cx[i], cy[i] = x, y
        m = half_extent * scale[i] + 10.0
        # steering: desired direction towards the centre, weighted by closeness to the border
        push = max(0.0, (m + 30 - x) / 30) + max(0.0, (x - (w - m - 30)) / 30) + \
            max(0.0, (m + 30 - y) / 30) + max(0.0, (y - (h - m - 30)) / 30)
        turn_i = turn[i]
        if push > 0:
            want = np.arctan2(h / 2 - y, w / 2 - x)
            diff = (want - heading + np.pi) % (2 * np.pi) - np.pi
            turn_i += np.clip(push, 0, 3) * 4.0 * diff
        heading += turn_i * SAMPLE_DT_S
        x += speed[i] * np.cos(heading) * SAMPLE_DT_S
        y += speed[i] * np.sin(heading) * SAMPLE_DT_S
    return Trajectory(t, cx, cy, scale, angle)


def camera_trajectory(rng: np.random.Generator, duration_s: float, max_speed_px_s: float,
                      still_fraction: float = 0.3, zoom_amplitude: float = 0.03) -> Trajectory:
    """Ego-motion of the camera as a background offset in pixels (pan/tilt, slight zoom)."""
    t = _grid(duration_s)
    n = len(t)
    vx = smooth_noise(rng, n, 0.4 / SAMPLE_DT_S) * max_speed_px_s / 2
    vy = smooth_noise(rng, n, 0.4 / SAMPLE_DT_S) * max_speed_px_s / 2
    # the camera rests during part of the sequence (a hand-held camera is not always panning)
    g = smooth_noise(rng, n, 0.3 / SAMPLE_DT_S)
    gate = (g > np.quantile(g, still_fraction)).astype(float)
    gate = np.convolve(np.pad(gate, 50, mode="edge"), np.ones(101) / 101, mode="valid")[:n]
    vx, vy = np.clip(vx * gate, -max_speed_px_s, max_speed_px_s), np.clip(vy * gate, -max_speed_px_s, max_speed_px_s)
    ox = np.cumsum(vx) * SAMPLE_DT_S
    oy = np.cumsum(vy) * SAMPLE_DT_S
    zoom = np.exp(smooth_noise(rng, n, 0.5 / SAMPLE_DT_S) * zoom_amplitude * gate)
    return Trajectory(t, ox, oy, zoom, np.zeros(n))
