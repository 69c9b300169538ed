"""``evtrack demo``: track the shipped sample sequence with the shipped checkpoint, out of the box.

Prints AUC / PR / NPR (official OPE protocol, percent) and frames/s, and writes an overlay video
(ground truth green, prediction red) and a PNG of a few frames into ``--out``.
"""

from __future__ import annotations

import argparse

from evtrack.cli_options import (
    TRACKING_KEEP_DEFAULT,
    add_checkpoint_arguments,
    add_tracking_arguments,
    checkpoint_argument,
    format_ops,
    keep_help,
    keep_label,
    ops_summary,
    tracking_options,
)


def register(subparsers) -> None:
    p = subparsers.add_parser("demo", help="track the shipped sample sequence and report accuracy and speed")
    p.add_argument("--out", default="evtrack_demo", help="output folder for the video and PNG (default ./evtrack_demo)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument("--keep", default=None, help=keep_help(TRACKING_KEEP_DEFAULT))
    add_checkpoint_arguments(p)
    add_tracking_arguments(p)
    p.add_argument("--threads", type=int, default=1, help="CPU threads of torch and the runtime (default 1)")
    p.add_argument("--no-video", action="store_true", help="skip the overlay video")
    p.set_defaults(func=run)


def sample_sequence_dir():
    from importlib import resources
    from pathlib import Path

    return Path(str(resources.files("evtrack") / "data" / "sample"))


def load_sample(seq_dir=None):
    """The shipped sample as an ``evtrack.datasets.Sequence`` (single FE108-layout sequence folder)."""
    import numpy as np

    from evtrack.datasets.sequence import Sequence
    from evtrack.errors import UserError
    from evtrack.metrics import read_boxes, read_flags

    seq_dir = seq_dir or sample_sequence_dir()
    if not (seq_dir / "events.h5").is_file():
        raise UserError(f"shipped sample sequence is missing at {seq_dir}; reinstall evtrack")
    ts = np.loadtxt(seq_dir / "frame_timestamps.txt", dtype=np.int64, ndmin=1)
    return Sequence(
        "sample", seq_dir / "events.h5", read_boxes(seq_dir / "groundtruth_rect.txt"),
        read_flags(seq_dir / "absent_label.txt"), ts,
    )


def run(args: argparse.Namespace) -> int:
    import json
    import time
    from pathlib import Path

    import numpy as np

    from evtrack.datasets.sequence import interval_edges
    from evtrack.metrics import evaluate_ope
    from evtrack.tracker.online import load_tracker, track_sequence
    from evtrack.tracker.overlay import GT_COLOUR, PRED_COLOUR, write_contact_sheet, write_video

    t_total = time.perf_counter()
    checkpoint = checkpoint_argument(args)
    seq = load_sample()
    options = tracking_options(args, count_ops=True)
    tracker = load_tracker(checkpoint, keep=args.keep, n_threads=args.threads, count_ops=True, **options)
    with seq.open() as reader:
        sensor = reader.info.sensor_size
        res = track_sequence(tracker, reader, seq.init_box, seq.frame_timestamps_us, progress=not args.json)
    ope = evaluate_ope({seq.name: res.boxes}, {seq.name: seq.boxes}, {seq.name: seq.absent})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    edges = interval_edges(seq.frame_timestamps_us)
    with seq.open() as reader:
        slices = list(reader.slices(edges))
    files = {}
    if not args.no_video:
        frames = (
            (ev, [(gt if not ab else None, GT_COLOUR), (pred, PRED_COLOUR)])
            for ev, gt, ab, pred in zip(slices, seq.boxes, seq.absent, res.boxes, strict=True)
        )
        files["video"] = str(write_video(out / "demo_overlay.mp4", frames, sensor, fps=12.5))
    picks = np.linspace(0, len(seq) - 1, 6).round().astype(int)
    sheet = [(slices[i], [(seq.boxes[i], GT_COLOUR), (res.boxes[i], PRED_COLOUR)], f"frame {i}   green: ground truth, red: tracker") for i in picks]
    files["png"] = str(write_contact_sheet(out / "demo_frames.png", sheet, sensor))
    summary = {
        "sequence": "sample",
        "frames": len(seq),
        "auc": round(ope.auc, 2),
        "pr": round(ope.pr, 2),
        "npr": round(ope.npr, 2),
        "fps": round(res.fps, 1),
        "mean_latency_ms": round(1000 * float(res.latency_s[1:].mean()), 2),
        "keep": keep_label(args.keep, res.stats.get("pruning")), "runtime": options["runtime"],
        **ops_summary(res.stats),
        "wall_s": round(time.perf_counter() - t_total, 2),
        **files,
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"sample sequence: {summary['frames']} frames")
        print(f"AUC {summary['auc']:.1f}  PR {summary['pr']:.1f}  NPR {summary['npr']:.1f}  (percent, OPE)")
        print(f"speed: {summary['fps']:.1f} frames/s end to end, {summary['mean_latency_ms']:.1f} ms per update")
        if "sops" in summary:
            print(format_ops(summary))
        for k, v in files.items():
            print(f"{k}: {v}")
    return 0
