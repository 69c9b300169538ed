"""Inference runtimes: the network exported as graphs (ONNX Runtime, OpenVINO) behind one runner interface.

``graphs`` (export-ready modules, pruning state as explicit inputs/outputs), ``export`` (writing a folder
of graphs + ``graphs.json``), ``cache`` (graphs exported on first use), ``runners`` (torch, onnx, openvino).
"""

from evtrack.runtime.runners import RUNTIMES

__all__ = ["RUNTIMES"]
