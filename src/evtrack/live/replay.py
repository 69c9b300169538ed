"""Replay a recording as a live dv event stream, paced at real time (``evtrack serve``).

The recording is cut into short packets (``packet_us``, 1 ms by default, about what a camera
sends) and each packet is published when the wall clock reaches its end time divided by
``speed``. With ``loop`` the recording repeats with timestamps shifted so the stream stays
monotonic. Without ``loop`` the stream ends with the end-of-stream handshake, so a client
receives every event (see :mod:`evtrack.live.protocol`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from evtrack.errors import UserError
from evtrack.live.network import EventPublisher


@dataclass(frozen=True)
class ReplayConfig:
    """Where and how fast to publish."""

    host: str = "127.0.0.1"  # loopback unless the user names another address
    port: int = 7777
    speed: float = 1.0  # 2.0 = twice real time; 0 = as fast as possible
    loop: bool = False
    packet_us: int = 1000
    wait_for_client: bool = True  # start the clock when the first client connects
    client_timeout_s: float | None = None  # give up waiting for a client after this long
    linger_s: float = 10.0  # after the EOS marker, wait this long for clients to leave
    max_loops: int | None = None  # with loop: stop after this many passes (None = forever)

    def __post_init__(self) -> None:
        if self.speed < 0:
            raise UserError(f"--speed must be >= 0 (0 = unthrottled), got {self.speed}")
        if self.packet_us <= 0:
            raise UserError(f"packet_us must be > 0, got {self.packet_us}")
        if not 0 < self.port < 65536:
            raise UserError(f"--port must be in 1..65535, got {self.port}")


@dataclass
class ReplayStats:
    sent_events: int = 0
    packets: int = 0
    passes: int = 0
    wall_s: float = 0.0
    max_behind_ms: float = 0.0  # worst lateness of a packet against its due time
    drained: bool = False  # every client left after the EOS marker (nothing cut off)


def array_windows(events: np.ndarray, packet_us: int) -> Iterable[tuple[int, int, np.ndarray]]:
    """``(t0, t1, events)`` packets of an in-memory array (for tests and benchmarks)."""
    if len(events) == 0:
        return
    t = events["t"]
    t0 = int(t[0])
    edges = np.arange(t0, int(t[-1]) + packet_us + 1, packet_us, dtype=np.int64)
    idx = np.searchsorted(t, edges)
    for i in range(len(edges) - 1):
        yield int(edges[i]), int(edges[i + 1]), events[idx[i]:idx[i + 1]]


def serve_windows(
    windows: Callable[[], Iterable[tuple[int, int, np.ndarray]]],
    sensor_size: tuple[int, int],
    config: ReplayConfig = ReplayConfig(),
    *,
    on_packet: Callable[[int, int], None] | None = None,
    on_status: Callable[[str], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> ReplayStats:
    """Publish the packets from ``windows()`` (called once per pass) at real time.

    ``on_packet(t_us, n_events)`` is called after each packet (progress bars);
    ``stop()`` returning True ends the replay early (still with the EOS handshake).
    """
    status = on_status or (lambda msg: None)
    stats = ReplayStats()
    with EventPublisher(config.host, config.port, sensor_size, name="evtrack-replay") as pub:
        status(f"serving on tcp://{config.host}:{config.port} ({sensor_size[1]}x{sensor_size[0]})")
        if config.wait_for_client:
            status("waiting for a client to connect")
            if not pub.wait_for_client(config.client_timeout_s):
                raise UserError(f"no client connected to tcp://{config.host}:{config.port} "
                                f"within {config.client_timeout_s:g} s")
            status("client connected; starting the stream")
        start = time.perf_counter()
        offset = 0
        t_ref = None
        while True:
            last_t1 = None
            first_t0 = None
            for t0, t1, ev in windows():
                if stop is not None and stop():
                    break
                if first_t0 is None:
                    first_t0 = t0
                    if t_ref is None:
                        t_ref = t0
                if config.speed > 0:
                    due = start + (t1 + offset - t_ref) / 1e6 / config.speed
                    now = time.perf_counter()
                    if due > now:
                        time.sleep(due - now)
                    else:
                        stats.max_behind_ms = max(stats.max_behind_ms, (now - due) * 1e3)
                if len(ev):
                    if offset:
                        ev = ev.copy()
                        ev["t"] += offset
                    pub.publish(ev)
                    stats.sent_events += len(ev)
                    stats.packets += 1
                last_t1 = t1
                if on_packet is not None:
                    on_packet(t1 + offset, len(ev))
            stats.passes += 1
            if last_t1 is None:
                if stats.passes == 1:
                    raise UserError("the recording holds no events; nothing to serve")
                break
            if not config.loop or (stop is not None and stop()):
                break
            if config.max_loops is not None and stats.passes >= config.max_loops:
                break
            offset += last_t1 - first_t0
        status(f"sent {stats.sent_events} events; end of stream, waiting for clients to disconnect")
        stats.drained = pub.finish(config.linger_s)
        stats.wall_s = time.perf_counter() - start
        if pub.errors:
            status(f"network errors seen: {'; '.join(pub.errors[:3])}")
    return stats


def serve_recording(path, config: ReplayConfig = ReplayConfig(), *, sensor_size=None, progress: bool = True,
                    on_status: Callable[[str], None] | None = None) -> ReplayStats:
    """Publish a recording file (any format :func:`evtrack.io.open_events` reads)."""
    from tqdm import tqdm

    from evtrack.io import open_events

    reader = open_events(path, sensor_size=sensor_size)
    with reader:
        info = reader.info
        if info.sensor_size is None:
            raise UserError(f"{path}: the file does not store its sensor size; pass --sensor-size H W")
        duration_s = None
        if info.t_start_us is not None and info.t_end_us is not None:
            duration_s = (info.t_end_us - info.t_start_us) / 1e6
        bar = tqdm(total=None if config.loop else duration_s, unit="s", unit_scale=False, disable=not progress,
                   desc="replay", bar_format="{l_bar}{bar}| {n:.1f}/{total_fmt} s [{elapsed}<{remaining}]"
                   if duration_s and not config.loop else None)
        state = {"t0": None, "shown": 0.0}

        def on_packet(t_us: int, n: int) -> None:
            if state["t0"] is None:
                state["t0"] = t_us
            now = (t_us - state["t0"]) / 1e6
            if now - state["shown"] >= 0.1:
                bar.update(now - state["shown"])
                state["shown"] = now

        def windows():
            for w in reader.windows(config.packet_us):
                yield w.t0_us, w.t1_us, w.events

        try:
            return serve_windows(windows, info.sensor_size, config, on_packet=on_packet, on_status=on_status)
        finally:
            bar.close()
