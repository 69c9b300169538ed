"""Temporal robustness evaluation (TRE; Wu, Lim and Yang, CVPR 2013): each sequence is tracked several
times, each run started from the ground-truth box at a later frame and run to the end, and the runs of a
sequence are scored together (successes over all their frames / all their frames).

Why: one-pass evaluation (OPE) starts a sequence once, so on a handful of sequences a loss in the first
frames decides a whole sequence's score and two trackers differ by where a single frame sent them. TRE
measures a tracker on the rest of the footage too, which is what an 8-sequence split (the real val split
of issue "Track real scenes") needs before a change can be told from noise.

Start frames are evenly spaced over the frames that leave a run at least ``min_frames`` long, each moved
forward to the first frame with a visible target and a valid box; the first run is the OPE run (frame 0).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from evtrack.errors import FormatError, UserError
from evtrack.metrics.ope import OPEResult, evaluate_ope

MIN_RUN_FRAMES = 20  # a run shorter than this says little about tracking


def tre_starts(seq: Any, segments: int, min_frames: int | None = None) -> list[int]:
    """Start frames of ``seq``'s runs: at most ``segments``, frame 0 first, without duplicates; later runs
    keep at least ``min_frames`` frames (default ``MIN_RUN_FRAMES``: a run's first frame is the ground truth,
    so very short runs would inflate the score)."""
    if segments < 1:
        raise UserError(f"TRE needs at least 1 segment, got {segments}")
    min_frames = MIN_RUN_FRAMES if min_frames is None else min_frames
    n = len(seq)
    usable = (~np.asarray(seq.absent, dtype=bool)) & (np.asarray(seq.boxes)[:, 2:4] > 0).all(axis=1)
    last = max(n - min_frames, 0)
    starts = [0]  # the first run is the OPE run, whatever frame 0 holds
    for s in np.round(np.linspace(0, last, segments)).astype(int)[1:]:
        later = np.flatnonzero(usable[s : last + 1])
        if later.size and int(s + later[0]) not in starts:
            starts.append(int(s + later[0]))
    return starts


def tre_runs(sequences: Sequence[Any], segments: int, min_frames: int | None = None) -> list[Any]:
    """Every sequence's runs (``Sequence.tail``), named ``<name>@<start>``, in sequence then start order."""
    return [seq.tail(s) for seq in sequences for s in tre_starts(seq, segments, min_frames)]


def tre_run_names(sequences: Sequence[Any], segments: int, min_frames: int | None = None) -> list[str]:
    """The names :func:`tre_runs` gives, without touching the recordings (scoring a results folder)."""
    return [f"{seq.name}@{s}" for seq in sequences for s in tre_starts(seq, segments, min_frames)]


def run_base(name: str) -> tuple[str, int]:
    """``("Biker", 120)`` for the run ``"Biker@120"``."""
    base, sep, start = name.rpartition("@")
    if not sep or not start.isdigit():
        raise FormatError(f"{name!r} is not a TRE run name; expected <sequence>@<start frame>")
    return base, int(start)


def score_tre(sequences: Sequence[Any], results: Mapping[str, np.ndarray], *, runs: Sequence[str] | None = None) -> OPEResult:
    """OPE curves per sequence, each pooled over its runs (``results``: run name -> boxes of that run).

    ``runs`` are the run names to score (default: every key of ``results``); each must belong to one of
    ``sequences``, and every sequence must have at least one run.
    """
    by_seq: dict[str, list[tuple[int, str]]] = {s.name: [] for s in sequences}
    for name in runs if runs is not None else results:
        base, start = run_base(name)
        if base not in by_seq:
            raise FormatError(f"TRE run {name!r} belongs to no sequence of this split")
        by_seq[base].append((start, name))
    missing = [n for n, r in by_seq.items() if not r]
    if missing:
        raise FormatError(f"TRE: no runs for {len(missing)} sequence(s): {', '.join(missing[:5])}")
    pooled, gt, absent = {}, {}, {}
    for seq in sequences:
        order = sorted(by_seq[seq.name])
        for start, name in order:
            if name not in results:
                raise FormatError(f"TRE: results missing for run {name}")
            if len(results[name]) < len(seq) - start:
                raise FormatError(f"TRE run {name}: {len(results[name])} boxes, expected {len(seq) - start}")
        pooled[seq.name] = np.concatenate([np.asarray(results[n], dtype=np.float64)[: len(seq) - s] for s, n in order])
        gt[seq.name] = np.concatenate([seq.boxes[s:] for s, _ in order])
        absent[seq.name] = np.concatenate([seq.absent[s:] for s, _ in order])
    return evaluate_ope(pooled, gt, absent)
