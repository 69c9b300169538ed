"""The pruned search graph stays small: batched scoring equals the torch scorer, and the graph adds a
bounded number of nodes to the dense one (BENCHMARKS.md, issue 18: per-map scoring, sorting and
element-wise scatters made the pruned graph slower than the dense one)."""

from __future__ import annotations

import collections
import itertools

import pytest
import torch

from evtrack.pruning.scores import SPATIAL_FORMS, ScoreOptions, ir_scores
from evtrack.runtime.export import write_graphs
from evtrack.runtime.graphs import _Segments, graph_scores
from evtrack.tokens import TokenLayout
from evtrack.tracker.online import load_network, shipped_checkpoint

LAYOUT = TokenLayout.template_search(8, 8, 16, 16)  # tiny's maps: 64 + 256 tokens


@pytest.mark.parametrize(("spatial", "normalize", "weight", "steps"),
                         [(s, n, w, t) for s, n, w, t in itertools.product(SPATIAL_FORMS, ("minmax", "softmax"),
                                                                          (1.0, 0.5, 0.0), (1, 2))
                          if w == 1.0 or (n == "minmax" and t == 1)])
def test_batched_scores_equal_the_torch_scorer(spatial, normalize, weight, steps):
    opts = ScoreOptions(spatial=spatial, normalize=normalize, temporal_weight=weight)
    g = torch.Generator().manual_seed(0)
    maps = LAYOUT.maps
    seg = _Segments(maps)
    for prev in (None, torch.rand(1, LAYOUT.n_tokens, generator=g)):
        x = (torch.rand(steps, 1, LAYOUT.n_tokens, 64, generator=g) < 0.2).float() * torch.rand(64, generator=g)
        ref, ref_last = ir_scores(x, maps, prev, opts)
        got, last = graph_scores(x, seg, prev, opts)
        torch.testing.assert_close(got, ref, atol=2e-5, rtol=1e-5)
        torch.testing.assert_close(last, ref_last)


def _ops(path) -> collections.Counter:
    import onnx

    return collections.Counter(n.op_type for n in onnx.load(str(path)).graph.node)


def _optimized_nodes(path, tmp_path) -> int:
    import onnx
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.optimized_model_filepath = str(tmp_path / "opt.onnx")
    so.log_severity_level = 3
    ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return len(onnx.load(so.optimized_model_filepath).graph.node)


def test_pruned_search_graph_adds_few_nodes(tmp_path):
    """Per pruned block: ~20 scoring ops, one TopK per map, one Gather, one row ScatterND for the tokens
    and one per key/value state. Measured 2026-12-07: the default schedule's graph had 1,577 nodes
    (683 after ONNX Runtime's optimisation) against the dense graph's 967 (354); now 1,266 (523)."""
    counts, optimized = {}, {}
    for keep in (None, "default"):
        model, _ = load_network(shipped_checkpoint(), keep)
        folder = write_graphs(model, tmp_path / (keep or "dense"))
        counts[keep] = _ops(folder / "search.onnx")
        optimized[keep] = _optimized_nodes(folder / "search.onnx", tmp_path)
    pruned, dense = counts["default"], counts[None]
    blocks = 4
    assert pruned["TopK"] == 2 * blocks  # one per map, no sort of the kept indices
    assert pruned["ScatterND"] == 3 * blocks and not pruned["ScatterElements"]
    assert sum(pruned.values()) - sum(dense.values()) <= 80 * blocks, (sum(pruned.values()), sum(dense.values()))
    assert optimized["default"] - optimized[None] <= 45 * blocks, optimized
