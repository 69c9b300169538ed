"""Sensor noise that does not depend on the scene: background activity and hot pixels.

Background activity (shot / leak noise in real DVS pixels) is modelled as an independent Poisson
process per pixel with rate ``noise_rate_hz`` and random polarity. Hot pixels are a few fixed
pixels that fire at ``hot_rate_hz`` with a fixed polarity each. Both are added after the scene's
events and are not subject to the refractory period (their rates are far below 1/refractory).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evtrack.io.events import EVENT_DTYPE


@dataclass(frozen=True)
class NoiseModel:
    height: int
    width: int
    rate_hz: float
    hot_index: np.ndarray  # flat pixel indices of the hot pixels
    hot_polarity: np.ndarray  # 0/1 per hot pixel
    hot_rate_hz: float

    @classmethod
    def create(cls, height: int, width: int, rate_hz: float, n_hot_pixels: int, hot_rate_hz: float,
               rng: np.random.Generator) -> NoiseModel:
        """Background activity at ``rate_hz`` per pixel plus ``n_hot_pixels`` random hot pixels (drawn
        from ``rng``)."""
        n_pix = height * width
        hot = rng.choice(n_pix, size=n_hot_pixels, replace=False) if n_hot_pixels else np.zeros(0, int)
        pol = rng.integers(0, 2, size=len(hot))
        return cls(height, width, rate_hz, hot.astype(np.int64), pol.astype(np.int8), hot_rate_hz)

    def sample(self, t0_us: int, t1_us: int, rng: np.random.Generator) -> np.ndarray:
        """Noise events in ``[t0_us, t1_us)`` (unsorted)."""
        dt_s = (t1_us - t0_us) * 1e-6
        n_pix = self.height * self.width
        n_ba = rng.poisson(self.rate_hz * n_pix * dt_s) if self.rate_hz > 0 else 0
        n_hot = rng.poisson(self.hot_rate_hz * dt_s, size=len(self.hot_index)) if len(self.hot_index) else []
        n_hot_total = int(np.sum(n_hot))
        ev = np.empty(n_ba + n_hot_total, dtype=EVENT_DTYPE)
        ev["t"] = rng.integers(t0_us, t1_us, size=len(ev))
        idx = np.empty(len(ev), dtype=np.int64)
        pol = np.empty(len(ev), dtype=np.int8)
        idx[:n_ba] = rng.integers(0, n_pix, size=n_ba)
        pol[:n_ba] = rng.integers(0, 2, size=n_ba)
        if n_hot_total:
            idx[n_ba:] = np.repeat(self.hot_index, n_hot)
            pol[n_ba:] = np.repeat(self.hot_polarity, n_hot)
        ev["x"] = idx % self.width
        ev["y"] = idx // self.width
        ev["p"] = pol
        return ev
