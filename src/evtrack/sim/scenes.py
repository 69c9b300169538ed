"""Procedural tracking scenes: a textured target, look-alike distractors, occluders, ego-motion.

A :class:`Scene` renders a grey-level intensity frame at any time and answers the exact ground
truth (target box, visible fraction) at any time, from the same pose tracks the renderer uses.
:func:`random_scene` draws a varied scene from a seed.

Draw order (bottom to top): background (moved by the camera), distractors, target, occluders.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from evtrack.sim.textures import (
    SHAPE_KINDS,
    TEXTURE_KINDS,
    make_background,
    make_shape,
    make_texture,
    rasterize,
)
from evtrack.sim.trajectories import SAMPLE_DT_S, Trajectory, camera_trajectory, random_trajectory


@dataclass(frozen=True)
class Sprite:
    """A textured shape following a trajectory.

    ``texture`` and ``mask`` are patches; the shape's centre sits at continuous patch coordinate
    ``centre``; ``polygon`` is the outline relative to that centre at scale 1.
    """

    texture: np.ndarray  # (ph, pw) float32 in [0, 1]
    mask: np.ndarray  # (ph, pw) float32 coverage in [0, 1]
    polygon: np.ndarray  # (K, 2) vertices relative to the centre, scale 1
    centre: tuple[float, float]
    traj: Trajectory
    gain_t_s: np.ndarray | None = None  # contrast gain over time (None = 1)
    gain: np.ndarray | None = None

    def pose(self, t_s: float) -> tuple[float, float, float, float]:
        return self.traj.at(t_s)

    def contrast_gain(self, t_s: float) -> float:
        if self.gain is None:
            return 1.0
        return float(np.interp(t_s, self.gain_t_s, self.gain))

    def _linear(self, t_s: float) -> tuple[np.ndarray, np.ndarray]:
        cx, cy, s, ang = self.pose(t_s)
        a = np.deg2rad(ang)
        lin = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        return lin, np.array([cx, cy])

    def box(self, t_s: float) -> np.ndarray:
        """Exact axis-aligned box ``x, y, w, h`` of the transformed outline (sensor pixels)."""
        return self._box(*self._linear(t_s))

    def _box(self, lin: np.ndarray, c: np.ndarray) -> np.ndarray:
        pts = self.polygon @ lin.T + c
        lo, hi = pts.min(0), pts.max(0)
        return np.array([lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]])

    def warp(self, t_s: float, sensor_size: tuple[int, int]) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
        """Premultiplied texture and coverage warped into the sensor, restricted to a ROI.

        Returns ``((x0, y0, x1, y1), patch[..., 2])`` or None when the sprite is out of view.
        """
        h, w = sensor_size
        lin, c = self._linear(t_s)
        bx, by, bw, bh = self._box(lin, c)
        x0, y0 = max(int(np.floor(bx)) - 2, 0), max(int(np.floor(by)) - 2, 0)
        x1, y1 = min(int(np.ceil(bx + bw)) + 2, w), min(int(np.ceil(by + bh)) + 2, h)
        if x1 <= x0 or y1 <= y0:
            return None
        # continuous coords: X = c + lin (U - centre); cv2 coords are continuous - 0.5
        off = c - lin @ np.asarray(self.centre) + lin @ np.array([0.5, 0.5]) - 0.5 - np.array([x0, y0])
        m = np.hstack([lin, off[:, None]]).astype(np.float64)
        src = np.dstack([self.texture * self.mask, self.mask])
        out = cv2.warpAffine(src, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return (x0, y0, x1, y1), out

    def area(self, t_s: float) -> float:
        """Area of the shape at the scale of time ``t_s`` (pixels)."""
        s = self.pose(t_s)[2]
        return float(self.mask.sum()) * s * s


def make_sprite(rng: np.random.Generator, shape_kind: str, texture_kind: str, width: float, height: float,
                traj: Trajectory, mean: float, contrast: float, gain_t_s=None, gain=None) -> Sprite:
    poly = make_shape(rng, shape_kind, width, height)
    pad = 3
    pw, ph = int(np.ceil(width)) + 2 * pad, int(np.ceil(height)) + 2 * pad
    centre = (pw / 2.0, ph / 2.0)
    mask = rasterize(poly, (ph, pw), centre)
    tex = make_texture(rng, texture_kind, (ph, pw))
    tex = np.clip(mean + contrast * (tex - 0.5), 0.0, 1.0).astype(np.float32)
    return Sprite(tex, mask, poly, centre, traj, gain_t_s, gain)


@dataclass
class Scene:
    """Everything needed to render frames and ground truth of one sequence."""

    sensor_size: tuple[int, int]
    duration_s: float
    background: np.ndarray  # larger than the sensor; the camera looks at its middle
    camera: Trajectory  # background offset (cx, cy) in px and zoom (scale)
    target: Sprite
    distractors: list[Sprite] = field(default_factory=list)
    occluders: list[Sprite] = field(default_factory=list)
    attributes: dict = field(default_factory=dict)

    def _background(self, t_s: float) -> np.ndarray:
        h, w = self.sensor_size
        bh, bw = self.background.shape
        ox, oy, zoom, _ = self.camera.at(t_s)
        # sensor continuous X = (U - (bg centre + offset)) * zoom + sensor centre
        cu = np.array([bw / 2 + ox, bh / 2 + oy])
        lin = np.eye(2) * zoom
        off = np.array([w / 2, h / 2]) - lin @ cu + lin @ np.array([0.5, 0.5]) - 0.5
        m = np.hstack([lin, off[:, None]])
        return cv2.warpAffine(self.background, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)

    def render(self, t_s: float) -> np.ndarray:
        """The intensity frame (float32 ``(h, w)`` in [0, 1]) at time ``t_s``."""
        img = self._background(t_s)
        for sp in [*self.distractors, self.target, *self.occluders]:
            _composite(img, sp, t_s, self.sensor_size)
        return img

    def target_box(self, t_s: float) -> np.ndarray:
        return self.target.box(t_s)

    def target_visibility(self, t_s: float) -> float:
        """Fraction of the target's area that is in view and not covered by an occluder."""
        got = self.target.warp(t_s, self.sensor_size)
        if got is None:
            return 0.0
        (x0, y0, x1, y1), patch = got
        alpha = patch[..., 1].copy()
        for oc in self.occluders:
            o = oc.warp(t_s, self.sensor_size)
            if o is None:
                continue
            (a0, b0, a1, b1), op = o
            ix0, iy0, ix1, iy1 = max(x0, a0), max(y0, b0), min(x1, a1), min(y1, b1)
            if ix1 <= ix0 or iy1 <= iy0:
                continue
            alpha[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0] *= 1.0 - op[iy0 - b0:iy1 - b0, ix0 - a0:ix1 - a0, 1]
        return float(min(alpha.sum() / max(self.target.area(t_s), 1e-9), 1.0))


