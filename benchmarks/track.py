"""Tracking accuracy and speed of the spiking tracker vs two non-learned baselines (same run).

    python benchmarks/track.py --data data/synth --split test [--checkpoint CKPT] [--keep K]

Runs the tracker (shipped ``tiny`` checkpoint by default), a stationary box (first GT box forever)
and an event-centroid tracker over every sequence of the split through the evaluation loop of
``evtrack benchmark`` (``evtrack.benchmark_runner``), scores them with the official OPE protocol
(AUC / PR / NPR, percent) and reports end-to-end tracked frames/s (events read, box out, batch 1:
the benchmark's ``fps_wall``). Also times the bare network forward (BN folded) for reference.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time

import numpy as np
import torch

from evtrack.io import atomic


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="dataset root (FE108 layout)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--checkpoint", default=None, help="default: the shipped tiny.pt")
    ap.add_argument("--keep", default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-sequences", type=int, default=None)
    ap.add_argument("--warmup", type=int, default=10, help="warm-up updates before timing")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args(argv)
    if args.threads < 1:
        ap.error("--threads must be >= 1")

    from evtrack.benchmark_runner import BenchmarkConfig, run_benchmark
    from evtrack.datasets import load_dataset
    from evtrack.metrics.bootstrap import score_interval
    from evtrack.tracker.baselines import CentroidTracker, StationaryTracker
    from evtrack.tracker.online import load_tracker, track_sequence

    torch.set_num_threads(args.threads)
    seqs = load_dataset("synthetic", args.data, args.split)
    if args.max_sequences:
        seqs = seqs[: args.max_sequences]
    tracker = load_tracker(args.checkpoint, keep=args.keep)

    # warm-up: JIT kernels and allocator, on the first sequence
    with seqs[0].open() as reader:
        track_sequence(tracker, reader, seqs[0].init_box, seqs[0].frame_times_us(reader)[: args.warmup + 1])

    makers = {
        "spiking tracker": lambda: tracker,  # loaded and warmed up once; init resets it per sequence
        "stationary": StationaryTracker,
        "event centroid": CentroidTracker,
    }
    reports = {}
    for name, make in makers.items():  # the evaluation loop of `evtrack benchmark`, in this process
        reports[name] = run_benchmark(seqs, make, BenchmarkConfig(progress=False, plot=False, label=name))
        print(f"  {name}: done", file=sys.stderr)

    # bare forward latency (network only)
    model = tracker.model
    cfg = model.cfg
    x = torch.rand(1, cfg.in_channels, cfg.search_size, cfg.search_size)
    zf = tracker.template_features
    with torch.inference_mode():
        for _ in range(5):
            model(None, x, z_feat=zf)
        fwd = []
        for _ in range(50):
            t = time.perf_counter()
            model(None, x, z_feat=zf)
            fwd.append(time.perf_counter() - t)

    rows = []
    for name, report in reports.items():
        ope = report.ope
        lat = np.concatenate([r.latency_s[1:] for r in report.runs.values()])  # updates, not the init
        rows.append({
            "tracker": name, "auc": ope.auc, "pr": ope.pr, "npr": ope.npr,
            "auc_ci95": score_interval(ope, "auc"), "pr_ci95": score_interval(ope, "pr"),
            "fps": report.stats["fps_wall"],
            "latency_ms_median": 1000 * float(np.median(lat)) if lat.size else float("nan"),
        })
    base = rows[2]
    print(f"\n{len(seqs)} sequences, {sum(len(s) for s in seqs)} frames, split {args.split!r}; "
          f"{platform.machine()}, torch {torch.__version__}, {args.threads} thread(s), keep={args.keep or '1.0'}")
    print("(95% CI: percentile bootstrap over the sequences)")
    print("| tracker | AUC | AUC 95% CI | PR | PR 95% CI | NPR | frames/s (end to end) | median update ms | "
          "AUC / centroid AUC |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['tracker']} | {r['auc']:.1f} | {r['auc_ci95'][0]:.1f}-{r['auc_ci95'][1]:.1f} | {r['pr']:.1f} | "
              f"{r['pr_ci95'][0]:.1f}-{r['pr_ci95'][1]:.1f} | {r['npr']:.1f} | {r['fps']:.1f} | "
              f"{r['latency_ms_median']:.2f} | {r['auc'] / base['auc']:.2f} |")
    fwd_ms = 1000 * float(np.median(fwd))
    print(f"\nnetwork forward alone (batch 1, BN folded): median {fwd_ms:.1f} ms, min {1000 * min(fwd):.1f} ms")
    if args.json:
        atomic.write_text(args.json, json.dumps({"rows": rows, "forward_ms_median": fwd_ms, "n_sequences": len(seqs)},
                                                indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
