"""Prophesee EVT 2.0 / EVT 3.0 (``.raw``) and DAT (``.dat``) through expelliarmus, in chunks.

We parse the ASCII header ourselves (encoding, geometry) because expelliarmus hangs on a file that
ends inside its header, and we drive expelliarmus' chunk reader directly so that a decoding
failure (it returns a status code and prints to stderr) becomes a FormatError instead of a
silently shortened stream. EVT files have no event count or footer, so truncation is only
detectable when the file ends inside a data word; then the valid prefix is read with a warning.
"""

from __future__ import annotations

import os
import re
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from evtrack.errors import FormatError, UserError
from evtrack.io.events import EVENT_DTYPE, canonical_view
from evtrack.io.reader import EventReader, EventRepairWarning, RecordingInfo

# Data word sizes in bytes: EVT2 words are 32 bit, EVT3 16 bit, DAT events 64 bit.
_WORD_BYTES = {"evt2": 4, "evt3": 2, "dat": 8}

# Sensor geometry by HAL plugin name, for headers that do not state it (both real samples).
_PLUGIN_GEOMETRY = (
    ("gen41", (720, 1280)),
    ("imx636", (720, 1280)),
    ("gen4", (720, 1280)),
    ("genx320", (320, 320)),
    ("imx8", (320, 320)),
    ("gen31", (480, 640)),
    ("gen3", (480, 640)),
)


def parse_header(data: bytes, path: Path | str = "<bytes>") -> tuple[list[str], int]:
    """The ``%`` header lines (without ``%``) and the byte offset where binary data starts."""
    lines, pos = [], 0
    while pos < len(data) and data[pos : pos + 1] == b"%":
        end = data.find(b"\n", pos)
        if end < 0:
            raise FormatError(
                f"{path}: file ends inside its '%' header at byte {len(data)} (truncated; expected a "
                "newline-terminated header line)"
            )
        lines.append(data[pos + 1 : end].decode("ascii", "replace").strip())
        if lines[-1].lower().startswith("end"):  # '% end' closes newer EVT3 headers
            pos = end + 1
            break
        pos = end + 1
    return lines, pos


def sniff_prophesee(head: bytes, suffix: str, path: Path | str = "<bytes>") -> str | None:
    """'evt2' / 'evt3' / 'dat' from a header, or None when it is not a Prophesee header."""
    if len(head) < 4096:  # the whole file is in `head`: a header cut short means truncation
        parse_header(head, path)
    text = head.decode("ascii", "replace").lower()
    m = re.search(r"^% *evt *([23])\.0", text, re.M) or re.search(r"^% *format *evt([23])", text, re.M)
    if m:
        return f"evt{m.group(1)}"
    if "data file containing cd events" in text or (
        suffix == ".dat" and re.search(r"^% *version", text, re.M)
    ):
        return "dat"
    if suffix == ".raw" and re.search(r"^% *(plugin_name|integrator_name|serial_number)", text, re.M):
        raise FormatError(
            f"{path}: Prophesee RAW header without an encoding line ('% evt 2.0', '% evt 3.0' or '% format ...'); "
            "pass fmt='evt2' or fmt='evt3'"
        )
    return None


def _geometry(lines: list[str]) -> tuple[int, int] | None:
    joined = "\n".join(lines).lower()
    m = re.search(r"geometry *:? *(\d+) *[x,] *(\d+)", joined)
    if m:
        return int(m.group(2)), int(m.group(1))
    m_h, m_w = re.search(r"height *[=: ] *(\d+)", joined), re.search(r"width *[=: ] *(\d+)", joined)
    if m_h and m_w:
        return int(m_h.group(1)), int(m_w.group(1))
    m = re.search(r"plugin_name *(\S+)", joined)
    if m:
        for key, size in _PLUGIN_GEOMETRY:
            if key in m.group(1):
                return size
    return None


class PropheseeReader(EventReader):
    """EVT2 / EVT3 / DAT via ``expelliarmus`` with bounded chunks."""

    def __init__(
        self,
        path: str | Path,
        *,
        encoding: str,
        sensor_size: tuple[int, int] | None = None,
        buff_size: int = 1 << 20,
        **options,
    ) -> None:
        super().__init__(path, **options)
        encoding = encoding.lower()
        if encoding not in _WORD_BYTES:
            raise UserError(f"Prophesee encoding must be evt2, evt3 or dat, got {encoding!r}")
        self.encoding = encoding
        self._buff_size = int(buff_size)
        size = self.path.stat().st_size
        with open(self.path, "rb") as fh:
            head = fh.read(min(size, 1 << 16))
        lines, data_start = parse_header(head, self.path)
        if data_start == 0 and head[:1] == b"%":
            raise FormatError(f"{self.path}: header longer than 64 KiB; not a Prophesee file?")
        if encoding == "dat":
            data_start += 2  # event type and event size bytes follow the DAT header
            if size < data_start:
                raise FormatError(f"{self.path}: DAT file ends before its event-type/size bytes (truncated)")
        if sensor_size is None:
            sensor_size = _geometry(lines)
        self._data_start = data_start
        self._tail = (size - data_start) % _WORD_BYTES[encoding]
        self._info = RecordingInfo(
            path=self.path,
            format=encoding,
            sensor_size=sensor_size,
            n_events=None,
            streams=("events",),
            metadata={"header": lines, "data_offset": data_start},
        )

    def _expelliarmus_path(self, stack: list) -> Path:
        """expelliarmus insists on a .raw / .dat suffix; link the file under one if needed."""
        want = ".dat" if self.encoding == "dat" else ".raw"
        if self.path.suffix.lower() == want:
            return self.path
        tmpdir = tempfile.TemporaryDirectory(prefix="evtrack-")
        stack.append(tmpdir)
        link = Path(tmpdir.name) / f"events{want}"
        os.symlink(self.path.resolve(), link)
        return link

    def _read_chunks(self, start_us: int | None) -> Iterator[np.ndarray]:
        from expelliarmus import Wizard
        from expelliarmus.wizard.wizard_wrapper import c_read_chunk_wrapper

        if self._tail:
            warnings.warn(
                f"{self.path}: file ends with {self._tail} byte(s) of a partial "
                f"{_WORD_BYTES[self.encoding]}-byte {self.encoding.upper()} word (truncated); "
                "reading the valid prefix only",
                EventRepairWarning,
                stacklevel=3,
            )
        keep: list = []
        fpath = self._expelliarmus_path(keep)
        wizard = Wizard(
            encoding=self.encoding, fpath=fpath, chunk_size=self.chunk_events, buff_size=self._buff_size
        )
        cargo = wizard.cargo
        cargo.events_info.is_chunk = 1
        cargo.events_info.is_time_window = 0
        n_read = 0
        while cargo.events_info.finished == 0:
            cargo.events_info.dim = self.chunk_events
            arr, cargo, status = c_read_chunk_wrapper(
                encoding=self.encoding, fpath=fpath, cargo=cargo, buff_size=self._buff_size
            )
            if status != 0:
                raise FormatError(
                    f"{self.path}: undecodable {self.encoding.upper()} data after {n_read} events, near byte "
                    f"{int(cargo.events_info.start_byte)} (corrupt file; expelliarmus status {status})"
                )
            if arr is None:
                break
            ev = canonical_view(arr)  # expelliarmus' records are EVENT_DTYPE's bytes: no copy
            if ev is None:
                ev = np.zeros(len(arr), dtype=EVENT_DTYPE)
                for name in ("t", "x", "y", "p"):
                    ev[name] = arr[name]
            n_read += len(ev)
            yield ev
        keep.clear()