def _composite(img: np.ndarray, sp: Sprite, t_s: float, sensor_size: tuple[int, int]) -> None:
    got = sp.warp(t_s, sensor_size)
    if got is None:
        return
    (x0, y0, x1, y1), patch = got
    pre, alpha = patch[..., 0], patch[..., 1]
    g = sp.contrast_gain(t_s)
    if g != 1.0:
        # shrink the texture towards the local background level (a low-contrast segment)
        roi_bg = img[y0:y1, x0:x1]
        pre = roi_bg * alpha + g * (pre - roi_bg * alpha)
    img[y0:y1, x0:x1] = img[y0:y1, x0:x1] * (1.0 - alpha) + pre


@dataclass(frozen=True)
class SceneConfig:
    """Ranges the random scenes are drawn from."""

    sensor_size: tuple[int, int] = (260, 346)
    duration_s: tuple[float, float] = (2.0, 4.0)
    target_size_px: tuple[float, float] = (22.0, 70.0)  # side of the target at scale 1
    # draw that side log-uniformly instead of uniformly: as many targets of 5-10 px as of 32-64 px,
    # which is how sizes spread in real tracking footage (BENCHMARKS.md "Small targets")
    target_size_log: bool = False
    target_speed_px_s: tuple[float, float] = (30.0, 110.0)
    fast_factor: float = 4.0  # speed multiplier of high-speed segments
    camera_speed_px_s: tuple[float, float] = (0.0, 40.0)
    background_contrast: tuple[float, float] = (0.15, 0.5)
    target_contrast: tuple[float, float] = (0.5, 1.0)
    max_distractors: int = 3
    p_occlusion: float = 0.5
    p_low_contrast: float = 0.3
    # event-rate budget: the background's contrast is scaled so that it alone makes at most a rate
    # drawn from this range, then occluders/distractors are dimmed if the total exceeds max_rate
    background_rate_ev_s: tuple[float, float] = (20_000.0, 120_000.0)
    max_rate_ev_s: float = 300_000.0
    rate_threshold: float = 0.25  # the nominal contrast threshold the rate estimate assumes


