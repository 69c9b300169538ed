"""Convert a video or a frame folder into an event recording (what ``evtrack simulate`` does).

Between two input frames the simulator interpolates log intensity linearly per pixel and gives
every threshold crossing its own timestamp. That is exact for brightness that changes in place, but
a moving edge that jumps several pixels between frames would make all pixels it crosses fire
together instead of one after the other. So, when the optical flow between two frames exceeds
``max_px_per_step``, intermediate frames are synthesised by flow-based warping (a light version of
what v2e does with Super-SloMo) and fed to the simulator as sub-steps.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from evtrack.errors import UserError
from evtrack.sim.esim import EventSimulator, SensorConfig
from evtrack.sim.video import FrameSource, read_groundtruth


@dataclass(frozen=True)
class UpsampleConfig:
    enabled: bool = True
    max_px_per_step: float = 1.0  # largest motion (99th percentile over changing pixels) left to one step
    max_substeps: int = 32
    min_log_change: float = 0.1  # pixels whose log intensity changes less than this are not "moving"
    log_eps: float = 0.02


def optical_flow(f0: np.ndarray, f1: np.ndarray) -> np.ndarray:
    """Dense flow ``(h, w, 2)`` from f0 to f1 (DIS, refined down to full resolution).

    OpenCV's DIS presets stop at a quarter (fast) or half (medium) of the resolution, which
    underestimates the motion of small or thin objects several times; finest scale 0 does not.
    """
    a = np.clip(f0 * 255, 0, 255).astype(np.uint8)
    b = np.clip(f1 * 255, 0, 255).astype(np.uint8)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
    dis.setFinestScale(0)
    return dis.calc(a, b, None)


def substeps_needed(f0: np.ndarray, f1: np.ndarray, cfg: UpsampleConfig) -> tuple[int, np.ndarray | None]:
    """How many sub-steps the motion from ``f0`` to ``f1`` needs, and the flow (None if one step).

    The motion is the 99th percentile of the flow magnitude over the pixels whose log intensity
    changes by at least ``min_log_change`` (the pixels that will fire): a percentile over the whole
    frame would ignore a small fast target on a still background, the usual tracking case.
    """
    if not cfg.enabled:
        return 1, None
    changing = np.abs(np.log(f1 + cfg.log_eps) - np.log(f0 + cfg.log_eps)) >= cfg.min_log_change
    if not changing.any():
        return 1, None
    flow = optical_flow(f0, f1)
    mag = np.hypot(flow[..., 0], flow[..., 1])[changing]
    motion = float(np.percentile(mag, 99))
    n = int(np.clip(np.ceil(motion / cfg.max_px_per_step), 1, cfg.max_substeps))
    return n, (flow if n > 1 else None)


def interpolate(f0: np.ndarray, f1: np.ndarray, flow: np.ndarray, alpha: float) -> np.ndarray:
    """Frame at fraction ``alpha`` between f0 and f1: both warped along the flow, then blended."""
    h, w = f0.shape
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    fx, fy = flow[..., 0], flow[..., 1]
    w0 = cv2.remap(f0, gx - alpha * fx, gy - alpha * fy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    w1 = cv2.remap(f1, gx + (1 - alpha) * fx, gy + (1 - alpha) * fy, cv2.INTER_LINEAR,
                   borderMode=cv2.BORDER_REPLICATE)
    return (1 - alpha) * w0 + alpha * w1


@dataclass(frozen=True)
class ConvertResult:
    n_events: int
    n_frames: int
    n_substeps: int  # frames fed to the simulator, including synthesised ones
    frame_timestamps_us: np.ndarray
    boxes: np.ndarray | None


def simulate_frames(source: FrameSource, out: str | Path, sensor: SensorConfig, *, seed: int = 0,
                    upsample: UpsampleConfig = UpsampleConfig(), show_progress: bool = True) -> ConvertResult:
    """Simulate events for every frame of ``source`` and write them to ``out`` (.h5/.hdf5/.aedat4).

    Input frame i has timestamp ``(i + 1) * 1e6 / fps`` us (frame 0 marks the end of the first,
    empty, interval). When the source has ground truth, boxes scaled to the sensor and the frame
    timestamps are written next to ``out`` in the FE108 layout.
    """
    from tqdm import tqdm

    out = Path(out)
    ext = out.suffix.lower()
    if ext not in (".h5", ".hdf5", ".aedat4"):
        raise UserError(f"{out}: unknown output extension {out.suffix!r}; expected .h5, .hdf5 or .aedat4")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"{out}: output directory {out.parent} does not exist")
    h, w = sensor.height, sensor.width
    fh, fw = source.frame_size
    boxes = None
    if source.groundtruth is not None:
        boxes = read_groundtruth(source.groundtruth) * np.array([w / fw, h / fh, w / fw, h / fh])
        if source.n_frames is not None and source.is_folder and len(boxes) != source.n_frames:
            raise UserError(f"{source.groundtruth}: {len(boxes)} boxes for {source.n_frames} frames; "
                            "expected one box per frame")
    rng = np.random.default_rng(seed)
    sim = EventSimulator(sensor, rng)
    period_us = 1e6 / source.fps
    # frame times are known up front for frame folders; a video's frame count is only known at the end
    known = None
    if source.is_folder and source.n_frames:
        known = np.round((np.arange(source.n_frames) + 1) * period_us).astype(np.int64)
    spool = None
    if ext == ".aedat4" and known is not None:
        from evtrack.io.aedat4 import AEDAT4EventWriter

        writer = AEDAT4EventWriter(out, sensor_size=(h, w), frame_timestamps_us=known)
    else:
        from evtrack.io.hdf5 import HDF5EventWriter

        if ext == ".aedat4":
            # AEDAT4 interleaves the frame stream with the events, so it needs the frame times
            # first: spool the events to a hidden HDF5 file beside OUT, then copy them over
            spool = out.with_name(f".{out.stem}.spool-{os.getpid()}.h5")
            writer = HDF5EventWriter(spool, sensor_size=(h, w), compression="lzf")
        else:
            writer = HDF5EventWriter(out, sensor_size=(h, w), frame_timestamps_us=known,
                                     attrs={"generator": "evtrack simulate", "source": source.path.name})
    n_events = n_steps = 0
    times: list[int] = []
    prev = None
    bar = tqdm(source, total=source.n_frames, desc="simulate", unit="frame", disable=not show_progress)
    try:
        for i, frame in bar:
            if frame.shape != (h, w):
                frame = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
            t_us = int(round((i + 1) * period_us))
            if prev is not None:
                n_sub, flow = substeps_needed(prev[1], frame, upsample)
                t_prev = prev[0]
                for k in range(1, n_sub):
                    a = k / n_sub
                    t_k = t_prev + int(round(a * (t_us - t_prev)))
                    if t_k > sim.last_time_us:
                        ev = sim.feed(interpolate(prev[1], frame, flow, a), t_k)
                        n_steps += 1
                        n_events += len(ev)
                        writer.write(ev)
            ev = sim.feed(frame, t_us)
            n_steps += 1
            n_events += len(ev)
            writer.write(ev)
            prev = (t_us, frame)
            times.append(t_us)
        if not times:
            raise UserError(f"{source.path}: no frames could be read")
        ts = np.asarray(times, dtype=np.int64)
        if boxes is not None and len(boxes) != len(ts):
            raise UserError(f"{source.groundtruth}: {len(boxes)} boxes for {len(ts)} frames; "
                            "expected one box per frame")
        if spool is None:
            if known is None:
                writer.set_frame_timestamps(ts)
            writer.close()
        else:
            writer.close()
            _spool_to_aedat4(spool, out, (h, w), ts)
    except BaseException:
        writer.abort()
        raise
    finally:
        bar.close()
        if spool is not None:
            spool.unlink(missing_ok=True)
    if boxes is not None:
        write_groundtruth(out.parent, boxes, ts)
    return ConvertResult(n_events, len(ts), n_steps, ts, boxes)


def _spool_to_aedat4(spool: Path, out: Path, sensor_size: tuple[int, int], ts: np.ndarray) -> None:
    """Copy the spooled events into ``out`` (AEDAT4, with the frame times as a frame stream)."""
    from evtrack.io.aedat4 import AEDAT4EventWriter
    from evtrack.io.hdf5 import HDF5Reader

    with HDF5Reader(spool) as reader, AEDAT4EventWriter(out, sensor_size=sensor_size,
                                                        frame_timestamps_us=ts) as writer:
        for chunk in reader.chunks():
            writer.write(chunk)


def write_groundtruth(folder: Path, boxes: np.ndarray, ts: np.ndarray, absent: np.ndarray | None = None) -> None:
    """FE108-style ground truth in ``folder``: boxes, absent labels (default: a zero side), frame times."""
    from evtrack.io.atomic import write_text

    if absent is None:
        absent = ~(boxes[:, 2:] > 0).all(axis=1)
    files = {
        "groundtruth_rect.txt": "".join(",".join(f"{v:.3f}" for v in b) + "\n" for b in boxes),
        "absent_label.txt": "".join(f"{int(a)}\n" for a in absent),
        "frame_timestamps.txt": "".join(f"{int(t)}\n" for t in ts),
    }
    for name, text in files.items():
        write_text(folder / name, text)
