"""Token pruning benchmark (TP-Spikformer on the spiking tracker): dense vs pruned side by side, one run.

Part 1, latency (CPU, ``--threads`` torch threads for every configuration): median time of the
transformer block stack alone, of the per-frame backbone (search conv stages + block stack; the
template features are cached as in tracking) and of the whole tracker step (event packet in, box
out), on a real search crop of the first test sequence (``Tracker.search_input``). Configurations are interleaved call by call,
so machine load affects them alike; the speed-ups are ratios from the same run.

Part 2, accuracy and ops: every configuration tracks the same test sequences (at most
``--max-sequences`` sequences and ``--max-frames`` frames each) through the evaluation loop of
``evtrack benchmark`` (``evtrack.benchmark_runner``, a fresh ``Tracker`` per sequence); AUC / PR / NPR (official OPE protocol),
tokens kept, SOPs (total and transformer blocks), MACs and energy per frame, counted on every
``--count-every``-th network call of each sequence (``Tracker(count_ops=True)``; averages weighted
by sequence length, as the benchmark reports them), and a PNG of AUC vs transformer SOPs.

Configurations: dense; a keep-ratio sweep with the IR criterion (default settings); at the default
schedule (0.92x the official SDT-V3 schedule, ~53% of the transformer tokens for ``tiny``; ``ir-official``
is the official schedule, ~57%) the IR criterion vs random vs event-density-only
selection, the spatial term forms (paper's local 3x3, official code's, map-level "global" and
"deviation"), the skipped tokens' keys/values (cached from an earlier frame: the default; from the
current frame: full-K/V; none, attention over the kept tokens only: ``ir-default-plain``, the
official code), N/K compensation, per-block re-selection (official code) vs cumulative early
stopping, template kept whole; plus optionally a fine-tuned checkpoint (``--finetuned CKPT``,
evaluated with the pruning settings stored in it).

At the end the issue's goals at the default schedule are checked against the measured numbers
(transformer SOPs >= 40% lower, backbone >= 1.3x faster, AUC within 1.0 point of dense).

    python benchmarks/pruning.py --data data/synth --max-sequences 4 --max-frames 40      # quick look
    python benchmarks/pruning.py --checkpoint CKPT --data data/synth --finetuned FT_CKPT   # full split
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from evtrack.io import atomic
from evtrack.pruning import apply_checkpoint_pruning, apply_pruning, reset_state


@dataclass(frozen=True)
class Config:
    name: str
    keep: str | None
    options: dict = field(default_factory=dict)
    group: str = "variant"  # "sweep": the IR keep-ratio sweep (a line in the plot)


CONFIGS = {c.name: c for c in [
    Config("dense", None, group="sweep"),
    Config("ir-0.8", "0.8", group="sweep"),
    Config("ir-0.65", "0.65", group="sweep"),
    Config("ir-default", "default", group="sweep"),
    Config("ir-official", "official", group="sweep"),
    Config("ir-0.5", "0.5", group="sweep"),
    Config("ir-0.35", "0.35", group="sweep"),
    Config("random-default", "default", {"criterion": "random"}),
    Config("density-default", "default", {"criterion": "density"}),
    Config("ir-default-comp", "default", {"compensate": True}),
    Config("ir-default-cumulative", "default", {"mode": "cumulative"}),
    Config("ir-default-official", "default", {"spatial": "official", "normalize": "softmax"}),
    Config("ir-default-spatial-only", "default", {"temporal_weight": 0.0}),
    Config("ir-default-keep-template", "default", {"prune_template": False}),
    Config("ir-default-paper", "default", {"spatial": "paper"}),  # the paper's local 3x3 spatial term
    Config("ir-default-global", "default", {"spatial": "global"}),
    Config("ir-default-deviation", "default", {"spatial": "deviation"}),
    Config("ir-default-full-kv", "default", {"full_kv": True}),
    Config("ir-default-plain", "default", {"cached_kv": False}),  # the official code: attention over kept tokens
    Config("ir-0.8-plain", "0.8", {"cached_kv": False}),
    Config("ir-0.65-plain", "0.65", {"cached_kv": False}),
    Config("ir-default-paper-comp", "default", {"spatial": "paper", "compensate": True}),
    Config("ir-0.5-comp", "0.5", {"compensate": True}),
    Config("random-0.5", "0.5", {"criterion": "random"}),
]}
DEFAULT_SWEEP = (
    "dense", "ir-0.8", "ir-0.65", "ir-official", "ir-default", "ir-0.5", "ir-0.35", "random-default", "density-default",
    "ir-default-comp", "ir-default-cumulative", "ir-default-official", "ir-default-keep-template",
    "ir-default-paper", "ir-default-global", "ir-default-deviation", "ir-default-full-kv", "ir-default-plain",
)
LATENCY_CONFIGS = ("dense", "ir-0.8", "ir-0.65", "ir-default", "ir-0.5", "ir-0.35", "random-default", "ir-default-plain")
EXTRA_MODEL_CONFIGS = ("dense", "ir-default", "ir-0.5")
FINETUNED = "finetuned"
PRUNED_CKPT = "pruned-checkpoint"  # `evtrack prune` output with its own tuned online options, weights untouched


def configure(model, cfg: Config) -> None:
    apply_pruning(model, cfg.keep, **cfg.options)
    reset_state(model)


def load_net(checkpoint: str | None):
    """``(model, path, stored pruning settings, stored tracking options)``: every configuration tracks
    with its checkpoint's own online options (lost-target threshold, motion prior), as ``load_tracker``
    does."""
    from evtrack.network.checkpoint import load_checkpoint, model_from_payload
    from evtrack.tracker.online import shipped_checkpoint

    path = Path(checkpoint) if checkpoint else shipped_checkpoint()
    payload = load_checkpoint(path)
    model = model_from_payload(payload, source=str(path))
    return model, str(path), payload.get("pruning"), payload.get("tracking", {})


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1e3


def step_inputs(seqs):
    """Events, edges, box and sensor size of frames 0..2 of the first sequence (a real tracker step)."""
    from evtrack.datasets.sequence import interval_edges

    seq = next(iter(seqs.values()))
    with seq.open() as reader:
        ts = seq.frame_times_us(reader)
        edges = interval_edges(np.asarray(ts[:3], dtype=np.int64))
        packets = list(reader.slices(edges))
        sensor = reader.info.sensor_size or seq.sensor_size
    return packets, edges, seq.boxes[0], tuple(sensor)


def latency(model, seqs, names: list[str], repeats: int, warmup: int = 10) -> dict[str, dict[str, float]]:
    """Interleaved median / min times (ms) of block stack, backbone and tracker step per configuration."""
    from evtrack.tracker.online import Tracker

    tracker = Tracker(model)  # folds BN once; the configurations swap the block stack of the same model
    packets, edges, box0, sensor = step_inputs(seqs)
    tracker.init(packets[0], box0, sensor_size=sensor, t0_us=int(edges[0]), t1_us=int(edges[1]))
    z_feat = tracker.template_features
    search, _ = tracker.search_input(packets[1], t0_us=int(edges[1]), t1_us=int(edges[2]))  # the real crop
    bb = model.backbone
    stacks = {}
    for n in names:
        configure(model, CONFIGS[n])
        stacks[n] = model.token_stack()
    with torch.inference_mode():
        tokens = bb.tokens(z_feat, model.embed_search(search))

    def step():
        tracker.box = box0.copy()
        tracker.update(packets[1], t0_us=int(edges[1]), t1_us=int(edges[2]))

    parts = {
        "stack": lambda: model.token_stack()(tokens, model.token_layout),
        "backbone": lambda: bb.forward_features(z_feat, model.embed_search(search)),
        "step": step,
    }
    out: dict[str, dict[str, float]] = {n: {} for n in names}
    with torch.inference_mode():
        for part, fn in parts.items():
            samples: dict[str, list[float]] = {n: [] for n in names}
            for r in range(repeats + warmup):
                for n in names:
                    model.set_token_stack(stacks[n])
                    if part == "step":
                        reset_state(model)
                    t = time.perf_counter()
                    fn()
                    dt = time.perf_counter() - t
                    if r >= warmup:
                        samples[n].append(dt)
            for n in names:
                out[n][part] = median_ms(samples[n])
                out[n][part + "_min"] = min(samples[n]) * 1e3
    return out


def track_all(model, seqs: dict, max_frames: int | None, count_every: int, options: dict):
    """Track and score the sequences through the evaluation loop of ``evtrack benchmark``: a fresh
    op-counting tracker over the configured ``model`` per sequence; returns the runner's report (OPE
    scores, frame-weighted op averages)."""
    from functools import partial

    from evtrack.benchmark_runner import BenchmarkConfig, run_benchmark
    from evtrack.tracker.online import Tracker, online_options

    # as load_tracker: a pruned network uses the checkpoint's min_score_pruned when it has one
    opts = online_options(options, bool(getattr(model, "pruning", None)))
    make = partial(Tracker, model, count_ops=True, count_every=count_every, **opts)
    return run_benchmark(seqs, make, BenchmarkConfig(progress=False, plot=False, max_frames=max_frames))


def print_latency(label: str, lat: dict, names: list[str], threads: int, repeats: int) -> None:
    print(f"\n### Latency: {label}, {threads} thread(s), {repeats} interleaved calls each")
    print("median / min ms; x dense = dense time / config time (from the medians / from the minima)\n")
    print("| config | block stack ms | x dense | backbone ms | x dense | tracker step ms | x dense |")
    print("|---|---|---|---|---|---|---|")
    base = lat[names[0]]
    for n in names:
        r = lat[n]
        cells = []
        for part in ("stack", "backbone", "step"):
            cells.append(f"{r[part]:.2f} / {r[part + '_min']:.2f}")
            cells.append(f"{base[part] / r[part]:.2f} / {base[part + '_min'] / r[part + '_min']:.2f}")
        print(f"| {n} | " + " | ".join(cells) + " |")


def print_accuracy(rows: dict, lat: dict | None, n_seqs: int, n_frames: int, ckpt: str, split: str = "test") -> None:
    d = rows.get("dense")
    print(f"\n### Accuracy and ops: {n_seqs} {split} sequences, {n_frames} frames, {ckpt}")
    print("SOPs/MACs/energy per tracked frame (network call); tokens = tokens processed by all transformer "
          "blocks per frame (% of dense); backbone speed-up from the latency table\n")
    print("AUC gap = dense minus config, with its 95% paired bootstrap interval over the sequences\n")
    print("| config | AUC | AUC gap (95% CI) | PR | NPR | tokens (%) | transformer SOPs M | vs dense | total SOPs M | "
          "MACs M | energy mJ | backbone x dense |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n, r in rows.items():
        rel = r["transformer_sops"] / d["transformer_sops"] if d and d.get("transformer_sops") else float("nan")
        speed = ""
        if lat and n in lat and "dense" in lat:
            speed = f"{lat['dense']['backbone'] / lat[n]['backbone']:.2f}"
        gap = ""
        if d and "auc_gap_ci95" in r:
            lo, hi = r["auc_gap_ci95"]
            gap = f"{d['auc'] - r['auc']:.2f} ({lo:.2f}, {hi:.2f})"
        print(f"| {n} | {r['auc']:.2f} | {gap} | {r['pr']:.2f} | {r['npr']:.2f} | {r['tokens_kept']:.0f} "
              f"({100 * r['tokens_kept_frac']:.0f}%) | {r['transformer_sops'] / 1e6:.2f} | {rel:.2f} | "
              f"{r['sops'] / 1e6:.2f} | {r['macs'] / 1e6:.2f} | {r['energy_mj']:.4f} | {speed} |")


def plot(rows: dict, png: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from evtrack.metrics.plots import save_png

    fig, ax = plt.subplots(figsize=(7, 4.5))
    sweep = [(r["transformer_sops"] / 1e6, r["auc"], n) for n, r in rows.items()
             if n in CONFIGS and CONFIGS[n].group == "sweep"]
    sweep.sort()
    if sweep:
        ax.plot([s[0] for s in sweep], [s[1] for s in sweep], "-o", color="tab:blue", label="IR keep-ratio sweep")
        for x, y, n in sweep:
            ax.annotate(n, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    markers = iter("s^vD<>pP*Xh")
    for n, r in rows.items():
        if n in CONFIGS and CONFIGS[n].group == "sweep":
            continue
        ax.scatter(r["transformer_sops"] / 1e6, r["auc"], marker=next(markers, "o"), label=n, zorder=3)
    ax.set_xlabel("transformer SOPs per frame (M)")
    ax.set_ylabel("AUC (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    save_png(fig, png)


def check_goals(rows: dict, lat: dict | None) -> list[str]:
    """The issue's targets at the default schedule, with the measured values (no judgement hidden)."""
    out = []
    d, p = rows.get("dense"), rows.get("ir-default")
    if d and p:
        cut = 1 - p["transformer_sops"] / d["transformer_sops"]
        out.append(f"transformer SOPs down {100 * cut:.1f}% (goal >= 40%): {'PASS' if cut >= 0.40 else 'FAIL'}")
        gap = d["auc"] - p["auc"]
        ci = ""
        if "auc_gap_ci95" in p:
            ci = f" (95% paired bootstrap interval {p['auc_gap_ci95'][0]:.2f} to {p['auc_gap_ci95'][1]:.2f})"
        out.append(f"AUC dense {d['auc']:.2f} vs ir-default {p['auc']:.2f}, gap {gap:.2f} points{ci} without "
                   f"retraining (goal <= 1.0): {'PASS' if gap <= 1.0 else 'FAIL'}")
        best = max((n for n in rows if n.startswith("ir-default")), key=lambda n: rows[n]["auc"])
        out.append(f"best training-free variant at the default schedule: {best} (AUC {rows[best]['auc']:.2f})")
        if PRUNED_CKPT in rows:
            q = rows[PRUNED_CKPT]
            gap = d["auc"] - q["auc"]
            out.append(f"pruned checkpoint with its own online options (tuned on the train split, no retraining): "
                       f"AUC {q['auc']:.2f}, gap {gap:.2f} points, tokens {100 * q['tokens_kept_frac']:.0f}% "
                       f"(goal <= 1.0): {'PASS' if gap <= 1.0 else 'FAIL'}")
        if FINETUNED in rows:
            f = rows[FINETUNED]
            out.append(f"fine-tuned: AUC {f['auc']:.2f} (gap {d['auc'] - f['auc']:.2f}), tokens "
                       f"{100 * f['tokens_kept_frac']:.0f}%")
    if lat and "dense" in lat and "ir-default" in lat:
        sp = lat["dense"]["backbone"] / lat["ir-default"]["backbone"]
        sp_min = lat["dense"]["backbone_min"] / lat["ir-default"]["backbone_min"]
        out.append(f"backbone {sp:.2f}x faster than dense (medians; {sp_min:.2f}x from minima) (goal >= 1.3x): "
                   f"{'PASS' if sp >= 1.3 else 'FAIL'}")
        # Amdahl: only the block stack shrinks with the tokens; the conv stages and embedding do not
        frac = rows["ir-default"]["tokens_kept_frac"] if rows.get("ir-default") else None
        if frac is not None:
            bb, st = lat["dense"]["backbone"], lat["dense"]["stack"]
            bound = bb / (bb - st * (1 - frac))
            out.append(f"upper bound if the block stack shrank exactly with the tokens ({100 * frac:.0f}% kept; "
                       f"block stack {st:.2f} of {bb:.2f} ms dense backbone): {bound:.2f}x")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=None, help="trained tracker checkpoint (default: the shipped tiny.pt)")
    p.add_argument("--pruned", default=None, metavar="CKPT",
                   help="also evaluate this `evtrack prune` output (its stored pruning and online options, e.g. a "
                   "min_score re-tuned with evtrack tune: pruning shifts the peak scores)")
    p.add_argument("--finetuned", default=None, metavar="CKPT",
                   help="also evaluate this pruned fine-tuned checkpoint (its stored pruning settings)")
    p.add_argument("--data", default=["data/synth"], nargs="+",
                   help="generated dataset root(s) (FE108 layout, with test/); several are scored as one set")
    p.add_argument("--split", default="test")
    p.add_argument("--max-sequences", "--max-seqs", type=int, default=None,
                   help="first N sequences of each root (default all)")
    p.add_argument("--max-frames", type=int, default=None, help="first N frames of each sequence (default all)")
    p.add_argument("--count-every", type=int, default=4, help="count ops on every N-th network call")
    p.add_argument("--configs", default=",".join(DEFAULT_SWEEP), help=f"comma list of {list(CONFIGS)}")
    p.add_argument("--latency-configs", default=",".join(LATENCY_CONFIGS), help="configs timed (first = reference)")
    p.add_argument("--repeats", type=int, default=100, help="timed calls per configuration and part")
    p.add_argument("--latency-models", default="",
                   help="extra model configs timed with random weights, e.g. sdtrack-tiny (latency only)")
    p.add_argument("--big-repeats", type=int, default=15, help="timed calls for the extra models")
    p.add_argument("--threads", type=int, default=1, help="torch threads for every configuration")
    p.add_argument("--skip-latency", action="store_true")
    p.add_argument("--skip-accuracy", action="store_true")
    p.add_argument("--out-dir", default="out/pruning", help="pruning.json and pruning_auc_vs_sops.png go here")
    args = p.parse_args(argv)
    names = [n for n in args.configs.split(",") if n]
    lat_names = [n for n in args.latency_configs.split(",") if n]
    for name in names + lat_names:
        if name not in CONFIGS:
            p.error(f"unknown configuration {name!r}; choose from {list(CONFIGS)}")
    if min(args.threads, args.repeats, args.count_every) < 1:
        p.error("--threads, --repeats and --count-every must be >= 1")
    if (args.max_sequences is not None and args.max_sequences < 1) or (args.max_frames is not None and args.max_frames < 2):
        p.error("--max-sequences must be >= 1 and --max-frames >= 2")
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()

    from evtrack.datasets import load_roots

    seqs = load_roots("synthetic", args.data, args.split, args.max_sequences)  # root/name keys with several roots
    model, ckpt_name, _, tracking = load_net(args.checkpoint)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n_frames = sum(min(len(s), args.max_frames or len(s)) for s in seqs.values())
    report: dict = {
        "checkpoint": ckpt_name, "finetuned": args.finetuned, "threads": args.threads, "torch": torch.__version__,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(), "python": sys.version.split()[0],
        "cpus": os.cpu_count(), "load_avg_start": os.getloadavg(), "sequences": len(seqs), "frames": n_frames,
        "max_frames": args.max_frames, "count_every": args.count_every, "argv": sys.argv[1:] if argv is None else argv,
        "tracking": tracking,
    }
    print(f"# Token pruning benchmark: {ckpt_name}, {len(seqs)} {args.split} sequences, {n_frames} frames, "
          f"{args.threads} thread(s), load average {os.getloadavg()[0]:.2f}, tracking options {tracking or 'defaults'}")

    lat = None
    if not args.skip_latency:
        report["latency_ms"] = {}
        targets = [(ckpt_name, model, args.repeats)]
        for name in filter(None, args.latency_models.split(",")):
            from evtrack.network.registry import create_model

            torch.manual_seed(0)
            targets.append((f"{name} (random init)", create_model(name).eval(), args.big_repeats))
        for i, (label, net, repeats) in enumerate(targets):
            t = time.perf_counter()
            # the extra (large) models: dense vs the default schedule vs 0.5 only, to bound the run time
            these = lat_names if i == 0 else [n for n in lat_names if n in EXTRA_MODEL_CONFIGS] or lat_names[:2]
            res = latency(net, seqs, these, repeats, warmup=min(10, max(2, repeats // 3)))
            print_latency(label, res, these, args.threads, repeats)
            print(f"({time.perf_counter() - t:.0f} s)")
            report["latency_ms"][label] = res
            apply_pruning(net, None)
        lat = report["latency_ms"][ckpt_name]

    rows: dict[str, dict] = {}
    if not args.skip_accuracy:
        from evtrack.metrics.bootstrap import difference_interval, score_interval

        opes = {}
        runs = [(n, model, CONFIGS[n], tracking) for n in names]
        if args.pruned:
            net, _, pruning, options = load_net(args.pruned)
            runs.append((PRUNED_CKPT, net, pruning, options))
            report["pruned_checkpoint"] = {"path": args.pruned, "pruning": pruning, "tracking": options}
        if args.finetuned:
            net, _, pruning, options = load_net(args.finetuned)
            runs.append((FINETUNED, net, pruning, options))
            report["finetuned_pruning"] = pruning
            report["finetuned_tracking"] = options
        print(f"\n# tracking {len(seqs)} sequences per configuration (ops counted on every {args.count_every}th call)")
        for n, net, cfg, options in runs:
            if isinstance(cfg, Config):
                configure(net, cfg)
            else:  # the pruned / fine-tuned checkpoints: their stored pruning settings
                apply_checkpoint_pruning(net, cfg)
            t = time.perf_counter()
            result = track_all(net, seqs, args.max_frames, args.count_every, options)
            ope = opes[n] = result.ope
            stats = result.stats
            rows[n] = {"auc": ope.auc, "pr": ope.pr, "npr": ope.npr, "wall_s": time.perf_counter() - t,
                       **stats, "pruning": getattr(net, "pruning", None), "auc_ci95": score_interval(ope, "auc"),
                       "per_sequence_auc": {k: v["auc"] for k, v in ope.per_sequence().items()}}
            if "dense" in opes and n != "dense":
                # paired over the same sequences: dense minus this configuration
                rows[n]["auc_gap_ci95"] = difference_interval(opes["dense"], ope, "auc")
            print(f"  {n}: AUC {ope.auc:.2f} PR {ope.pr:.2f}, transformer SOPs {stats['transformer_sops'] / 1e6:.2f} M, "
                  f"tokens {100 * stats['tokens_kept_frac']:.0f}% ({rows[n]['wall_s']:.0f} s)", flush=True)
        report["accuracy"] = rows
        print_accuracy(rows, lat, len(seqs), n_frames, ckpt_name, args.split)
        try:
            png = out_dir / "pruning_auc_vs_sops.png"
            plot(rows, png, f"Token pruning on {Path(ckpt_name).name}: AUC vs transformer SOPs "
                            f"({len(seqs)} seqs, {n_frames} frames)")
            print(f"\nplot: {png}")
        except Exception as exc:  # plotting must not lose the measurements
            print(f"plot failed: {exc}")

    goals = check_goals(rows, lat)
    if goals:
        print("\n### Goals at the default schedule (ir-default)")
        for g in goals:
            print(f"- {g}")
    report["goals"] = goals
    report["load_avg_end"] = os.getloadavg()
    report["wall_s"] = time.perf_counter() - t_start
    js = out_dir / "pruning.json"
    atomic.write_text(js, json.dumps(report, indent=1, default=float))
    print(f"\nresults: {js}; total {report['wall_s']:.0f} s, load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
