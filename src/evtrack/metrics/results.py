"""Reading and writing box text files (ground truth, absent flags, tracker results).

Ground-truth files differ between datasets in their separator (comma, tab, spaces), and
result files of published trackers are tab-separated; one tolerant parser reads them all and
reports the exact line that does not parse. Result files are written the way the official
kits read them: one ``x<TAB>y<TAB>w<TAB>h`` line per frame.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from evtrack.errors import FormatError

_SPLIT = re.compile(r"[,\t ;]+")


def read_boxes(path: str | os.PathLike, *, n_cols: int = 4) -> np.ndarray:
    """Read one box per line (``x,y,w,h``; comma/tab/space separated) as float64 ``(N, 4)``.

    Blank lines at the end are ignored; a blank or malformed line in the middle is an error,
    because silently dropping it would shift every later frame. ``nan`` entries are kept.
    """
    path = Path(path)
    lines = path.read_text().splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    fast = _parse_fast(lines, n_cols)
    if fast is not None:
        return fast
    out = np.empty((len(lines), n_cols), dtype=np.float64)
    for i, line in enumerate(lines):
        fields = [f for f in _SPLIT.split(line.strip()) if f]
        if len(fields) != n_cols:
            raise FormatError(
                f"{path}: line {i + 1}: found {len(fields)} fields ({line.strip()!r}), expected {n_cols} (x,y,w,h)"
            )
        try:
            out[i] = [float(f) for f in fields]
        except ValueError:
            raise FormatError(f"{path}: line {i + 1}: {line.strip()!r} is not {n_cols} numbers") from None
    return out


def _parse_fast(lines: list[str], n_cols: int) -> np.ndarray | None:
    """numpy's C parser for the common well-formed file; None sends it to the careful parser."""
    if not lines:
        return np.empty((0, n_cols))
    first = lines[0]
    delimiter = "," if "," in first else ("\t" if "\t" in first else None)
    try:
        out = np.loadtxt(lines, delimiter=delimiter, dtype=np.float64, ndmin=2)
    except ValueError:
        return None
    # loadtxt skips blank lines; a row count mismatch means one was there.
    return out if out.shape == (len(lines), n_cols) else None


def read_flags(path: str | os.PathLike) -> np.ndarray:
    """Read one 0/1 flag per line (absent labels, attribute vectors) as a bool array."""
    path = Path(path)
    lines = path.read_text().splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    out = np.empty(len(lines), dtype=bool)
    for i, line in enumerate(lines):
        text = line.strip()
        try:
            value = float(text)
        except ValueError:
            raise FormatError(f"{path}: line {i + 1}: found {text!r}, expected a 0/1 flag") from None
        if value not in (0.0, 1.0):
            raise FormatError(f"{path}: line {i + 1}: found {text!r}, expected a 0/1 flag")
        out[i] = value == 1.0
    return out


def write_boxes(path: str | os.PathLike, boxes: np.ndarray, *, decimals: int = 4) -> None:
    """Write ``(N, 4)`` boxes tab-separated, one per line, atomically (temp file + rename)."""
    path = Path(path)
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"write_boxes: boxes must be (N, 4), got shape {boxes.shape}")
    from evtrack.io import atomic  # here: evtrack.io loads numba, which scoring does not need

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(path, "".join("\t".join(_fmt(v, decimals) for v in row) + "\n" for row in boxes))


def _fmt(value: float, decimals: int) -> str:
    if not np.isfinite(value):
        return "nan"
    text = f"{value:.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
