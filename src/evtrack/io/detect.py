"""``open_events``: pick a reader from the file's first bytes, falling back to its extension."""

from __future__ import annotations

from pathlib import Path

from evtrack.errors import FormatError, UserError
from evtrack.io.reader import EventReader

#: Format names accepted by ``open_events(fmt=...)``.
FORMATS = ("hdf5", "aedat4", "evt2", "evt3", "dat", "text", "npy", "npz")

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_TEXT_SUFFIXES = (".txt", ".csv", ".tsv")
# Extensions of binary formats: a file named so without the format's magic bytes is not read as
# something else (a text file renamed .aedat4 would otherwise fail with a confusing text error).
_BINARY_SUFFIXES = {".aedat4": "AEDAT4", ".h5": "HDF5", ".hdf5": "HDF5", ".npy": "NumPy .npy", ".npz": "NumPy .npz"}


def sniff_format(path: str | Path) -> str:
    """The format name of ``path`` from its content (magic bytes, Prophesee header) or extension."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a directory, expected an event file")
    with open(path, "rb") as fh:
        head = fh.read(4096)
    suffix = path.suffix.lower()
    if not head:
        raise FormatError(f"{path}: empty file (0 bytes); expected event data")
    if head.startswith(b"#!AER-DAT4"):
        return "aedat4"
    if head.startswith(b"#!AER-DAT"):
        version = head[9:12].decode("ascii", "replace")
        raise FormatError(
            f"{path}: AEDAT {version} (jAER) file; only AEDAT 4 is supported. Convert it with DV first"
        )
    if head.startswith(_HDF5_MAGIC):
        return "hdf5"
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith(b"PK\x03\x04") and suffix == ".npz":
        return "npz"
    if head.startswith(b"%"):
        from evtrack.io.prophesee import sniff_prophesee

        fmt = sniff_prophesee(head, suffix, path)
        if fmt is not None:
            return fmt
        if suffix in _TEXT_SUFFIXES:
            return "text"  # Metavision CSV files may start with a '%geometry' comment
    if suffix in (".raw", ".dat"):
        if suffix == ".dat" and head[:1] != b"%":
            return "dat"
        raise FormatError(
            f"{path}: a {suffix} file without a Prophesee '% evt 2.0' / '% evt 3.0' / '% format' header "
            f"(first bytes {head[:16]!r}); pass fmt='evt2', 'evt3' or 'dat' if you know the encoding"
        )
    if suffix in _BINARY_SUFFIXES:
        name = _BINARY_SUFFIXES[suffix]
        raise FormatError(
            f"{path}: the extension says {name} but the content is not {name} (first bytes {head[:16]!r}); "
            f"pass --format (fmt=...) to read it as another format, or rename it"
        )
    if suffix in _TEXT_SUFFIXES or _looks_like_text(head):
        return "text"
    raise FormatError(
        f"{path}: unknown event file format (first bytes {head[:16]!r}, extension {suffix or 'none'!r}); "
        f"supported: {', '.join(FORMATS)}"
    )


def _looks_like_text(head: bytes) -> bool:
    if not head:
        return False
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        return False
    return all(c.isdigit() or c in " \t,;.-+eE\r\n#%" or c.isalpha() for c in text)


def open_events(
    path: str | Path, *, fmt: str | None = None, sensor_size: tuple[int, int] | None = None, **options
) -> EventReader:
    """Open an event recording of any supported format as a bounded-memory :class:`EventReader`.

    Args:
        path: the recording.
        fmt: force a format (one of ``FORMATS``) instead of detecting it.
        sensor_size: ``(height, width)``; overrides what the file says (or supplies it when the
            file does not store it). Events outside it are dropped with a warning.
        options: reader options (``chunk_events``, ``on_out_of_bounds``; text: ``columns``,
            ``time_unit``, ``delimiter``; npy/npz: ``time_unit``; ...).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if fmt is None:
        fmt = sniff_format(path)
    fmt = fmt.lower()
    if sensor_size is not None:
        if len(sensor_size) != 2 or min(int(v) for v in sensor_size) <= 0:
            raise UserError(f"sensor_size must be (height, width) with positive values, got {sensor_size!r}")
        sensor_size = (int(sensor_size[0]), int(sensor_size[1]))
    cls, extra = _reader_class(fmt, path)
    try:
        return cls(path, sensor_size=sensor_size, **extra, **options)
    except TypeError as exc:
        if "unexpected keyword argument" not in str(exc):
            raise
        raise UserError(f"{path}: {exc} (not an option of the {fmt} reader)") from exc


def _reader_class(fmt: str, path: Path) -> tuple[type[EventReader], dict]:
    """The reader class for a format name, imported lazily (dv/expelliarmus/pandas are slow to load)."""
    if fmt in ("hdf5", "h5", "dsec", "dsec-hdf5"):
        from evtrack.io.hdf5 import HDF5Reader

        return HDF5Reader, {}
    if fmt == "aedat4":
        from evtrack.io.aedat4 import AEDAT4Reader

        return AEDAT4Reader, {}
    if fmt in ("evt2", "evt3", "dat"):
        from evtrack.io.prophesee import PropheseeReader

        return PropheseeReader, {"encoding": fmt}
    if fmt in ("text", "txt", "csv"):
        from evtrack.io.text import TextReader

        return TextReader, {}
    if fmt in ("npy", "npz"):
        from evtrack.io.numpy_files import NumpyReader

        return NumpyReader, {}
    raise UserError(f"unknown format {fmt!r} for {path}; expected one of {', '.join(FORMATS)}")
