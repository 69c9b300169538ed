"""Live streaming latency: replay server in one process, StreamTracker in another, over loopback.

Measures, per configuration: per-update latency p50/p99 (arrival of the packet that completes a
window -> box ready) at ``--window-ms`` windows, windows dropped to stay current, events sent vs
received over the end-of-stream handshake, and RSS at the start and end of the run (flat memory
over a long ``--minutes`` run with the ``--loop`` replay). Also the numpy -> dv EventStore
conversion rate of the fast path against the plain push_back loop (the baseline), same run.

    python benchmarks/live.py --tracker centroid --seconds 10
    python benchmarks/live.py --tracker model --keep 1.0 --keep default --seconds 20
    python benchmarks/live.py --tracker model --keep 1.0 --keep default --seconds 8 --rounds 3  # compare
    python benchmarks/live.py --tracker model --threads 1 --minutes 10 --loop-only   # memory flatness
    python benchmarks/live.py --recording ../shared/data/events/tonic_sample.aedat4 --loops 20 --threads 1
    python benchmarks/live.py --recording ../shared/data/events/tonic_sample.aedat4 --loops 20 --threads 1 \
        --runtime onnx --keep 1.0 --keep default --keep budget:5      # fixed schedules vs a 5 ms budget

Each run also reports the share of windows tracked (the rest were skipped to stay current) and where a
window's time goes: upstream delay, reader hand-off, push, wait for the worker, compute, JSON output.

With ``--minutes`` the loop run reports RSS when the first packet arrived, after 60 s of warm-up,
once a minute and at the end. With ``--rounds N`` the ``--keep`` list runs N times, every other round in
reverse order (A B, B A, A B, ...), and a summary gives each configuration's median over the rounds: the
same configuration's compute p50 was measured anywhere from 16 to 28 ms in single runs on 2 shared cores,
so one run per configuration compares little.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from evtrack.io import atomic


def rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def synthetic_recording(path: Path, seconds: float, rate_meps: float) -> int:
    """A moving blob plus background noise, DAVIS346-sized."""
    rng = np.random.default_rng(0)
    n = int(seconds * rate_meps * 1e6)
    from evtrack.io.events import EVENT_DTYPE

    ev = np.empty(n, EVENT_DTYPE)
    ev["t"] = np.sort(rng.integers(0, int(seconds * 1e6), n))
    cx = 173 + 100 * np.sin(ev["t"] / 1e6)
    blob = rng.random(n) < 0.7
    ev["x"] = np.where(blob, np.clip(cx + rng.normal(0, 8, n), 0, 345), rng.integers(0, 346, n))
    ev["y"] = np.where(blob, np.clip(130 + rng.normal(0, 8, n), 0, 259), rng.integers(0, 260, n))
    ev["p"] = rng.integers(0, 2, n)
    np.save(path, ev)
    return n


def conversion_rate(n: int = 200_000) -> dict:
    import dv_processing as dv

    from evtrack.io.events import random_events
    from evtrack.live.protocol import to_dv_store

    ev = random_events(n)
    to_dv_store(ev[:1000])  # warm-up
    t = time.perf_counter()
    store = to_dv_store(ev)
    fast = time.perf_counter() - t
    assert store.size() == n
    t = time.perf_counter()
    s = dv.EventStore()
    for i in range(n):
        s.push_back(int(ev["t"][i]), int(ev["x"][i]), int(ev["y"][i]), bool(ev["p"][i]))
    base = time.perf_counter() - t
    return {"fast_meps": n / fast / 1e6, "baseline_meps": n / base / 1e6, "speedup": base / fast}


def pct(values, q: float) -> float | None:
    """Percentile rounded for the table (None without values)."""
    return round(float(np.percentile(np.asarray(values, dtype=np.float64), q)), 2) if len(values) else None


def run_one(rec: Path, n_events: int, args, keep: str | None, loop: bool) -> dict:
    """One replay through the same pieces as ``evtrack live`` (source, warmed-up tracker, StreamTracker,
    JSON lines output), timing each stage of a window's way.

    Stages: ``upstream`` = packet handed to the client's dv reader, against the recording's own clock
    (above its minimum over the run: the replay paces packets at real time, so this is the extra delay
    of serve -> TCP -> guard -> dv reader); ``handoff`` = dv reader process -> this process
    (``NetworkEventSource.handoff_ms``); ``push`` = ``StreamTracker.push`` per packet; ``wait`` =
    packet completing a window -> the worker starts it (windowing, a busy worker); ``compute`` =
    inside the tracker; ``output`` = writing the result's JSON line (after the latency is taken, but
    it delays the next window).
    """
    from evtrack.live.network import NetworkEventSource, SourceConfig, wait_listening
    from evtrack.live.outputs import JsonLinesOutput
    from evtrack.live.stream_tracker import StreamConfig, StreamTracker

    if args.tracker == "model":
        from evtrack.tracker import load_tracker

        budget = None
        if keep and keep.startswith("budget:"):  # a latency budget picks the schedule per window
            from evtrack.runtime.budget import BudgetConfig

            budget = BudgetConfig(float(keep.split(":", 1)[1]))
        tracker = load_tracker(args.checkpoint, keep=None if budget else keep, n_threads=args.threads,
                               runtime=args.runtime, budget=budget)
        warm_s = tracker.warm_up()  # as evtrack live does before connecting
    else:
        from evtrack.tracker.baselines import CentroidTracker

        tracker, warm_s = CentroidTracker(), 0.0
    port = free_port()
    cmd = [sys.executable, "-m", "evtrack.cli", "serve", str(rec), "--port", str(port), "--quiet", "--linger", "5"]
    if args.recording is None:
        cmd += ["--sensor-size", "260", "346"]  # the synthetic .npy does not store it
    if loop:
        cmd += ["--loop"]
    elif args.loops > 1:
        cmd += ["--loop", "--max-loops", str(args.loops)]
    server = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    stage = {k: collections.deque(maxlen=100_000) for k in ("upstream", "push", "output", "compute", "wait")}
    try:
        wait_listening(port, timeout_s=30)
        src = NetworkEventSource("127.0.0.1", port, config=SourceConfig(max_retries=10, backoff_initial_s=0.2))
        st = None
        out = JsonLinesOutput(Path(tempfile.gettempdir()) / f"evtrack_live_bench_{os.getpid()}.jsonl")

        def on_window(res, ev) -> None:
            t = time.perf_counter()
            out.write(res, ev)
            stage["output"].append((time.perf_counter() - t) * 1e3)
            if res.kind == "update":
                stage["compute"].append(res.compute_ms)
                stage["wait"].append(res.latency_ms - res.compute_ms)

        rss0 = None
        rss_mid = None
        series = []  # (minute, RSS MiB) in loop mode: memory must stay flat
        t_start = time.monotonic()
        limit_s = args.minutes * 60 if loop else None
        warm_mark_s = 60.0 if loop else 2.0
        for packet in src:
            if st is None:
                box = args.init or ((153, 110, 40, 40) if args.recording is None else
                                    (src.sensor_size[1] / 2 - 40, src.sensor_size[0] / 2 - 40, 80, 80))
                st = StreamTracker(tracker, init_box=box, sensor_size=src.sensor_size, on_window=on_window,
                                   config=StreamConfig(window_us=int(args.window_ms * 1000),
                                                       max_pending_windows=args.max_pending))
                rss0 = rss_mib()  # connected, first packet in; before any tracking
                t_start = time.monotonic()
            stage["upstream"].append(src.last_read_at * 1e3 - int(packet["t"][-1]) / 1e3)
            t = time.perf_counter()
            st.push(packet)
            stage["push"].append((time.perf_counter() - t) * 1e3)
            el = time.monotonic() - t_start
            if rss_mid is None and el > warm_mark_s:
                rss_mid = rss_mib()  # after warm-up
            if loop and el > 60 * (len(series) + 1):
                series.append((len(series) + 1, round(rss_mib(), 1)))
            if limit_s is not None and el > limit_s:
                break
        wall = time.monotonic() - t_start
        src.close()
        st.close()
        out.close(ok=False)  # the lines were written for their cost only
        s = st.stats()
        sent = src.eos_total
        up = np.asarray(stage["upstream"])
        up = up - up.min() if len(up) else up
        tracked = s["processed_windows"] / max(1, s["processed_windows"] + s["dropped_windows"])
        return {
            "tracker": args.tracker, "runtime": args.runtime, "keep": keep or "dense",
            "keep_windows": s.get("keep_windows"), "window_ms": args.window_ms, "loop": loop,
            "max_pending": args.max_pending, "warm_up_s": round(warm_s, 2), "wall_s": round(wall, 1),
            "windows_tracked_pct": round(100 * tracked, 1),
            "p50_ms": round(s.get("latency_p50_ms", float("nan")), 2),
            "p99_ms": round(s.get("latency_p99_ms", float("nan")), 2),
            "compute_p50_ms": pct(stage["compute"], 50), "compute_p99_ms": pct(stage["compute"], 99),
            "wait_p50_ms": pct(stage["wait"], 50), "wait_p99_ms": pct(stage["wait"], 99),
            "upstream_p50_ms": pct(up, 50), "upstream_p99_ms": pct(up, 99),
            "handoff_p50_ms": pct(src.handoff_ms, 50), "handoff_p99_ms": pct(src.handoff_ms, 99),
            "push_p50_ms": pct(stage["push"], 50), "push_p99_ms": pct(stage["push"], 99),
            "output_p50_ms": pct(stage["output"], 50), "output_p99_ms": pct(stage["output"], 99),
            "updates": s["processed_windows"], "dropped_windows": s["dropped_windows"],
            "sent": sent, "received": src.session_events,
            "lost": None if sent is None else sent - src.session_events, "reconnects": src.reconnects,
            "rss_start_mib": round(rss0, 1), f"rss_after_{warm_mark_s:g}s_mib": round(rss_mid, 1) if rss_mid else None,
            "rss_end_mib": round(rss_mib(), 1), "rss_per_minute": series or None,
        }
    finally:
        server.kill()
        server.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracker", choices=("model", "centroid"), default="model")
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--keep", action="append", default=None, help="repeat: e.g. --keep 1.0 --keep default")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--runtime", choices=("torch", "onnx", "openvino"), default="torch",
                    help="what runs the network (issue 18); --keep budget:MS = a latency budget of MS (graph runtimes)")
    ap.add_argument("--window-ms", type=float, default=20.0)
    ap.add_argument("--seconds", type=float, default=10.0, help="length of the replayed recording")
    ap.add_argument("--rate", type=float, default=0.5, help="event rate of the synthetic recording (M ev/s)")
    ap.add_argument("--recording", default=None,
                    help="replay this recording (its own sensor size) instead of the synthetic one")
    ap.add_argument("--loops", type=int, default=1,
                    help="replay the recording this many times back to back (serve --loop --max-loops)")
    ap.add_argument("--init", type=lambda t: tuple(float(v) for v in t.split(",")), default=None,
                    metavar="X,Y,W,H", help="initial box (default: the synthetic blob, or a centred 80x80 box)")
    ap.add_argument("--max-pending", type=int, default=2,
                    help="StreamConfig.max_pending_windows: complete windows that may wait before skipping "
                    "(default 2, as evtrack live --max-behind)")
    ap.add_argument("--minutes", type=float, default=None, help="also run a --loop replay this long (memory)")
    ap.add_argument("--loop-only", action="store_true", help="with --minutes: only the long loop run")
    ap.add_argument("--rounds", type=int, default=1,
                    help="run the --keep list this many times, alternating its order; median per configuration")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args()
    if args.window_ms <= 0 or args.seconds <= 0:
        ap.error("--window-ms and --seconds must be > 0")
    if args.rounds < 1 or args.loops < 1 or args.max_pending < 1:
        ap.error("--rounds, --loops and --max-pending must be >= 1")

    load0 = os.getloadavg()
    conv = conversion_rate()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rec = Path(args.recording) if args.recording else Path(tmp) / "rec.npy"
        n = synthetic_recording(rec, args.seconds, args.rate) if not args.recording else None
        if args.loop_only and not args.minutes:
            ap.error("--loop-only needs --minutes")
        keeps = [] if args.loop_only else (args.keep or [None])
        for rnd in range(args.rounds):
            for keep in keeps if rnd % 2 == 0 else keeps[::-1]:
                rows.append({"round": rnd + 1, **run_one(rec, n, args, keep, loop=False)})
        if args.minutes:
            rows.append(run_one(rec, n, args, (args.keep or [None])[0], loop=True))
    print(f"# {platform.node()} {platform.processor() or platform.machine()}, python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs; load average at start {load0[0]:.2f}, at end {os.getloadavg()[0]:.2f}")
    print(f"numpy->dv EventStore: fast {conv['fast_meps']:.2f} M ev/s, push_back loop (baseline) "
          f"{conv['baseline_meps']:.2f} M ev/s, x{conv['speedup']:.1f}")
    for r in rows:  # runs have different columns (warm-up time, RSS series)
        print(" | ".join(f"{k}={v}" for k, v in r.items()))
    summary = summarize_rounds([r for r in rows if not r["loop"]]) if args.rounds > 1 else []
    if summary:
        print("\n| keep | rounds | compute p50 ms, median (min-max) | latency p50 ms, median (min-max) | "
              "latency p99 ms, median |")
        print("|---|---|---|---|---|")
        for row in summary:
            print(f"| {row['keep']} | {row['rounds']} | {row['compute_p50_ms']:.2f} ({row['compute_min']:.2f}-"
                  f"{row['compute_max']:.2f}) | {row['p50_ms']:.2f} ({row['p50_min']:.2f}-{row['p50_max']:.2f}) | "
                  f"{row['p99_ms']:.2f} |")
    if args.json:
        atomic.write_text(args.json, json.dumps({"conversion": conv, "runs": rows, "summary": summary}, indent=1))


def summarize_rounds(rows: list[dict]) -> list[dict]:
    """Per configuration (``keep``), the median and range over its rounds of the per-run p50s."""
    out = []
    for keep in dict.fromkeys(r["keep"] for r in rows):
        these = [r for r in rows if r["keep"] == keep]
        comp = [r["compute_p50_ms"] for r in these if r["compute_p50_ms"] is not None] or [float("nan")]
        p50 = [r["p50_ms"] for r in these]
        out.append({
            "keep": keep, "rounds": len(these),
            "compute_p50_ms": float(np.median(comp)), "compute_min": min(comp), "compute_max": max(comp),
            "p50_ms": float(np.median(p50)), "p50_min": min(p50), "p50_max": max(p50),
            "p99_ms": float(np.median([r["p99_ms"] for r in these])),
        })
    return out


if __name__ == "__main__":
    main()
