"""Dense event representations for networks: voxel grid, count frame, SDTrack frame, time surface.

Every function has the shape ``f(events, sensor_size, ..., crop=None, out_size=None, n_threads=1)``
and returns a C-contiguous float32 array ``[C, h, w]`` ready for ``torch.from_numpy``.

- ``events``: structured array with fields ``t, x, y, p`` (see `evtrack.io.events`), sorted by
  ``t``; other integer/bool field dtypes are accepted and cast.
- ``sensor_size``: ``(height, width)``; every event must satisfy ``0 <= x < width``,
  ``0 <= y < height``, ``p in {0, 1}``, else `FormatError` names the first bad event.
- ``crop = (x0, y0, w, h)`` in sensor pixels (floats allowed) selects a window that may extend
  past the sensor edges; the outside is zero. Default: the whole sensor.
- ``out_size = (h, w)`` resamples the crop onto that grid by scaling event coordinates, so a
  tracker gets its resized search region directly and only events inside the crop cost anything.
  Default: the crop size rounded to whole pixels.

Resampling rule, per axis with ``s = out / crop`` output pixels per sensor pixel:

- ``s <= 1`` (same size or shrinking): the event at sensor pixel ``x`` goes to output pixel
  ``floor((x + 0.5 - x0) * s)``, i.e. the output pixel containing the sensor pixel's centre.
  For linear representations this is sum pooling (every event inside the crop is kept).
- ``s > 1`` (enlarging): the event goes to every output pixel whose centre lies inside the
  sensor pixel, ``x <= x0 + (u + 0.5) / s < x + 1``: nearest-neighbour upsampling, no holes.

Non-linear representations (SDTrack clipping and activity masks, time-surface maximum) are
computed on the output grid, i.e. as if the sensor had the output's pixels.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numba
import numpy as np

from evtrack.errors import FormatError, UserError
from evtrack.io import kernels

__all__ = [
    "voxel_grid",
    "count_frame",
    "sdtrack_frame",
    "time_surface",
    "SDTrackStream",
    "VoxelGrid",
    "CountFrame",
    "SDTrackFrame",
    "TimeSurface",
]

_CANONICAL = {"t": np.dtype("<i8"), "x": np.dtype("<i2"), "y": np.dtype("<i2"), "p": np.dtype("i1")}
_T_SENTINEL = np.iinfo(np.int64).min


# ----------------------------------------------------------------------------- validation helpers


def _sensor(sensor_size: Sequence[int]) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in sensor_size)
    except (TypeError, ValueError):
        raise UserError(f"sensor_size: expected (height, width), got {sensor_size!r}") from None
    if height <= 0 or width <= 0:
        raise UserError(f"sensor_size: expected positive (height, width), got {sensor_size!r}")
    return height, width


def _columns(events: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The four 1-D columns in canonical dtypes (views when already canonical, copies otherwise)."""
    names = getattr(getattr(events, "dtype", None), "names", None)
    if names is None:
        raise UserError(
            f"events: expected a structured array with fields t, x, y, p, got {type(events).__name__}"
            f" with dtype {getattr(events, 'dtype', None)}"
        )
    missing = [f for f in _CANONICAL if f not in names]
    if missing:
        raise UserError(f"events: missing field(s) {missing}; found {list(names)}, expected t, x, y, p")
    if events.ndim != 1:
        raise UserError(f"events: expected a 1-D array, got shape {events.shape}")
    cols = []
    for name, dt in _CANONICAL.items():
        col = events[name]
        if col.dtype != dt:
            if not (np.issubdtype(col.dtype, np.integer) or col.dtype == np.bool_):
                raise FormatError(f"events field {name!r}: expected integer values, found dtype {col.dtype}")
            col = col.astype(dt)
        cols.append(col)
    return cols[0], cols[1], cols[2], cols[3]


def _raise_bad(t, x, y, p, i: int, height: int, width: int) -> None:
    """Turn a kernel's "first bad event" index into a message saying what was wrong."""
    if i > 0 and t[i] < t[i - 1]:
        raise FormatError(
            f"events: not sorted by time at event {i}: t={int(t[i])} us follows t={int(t[i - 1])} us"
            " (expected non-decreasing timestamps)"
        )
    if not 0 <= x[i] < width:
        raise FormatError(f"events: event {i} has x={int(x[i])}, expected 0 <= x < {width} (sensor width)")
    if not 0 <= y[i] < height:
        raise FormatError(f"events: event {i} has y={int(y[i])}, expected 0 <= y < {height} (sensor height)")
    raise FormatError(f"events: event {i} has polarity p={int(p[i])}, expected 0 (OFF) or 1 (ON)")