def draw_target_size(rng: np.random.Generator, cfg: SceneConfig) -> float:
    """Side of the target at scale 1, from ``cfg.target_size_px`` (log-uniform if ``target_size_log``)."""
    lo, hi = cfg.target_size_px
    if cfg.target_size_log:
        return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    return float(rng.uniform(lo, hi))


def random_scene(rng: np.random.Generator, cfg: SceneConfig = SceneConfig()) -> Scene:
    """Draw one varied tracking scene."""
    h, w = cfg.sensor_size
    duration = float(rng.uniform(*cfg.duration_s))
    attrs: dict = {}
    pad = 160
    bg_contrast = float(rng.uniform(*cfg.background_contrast))
    background = make_background(rng, (h + 2 * pad, w + 2 * pad), bg_contrast)
    cam_speed, camera = random_camera(rng, cfg, duration, pad)
    attrs.update(background_contrast=round(bg_contrast, 3), camera_speed_px_s=round(cam_speed, 1))

    shape_kind = str(rng.choice(SHAPE_KINDS))
    tex_kind = str(rng.choice(TEXTURE_KINDS))
    size = draw_target_size(rng, cfg)
    aspect = float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
    tw, th = size * np.sqrt(aspect), size / np.sqrt(aspect)
    speed = float(rng.uniform(*cfg.target_speed_px_s))
    traj = random_trajectory(rng, duration, (h, w), max(tw, th) / 2, base_speed_px_s=speed,
                             fast_factor=cfg.fast_factor)
    gain_t, gain = low_contrast_gain(rng, cfg, traj, duration, depth=(0.6, 0.9))
    if gain is not None:
        attrs["low_contrast"] = True
    mean = float(rng.uniform(0.2, 0.8))
    contrast = float(rng.uniform(*cfg.target_contrast))
    target = make_sprite(rng, shape_kind, tex_kind, tw, th, traj, mean, contrast, gain_t, gain)
    attrs.update(shape=shape_kind, texture=tex_kind, size_px=round(size, 1), speed_px_s=round(speed, 1))

    distractors = []
    n_dis = int(rng.integers(0, cfg.max_distractors + 1))
    for _ in range(n_dis):
        ds = size * rng.uniform(0.8, 1.25)
        dtraj = random_trajectory(rng, duration, (h, w), ds / 2, base_speed_px_s=rng.uniform(*cfg.target_speed_px_s),
                                  fast_factor=cfg.fast_factor)
        # look-alikes: same shape and texture family, similar brightness
        distractors.append(make_sprite(rng, shape_kind, tex_kind, ds * np.sqrt(aspect), ds / np.sqrt(aspect), dtraj,
                                       float(np.clip(mean + rng.normal(0, 0.1), 0.05, 0.95)), contrast))
    attrs["distractors"] = n_dis

    occluders = []
    if rng.random() < cfg.p_occlusion:
        ow, oh, otraj = occluder_path(rng, traj, max(tw, th), duration, (h, w), attrs)
        occluders.append(make_sprite(rng, "rectangle", str(rng.choice(TEXTURE_KINDS)), ow, oh, otraj,
                                     float(rng.uniform(0.1, 0.9)), float(rng.uniform(0.3, 0.8))))
    return finish_scene(rng, cfg, (h, w), duration, background, camera, target, distractors, occluders, attrs)


def random_camera(rng: np.random.Generator, cfg: SceneConfig, duration: float, pad: int) -> tuple[float, Trajectory]:
    """The camera's speed and ego-motion, its offset kept inside a background padded by ``pad``."""
    cam_speed = float(rng.uniform(*cfg.camera_speed_px_s))
    camera = camera_trajectory(rng, duration, cam_speed, zoom_amplitude=0.03 * cam_speed / 40.0)
    return cam_speed, Trajectory(camera.t_s, np.clip(camera.cx, -pad + 20, pad - 20),
                                 np.clip(camera.cy, -pad + 20, pad - 20), camera.scale, camera.angle_deg)


def low_contrast_gain(rng: np.random.Generator, cfg: SceneConfig, traj: Trajectory, duration: float,
                      depth: tuple[float, float]) -> tuple[np.ndarray | None, np.ndarray | None]:
    """With probability ``p_low_contrast``, a Gaussian dip of the target's contrast (times, gain); else Nones."""
    if rng.random() >= cfg.p_low_contrast:
        return None, None
    centre = rng.uniform(0.2, 0.8) * duration
    width = rng.uniform(0.3, 0.8)
    d = rng.uniform(*depth)
    return traj.t_s, 1.0 - d * np.exp(-0.5 * ((traj.t_s - centre) / (width / 2)) ** 2)


