"""``.npy`` / ``.npz`` event arrays in any field order and dtype, converted chunk by chunk.

Accepted contents:

- ``.npy``: a structured array with fields ``t, x, y, p`` (any order/dtypes); memory-mapped, so
  only one chunk is converted at a time;
- ``.npz``: either arrays named ``t, x, y, p`` or one structured array (key ``events`` or the
  only key). Zip members cannot be memory-mapped, so each column is loaded whole.

``time_unit="auto"``: float timestamps are seconds, integer ones microseconds.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from evtrack.errors import FormatError, UserError
from evtrack.io.events import as_events
from evtrack.io.reader import EventReader, RecordingInfo

_UNIT_SCALE = {"s": 1e6, "ms": 1e3, "us": 1, "ns": 1e-3}


class NumpyReader(EventReader):
    """Chunks of a structured ``.npy`` (memory-mapped) or of the columns of an ``.npz``."""

    def __init__(
        self,
        path: str | Path,
        *,
        sensor_size: tuple[int, int] | None = None,
        time_unit: str = "auto",
        **options,
    ) -> None:
        super().__init__(path, **options)
        if time_unit not in ("auto", *_UNIT_SCALE):
            raise UserError(f"time_unit must be one of auto, s, ms, us, ns; got {time_unit!r}")
        try:
            if self.path.suffix.lower() == ".npz" or zipfile.is_zipfile(self.path):
                self._cols = self._load_npz()
                fmt = "npz"
            else:
                arr = np.load(self.path, mmap_mode="r", allow_pickle=False)
                self._cols = self._columns(arr, "array")
                fmt = "npy"
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            if isinstance(exc, FormatError):
                raise
            raise FormatError(
                f"{self.path}: not a readable .npy/.npz event file ({exc}){_npy_size_hint(self.path)}"
            ) from exc
        t = self._cols["t"]
        if time_unit == "auto":
            time_unit = "s" if t.dtype.kind == "f" else "us"
        self._scale = _UNIT_SCALE[time_unit]
        n = len(t)
        first = last = None
        if n:
            first = int(np.rint(float(t[0]) * self._scale))
            last = int(np.rint(float(t[n - 1]) * self._scale))
        self._info = RecordingInfo(
            path=self.path,
            format=fmt,
            sensor_size=sensor_size,
            n_events=n,
            t_start_us=first,
            t_end_us=last,
            streams=("events",),
            metadata={"time_unit": time_unit},
        )

    def _columns(self, arr: np.ndarray, what: str) -> dict[str, np.ndarray]:
        names = arr.dtype.names or ()
        missing = [f for f in "txyp" if f not in names]
        if arr.ndim != 1 or missing:
            raise FormatError(
                f"{self.path}: {what} has shape {arr.shape} and fields {list(names)}; expected a 1-D "
                f"structured array with fields t, x, y, p (missing {missing})"
            )
        return {f: arr[f] for f in "txyp"}

    def _load_npz(self) -> dict[str, np.ndarray]:
        with np.load(self.path, allow_pickle=False) as z:
            keys = list(z.keys())
            if all(f in keys for f in "txyp"):
                cols = {f: z[f] for f in "txyp"}
                n = len(cols["t"])
                for f, c in cols.items():
                    if c.shape != (n,):
                        raise FormatError(
                            f"{self.path}: array {f!r} has shape {c.shape}, expected ({n},) like 't'"
                        )
                return cols
            key = "events" if "events" in keys else (keys[0] if len(keys) == 1 else None)
            if key is None:
                raise FormatError(
                    f"{self.path}: npz holds {keys}; expected arrays t, x, y, p or one structured array 'events'"
                )
            return self._columns(z[key], f"array {key!r}")

    def _read_chunks(self, start_us: int | None) -> Iterator[np.ndarray]:
        n = len(self._cols["t"])
        for s in range(0, n, self.chunk_events):
            e = min(s + self.chunk_events, n)
            part = np.rec.fromarrays([np.asarray(self._cols[f][s:e]) for f in "txyp"], names="t,x,y,p")
            yield as_events(part, source=f"{self.path} (events {s}..{e - 1})", time_scale=self._scale)


def _npy_size_hint(path: Path) -> str:
    """'; header declares N events = B bytes of data, file holds only b' for a truncated .npy."""
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(fh)
            data_start = fh.tell()
        expected = int(np.prod(shape)) * dtype.itemsize
        found = path.stat().st_size - data_start
    except Exception:  # not even a readable header: the caller's message says what failed
        return ""
    if found >= expected:
        return ""
    return (
        f"; truncated: the header declares {int(np.prod(shape))} records = {expected} bytes of data, "
        f"the file holds {found}"
    )
