"""Training pairs (template, search, target box) sampled from annotated event sequences.

Follows SDTrack/OSTrack: a visible template frame and a visible search frame at most ``max_gap``
frames apart; the template is a ``template_factor`` (2x) square around the true box, the search a
``search_factor`` (4x) square around a jittered box (shift + log-normal scale), both rendered from the
events of their frame interval straight into the network resolution (no PNG preprocessing). Each
sequence's events are loaded into memory once. :class:`BatchPrefetcher` builds batches in a
background thread so data never waits on the optimiser step.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from evtrack.datasets.sequence import interval_edges
from evtrack.errors import UserError
from evtrack.network.config import TrackerConfig
from evtrack.network.inputs import Representation, frame_representation
from evtrack.tracker.crops import box_to_crop, crop_around, search_side, template_crop


@dataclass(frozen=True)
class SamplerConfig:
    max_gap: int = 100  # frames between template and search
    center_jitter: float = 3.0  # search centre shift, up to +-0.5 * this * sqrt(w h)
    scale_jitter: float = 0.25  # search box size multiplied by exp(N(0, this))
    flip_prob: float = 0.5  # horizontal flip of the pair
    min_box_px: float = 2.0  # frames whose box is thinner than this are not sampled
    negative_prob: float = 0.2  # share of pairs whose search crop does not hold the target


# target of a negative pair: zero width and height (positives are clipped to at least 1e-3)
NEGATIVE = np.array([0.5, 0.5, 0.0, 0.0], dtype=np.float32)


@dataclass
class SequenceData:
    """One training sequence held in memory: events and per-frame interval bounds."""

    name: str
    events: np.ndarray  # canonical structured array, sorted by t
    boxes: np.ndarray  # (N, 4) x, y, w, h
    valid: np.ndarray  # (N,) bool: visible and non-degenerate
    edges_us: np.ndarray  # (N + 1,) frame i is [edges[i], edges[i+1])
    sensor_size: tuple[int, int]
    absent: np.ndarray | None = None  # (N,) bool: flagged absent (hidden or out of view); None = never
    group: int = 0  # which training source it came from (``PairSampler(group_shares=...)``)

    def frame_events(self, i: int) -> np.ndarray:
        t = self.events["t"]
        a, b = np.searchsorted(t, [self.edges_us[i], self.edges_us[i + 1]], side="left")
        return self.events[a:b]


def load_sequence_data(seq, min_box_px: float = 2.0) -> SequenceData:
    """Read a :class:`evtrack.datasets.Sequence` (events into memory) for sampling."""
    with seq.open() as reader:
        events = reader.read_all()
        times = seq.frame_times_us(reader)
        sensor = seq.sensor_size or reader.info.sensor_size
    if sensor is None:
        raise UserError(f"sequence {seq.name!r}: sensor size unknown; the recording does not state it")
    boxes = np.asarray(seq.boxes, dtype=np.float64)
    absent = np.asarray(seq.absent, dtype=bool)
    valid = ~absent & (boxes[:, 2] >= min_box_px) & (boxes[:, 3] >= min_box_px)
    return SequenceData(seq.name, events, boxes, valid, interval_edges(times), tuple(sensor), absent)


class PairSampler:
    """Random (template, search, box) training pairs; deterministic for a given ``seed``."""

    def __init__(
        self,
        sequences: list[SequenceData],
        cfg: TrackerConfig,
        scfg: SamplerConfig = SamplerConfig(),
        *,
        seed: int = 0,
        representation: Representation | None = None,
        group_shares: list[float] | None = None,
    ) -> None:
        self.sequences = [s for s in sequences if s.valid.sum() >= 2]
        if not self.sequences:
            raise UserError("no training sequence has at least two frames with a visible target")
        self.cfg, self.scfg = cfg, scfg
        self.rng = np.random.default_rng(seed)
        self.represent = representation or frame_representation(cfg)
        # sample sequences in proportion to their number of usable frames (within their group, whose
        # share of all pairs is group_shares[group] when given: e.g. real footage vs procedural scenes)
        w = np.array([s.valid.sum() for s in self.sequences], dtype=np.float64)
        if group_shares is not None:
            groups = np.array([s.group for s in self.sequences])
            if groups.max() >= len(group_shares) or min(group_shares) < 0 or sum(group_shares) <= 0:
                raise UserError(f"group_shares {group_shares}: expected one non-negative share per data source "
                                f"({groups.max() + 1} sources), not all zero")
            totals = np.bincount(groups, weights=w, minlength=len(group_shares))
            w = w * np.asarray(group_shares, dtype=np.float64)[groups] / np.maximum(totals[groups], 1.0)
        self.seq_p = w / w.sum()

    def _frame(self, seq: SequenceData, i: int, crop, size: int) -> np.ndarray:
        return self.represent(
            seq.frame_events(i), seq.sensor_size, t0_us=int(seq.edges_us[i]), t1_us=int(seq.edges_us[i + 1]),
            crop=crop, out_size=(size, size),
        )

    def sample(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``template [3, Hz, Wz]``, ``search [3, Hx, Wx]`` float32 and the target ``[4]`` cx,cy,w,h in 0..1."""
        rng, cfg, sc = self.rng, self.cfg, self.scfg
        seq = self.sequences[rng.choice(len(self.sequences), p=self.seq_p)]
        idx = np.flatnonzero(seq.valid)
        i = int(rng.choice(idx))
        near = idx[np.abs(idx - i) <= sc.max_gap]
        j = int(rng.choice(near))
        zb, xb = seq.boxes[i], seq.boxes[j]
        z_crop = template_crop(zb, cfg)
        if sc.negative_prob > 0 and rng.random() < sc.negative_prob:
            x_crop, j = self._negative_crop(seq, i)
            if x_crop is not None:
                return self._render_pair(seq, i, z_crop, j, x_crop, NEGATIVE.copy())
        # jittered search box: the tracker never sees the target exactly centred
        scale = np.exp(rng.normal(0.0, sc.scale_jitter, 2))
        jw, jh = xb[2] * scale[0], xb[3] * scale[1]
        max_off = 0.5 * sc.center_jitter * np.sqrt(jw * jh)
        cx = xb[0] + xb[2] / 2 + rng.uniform(-1, 1) * max_off
        cy = xb[1] + xb[3] / 2 + rng.uniform(-1, 1) * max_off
        side = search_side(np.array([0, 0, jw, jh]), cfg)
        # keep the true centre inside the crop (with a margin of half a feature cell)
        half = side / 2 * (1 - 1.0 / cfg.search_feat)
        cx = float(np.clip(cx, xb[0] + xb[2] / 2 - half, xb[0] + xb[2] / 2 + half))
        cy = float(np.clip(cy, xb[1] + xb[3] / 2 - half, xb[1] + xb[3] / 2 + half))
        x_crop = crop_around(cx, cy, side)
        target = box_to_crop(xb, x_crop)
        target[2:] = np.clip(target[2:], 1e-3, 1.0)
        return self._render_pair(seq, i, z_crop, j, x_crop, target)

    def _render_pair(self, seq: SequenceData, i: int, z_crop, j: int, x_crop, target: np.ndarray):
        """Template of frame ``i`` and search of frame ``j``, flipped together (target too) at random.
        A negative target (centre 0.5, zero size) is unchanged by the flip."""
        z = self._frame(seq, i, z_crop, self.cfg.template_size)
        x = self._frame(seq, j, x_crop, self.cfg.search_size)
        if self.rng.random() < self.scfg.flip_prob:
            z, x = z[:, :, ::-1], x[:, :, ::-1]
            target[0] = 1.0 - target[0]
        return np.ascontiguousarray(z), np.ascontiguousarray(x), target

    def _negative_crop(self, seq: SequenceData, i: int):
        """A search crop without the target near frame ``i``: ``(crop, frame)`` or ``(None, -1)``."""
        rng, cfg, sc = self.rng, self.cfg, self.scfg
        frames = np.arange(len(seq.boxes))
        absent = seq.absent if seq.absent is not None else np.zeros(len(frames), dtype=bool)
        hidden = np.flatnonzero(absent & (np.abs(frames - i) <= sc.max_gap) & (seq.boxes[:, 2] > 0))
        if hidden.size and rng.random() < 0.5:  # the target is there but hidden: crop where it would be
            j = int(rng.choice(hidden))
            b = seq.boxes[j]
            side = search_side(b, cfg)
            off = rng.uniform(-0.25, 0.25, 2) * side
            return crop_around(b[0] + b[2] / 2 + off[0], b[1] + b[3] / 2 + off[1], side), j
        idx = np.flatnonzero(seq.valid)
        j = int(rng.choice(idx[np.abs(idx - i) <= sc.max_gap]))
        b = seq.boxes[j]
        side = search_side(b, cfg) * float(np.exp(rng.normal(0.0, sc.scale_jitter)))
        hgt, wid = seq.sensor_size
        for _ in range(20):  # a crop anywhere on the sensor that does not touch the target box
            cx, cy = rng.uniform(0, wid), rng.uniform(0, hgt)
            x0, y0 = cx - side / 2, cy - side / 2
            if x0 >= b[0] + b[2] or x0 + side <= b[0] or y0 >= b[1] + b[3] or y0 + side <= b[1]:
                return crop_around(cx, cy, side), j
        return None, -1

    def batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        zs, xs, ts = zip(*(self.sample() for _ in range(n)), strict=True)
        return torch.from_numpy(np.stack(zs)), torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ts))


class BatchPrefetcher:
    """Iterator of batches built by a daemon thread (``depth`` batches ahead)."""

    def __init__(self, sampler: PairSampler, batch_size: int, depth: int = 3) -> None:
        self.sampler, self.batch_size = sampler, batch_size
        self.q: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="evtrack-batches", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                item = self.sampler.batch(self.batch_size)
                while not self._stop.is_set():
                    try:
                        self.q.put(item, timeout=0.2)
                        break
                    except queue.Full:
                        continue
        except BaseException as exc:  # surface sampler errors in the training loop
            self.q.put(exc)

    def __iter__(self) -> Iterable:
        return self

    def __next__(self):
        item = self.q.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
