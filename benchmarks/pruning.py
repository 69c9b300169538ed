"""Token pruning benchmark: dense vs pruned side by side in one run.

Part 1 (latency, CPU): median time of the transformer block stack, the per-frame backbone (search
conv stages + block stack; the template is cached) and the whole tracker step, with the
configurations interleaved call by call so machine load affects them alike.
Part 2 (accuracy + ops): every configuration tracks the same test sequences; AUC / PR (official
OPE protocol), tokens kept, SOPs, MACs and energy per frame (counted on the first frames of each
sequence), and a PNG of AUC vs transformer SOPs.

    python benchmarks/pruning.py --checkpoint runs/tiny/last.pt --data data/synth --max-seqs 20
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from evtrack.pruning import apply_pruning, count_ops, reset_state


@dataclass(frozen=True)
class Config:
    name: str
    keep: str | None
    options: dict = field(default_factory=dict)


CONFIGS = {
    "dense": Config("dense", None),
    "ir-default": Config("ir-default", "default"),
    "ir-default-cumulative": Config("ir-default-cumulative", "default", {"mode": "cumulative"}),
    "ir-default-comp": Config("ir-default-comp", "default", {"compensate": True}),
    "ir-default-keep-template": Config("ir-default-keep-template", "default", {"prune_template": False}),
    "ir-default-official": Config("ir-default-official", "default", {"spatial": "official", "normalize": "softmax"}),
    "ir-default-spatial-only": Config("ir-default-spatial-only", "default", {"temporal_weight": 0.0}),
    "random-default": Config("random-default", "default", {"criterion": "random"}),
    "density-default": Config("density-default", "default", {"criterion": "density"}),
    "ir-0.8": Config("ir-0.8", "0.8"),
    "ir-0.65": Config("ir-0.65", "0.65"),
    "ir-0.5": Config("ir-0.5", "0.5"),
    "ir-0.35": Config("ir-0.35", "0.35"),
    "ir-0.5-comp": Config("ir-0.5-comp", "0.5", {"compensate": True}),
    "random-0.5": Config("random-0.5", "0.5", {"criterion": "random"}),
}
LATENCY_CONFIGS = ("dense", "ir-default", "random-default", "ir-0.5")
DEFAULT_SWEEP = (
    "dense", "ir-default", "random-default", "density-default", "ir-default-cumulative", "ir-default-comp",
    "ir-default-keep-template", "ir-0.8", "ir-0.5", "ir-0.35",
)


def configure(model, cfg: Config) -> None:
    apply_pruning(model, cfg.keep, **cfg.options)
    reset_state(model)


def load_net(checkpoint: str | None):
    from evtrack.tracker.checkpoint import load_model
    from evtrack.tracker.registry import create_model

    if checkpoint:
        return load_model(checkpoint), checkpoint
    torch.manual_seed(0)
    return create_model("tiny").eval(), "random init (tiny)"


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1e3


def first_frame_events(seqs):
    """Events and boxes of frames 0 and 1 of the first sequence (a realistic tracker step input)."""
    from evtrack.tracker.sampler import interval_edges

    seq = seqs[0]
    with seq.open() as reader:
        ts = seq.frame_times_us(reader)
        edges = interval_edges(np.asarray(ts[:3], dtype=np.int64))
        packets = list(reader.slices(edges))
        sensor = reader.info.sensor_size or seq.sensor_size
    return packets, edges, seq.boxes[0], sensor


def latency(model, seqs, names: list[str], repeats: int) -> dict[str, dict[str, float]]:
    """Interleaved medians (ms) of block stack, backbone and tracker step per configuration."""
    from evtrack.tracker.online import Tracker

    tracker = Tracker(model)  # folds BN once; configs swap the block stack of the same model
    packets, edges, box0, sensor = first_frame_events(seqs)
    tracker.init(packets[0], box0, sensor_size=tuple(sensor), t0_us=int(edges[0]), t1_us=int(edges[1]))
    z_feat = tracker._z_feat
    rng = torch.Generator().manual_seed(0)
    search = torch.rand(1, 3, model.cfg.search_size, model.cfg.search_size, generator=rng) * 60
    bb = model.backbone
    stacks = {}
    for n in names:
        configure(model, CONFIGS[n])
        stacks[n] = bb.block_stack
    with torch.inference_mode():
        x_feat = bb.embed(model._to_steps(search))
        tokens = torch.cat(
            [z_feat.flatten(3).transpose(2, 3) + bb.pos_template, x_feat.flatten(3).transpose(2, 3) + bb.pos_search], 2
        )

    def step():
        tracker.box = box0.copy()
        tracker.update(packets[1], t0_us=int(edges[1]), t1_us=int(edges[2]))

    parts = {
        "stack": lambda: bb.block_stack(tokens, bb.layout),
        "backbone": lambda: bb.forward_features(z_feat, bb.embed(model._to_steps(search))),
        "step": step,
    }
    out: dict[str, dict[str, float]] = {n: {} for n in names}
    with torch.inference_mode():
        for part, fn in parts.items():
            samples: dict[str, list[float]] = {n: [] for n in names}
            for r in range(repeats + 10):
                for n in names:
                    bb.block_stack = stacks[n]
                    t = time.perf_counter()
                    fn()
                    dt = time.perf_counter() - t
                    if r >= 10:  # warm-up
                        samples[n].append(dt)
            for n in names:
                out[n][part] = median_ms(samples[n])
                out[n][part + "_min"] = min(samples[n]) * 1e3
    return out


def track_all(model, seqs, max_frames: int | None, count_frames: int, desc: str):
    """Track every sequence; returns boxes per sequence and the op summary of the first frames."""
    from evtrack.tracker.online import Tracker
    from evtrack.tracker.sampler import interval_edges

    tracker = Tracker(model)
    results = {}
    counted = []
    t_busy = 0.0
    n_upd = 0
    for seq in seqs:
        with seq.open() as reader:
            ts = np.asarray(seq.frame_times_us(reader), dtype=np.int64)
            n = len(ts) if max_frames is None else min(len(ts), max_frames)
            edges = interval_edges(ts[:n])
            sensor = tuple(reader.info.sensor_size or seq.sensor_size)
            boxes = np.zeros((n, 4))
            for i, ev in enumerate(reader.slices(edges)):
                t0, t1 = int(edges[i]), int(edges[i + 1])
                if i == 0:
                    r = tracker.init(ev, seq.boxes[0], sensor_size=sensor, t0_us=t0, t1_us=t1)
                elif i <= count_frames:
                    with count_ops(model) as c:
                        r = tracker.update(ev, t0_us=t0, t1_us=t1)
                    if c.frames:
                        counted.append(c.summary())
                else:
                    r = tracker.update(ev, t0_us=t0, t1_us=t1)
                    t_busy += r.latency_s
                    n_upd += 1
                boxes[i] = r.box
        results[seq.name] = boxes
    ops = {}
    if counted:
        for key in ("sops", "macs", "transformer_sops", "tokens", "energy_mj"):
            ops[key] = float(np.mean([c[key] for c in counted]))
    ops["fps"] = n_upd / t_busy if t_busy > 0 else 0.0
    return results, ops


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=None, help="trained checkpoint (default: random-init tiny, latency only)")
    p.add_argument("--data", default="data/synth", help="synthetic dataset root (with test/)")
    p.add_argument("--max-seqs", type=int, default=20)
    p.add_argument("--max-frames", type=int, default=None, help="frames per sequence (default all)")
    p.add_argument("--count-frames", type=int, default=10, help="frames per sequence whose ops are counted")
    p.add_argument("--configs", default=",".join(DEFAULT_SWEEP), help=f"comma list of {sorted(CONFIGS)}")
    p.add_argument("--latency-configs", default=",".join(LATENCY_CONFIGS))
    p.add_argument("--repeats", type=int, default=100, help="timed calls per configuration and part")
    p.add_argument("--latency-models", default="sdtrack-tiny",
                   help="extra model configs timed with random weights (latency does not depend on them)")
    p.add_argument("--big-repeats", type=int, default=15, help="timed calls for the extra models")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--skip-accuracy", action="store_true")
    p.add_argument("--out-dir", default="benchmarks/results")
    args = p.parse_args(argv)
    for name in args.configs.split(",") + args.latency_configs.split(","):
        if name not in CONFIGS:
            p.error(f"unknown configuration {name!r}; choose from {sorted(CONFIGS)}")
    if args.threads < 1 or args.repeats < 1 or args.max_seqs < 1:
        p.error("--threads, --repeats and --max-seqs must be >= 1")
    torch.set_num_threads(args.threads)

    from evtrack.datasets import load_dataset

    seqs = load_dataset("synthetic", args.data, "test")[: args.max_seqs]
    model, ckpt_name = load_net(args.checkpoint)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report: dict = {
        "checkpoint": ckpt_name, "threads": args.threads, "torch": torch.__version__,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(), "python": sys.version.split()[0],
    }

    lat_names = args.latency_configs.split(",")
    report["latency_ms"] = {}
    targets = [(ckpt_name, model, args.repeats)]
    for name in filter(None, args.latency_models.split(",")):
        from evtrack.tracker.registry import create_model

        torch.manual_seed(0)
        targets.append((f"{name} (random init)", create_model(name).eval(), args.big_repeats))
    for label, net, repeats in targets:
        print(f"\n# latency: {label}, {args.threads} thread(s), {repeats} interleaved calls each, median ms")
        lat = latency(net, seqs, lat_names, repeats)
        base = lat[lat_names[0]]
        print("(median / min ms; speed-up = dense time / config time, from the medians and from the minima)")
        print("| config | block stack ms | x dense | backbone ms | x dense | tracker step ms | x dense |")
        print("|---|---|---|---|---|---|---|")
        for n in lat_names:
            r = lat[n]
            cells = []
            for part in ("stack", "backbone", "step"):
                cells.append(f"{r[part]:.2f} / {r[part + '_min']:.2f}")
                cells.append(f"{base[part] / r[part]:.2f} / {base[part + '_min'] / r[part + '_min']:.2f}")
            print(f"| {n} | " + " | ".join(cells) + " |")
        report["latency_ms"][label] = lat
        apply_pruning(net, None)

    if not args.skip_accuracy:
        from evtrack.metrics import evaluate_ope

        names = args.configs.split(",")
        rows = {}
        for n in names:
            configure(model, CONFIGS[n])
            t = time.perf_counter()
            boxes, ops = track_all(model, seqs, args.max_frames, args.count_frames, n)
            gt = {s.name: s.boxes[: len(boxes[s.name])] for s in seqs}
            absent = {s.name: s.absent[: len(boxes[s.name])] for s in seqs}
            ope = evaluate_ope(boxes, gt, absent)
            rows[n] = {"auc": ope.auc, "pr": ope.pr, **ops, "wall_s": time.perf_counter() - t}
            print(f"  {n}: AUC {ope.auc:.2f} PR {ope.pr:.2f} ({rows[n]['wall_s']:.0f} s)", flush=True)
        d = rows.get("dense", next(iter(rows.values())))
        print(f"\n# accuracy and ops: {len(seqs)} test sequences, {ckpt_name}")
        print("| config | AUC | PR | tokens/frame | transformer SOPs (M) | vs dense | total SOPs (M) | MACs (M) | "
              "energy (mJ) | tracker fps |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for n, r in rows.items():
            rel = r.get("transformer_sops", 0) / d["transformer_sops"] if d.get("transformer_sops") else float("nan")
            print(f"| {n} | {r['auc']:.2f} | {r['pr']:.2f} | {r.get('tokens', 0):.0f} | "
                  f"{r.get('transformer_sops', 0) / 1e6:.2f} | {rel:.2f} | {r.get('sops', 0) / 1e6:.2f} | "
                  f"{r.get('macs', 0) / 1e6:.2f} | {r.get('energy_mj', 0):.3f} | {r['fps']:.1f} |")
        report["accuracy"] = rows
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt

            fig, ax = plt.subplots(figsize=(6, 4))
            for n, r in rows.items():
                ax.scatter(r.get("transformer_sops", 0) / 1e6, r["auc"], label=n)
            ax.set_xlabel("transformer SOPs per frame (M)")
            ax.set_ylabel("AUC (%)")
            ax.set_title(f"Token pruning: accuracy vs SOPs ({len(seqs)} seqs)")
            ax.legend(fontsize=6)
            fig.tight_layout()
            png = out_dir / "pruning_auc_vs_sops.png"
            fig.savefig(png, dpi=120)
            print(f"plot: {png}")
        except Exception as exc:  # plotting must not lose the measurements
            print(f"plot failed: {exc}")
    js = out_dir / "pruning.json"
    tmp = js.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=1))
    tmp.replace(js)
    print(f"results: {js}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
