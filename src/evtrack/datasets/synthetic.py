"""evtrack's generated set (FE108 layout, see docs/design.md)::

    <root>/{train,test}/<seq>/events.h5 (or events.aedat4), groundtruth_rect.txt,
                              absent_label.txt, frame_timestamps.txt

``frame_timestamps.txt`` is required: it is the only source of the box times.
"""

from __future__ import annotations

from pathlib import Path

from evtrack.datasets import fe108
from evtrack.datasets.sequence import Sequence


def load(root: str | Path, split: str = "test") -> list[Sequence]:
    return fe108.load(root, split, dataset="synthetic", require_timestamps=True)
