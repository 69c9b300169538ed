"""Helpers shared by the dataset adapters: split folders, sequence lists, annotation files."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from evtrack.errors import FormatError, UserError
from evtrack.metrics.results import read_boxes, read_flags

EVENT_SUFFIXES = (".aedat4", ".h5", ".hdf5", ".npy", ".npz", ".raw", ".dat", ".csv", ".txt")


def require_root(root: str | Path, dataset: str) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{dataset}: dataset root {root} is not a directory")
    return root


def split_dir(root: Path, split: str, candidates: Iterable[str], dataset: str) -> Path:
    """The folder holding the sequences of ``split`` (first existing candidate)."""
    candidates = list(candidates)
    for name in candidates:
        if (root / name).is_dir():
            return root / name
    raise FormatError(
        f"{dataset}: no folder for split {split!r} under {root}; expected one of {', '.join(candidates)}"
    )


def sequence_names(folder: Path, list_files: Iterable[Path], dataset: str) -> list[str]:
    """Names from the first list file that exists, else every sub-folder (sorted)."""
    for lst in list_files:
        if lst.is_file():
            names = [line.strip() for line in lst.read_text().splitlines() if line.strip()]
            missing = [n for n in names if not (folder / n).is_dir()]
            if missing:
                raise FormatError(
                    f"{lst}: lists {len(missing)} sequence(s) with no folder under {folder}: {', '.join(missing[:5])}"
                )
            return names
    names = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not names:
        raise FormatError(f"{dataset}: no sequence folders in {folder}")
    return names


def first_file(folder: Path, names: Iterable[str]) -> Path | None:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    return None


def find_events(seq_dir: Path, preferred: Iterable[str]) -> Path | None:
    """The event file of a sequence: a preferred name, else the only event-like file there."""
    found = first_file(seq_dir, preferred)
    if found is not None:
        return found
    annotation_like = {"groundtruth", "groundtruth_rect", "absent", "absent_label", "frame_timestamps",
                       "start_end_index", "attributes"}
    cands = [p for p in sorted(seq_dir.iterdir())
             if p.is_file() and p.suffix.lower() in EVENT_SUFFIXES and p.stem not in annotation_like]
    return cands[0] if len(cands) == 1 else None


def read_gt(seq_dir: Path, names: Iterable[str], dataset: str) -> np.ndarray:
    names = list(names)
    path = first_file(seq_dir, names)
    if path is None:
        raise FormatError(f"{dataset}: {seq_dir} has no ground-truth file; expected one of {', '.join(names)}")
    boxes = read_boxes(path)
    if boxes.shape[0] == 0:
        raise FormatError(f"{path}: empty ground truth, expected one x,y,w,h line per frame")
    return boxes


def read_absent(path: Path | None, n: int) -> np.ndarray:
    """Absent flags (all present when there is no file); the length must match the boxes."""
    if path is None:
        return np.zeros(n, dtype=bool)
    flags = read_flags(path)
    if flags.shape[0] != n:
        raise FormatError(f"{path}: found {flags.shape[0]} absent flags, expected {n} (one per ground-truth line)")
    return flags


def read_timestamps(path: Path, n: int) -> np.ndarray:
    """One integer microsecond timestamp a line."""
    lines = [line.strip() for line in path.read_text().splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    out = np.empty(len(lines), dtype=np.int64)
    for i, text in enumerate(lines):
        try:
            out[i] = int(text)
        except ValueError:
            raise FormatError(f"{path}: line {i + 1}: found {text!r}, expected an integer timestamp in us") from None
    if out.shape[0] != n:
        raise FormatError(f"{path}: found {out.shape[0]} timestamps, expected {n} (one per ground-truth line)")
    return out
