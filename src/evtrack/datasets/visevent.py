"""VisEvent (DAVIS346): ``<root>/{train,test}_subset/<seq>/<seq>.aedat4, groundtruth.txt, absent_label.txt``.

Sequence lists ``trainlist.txt`` / ``testlist.txt`` at the root are used when present.
"""

from __future__ import annotations

from pathlib import Path

from evtrack.datasets.folder import FolderLayout, load_folders
from evtrack.datasets.sequence import Sequence

LAYOUT = FolderLayout(
    dataset="visevent",
    sensor_size=(260, 346),
    split_dirs={"train": ("train_subset", "train"), "test": ("test_subset", "test")},
    list_files={"train": ("trainlist.txt", "train.txt"), "test": ("testlist.txt", "test.txt")},
    gt_names=("groundtruth.txt", "groundtruth_rect.txt"),
    absent_names=("absent_label.txt", "absent.txt"),
)


def load(root: str | Path, split: str = "test", *, require_events: bool = True) -> list[Sequence]:
    return load_folders(LAYOUT, root, split, require_events=require_events)
