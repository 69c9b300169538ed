"""evtrack's generated set (FE108 layout, see docs/design.md)::

    <root>/{train,test}/<seq>/events.h5 (or events.aedat4), groundtruth_rect.txt,
                              absent_label.txt, frame_timestamps.txt

``frame_timestamps.txt`` is required: it is the only source of the box times. The optional
``attributes.json`` (scene parameters) becomes boolean attributes for per-attribute breakdowns:
booleans as they are, strings as ``key=value`` (``shape=triangle``), and the counts ``distractors``
and ``n_absent`` as ``distractors`` / ``absent`` when non-zero; continuous values are left out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from evtrack.datasets import fe108
from evtrack.datasets.sequence import Sequence
from evtrack.errors import FormatError

COUNT_FLAGS = {"distractors": "distractors", "n_absent": "absent"}


def scene_attributes(params: dict[str, Any]) -> dict[str, bool]:
    """Boolean attributes from a generated sequence's scene parameters."""
    out: dict[str, bool] = {}
    for key, value in params.items():
        if isinstance(value, bool):
            out[key] = value
        elif isinstance(value, str):
            out[f"{key}={value}"] = True
        elif key in COUNT_FLAGS and isinstance(value, int | float):
            out[COUNT_FLAGS[key]] = value > 0
    return out


def load(root: str | Path, split: str = "test", *, require_events: bool = True) -> list[Sequence]:
    sequences = fe108.load(root, split, dataset="synthetic", require_timestamps=True, require_events=require_events)
    for seq in sequences:
        path = Path(root) / split / seq.name / "attributes.json"
        if path.is_file():
            try:
                params = json.loads(path.read_text())
            except json.JSONDecodeError as exc:
                raise FormatError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
            if not isinstance(params, dict):
                raise FormatError(f"{path}: found a JSON {type(params).__name__}, expected an object")
            seq.attributes = scene_attributes(params)
    return sequences
