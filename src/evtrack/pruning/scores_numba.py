"""Information-retaining token scores, Numba implementation for CPU inference.

Same definitions as `scores.py` (tested equal to it); one fused pass per map avoids the dozens of
small torch kernels the reference needs, which dominate at tracker map sizes (8x8, 16x16).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit

from evtrack.pruning.scores import MapSpec, ScoreOptions

_EPS = 1e-8


@njit(cache=True)
def _spatial_paper(fmap, include_center, out):
    """fmap [B, h, w, C] float32 -> out [B, h*w] float64 (1 - cos with the 3x3 neighbour mean)."""
    b_n, h, w, c = fmap.shape
    nb = np.empty(c, np.float64)
    for b in range(b_n):
        for i in range(h):
            for j in range(w):
                nb[:] = 0.0
                cnt = 0
                for di in range(-1, 2):
                    for dj in range(-1, 2):
                        ii = i + di
                        jj = j + dj
                        if ii < 0 or ii >= h or jj < 0 or jj >= w:
                            continue
                        if di == 0 and dj == 0 and not include_center:
                            continue
                        cnt += 1
                        for k in range(c):
                            nb[k] += fmap[b, ii, jj, k]
                if cnt == 0:
                    out[b, i * w + j] = 0.0
                    continue
                dot = 0.0
                na = 0.0
                nn2 = 0.0
                for k in range(c):
                    v = np.float64(fmap[b, i, j, k])
                    m = nb[k] / cnt
                    dot += v * m
                    na += v * v
                    nn2 += m * m
                den = np.sqrt(na) * np.sqrt(nn2)
                if den < _EPS:
                    den = _EPS
                out[b, i * w + j] = 1.0 - dot / den


@njit(cache=True)
def _spatial_official(fmap, out):
    """fmap [B, h, w, C] -> out [B, h*w]: -cos(x, box-summed channel sum * ones(C))."""
    b_n, h, w, c = fmap.shape
    s = np.zeros((h, w), np.float64)
    for b in range(b_n):
        for i in range(h):
            for j in range(w):
                acc = 0.0
                for k in range(c):
                    acc += fmap[b, i, j, k]
                s[i, j] = acc
        for i in range(h):
            for j in range(w):
                box = 0.0
                for ii in range(max(i - 1, 0), min(i + 2, h)):
                    for jj in range(max(j - 1, 0), min(j + 2, w)):
                        box += s[ii, jj]
                na = 0.0
                for k in range(c):
                    v = np.float64(fmap[b, i, j, k])
                    na += v * v
                den = abs(box) * np.sqrt(c) * np.sqrt(na)
                if den < _EPS:
                    den = _EPS
                out[b, i * w + j] = -(box * s[i, j]) / den


@njit(cache=True)
def _temporal(m, prev, has_prev, out):
    """m [T, B, n] channel means, prev [B, n] -> out [B, n] = mean_t |m_t - m_{t-1}|."""
    t_n, b_n, n = m.shape
    for b in range(b_n):
        for i in range(n):
            last = prev[b, i] if has_prev else 0.0
            acc = 0.0
            for t in range(t_n):
                cur = np.float64(m[t, b, i])
                acc += abs(cur - last)
                last = cur
            out[b, i] = acc / t_n


@njit(cache=True)
def _minmax_add(src, weight, dst):
    """dst [B, n] += weight * minmax-normalised src (per row)."""
    b_n, n = src.shape
    for b in range(b_n):
        lo = src[b, 0]
        hi = src[b, 0]
        for i in range(n):
            lo = min(lo, src[b, i])
            hi = max(hi, src[b, i])
        rng = hi - lo
        for i in range(n):
            if rng > _EPS:
                dst[b, i] += weight * (src[b, i] - lo) / rng


def _softmax_add(src: np.ndarray, weight: float, dst: np.ndarray) -> None:
    e = np.exp(src - src.max(-1, keepdims=True))
    dst += weight * e / e.sum(-1, keepdims=True)


def ir_scores_numba(
    x: np.ndarray,
    maps: Sequence[MapSpec],
    prev_mean: np.ndarray | None = None,
    opts: ScoreOptions = ScoreOptions(),
) -> tuple[np.ndarray, np.ndarray]:
    """x [T, B, N, C] float32 -> (scores [B, N] float32, last-step channel mean [B, N] float32)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    t, b, n, c = x.shape
    xm = x.mean(0, dtype=np.float64).astype(np.float32)  # time mean, matches torch's float32 mean closely
    m = x.mean(-1)  # [T, B, N] channel means
    scores = np.zeros((b, n), np.float64)
    add = _minmax_add if opts.normalize == "minmax" else _softmax_add
    if opts.normalize not in ("minmax", "softmax"):
        raise ValueError(f"normalize: found {opts.normalize!r}; expected 'minmax' or 'softmax'")
    for mp in maps:
        lo, hi = mp.offset, mp.offset + mp.h * mp.w
        fmap = np.ascontiguousarray(xm[:, lo:hi].reshape(b, mp.h, mp.w, c))
        sp = np.empty((b, hi - lo), np.float64)
        if opts.spatial == "paper":
            _spatial_paper(fmap, opts.include_center, sp)
        elif opts.spatial == "official":
            _spatial_official(fmap, sp)
        else:
            raise ValueError(f"spatial: found {opts.spatial!r}; expected 'paper' or 'official'")
        part = np.zeros((b, hi - lo), np.float64)
        add(sp, 1.0, part)
        if opts.temporal_weight != 0.0:
            tm = np.empty((b, hi - lo), np.float64)
            has = prev_mean is not None
            prev = (
                np.ascontiguousarray(prev_mean[:, lo:hi], dtype=np.float64)
                if has
                else np.zeros((b, hi - lo), np.float64)
            )
            _temporal(np.ascontiguousarray(m[:, :, lo:hi]), prev, has, tm)
            add(tm, float(opts.temporal_weight), part)
        scores[:, lo:hi] = part
    return scores.astype(np.float32), np.ascontiguousarray(m[-1])
