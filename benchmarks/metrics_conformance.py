"""Check evtrack.metrics against the FE108 numbers published for three real trackers.

Reads the real FE108 ground truth and the raw outputs of SDTrack-Base, OSTrack and HIPTrack
(``shared/data/fe108_official``), computes AUC / PR / NPR with evtrack.metrics, prints them
beside the published values, and writes success/precision plots comparing the trackers.
It also times the evaluation (ratio vs. merely parsing the text files, measured in the same
run) and shows what the kit's quirks are worth by scoring with two common deviations.

    python benchmarks/metrics_conformance.py [--data DIR] [--out DIR] [--repeats N]
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

from evtrack.metrics import evaluate_ope, read_boxes, read_flags
from evtrack.metrics.ope import OPEResult
from evtrack.metrics.plots import plot_success_precision

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "fe108_official"


def load(root: Path):
    seqs = (root / "test_sequences.txt").read_text().split()
    gt = {s: read_boxes(root / "annos" / "gt_rect" / f"{s}.txt") for s in seqs}
    absent = {s: read_flags(root / "annos" / "absent" / f"{s}.txt") for s in seqs}
    return seqs, gt, absent


def load_results(root: Path, tracker: str, seqs: list[str]) -> dict[str, np.ndarray]:
    return {s: read_boxes(root / "results" / tracker / f"{s}.txt") for s in seqs}


def pytracking_style(results, gt) -> OPEResult:
    """A common Python-port deviation: invalid-GT frames fail precision instead of passing it."""
    res = evaluate_ope(results, gt)
    prec = res.precision.copy()
    for k, name in enumerate(res.names):
        n_invalid = int((~(gt[name] > 0).all(axis=1)).sum())
        prec[k] -= n_invalid / gt[name].shape[0]
    return OPEResult(res.names, res.success, prec, res.norm_precision, res.n_frames)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="fe108_official folder")
    ap.add_argument("--out", type=Path, default=Path("out/metrics_conformance"), help="where the plots go")
    ap.add_argument("--repeats", type=int, default=5, help="timed repetitions (after one warm-up)")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error("--repeats must be >= 1")
    if not (args.data / "expected_published.csv").is_file():
        ap.error(f"{args.data}: no expected_published.csv (pass --data)")

    with open(args.data / "expected_published.csv") as f:
        expected = list(csv.DictReader(f))
    seqs, gt, absent = load(args.data)
    results = {row["tracker"]: load_results(args.data, row["tracker"], seqs) for row in expected}

    scores = {t: evaluate_ope(results[t], gt, absent) for t in results}  # also the warm-up
    print(f"FE108 test set: {len(seqs)} sequences, {sum(len(g) for g in gt.values())} frames\n")
    print("| tracker | published AUC | published PR | ours AUC | ours PR | ours NPR | diff AUC | diff PR |")
    print("|---|---|---|---|---|---|---|---|")
    worst = 0.0
    for row in expected:
        r = scores[row["tracker"]]
        pa, pp = float(row["fe108_auc"]), float(row["fe108_pr"])
        worst = max(worst, abs(r.auc - pa), abs(r.pr - pp))
        print(f"| {row['tracker']} | {pa:.1f} | {pp:.1f} | {r.auc:.2f} | {r.pr:.2f} | {r.npr:.2f} "
              f"| {r.auc - pa:+.2f} | {r.pr - pp:+.2f} |")
    print(f"\nlargest |difference|: {worst:.3f} points (tolerance 0.1)")

    print("\nWhat the kit's conventions are worth (PR, points):")
    print("| tracker | official | invalid-GT frames fail precision |")
    print("|---|---|---|")
    for t in results:
        print(f"| {t} | {scores[t].pr:.2f} | {pytracking_style(results[t], gt).pr:.2f} |")

    t_parse, t_eval = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        loaded = {t: load_results(args.data, t, seqs) for t in results}
        t1 = time.perf_counter()
        for t in loaded:
            evaluate_ope(loaded[t], gt, absent)
        t2 = time.perf_counter()
        t_parse.append(t1 - t0)
        t_eval.append(t2 - t1)
    p, e = float(np.median(t_parse)), float(np.median(t_eval))
    print(f"\ntiming (median of {args.repeats}): parse 3x32 result files {p * 1e3:.1f} ms, "
          f"score them {e * 1e3:.1f} ms (ratio score/parse {e / p:.2f})")

    path = plot_success_precision(scores, args.out / "fe108_success_precision.png", title="FE108")
    print(f"plots: {path}")
    return 0 if worst <= 0.1 else 1


if __name__ == "__main__":
    sys.exit(main())
