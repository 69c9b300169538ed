"""COESOT (DAVIS346): ``<root>/{train,test}/<seq>/<seq>.aedat4, groundtruth.txt, absent.txt,
start_end_index.txt``.

``start_end_index.txt`` holds the first and last annotated APS frame; the first becomes
``Sequence.frame_offset`` so box i belongs to frame-stream entry ``start + i``.
"""

from __future__ import annotations

from pathlib import Path

from evtrack.datasets.folder import FolderLayout, load_folders
from evtrack.datasets.sequence import Sequence

LAYOUT = FolderLayout(
    dataset="coesot",
    sensor_size=(260, 346),
    split_dirs={"train": ("train", "training_subset"), "test": ("test", "testing_subset")},
    list_files={"train": ("trainlist.txt", "train.txt"), "test": ("testlist.txt", "test.txt")},
    absent_names=("absent.txt", "absent_label.txt"),
    start_end_index=True,
)


def load(root: str | Path, split: str = "test", *, require_events: bool = True) -> list[Sequence]:
    return load_folders(LAYOUT, root, split, require_events=require_events)
