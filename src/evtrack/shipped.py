"""The checkpoints shipped inside the package (``evtrack/data/<name>.pt``) and the one resolver from a
``--checkpoint`` / ``--backbone`` value to a file, used by ``load_tracker`` and every command.

Torch-free on purpose: the CLI lists the shipped names in its help without importing torch.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from evtrack.errors import UserError

DEFAULT_SHIPPED = "tiny"  # what every command tracks with when no checkpoint is given
SHIPPED_CHECKPOINT = f"{DEFAULT_SHIPPED}.pt"


def shipped_dir() -> Path:
    """Folder of the shipped checkpoints (tests monkeypatch this to point it elsewhere)."""
    return Path(str(resources.files("evtrack") / "data"))


def shipped_checkpoints() -> dict[str, Path]:
    """Name -> path of every shipped checkpoint (``evtrack/data/*.pt``), the default (tiny) first, then
    by name; a checkpoint added to that folder is picked up here (and by ``--backbone``) by itself."""
    folder = shipped_dir()
    found = {p.stem: p for p in folder.glob("*.pt") if p.is_file()} if folder.is_dir() else {}
    return dict(sorted(found.items(), key=lambda kv: (kv[0] != DEFAULT_SHIPPED, kv[0])))


def shipped_names() -> str:
    """The shipped names as one comma-separated string, for help texts and errors ('none' when none)."""
    return ", ".join(shipped_checkpoints()) or "none"


def shipped_checkpoint(name: str = DEFAULT_SHIPPED) -> Path:
    """Path of the shipped checkpoint ``name`` (``tiny``, ``spikformer``, ...; ``.pt`` may be given);
    UserError naming the shipped ones when it is not there."""
    stem = name[:-3] if name.endswith(".pt") else name
    path = shipped_checkpoints().get(stem)
    if path is None:
        if stem == DEFAULT_SHIPPED:
            raise UserError(f"shipped checkpoint {shipped_dir() / SHIPPED_CHECKPOINT} is missing from this "
                            "installation; pass --checkpoint")
        raise UserError(f"{name}: not a shipped checkpoint; the shipped ones are {shipped_names()}")
    return path


def resolve_checkpoint(name_or_path: str | Path | None, option: str = "checkpoint", *,
                       folders: bool = True) -> Path:
    """The checkpoint a ``--checkpoint`` value names: None -> the shipped tiny.pt; an existing file or
    folder (an ``evtrack export`` folder) -> itself; else a shipped name (``tiny``, ``spikformer``, ...,
    with or without ``.pt``) -> ``evtrack/data/<name>.pt``. Anything else is a UserError that starts with
    ``option`` and the value and lists the shipped names; so is a folder with ``folders=False`` (commands
    that read the weights themselves: tune, compare, prune, model-info, train --init-from)."""
    if name_or_path is None:
        return shipped_checkpoint()
    path = Path(name_or_path)
    if path.exists():
        if path.is_dir() and not folders:
            raise UserError(f"{option} {name_or_path}: a folder (an `evtrack export` folder holds graphs, not "
                            f"weights); expected a checkpoint file or a shipped name ({shipped_names()})")
        return path
    text = str(name_or_path)
    stem = text[:-3] if text.endswith(".pt") else text
    shipped = shipped_checkpoints()
    if stem in shipped:
        return shipped[stem]
    expected = ("a checkpoint file, an exported folder, or one of the shipped checkpoints" if folders else
                "a checkpoint file or one of the shipped checkpoints")
    raise UserError(f"{option} {text}: no such file or folder; expected {expected}: {shipped_names()}")


def is_shipped_name(name_or_path: str | Path) -> bool:
    """True when ``name_or_path`` is taken as a shipped name (no file or folder of that name exists)."""
    text = str(name_or_path)
    return not Path(text).exists() and (text[:-3] if text.endswith(".pt") else text) in shipped_checkpoints()
