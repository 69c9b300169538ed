"""Write-then-rename, so a crash or an error never leaves a half-written output file behind."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


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


def write_text(path: str | Path, text: str) -> Path:
    """Write a small text file (JSON summaries, box lists) under a temporary name, then rename."""
    path = Path(path)
    tmp = temp_path_for(path)
    try:
        tmp.write_text(text)
        commit(tmp, path)
    except BaseException:
        discard(tmp)
        raise
    return path
