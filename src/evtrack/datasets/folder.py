"""The "one folder per sequence" layout that VisEvent, FELT, COESOT and EventVOT share.

Each dataset differs only in file names, split folder names and small rules (FELT boxes absent
frames as 0,0,0,0; COESOT annotates a sub-range of the frames), so they are data here, not code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from evtrack.datasets.layout import (
    find_events,
    first_file,
    read_absent,
    read_gt,
    read_timestamps,
    require_root,
    sequence_names,
    split_dir,
)
from evtrack.datasets.sequence import Sequence
from evtrack.errors import FormatError


@dataclass(frozen=True)
class FolderLayout:
    """File names and rules of one dataset's per-sequence folders."""

    dataset: str
    sensor_size: tuple[int, int] | None  # (height, width)
    split_dirs: dict[str, tuple[str, ...]]  # split -> candidate folder names under the root
    list_files: dict[str, tuple[str, ...]]  # split -> candidate sequence-list files under the root
    gt_names: tuple[str, ...] = ("groundtruth.txt",)
    absent_names: tuple[str, ...] = ("absent_label.txt", "absent.txt")
    event_names: Callable[[str], tuple[str, ...]] = field(default=lambda name: (f"{name}.aedat4",))
    zero_box_is_absent: bool = False  # FELT marks absent frames with an all-zero box
    start_end_index: bool = False  # COESOT: start_end_index.txt gives the annotated frame range


def read_start_index(path: Path) -> int:
    """First annotated frame (0-based) from a ``start,end`` (or ``start end``) index file."""
    text = path.read_text().replace(",", " ").split()
    try:
        start, end = int(text[0]), int(text[1])
    except (IndexError, ValueError):
        raise FormatError(f"{path}: found {path.read_text()[:40]!r}, expected two integers 'start end'") from None
    if start < 0 or end < start:
        raise FormatError(f"{path}: found start {start}, end {end}; expected 0 <= start <= end")
    return start


def load_folders(layout: FolderLayout, root: str | Path, split: str = "test", *,
                 require_events: bool = True) -> list[Sequence]:
    """The sequences of one split; ``require_events=False``: folders without an event file are
    annotation-only sequences (evaluation), not an error."""
    root = require_root(root, layout.dataset)
    if split not in layout.split_dirs:
        raise FormatError(f"{layout.dataset}: unknown split {split!r}; expected one of {', '.join(layout.split_dirs)}")
    folder = split_dir(root, split, layout.split_dirs[split], layout.dataset)
    names = sequence_names(folder, [root / f for f in layout.list_files.get(split, ())], layout.dataset)
    out = []
    for name in names:
        seq_dir = folder / name
        boxes = read_gt(seq_dir, layout.gt_names, layout.dataset)
        absent = read_absent(first_file(seq_dir, layout.absent_names), len(boxes))
        if layout.zero_box_is_absent:
            absent = absent | np.all(boxes == 0, axis=1)
        ts_file = seq_dir / "frame_timestamps.txt"
        times = read_timestamps(ts_file, len(boxes)) if ts_file.is_file() else None
        offset = 0
        if layout.start_end_index and (seq_dir / "start_end_index.txt").is_file():
            offset = read_start_index(seq_dir / "start_end_index.txt")
        events = find_events(seq_dir, layout.event_names(name))
        if events is None and require_events:
            raise FormatError(
                f"{layout.dataset}: {seq_dir} has no event file; expected {', '.join(layout.event_names(name))}"
            )
        out.append(Sequence(name, events, boxes, absent, times, layout.sensor_size, {}, layout.dataset, offset))
    return out
