"""Scenes made of real footage: target crops cut from real frames, pasted over real backgrounds.

The procedural scenes (:mod:`evtrack.sim.scenes`) teach a tracker textured polygons on noise; on
real footage it then follows background clutter. Real tracking videos are few (the corpus in
``shared/data/real_rgb`` has 31 training videos), but each frame holds a real target appearance at
its box and real clutter around it. :func:`random_real_scene` recombines them with the procedural
machinery that is exact about ground truth: a real frame (of any training video) is the background,
moved by the camera trajectory; the target is the box crop of a random frame of a random video,
following a random trajectory with scale change, rotation and low-contrast segments; look-alike
distractors are crops of the same video at other frames (the same object class, the same
appearance) or of other videos; occluders are bars cut from real frames. So 31 videos give as many
scenes as there are seeds, and the box is exact because the renderer placed the target.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from evtrack.errors import UserError
from evtrack.sim.scenes import (
    Scene,
    SceneConfig,
    Sprite,
    draw_target_size,
    finish_scene,
    low_contrast_gain,
    occluder_path,
    random_camera,
)
from evtrack.sim.textures import rasterize
from evtrack.sim.trajectories import Trajectory, random_trajectory
from evtrack.sim.video import IMREAD_GREY, to_float

MIN_CROP_PX = 8.0  # source boxes smaller than this (either side) are not used as target appearances


@dataclass
class BankSequence:
    name: str
    frames: list[Path]
    boxes: np.ndarray  # (N, 4) image pixels
    usable: np.ndarray  # indices of frames whose box is present and at least MIN_CROP_PX a side


class ImageBank:
    """Real frames and target boxes of an RGB tracking dataset (any layout ``convert-dataset`` reads)."""

    def __init__(self, sequences: list[BankSequence], root: Path) -> None:
        if not sequences:
            raise UserError(f"{root}: no sequence with a target box of at least {MIN_CROP_PX:g} px; "
                            "expected an RGB tracking dataset (OTB, GOT-10k or LaSOT layout)")
        self.sequences, self.root = sequences, root

    @classmethod
    def load(cls, root: str | Path) -> ImageBank:
        from evtrack.sim.rgb_layouts import find_sequences, read_sequence

        root = Path(root)
        seqs = []
        for entries in find_sequences(root).values():
            for name, folder, layout in entries:
                s = read_sequence(folder, layout, name)
                ok = ~s.absent & (s.boxes[:, 2] >= MIN_CROP_PX) & (s.boxes[:, 3] >= MIN_CROP_PX)
                if ok.any():
                    seqs.append(BankSequence(name, s.frames, s.boxes, np.flatnonzero(ok)))
        return cls(seqs, root)

    @staticmethod
    def read(path: Path) -> np.ndarray:
        img = cv2.imread(str(path), IMREAD_GREY)
        if img is None:
            raise UserError(f"{path}: not an image OpenCV can read")
        return to_float(img)

    def appearance(self, rng: np.random.Generator, seq: int | None = None) -> tuple[int, np.ndarray, np.ndarray]:
        """``(sequence index, grey frame, box)`` of a random usable frame (of sequence ``seq`` if given)."""
        k = int(rng.integers(len(self.sequences))) if seq is None else seq
        s = self.sequences[k]
        i = int(rng.choice(s.usable))
        return k, self.read(s.frames[i]), s.boxes[i].copy()

    def background(self, rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
        """A random real frame scaled to cover ``shape`` (aspect kept, random crop, random mirror)."""
        s = self.sequences[int(rng.integers(len(self.sequences)))]
        img = self.read(s.frames[int(rng.integers(len(s.frames)))])
        h, w = shape
        ih, iw = img.shape
        scale = max(h / ih, w / iw) * float(rng.uniform(1.0, 1.3))
        img = cv2.resize(img, (max(w, int(np.ceil(iw * scale))), max(h, int(np.ceil(ih * scale)))),
                         interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        y0 = int(rng.integers(img.shape[0] - h + 1))
        x0 = int(rng.integers(img.shape[1] - w + 1))
        out = img[y0:y0 + h, x0:x0 + w]
        if rng.random() < 0.5:
            out = out[:, ::-1]
        return np.ascontiguousarray(np.clip(out, 0.02, 1.0), dtype=np.float32)


@functools.lru_cache(maxsize=4)
def load_bank(root: str) -> ImageBank:
    """One :class:`ImageBank` per root and process (scenes of a dataset share it)."""
    return ImageBank.load(root)


def image_sprite(frame: np.ndarray, box: np.ndarray, width: float, height: float, traj: Trajectory,
                 gain_t_s=None, gain=None) -> Sprite:
    """A rectangular sprite showing ``frame``'s ``box`` region at ``width`` x ``height`` (scale 1)."""
    pad = 3
    pw, ph = int(np.ceil(width)) + 2 * pad, int(np.ceil(height)) + 2 * pad
    centre = (pw / 2.0, ph / 2.0)
    bx, by, bw, bh = (float(v) for v in box)
    sx, sy = width / bw, height / bh
    # patch coordinate = (frame coordinate - box centre) * s + patch centre (pixel-centre convention)
    m = np.array([[sx, 0.0, centre[0] - 0.5 - sx * (bx + bw / 2 - 0.5)],
                  [0.0, sy, centre[1] - 0.5 - sy * (by + bh / 2 - 0.5)]])
    interp = cv2.INTER_AREA if min(sx, sy) < 1 else cv2.INTER_LINEAR
    tex = cv2.warpAffine(frame, m, (pw, ph), flags=interp, borderMode=cv2.BORDER_REFLECT)
    poly = np.array([[-width / 2, -height / 2], [width / 2, -height / 2], [width / 2, height / 2],
                     [-width / 2, height / 2]])
    mask = rasterize(poly, (ph, pw), centre)
    return Sprite(np.clip(tex, 0.0, 1.0).astype(np.float32), mask, poly, centre, traj, gain_t_s, gain)


