"""``evtrack benchmark``: track a whole dataset split, write official results, score them."""

from __future__ import annotations

import argparse

from evtrack.cli_options import (
    TRACKING_KEEP_DEFAULT,
    add_checkpoint_arguments,
    add_tracking_arguments,
    add_tre_argument,
    checkpoint_argument,
    keep_help,
    tracking_options,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "benchmark",
        help="track every sequence of a dataset split and score it (AUC / PR / NPR, fps, SOPs, energy)",
        description="Track every sequence with the given checkpoint, write <out>/<seq>.txt in the official "
        "tab-separated format, summary.json and success/precision plots, and print a summary. "
        "Under torchrun each rank tracks a shard and rank 0 scores.",
    )
    p.add_argument("--dataset", default="fe108", help="fe108, visevent, felt, coesot, eventvot, synthetic")
    p.add_argument("--root", required=True, help="dataset root")
    p.add_argument("--split", default="test", help="dataset split to run (default test)")
    add_checkpoint_arguments(p)
    p.add_argument("--keep", default=None, help=keep_help(TRACKING_KEEP_DEFAULT))
    add_tracking_arguments(p)
    p.add_argument("--baseline", choices=("stationary", "centroid"), default=None,
                   help="run a non-learned reference tracker instead of a checkpoint")
    add_tre_argument(p)
    p.add_argument("--no-count-ops", action="store_true",
                   help="skip SOP/MAC/energy counting (faster; fps is then the only cost figure)")
    p.add_argument("--workers", type=int, default=1, help="tracking processes on this machine")
    p.add_argument("--threads", type=int, default=None, help="CPU threads of torch and the runtime per worker (default: cores / workers)")
    p.add_argument("--out", default="out/benchmark", help="output folder (results, summary.json, plots)")
    p.add_argument("--sequences", nargs="+", default=None, metavar="NAME", help="only these sequences")
    p.add_argument("--limit", type=int, default=None, help="only the first N sequences")
    p.add_argument("--compare", nargs="+", default=[], metavar="DIR", help="results folders to rank alongside")
    p.add_argument("--label", default=None, help="name of this run in tables and plots (default: out folder name)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def select_sequences(sequences: list, names: list[str] | None, limit: int | None) -> list:
    from evtrack.errors import UserError

    if names:
        known = {s.name: s for s in sequences}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise UserError(f"--sequences: unknown name(s) {', '.join(unknown)}; "
                            f"the split has {', '.join(list(known)[:6])}{' ...' if len(known) > 6 else ''}")
        sequences = [known[n] for n in names]
    if limit is not None:
        if limit < 1:
            raise UserError(f"--limit must be >= 1, got {limit}")
        sequences = sequences[:limit]
    return sequences


def build_factory(args: argparse.Namespace, threads: int):
    """A picklable ``make_tracker()`` for the runner's worker processes."""
    from functools import partial


    if args.baseline is not None:
        from evtrack.tracker import baselines

        return partial({"stationary": baselines.StationaryTracker, "centroid": baselines.CentroidTracker}[args.baseline])
    try:
        from evtrack.tracker import load_tracker
    except ImportError:  # package not re-exporting it yet: the defining module
        from evtrack.tracker.online import load_tracker
    options = {} if args.no_count_ops else {"count_ops": True}
    options.update(tracking_options(args, count_ops=not args.no_count_ops))
    return partial(load_tracker, checkpoint_argument(args), keep=args.keep, n_threads=threads, **options)


def run(args: argparse.Namespace) -> int:
    import json
    import os
    from pathlib import Path

    from evtrack.benchmark_runner import BenchmarkConfig, run_benchmark
    from evtrack.datasets import load_dataset
    from evtrack.errors import UserError
    from evtrack.metrics.report import format_attribute_table, format_table, load_results_dir, score_sequences
    from evtrack.metrics.tre import score_tre, tre_run_names
    from evtrack.runtime.runners import resolve_runtime

    if args.workers < 1:
        raise UserError(f"--workers must be >= 1, got {args.workers}")
    if args.baseline is not None:
        if args.checkpoint is not None or args.backbone is not None or args.keep is not None:
            raise UserError("--baseline cannot be combined with --checkpoint, --backbone or --keep")
    else:
        checkpoint_argument(args)  # a file, an `evtrack export` folder or a shipped name, before any work
    sequences = select_sequences(load_dataset(args.dataset, args.root, args.split), args.sequences, args.limit)
    no_events = [s.name for s in sequences if s.events_path is None]
    if no_events:
        raise UserError(f"{args.root}: {len(no_events)} sequence(s) have annotations but no event file "
                        f"({', '.join(no_events[:4])}); benchmark needs recordings, evaluate needs only results")
    compare = {}
    for d in args.compare:  # fail on a bad comparison folder before hours of tracking
        if args.tre:
            runs = tre_run_names(sequences, args.tre)
            compare[Path(d).resolve().name] = score_tre(sequences, load_results_dir(d, runs))
        else:
            compare[Path(d).resolve().name] = score_sequences(sequences, load_results_dir(d, [s.name for s in sequences]),
                                                              results_dir=d)

    threads = args.threads or max(1, (os.cpu_count() or 1) // args.workers)
    make_tracker = build_factory(args, threads)
    label = args.label or Path(args.out).resolve().name
    config = BenchmarkConfig(out_dir=Path(args.out), workers=args.workers, progress=not args.no_progress, label=label,
                             tre_segments=args.tre)
    report = run_benchmark(sequences, make_tracker, config)
    if report is None:  # a non-zero torchrun rank: rank 0 reports
        return 0

    if compare:
        from evtrack.metrics.plots import plot_success_precision

        plot_success_precision({label: report.ope, **compare}, Path(args.out) / "compare_success_precision.png",
                               title=args.dataset)
    if args.json:
        out = {k: v for k, v in report.summary.items() if k not in ("per_sequence", "per_sequence_fps_wall")}
        out.update(dataset=args.dataset, checkpoint=args.backbone or args.checkpoint, keep=args.keep, baseline=args.baseline,
                   out=str(args.out), runtime=resolve_runtime(args.runtime, not args.no_count_ops, args.checkpoint), precision=args.precision,
                   protocol=report.summary["protocol"])
        # cost figures also at the top level (per network call; see Tracker.stats)
        out.update({k: report.stats[k] for k in ("fps", "fps_wall", "sops", "macs", "transformer_sops", "energy_mj",
                                                  "tokens_kept", "tokens_kept_frac") if k in report.stats})
        if args.baseline is None:  # the resolved settings (per-block ratios and options), None when dense
            out["pruning"] = next((r.stats["pruning"] for r in report.runs.values() if "pruning" in r.stats), None)
        if compare:
            out["compare"] = {k: v.summary() for k, v in compare.items()}
        print(json.dumps(out, default=float))
        return 0
    print(f"{args.dataset} {args.split}: {len(sequences)} sequences, {sum(len(s) for s in sequences)} frames, "
          f"{'baseline=' + args.baseline if args.baseline else 'keep=' + (args.keep or 'dense')}"
          + (f"; TRE: {report.summary['protocol']['runs']} runs from up to {args.tre} start frames per sequence"
             if args.tre else ""))
    print(format_table({label: report.ope, **compare}))
    st = report.stats
    parts = [f"fps (wall, per worker) {st['fps_wall']:.1f}"]
    if "fps" in st:
        parts.append(f"fps (model) {st['fps']:.1f}")
    for key, unit in (("sops", "SOPs/frame"), ("transformer_sops", "transformer SOPs/frame"), ("macs", "MACs/frame"),
                      ("energy_mj", "mJ/frame"), ("tokens_kept", "tokens kept"), ("tokens_kept_frac", "of dense tokens")):
        if key in st:
            parts.append(f"{unit} {st[key]:.4g}")
    print("; ".join(parts))
    if report.summary.get("attributes"):
        print("\nper attribute:")
        print(format_attribute_table(report.summary["attributes"]))
    print(f"results, summary.json and plots in {args.out}")
    return 0
