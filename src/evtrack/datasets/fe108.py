"""FE108 (DAVIS346, 346x260): the released folder layout and the official kit's ``annos`` layout.

Released layout::

    <root>/{train,test}/<seq>/events.aedat4, groundtruth_rect.txt, absent_label.txt
    <root>/{train,test}.txt (optional sequence lists)

The boxes belong to the APS frames, so their timestamps come from the AEDAT4 frame stream
(read lazily by ``Sequence.frame_times_us``) unless a ``frame_timestamps.txt`` is present.

Official evaluation-kit layout (annotations only, enough for ``evtrack evaluate``)::

    <root>/annos/gt_rect/<seq>.txt, annos/absent/<seq>.txt, annos/att/<seq>.txt
    <root>/test_sequences.txt

Attributes: ``annos/att/<seq>.txt`` is a column of 0/1 flags (17 in the released kit, unnamed,
reported as ``att01``..``att17``); the capture condition is also encoded in the sequence name
(``_low`` low light, ``_hdr`` high dynamic range, ``_motion`` fast motion, ``_mul`` several
similar objects) and is reported as ``low_light``, ``hdr``, ``fast_motion``, ``similar_objects``
and ``normal`` when none applies.
"""

from __future__ import annotations

from pathlib import Path

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
from evtrack.metrics.results import read_boxes, read_flags

SENSOR_SIZE = (260, 346)
GT_NAMES = ("groundtruth_rect.txt", "groundtruth.txt")
ABSENT_NAMES = ("absent_label.txt", "absent.txt")
EVENT_NAMES = ("events.aedat4", "events.h5", "events.hdf5")
CONDITIONS = {"low": "low_light", "hdr": "hdr", "motion": "fast_motion", "mul": "similar_objects"}


def name_attributes(name: str) -> dict[str, bool]:
    """Capture conditions encoded in an FE108 sequence name (``dove_mul222`` -> similar_objects)."""
    tokens = {t.rstrip("0123456789") for t in name.split("_")[1:]}
    attrs = {label: key in tokens for key, label in CONDITIONS.items()}
    attrs["normal"] = not any(attrs.values())
    return attrs


def load(root: str | Path, split: str = "test", *, dataset: str = "fe108", require_timestamps: bool = False,
         require_events: bool = True) -> list[Sequence]:
    """The sequences of one split; ``require_events=False``: folders without an event file are
    annotation-only sequences (evaluation), not an error."""
    root = require_root(root, dataset)
    if (root / "annos" / "gt_rect").is_dir() and not (root / split).is_dir():
        return load_official_annos(root, split, dataset=dataset)
    folder = split_dir(root, split, (split,), dataset)
    names = sequence_names(folder, (root / f"{split}.txt", root / f"{split}_list.txt"), dataset)
    out = []
    for name in names:
        seq_dir = folder / name
        boxes = read_gt(seq_dir, GT_NAMES, dataset)
        absent = read_absent(first_file(seq_dir, ABSENT_NAMES), len(boxes))
        ts_file = seq_dir / "frame_timestamps.txt"
        if ts_file.is_file():
            times = read_timestamps(ts_file, len(boxes))
        elif require_timestamps:
            raise FormatError(f"{dataset}: {seq_dir} has no frame_timestamps.txt (one integer us per box)")
        else:
            times = None
        events = find_events(seq_dir, EVENT_NAMES)
        if events is None and require_events:
            raise FormatError(
                f"{dataset}: {seq_dir} has no event file; expected one of {', '.join(EVENT_NAMES)}"
            )
        out.append(Sequence(name, events, boxes, absent, times, SENSOR_SIZE if dataset == "fe108" else None,
                            name_attributes(name) if dataset == "fe108" else {}, dataset))
    return out


def load_official_annos(root: Path, split: str = "test", *, dataset: str = "fe108") -> list[Sequence]:
    """Annotation-only sequences from the official kit's ``annos/`` folders."""
    if split != "test":
        raise FormatError(f"{dataset}: {root} holds the evaluation kit's annotations, which cover the test split only")
    gt_dir = root / "annos" / "gt_rect"
    lst = first_file(root, ("test_sequences.txt", "test.txt"))
    names = ([n.strip() for n in lst.read_text().splitlines() if n.strip()] if lst
             else sorted(p.stem for p in gt_dir.glob("*.txt")))
    out = []
    for name in names:
        gt_file = gt_dir / f"{name}.txt"
        if not gt_file.is_file():
            raise FormatError(f"{dataset}: {gt_file} missing (listed in {lst})")
        boxes = read_boxes(gt_file)
        absent_file = root / "annos" / "absent" / f"{name}.txt"
        absent = read_absent(absent_file if absent_file.is_file() else None, len(boxes))
        attrs = name_attributes(name)
        att_file = root / "annos" / "att" / f"{name}.txt"
        if att_file.is_file():
            attrs.update({f"att{i + 1:02d}": bool(v) for i, v in enumerate(read_flags(att_file))})
        out.append(Sequence(name, None, boxes, absent, None, SENSOR_SIZE, attrs, dataset))
    return out
