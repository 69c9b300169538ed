"""EventVOT (Prophesee EVK4, 1280x720): ``<root>/{train,test}/<seq>/<seq>.csv, groundtruth.txt, absent.txt``.

Events are a CSV file per sequence. The box times come from ``frame_timestamps.txt`` when the
user provides one; the dataset itself does not ship them (boxes are per event frame).
"""

from __future__ import annotations

from pathlib import Path

from evtrack.datasets.folder import FolderLayout, load_folders
from evtrack.datasets.sequence import Sequence

LAYOUT = FolderLayout(
    dataset="eventvot",
    sensor_size=(720, 1280),
    split_dirs={"train": ("train",), "test": ("test",)},
    list_files={"train": ("trainlist.txt", "train.txt"), "test": ("testlist.txt", "test.txt")},
    absent_names=("absent.txt", "absent_label.txt"),
    event_names=lambda name: (f"{name}.csv", "events.csv", f"{name}.h5", f"{name}.aedat4"),
)


def load(root: str | Path, split: str = "test", *, require_events: bool = True) -> list[Sequence]:
    return load_folders(LAYOUT, root, split, require_events=require_events)
