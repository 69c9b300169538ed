"""Network runners: the one thing that differs between inference runtimes inside the online tracker.

A runner has ``template(z) -> z_feat``, ``search(z_feat, x) -> {"score", "offset", "size"}`` and
``reset()`` (a new sequence: forget per-sequence state). The tracker's crops, decoding, motion prior
and deferred template are one code path for every runtime (evtrack.tracker.online.Tracker).
Graph runners keep the pruned network's state (scorer memory, key/value caches) as arrays they feed
back into the next call; the torch runner leaves it inside the model, where op counting can see it.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

import numpy as np
import torch
from torch import nn

from evtrack.errors import UserError
from evtrack.runtime.graphs import OUTPUTS

RUNTIMES = ("torch", "onnx", "openvino")
AUTO = "auto"  # the default of the tracking commands: see resolve_runtime
# runtime -> (module imported, pip requirement that provides it)
PACKAGES = {"onnx": ("onnxruntime", "onnxruntime==1.32.0"), "openvino": ("openvino", "openvino==2026.4.1"),
            "onnx-export": ("onnx", "onnx==1.23.2")}


def require(module: str):
    """Import ``module`` or raise a UserError that says how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        reqs = [r for m, r in PACKAGES.values() if m == module] or [module]
        how = (f"`pip install 'evtrack[runtimes]'` (or `pip install {reqs[0]}`)" if module == "openvino"
               else f"`pip install {reqs[0]}` (a dependency of evtrack that is missing here)")
        raise UserError(f"the {module} package is not installed; install it with {how}") from None


def resolve_runtime(runtime: str, count_ops: bool = False, checkpoint: str | Path | None = None) -> str:
    """The runtime ``"auto"`` stands for: ONNX Runtime when it (and onnx, which the export needs) is installed
    and no op counting is asked for (the op counter hooks the torch model), else torch; an export folder
    (``checkpoint`` a directory) has no torch weights, so for it op counting does not count. Measured: ONNX
    Runtime runs the shipped network 1.5-1.9x faster than torch eager on every machine of BENCHMARKS.md, and
    faster than OpenVINO with pruning. Any other name is returned unchanged."""
    if runtime != AUTO:
        return runtime
    if count_ops and not (checkpoint is not None and Path(checkpoint).is_dir()):
        return "torch"
    found = all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnx"))
    return "onnx" if found else "torch"


class TorchRunner:
    """The network in torch eager mode (training's code path; op counting hooks this model)."""

    name = "torch"

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def template(self, z: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():  # not inference_mode: the features must stay usable under no_grad
            return self.model.embed_template(z)

    def search(self, z_feat: torch.Tensor, x: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.inference_mode():
            return self.model(None, x, z_feat=z_feat)

    def reset(self) -> None:
        if getattr(self.model, "pruning", None):
            from evtrack.pruning import reset_state

            reset_state(self.model)


class GraphRunner:
    """Runs the graphs of an exported folder (:mod:`evtrack.runtime.export`); subclasses load and call them."""

    name = "graph"

    def __init__(self, folder: str | Path, meta: dict, n_threads: int = 1, precision: str | None = None) -> None:
        if n_threads < 1:
            raise UserError(f"n_threads must be >= 1, got {n_threads}")
        self.folder = Path(folder)
        self.meta = meta
        self.precision = precision or meta.get("precision", "f32")
        self.state_names: list[str] = list(meta["state"])
        self._graphs = {k: self._load(self.folder / v, n_threads) for k, v in meta["files"].items()}
        self._state: list[np.ndarray] | None = None

    def _load(self, path: Path, n_threads: int):
        raise NotImplementedError

    def _run(self, graph, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError

    def template(self, z: torch.Tensor) -> torch.Tensor:
        out = self._run(self._graphs["template"], {"template": z.numpy()})
        return torch.from_numpy(out[0])

    def search(self, z_feat: torch.Tensor, x: torch.Tensor) -> dict[str, torch.Tensor]:
        feeds = {"z_feat": z_feat.numpy(), "search": x.numpy()}
        if self.state_names and self._state is None:
            out = self._run(self._graphs["search_init"], feeds)
        else:
            feeds.update(zip(self.state_names, self._state or [], strict=True))
            out = self._run(self._graphs["search"], feeds)
        if self.state_names:
            self._state = out[len(OUTPUTS):]
        return {k: torch.from_numpy(v) for k, v in zip(OUTPUTS, out, strict=False)}

    def reset(self) -> None:
        self._state = None


class OnnxRunner(GraphRunner):
    """ONNX Runtime, CPU execution provider, ``n_threads`` intra-op threads and no inter-op pool."""

    name = "onnx"

    def _load(self, path: Path, n_threads: int):
        if path.suffix != ".onnx":
            raise UserError(f"{path}: the onnx runtime needs .onnx graphs; this folder was exported with "
                            f"--format {self.meta['graph_format']}; use --runtime openvino")
        if self.precision != "f32":
            raise UserError(f"{self.folder}: precision {self.precision} needs --runtime openvino; "
                            "the onnx runtime runs float32 only")
        ort = require("onnxruntime")
        so = ort.SessionOptions()
        so.intra_op_num_threads = n_threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])

    def _run(self, graph, feeds):
        return graph.run(None, feeds)


class OpenVinoRunner(GraphRunner):
    """OpenVINO CPU plugin: ``n_threads`` inference threads, one stream, latency hint; the precision
    hint is ``f32`` unless the export (or ``precision``) asks for bf16/f16."""

    name = "openvino"

    def _load(self, path: Path, n_threads: int):
        ov = require("openvino")
        core = ov.Core()
        config = {"INFERENCE_NUM_THREADS": n_threads, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY",
                  "INFERENCE_PRECISION_HINT": self.precision}
        compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
        return compiled.create_infer_request(), len(compiled.outputs)

    def _run(self, graph, feeds):
        request, n_out = graph
        request.infer(feeds)
        return [np.array(request.get_output_tensor(i).data) for i in range(n_out)]


def graph_runner(runtime: str, folder: str | Path, meta: dict, n_threads: int = 1,
                 precision: str | None = None) -> GraphRunner:
    """The runner of ``runtime`` ("onnx" or "openvino") over an exported folder."""
    cls = {"onnx": OnnxRunner, "openvino": OpenVinoRunner}.get(runtime)
    if cls is None:
        raise UserError(f"runtime {runtime!r} does not run exported graphs; expected 'onnx' or 'openvino'")
    return cls(folder, meta, n_threads, precision)
