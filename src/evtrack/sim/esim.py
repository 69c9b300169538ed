"""ESIM/v2e-style event generation: log-intensity frames in, DVS events out.

Each pixel keeps the log intensity at which it last fired (its *reference*). Between two frames the
log intensity of a pixel is taken to change linearly in time, so every threshold crossing of
``reference +- C`` gets its own exact timestamp inside the interval (Rebecq et al., "ESIM: an Open
Event Camera Simulator", CoRL 2018). Thresholds differ per pixel (Gaussian spread around a nominal
value, as v2e does, Hu et al. 2021), a refractory period suppresses events that follow too closely
on the previous event of the same pixel, and background-activity noise plus a few hot pixels are
added (see :mod:`evtrack.sim.noise`).

Refractory model: a crossing that falls inside the refractory period produces no event but the
reference still moves to the crossed level (the pixel's comparator was reset by the earlier event
and the change it would have reported is lost), so the reference always stays within one threshold
of the current log intensity.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numba
import numpy as np

from evtrack.errors import UserError
from evtrack.io.events import EVENT_DTYPE, empty_events
from evtrack.sim.noise import NoiseModel


@dataclass(frozen=True)
class SensorConfig:
    """Parameters of the simulated DVS pixel array."""

    height: int = 260  # DAVIS346 rows
    width: int = 346  # DAVIS346 columns
    c_pos: float = 0.25  # nominal ON threshold, in log-intensity units
    c_neg: float = 0.25  # nominal OFF threshold, in log-intensity units
    c_sigma: float = 0.03  # per-pixel threshold standard deviation (log units)
    c_min: float = 0.05  # thresholds are clipped below at this value
    refractory_us: int = 100  # minimum time between two events of one pixel
    log_eps: float = 0.02  # L = log(I + eps) for intensity I in [0, 1]; avoids log(0) in the dark
    noise_rate_hz: float = 0.1  # background-activity events per pixel per second
    n_hot_pixels: int = 4  # pixels that fire at hot_rate_hz regardless of the scene
    hot_rate_hz: float = 100.0

    def __post_init__(self) -> None:
        if self.height <= 0 or self.width <= 0 or self.height > 32767 or self.width > 32767:
            raise UserError(f"sensor size must be 1..32767 per side, got {self.height}x{self.width}")
        if self.c_pos <= 0 or self.c_neg <= 0:
            raise UserError(f"contrast thresholds must be > 0, got c_pos={self.c_pos}, c_neg={self.c_neg}")
        if self.c_min <= 0:
            raise UserError(f"c_min must be > 0, got {self.c_min}")
        if self.c_sigma < 0 or self.refractory_us < 0 or self.noise_rate_hz < 0 or self.hot_rate_hz < 0:
            raise UserError("c_sigma, refractory_us, noise_rate_hz and hot_rate_hz must be >= 0")
        if self.n_hot_pixels < 0 or self.n_hot_pixels > self.height * self.width:
            raise UserError(f"n_hot_pixels must be in 0..{self.height * self.width}, got {self.n_hot_pixels}")
        if self.log_eps <= 0:
            raise UserError(f"log_eps must be > 0, got {self.log_eps}")

    @property
    def sensor_size(self) -> tuple[int, int]:
        return (self.height, self.width)


def parse_sensor(text: str) -> tuple[int, int]:
    """Parse ``"260x346"`` (height x width) into ``(260, 346)``."""
    parts = text.lower().split("x")
    try:
        h, w = (int(v) for v in parts)
    except ValueError:
        raise UserError(f"--sensor: expected HEIGHTxWIDTH such as 260x346, got {text!r}") from None
    if h <= 0 or w <= 0 or h > 32767 or w > 32767:
        raise UserError(f"--sensor: sides must be 1..32767, got {text!r}")
    return h, w


@numba.njit(cache=True, nogil=True)
def _esim_interval(l0, l1, ref, last_t, c_pos, c_neg, t0_us, t1_us, refractory_us, width,
                   out_t, out_x, out_y, out_p, start, n):
    """Emit the events of one frame interval ``[t0, t1)`` pixel by pixel (unsorted in time).

    Starts at pixel ``start`` with ``n`` events already in the output; ``ref`` and ``last_t`` are
    updated in place. Returns ``(next_pixel, n)``: next_pixel < number of pixels means the output
    was too small for that pixel's events (nothing of it was written) and the call must be resumed
    from there with a larger buffer.
    """
    dt = t1_us - t0_us
    cap = out_t.shape[0]
    for i in range(start, l1.shape[0]):
        a = l0[i]
        b = l1[i]
        r = ref[i]
        d = b - a
        if b - r >= c_pos[i]:
            c = c_pos[i]
            pol = 1
        elif r - b >= c_neg[i]:
            c = -c_neg[i]
            pol = 0
        else:
            continue
        if n + int(abs(b - r) / abs(c)) > cap:
            return i, n
        lt = last_t[i]
        while (pol == 1 and b - r >= c) or (pol == 0 and b - r <= c):
            r += c
            if d != 0.0:
                frac = (r - a) / d
            else:
                frac = 1.0
            if frac < 0.0:
                frac = 0.0
            elif frac > 1.0:
                frac = 1.0
            t = t0_us + np.int64(frac * dt)
            if t >= t1_us:
                t = t1_us - 1
            if t - lt >= refractory_us:
                out_t[n] = t
                out_x[n] = i % width
                out_y[n] = i // width
                out_p[n] = pol
                n += 1
                lt = t
        ref[i] = r
        last_t[i] = lt
    return l1.shape[0], n


def draw_thresholds(cfg: SensorConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel ON and OFF thresholds ~ N(nominal, c_sigma), clipped below at ``c_min``."""
    n = cfg.height * cfg.width
    c_pos = rng.normal(cfg.c_pos, cfg.c_sigma, n) if cfg.c_sigma > 0 else np.full(n, cfg.c_pos)
    c_neg = rng.normal(cfg.c_neg, cfg.c_sigma, n) if cfg.c_sigma > 0 else np.full(n, cfg.c_neg)
    return np.maximum(c_pos, cfg.c_min), np.maximum(c_neg, cfg.c_min)


