"""Scoring a results folder against dataset sequences, and printing the outcome."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evtrack.errors import FormatError, UserError
from evtrack.metrics.bootstrap import METRICS, score_interval
from evtrack.metrics.ope import OPEResult, attribute_breakdown, evaluate_ope
from evtrack.metrics.results import read_boxes


def load_results_dir(results_dir: str | Path, names: Sequence[str]) -> dict[str, np.ndarray]:
    """``<results_dir>/<seq>.txt`` for every sequence; all missing files are named at once."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise UserError(f"results folder {results_dir} is not a directory")
    missing = [n for n in names if not (results_dir / f"{n}.txt").is_file()]
    if missing:
        raise FormatError(
            f"{results_dir}: no result file for {len(missing)} of {len(names)} sequences "
            f"(expected <seq>.txt): {', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}"
        )
    return {n: read_boxes(results_dir / f"{n}.txt") for n in names}


def score_sequences(
    sequences: Sequence[Any], results: Mapping[str, np.ndarray], *, results_dir: str | Path | None = None
) -> OPEResult:
    """OPE metrics of ``results`` (name -> boxes) over dataset ``Sequence`` objects."""
    gt = {s.name: s.boxes for s in sequences}
    absent = {s.name: s.absent for s in sequences}
    sources = {n: str(Path(results_dir) / f"{n}.txt") for n in gt} if results_dir is not None else None
    return evaluate_ope(results, gt, absent, sources=sources)


def summary_json(result: OPEResult, sequences: Sequence[Any] = (), *, per_sequence: bool = False) -> dict[str, Any]:
    """One JSON-able dict: overall auc/pr/npr (percent), their 95% bootstrap intervals over the
    sequences (``ci95``), optional per-sequence and per-attribute."""
    out: dict[str, Any] = dict(result.summary())
    if result.names:
        out["ci95"] = {m: list(score_interval(result, m)) for m in METRICS}
    attrs = {s.name: s.attributes for s in sequences if getattr(s, "attributes", None)}
    if attrs:
        out["attributes"] = attribute_breakdown(result, attrs)
    if per_sequence:
        out["per_sequence"] = result.per_sequence()
    return out


def format_table(results: Mapping[str, OPEResult]) -> str:
    """A plain-text table, one row per tracker/run, best AUC first."""
    rows = sorted(results.items(), key=lambda kv: -kv[1].auc)
    width = max([len("tracker")] + [len(k) for k in results])
    lines = [f"{'tracker':<{width}}  {'AUC':>6}  {'AUC 95% CI':>13}  {'PR':>6}  {'NPR':>6}  {'seqs':>5}",
             "-" * (width + 46)]
    for name, r in rows:
        ci = "{:.1f}-{:.1f}".format(*score_interval(r, "auc")) if r.names else "-"
        lines.append(f"{name:<{width}}  {r.auc:6.2f}  {ci:>13}  {r.pr:6.2f}  {r.npr:6.2f}  {len(r.names):5d}")
    return "\n".join(lines)


def format_attribute_table(breakdown: Mapping[str, Mapping[str, float]]) -> str:
    if not breakdown:
        return ""
    width = max(len("attribute"), *(len(k) for k in breakdown))
    lines = [f"{'attribute':<{width}}  {'AUC':>6}  {'PR':>6}  {'NPR':>6}  {'seqs':>5}", "-" * (width + 31)]
    for name, r in breakdown.items():
        lines.append(f"{name:<{width}}  {r['auc']:6.2f}  {r['pr']:6.2f}  {r['npr']:6.2f}  {int(r['n_sequences']):5d}")
    return "\n".join(lines)
