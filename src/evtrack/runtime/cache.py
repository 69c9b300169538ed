"""On-disk cache of exported graphs, so ``--runtime onnx|openvino`` needs no separate export step.

The key is the checkpoint's content hash plus everything that changes the graph (pruning settings,
format, precision, the graph version, torch's version and the source that defines the graphs); the first use exports (a few seconds),
later uses load. Location: ``$EVTRACK_CACHE`` or ``~/.cache/evtrack``, under ``graphs/``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from torch import nn

from evtrack.runtime.export import GRAPHS_VERSION, META_NAME, ExportOptions, write_graphs

CACHE_ENV = "EVTRACK_CACHE"


def cache_root() -> Path:
    """``$EVTRACK_CACHE`` when set, else ``~/.cache/evtrack``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "evtrack"


def code_hash() -> str:
    """Hash of the source that defines the graphs (network, pruning, token seam, graph modules): an
    evtrack update or a local edit that changes them must not reuse graphs exported before it."""
    import evtrack

    root = Path(evtrack.__file__).parent
    files = sorted([*(root / "network").glob("*.py"), *(root / "pruning").glob("*.py"), root / "tokens.py",
                    root / "runtime" / "graphs.py", root / "runtime" / "export.py"])
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()


def cache_key(checkpoint_sha256: str, pruning: dict | None, options: ExportOptions) -> str:
    """Hex key of a graph folder; the scorer ``backend`` is left out (the graph has its own scorer)."""
    pruning = {k: v for k, v in pruning.items() if k != "backend"} if pruning else None
    what = {"checkpoint": checkpoint_sha256, "pruning": pruning, "format": options.format,
            "precision": options.precision, "graphs": GRAPHS_VERSION, "torch": torch.__version__,
            "code": code_hash()}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:24]


def cached_graphs(model: nn.Module, checkpoint_sha256: str, options: ExportOptions, *,
                  tracking: dict | None = None, source: str = "") -> Path:
    """The folder of ``model``'s graphs in the cache, exported on first use."""
    folder = cache_root() / "graphs" / cache_key(checkpoint_sha256, getattr(model, "pruning", None), options)
    if not (folder / META_NAME).is_file():
        folder.parent.mkdir(parents=True, exist_ok=True)
        write_graphs(model, folder, options, tracking=tracking, source=source, replace=False)
    return folder