class EventSimulator:
    """Turns a stream of intensity frames into events, one interval at a time.

    Frames are float arrays ``(height, width)`` of linear intensity in [0, 1] with strictly
    increasing integer timestamps in microseconds. The first frame only sets the reference.
    Deterministic for a given ``rng`` state.
    """

    def __init__(self, cfg: SensorConfig, rng: np.random.Generator):
        self.cfg = cfg
        self.rng = rng
        self.c_pos, self.c_neg = draw_thresholds(cfg, rng)
        self.noise = NoiseModel.create(cfg.height, cfg.width, cfg.noise_rate_hz, cfg.n_hot_pixels,
                                       cfg.hot_rate_hz, rng)
        n = cfg.height * cfg.width
        self._ref = np.zeros(n, dtype=np.float64)
        self._last_t = np.full(n, np.iinfo(np.int64).min // 2, dtype=np.int64)
        self._prev_log: np.ndarray | None = None
        self._prev_t: int | None = None
        self._cap = 1 << 16
        self._buf = [np.empty(self._cap, np.int64), np.empty(self._cap, np.int16),
                     np.empty(self._cap, np.int16), np.empty(self._cap, np.int8)]

    @property
    def last_time_us(self) -> int | None:
        """Timestamp of the last frame fed (None before the first)."""
        return self._prev_t

    def _grow(self, n_keep: int) -> None:
        """Double the output buffer, keeping its first ``n_keep`` events."""
        self._cap *= 2
        new = [np.empty(self._cap, b.dtype) for b in self._buf]
        for a, b in zip(new, self._buf, strict=True):
            a[:n_keep] = b[:n_keep]
        self._buf = new

    def log_intensity(self, frame: np.ndarray) -> np.ndarray:
        """Flat float32 log(I + eps) of a frame (OpenCV's SIMD log: ~10x numpy's float64 log)."""
        frame = np.asarray(frame)
        if frame.shape != (self.cfg.height, self.cfg.width):
            raise UserError(f"frame has shape {frame.shape}, expected the sensor size "
                            f"{(self.cfg.height, self.cfg.width)}")
        return cv2.log(frame.astype(np.float32) + np.float32(self.cfg.log_eps)).ravel()

    def feed(self, frame: np.ndarray, t_us: int) -> np.ndarray:
        """Add the frame taken at ``t_us``; return the events of ``[previous t, t_us)``, sorted by t."""
        t_us = int(t_us)
        log_i = self.log_intensity(frame)
        if self._prev_log is None:
            self._ref[:] = log_i
            self._prev_log, self._prev_t = log_i, t_us
            return empty_events(0)
        if t_us <= self._prev_t:
            raise UserError(f"frame timestamps must increase: got {t_us} us after {self._prev_t} us")
        n_pix = log_i.shape[0]
        start, n = 0, 0
        while True:
            bt, bx, by, bp = self._buf
            start, n = _esim_interval(self._prev_log, log_i, self._ref, self._last_t, self.c_pos, self.c_neg,
                                      np.int64(self._prev_t), np.int64(t_us), np.int64(self.cfg.refractory_us),
                                      self.cfg.width, bt, bx, by, bp, start, n)
            if start >= n_pix:
                break
            self._grow(n)
        noise = self.noise.sample(self._prev_t, t_us, self.rng)
        ev = np.empty(n + len(noise), dtype=EVENT_DTYPE)
        ev["t"][:n] = bt[:n]
        ev["x"][:n] = bx[:n]
        ev["y"][:n] = by[:n]
        ev["p"][:n] = bp[:n]
        ev[n:] = noise
        ev = ev[np.argsort(ev["t"], kind="stable")]
        self._prev_log, self._prev_t = log_i, t_us
        return ev
