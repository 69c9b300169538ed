"""Simulator throughput (renderer, ESIM kernel vs a NumPy baseline, end to end) and a preview image.

    python benchmarks/simulate.py --seconds 0.5 --preview out/sim_preview.png --dataset data/synth/test

Prints a table; ``--json`` writes the numbers with library versions. The preview is a grid of
event frames (ON blue, OFF red) with the ground-truth box (green, orange when flagged absent), one
row per sequence, for a person to check that the box sits on the target.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from evtrack.io import atomic


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=0.5, help="simulated seconds per measurement (default 0.5)")
    p.add_argument("--render-fps", type=float, default=1000.0)
    p.add_argument("--scenes", type=int, default=3, help="random scenes to average over (default 3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--preview", type=Path, default=None, help="write a preview PNG here")
    p.add_argument("--dataset", type=Path, default=None,
                   help="dataset split folder to preview (default: generate 3 short sequences)")
    p.add_argument("--preview-rows", type=int, default=4)
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args()
    if a.seconds <= 0 or a.render_fps <= 0 or a.scenes < 1:
        p.error("--seconds and --render-fps must be > 0, --scenes >= 1")
    return a


def main() -> int:
    args = parse_args()
    import numba

    from evtrack.io.events import EVENT_DTYPE
    from evtrack.sim.dataset import SequenceConfig, sequence_seed, write_sequence
    from evtrack.sim.esim import EventSimulator, SensorConfig
    from evtrack.sim.reference import esim_interval_numpy
    from evtrack.sim.scenes import SceneConfig, random_scene

    sensor = SensorConfig(refractory_us=0)  # the NumPy baseline has no refractory period
    rows = []
    totals = {"render_s": 0.0, "frames": 0, "kernel_s": 0.0, "kernel_events": 0, "numpy_s": 0.0, "numpy_events": 0}
    for k in range(args.scenes):
        rng = np.random.default_rng([args.seed, k])
        scene = random_scene(rng, SceneConfig(duration_s=(args.seconds + 0.05, args.seconds + 0.05)))
        n = int(args.seconds * args.render_fps) + 1
        times = [int(round(i * 1e6 / args.render_fps)) for i in range(n)]
        scene.render(0.0)  # warm-up
        t0 = time.perf_counter()
        frames = [scene.render(t * 1e-6) for t in times]
        totals["render_s"] += time.perf_counter() - t0
        totals["frames"] += n - 1
        # Numba kernel (+ noise + sort), after a warm-up that compiles / loads the cache
        warm = EventSimulator(sensor, np.random.default_rng(0))
        for i in range(3):
            warm.feed(frames[i], times[i])
        sim = EventSimulator(sensor, np.random.default_rng(1))
        t0 = time.perf_counter()
        n_ev = sum(len(sim.feed(f, t)) for f, t in zip(frames, times, strict=True))
        totals["kernel_s"] += time.perf_counter() - t0
        totals["kernel_events"] += n_ev
        # NumPy baseline: same model, same noise and sorting
        base = EventSimulator(sensor, np.random.default_rng(1))
        t0 = time.perf_counter()
        ref = base.log_intensity(frames[0]).astype(np.float64)
        prev = base.log_intensity(frames[0])
        n_np = 0
        for i in range(1, n):
            cur = base.log_intensity(frames[i])
            ev = esim_interval_numpy(prev, cur, ref, base.c_pos, base.c_neg, times[i - 1], times[i], sensor.width)
            noise = base.noise.sample(times[i - 1], times[i], base.rng)
            allev = np.concatenate([ev, noise]).astype(EVENT_DTYPE)
            allev = allev[np.argsort(allev["t"], kind="stable")]
            n_np += len(allev)
            prev = cur
        totals["numpy_s"] += time.perf_counter() - t0
        totals["numpy_events"] += n_np
    # end to end: render + simulate + write one sequence (1000 fps internal)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = SequenceConfig(render_fps=args.render_fps)
        t0 = time.perf_counter()
        s = write_sequence(Path(tmp) / "seq", sequence_seed(args.seed, "sample", 99), cfg, duration_s=args.seconds)
        e2e_s = time.perf_counter() - t0
        e2e_bytes = (Path(tmp) / "seq/events.h5").stat().st_size

    # video conversion (`evtrack simulate`): a 30 fps clip of a random scene, with optical-flow sub-steps
    import cv2

    from evtrack.sim.convert import simulate_frames
    from evtrack.sim.video import open_frames

    with tempfile.TemporaryDirectory() as tmp:
        scene = random_scene(np.random.default_rng([args.seed, 1000]),
                             SceneConfig(duration_s=(args.seconds + 0.05, args.seconds + 0.05)))
        n_vid = max(int(args.seconds * 30), 2)
        clip = Path(tmp) / "clip.avi"
        vw = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 30, (346, 260))
        for i in range(n_vid):
            vw.write(cv2.cvtColor((scene.render(i / 30) * 255).astype(np.uint8), cv2.COLOR_GRAY2BGR))
        vw.release()
        t0 = time.perf_counter()
        conv = simulate_frames(open_frames(clip), Path(tmp) / "clip.h5", SensorConfig(), show_progress=False)
        video_s = time.perf_counter() - t0

    fr = totals["frames"]
    result = {
        "renderer_frames_per_s": fr / totals["render_s"],
        "kernel_frames_per_s": fr / totals["kernel_s"],
        "kernel_events_per_s": totals["kernel_events"] / totals["kernel_s"],
        "numpy_frames_per_s": fr / totals["numpy_s"],
        "numpy_events_per_s": totals["numpy_events"] / totals["numpy_s"],
        "kernel_speedup_vs_numpy": totals["numpy_s"] / totals["kernel_s"],
        "scene_event_rate_ev_per_sim_s": totals["kernel_events"] / (fr / args.render_fps),
        "end_to_end_sim_s_per_wall_s": s.duration_s / e2e_s,
        "end_to_end_events": s.n_events,
        "end_to_end_bytes_per_event": e2e_bytes / max(s.n_events, 1),
        "video_input_frames_per_s": conv.n_frames / video_s,
        "video_substeps_per_frame": conv.n_substeps / conv.n_frames,
        "video_events_per_s": conv.n_events / video_s,
    }
    rows = [
        ("renderer (346x260, 1 target + extras)", f"{result['renderer_frames_per_s']:.0f} frames/s", ""),
        ("ESIM Numba kernel + noise + sort", f"{result['kernel_frames_per_s']:.0f} frames/s",
         f"{result['kernel_events_per_s'] / 1e3:.0f} kev/s"),
        ("ESIM NumPy baseline (same model)", f"{result['numpy_frames_per_s']:.0f} frames/s",
         f"{result['numpy_events_per_s'] / 1e3:.0f} kev/s"),
        ("kernel speed-up vs NumPy", f"{result['kernel_speedup_vs_numpy']:.2f}x", ""),
        ("scene event rate", f"{result['scene_event_rate_ev_per_sim_s'] / 1e3:.0f} kev per simulated s", ""),
        ("end to end (render+sim+HDF5)", f"{result['end_to_end_sim_s_per_wall_s']:.3f} sim s / wall s",
         f"{result['end_to_end_bytes_per_event']:.2f} B/event"),
        ("video -> HDF5 (`evtrack simulate`, 30 fps)", f"{result['video_input_frames_per_s']:.1f} input frames/s",
         f"{result['video_events_per_s'] / 1e3:.0f} kev/s"),
        ("  simulator steps per input frame (flow)", f"{result['video_substeps_per_frame']:.1f}", ""),
    ]
    print(f"{'measurement':44s} {'throughput':>32s} {'':>14s}")
    for name, a, b in rows:
        print(f"{name:44s} {a:>32s} {b:>14s}")

    if args.preview is not None:
        from evtrack.sim.preview import dataset_preview

        with tempfile.TemporaryDirectory() as tmp:
            if args.dataset is not None:
                seqs = sorted(p for p in args.dataset.iterdir() if (p / "events.h5").is_file())[: args.preview_rows]
                if not seqs:
                    raise SystemExit(f"{args.dataset}: no sequences (folders with events.h5) found")
            else:
                seqs = [Path(tmp) / f"s{i}" for i in range(args.preview_rows)]
                for i, d in enumerate(seqs):
                    write_sequence(d, sequence_seed(args.seed, "sample", 100 + i), SequenceConfig(), duration_s=1.0)
            args.preview.parent.mkdir(parents=True, exist_ok=True)
            dataset_preview(seqs, args.preview)
        print(f"preview written to {args.preview}")
    if args.json is not None:
        result.update(machine=platform.processor() or platform.machine(), python=platform.python_version(),
                      numpy=np.__version__, numba=numba.__version__, seconds=args.seconds, scenes=args.scenes)
        atomic.write_text(args.json, json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
