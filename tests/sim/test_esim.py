"""The event-generation kernel: polarity, timing, noise rates, refractory period, thresholds."""

from __future__ import annotations

import numpy as np
import pytest

from evtrack.errors import UserError
from evtrack.sim.esim import EventSimulator, SensorConfig, draw_thresholds, parse_sensor

QUIET = dict(c_sigma=0.0, noise_rate_hz=0.0, n_hot_pixels=0, refractory_us=0)


def edge_frame(h: int, w: int, edge_x: float, left: float, right: float) -> np.ndarray:
    """Vertical edge at continuous x = edge_x: pixel coverage-weighted mix of left/right levels."""
    cols = np.arange(w) + 0.0
    cover_left = np.clip(edge_x - cols, 0.0, 1.0)  # fraction of pixel [c, c+1) left of the edge
    row = left * cover_left + right * (1 - cover_left)
    return np.tile(row.astype(np.float32), (h, 1))


def run_frames(sim: EventSimulator, frames, times_us) -> np.ndarray:
    out = [sim.feed(f, t) for f, t in zip(frames, times_us, strict=True)]
    return np.concatenate(out)


@pytest.mark.parametrize("direction", [+1, -1])
def test_moving_edge_polarity_place_and_time(direction):
    h, w = 8, 60
    speed = 200.0  # px/s
    fps = 1000
    cfg = SensorConfig(height=h, width=w, **QUIET)
    sim = EventSimulator(cfg, np.random.default_rng(0))
    x0 = 10.0 if direction > 0 else 50.0
    n = 180
    times = [int(i * 1e6 / fps) for i in range(n)]
    edges = [x0 + direction * speed * t * 1e-6 for t in times]
    # bright on the left: an edge moving right brightens pixels (ON), moving left darkens them (OFF)
    ev = run_frames(sim, [edge_frame(h, w, e, 0.9, 0.1) for e in edges], times)
    assert len(ev) > 0
    assert np.all(ev["p"] == (1 if direction > 0 else 0))
    assert np.all(np.diff(ev["t"]) >= 0)
    lo, hi = sorted((edges[0], edges[-1]))
    assert ev["x"].min() >= int(lo) and ev["x"].max() <= int(hi)
    # each swept column fires, in every row, while the edge is over it
    for x in range(int(lo) + 1, int(hi) - 1):
        sel = ev[ev["x"] == x]
        assert set(sel["y"].tolist()) == set(range(h)), f"column {x}"
        t_cross_us = ((x + 0.5) - x0) / (direction * speed) * 1e6
        # the pixel changes while the edge covers [x, x+1): 1/speed = 5 ms, plus one frame
        assert np.all(np.abs(sel["t"] - t_cross_us) <= 0.5e6 / speed + 1e6 / fps), f"column {x}"


def test_event_count_matches_log_change_exactly():
    cfg = SensorConfig(height=4, width=5, c_pos=0.2, c_neg=0.35, **QUIET)
    sim = EventSimulator(cfg, np.random.default_rng(0))
    lo, hi = 0.1, 0.8
    ev = run_frames(sim, [np.full((4, 5), lo), np.full((4, 5), hi)], [0, 1000])
    up = np.log(hi + cfg.log_eps) - np.log(lo + cfg.log_eps)
    assert len(ev) == 20 * int(up / 0.2)
    assert np.all(ev["p"] == 1)
    ev = sim.feed(np.full((4, 5), lo), 2000)
    # going back down: reference is (lo + k*C) so OFF crossings = floor((ref - L_lo) / 0.35)
    ref_drop = int(up / 0.2) * 0.2
    assert len(ev) == 20 * int(ref_drop / 0.35)
    assert np.all(ev["p"] == 0)
    # timestamps are interpolated inside the interval, never at its end
    assert ev["t"].min() >= 1000 and ev["t"].max() < 2000
    assert len(np.unique(ev["t"])) > 1


def test_output_buffer_grows_without_losing_events():
    h, w = 260, 346
    cfg = SensorConfig(height=h, width=w, **QUIET)
    sim = EventSimulator(cfg, np.random.default_rng(0))
    sim.feed(np.full((h, w), 0.05), 0)
    ev = sim.feed(np.full((h, w), 0.95), 1000)  # ~ 10 events per pixel: far over the 65536 buffer
    per_pixel = int((np.log(0.95 + cfg.log_eps) - np.log(0.05 + cfg.log_eps)) / cfg.c_pos)
    assert len(ev) == h * w * per_pixel
    counts = np.bincount(ev["y"].astype(int) * w + ev["x"], minlength=h * w)
    assert np.all(counts == per_pixel)


def test_static_scene_gives_only_noise_at_the_configured_rate():
    h, w = 100, 120
    rate, duration_s = 5.0, 2.0
    cfg = SensorConfig(height=h, width=w, c_sigma=0.0, noise_rate_hz=rate, n_hot_pixels=0)
    sim = EventSimulator(cfg, np.random.default_rng(1))
    frame = np.random.default_rng(2).uniform(0.1, 0.9, (h, w)).astype(np.float32)
    ev = run_frames(sim, [frame] * 201, [i * 10_000 for i in range(201)])
    expected = rate * h * w * duration_s
    assert abs(len(ev) - expected) < 0.03 * expected  # Poisson: std is 0.3 % of the mean
    assert 0.45 < ev["p"].mean() < 0.55
    assert ev["t"].min() >= 0 and ev["t"].max() < 2_000_000
    # independent Poisson pixels: per-pixel counts have variance == mean (no hot spots, no gaps)
    counts = np.bincount(ev["y"].astype(int) * w + ev["x"], minlength=h * w)
    assert 0.9 < counts.var() / counts.mean() < 1.1


