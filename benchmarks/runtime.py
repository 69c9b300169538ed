"""Inference runtimes benchmark (issue 18): torch eager vs ONNX Runtime vs OpenVINO, dense and pruned, one run.

For every runtime x keep schedule (dense, default, official) x thread count it measures

- network ms: median time of one tracked frame's network call (``runner.search``: cached template
  features + search crop -> score/offset/size; the pruned graphs carry their state from call to call
  as in tracking) on the search crops of the first test sequence;
- end-to-end frames/s: ``track_sequence`` over the test sequences (events read from disk, rendered,
  network, decode), frames 1..N-1 over their wall time, summed over the sequences;
- accuracy: AUC / PR (official OPE protocol) on the same sequences.

Configurations are interleaved call by call (network ms) and sequence by sequence (frames/s), so
machine load drifts affect them alike; speed-ups are ratios from the same run. Every runtime is
float32 except ``openvino:bf16`` (OpenVINO's bf16 inference precision, on CPUs that have it). The goals
of issue 18 are checked at the end, by default on the float32 runtimes only.

    python benchmarks/runtime.py --data data/synth --threads 1 2 --json out/runtime.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch

from evtrack.io import atomic

KEEPS = {"dense": None, "default": "default", "official": "official"}


def load_sequences(root: str, split: str, max_sequences: int | None, max_frames: int | None):
    from evtrack.datasets import load_dataset

    seqs = load_dataset("synthetic", root, split=split)[:max_sequences]
    if max_frames:
        from dataclasses import replace

        seqs = [replace(s, boxes=s.boxes[:max_frames], absent=s.absent[:max_frames],
                        frame_timestamps_us=None if s.frame_timestamps_us is None else s.frame_timestamps_us[:max_frames])
                for s in seqs]
    return seqs


def make_tracker(checkpoint, runtime: str, keep: str, threads: int):
    """``runtime`` is "torch", "onnx", "openvino" or "openvino:bf16" (a precision after the colon)."""
    from evtrack.tracker.online import load_tracker

    name, _, precision = runtime.partition(":")
    tr = load_tracker(checkpoint, keep=KEEPS[keep], n_threads=threads, runtime=name, precision=precision or None)
    tr.warm_up()
    return tr


def search_inputs(tracker, seq) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The (template features, search crop) of every network call while ``tracker`` tracks ``seq``."""
    calls = []
    search = tracker.runner.search

    def record(z_feat, x):
        calls.append((z_feat, x))
        return search(z_feat, x)

    tracker.runner.search = record
    try:
        track(tracker, seq)
    finally:
        tracker.runner.search = search
    return calls


def track(tracker, seq):
    from evtrack.tracker.online import track_sequence

    with seq.open() as reader:
        return track_sequence(tracker, reader, seq.init_box, seq.frame_times_us(reader))


def network_ms(trackers: dict, inputs, repeats: int) -> dict[str, float]:
    """Median ms of one ``runner.search`` per configuration, interleaved call by call."""
    times: dict[str, list[float]] = {k: [] for k in trackers}
    for tr in trackers.values():
        tr.runner.reset()
    for i in range(repeats):
        z_feat, x = inputs[i % len(inputs)]
        for name, tr in trackers.items():
            t = time.perf_counter()
            tr.runner.search(z_feat, x)
            times[name].append(time.perf_counter() - t)
    return {k: 1000 * statistics.median(v) for k, v in times.items()}


