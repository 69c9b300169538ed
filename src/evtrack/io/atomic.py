"""Write-then-rename, so a crash or an error never leaves a half-written output file behind.

Every writer in evtrack goes through these helpers: the temporary file is created by the writer
itself (``open``, ``torch.save``, h5py, OpenCV), never by ``mkstemp``, so the result gets the
mode a plain ``open`` would give it (0666 less the umask) instead of mkstemp's private 0600.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from evtrack.errors import UserError


def temp_path_for(path: str | Path) -> Path:
    """A fresh hidden name in the same directory (same filesystem, so ``os.replace`` is atomic).

    The original suffix is kept because some libraries (dv-processing) check it.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path}: output directory {path.parent} does not exist")
    return path.with_name(f".{path.stem}.tmp-{os.getpid()}-{secrets.token_hex(4)}{path.suffix}")


def commit(tmp: Path, final: str | Path) -> None:
    """Move the finished temporary file onto its final name."""
    os.replace(tmp, final)


def discard(tmp: Path) -> None:
    """Remove a temporary file after a failure (ignoring a file that was never created)."""
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass


@contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """``with replacing(out) as tmp: write(tmp)``: ``out`` appears only if the block succeeds."""
    path = Path(path)
    tmp = temp_path_for(path)
    try:
        yield tmp
        commit(tmp, path)
    except BaseException:
        discard(tmp)
        raise


def write_text(path: str | Path, text: str) -> Path:
    """Write a small text file (JSON summaries, box lists) under a temporary name, then rename."""
    with replacing(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def check_writable(path: str | Path, what: str) -> Path:
    """Fail before the work starts when ``path`` cannot be written (``what`` names the option).

    Why: tracking a long recording and only then finding that the video cannot be written wastes
    the whole run.
    """
    path = Path(path)
    parent = path.parent
    if path.is_dir():
        raise UserError(f"{what} {path}: is a directory, expected a file name")
    if not parent.is_dir():
        raise UserError(f"{what} {path}: directory {parent} does not exist (create it first)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{what} {path}: directory {parent} is not writable")
    return path
