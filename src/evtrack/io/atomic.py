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


@contextmanager
def folder_lock(folder: str | Path, what: str) -> Iterator[Path]:
    """Hold an exclusive lock on an output folder while a resumable command fills it.

    Why: two runs of one command on one folder (a second one started to add workers while the first
    still ran) convert the same sequence twice, and the slower one failed on its rename with an
    OSError. The lock is the kernel's (``flock``), so it goes with the process: a run that crashed or
    was killed leaves nothing to clean up. The lock file stays, empty, so that a folder made twice
    with one seed is byte-identical. Where ``fcntl`` does not exist (Windows) nothing is locked.
    """
    folder = Path(folder)
    path = folder / ".evtrack.lock"
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield path
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"{folder}: another {what} run is writing to this folder; wait for it to finish "
                            "or stop it, then run the command again to resume") from None
        yield path
    finally:
        os.close(fd)  # releases the lock


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
