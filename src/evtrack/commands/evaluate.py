"""``evtrack evaluate``: score an existing results folder with the official OPE protocol."""

from __future__ import annotations

import argparse

from evtrack.cli_options import add_tre_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="score a folder of <seq>.txt tracker results (AUC / PR / NPR, official protocol)",
        description="Score RESULTS_DIR (one x,y,w,h line per frame in <seq>.txt) against the annotations "
        "of a dataset, exactly as the official MATLAB kits do.",
    )
    p.add_argument("results_dir", metavar="RESULTS_DIR", help="folder of <seq>.txt result files")
    p.add_argument("--dataset", default="fe108",
                   help="dataset layout (fe108, visevent, felt, coesot, eventvot, synthetic), or motchallenge "
                   "for multi-object results (<root>/<seq>/gt/gt.txt; MOTA, MOTP, IDF1, ID switches)")
    p.add_argument("--root", required=True, help="dataset root (FE108 also accepts the official kit's annos/ layout)")
    p.add_argument("--split", default="test", help="dataset split the results belong to (default test)")
    p.add_argument("--compare", nargs="+", default=[], metavar="DIR", help="more results folders to rank alongside")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    add_tre_argument(p, "the folders hold the runs of `evtrack benchmark --tre N` (<seq>@<start>.txt): score "
                        "them pooled per sequence (default 0: one <seq>.txt per sequence)")
    p.add_argument("--per-sequence", action="store_true", help="include every sequence's scores")
    p.add_argument("--plot", metavar="PNG", help="write success/precision plots of all compared results")
    p.set_defaults(func=run)


def _label(path, taken: set[str]) -> str:
    from pathlib import Path

    label = Path(path).resolve().name or str(path)
    base, k = label, 2
    while label in taken:
        label, k = f"{base}#{k}", k + 1
    taken.add(label)
    return label


def run(args: argparse.Namespace) -> int:
    import json

    from evtrack.datasets import load_dataset
    from evtrack.metrics.report import (
        format_attribute_table,
        format_table,
        load_results_dir,
        score_sequences,
        summary_json,
    )
    from evtrack.metrics.tre import score_tre, tre_run_names

    if args.dataset.lower() == "motchallenge":
        return _run_mot(args)
    # scoring needs the annotations only: sequence folders without event files are fine here
    sequences = load_dataset(args.dataset, args.root, args.split, require_events=False)
    names = tre_run_names(sequences, args.tre) if args.tre else [s.name for s in sequences]
    taken: set[str] = set()
    dirs = [args.results_dir, *args.compare]
    scores = {}
    for d in dirs:
        results = load_results_dir(d, names)
        scores[_label(d, taken)] = (score_tre(sequences, results) if args.tre
                                    else score_sequences(sequences, results, results_dir=d))
    main_label = next(iter(scores))
    main = scores[main_label]

    if args.plot:
        from evtrack.metrics.plots import plot_success_precision

        plot_success_precision(scores, args.plot, title=args.dataset)

    if args.json:
        out = summary_json(main, sequences, per_sequence=args.per_sequence)
        out["dataset"] = args.dataset
        out["results_dir"] = str(args.results_dir)
        if args.compare:
            out["compare"] = {k: v.summary() for k, v in scores.items() if k != main_label}
        if args.plot:
            out["plot"] = str(args.plot)
        print(json.dumps(out, indent=None))
        return 0

    print(f"{args.dataset} {args.split}: {len(sequences)} sequences, {sum(len(s) for s in sequences)} frames")
    print(format_table(scores))
    data = summary_json(main, sequences, per_sequence=args.per_sequence)
    if data.get("attributes"):
        print(f"\nper attribute ({main_label}):")
        print(format_attribute_table(data["attributes"]))
    if args.per_sequence:
        print(f"\nper sequence ({main_label}):")
        width = max(len(n) for n in names)
        for n, r in data["per_sequence"].items():
            print(f"{n:<{width}}  {r['auc']:6.2f}  {r['pr']:6.2f}  {r['npr']:6.2f}")
    if args.plot:
        print(f"\nplots: {args.plot}")
    return 0


def _run_mot(args: argparse.Namespace) -> int:
    import json

    from evtrack.errors import UserError
    from evtrack.metrics.mot import evaluate_motchallenge_dir

    if args.compare or args.plot:
        raise UserError("--compare and --plot are for single-object results; not available with motchallenge")
    table = evaluate_motchallenge_dir(args.results_dir, args.root)
    if args.json:
        out = dict(table.get("OVERALL", next(iter(table.values()))))
        out.update(dataset="motchallenge", n_sequences=len([k for k in table if k != "OVERALL"]))
        if args.per_sequence:
            out["per_sequence"] = {k: v for k, v in table.items() if k != "OVERALL"}
        print(json.dumps(out))
        return 0
    width = max(len("sequence"), *(len(k) for k in table))
    print(f"{'sequence':<{width}}  {'MOTA':>7}  {'MOTP':>6}  {'IDF1':>7}  {'IDsw':>5}  {'FP':>6}  {'FN':>6}")
    for name, r in table.items():
        print(f"{name:<{width}}  {100 * r['mota']:7.2f}  {r['motp']:6.3f}  {100 * r['idf1']:7.2f}  "
              f"{int(r['num_switches']):5d}  {int(r['num_false_positives']):6d}  {int(r['num_misses']):6d}")
    print("MOTA/IDF1 in percent; MOTP is motmetrics' mean matched distance 1 - IoU (lower is better)")
    return 0
