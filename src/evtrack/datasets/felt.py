"""FELT long-term tracking (DAVIS346): ``<root>/{train,test}/<seq>/<seq>.aedat4, groundtruth.txt``.

Absent frames are boxed ``0,0,0,0`` (and/or listed in ``absent_label.txt``); both mark them absent.
"""

from __future__ import annotations

from pathlib import Path

from evtrack.datasets.folder import FolderLayout, load_folders
from evtrack.datasets.sequence import Sequence

LAYOUT = FolderLayout(
    dataset="felt",
    sensor_size=(260, 346),
    split_dirs={"train": ("train",), "test": ("test",)},
    list_files={"train": ("trainlist.txt", "train.txt", "FELT_train.txt"), "test": ("testlist.txt", "test.txt", "FELT_test.txt")},
    zero_box_is_absent=True,
)


def load(root: str | Path, split: str = "test", *, require_events: bool = True) -> list[Sequence]:
    return load_folders(LAYOUT, root, split, require_events=require_events)
