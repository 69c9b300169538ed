"""Numba kernels behind `evtrack.io.representations` (private: call the public functions).

Every kernel takes 1-D event columns plus per-axis lookup tables and fills a preallocated
output. The lookup tables carry crop and resampling: sensor column ``x`` lands on output columns
``u_lo[x] <= u < u_hi[x]`` (an empty range, marked ``u_lo = u_hi = -1`` when shrinking, drops the
event), and likewise rows through ``v_lo``/``v_hi``. So the kernels never branch on crop/out_size
and pay nothing for events outside the crop beyond two table loads. When no axis is enlarged
every range holds at most one pixel and the ``*_single`` kernels skip the inner loops.

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

# ``fastmath`` is off on purpose: the bilinear weights should match the numpy references up to
# float32 rounding and accumulation order.


@numba.njit(cache=True, nogil=True, inline="always")
def _is_bad(ti, t_prev, xi, yi, pi, width, height):
    """Event breaks time order, lies outside the sensor, or has a polarity other than 0/1."""
    return ti < t_prev or xi < 0 or xi >= width or yi < 0 or yi >= height or (pi != 0 and pi != 1)


@numba.njit(cache=True, nogil=True, inline="always")
def _floor_int(v):
    """floor() as an integer; int() truncates toward zero, so fix up negatives."""
    b = int(v)
    if v < b:
        b -= 1
    return b


@numba.njit(cache=True, nogil=True, inline="always")
def _sub_slice(ti, t0, span, n_sub):
    """Sub-slice index ``floor((t - t0) * n_sub / span)`` clipped to [0, n_sub), exact in integers."""
    if n_sub == 1 or ti <= t0:
        return 0
    s = (ti - t0) * n_sub // span
    return s if s < n_sub else n_sub - 1


# --- single target: every sensor pixel maps to at most one output pixel (no upscaling) -------------
# ``u_lo[x]`` is the output column or -1 (dropped); same for rows. Output is addressed flat.


@numba.njit(cache=True, nogil=True)
def _voxel_single(t, x, y, p, start, stop, t0, scale, u_lo, v_lo, out):
    n_bins, oh, ow = out.shape
    hw = oh * ow
    flat = out.reshape(-1)
    width = u_lo.shape[0]
    height = v_lo.shape[0]
    t_prev = t[start - 1] if start > 0 else t[start]
    for i in range(start, stop):
        ti = t[i]
        xi = np.intp(x[i])
        yi = np.intp(y[i])
        pi = p[i]
        if _is_bad(ti, t_prev, xi, yi, pi, width, height):
            return i
        t_prev = ti
        u = u_lo[xi]
        v = v_lo[yi]
        if u < 0 or v < 0:
            continue
        pol = np.float32(2 * pi - 1)
        tn = (ti - t0) * scale
        b = _floor_int(tn)
        frac = np.float32(tn - b)
        k = b * hw + v * ow + u
        if 0 <= b < n_bins:
            flat[k] += pol * (np.float32(1.0) - frac)
        if 0 <= b + 1 < n_bins:
            flat[k + hw] += pol * frac
    return -1


@numba.njit(cache=True, nogil=True)
def _count_single(t, x, y, p, start, stop, t0, span, n_sub, u_lo, v_lo, out):
    _, oh, ow = out.shape
    hw = oh * ow
    flat = out.reshape(-1)
    width = u_lo.shape[0]
    height = v_lo.shape[0]
    t_prev = t[start - 1] if start > 0 else t[start]
    for i in range(start, stop):
        ti = t[i]
        xi = np.intp(x[i])
        yi = np.intp(y[i])
        pi = p[i]
        if _is_bad(ti, t_prev, xi, yi, pi, width, height):
            return i
        t_prev = ti
        u = u_lo[xi]
        v = v_lo[yi]
        if u < 0 or v < 0:
            continue
        c = 2 * _sub_slice(ti, t0, span, n_sub) + 1 - pi
        flat[c * hw + v * ow + u] += np.float32(1.0)
    return -1


@numba.njit(cache=True, nogil=True)
def _last_time_single(t, x, y, p, start, stop, u_lo, v_lo, out):
    _, oh, ow = out.shape
    hw = oh * ow
    flat = out.reshape(-1)
    width = u_lo.shape[0]
    height = v_lo.shape[0]
    t_prev = t[start - 1] if start > 0 else t[start]
    for i in range(start, stop):
        ti = t[i]
        xi = np.intp(x[i])
        yi = np.intp(y[i])
        pi = p[i]
        if _is_bad(ti, t_prev, xi, yi, pi, width, height):
            return i
        t_prev = ti
        u = u_lo[xi]
        v = v_lo[yi]
        if u < 0 or v < 0:
            continue
        k = (1 - pi) * hw + v * ow + u
        if ti > flat[k]:  # events are sorted, but parts may be merged out of order
            flat[k] = ti
    return -1


# --- multi target: upscaling, sensor pixel x covers output columns u_lo[x] <= u < u_hi[x] -------


@numba.njit(cache=True, nogil=True)
def _voxel_multi(t, x, y, p, start, stop, t0, scale, u_lo, u_hi, v_lo, v_hi, out):
    n_bins = out.shape[0]
    width = u_lo.shape[0]
    height = v_lo.shape[0]
    t_prev = t[start - 1] if start > 0 else t[start]
    for i in range(start, stop):
        ti = t[i]
        xi = np.intp(x[i])
        yi = np.intp(y[i])
        pi = p[i]
        if _is_bad(ti, t_prev, xi, yi, pi, width, height):
            return i
        t_prev = ti
        ua = u_lo[xi]
        ub = u_hi[xi]
        va = v_lo[yi]
        vb = v_hi[yi]
        if ua >= ub or va >= vb:
            continue
        pol = np.float32(2 * pi - 1)
        tn = (ti - t0) * scale
        b = _floor_int(tn)
        frac = np.float32(tn - b)
        w_left = pol * (np.float32(1.0) - frac)
        w_right = pol * frac
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
def _count_multi(t, x, y, p, start, stop, t0, span, n_sub, u_lo, u_hi, v_lo, v_hi, out):
    width = u_lo.shape[0]
    height = v_lo.shape[0]
    t_prev = t[start - 1] if start > 0 else t[start]
    for i in range(start, stop):
        ti = t[i]
        xi = np.intp(x[i])
        yi = np.intp(y[i])
        pi = p[i]
        if _is_bad(ti, t_prev, xi, yi, pi, width, height):
            return i
        t_prev = ti
        ua = u_lo[xi]
        ub = u_hi[xi]
        va = v_lo[yi]
        vb = v_hi[yi]
        if ua >= ub or va >= vb:
            continue
        c = 2 * _sub_slice(ti, t0, span, n_sub) + 1 - pi
        for v in range(va, vb):
            for u in range(ua, ub):
                out[c, v, u] += np.float32(1.0)
    return -1


@numba.njit(cache=True, nogil=True)
def _last_time_multi(t, x, y, p, start, stop, u_lo, u_hi, v_lo, v_hi, out):
    width = u_lo.shape[0]
    height = v_lo.shape[0]
    t_prev = t[start - 1] if start > 0 else t[start]
    for i in range(start, stop):
        ti = t[i]
        xi = np.intp(x[i])
        yi = np.intp(y[i])
        pi = p[i]
        if _is_bad(ti, t_prev, xi, yi, pi, width, height):
            return i
        t_prev = ti
        ua = u_lo[xi]
        ub = u_hi[xi]
        va = v_lo[yi]
        vb = v_hi[yi]
        if ua >= ub or va >= vb:
            continue
        c = 1 - pi
        for v in range(va, vb):
            for u in range(ua, ub):
                if ti > out[c, v, u]:
                    out[c, v, u] = ti
    return -1


# --- dispatch (one branch per call, not per event) and parallel drivers ----------------------------


@numba.njit(cache=True, nogil=True)
def _voxel_range(t, x, y, p, start, stop, t0, scale, u_lo, u_hi, v_lo, v_hi, single, out):
    """Signed voxel grid, bilinear in time, over events[start:stop]; returns first bad index or -1.

    ``t* = (t - t0) * scale`` with ``scale = (B - 1) / (t1 - t0)``; bin ``b`` gets
    ``pol * max(0, 1 - |t* - b|)``.
    """
    if single:
        return _voxel_single(t, x, y, p, start, stop, t0, scale, u_lo, v_lo, out)
    return _voxel_multi(t, x, y, p, start, stop, t0, scale, u_lo, u_hi, v_lo, v_hi, out)


@numba.njit(cache=True, nogil=True)
def _count_range(t, x, y, p, start, stop, t0, span, n_sub, u_lo, u_hi, v_lo, v_hi, single, out):
    """Counts per (sub-slice, polarity), channel ``2 * s + (0 if ON else 1)``; first bad index or -1.

    Sub-slice ``s = clip(floor((t - t0) * n_sub / span), 0, n_sub - 1)``; ``n_sub == 1`` gives the
    plain two-channel count frame.
    """
    if single:
        return _count_single(t, x, y, p, start, stop, t0, span, n_sub, u_lo, v_lo, out)
    return _count_multi(t, x, y, p, start, stop, t0, span, n_sub, u_lo, u_hi, v_lo, v_hi, out)


@numba.njit(cache=True, nogil=True)
def _last_time_range(t, x, y, p, start, stop, u_lo, u_hi, v_lo, v_hi, single, out):
    """Latest timestamp per (polarity, pixel) into int64 ``out`` (pre-filled with a sentinel)."""
    if single:
        return _last_time_single(t, x, y, p, start, stop, u_lo, v_lo, out)
    return _last_time_multi(t, x, y, p, start, stop, u_lo, u_hi, v_lo, v_hi, out)


@numba.njit(cache=True, parallel=True)
def _voxel_parts(t, x, y, p, bounds, t0, scale, u_lo, u_hi, v_lo, v_hi, single, bufs, bad):
    """`_voxel_range` over ``len(bounds) - 1`` parts, part k into ``bufs[k]``, bad index into ``bad[k]``."""
    for k in numba.prange(bounds.shape[0] - 1):
        bad[k] = _voxel_range(
            t, x, y, p, bounds[k], bounds[k + 1], t0, scale, u_lo, u_hi, v_lo, v_hi, single, bufs[k]
        )


@numba.njit(cache=True, parallel=True)
def _count_parts(t, x, y, p, bounds, t0, span, n_sub, u_lo, u_hi, v_lo, v_hi, single, bufs, bad):
    """`_count_range` over parts (see `_voxel_parts`)."""
    for k in numba.prange(bounds.shape[0] - 1):
        bad[k] = _count_range(
            t, x, y, p, bounds[k], bounds[k + 1], t0, span, n_sub, u_lo, u_hi, v_lo, v_hi, single, bufs[k]
        )


@numba.njit(cache=True, parallel=True)
def _last_time_parts(t, x, y, p, bounds, u_lo, u_hi, v_lo, v_hi, single, bufs, bad):
    """`_last_time_range` over parts (see `_voxel_parts`)."""
    for k in numba.prange(bounds.shape[0] - 1):
        bad[k] = _last_time_range(
            t, x, y, p, bounds[k], bounds[k + 1], u_lo, u_hi, v_lo, v_hi, single, bufs[k]
        )


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
    Written branch-free over flat pixels so LLVM vectorises it.
    """
    n_sub = counts.shape[0] // 2
    hw = out.shape[1] * out.shape[2]
    c = counts.reshape(2 * n_sub, hw)
    o = out.reshape(3, hw)
    zero = np.float32(0.0)
    for k in range(hw):
        o[0, k] = zero
        o[1, k] = zero
        o[2, k] = zero
    for s in range(n_sub):
        for k in range(hw):
            on = c[2 * s, k]
            off = c[2 * s + 1, k]
            new_on = on > zero and (s == 0 or c[2 * s - 2, k] == zero)
            new_off = off > zero and (s == 0 or c[2 * s - 1, k] == zero)
            h = o[2, k] * decay + stack * np.float32(new_on) + stack * np.float32(new_off)
            o[2, k] = min(h, clip_max)
            o[0, k] += on
            o[1, k] += off
    for k in range(hw):
        o[0, k] = min(clip_max, stack * o[0, k])
        o[1, k] = min(clip_max, stack * o[1, k])