def _check_threads(n_threads: int) -> int:
    if isinstance(n_threads, bool) or not isinstance(n_threads, int | np.integer) or n_threads < 1:
        raise UserError(f"n_threads: expected an integer >= 1, got {n_threads!r}")
    return int(n_threads)


@contextmanager
def _numba_threads(n: int):
    """Run Numba parallel regions on at most ``n`` threads, restoring the previous setting."""
    previous = numba.get_num_threads()
    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def _part_bounds(n_events: int, n_parts: int) -> np.ndarray:
    return np.linspace(0, n_events, n_parts + 1).astype(np.int64)


# ----------------------------------------------------------------------------- crop / resample


@dataclass(frozen=True)
class _Grid:
    """Output grid and per-axis sensor->output lookup tables (see module docstring)."""

    height: int
    width: int
    single: bool  # no axis enlarged: each sensor pixel feeds at most one output pixel
    u_lo: np.ndarray
    u_hi: np.ndarray
    v_lo: np.ndarray
    v_hi: np.ndarray


def _axis_lut(n_sensor: int, start: float, length: float, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Output index range [lo, hi) for every sensor coordinate along one axis.

    Numerators are formed exactly in float64 before one correctly rounded division, so integer
    crops and integer scale factors map without rounding surprises.
    """
    x = np.arange(n_sensor, dtype=np.float64)
    if n_out <= length:  # same size or shrinking: the output pixel holding the sensor pixel centre
        u = np.floor(((x - start) * n_out + 0.5 * n_out) / length)
        inside = (u >= 0) & (u < n_out)
        lo = np.where(inside, u, -1)
        hi = np.where(inside, u + 1, -1)
    else:  # enlarging: all output pixels whose centre falls inside the sensor pixel
        lo = np.ceil(((x - start) * n_out - 0.5 * length) / length)
        hi = np.ceil(((x + 1 - start) * n_out - 0.5 * length) / length)
        lo = np.clip(lo, 0, n_out)
        hi = np.clip(hi, 0, n_out)
        hi = np.maximum(hi, lo)
    return lo.astype(np.int32), hi.astype(np.int32)


def _grid(
    height: int,
    width: int,
    crop: Sequence[float] | None,
    out_size: Sequence[int] | None,
) -> _Grid:
    """Validate crop/out_size and return the (cached) lookup tables for them."""
    if crop is None:
        x0, y0, cw, ch = 0.0, 0.0, float(width), float(height)
    else:
        try:
            x0, y0, cw, ch = (float(v) for v in crop)
        except (TypeError, ValueError):
            raise UserError(f"crop: expected (x0, y0, w, h) in sensor pixels, got {crop!r}") from None
        if not all(math.isfinite(v) for v in (x0, y0, cw, ch)) or cw <= 0 or ch <= 0:
            raise UserError(f"crop: expected finite (x0, y0, w, h) with w > 0 and h > 0, got {crop!r}")
    if out_size is None:
        oh, ow = max(1, round(ch)), max(1, round(cw))
    else:
        try:
            oh, ow = (int(v) for v in out_size)
        except (TypeError, ValueError):
            raise UserError(f"out_size: expected (h, w) in output pixels, got {out_size!r}") from None
        if oh <= 0 or ow <= 0 or (oh, ow) != tuple(out_size):
            raise UserError(f"out_size: expected positive integers (h, w), got {out_size!r}")
    return _cached_grid(height, width, x0, y0, cw, ch, oh, ow)


@functools.lru_cache(maxsize=256)
def _cached_grid(
    height: int, width: int, x0: float, y0: float, cw: float, ch: float, oh: int, ow: int
) -> _Grid:
    # Building the tables costs ~50 us of numpy overhead; full-frame and repeated crops hit the cache.
    u_lo, u_hi = _axis_lut(width, x0, cw, ow)
    v_lo, v_hi = _axis_lut(height, y0, ch, oh)
    for table in (u_lo, u_hi, v_lo, v_hi):
        table.flags.writeable = False  # shared between calls
    return _Grid(oh, ow, bool(ow <= cw and oh <= ch), u_lo, u_hi, v_lo, v_hi)


# ----------------------------------------------------------------------------- shared drivers


def _time_bounds(t: np.ndarray, t0_us: int | None, t1_us: int | None, what: str) -> tuple[int, int]:
    t0 = int(t[0]) if t0_us is None else int(t0_us)
    t1 = int(t[-1]) if t1_us is None else int(t1_us)
    if t1 < t0:
        raise UserError(f"{what}: t1_us={t1} is before t0_us={t0}; expected t0_us <= t1_us")
    return t0, t1


def _counts(cols, height, width, grid: _Grid, t0: int, span: int, n_sub: int, n_threads: int):
    """Per-(sub-slice, polarity) counts on the output grid, float32 ``[2 * n_sub, h, w]``."""
    t, x, y, p = cols
    shape = (2 * n_sub, grid.height, grid.width)
    if n_threads == 1:
        out = np.zeros(shape, np.float32)
        bad = kernels._count_range(t, x, y, p, 0, t.shape[0], t0, span, n_sub,
                                   grid.u_lo, grid.u_hi, grid.v_lo, grid.v_hi, grid.single, out)  # fmt: skip
    else:
        bufs = np.zeros((n_threads, *shape), np.float32)
        bads = np.empty(n_threads, np.int64)
        with _numba_threads(n_threads):
            kernels._count_parts(
                t, x, y, p, _part_bounds(t.shape[0], n_threads), t0, span, n_sub,
                grid.u_lo, grid.u_hi, grid.v_lo, grid.v_hi, grid.single, bufs, bads,
            )  # fmt: skip
        bad = _first_bad(bads)
        out = bufs.sum(axis=0, dtype=np.float32)
    if bad >= 0:
        _raise_bad(t, x, y, p, bad, height, width)
    return out


def _first_bad(bads: np.ndarray) -> int:
    hits = bads[bads >= 0]
    return int(hits.min()) if hits.size else -1


# ----------------------------------------------------------------------------- public functions


def voxel_grid(
    events: np.ndarray,
    sensor_size: Sequence[int],
    n_bins: int,
    *,
    t0_us: int | None = None,
    t1_us: int | None = None,
    crop: Sequence[float] | None = None,
    out_size: Sequence[int] | None = None,
    n_threads: int = 1,
) -> np.ndarray:
    """Signed voxel grid with bilinear interpolation in time, float32 ``[n_bins, h, w]``.

    Zhu et al. 2019 (event volume) as used by E-RAFT: each event adds its polarity
    (+1 for p=1, -1 for p=0) to the two temporal bins around its normalised time
    ``t* = (B - 1) * (t - t0) / (t1 - t0)``, bin ``b`` receiving ``pol * max(0, 1 - |t* - b|)``
    for ``b = 0 .. B-1``. ``t0``/``t1`` default to the first/last event time (then every event
    lies in ``[0, B-1]``); events outside explicit bounds keep the same tent weights, so those
    more than one bin outside add nothing. If ``t1 == t0`` every event goes to bin 0.

    Differs from tonic's ``to_voxel_grid_numpy``, which normalises with ``B`` instead of
    ``B - 1`` and drops the bin ``B`` share (so its last event vanishes): tonic(B) equals
    ``voxel_grid(..., n_bins=B + 1)[:B]`` (tested).

    >>> voxel_grid(events, (260, 346), 5).shape
    (5, 260, 346)
    """
    height, width = _sensor(sensor_size)
    if isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer) or n_bins < 1:
        raise UserError(f"n_bins: expected an integer >= 1, got {n_bins!r}")
    n_threads = _check_threads(n_threads)
    grid = _grid(height, width, crop, out_size)
    t, x, y, p = _columns(events)
    shape = (int(n_bins), grid.height, grid.width)
    if t.shape[0] == 0:
        return np.zeros(shape, np.float32)
    t0, t1 = _time_bounds(t, t0_us, t1_us, "voxel_grid")
    scale = (n_bins - 1) / (t1 - t0) if t1 > t0 else 0.0
    if n_threads == 1:
        out = np.zeros(shape, np.float32)
        bad = kernels._voxel_range(t, x, y, p, 0, t.shape[0], t0, scale,
                                   grid.u_lo, grid.u_hi, grid.v_lo, grid.v_hi, grid.single, out)  # fmt: skip
    else:
        bufs = np.zeros((n_threads, *shape), np.float32)
        bads = np.empty(n_threads, np.int64)
        with _numba_threads(n_threads):
            kernels._voxel_parts(t, x, y, p, _part_bounds(t.shape[0], n_threads), t0, scale,
                                 grid.u_lo, grid.u_hi, grid.v_lo, grid.v_hi, grid.single, bufs, bads)  # fmt: skip
        bad = _first_bad(bads)
        out = bufs.sum(axis=0, dtype=np.float32)
    if bad >= 0:
        _raise_bad(t, x, y, p, bad, height, width)
    return out


def count_frame(
    events: np.ndarray,
    sensor_size: Sequence[int],
    *,
    crop: Sequence[float] | None = None,
    out_size: Sequence[int] | None = None,
    n_threads: int = 1,
) -> np.ndarray:
    """Event counts per pixel and polarity, float32 ``[2, h, w]``: channel 0 ON (p=1), 1 OFF (p=0)."""
    height, width = _sensor(sensor_size)
    n_threads = _check_threads(n_threads)
    grid = _grid(height, width, crop, out_size)
    cols = _columns(events)
    if cols[0].shape[0] == 0:
        return np.zeros((2, grid.height, grid.width), np.float32)
    return _counts(cols, height, width, grid, int(cols[0][0]), 1, 1, n_threads)


def sdtrack_frame(
    events: np.ndarray,
    sensor_size: Sequence[int],
    *,
    n_sub: int = 4,
    stack: float = 30.0,
    decay: float = 0.8,
    raw: bool = False,
    t0_us: int | None = None,
    t1_us: int | None = None,
    crop: Sequence[float] | None = None,
    out_size: Sequence[int] | None = None,
    n_threads: int = 1,
) -> np.ndarray:
    """SDTrack's 3-channel GTP image (ON count, OFF count, trajectory), float32 ``[3, h, w]``.

    SDTrack (Shan et al., CVPR 2026) preprocesses each ground-truth frame interval into an 8-bit
    image with ``stack = 30`` and ``decay = 0.8`` (its ``stack_amount_1c2c/3c`` and
    ``decay_rate_3c``):

    - channel 0 / 1: ``min(255, stack * n)`` with ``n`` the ON / OFF events at the pixel over
      the whole interval ``[t0, t1]``;
    - channel 2, trajectory: split the interval into ``n_sub`` equal sub-slices; starting from
      ``h = 0`` and no previous activity, for each sub-slice
      ``h = clip(decay * h + stack * [ON active now, not in the previous sub-slice]
      + stack * [OFF active now, not in the previous sub-slice], 0, 255)``.

    Deviation from SDTrack's released preprocessing (``GTP_*.py``, reproduced by `SDTrackStream`):
    that script keeps ``h`` and the previous-activity masks across frame intervals for the whole
    sequence (one slice per interval). Here they restart in every call, so the image of a crop
    depends only on that interval's events inside the crop and costs nothing outside it; the
    ``n_sub`` sub-slices give the trajectory its within-interval history instead (a variant of the
    script circulating with ``--sub_div 4`` does the same). ``h`` is kept as an exact float (the
    script floors it to 8 bits on disk), and rows/columns 0 are kept (its FE108 version drops them).

    Values are divided by 255 into ``[0, 1]`` unless ``raw=True``. ``t0``/``t1`` default to the
    first/last event time; events exactly at ``t1`` fall into the last sub-slice, and so do all
    events when ``t1 == t0`` (a single event is "now", so its trajectory value is ``stack``).
    """
    height, width = _sensor(sensor_size)
    if isinstance(n_sub, bool) or not isinstance(n_sub, int | np.integer) or n_sub < 1:
        raise UserError(f"n_sub: expected an integer >= 1, got {n_sub!r}")
    if not (math.isfinite(stack) and stack >= 0):
        raise UserError(f"stack: expected a finite value >= 0, got {stack!r}")
    if not (math.isfinite(decay) and 0 <= decay <= 1):
        raise UserError(f"decay: expected a value in [0, 1], got {decay!r}")
    n_threads = _check_threads(n_threads)
    grid = _grid(height, width, crop, out_size)
    cols = _columns(events)
    out = np.zeros((3, grid.height, grid.width), np.float32)
    if cols[0].shape[0] == 0:
        return out
    t0, t1 = _time_bounds(cols[0], t0_us, t1_us, "sdtrack_frame")
    if t1 == t0:  # zero-length interval: every event is "now", i.e. in the last sub-slice
        t0 -= 1
    counts = _counts(cols, height, width, grid, t0, t1 - t0, int(n_sub), n_threads)
    kernels._sdtrack_from_counts(counts, np.float32(stack), np.float32(decay), np.float32(255.0), out)
    if not raw:
        out *= np.float32(1.0 / 255.0)
    return out


def time_surface(
    events: np.ndarray,
    sensor_size: Sequence[int],
    *,
    tau_us: float = 50_000.0,
    t_ref_us: int | None = None,
    crop: Sequence[float] | None = None,
    out_size: Sequence[int] | None = None,
    n_threads: int = 1,
) -> np.ndarray:
    """Exponentially decaying time surface per polarity, float32 ``[2, h, w]`` (0 ON, 1 OFF).

    ``S = exp(-(t_ref - t_last) / tau)`` with ``t_last`` the latest event at the pixel
    (Lagorce et al. 2017, HOTS, without the spatial neighbourhood); pixels without events are 0.
    ``t_ref`` defaults to the last event time and must not precede it.
    """
    height, width = _sensor(sensor_size)
    if not (math.isfinite(tau_us) and tau_us > 0):
        raise UserError(f"tau_us: expected a positive time constant in microseconds, got {tau_us!r}")
    n_threads = _check_threads(n_threads)
    grid = _grid(height, width, crop, out_size)
    t, x, y, p = _columns(events)
    shape = (2, grid.height, grid.width)
    if t.shape[0] == 0:
        return np.zeros(shape, np.float32)
    if n_threads == 1:
        last = np.full(shape, _T_SENTINEL, np.int64)
        bad = kernels._last_time_range(t, x, y, p, 0, t.shape[0],
                                       grid.u_lo, grid.u_hi, grid.v_lo, grid.v_hi, grid.single, last)  # fmt: skip
    else:
        bufs = np.full((n_threads, *shape), _T_SENTINEL, np.int64)
        bads = np.empty(n_threads, np.int64)
        with _numba_threads(n_threads):
            kernels._last_time_parts(t, x, y, p, _part_bounds(t.shape[0], n_threads),
                                     grid.u_lo, grid.u_hi, grid.v_lo, grid.v_hi, grid.single, bufs, bads)  # fmt: skip
        bad = _first_bad(bads)
        last = bufs.max(axis=0)
    if bad >= 0:
        _raise_bad(t, x, y, p, bad, height, width)
    t_ref = int(t[-1]) if t_ref_us is None else int(t_ref_us)
    if t_ref < int(t[-1]):
        raise UserError(f"time_surface: t_ref_us={t_ref} precedes the last event (t={int(t[-1])} us)")
    out = np.empty(shape, np.float32)
    kernels._time_surface_from_last(last, _T_SENTINEL, t_ref, float(tau_us), out)
    return out


class SDTrackStream:
    """SDTrack's GTP images exactly as its released preprocessing makes them: state across frames.

    One call per ground-truth frame interval, in order. Per call: channels 0/1 are
    ``min(255, stack * n_ON)`` / ``min(255, stack * n_OFF)`` over the interval; channel 2 is the
    sequence-long trajectory ``h = clip(decay * h + stack * [ON active now, not in the previous
    interval] + stack * [OFF active now, not in the previous interval], 0, 255)``, left at 0 on the
    first interval (the script skips the update there) and floored to an integer like the 8-bit
    PNG the network reads. This is the ``inter1`` setting of the README command
    (``stack_amount_1c2c 30 --stack_amount_3c 30 --decay_rate_3c 0.8``: one slice per interval).

    Remaining differences from the script, on purpose: it skips the first event of every interval
    (the event that triggers saving the previous image is not accumulated) and, in the FE108
    script, every event in row 0 or column 0 (``0 < x``); we keep all events. The output is the
    full sensor ``[3, H, W]`` (state lives at sensor resolution, so crops of it are image crops),
    float32, divided by 255 unless ``raw``. Use `sdtrack_frame` for a stateless per-crop version.
    """

    def __init__(self, sensor_size: Sequence[int], *, stack: float = 30.0, decay: float = 0.8, raw: bool = False):
        self.sensor_size = _sensor(sensor_size)
        if not (math.isfinite(stack) and stack >= 0):
            raise UserError(f"stack: expected a finite value >= 0, got {stack!r}")
        if not (math.isfinite(decay) and 0 <= decay <= 1):
            raise UserError(f"decay: expected a value in [0, 1], got {decay!r}")
        self.stack, self.decay, self.raw = float(stack), float(decay), bool(raw)
        self.reset()

    def reset(self) -> None:
        """Forget the trajectory: the next call is the first interval of a new sequence."""
        h, w = self.sensor_size
        self._hidden = np.zeros((h, w), np.float64)  # the script keeps h in float64 between frames
        self._last_on = np.zeros((h, w), bool)
        self._last_off = np.zeros((h, w), bool)
        self._started = False

    def __call__(self, events: np.ndarray, *, n_threads: int = 1) -> np.ndarray:
        counts = count_frame(events, self.sensor_size, n_threads=n_threads)
        on, off = counts[0] > 0, counts[1] > 0
        if self._started:
            hidden = self._hidden * self.decay
            hidden += self.stack * (on & ~self._last_on)
            hidden += self.stack * (off & ~self._last_off)
            np.clip(hidden, 0.0, 255.0, out=hidden)
            self._hidden = hidden
        self._started = True
        self._last_on, self._last_off = on, off
        out = np.empty((3, *self.sensor_size), np.float32)
        np.minimum(counts * np.float32(self.stack), np.float32(255.0), out=out[:2])
        out[2] = np.floor(self._hidden)
        if not self.raw:
            out *= np.float32(1.0 / 255.0)
        return out


# ----------------------------------------------------------------------------- frozen wrappers


@dataclass(frozen=True)
class VoxelGrid:
    """`voxel_grid` with its settings bound; ``__call__`` only forwards."""

    n_bins: int
    sensor_size: tuple[int, int]
    n_threads: int = 1

    def __call__(self, events, *, t0_us=None, t1_us=None, crop=None, out_size=None) -> np.ndarray:
        return voxel_grid(events, self.sensor_size, self.n_bins, t0_us=t0_us, t1_us=t1_us,
                          crop=crop, out_size=out_size, n_threads=self.n_threads)  # fmt: skip


@dataclass(frozen=True)
class CountFrame:
    """`count_frame` with its settings bound; ``__call__`` only forwards."""

    sensor_size: tuple[int, int]
    n_threads: int = 1

    def __call__(self, events, *, crop=None, out_size=None) -> np.ndarray:
        return count_frame(events, self.sensor_size, crop=crop, out_size=out_size, n_threads=self.n_threads)


@dataclass(frozen=True)
class SDTrackFrame:
    """`sdtrack_frame` with its settings bound; ``__call__`` only forwards."""

    sensor_size: tuple[int, int]
    n_sub: int = 4
    stack: float = 30.0
    decay: float = 0.8
    raw: bool = False
    n_threads: int = 1

    def __call__(self, events, *, t0_us=None, t1_us=None, crop=None, out_size=None) -> np.ndarray:
        return sdtrack_frame(events, self.sensor_size, n_sub=self.n_sub, stack=self.stack, decay=self.decay,
                             raw=self.raw, t0_us=t0_us, t1_us=t1_us, crop=crop, out_size=out_size,
                             n_threads=self.n_threads)  # fmt: skip


@dataclass(frozen=True)
class TimeSurface:
    """`time_surface` with its settings bound; ``__call__`` only forwards."""

    sensor_size: tuple[int, int]
    tau_us: float = 50_000.0
    n_threads: int = 1

    def __call__(self, events, *, t_ref_us=None, crop=None, out_size=None) -> np.ndarray:
        return time_surface(events, self.sensor_size, tau_us=self.tau_us, t_ref_us=t_ref_us,
                            crop=crop, out_size=out_size, n_threads=self.n_threads)  # fmt: skip