def end_to_end(trackers: dict, seqs) -> dict[str, dict]:
    """Frames/s and AUC per configuration; every configuration tracks sequence i before any tracks i+1."""
    from evtrack.metrics import evaluate_ope

    frames = dict.fromkeys(trackers, 0)
    wall = dict.fromkeys(trackers, 0.0)
    boxes: dict[str, dict] = {k: {} for k in trackers}
    for seq in seqs:
        for name, tr in trackers.items():
            res = track(tr, seq)
            frames[name] += len(res.boxes) - 1
            wall[name] += res.wall_s
            boxes[name][seq.name] = res.boxes
    gt = {s.name: s.boxes for s in seqs}
    absent = {s.name: s.absent for s in seqs}
    out = {}
    for name in trackers:
        ope = evaluate_ope(boxes[name], gt, absent)
        out[name] = {"fps": frames[name] / wall[name], "auc": ope.auc, "pr": ope.pr, "frames": frames[name]}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=None, help="tracker checkpoint (default: the shipped one)")
    ap.add_argument("--data", required=True, help="generated dataset root (synthetic layout)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--runtimes", nargs="+", default=["torch", "onnx", "openvino", "openvino:bf16"],
                    help="runtime[:precision]; only float32 ones count for the goals unless --goal-any-precision")
    ap.add_argument("--goal-any-precision", action="store_true",
                    help="let reduced-precision runtimes compete for the 'best runtime' goals")
    ap.add_argument("--keeps", nargs="+", default=list(KEEPS), choices=list(KEEPS))
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--max-sequences", type=int, default=None)
    ap.add_argument("--max-frames", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=200, help="network calls timed per configuration")
    ap.add_argument("--json", default=None, help="write all numbers here")
    args = ap.parse_args(argv)

    seqs = load_sequences(args.data, args.split, args.max_sequences, args.max_frames)
    load = os.getloadavg()[0]
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        trackers = {(rt, keep): make_tracker(args.checkpoint, rt, keep, threads)
                    for rt in args.runtimes for keep in args.keeps}
        inputs = search_inputs(next(iter(trackers.values())), seqs[0])
        net = network_ms(trackers, inputs, args.repeats)
        e2e = end_to_end(trackers, seqs)
        for (rt, keep) in trackers:
            rows.append({"runtime": rt, "keep": keep, "threads": threads, "network_ms": net[(rt, keep)],
                         **e2e[(rt, keep)]})
    load_after = os.getloadavg()[0]

    def row(rt, keep, threads):
        return next((r for r in rows if (r["runtime"], r["keep"], r["threads"]) == (rt, keep, threads)), None)

    print(f"{len(seqs)} sequences of {args.data}/{args.split}; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores; load average {load:.2f} before, {load_after:.2f} after")
    print("| runtime | keep | threads | network ms (median) | vs torch dense | end-to-end frames/s | "
          "vs torch dense | AUC | PR |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        base = row("torch", "dense", r["threads"])
        net_x = f"{base['network_ms'] / r['network_ms']:.2f}x" if base else "-"
        fps_x = f"{r['fps'] / base['fps']:.2f}x" if base else "-"
        print(f"| {r['runtime']} | {r['keep']} | {r['threads']} | {r['network_ms']:.2f} | {net_x} | "
              f"{r['fps']:.1f} | {fps_x} | {r['auc']:.2f} | {r['pr']:.2f} |")
    goals = []
    torch_dense = row("torch", "dense", 1)
    candidates = [r for r in rows if r["threads"] == 1 and r["keep"] == "default" and r["runtime"] != "torch"
                  and (args.goal_any_precision or ":" not in r["runtime"])]
    if torch_dense and candidates:
        best = max(candidates, key=lambda r: r["fps"])
        dense_rt = row(best["runtime"], "dense", 1)
        goals = [
            (f"best runtime ({best['runtime']}), default pruning, 1 thread: >= 200 frames/s end to end",
             best["fps"] >= 200, f"{best['fps']:.1f}"),
            ("... and >= 2.0x torch-eager dense end to end", best["fps"] / torch_dense["fps"] >= 2.0,
             f"{best['fps'] / torch_dense['fps']:.2f}x"),
            ("... AUC within 0.5 of torch (dense)", abs(best["auc"] - torch_dense["auc"]) <= 0.5,
             f"{best['auc'] - torch_dense['auc']:+.2f}"),
        ]
        if dense_rt:
            goals.append((f"pruned (default) vs dense network time inside {best['runtime']}: >= 1.3x",
                          dense_rt["network_ms"] / best["network_ms"] >= 1.3,
                          f"{dense_rt['network_ms'] / best['network_ms']:.2f}x"))
    for text, ok, value in goals:
        print(f"goal: {text}: {value} -> {'met' if ok else 'NOT met'}")
    if args.json:
        atomic.write_text(args.json, json.dumps({"rows": rows, "load_before": load, "load_after": load_after,
                                                 "sequences": [s.name for s in seqs], "argv": sys.argv[1:],
                                                 "goals": [[t, bool(ok), v] for t, ok, v in goals]}, indent=1))
    return 0


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    sys.exit(main())
