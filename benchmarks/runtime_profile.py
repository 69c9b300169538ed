"""Where an exported search graph spends its time: ONNX Runtime's profiler, 1 thread (issue 18).

Exports the shipped network dense and with ``--keep`` pruning into a temporary folder, runs each search
graph (the pruned one with its state carried from frame to frame) on the shipped sample's search crops
with ``SessionOptions.enable_profiling``, and prints node time per model part (conv stages, block stack,
scoring, top-k/gather/scatter, key/value scatter, head, the rest) and per op type, plus node counts in
the file and after ``ORT_ENABLE_ALL``. Profiled times include the profiler's own ~1 us per node; compare
parts within one run.

    python benchmarks/runtime_profile.py --repeats 3
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
from pathlib import Path

import torch

SELECT_OPS = {"TopK", "Gather", "GatherElements", "ScatterElements", "ScatterND", "Concat", "Expand",
              "Unsqueeze", "Split", "Add", "Reshape"}


def part(name: str, op: str) -> str:
    """The model part of an (optimised) ONNX node, from the module path torch.onnx puts in its name."""
    if "/head/" in name:  # first: the head's own ConvBNs have "/conv/" in their names too
        return "head"
    if "/conv/" in name or op in ("ReorderInput", "ReorderOutput"):
        return "conv stages (incl. layout reorders)"
    if "block_stack/blocks." in name:
        return "key/value scatter (in block)" if op.startswith("Scatter") else "block stack"
    if name.startswith("gemm_"):
        return "block stack"  # reshapes ONNX Runtime adds around the blocks' Gemms
    if "block_stack" in name:
        return "top-k/gather/scatter" if op in SELECT_OPS else "scoring"
    return "tokens/other"


def sample_calls() -> list[tuple[torch.Tensor, torch.Tensor]]:
    from evtrack.commands.demo import load_sample
    from evtrack.tracker.online import load_tracker, track_sequence

    seq, tr, calls = load_sample(), load_tracker(n_threads=1), []
    search = tr.runner.search

    def record(z, x):
        calls.append((z.clone(), x.clone()))
        return search(z, x)

    tr.runner.search = record
    with seq.open() as reader:
        track_sequence(tr, reader, seq.init_box, seq.frame_timestamps_us)
    return calls


def session(path: Path, profile_prefix: str | None = None, optimized: Path | None = None):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    if profile_prefix:
        so.enable_profiling, so.profile_file_prefix = True, profile_prefix
    if optimized:
        so.optimized_model_filepath = str(optimized)
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def profile(folder: Path, calls, repeats: int, tmp: Path) -> dict:
    import onnx

    meta = json.loads((folder / "graphs.json").read_text())
    session(folder / "search.onnx", optimized=tmp / "opt.onnx")
    n_opt = len(onnx.load(str(tmp / "opt.onnx")).graph.node)
    s = session(folder / "search.onnx", profile_prefix=str(tmp / "prof"))
    init = session(folder / "search_init.onnx") if "search_init" in meta["files"] else None
    names, state, runs = meta["state"], None, 0
    for _ in range(repeats):
        for z, x in calls:
            feeds = {"z_feat": z.numpy(), "search": x.numpy()}
            if names:
                if state is None:
                    state = init.run(None, feeds)[3:]
                feeds.update(zip(names, state, strict=True))
                state = s.run(None, feeds)[3:]
            else:
                s.run(None, feeds)
            runs += 1
    events = json.loads(Path(s.end_profiling()).read_text())
    by_part, by_op, nodes = collections.Counter(), collections.Counter(), {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            name, op = e["name"][: -len("_kernel_time")], e["args"]["op_name"]
            by_part[part(name, op)] += e["dur"] / runs / 1000
            by_op[op] += e["dur"] / runs / 1000
            nodes[name] = part(name, op)
    return {"nodes_file": len(onnx.load(str(folder / "search.onnx")).graph.node), "nodes_optimized": n_opt,
            "ms_per_part": dict(by_part), "nodes_per_part": dict(collections.Counter(nodes.values())),
            "ms_per_op": dict(by_op.most_common(15)), "node_sum_ms": sum(by_op.values())}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", default="default", help="pruning schedule profiled against dense")
    ap.add_argument("--repeats", type=int, default=3, help="passes over the sample's crops")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    from evtrack.runtime.export import write_graphs
    from evtrack.tracker.online import load_network, shipped_checkpoint

    calls = sample_calls()
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for keep in (None, args.keep):
            model, _ = load_network(shipped_checkpoint(), keep)
            label = keep or "dense"
            folder = write_graphs(model, Path(tmp) / label)
            out[label] = profile(folder, calls, args.repeats, Path(tmp))
    print(f"load average {os.getloadavg()[0]:.2f}; {len(calls)} crops x {args.repeats}, ONNX Runtime, 1 thread")
    for label, r in out.items():
        print(f"\n{label}: {r['nodes_file']} nodes in the file, {r['nodes_optimized']} after ORT_ENABLE_ALL; "
              f"node time {r['node_sum_ms']:.2f} ms/call")
        print("| part | nodes | ms/call |\n|---|---|---|")
        for p, ms in sorted(r["ms_per_part"].items(), key=lambda kv: -kv[1]):
            print(f"| {p} | {r['nodes_per_part'][p]} | {ms:.3f} |")
        print("ops: " + ", ".join(f"{k} {v:.3f}" for k, v in r["ms_per_op"].items()))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
