"""Scenes: exact boxes from known trajectories, drawing where the box says, visibility, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from evtrack.sim.scenes import Scene, SceneConfig, Sprite, random_scene
from evtrack.sim.textures import SHAPE_KINDS, TEXTURE_KINDS, make_shape, make_texture, rasterize
from evtrack.sim.trajectories import Trajectory, random_trajectory

H, W = 120, 160


def flat_sprite(shape_kind: str, w: float, h: float, traj: Trajectory, level: float = 1.0) -> Sprite:
    poly = make_shape(np.random.default_rng(0), shape_kind, w, h)
    ph, pw = int(np.ceil(h)) + 6, int(np.ceil(w)) + 6
    centre = (pw / 2, ph / 2)
    return Sprite(np.full((ph, pw), level, np.float32), rasterize(poly, (ph, pw), centre), poly, centre, traj)


def flat_scene(target: Sprite, occluders=()) -> Scene:
    cam = Trajectory.static(1.0, (0.0, 0.0))
    return Scene((H, W), 1.0, np.full((H + 40, W + 40), 0.2, np.float32), cam, target, [], list(occluders))


def test_box_of_a_known_trajectory_is_exact():
    traj = Trajectory.linear(1.0, (40.0, 50.0), (30.0, -10.0), scale=1.5)
    sp = flat_sprite("rectangle", 20.0, 12.0, traj)
    for t in (0.0, 0.25, 0.5, 0.9):
        cx, cy = 40.0 + 30.0 * t, 50.0 - 10.0 * t
        np.testing.assert_allclose(sp.box(t), [cx - 15.0, cy - 9.0, 30.0, 18.0], atol=1e-9)


def test_rotated_box_is_the_extent_of_the_rotated_outline():
    traj = Trajectory.linear(1.0, (80.0, 60.0), (0.0, 0.0), angle_deg=45.0)
    sp = flat_sprite("rectangle", 20.0, 10.0, traj)
    half = (20.0 + 10.0) / 2 / np.sqrt(2)  # half extent of a 20x10 rectangle turned by 45 degrees
    np.testing.assert_allclose(sp.box(0.3), [80 - half, 60 - half, 2 * half, 2 * half], atol=1e-9)


@pytest.mark.parametrize("kind", SHAPE_KINDS)
def test_drawn_target_fills_its_box(kind):
    traj = Trajectory.linear(1.0, (60.3, 55.7), (20.0, 5.0), scale=1.2, angle_deg=10.0)
    sp = flat_sprite(kind, 30.0, 22.0, traj)
    scene = flat_scene(sp)
    for t in (0.1, 0.6):
        img = scene.render(t)
        x, y, w, h = scene.target_box(t)
        # pixels with visible coverage reach the box's four sides and do not go past them (the
        # anti-aliased mask plus bilinear resampling blur the outline by up to ~1.5 px)
        ys, xs = np.nonzero(img > 0.2 + 0.8 * 0.1)
        assert abs(xs.min() - x) <= 1.5 and abs(xs.max() + 1 - (x + w)) <= 1.5
        assert abs(ys.min() - y) <= 1.5 and abs(ys.max() + 1 - (y + h)) <= 1.5
        # and the well-covered pixels are inside it
        ys, xs = np.nonzero(img > 0.2 + 0.8 * 0.5)
        assert xs.min() >= x - 0.5 and xs.max() + 1 <= x + w + 0.5
        assert scene.target_visibility(t) == pytest.approx(1.0, abs=0.02)


def test_visibility_falls_to_zero_under_a_full_occluder():
    target = flat_sprite("ellipse", 20.0, 20.0, Trajectory.static(1.0, (80.0, 60.0)))
    # a wide bar crosses the target: centred on it at t = 0.5 s
    bar = flat_sprite("rectangle", 40.0, 200.0, Trajectory.linear(1.0, (-20.0, 60.0), (200.0, 0.0)), level=0.6)
    scene = flat_scene(target, [bar])
    assert scene.target_visibility(0.0) == pytest.approx(1.0, abs=0.02)
    assert scene.target_visibility(0.5) == pytest.approx(0.0, abs=1e-6)
    partial = scene.target_visibility(0.4)  # bar's right edge at x = 80 (the target's centre)
    assert 0.4 < partial < 0.6
    img = scene.render(0.5)
    assert np.allclose(img[50:70, 70:90], 0.6, atol=1e-5)  # occluder drawn over the target


def test_target_leaving_the_sensor_is_not_visible():
    target = flat_sprite("rectangle", 20.0, 20.0, Trajectory.static(1.0, (-30.0, 60.0)))
    assert flat_scene(target).target_visibility(0.5) == 0.0


def test_random_trajectory_stays_in_view_and_is_smooth():
    rng = np.random.default_rng(3)
    traj = random_trajectory(rng, 4.0, (H, W), 10.0, base_speed_px_s=80.0)
    assert traj.cx.min() > -10 and traj.cx.max() < W + 10
    assert traj.cy.min() > -10 and traj.cy.max() < H + 10
    step = np.hypot(np.diff(traj.cx), np.diff(traj.cy))
    assert step.max() < 80.0 * 4.0 * 1.3 * 1e-3 + 1e-9  # no jumps beyond the fastest segment speed


def test_random_scene_is_deterministic_and_varied():
    cfg = SceneConfig(sensor_size=(H, W), duration_s=(1.0, 1.0))
    a = random_scene(np.random.default_rng(7), cfg)
    b = random_scene(np.random.default_rng(7), cfg)
    c = random_scene(np.random.default_rng(8), cfg)
    assert np.array_equal(a.render(0.4), b.render(0.4))
    assert np.array_equal(a.target_box(0.4), b.target_box(0.4))
    assert not np.array_equal(a.render(0.4), c.render(0.4))
    img = a.render(0.4)
    assert img.shape == (H, W) and img.dtype == np.float32 and 0.0 <= img.min() and img.max() <= 1.0


@pytest.mark.parametrize("kind", TEXTURE_KINDS)
def test_textures_span_a_range(kind):
    tex = make_texture(np.random.default_rng(0), kind, (40, 50))
    assert tex.shape == (40, 50) and tex.min() >= 0 and tex.max() <= 1
    assert tex.max() - tex.min() > 0.3


def test_shape_extent_is_exact():
    for kind in SHAPE_KINDS:
        poly = make_shape(np.random.default_rng(1), kind, 33.0, 17.0)
        np.testing.assert_allclose(poly.max(0) - poly.min(0), [33.0, 17.0])
        np.testing.assert_allclose((poly.max(0) + poly.min(0)) / 2, [0.0, 0.0], atol=1e-12)


def test_random_scenes_cover_the_required_conditions():
    """Across seeds: look-alike distractors, full and partial occlusions with absent flags, scale
    change, low-contrast and high-speed segments and camera ego-motion all occur."""
    from evtrack.sim.dataset import frame_times_us, ground_truth

    cfg = SceneConfig(sensor_size=(H, W), duration_s=(1.5, 1.5), target_size_px=(14.0, 30.0))
    scenes = [random_scene(np.random.default_rng([11, k]), cfg) for k in range(24)]
    attrs = [s.attributes for s in scenes]
    assert sum(a["distractors"] > 0 for a in attrs) >= 6
    assert {a.get("occlusion") for a in attrs} >= {"full", "partial"}
    assert sum(bool(a.get("low_contrast")) for a in attrs) >= 3
    assert sum(a["camera_speed_px_s"] > 5 for a in attrs) >= 12
    assert sum(a["scale_range"][1] / a["scale_range"][0] > 1.2 for a in attrs) >= 12
    assert sum(a["max_speed_px_s"] > 2 * a["speed_px_s"] for a in attrs) >= 6  # high-speed segments
    # distractors look like the target: same shape outline family and size within 0.8-1.25x (+ aspect)
    s = next(s for s in scenes if s.distractors)
    for d in s.distractors:
        ratio = d.mask.sum() / s.target.mask.sum()
        assert 0.4 < ratio < 2.0
    # the ego-motion really moves the background
    cam = next(s for s in scenes if s.attributes["camera_speed_px_s"] > 20)
    assert not np.array_equal(cam._background(0.2), cam._background(0.6))
    # a full occlusion flags the target absent around the occlusion time, and only there
    ts = frame_times_us(1.5, 25.0)
    full = [s for s in scenes if s.attributes.get("occlusion") == "full"]
    flagged = 0
    for sc in full:
        _, absent = ground_truth(sc, ts, 0.25)
        t_occ = sc.attributes["occlusion_t_s"]
        near = np.abs(ts * 1e-6 - t_occ) < 0.02 + 0.5 / 25
        flagged += bool(absent[near].any())
        vis = [sc.target_visibility(t * 1e-6) for t in ts]
        assert np.all(absent == ((np.asarray(vis) < 0.25) | _too_small(sc, ts)))
    assert len(full) >= 3 and flagged >= len(full) - 1  # a full occluder hides the target at t_occ


def _too_small(scene: Scene, ts: np.ndarray) -> np.ndarray:
    out = []
    for t in ts:
        x, y, w, h = scene.target_box(t * 1e-6)
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
        out.append(x1 - x0 < 2 or y1 - y0 < 2)
    return np.asarray(out)


def test_log_uniform_target_sizes_spread_like_real_footage():
    from evtrack.sim.scenes import draw_target_size

    rng = np.random.default_rng(0)
    lin = SceneConfig(target_size_px=(5.0, 64.0))
    log = SceneConfig(target_size_px=(5.0, 64.0), target_size_log=True)
    a = np.array([draw_target_size(rng, lin) for _ in range(4000)])
    b = np.array([draw_target_size(rng, log) for _ in range(4000)])
    assert 5.0 <= b.min() and b.max() <= 64.0
    # log-uniform: the median is the geometric mean (17.9 px), a quarter of the draws are below 9.5 px
    assert abs(np.median(b) - np.sqrt(5.0 * 64.0)) < 1.0
    assert abs(np.mean(b < 9.5) - 0.25) < 0.03
    assert np.median(a) > 30.0 and np.mean(a < 9.5) < 0.1
