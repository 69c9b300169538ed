"""Frame sources for the simulator: any video OpenCV reads, or a folder of images.

Frames come out as float32 grey intensity in [0, 1], resized to the sensor (a plain stretch, so
boxes scale by ``(sensor_w / frame_w, sensor_h / frame_h)``), with timestamps from the frame rate.
An OTB / pytracking style ``groundtruth_rect.txt`` next to the frames is found and parsed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from evtrack.errors import FormatError, UserError

# grey, keeping 16-bit images 16-bit (plain IMREAD_GRAYSCALE would cut them to 8 bits)
IMREAD_GREY = cv2.IMREAD_GRAYSCALE | cv2.IMREAD_ANYDEPTH
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm", ".ppm", ".webp")


def _natural_key(path: Path) -> list:
    return [int(tok) if tok.isdigit() else tok for tok in re.split(r"(\d+)", path.name)]


@dataclass
class FrameSource:
    """A sequence of frames with a fixed rate; iterate for ``(index, frame)``."""

    path: Path
    fps: float
    frame_size: tuple[int, int]  # (h, w) of the input frames
    n_frames: int | None  # None when the container does not say
    groundtruth: Path | None
    _files: list[Path] | None = None

    @property
    def is_folder(self) -> bool:
        return self._files is not None

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        if self._files is not None:
            for i, f in enumerate(self._files):
                img = cv2.imread(str(f), IMREAD_GREY)
                if img is None:
                    raise FormatError(f"{f}: not an image OpenCV can read (frame {i} of {self.path})")
                if img.shape != self.frame_size:
                    raise FormatError(f"{f}: frame {i} is {img.shape[1]}x{img.shape[0]}, the first frame was "
                                      f"{self.frame_size[1]}x{self.frame_size[0]}; all frames must have one size")
                yield i, to_float(img)
            return
        cap = cv2.VideoCapture(str(self.path))
        try:
            i = 0
            while True:
                ok, img = cap.read()
                if not ok:
                    break
                if img.ndim == 3:
                    img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
                yield i, to_float(img)
                i += 1
        finally:
            cap.release()


def to_float(img: np.ndarray) -> np.ndarray:
    """Grey intensity in [0, 1] as float32 (8- and 16-bit images, float images clipped)."""
    if img.dtype.kind == "f":  # floating-point TIFF / EXR: taken as intensity in [0, 1]
        return np.clip(img, 0.0, 1.0).astype(np.float32)
    scale = 65535.0 if img.dtype == np.uint16 else 255.0
    return img.astype(np.float32) / np.float32(scale)


def open_frames(path: str | Path, fps: float | None = None) -> FrameSource:
    """Open a video file or an image folder (an OTB sequence folder with ``img/`` works too)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such video file or frame folder")
    if fps is not None and not (fps > 0 and np.isfinite(fps)):
        raise UserError(f"--fps must be a positive number, got {fps}")
    if path.is_dir():
        folder = path / "img" if (path / "img").is_dir() else path
        files = sorted((f for f in folder.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS), key=_natural_key)
        if not files:
            raise UserError(f"{folder}: no images found (looked for {', '.join(IMAGE_EXTENSIONS)})")
        if fps is None:
            raise UserError(f"{path}: a frame folder has no frame rate; give one with --fps")
        first = cv2.imread(str(files[0]), IMREAD_GREY)
        if first is None:
            raise FormatError(f"{files[0]}: not an image OpenCV can read")
        gt = next((c for c in (path / "groundtruth_rect.txt", folder.parent / "groundtruth_rect.txt") if c.is_file()),
                  None)
        return FrameSource(path, float(fps), first.shape, len(files), gt, files)
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise FormatError(f"{path}: OpenCV cannot open this file as a video")
        ok, img = cap.read()
        if not ok:
            raise FormatError(f"{path}: the video has no readable frame")
        video_fps = cap.get(cv2.CAP_PROP_FPS)
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        cap.release()
    if fps is None:
        if not (video_fps > 0 and np.isfinite(video_fps)):
            raise UserError(f"{path}: the video does not state its frame rate (found {video_fps}); give --fps")
        fps = float(video_fps)
    gt = path.parent / "groundtruth_rect.txt"
    return FrameSource(path, float(fps), img.shape[:2], n if n > 0 else None, gt if gt.is_file() else None)


def read_groundtruth(path: str | Path) -> np.ndarray:
    """Boxes ``(N, 4)`` from an OTB-style file (comma, tab or space separated ``x y w h``)."""
    path = Path(path)
    rows = []
    for k, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        parts = [p for p in re.split(r"[,\s]+", line) if p]
        if len(parts) != 4:
            raise FormatError(f"{path}: line {k} has {len(parts)} fields ({line!r}); expected 4: x,y,w,h")
        try:
            rows.append([float(p) for p in parts])
        except ValueError:
            raise FormatError(f"{path}: line {k} is not numeric ({line!r}); expected x,y,w,h") from None
    if not rows:
        raise FormatError(f"{path}: no boxes found; expected one x,y,w,h line per frame")
    return np.asarray(rows, dtype=np.float64)
