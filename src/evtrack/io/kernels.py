"""Numba kernels behind `evtrack.io.representations` (private: call the public functions).

Every kernel takes 1-D event columns plus two per-axis lookup tables and fills a preallocated
output. The lookup tables carry crop and resampling: sensor column ``x`` lands on output columns
``u_lo[x] <= u < u_hi[x]`` (an empty range drops the event), and likewise rows through
``v_lo``/``v_hi``. So the kernels never branch on crop/out_size and pay nothing for events
outside the crop beyond two table loads.

The kernels also validate while they scan (time order, coordinates inside the sensor, polarity
in {0, 1}) and return the index of the first bad event, or -1; the caller turns that into a
`FormatError`. Fusing the check into the scan avoids a second pass over millions of events.

Parallel variants split the events into ``n_parts`` contiguous ranges, give each part a private
output buffer, and let the caller sum (or max) the buffers, so the result depends only on
``n_parts`` and never on how many cores ran them.
"""

from __future__ import annotations

import math

import numba
import numpy as np

# ``fastmath`` is off on purpose: the bilinear weights must match the numpy references bit for bit
# up to float32 accumulation order.


@numba.njit(cache=True, nogil=True)
def _bad_event(t, x, y, p, i, width, height):
    """True when event ``i`` breaks time order or lies outside the sensor / polarity range."""
    if i > 0 and t[i] < t[i - 1]:
        return True
    if x[i] < 0 or x[i] >= width or y[i] < 0 or y[i] >= height:
        return True
    return p[i] != 0 and p[i] != 1


@numba.njit(cache=True, nogil=True)
def _voxel_range(t, x, y, p, start, stop, t0, scale, u_lo, u_hi, v_lo, v_hi, out):
    """Bilinear-in-time signed voxel grid over events[start:stop]; returns first bad index or -1.

    ``t* = (t - t0) * scale`` with ``scale = (B - 1) / (t1 - t0)``; bin ``b`` gets
    ``pol * max(0, 1 - |t* - b|)``.
    """
    n_bins = out.shape[0]
    width = u_lo.shape[0]
    height = v_lo.shape[0]
    for i in range(start, stop):
        if _bad_event(t, x, y, p, i, width, height):
            return i
        xi = x[i]
        yi = y[i]
        ua = u_lo[xi]
        ub = u_hi[xi]
        va = v_lo[yi]
        vb = v_hi[yi]
        if ua >= ub or va >= vb:
            continue
        pol = 1.0 if p[i] == 1 else -1.0
        tn = (t[i] - t0) * scale
        b = math.floor(tn)
        frac = tn - b
        b = int(b)
        w_left = np.float32(pol * (1.0 - frac))
        w_right = np.float32(pol * frac)
        left_ok = 0 <= b < n_bins
        right_ok = 0 <= b + 1 < n_bins
        for v in range(va, vb):
            for u in range(ua, ub):
                if left_ok:
                    out[b, v, u] += w_left
                if right_ok:
                    out[b + 1, v, u] += w_right
    return -1


@numba.njit(cache=True, nogil=True)
def _count_range(t, x, y, p, start, stop, t0, sub_scale, n_sub, u_lo, u_hi, v_lo, v_hi, out):
    """Event counts per (sub-slice, polarity): channel ``2 * s + (0 if ON else 1)``.

    Sub-slice ``s = clip(floor((t - t0) * sub_scale), 0, n_sub - 1)``; with ``n_sub == 1`` this is
    the plain two-channel count frame. Returns the first bad index or -1.
    """
    width = u_lo.shape[0]
    height = v_lo.shape[0]
    for i in range(start, stop):
        if _bad_event(t, x, y, p, i, width, height):
            return i
        xi = x[i]
        yi = y[i]
        ua = u_lo[xi]
        ub = u_hi[xi]
        va = v_lo[yi]
        vb = v_hi[yi]
        if ua >= ub or va >= vb:
            continue
        s = 0
        if n_sub > 1:
            s = int(math.floor((t[i] - t0) * sub_scale))
            if s < 0:
                s = 0
            elif s >= n_sub:
                s = n_sub - 1
        c = 2 * s + (0 if p[i] == 1 else 1)
        for v in range(va, vb):
            for u in range(ua, ub):
                out[c, v, u] += 1.0
    return -1


