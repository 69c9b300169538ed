"""Online tracking: ``Tracker.init(events, box)`` then ``Tracker.update(events) -> TrackResult``.

The tracker is fed event packets by any reader, one per ground-truth frame interval (benchmarks,
:func:`track_sequence`) or per fixed time window (live use). Following SDTrack, the template comes
from the first frame only; each update crops a ``search_factor`` square around the previous box
(shifted by a constant-velocity prediction with ``motion > 0``), renders it straight at the network
resolution, takes the peak of the Hann-windowed score map (OSTrack's motion prior) and clips the new
box to the sensor. A peak below ``min_score`` means "lost": the box coasts instead of jumping to
whatever the search region holds. Checkpoints store these options tuned for their weights.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from evtrack.datasets.sequence import interval_edges
from evtrack.errors import UserError
from evtrack.network.head import decode_boxes, hann_window
from evtrack.network.inputs import frame_representation
from evtrack.network.model import SDTrackNet
from evtrack.shipped import SHIPPED_CHECKPOINT, resolve_checkpoint, shipped_checkpoint, shipped_checkpoints  # noqa: F401  (re-exported)
from evtrack.tokens import block_input_tokens
from evtrack.tracker.crops import (
    check_init_box,
    clip_box,
    crop_around,
    crop_to_box,
    search_side,
    template_crop,
)

DEFAULT_SIZE_LR = 0.5
DEFAULT_MIN_SCORE = 0.0
DEFAULT_MOTION = 0.0
DEFAULT_WINDOW_POWER = 1.0
VELOCITY_SMOOTHING = 0.5  # weight of the newest displacement in the velocity estimate
COAST_DECAY = 0.9  # velocity kept per frame while the target is lost
# Op counting runs on every COUNT_EVERY-th network call (the 1st, the 1+N-th, ...): counting one call
# costs about as much as the call itself, so sampling keeps tracking with counting on within ~1.3x of
# its plain speed; SOPs/energy are averages over the counted calls (same call indices for a dense and
# a pruned tracker on the same sequence, so their ratio is paired).
DEFAULT_COUNT_EVERY = 4
# a template crop with events on fewer than this share of its pixels holds no usable appearance (the
# first frame of a recording converted from video has no events: nothing changed before it)
MIN_TEMPLATE_ACTIVE = 0.01


@dataclass(frozen=True)
class TrackResult:
    """One tracked frame: ``box`` x, y, w, h in sensor pixels, peak ``score`` (0..1), ``latency_s``."""

    box: np.ndarray
    score: float
    latency_s: float
    search_crop: tuple[float, float, float, float] | None = None


@dataclass
class SequenceResult:
    """Per-frame output of :func:`track_sequence` (frame 0 is the initial box)."""

    boxes: np.ndarray  # (N, 4)
    scores: np.ndarray  # (N,)
    latency_s: np.ndarray  # (N,) time spent in init/update (events in, box out)
    wall_s: float = 0.0  # whole loop including reading events
    stats: dict = field(default_factory=dict)

    @property
    def fps(self) -> float:
        """Tracked frames per second, end to end (reading + representation + network), frames 1..N-1."""
        n = max(len(self.boxes) - 1, 0)
        return n / self.wall_s if self.wall_s > 0 else 0.0


class Tracker:
    """Single-object tracker around an :class:`SDTrackNet` (inference only; BN folded on construction).

    Args:
        model: the network; it is switched to eval mode and its BatchNorm folded (in place).
        sensor_size: ``(height, width)``; may also be given to :meth:`init`.
        hann: multiply the score map by a Hann window (penalises large jumps).
        window_power: the window is raised to this power (> 0; 1 = OSTrack's window). A higher power keeps
            the peak nearer the previous position: a look-alike in the search region must score much
            higher than the target to take the box over.
        size_lr: how far the box size moves towards each new prediction (1 = no smoothing). Damping
            the size keeps one bad frame from growing the search region in a feedback loop.
        min_score: below this peak score the target is taken as lost/occluded in this packet and
            the box coasts (see ``motion``) instead of following the peak (0 = always follow the peak).
        motion: constant-velocity prior, 0..1: the search crop is centred on the previous centre plus
            ``motion`` times the smoothed per-frame displacement, and while the target is lost the box
            coasts along that velocity (decaying by ``COAST_DECAY`` a frame). 0 = SDTrack's behaviour
            (crop on the previous box, hold it when lost).
        count_ops: accumulate SOPs/MACs/energy/tokens via ``evtrack.metrics.ops``.
        count_every: with ``count_ops``, count every N-th network call only (1 = every call; default
            ``DEFAULT_COUNT_EVERY``); ``stats()`` reports averages over the counted calls, ``ops_frames``
            how many were counted, and ``fps`` from the uncounted calls (the tracker's real speed).
        runner: what runs the network (``evtrack.runtime.runners``; default: ``model`` in torch eager
            mode). Op counting hooks the torch model, so it needs the torch runner.
    """

    def __init__(
        self,
        model: SDTrackNet,
        *,
        sensor_size: tuple[int, int] | None = None,
        hann: bool = True,
        window_power: float = DEFAULT_WINDOW_POWER,
        size_lr: float = DEFAULT_SIZE_LR,
        min_score: float = DEFAULT_MIN_SCORE,
        motion: float = DEFAULT_MOTION,
        count_ops: bool = False,
        count_every: int = DEFAULT_COUNT_EVERY,
        representation=None,
        runner=None,
    ) -> None:
        from evtrack.runtime.runners import TorchRunner

        self.model = model.eval()
        if not getattr(model, "fused", False):
            model.fuse()
        self.runner = runner if runner is not None else TorchRunner(self.model)
        if count_ops and not isinstance(self.runner, TorchRunner):
            raise UserError(f"op counting needs the torch runtime; this tracker runs on {self.runner.name}")
        self.cfg = model.cfg
        self.sensor_size = tuple(sensor_size) if sensor_size is not None else None
        n = self.cfg.search_feat
        if not window_power > 0:
            raise UserError(f"window_power must be > 0, got {window_power}")
        self.window_power = float(window_power)
        self.window = hann_window(n, n) ** self.window_power if hann else None
        self.represent = representation or frame_representation(self.cfg)
        if not 0.0 <= size_lr <= 1.0:
            raise UserError(f"size_lr must be in [0, 1], got {size_lr}")
        self.size_lr = float(size_lr)
        if not 0.0 <= min_score < 1.0:
            raise UserError(f"min_score must be in [0, 1), got {min_score}")
        self.min_score = float(min_score)
        if not 0.0 <= motion <= 1.0:
            raise UserError(f"motion must be in [0, 1], got {motion}")
        self.motion = float(motion)
        self._velocity = np.zeros(2)
        self.count_ops = bool(count_ops)
        if int(count_every) < 1:
            raise UserError(f"count_every must be >= 1, got {count_every}")
        self.count_every = int(count_every)
        self._counter = None
        self._calls = 0  # network calls (updates with events in the search region)
        self._plain_frames = 0  # updates not slowed down by op counting
        self._plain_s = 0.0
        self.box: np.ndarray | None = None
        self._z_feat: torch.Tensor | None = None
        self._frames = 0
        self._busy_s = 0.0

    # ------------------------------------------------------------------ frames
    def _frame(self, events: np.ndarray, crop, size: int, t0_us, t1_us) -> torch.Tensor:
        img = self.represent(events, self.sensor_size, t0_us=t0_us, t1_us=t1_us, crop=crop, out_size=(size, size))
        return torch.from_numpy(np.ascontiguousarray(img)).unsqueeze(0)

    def init(
        self,
        events: np.ndarray,
        box,
        *,
        sensor_size: tuple[int, int] | None = None,
        t0_us: int | None = None,
        t1_us: int | None = None,
    ) -> TrackResult:
        """Start a sequence: cache the template features of ``box`` in this first event packet."""
        t = time.perf_counter()
        if sensor_size is not None:
            self.sensor_size = tuple(sensor_size)
        if self.sensor_size is None:
            raise UserError("Tracker.init: sensor size unknown; pass sensor_size=(height, width)")
        self._reset_pruning()
        self.box = check_init_box(box, self.sensor_size)
        self._velocity = np.zeros(2)
        self._z_feat = None
        crop = self._template(events, t0_us, t1_us)
        return TrackResult(self.box.copy(), 1.0, time.perf_counter() - t, crop)

    def _template(self, events: np.ndarray, t0_us, t1_us) -> tuple[float, float, float, float]:
        """Cache the template features of the current box in ``events``, unless the crop (returned) holds
        almost no events, e.g. the first frame of a video converted to events: the template is then taken
        from the next packet that has them, at the box given to :meth:`init`."""
        crop = template_crop(self.box, self.cfg)
        z = self._frame(events, crop, self.cfg.template_size, t0_us, t1_us)
        if float((z[0, :2] != 0).any(0).float().mean()) >= MIN_TEMPLATE_ACTIVE:
            self._z_feat = self.runner.template(z)
        return crop

    def _account(self, dt: float, counted: bool) -> None:
        """Add one update's time to the stats (op-counted updates are left out of ``fps``)."""
        self._frames += 1
        self._busy_s += dt
        if not counted:
            self._plain_frames += 1
            self._plain_s += dt

    def _reset_pruning(self) -> None:
        self.runner.reset()

    def update(self, events: np.ndarray, *, t0_us: int | None = None, t1_us: int | None = None) -> TrackResult:
        """Track one event packet; returns the new box (clipped to the sensor) and its score."""
        if self.box is None:
            raise UserError("Tracker.update called before Tracker.init")
        t = time.perf_counter()
        if self._z_feat is None:  # no template yet (init saw no events): take it here, keep the box
            crop = self._template(events, t0_us, t1_us)
            dt = time.perf_counter() - t
            self._account(dt, counted=False)
            return TrackResult(self.box.copy(), 0.0, dt, crop)
        b = self.box
        prev_c = np.array([b[0] + b[2] / 2, b[1] + b[3] / 2])
        x, crop = self.search_input(events, t0_us=t0_us, t1_us=t1_us)
        counted = False
        found = False
        if not x.numpy().any():  # numpy: ~5x cheaper than torch's any() on one crop
            # no events in the search region (static scene or a gap): nothing to see
            score = 0.0
        else:
            counted = self.count_ops and self._calls % self.count_every == 0
            self._calls += 1
            with self._ops(counted):  # the op counter works at the torch-function level
                out = self.runner.search(self._z_feat, x)
            nb, sc = decode_boxes(out, self.window)
            score = float(sc[0])
            if score >= self.min_score:
                found = True
                pred = crop_to_box(nb[0].numpy(), crop)
                cx, cy = pred[0] + pred[2] / 2, pred[1] + pred[3] / 2
                w = b[2] + self.size_lr * (pred[2] - b[2])
                h = b[3] + self.size_lr * (pred[3] - b[3])
                self.box = clip_box(np.array([cx - w / 2, cy - h / 2, w, h]), self.sensor_size)
                step = np.array([cx, cy]) - prev_c
                self._velocity += VELOCITY_SMOOTHING * (step - self._velocity)
        if not found and self.motion > 0:  # lost: coast along the last velocity, slowing down
            self._velocity *= COAST_DECAY
            c = prev_c + self.motion * self._velocity
            self.box = clip_box(np.array([c[0] - b[2] / 2, c[1] - b[3] / 2, b[2], b[3]]), self.sensor_size)
        dt = time.perf_counter() - t
        self._account(dt, counted)
        return TrackResult(self.box.copy(), score, dt, crop)

    def warm_up(self, n_updates: int = 3) -> float:
        """Run init and a few updates on made-up events, then forget them; returns the seconds spent.

        Why: the first real update otherwise pays for Numba kernels compiling (or loading from their
        cache) and torch's first-call set-up, about 1.5 s, which a live stream turns into dropped
        windows. Sequence state and all counters are reset afterwards, so results and stats are
        exactly those of a tracker that was never warmed up.
        """
        from evtrack.io.events import random_events

        t = time.perf_counter()
        saved_sensor, saved_count = self.sensor_size, self.count_ops
        h, w = saved_sensor or (260, 346)
        window_us = 20_000
        ev = random_events(max(2_000, h * w // 10), height=h, width=w, duration_us=window_us, seed=0)
        self.count_ops = False
        warming = getattr(self.runner, "warming", None)  # a runner of several graphs runs each of them
        try:
            with warming() if warming is not None else contextlib.nullcontext():
                self.init(ev, (w / 2 - 20, h / 2 - 20, 40, 40), sensor_size=(h, w), t0_us=0, t1_us=window_us)
                for _ in range(max(n_updates, getattr(self.runner, "warm_up_calls", 0))):
                    self.update(ev, t0_us=0, t1_us=window_us)
        finally:
            self.sensor_size, self.count_ops = saved_sensor, saved_count
            self.box, self._z_feat = None, None
            self._velocity = np.zeros(2)
            self._calls = self._frames = self._plain_frames = 0
            self._busy_s = self._plain_s = 0.0
            self._reset_pruning()
        return time.perf_counter() - t

    @property
    def template_features(self) -> torch.Tensor | None:
        """The cached template features every update reuses (None until a packet with events)."""
        return self._z_feat

    def search_input(
        self, events: np.ndarray, *, t0_us: int | None = None, t1_us: int | None = None
    ) -> tuple[torch.Tensor, tuple[float, float, float, float]]:
        """The network input ``[1, C, S, S]`` the next :meth:`update` renders from ``events`` and the crop
        (sensor pixels) it covers: a ``search_factor`` square around the box shifted by the motion prior.
        Public so that measurements (``benchmarks/pruning.py``) time the network on a real crop."""
        b = self.box
        side = search_side(b, self.cfg)
        guess = np.array([b[0] + b[2] / 2, b[1] + b[3] / 2]) + self.motion * self._velocity
        crop = crop_around(guess[0], guess[1], side)
        return self._frame(events, crop, self.cfg.search_size, t0_us, t1_us), crop

    def _ops(self, counted: bool = True):
        if not (self.count_ops and counted):
            return contextlib.nullcontext()
        if self._counter is None:
            from evtrack.metrics.ops import OpCounter

            self._counter = OpCounter(self.model)
        return self._counter

    def stats(self) -> dict:
        """Accumulated ``frames`` (updates) and ``fps``; with ``count_ops`` also, per network call,
        ``sops``, ``macs``, ``transformer_sops``, ``energy_mj`` (E = T (4.6 pJ MAC + 0.9 pJ SOP)),
        ``tokens_kept`` (tokens processed by all transformer blocks together), ``tokens_kept_frac``
        (that over the dense count) and ``ops_frames`` (calls counted, see ``count_every``).
        ``pruning`` is the model's token-pruning settings dict (None when dense).

        ``fps`` is measured on the updates that were not op-counted when there are any (counting
        slows a call down about 2x), else on all updates.
        """
        frames, busy = (self._plain_frames, self._plain_s) if self._plain_frames else (self._frames, self._busy_s)
        out: dict = {"frames": self._frames, "fps": frames / busy if busy > 0 else 0.0,
                     "pruning": getattr(self.model, "pruning", None)}
        if self._counter is not None and self._counter.frames:
            s = self._counter.summary()
            # what every block of the dense stack reads (stages that merge tokens read fewer)
            dense_tokens = max(sum(block_input_tokens(self.model.token_stack().blocks, self.model.token_layout)), 1)
            out.update(sops=s["sops"], macs=s["macs"], transformer_sops=s["transformer_sops"],
                       energy_mj=s["energy_mj"], tokens_kept=s["tokens"], tokens_kept_frac=s["tokens"] / dense_tokens,
                       ops_frames=s["frames"])
        return out


def track_sequence(
    tracker,
    reader,
    init_box,
    edges_us,
    *,
    progress: bool = False,
    desc: str = "track",
) -> SequenceResult:
    """Track a recording frame by frame (design.md): ``edges_us`` are the N frame timestamps; frame i
    covers ``[edges[i-1], edges[i])`` and frame 0 the interval of the same length before ``edges[0]``;
    frame 0 initialises the tracker with ``init_box``."""
    from tqdm import tqdm

    edges = interval_edges(np.asarray(edges_us, dtype=np.int64))
    n = len(edges) - 1
    sensor = getattr(reader.info, "sensor_size", None) or getattr(tracker, "sensor_size", None)
    if sensor is None:
        raise UserError(f"{getattr(reader.info, 'path', 'recording')}: sensor size unknown; pass --sensor-size H W")
    boxes = np.zeros((n, 4))
    scores = np.zeros(n)
    lat = np.zeros(n)
    t_start = None
    # closed (and its line cleared) on errors too, so an error message starts on a line of its own
    with tqdm(total=n, desc=desc, unit="frame", disable=not progress, leave=False) as bar:
        for i, ev in enumerate(reader.slices(edges)):
            t0, t1 = int(edges[i]), int(edges[i + 1])
            if i == 0:
                r = tracker.init(ev, init_box, sensor_size=tuple(sensor), t0_us=t0, t1_us=t1)
                t_start = time.perf_counter()
            else:
                r = tracker.update(ev, t0_us=t0, t1_us=t1)
            boxes[i], scores[i], lat[i] = r.box, r.score, r.latency_s
            bar.update(1)
    wall = time.perf_counter() - t_start if t_start is not None else 0.0
    stats = tracker.stats() if hasattr(tracker, "stats") else {}
    return SequenceResult(boxes, scores, lat, wall, stats)


def load_tracker(
    checkpoint: str | Path | None = None,
    *,
    keep=None,
    n_threads: int | None = None,
    runtime: str = "torch",
    precision: str | None = None,
    budget=None,
    **tracker_options,
) -> Tracker:
    """Tracker from a checkpoint, optionally token-pruned (``keep``). ``checkpoint`` is a file, an
    ``evtrack export`` folder, or a shipped name (``tiny``, ``spikformer``, ...; None = tiny), as
    :func:`evtrack.shipped.resolve_checkpoint` reads it.

    A checkpoint written after pruning carries its settings (field ``pruning``); they are re-applied,
    with an explicit ``keep`` overriding the stored ratios. Online options stored with the weights
    (field ``tracking``, e.g. the ``min_score`` tuned for them; ``min_score_pruned`` when token-pruned)
    are the defaults of the :class:`Tracker`; ``tracker_options`` that are not None override them.

    ``runtime`` picks what runs the network: "torch" (eager), "onnx" (ONNX Runtime), "openvino", or "auto"
    (ONNX Runtime when installed and ``count_ops`` is off, else torch: ``resolve_runtime``). The
    graph runtimes export the (pruned) network on first use into the graph cache
    (``evtrack.runtime.cache``; ``$EVTRACK_CACHE``) and load it from there afterwards; ``checkpoint`` may
    also be a folder written by ``evtrack export``. ``precision`` ("f32", "bf16", "f16") is OpenVINO's
    inference precision (default: the export's, else f32). Op counting (``count_ops``) needs torch and is
    left off for the graph runtimes. ``budget`` (an ``evtrack.runtime.budget.BudgetConfig``) picks the keep
    schedule per frame from measured step times (graph runtimes; ``keep`` is then ignored); the caller
    reports each step's time to ``tracker.runner.record`` (``evtrack.live.StreamTracker`` does).
    """
    from evtrack.runtime.runners import AUTO, RUNTIMES, resolve_runtime

    if runtime not in (*RUNTIMES, AUTO):
        raise UserError(f"runtime is {runtime!r}; expected one of {(*RUNTIMES, AUTO)}")
    if n_threads is not None:
        if n_threads < 1:
            raise UserError(f"n_threads must be >= 1, got {n_threads}")
        torch.set_num_threads(n_threads)
    path = resolve_checkpoint(checkpoint)
    runtime = resolve_runtime(runtime, bool(tracker_options.get("count_ops")), path)
    if runtime != "torch":
        tracker_options.pop("count_ops", None)
    if path.is_dir():
        return _load_exported(path, keep, n_threads, runtime, precision, tracker_options)
    if precision not in (None, "f32") and runtime != "openvino":
        raise UserError(f"precision {precision} needs runtime 'openvino'; {runtime} runs float32")
    if budget is not None:
        return _load_budgeted(path, budget, n_threads, runtime, precision, tracker_options)
    model, payload = load_network(path, keep)
    runner = None
    if runtime != "torch":
        runner = _cached_runner(model, payload, path, runtime, n_threads, precision)
    return Tracker(model, runner=runner, **online_options(payload.get("tracking", {}),
                                                         bool(getattr(model, "pruning", None)), tracker_options))


def _cached_runner(model, payload: dict, path: Path, runtime: str, n_threads, precision):
    """The graph runner of ``model`` (exported into the graph cache on first use)."""
    from evtrack.runtime.cache import cached_graphs
    from evtrack.runtime.export import ExportOptions, file_sha256, read_meta
    from evtrack.runtime.runners import graph_runner

    folder = cached_graphs(model, file_sha256(path), ExportOptions(), tracking=payload.get("tracking"),
                           source=str(path))
    return graph_runner(runtime, folder, read_meta(folder), n_threads or torch.get_num_threads(), precision)


def _load_budgeted(path: Path, budget, n_threads, runtime: str, precision, tracker_options: dict) -> Tracker:
    """Tracker whose keep schedule follows a latency budget (``evtrack.runtime.budget``); graph runtimes only.
    The online options are the pruned ones when any schedule prunes (``min_score_pruned``)."""
    from evtrack.runtime.budget import KeepScheduler

    if runtime == "torch":
        raise UserError("a latency budget switches between exported graphs; expected runtime 'onnx' or "
                        "'openvino', found 'torch'")
    runners, pruned, model, payload = [], False, None, {}
    for schedule in budget.schedules:
        model, payload = load_network(path, schedule)
        pruned |= bool(getattr(model, "pruning", None))
        runners.append((schedule, _cached_runner(model, payload, path, runtime, n_threads, precision)))
    return Tracker(model, runner=KeepScheduler(runners, budget),
                   **online_options(payload.get("tracking", {}), pruned, tracker_options))


def load_network(path: str | Path, keep=None) -> tuple[torch.nn.Module, dict]:
    """The BN-folded network of a checkpoint with its stored pruning re-applied (``keep`` overrides the
    ratios), and the checkpoint payload: what both the tracker and ``evtrack export`` start from. ``path``
    may be a shipped name (:func:`evtrack.shipped.resolve_checkpoint`)."""
    from evtrack.network.checkpoint import load_checkpoint, model_from_payload

    path = resolve_checkpoint(path)
    payload = load_checkpoint(path)
    model = model_from_payload(payload, source=str(path))
    model.fuse()
    stored = payload.get("pruning")
    dense = keep is None or str(keep).strip() in ("1", "1.0")
    if stored or not dense:
        try:
            from evtrack.pruning.apply import apply_checkpoint_pruning
        except ImportError as exc:
            raise UserError(f"--keep {keep}: token pruning is not available in this installation ({exc})") from None
        apply_checkpoint_pruning(model, stored, keep)
    return model, payload


def _load_exported(folder: Path, keep, n_threads, runtime: str, precision, tracker_options: dict) -> Tracker:
    """Tracker over a folder written by ``evtrack export`` (its network config, tracking options, pruning)."""
    from evtrack.network.config import TrackerConfig
    from evtrack.network.registry import build_model
    from evtrack.runtime.export import read_meta
    from evtrack.runtime.runners import graph_runner

    meta = read_meta(folder)
    if runtime == "torch":
        raise UserError(f"{folder} is an exported folder; it runs with runtime 'onnx' or 'openvino' "
                        "(--runtime), not torch; pass the checkpoint for torch")
    if keep is not None:
        fixed = (meta.get("pruning") or {}).get("keep", "dense")
        raise UserError(f"{folder}: the pruning of an exported folder is fixed ({fixed}); found keep={keep!r}; "
                        "re-export with --keep instead")
    model = build_model(TrackerConfig.from_dict(meta["config"], source=str(folder)))  # config only, no weights
    model.pruning = meta.get("pruning")  # the graphs' fixed pruning, for stats() and reports
    runner = graph_runner(runtime, folder, meta, n_threads or torch.get_num_threads(), precision)
    return Tracker(model, runner=runner, **online_options(meta.get("tracking") or {}, bool(meta.get("pruning")),
                                                         tracker_options))


def online_options(stored: dict, pruned: bool, given: dict | None = None) -> dict:
    """Tracker keyword arguments from a checkpoint's ``tracking`` field and explicit ones (None = stored):
    a pruned network uses ``min_score_pruned`` in place of ``min_score`` when the checkpoint has it."""
    options = dict(stored)
    low = options.pop("min_score_pruned", None)
    if pruned and low is not None:
        options["min_score"] = low
    options.update({k: v for k, v in (given or {}).items() if v is not None})
    return options