def occluder_path(rng: np.random.Generator, traj: Trajectory, extent: float, duration: float,
                  sensor_size: tuple[int, int], attrs: dict) -> tuple[float, float, Trajectory]:
    """Width, height and path of a bar that sweeps across the target (``extent`` px at scale 1) at a random
    time, moving perpendicular to its long side: fully or partly covering it (recorded in ``attrs``)."""
    h, w = sensor_size
    t_occ = float(rng.uniform(0.25, 0.8) * duration)
    cx, cy, s, _ = traj.at(t_occ)
    full = bool(rng.random() < 0.5)
    target_extent = extent * s
    ow = target_extent * (rng.uniform(1.3, 2.0) if full else rng.uniform(0.4, 0.8))
    oh = max(h, w) * 1.2 if rng.random() < 0.3 else target_extent * rng.uniform(1.5, 3.0)
    ang = rng.uniform(0, 2 * np.pi)
    vel = np.array([np.cos(ang), np.sin(ang)]) * rng.uniform(80, 250)
    lateral = 0.0 if full else rng.uniform(-0.3, 0.3) * target_extent
    start = np.array([cx, cy]) - vel * t_occ + lateral * np.array([-np.sin(ang), np.cos(ang)])
    otraj = Trajectory.linear(duration, (float(start[0]), float(start[1])), (float(vel[0]), float(vel[1])),
                              angle_deg=float(np.rad2deg(ang)))
    attrs.update(occlusion="full" if full else "partial", occlusion_t_s=round(t_occ, 3))
    return ow, oh, otraj


def finish_scene(rng: np.random.Generator, cfg: SceneConfig, sensor_size: tuple[int, int], duration: float,
                 background: np.ndarray, camera: Trajectory, target: Sprite, distractors: list[Sprite],
                 occluders: list[Sprite], attrs: dict) -> Scene:
    """The scene with its motion summary in ``attrs``, kept inside a drawn event-rate budget."""
    traj = target.traj
    fast = float(np.max(np.hypot(np.diff(traj.cx), np.diff(traj.cy))) / SAMPLE_DT_S)
    attrs["max_speed_px_s"] = round(fast, 1)
    attrs["scale_range"] = [round(float(traj.scale.min()), 3), round(float(traj.scale.max()), 3)]
    scene = Scene(sensor_size, duration, background, camera, target, distractors, occluders, attrs)
    limit_event_rate(scene, float(rng.uniform(*cfg.background_rate_ev_s)), cfg.max_rate_ev_s, cfg.rate_threshold)
    return scene


def estimate_event_rate(scene: Scene, threshold: float, *, background_only: bool = False, n_probes: int = 12,
                        dt_s: float = 1e-3, log_eps: float = 0.02) -> float:
    """Expected events per second: mean over probe times of sum |d log I| / threshold / dt.

    Cheap (2 renders per probe); used to keep sequences inside an event-rate budget.
    """
    total = 0.0
    times = (np.arange(n_probes) + 0.5) / n_probes * (scene.duration_s - dt_s)
    for t in times:
        f0 = scene._background(t) if background_only else scene.render(t)
        f1 = scene._background(t + dt_s) if background_only else scene.render(t + dt_s)
        total += float(np.abs(np.log(f1 + log_eps) - np.log(f0 + log_eps)).sum()) / threshold / dt_s
    return total / n_probes


def _dim(sp: Sprite, k: float) -> Sprite:
    m = float((sp.texture * sp.mask).sum() / max(sp.mask.sum(), 1e-9))
    return replace(sp, texture=(m + k * (sp.texture - m)).astype(np.float32))


def limit_event_rate(scene: Scene, background_rate: float, max_rate: float, threshold: float) -> None:
    """Scale background (then occluder/distractor) contrast so the scene stays within the budget."""
    bg_rate = estimate_event_rate(scene, threshold, background_only=True)
    if bg_rate > background_rate:
        k = background_rate / bg_rate
        m = float(scene.background.mean())
        scene.background = (m + k * (scene.background - m)).astype(np.float32)
        scene.attributes["background_contrast"] = round(scene.attributes.get("background_contrast", 1.0) * k, 4)
    rate = estimate_event_rate(scene, threshold)
    for _ in range(3):
        if rate <= max_rate or not (scene.occluders or scene.distractors):
            break
        k = max(0.3, max_rate / rate)
        scene.occluders = [_dim(o, k) for o in scene.occluders]
        scene.distractors = [_dim(d, k) for d in scene.distractors]
        rate = estimate_event_rate(scene, threshold)
    scene.attributes["expected_rate_ev_s"] = int(rate)