def random_real_scene(rng: np.random.Generator, bank: ImageBank, cfg: SceneConfig = SceneConfig()) -> Scene:
    """Draw one scene from real material (see the module docstring)."""
    h, w = cfg.sensor_size
    duration = float(rng.uniform(*cfg.duration_s))
    pad = 160
    background = bank.background(rng, (h + 2 * pad, w + 2 * pad))
    cam_speed, camera = random_camera(rng, cfg, duration, pad)
    attrs: dict = {"material": "real", "camera_speed_px_s": round(cam_speed, 1)}

    k, frame, box = bank.appearance(rng)
    size = draw_target_size(rng, cfg)
    aspect = float(np.clip(box[2] / box[3], 0.25, 4.0))
    tw, th = size * np.sqrt(aspect), size / np.sqrt(aspect)
    speed = float(rng.uniform(*cfg.target_speed_px_s))
    traj = random_trajectory(rng, duration, (h, w), max(tw, th) / 2, base_speed_px_s=speed,
                             fast_factor=cfg.fast_factor, rotation_deg=5.0)
    gain_t, gain = low_contrast_gain(rng, cfg, traj, duration, depth=(0.5, 0.8))
    if gain is not None:
        attrs["low_contrast"] = True
    target = image_sprite(frame, box, tw, th, traj, gain_t, gain)
    attrs.update(source=bank.sequences[k].name, size_px=round(size, 1), speed_px_s=round(speed, 1))

    distractors = []
    n_dis = int(rng.integers(0, cfg.max_distractors + 1))
    for _ in range(n_dis):
        same = rng.random() < 0.5  # the same object at another time: the hardest look-alike
        _, dframe, dbox = bank.appearance(rng, k if same else None)
        ds = size * rng.uniform(0.8, 1.25)
        da = float(np.clip(dbox[2] / dbox[3], 0.25, 4.0))
        dtraj = random_trajectory(rng, duration, (h, w), ds / 2, base_speed_px_s=rng.uniform(*cfg.target_speed_px_s),
                                  fast_factor=cfg.fast_factor, rotation_deg=5.0)
        distractors.append(image_sprite(dframe, dbox, ds * np.sqrt(da), ds / np.sqrt(da), dtraj))
    attrs["distractors"] = n_dis

    occluders = []
    if rng.random() < cfg.p_occlusion:
        ow, oh, otraj = occluder_path(rng, traj, max(tw, th), duration, (h, w), attrs)
        # a bar of real texture: a region of a real frame of the bar's aspect
        oframe = bank.background(rng, (int(np.ceil(oh)) + 8, int(np.ceil(ow)) + 8))
        occluders.append(image_sprite(oframe, np.array([4.0, 4.0, ow, oh]), ow, oh, otraj))
    return finish_scene(rng, cfg, (h, w), duration, background, camera, target, distractors, occluders, attrs)
