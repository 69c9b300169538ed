"""Numba byte kernels for the canonical event layout: building records from columns, and the
one-pass validation every reader's chunks go through.

The canonical record is 16 bytes (see ``evtrack.io.events``); decoders that already produce it
(dv-processing, expelliarmus) need no kernel at all, only a ``view``.
"""

from __future__ import annotations

import sys

import numpy as np
from numba import njit

_LITTLE = sys.byteorder == "little"


@njit(cache=True, nogil=True)
def _interleave(
    t: np.ndarray, x: np.ndarray, y: np.ndarray, p: np.ndarray, dst: np.ndarray
) -> None:  # pragma: no cover - compiled
    for i in range(dst.shape[0]):
        for j in range(8):
            dst[i, j] = t[i, j]
        dst[i, 8] = x[i, 0]
        dst[i, 9] = x[i, 1]
        dst[i, 10] = y[i, 0]
        dst[i, 11] = y[i, 1]
        dst[i, 12] = p[i, 0]
        dst[i, 13] = 0  # padding: zeroed so saved arrays hold no stale memory
        dst[i, 14] = 0
        dst[i, 15] = 0


def pack_columns(t: np.ndarray, x: np.ndarray, y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Canonical events from four columns already in ``<i8, <i2, <i2, i1`` (others are cast first).

    Several times faster than assigning the four fields of the structured dtype one by one, which
    is what an HDF5 or ``.npy`` column store needs on every chunk.
    """
    from evtrack.io.events import EVENT_DTYPE

    n = len(t)
    cols = []
    for col, dt in ((t, "<i8"), (x, "<i2"), (y, "<i2"), (p, "i1")):
        col = np.ascontiguousarray(col, dtype=dt)
        if col.shape != (n,):
            raise ValueError(f"pack_columns: column of shape {col.shape}, expected ({n},)")
        cols.append(col.view(np.uint8).reshape(n, np.dtype(dt).itemsize))
    out = np.empty(n, dtype=EVENT_DTYPE)
    if n:
        _interleave(*cols, out.view(np.uint8).reshape(n, EVENT_DTYPE.itemsize))
    return out


@njit(cache=True, nogil=True)
def _scan(t, x, y, t_prev, width, height):  # pragma: no cover - compiled
    # Coordinates as uint16: a negative int16 becomes >= 32768, so one compare covers both ends.
    first_bad = -1
    n_bad = 0
    for i in range(t.shape[0]):
        ti = t[i]
        if ti < t_prev:
            return i, -1, 0
        t_prev = ti
        if np.uint16(x[i]) >= width or np.uint16(y[i]) >= height:
            if first_bad < 0:
                first_bad = i
            n_bad += 1
    return -1, first_bad, n_bad


@njit(cache=True, nogil=True)
def _any_bad(words, t_prev, width, height):  # pragma: no cover - compiled
    # Branch-free over the records as int64 pairs: word 0 is t, word 1 holds x (bits 0-15) and
    # y (bits 16-31) on little-endian machines. ~2x faster than _scan, which finds the indices.
    back = 0
    n_bad = 0
    for i in range(words.shape[0] // 2):
        ti = words[2 * i]
        back |= ti < t_prev
        t_prev = ti
        w = words[2 * i + 1]
        n_bad += ((w & 0xFFFF) >= width) | (((w >> 16) & 0xFFFF) >= height)
    return back, n_bad


def scan_events(events: np.ndarray, t_prev: int, width: int, height: int) -> tuple[int, int, int]:
    """One pass over a canonical chunk: ``(first backwards index, first out-of-sensor index, n out)``.

    ``first backwards index`` is the first ``i`` with ``t[i] < t[i - 1]`` (``t[-1]`` being
    ``t_prev``), or -1; when it is found the other two are ``-1, 0`` (not computed). Out of sensor
    means ``x`` outside ``[0, width)`` or ``y`` outside ``[0, height)``; sizes above 32767 (beyond
    int16) only catch negative coordinates.
    """
    width = min(int(width), 32768)
    height = min(int(height), 32768)
    t_prev = np.int64(t_prev)
    if _LITTLE and events.flags.c_contiguous and events.dtype.itemsize == 16:
        back, n_bad = _any_bad(events.view(np.int64), t_prev, width, height)
        if not back and not n_bad:
            return -1, -1, 0
    i_back, first_bad, n_bad = _scan(events["t"], events["x"], events["y"], t_prev, width, height)
    return int(i_back), int(first_bad), int(n_bad)
