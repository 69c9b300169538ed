"""One-event-per-line text files, read in bounded chunks with pandas' C parser.

Supported shapes:

- UZH Event Camera Dataset ``events.txt``: ``t x y p`` separated by spaces, ``t`` in float seconds;
- Metavision / EventVOT CSV (EventVOT ships ``<seq>/<seq>.csv`` exported from a Prophesee EVK4,
  1280x720): ``x,y,p,t`` with ``t`` in integer microseconds, optionally preceded by a
  ``%geometry:W,H`` comment;
- any of these with a header line naming the columns (``t``/``ts``/``timestamp``, ``x``, ``y``,
  ``p``/``pol``/``polarity``), comma, semicolon, tab or space separated.

Without a header the column order comes from ``columns=`` (e.g. ``"xypt"``) or is inferred from the
first rows: the time column must be non-decreasing and the polarity column binary; if both
``txyp`` and ``xypt`` fit (or neither does) we refuse to guess. ``time_unit="auto"`` means float
timestamps are seconds and integer ones microseconds; pass ``"s"``, ``"ms"``, ``"us"`` or ``"ns"``
to override. Lines starting with ``#`` or ``%`` are comments.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from evtrack.errors import FormatError, UserError
from evtrack.io.events import as_events
from evtrack.io.reader import EventReader, RecordingInfo

_UNIT_SCALE = {"s": 1e6, "ms": 1e3, "us": 1, "ns": 1e-3}
_ALIASES = {
    "t": "t", "ts": "t", "time": "t", "timestamp": "t", "timestamps": "t", "t_us": "t", "timestamp_us": "t",
    "x": "x", "y": "y",
    "p": "p", "pol": "p", "polarity": "p", "polarities": "p",
}  # fmt: skip
_PROBE_ROWS = 1000


class TextReader(EventReader):
    """Reads ``t x y p``-style text/CSV event files chunk by chunk."""

    def __init__(
        self,
        path: str | Path,
        *,
        sensor_size: tuple[int, int] | None = None,
        columns: str | None = None,
        time_unit: str = "auto",
        delimiter: str | None = None,
        **options,
    ) -> None:
        super().__init__(path, **options)
        if time_unit not in ("auto", *_UNIT_SCALE):
            raise UserError(f"time_unit must be one of auto, s, ms, us, ns; got {time_unit!r}")
        comments, header, first_rows, skip = self._probe()
        if not first_rows and header is None:
            raise FormatError(f"{self.path}: no event lines found (expected one event per line: t x y p)")
        self._sep = delimiter or _guess_separator(header or first_rows[0])
        self._skip = skip
        if columns is not None:
            names = list(columns.lower())
            if sorted(names) != ["p", "t", "x", "y"]:
                raise UserError(f"columns must be a permutation of 'txyp', got {columns!r}")
        elif header is not None:
            tokens = _split(header, self._sep)
            names = [_ALIASES.get(tok.strip().strip('"').lower(), tok) for tok in tokens]
            if sorted(n for n in names if n in "txyp") != ["p", "t", "x", "y"]:
                raise FormatError(f"{self.path}: header line {header!r} does not name t, x, y and p columns")
        else:
            names = self._infer_columns([_split(r, self._sep) for r in first_rows])
        self._names = names
        if time_unit == "auto":
            t_tok = _split(first_rows[0], self._sep)[names.index("t")] if first_rows else "0"
            time_unit = "s" if re.search(r"[.eE]", t_tok) else "us"
        self.time_unit = time_unit
        if sensor_size is None:
            sensor_size = _geometry(comments)
        self._info = RecordingInfo(
            path=self.path,
            format="text",
            sensor_size=sensor_size,
            streams=("events",),
            metadata={"columns": "".join(n if n in "txyp" else "_" for n in names), "time_unit": time_unit},
        )

    def _probe(self) -> tuple[list[str], str | None, list[str], int]:
        """Comment lines, header line, the first data rows, and how many lines precede the data."""
        comments, header, rows, skip = [], None, [], 0
        with open(self.path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                s = line.strip()
                if not rows and header is None:
                    if not s or s[0] in "#%":
                        comments.append(s)
                        skip += 1
                        continue
                    if re.search(r"[A-Za-df-z_]", s):  # letters other than an exponent's e/E
                        header = s
                        skip += 1
                        continue
                if s and s[0] not in "#%":
                    rows.append(s)
                if len(rows) >= _PROBE_ROWS:
                    break
        return comments, header, rows, skip

    def _infer_columns(self, rows: list[list[str]]) -> list[str]:
        widths = {len(r) for r in rows}
        if widths != {4}:
            raise FormatError(
                f"{self.path}: expected 4 values per line (t x y p), found {sorted(widths)}; "
                "pass columns='txyp' style option or add a header line"
            )
        try:
            a = np.array(rows, dtype=np.float64)
        except ValueError as exc:
            raise FormatError(f"{self.path}: non-numeric value in the first lines ({exc})") from exc

        def fits(t_col: int, p_col: int) -> bool:
            return bool(np.all(np.diff(a[:, t_col]) >= 0) and np.all(np.isin(a[:, p_col], (-1, 0, 1))))

        txyp, xypt = fits(0, 3), fits(3, 2)
        if txyp and not xypt:
            return list("txyp")
        if xypt and not txyp:
            return list("xypt")
        raise FormatError(
            f"{self.path}: cannot tell the column order from the first {len(rows)} lines "
            f"({'both' if txyp else 'neither'} of 't x y p' and 'x y p t' fit); pass columns='txyp' or 'xypt'"
        )

    def _read_chunks(self, start_us: int | None) -> Iterator[np.ndarray]:
        import pandas as pd

        sep = r"\s+" if self._sep == " " else self._sep
        usecols = [i for i, n in enumerate(self._names) if n in ("t", "x", "y", "p")]
        names = [self._names[i] for i in usecols]
        dtypes = {
            "t": np.float64 if self.time_unit != "us" else np.int64,
            "x": np.int64,
            "y": np.int64,
            "p": np.int64,
        }
        scale = _UNIT_SCALE[self.time_unit]
        line = self._skip
        try:
            reader = pd.read_csv(
                self.path,
                sep=sep,
                header=None,
                skiprows=self._skip,
                usecols=usecols,
                names=None,
                comment=None,
                chunksize=self.chunk_events,
                engine="c",
                dtype={i: dtypes[n] for i, n in zip(usecols, names, strict=True)},
                skip_blank_lines=True,
            )
            with reader:
                for frame in reader:
                    cols = {n: frame[i].to_numpy() for i, n in zip(usecols, names, strict=True)}
                    rec = np.rec.fromarrays([cols[k] for k in "txyp"], names="t,x,y,p")
                    yield as_events(rec, source=f"{self.path} (lines {line + 1}..)", time_scale=scale)
                    line += len(frame)
        except (ValueError, pd.errors.ParserError) as exc:
            if isinstance(exc, FormatError):
                raise
            raise FormatError(
                f"{self.path}: malformed event line after line {line} ({str(exc).splitlines()[0]}); "
                f"expected {len(self._names)} numeric values per line ({''.join(self._names)})"
            ) from exc


def _split(line: str, sep: str) -> list[str]:
    return line.split() if sep == " " else [tok.strip() for tok in line.split(sep)]


def _guess_separator(line: str) -> str:
    for sep in (",", ";", "\t"):
        if sep in line:
            return sep
    return " "


def _geometry(comments: list[str]) -> tuple[int, int] | None:
    for c in comments:
        m = re.search(r"geometry\s*[:=]?\s*(\d+)\s*[,x]\s*(\d+)", c, re.I)
        if m:
            return int(m.group(2)), int(m.group(1))
    return None
