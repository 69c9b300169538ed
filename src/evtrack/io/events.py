"""The one canonical event layout shared by every reader, writer and kernel.

Events are a structured numpy array with fields, in this order:

- ``t``: timestamp in microseconds, int64, non-decreasing within a recording;
- ``x``: column, int16, 0 <= x < width;
- ``y``: row, int16, 0 <= y < height;
- ``p``: polarity, int8, 1 = ON (brightness increase), 0 = OFF.

Polarity is {0, 1} because AEDAT4, EVT2/EVT3 and DAT all store it that way; kernels that
need a sign use ``2 * p - 1``. Sensor sizes are always given as ``(height, width)``.
"""

from __future__ import annotations

import numpy as np

EVENT_DTYPE = np.dtype([("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "i1")])


def empty_events(n: int = 0) -> np.ndarray:
    """An uninitialised event array of length ``n`` in the canonical layout."""
    return np.empty(n, dtype=EVENT_DTYPE)


def make_events(t, x, y, p) -> np.ndarray:
    """Build a canonical event array from four equally long columns (copied and cast)."""
    t = np.asarray(t)
    n = t.shape[0]
    for name, col in (("x", x), ("y", y), ("p", p)):
        if np.shape(col)[0] != n:
            raise ValueError(f"make_events: column {name!r} has {np.shape(col)[0]} entries, t has {n}")
    ev = np.empty(n, dtype=EVENT_DTYPE)
    ev["t"] = t
    ev["x"] = x
    ev["y"] = y
    ev["p"] = p
    return ev
