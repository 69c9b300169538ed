"""Information-retaining token scores, Numba implementation for CPU inference.

Same definitions as `scores.py` (tested equal to it); one fused compiled pass per map replaces the
dozens of small torch kernels the reference needs, whose per-op overhead dominates at tracker map
sizes (8x8, 16x16). Sums are accumulated in float64.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit

from evtrack.pruning.scores import SPATIAL_FORMS, ScoreOptions
from evtrack.tokens import TokenMap

_EPS = 1e-8


@njit(cache=True, fastmath=True, nogil=True)
def _score_map(x, b, lo, h, w, prev, has_prev, include_center, form, softmax, tw, scores):
    """All IR terms of one map of sample b straight from x [T, B, N, C] into scores [B, N] (float64).

    form: 0 paper (3x3 mean, 1 - cos), 1 official (channel-summed box, -cos), 2 global (map mean,
    1 - cos), 3 deviation (L2 distance from the map mean).
    """
    official = form == 1
    t_n, _, _, c = x.shape
    n = h * w
    fm = np.zeros((n, c), np.float64)  # time-mean features
    tm = np.empty(n, np.float64)  # temporal term
    for i in range(n):
        last = prev[b, lo + i] if has_prev else 0.0
        acc_t = 0.0
        for t in range(t_n):
            mc = 0.0
            for k in range(c):
                v = np.float64(x[t, b, lo + i, k])
                fm[i, k] += v
                mc += v
            mc /= c
            acc_t += abs(mc - last)
            last = mc
        tm[i] = acc_t / t_n
    if t_n > 1:
        fm /= t_n
    sp = np.empty(n, np.float64)
    if form >= 2:
        mean = np.zeros(c, np.float64)
        for i in range(n):
            for k in range(c):
                mean[k] += fm[i, k]
        mean /= n
        nm = 0.0
        for k in range(c):
            nm += mean[k] * mean[k]
        for i in range(n):
            dot = 0.0
            na = 0.0
            d2 = 0.0
            for k in range(c):
                v = fm[i, k]
                dot += v * mean[k]
                na += v * v
                d2 += (v - mean[k]) * (v - mean[k])
            if form == 2:
                sp[i] = 1.0 - dot / max(np.sqrt(na) * np.sqrt(nm), _EPS)
            else:
                sp[i] = np.sqrt(d2)
        _add_terms(sp, tm, n, b, lo, softmax, tw, scores)
        return
    # 3x3 box sums (zero outside the map), separable: rows then columns.
    rows = np.empty((n, c), np.float64)
    for i in range(h):
        for j in range(w):
            r = i * w + j
            for k in range(c):
                rows[r, k] = fm[r, k]
            if j > 0:
                for k in range(c):
                    rows[r, k] += fm[r - 1, k]
            if j < w - 1:
                for k in range(c):
                    rows[r, k] += fm[r + 1, k]
    box = np.empty(c, np.float64)
    for i in range(h):
        for j in range(w):
            r = i * w + j
            for k in range(c):
                box[k] = rows[r, k]
            if i > 0:
                for k in range(c):
                    box[k] += rows[r - w, k]
            if i < h - 1:
                for k in range(c):
                    box[k] += rows[r + w, k]
            if official:
                # all-ones CxC kernel: the neighbour vector is (box sum of the channel sum) * ones(C)
                tot = 0.0
                sx = 0.0
                na = 0.0
                for k in range(c):
                    tot += box[k]
                    sx += fm[r, k]
                    na += fm[r, k] * fm[r, k]
                den = abs(tot) * np.sqrt(c) * np.sqrt(na)
                sp[r] = -(tot * sx) / max(den, _EPS)
                continue
            cnt = (min(i + 1, h - 1) - max(i - 1, 0) + 1) * (min(j + 1, w - 1) - max(j - 1, 0) + 1)
            if not include_center:
                cnt -= 1
            if cnt == 0:
                sp[r] = 0.0
                continue
            dot = 0.0
            na = 0.0
            nn2 = 0.0
            for k in range(c):
                v = fm[r, k]
                mm = box[k] - v if not include_center else box[k]
                mm /= cnt
                dot += v * mm
                na += v * v
                nn2 += mm * mm
            sp[r] = 1.0 - dot / max(np.sqrt(na) * np.sqrt(nn2), _EPS)
    _add_terms(sp, tm, n, b, lo, softmax, tw, scores)


@njit(cache=True, fastmath=True, nogil=True)
def _add_terms(sp, tm, n, b, lo, softmax, tw, scores):
    """Normalise the spatial and temporal terms over the map and add them into scores[b, lo:lo+n]."""
    for term in range(2):
        src = sp if term == 0 else tm
        wt = 1.0 if term == 0 else tw
        if term == 1 and tw == 0.0:
            break
        if softmax:
            mx = src.max()
            tot = 0.0
            for i in range(n):
                tot += np.exp(src[i] - mx)
            for i in range(n):
                scores[b, lo + i] += wt * np.exp(src[i] - mx) / tot
        else:
            lo_v = src.min()
            rng = src.max() - lo_v
            if rng > _EPS:
                for i in range(n):
                    scores[b, lo + i] += wt * (src[i] - lo_v) / rng


@njit(cache=True, fastmath=True, nogil=True)
def _score_all(x, offsets, hs, ws, prev, has_prev, include_center, form, softmax, tw, scores, last):
    t_n, b_n, n_tok, c = x.shape
    for b in range(b_n):
        for m in range(offsets.shape[0]):
            _score_map(x, b, offsets[m], hs[m], ws[m], prev, has_prev, include_center, form, softmax, tw, scores)
        for i in range(n_tok):
            acc = 0.0
            for k in range(c):
                acc += x[t_n - 1, b, i, k]
            last[b, i] = acc / c


def ir_scores_numba(
    x: np.ndarray,
    maps: Sequence[TokenMap],
    prev_mean: np.ndarray | None = None,
    opts: ScoreOptions = ScoreOptions(),
) -> tuple[np.ndarray, np.ndarray]:
    """x [T, B, N, C] float32 -> (scores [B, N] float32, last-step channel mean [B, N] float32).

    Same definitions as :func:`evtrack.pruning.scores.ir_scores`, one compiled pass per map.
    """
    if opts.spatial not in SPATIAL_FORMS:
        raise ValueError(f"spatial: found {opts.spatial!r}; expected one of {SPATIAL_FORMS}")
    if opts.normalize not in ("minmax", "softmax"):
        raise ValueError(f"normalize: found {opts.normalize!r}; expected 'minmax' or 'softmax'")
    x = np.ascontiguousarray(x, dtype=np.float32)
    t, b, n, c = x.shape
    has = prev_mean is not None
    prev = np.ascontiguousarray(prev_mean, dtype=np.float32) if has else np.zeros((1, 1), np.float32)
    scores = np.zeros((b, n), np.float64)
    last = np.empty((b, n), np.float32)
    _score_all(
        x, np.array([m.offset for m in maps], np.int64), np.array([m.h for m in maps], np.int64),
        np.array([m.w for m in maps], np.int64), prev, has, opts.include_center, SPATIAL_FORMS.index(opts.spatial),
        opts.normalize == "softmax", float(opts.temporal_weight), scores, last,
    )
    return scores.astype(np.float32), last




@njit(cache=True, nogil=True)
def _topk_maps(scores, offsets, sizes, ks, active, has_active, out):
    """Per map, the ks[m] highest scores (ties to the lower index), ascending, into out [B, sum(ks)]."""
    b_n = scores.shape[0]
    for b in range(b_n):
        pos = 0
        for m in range(offsets.shape[0]):
            lo = offsets[m]
            n = sizes[m]
            k = ks[m]
            neg = np.empty(n, np.float64)
            for i in range(n):
                if has_active and not active[b, lo + i]:
                    neg[i] = np.inf
                else:
                    neg[i] = -np.float64(scores[b, lo + i])
            order = np.argsort(neg, kind="mergesort")[:k]
            order.sort()
            for j in range(k):
                out[b, pos + j] = lo + order[j]
            pos += k


def topk_maps_numba(
    scores: np.ndarray, maps: Sequence[TokenMap], ks: Sequence[int], active: np.ndarray | None = None
) -> np.ndarray:
    """Kept token indices [B, sum(ks)] (int64, ascending per map) — numba twin of select_indices."""
    offsets = np.array([m.offset for m in maps], np.int64)
    sizes = np.array([m.h * m.w for m in maps], np.int64)
    ks_arr = np.array(ks, np.int64)
    out = np.empty((scores.shape[0], int(ks_arr.sum())), np.int64)
    has = active is not None
    act = np.ascontiguousarray(active) if has else np.zeros((1, 1), np.bool_)
    _topk_maps(np.ascontiguousarray(scores), offsets, sizes, ks_arr, act, has, out)
    return out