@numba.njit(cache=True, nogil=True)
def _last_time_range(t, x, y, p, start, stop, u_lo, u_hi, v_lo, v_hi, out):
    """Latest timestamp per (polarity, pixel) into int64 ``out`` (pre-filled with a sentinel)."""
    width = u_lo.shape[0]
    height = v_lo.shape[0]
    for i in range(start, stop):
        if _bad_event(t, x, y, p, i, width, height):
            return i
        xi = x[i]
        yi = y[i]
        ua = u_lo[xi]
        ub = u_hi[xi]
        va = v_lo[yi]
        vb = v_hi[yi]
        if ua >= ub or va >= vb:
            continue
        c = 0 if p[i] == 1 else 1
        ti = t[i]
        for v in range(va, vb):
            for u in range(ua, ub):
                if ti > out[c, v, u]:
                    out[c, v, u] = ti
    return -1


@numba.njit(cache=True, parallel=True)
def _voxel_parts(t, x, y, p, bounds, t0, scale, u_lo, u_hi, v_lo, v_hi, bufs, bad):
    """`_voxel_range` over ``len(bounds) - 1`` parts, part k into ``bufs[k]``, bad index into ``bad[k]``."""
    for k in numba.prange(bounds.shape[0] - 1):
        bad[k] = _voxel_range(t, x, y, p, bounds[k], bounds[k + 1], t0, scale, u_lo, u_hi, v_lo, v_hi, bufs[k])


@numba.njit(cache=True, parallel=True)
def _count_parts(t, x, y, p, bounds, t0, sub_scale, n_sub, u_lo, u_hi, v_lo, v_hi, bufs, bad):
    """`_count_range` over parts (see `_voxel_parts`)."""
    for k in numba.prange(bounds.shape[0] - 1):
        bad[k] = _count_range(
            t, x, y, p, bounds[k], bounds[k + 1], t0, sub_scale, n_sub, u_lo, u_hi, v_lo, v_hi, bufs[k]
        )


@numba.njit(cache=True, parallel=True)
def _last_time_parts(t, x, y, p, bounds, u_lo, u_hi, v_lo, v_hi, bufs, bad):
    """`_last_time_range` over parts (see `_voxel_parts`)."""
    for k in numba.prange(bounds.shape[0] - 1):
        bad[k] = _last_time_range(t, x, y, p, bounds[k], bounds[k + 1], u_lo, u_hi, v_lo, v_hi, bufs[k])


@numba.njit(cache=True, nogil=True)
def _time_surface_from_last(last, sentinel, t_ref, tau, out):
    """``out = exp(-(t_ref - last) / tau)`` where a pixel saw an event, 0 elsewhere."""
    n_c, h, w = last.shape
    inv_tau = 1.0 / tau
    for c in range(n_c):
        for v in range(h):
            for u in range(w):
                lt = last[c, v, u]
                if lt == sentinel:
                    out[c, v, u] = 0.0
                else:
                    out[c, v, u] = math.exp(-(t_ref - lt) * inv_tau)


@numba.njit(cache=True, nogil=True)
def _sdtrack_from_counts(counts, stack, decay, clip_max, out):
    """SDTrack GTP image from per-sub-slice counts ``[2 * n_sub, h, w]`` into ``out [3, h, w]``.

    Channels 0/1: ``min(clip_max, stack * count)`` over all sub-slices (ON, OFF). Channel 2, the
    trajectory: starting from h = 0 and empty "previous" masks, for each sub-slice
    ``h = clip(decay * h + stack * [ON newly active] + stack * [OFF newly active], 0, clip_max)``
    where "newly active" means active in this sub-slice and not in the previous one.
    """
    n_sub = counts.shape[0] // 2
    _, h, w = out.shape
    for v in range(h):
        for u in range(w):
            on_total = 0.0
            off_total = 0.0
            traj = 0.0
            prev_on = False
            prev_off = False
            for s in range(n_sub):
                c_on = counts[2 * s, v, u]
                c_off = counts[2 * s + 1, v, u]
                on_total += c_on
                off_total += c_off
                cur_on = c_on > 0.0
                cur_off = c_off > 0.0
                traj = traj * decay
                if cur_on and not prev_on:
                    traj += stack
                if cur_off and not prev_off:
                    traj += stack
                if traj > clip_max:
                    traj = clip_max
                prev_on = cur_on
                prev_off = cur_off
            out[0, v, u] = min(clip_max, stack * on_total)
            out[1, v, u] = min(clip_max, stack * off_total)
            out[2, v, u] = traj