def test_hot_pixels_fire_at_their_rate():
    h, w = 50, 60
    cfg = SensorConfig(height=h, width=w, c_sigma=0.0, noise_rate_hz=0.0, n_hot_pixels=3, hot_rate_hz=200.0)
    sim = EventSimulator(cfg, np.random.default_rng(3))
    frame = np.full((h, w), 0.5, np.float32)
    ev = run_frames(sim, [frame] * 101, [i * 10_000 for i in range(101)])
    pix, counts = np.unique(ev["y"].astype(int) * w + ev["x"], return_counts=True)
    assert len(pix) == 3
    assert np.all(np.abs(counts - 200) < 5 * np.sqrt(200))
    for pi in pix:  # one polarity per hot pixel
        assert len(np.unique(ev["p"][(ev["y"].astype(int) * w + ev["x"]) == pi])) == 1


def test_refractory_period_is_respected():
    h, w = 20, 30
    refr = 300
    cfg = SensorConfig(height=h, width=w, c_sigma=0.02, noise_rate_hz=0.0, n_hot_pixels=0, refractory_us=refr)
    sim = EventSimulator(cfg, np.random.default_rng(4))
    rng = np.random.default_rng(5)
    frames = [rng.uniform(0.02, 1.0, (h, w)).astype(np.float32) for _ in range(50)]
    ev = run_frames(sim, frames, [i * 1000 for i in range(50)])
    order = np.lexsort((ev["t"], ev["y"].astype(int) * w + ev["x"]))
    key = (ev["y"].astype(int) * w + ev["x"])[order]
    t = ev["t"][order]
    same = key[1:] == key[:-1]
    assert same.sum() > 100  # many pixels fired repeatedly, so the check below means something
    assert np.all(np.diff(t)[same] >= refr)
    # and without the refractory period the same input makes more events, some closer than refr
    cfg0 = SensorConfig(height=h, width=w, c_sigma=0.02, noise_rate_hz=0.0, n_hot_pixels=0, refractory_us=0)
    ev0 = run_frames(EventSimulator(cfg0, np.random.default_rng(4)), frames, [i * 1000 for i in range(50)])
    assert len(ev0) > len(ev)


def test_threshold_spread_statistics():
    cfg = SensorConfig(c_pos=0.3, c_neg=0.2, c_sigma=0.04)
    c_pos, c_neg = draw_thresholds(cfg, np.random.default_rng(0))
    assert c_pos.shape == (260 * 346,)
    assert abs(c_pos.mean() - 0.3) < 0.001 and abs(c_neg.mean() - 0.2) < 0.001
    assert abs(c_pos.std() - 0.04) < 0.002 and abs(c_neg.std() - 0.04) < 0.002
    assert np.corrcoef(c_pos, c_neg)[0, 1] < 0.02  # drawn independently
    wide = SensorConfig(c_pos=0.1, c_neg=0.1, c_sigma=0.2, c_min=0.05)
    lo_pos, lo_neg = draw_thresholds(wide, np.random.default_rng(0))
    assert lo_pos.min() == pytest.approx(0.05) and lo_neg.min() == pytest.approx(0.05)


def test_same_seed_same_events_different_seed_different():
    h, w = 30, 40
    cfg = SensorConfig(height=h, width=w)
    rng = np.random.default_rng(9)
    frames = [rng.uniform(0.1, 0.9, (h, w)).astype(np.float32) for _ in range(5)]
    times = [0, 1000, 2000, 3000, 4000]
    a = run_frames(EventSimulator(cfg, np.random.default_rng(1)), frames, times)
    b = run_frames(EventSimulator(cfg, np.random.default_rng(1)), frames, times)
    c = run_frames(EventSimulator(cfg, np.random.default_rng(2)), frames, times)
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()


def test_bad_input_is_rejected_clearly():
    sim = EventSimulator(SensorConfig(height=10, width=12), np.random.default_rng(0))
    with pytest.raises(UserError, match=r"shape \(12, 10\).*\(10, 12\)"):
        sim.feed(np.zeros((12, 10)), 0)
    sim.feed(np.zeros((10, 12)), 100)
    with pytest.raises(UserError, match="must increase"):
        sim.feed(np.zeros((10, 12)), 100)
    with pytest.raises(UserError, match="thresholds"):
        SensorConfig(c_pos=0)
    assert parse_sensor("260x346") == (260, 346)
    with pytest.raises(UserError, match="HEIGHTxWIDTH"):
        parse_sensor("346")


def test_kernel_matches_the_numpy_reference():
    from evtrack.sim.reference import esim_interval_numpy

    h, w = 40, 50
    cfg = SensorConfig(height=h, width=w, c_sigma=0.03, noise_rate_hz=0.0, n_hot_pixels=0, refractory_us=0)
    sim = EventSimulator(cfg, np.random.default_rng(0))
    rng = np.random.default_rng(1)
    frames = [rng.uniform(0.02, 1.0, (h, w)).astype(np.float32) for _ in range(6)]
    times = [i * 1000 for i in range(6)]
    got = run_frames(sim, frames, times)
    ref = sim.log_intensity(frames[0]).astype(np.float64)
    want = []
    for i in range(1, 6):
        l0, l1 = sim.log_intensity(frames[i - 1]), sim.log_intensity(frames[i])
        want.append(esim_interval_numpy(l0, l1, ref, sim.c_pos, sim.c_neg, times[i - 1], times[i], w))
    want = np.concatenate(want)
    assert abs(len(got) - len(want)) <= len(want) * 1e-3  # only float round-off at exact thresholds
    key = lambda e: np.sort(e[["y", "x", "t", "p"]])  # noqa: E731
    a, b = key(got), key(want)
    if len(a) == len(b):
        assert np.mean(a == b) > 0.995
    assert abs(got["p"].mean() - want["p"].mean()) < 0.01
