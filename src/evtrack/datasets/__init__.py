"""Dataset adapters: every layout becomes a list of :class:`Sequence` (events, boxes, absent
flags, box timestamps). ``load_dataset(name, root, split)`` is the one entry point."""

from __future__ import annotations

import importlib
from pathlib import Path

from evtrack.datasets.sequence import Sequence
from evtrack.errors import UserError

# name -> module with ``load(root, split)``; imported on demand.
DATASETS = {
    "fe108": "evtrack.datasets.fe108",
    "visevent": "evtrack.datasets.visevent",
    "felt": "evtrack.datasets.felt",
    "coesot": "evtrack.datasets.coesot",
    "eventvot": "evtrack.datasets.eventvot",
    "synthetic": "evtrack.datasets.synthetic",
}


def list_datasets() -> list[str]:
    return list(DATASETS)


def load_dataset(name: str, root: str | Path, split: str = "test", *, require_events: bool = True) -> list[Sequence]:
    """All sequences of one split of a dataset, in the dataset's listed order.

    ``require_events=False`` accepts sequence folders with annotations only (their ``events_path``
    is None): scoring results needs the boxes, not the recordings, which are large to download.
    """
    key = name.lower()
    if key not in DATASETS:
        raise UserError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
    return importlib.import_module(DATASETS[key]).load(root, split, require_events=require_events)


def load_roots(
    name: str, roots: list[str | Path], split: str = "test", max_per_root: int | None = None
) -> dict[str, Sequence]:
    """The sequences of one split from several roots of a dataset, scored as one set.

    Keys are the sequence names with one root and ``root/name`` with several (generated datasets
    name their sequences alike); ``max_per_root`` keeps the first N of each root.
    """
    out: dict[str, Sequence] = {}
    for root in roots:
        for seq in load_dataset(name, root, split)[:max_per_root]:
            out[seq.name if len(roots) == 1 else f"{root}/{seq.name}"] = seq
    return out


__all__ = ["DATASETS", "Sequence", "list_datasets", "load_dataset", "load_roots"]
