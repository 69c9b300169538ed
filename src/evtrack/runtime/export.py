"""Write a network as runtime graphs: ``template``, ``search`` (and ``search_init`` when pruned) + ``graphs.json``.

Why a folder and a JSON file beside the graphs: a graph alone does not say how to track with it. The
JSON stores the network config (crop sizes, representation), the online-tracking options tuned for
the weights, the pruning settings, the state tensors' names and the precision, so an exported folder
is all :func:`evtrack.tracker.load_tracker` needs (no checkpoint, no torch model weights).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from evtrack.errors import FormatError, UserError
from evtrack.runtime.graphs import OUTPUTS, SearchGraph, TemplateGraph, graph_stack

GRAPHS_FORMAT = "evtrack-graphs"
GRAPHS_VERSION = 1
META_NAME = "graphs.json"
FORMATS = ("onnx", "openvino")
PRECISIONS = ("f32", "bf16", "f16")
OPSET = 17


@dataclass(frozen=True)
class ExportOptions:
    """How a network is written: graph ``format`` and the inference ``precision`` a runtime should use.

    float32 graphs are written either way; bf16/f16 are OpenVINO inference precision hints (its CPU
    plugin converts at compile time), so they need ``format="openvino"`` or the openvino runtime.
    """

    format: str = "onnx"
    precision: str = "f32"

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise UserError(f"export: format is {self.format!r}; expected one of {FORMATS}")
        if self.precision not in PRECISIONS:
            raise UserError(f"export: precision is {self.precision!r}; expected one of {PRECISIONS}")


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _export_onnx(module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str]) -> None:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about Python ints: shapes are static by design
        torch.onnx.export(module, args, str(path), opset_version=OPSET, dynamo=False,
                          input_names=inputs, output_names=outputs, do_constant_folding=True)


def _to_openvino(onnx_path: Path) -> str:
    """Convert one ONNX graph to OpenVINO IR (``.xml`` + ``.bin`` beside it); returns the xml's name."""
    from evtrack.runtime.runners import require

    ov = require("openvino")
    xml = onnx_path.with_suffix(".xml")
    ov.save_model(ov.convert_model(str(onnx_path)), str(xml), compress_to_fp16=False)
    onnx_path.unlink()
    return xml.name


def write_graphs(model: nn.Module, out_dir: str | Path, options: ExportOptions = ExportOptions(), *,
                 tracking: dict | None = None, source: str = "", replace: bool = True) -> Path:
    """Export ``model`` (BN folded, pruning applied or not; it is not modified) into ``out_dir``.

    The folder is built under a hidden name beside ``out_dir`` and renamed when complete; an existing
    export there is replaced (``replace=False``: kept, and this export discarded: the graph cache, where
    another process may have written the same graphs meanwhile and may be reading them), any other
    non-empty folder is refused.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or (any(out_dir.iterdir()) and not (out_dir / META_NAME).is_file())):
        raise UserError(f"export: {out_dir} exists and is not an evtrack export folder; expected a new or "
                        "empty folder name")
    if not out_dir.parent.is_dir():
        raise UserError(f"export: the parent folder of {out_dir} does not exist")
    net = copy.deepcopy(model).eval()
    if not getattr(net, "fused", False):
        net.fuse()
    cfg = net.cfg
    stack = graph_stack(net)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        z = torch.zeros(1, cfg.in_channels, cfg.template_size, cfg.template_size)
        x = torch.zeros(1, cfg.in_channels, cfg.search_size, cfg.search_size)
        with torch.no_grad():
            z_feat = net.embed_template(z)
        files = {"template": "template.onnx", "search": "search.onnx"}
        _export_onnx(TemplateGraph(net), (z,), tmp / files["template"], ["template"], ["z_feat"])
        state_names = stack.state_names() if stack is not None else []
        state: tuple = ()
        if stack is not None:
            files["search_init"] = "search_init.onnx"
            init = SearchGraph(net, stack, first=True)
            with torch.no_grad():
                state = tuple(t.clone() for t in init(z_feat, x)[len(OUTPUTS):])
            _export_onnx(init, (z_feat, x), tmp / files["search_init"], ["z_feat", "search"],
                         list(OUTPUTS) + [f"{n}_out" for n in state_names])
        _export_onnx(SearchGraph(net, stack, first=False), (z_feat, x, *state), tmp / files["search"],
                     ["z_feat", "search"] + state_names, list(OUTPUTS) + [f"{n}_out" for n in state_names])
        if options.format == "openvino":
            files = {k: _to_openvino(tmp / v) for k, v in files.items()}
        meta = {
            "format": GRAPHS_FORMAT, "version": GRAPHS_VERSION, "graph_format": options.format,
            "precision": options.precision, "opset": OPSET,
            "config": cfg.to_dict(), "tracking": dict(tracking or {}), "pruning": getattr(model, "pruning", None),
            "files": files, "state": state_names,
            "state_shapes": {n: list(t.shape) for n, t in zip(state_names, state, strict=True)},
            "source": source, "torch": torch.__version__,
        }
        (tmp / META_NAME).write_text(json.dumps(meta, indent=1) + "\n")
        if out_dir.exists() and replace:
            shutil.rmtree(out_dir)
        try:
            os.rename(tmp, out_dir)
        except OSError:
            if replace or not (out_dir / META_NAME).is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # the same graphs, written by another process
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def read_meta(folder: str | Path) -> dict:
    """The ``graphs.json`` of an exported folder, checked (FormatError naming the field otherwise)."""
    path = Path(folder) / META_NAME
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{folder}: no {META_NAME}; expected a folder written by `evtrack export`") from None
    except json.JSONDecodeError as exc:
        raise FormatError(f"{path}: not valid JSON ({exc})") from None
    if meta.get("format") != GRAPHS_FORMAT or meta.get("version") != GRAPHS_VERSION:
        raise FormatError(f"{path}: format {meta.get('format')!r} version {meta.get('version')!r}; expected "
                          f"{GRAPHS_FORMAT!r} version {GRAPHS_VERSION}")
    for key in ("config", "files", "state", "precision", "graph_format"):
        if key not in meta:
            raise FormatError(f"{path}: field {key!r} is missing")
    for name in meta["files"].values():
        if not (Path(folder) / name).is_file():
            raise FormatError(f"{path}: graph file {name} is missing from {folder}")
    return meta
