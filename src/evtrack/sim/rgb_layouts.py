"""RGB single-object tracking datasets as frame lists + boxes: the input side of ``convert-dataset``.

Three public layouts are read (the three that cover OTB, UAV123, DTB70, UAVDT, GOT-10k and LaSOT):

* ``otb``: ``<seq>/img/*.jpg`` + ``<seq>/groundtruth_rect.txt`` (OTB, UAV123, DTB70; optional
  ``absent_label.txt`` 0/1 per frame and ``fps.txt``, as ``shared/data/real_rgb/extract.py`` writes)
* ``got10k``: ``<seq>/*.jpg`` + ``<seq>/groundtruth.txt``, optional ``absence.label`` (10 fps footage)
* ``lasot``: ``<class>/<class-N>/img/*.jpg`` + ``groundtruth.txt``, ``full_occlusion.txt`` and
  ``out_of_view.txt`` (one comma-separated 0/1 line each; 30 fps)

A box that is NaN or has a side <= 0 marks the frame absent (UAV123 writes NaN when the target is out
of view); an absent flag file marks it too. Anything else that is wrong (a missing frame in the
numbering, a box count that differs from the frame count, a line that is not four numbers) is a
:class:`FormatError` naming the sequence, file and line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evtrack.errors import FormatError, UserError
from evtrack.metrics.results import read_boxes
from evtrack.sim.video import IMAGE_EXTENSIONS

LAYOUTS = ("otb", "got10k", "lasot")
DEFAULT_FPS = {"otb": 30.0, "got10k": 10.0, "lasot": 30.0}
SPLIT_NAMES = ("train", "val", "test")


@dataclass
class RGBSequence:
    """One source sequence: its frames in order, a box per frame and the frames flagged absent."""

    name: str
    layout: str
    folder: Path
    frames: list[Path]
    boxes: np.ndarray  # (N, 4) x, y, w, h in image pixels; absent frames hold 0,0,0,0
    absent: np.ndarray  # (N,) bool
    fps: float


def _numbered(files: list[Path]) -> list[Path]:
    """Frames sorted by their number; a gap in the numbering is an error (a frame would be missing)."""
    nums = []
    for f in files:
        digits = re.findall(r"\d+", f.stem)
        if not digits:
            raise FormatError(f"{f}: frame file name has no number; expected numbered frames such as 00001.jpg")
        nums.append(int(digits[-1]))
    order = np.argsort(nums, kind="stable")
    nums = np.asarray(nums)[order]
    files = [files[i] for i in order]
    if len(nums) > 1:
        steps = np.diff(nums)
        if (steps == 0).any():
            k = int(np.flatnonzero(steps == 0)[0])
            raise FormatError(f"{files[k].parent}: frames {files[k].name} and {files[k + 1].name} have the same "
                              "number; expected one file per frame")
        if (steps != 1).any():
            k = int(np.flatnonzero(steps != 1)[0])
            raise FormatError(f"{files[k].parent}: frame {nums[k] + 1} is missing (after {files[k].name}, next is "
                              f"{files[k + 1].name}); expected consecutively numbered frames")
    return files


def _images(folder: Path) -> list[Path]:
    return [f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS]


def parse_boxes(path: Path, seq: str) -> tuple[np.ndarray, np.ndarray]:
    """Boxes ``(N, 4)`` and absent flags from a box file; NaN boxes and sides <= 0 count as absent."""
    try:
        boxes = read_boxes(path)
    except FormatError as exc:
        raise FormatError(f"sequence {seq}: {exc}") from None
    if not len(boxes):
        raise FormatError(f"sequence {seq}: {path}: no boxes; expected one x,y,w,h line per frame")
    absent = ~np.isfinite(boxes).all(axis=1) | (np.nan_to_num(boxes[:, 2]) <= 0) | (np.nan_to_num(boxes[:, 3]) <= 0)
    boxes[absent] = 0.0
    return boxes, absent


def _flags(path: Path, n: int, seq: str, *, one_line: bool = False) -> np.ndarray:
    """0/1 flags, one a line (or all on one comma-separated line for LaSOT)."""
    text = path.read_text()
    tokens = [t for t in re.split(r"[,\s]+", text) if t] if one_line else [t.strip() for t in text.splitlines()]
    while tokens and not tokens[-1]:
        tokens.pop()
    bad = next((i for i, t in enumerate(tokens) if t not in ("0", "1")), None)
    if bad is not None:
        where = f"entry {bad + 1}" if one_line else f"line {bad + 1}"
        raise FormatError(f"sequence {seq}: {path}: {where} is {tokens[bad]!r}; expected 0 or 1")
    if len(tokens) != n:
        raise FormatError(f"sequence {seq}: {path}: {len(tokens)} flags for {n} frames; expected one per frame")
    return np.array([t == "1" for t in tokens], dtype=bool)


def _read_fps(folder: Path, default: float, seq: str) -> float:
    path = folder / "fps.txt"
    if not path.is_file():
        return default
    try:
        fps = float(path.read_text().split()[0])
    except (ValueError, IndexError):
        raise FormatError(f"sequence {seq}: {path}: expected one number (frames per second)") from None
    if not (np.isfinite(fps) and fps > 0):
        raise FormatError(f"sequence {seq}: {path}: frame rate {fps} is not a positive number")
    return fps


def _check_count(seq: str, gt: Path, n_boxes: int, frame_dir: Path, n_frames: int) -> None:
    if n_boxes != n_frames:
        raise FormatError(f"sequence {seq}: {gt} has {n_boxes} boxes but {frame_dir} has {n_frames} frames; "
                          "expected one box per frame")


def read_sequence(folder: Path, layout: str, name: str | None = None) -> RGBSequence:
    """Read one sequence folder of the given layout."""
    folder = Path(folder)
    name = name or folder.name
    if layout not in LAYOUTS:
        raise UserError(f"unknown layout {layout!r}; expected one of {', '.join(LAYOUTS)}")
    frame_dir = folder / "img" if layout in ("otb", "lasot") else folder
    gt = folder / ("groundtruth_rect.txt" if layout == "otb" else "groundtruth.txt")
    if not frame_dir.is_dir():
        raise FormatError(f"sequence {name}: {frame_dir} is missing; the {layout} layout keeps the frames there")
    if not gt.is_file():
        raise FormatError(f"sequence {name}: {gt} is missing; the {layout} layout needs one box per frame there")
    frames = _numbered(_images(frame_dir))
    if not frames:
        raise FormatError(f"sequence {name}: no images in {frame_dir} (looked for {', '.join(IMAGE_EXTENSIONS)})")
    boxes, absent = parse_boxes(gt, name)
    _check_count(name, gt, len(boxes), frame_dir, len(frames))
    extra = {"otb": [("absent_label.txt", False)], "got10k": [("absence.label", False)],
             "lasot": [("full_occlusion.txt", True), ("out_of_view.txt", True)]}[layout]
    for fname, one_line in extra:
        if (folder / fname).is_file():
            absent |= _flags(folder / fname, len(frames), name, one_line=one_line)
    boxes[absent] = 0.0
    fps = _read_fps(folder, DEFAULT_FPS[layout], name)
    return RGBSequence(name, layout, folder, frames, boxes, absent, fps)


def detect_layout(seq_dir: Path) -> str | None:
    """The layout of one sequence folder, or None when it is not a sequence."""
    if (seq_dir / "groundtruth_rect.txt").is_file() and (seq_dir / "img").is_dir():
        return "otb"
    if (seq_dir / "groundtruth.txt").is_file():
        return "lasot" if (seq_dir / "img").is_dir() else "got10k"
    return None


def find_sequences(root: str | Path, layout: str = "auto") -> dict[str, list[tuple[str, Path, str]]]:
    """``{split: [(name, folder, layout), ...]}`` under ``root``.

    ``root`` may hold sequences directly (split ``"all"``), split folders (``train/``, ``val/``,
    ``test/``), or, for LaSOT, class folders holding the sequences. Folders that are none of these
    are skipped; a root with no sequence at all is an error.
    """
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: not a directory; expected a dataset root with one folder per sequence")
    if layout != "auto" and layout not in LAYOUTS:
        raise UserError(f"--layout {layout!r}: expected auto or one of {', '.join(LAYOUTS)}")
    split_dirs = [(s, root / s) for s in SPLIT_NAMES if (root / s).is_dir()]
    groups = split_dirs or [("all", root)]
    out: dict[str, list[tuple[str, Path, str]]] = {}
    for split, base in groups:
        found = []
        for d in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
            kind = detect_layout(d)
            if kind is None:  # a LaSOT class folder holds the sequences one level down
                for sub in sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith(".")):
                    sub_kind = detect_layout(sub)
                    if sub_kind is not None:
                        found.append((sub.name, sub, layout if layout != "auto" else sub_kind))
                continue
            found.append((d.name, d, layout if layout != "auto" else kind))
        if found:
            out[split] = found
    if not out:
        raise FormatError(f"{root}: no tracking sequences found; expected <seq>/img/ + groundtruth_rect.txt (OTB, "
                          "UAV123), <seq>/*.jpg + groundtruth.txt (GOT-10k) or <class>/<seq>/img/ + groundtruth.txt "
                          "(LaSOT), optionally under train/, val/, test/")
    return out
