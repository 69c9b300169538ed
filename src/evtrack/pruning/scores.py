"""Information-retaining token scores (TP-Spikformer IRToP), torch implementation.

Differentiable torch ops only, so the same code serves training, GPU and the reference for the
Numba scorer (`scores_numba.py`). High score = informative = kept.

Spatial term (paper form): ``1 - cos(x_i, mean of x_j over the valid 3x3 neighbours j != i)``
on the time-mean feature of each map separately. The centre token is *excluded* from its own
neighbourhood (so a token is compared with its surroundings only); border tokens average only
their in-map neighbours; a 1x1 map has no neighbours and scores 0.
Official-code form (``spatial="official"``): the neighbourhood is an all-ones CxC 3x3 kernel, i.e.
the zero-padded 3x3 box sum (centre included) of the channel sum, and the score is ``-cos``.

Map-level spatial variants (``spatial="global"`` / ``"deviation"``): the neighbourhood is the whole
map instead of the 3x3 window, i.e. ``1 - cos(x_i, map mean)`` or the L2 distance ``|x_i - map mean|``.
On event data most of a map is empty background, so a token's distance from the map's typical token
finds the tokens that carry events (the target among them); the local 3x3 form instead favours blob
borders and drops the interior of the target (see BENCHMARKS.md, "How the default schedule was chosen").

Temporal term: ``mean_t |m_t - m_{t-1}|`` of the channel mean ``m_t``. ``m_{-1}`` is the previous
tracking frame's last step when the caller keeps that state, else 0 (the paper's ``|X_1|`` term).

Each term is normalised over the tokens of its map (``"minmax"`` per the paper, ``"softmax"`` per
the official code) and combined as ``spatial + temporal_weight * temporal``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from evtrack.tokens import TokenMap

_EPS = 1e-8


def _cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine along the last axis; zero vectors give 0 (same rule as the Numba kernel)."""
    dot = (a * b).sum(-1)
    na = a.square().sum(-1).sqrt()
    nb = b.square().sum(-1).sqrt()
    return dot / (na * nb).clamp_min(_EPS)


def spatial_dissimilarity(fmap: torch.Tensor, include_center: bool = False) -> torch.Tensor:
    """Paper spatial term. fmap: [B, h, w, C] time-mean features -> [B, h, w]."""
    b, h, w, c = fmap.shape
    x = fmap.permute(0, 3, 1, 2)  # [B, C, h, w]
    box = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=True) * 9.0
    ones = torch.ones(1, 1, h, w, dtype=fmap.dtype, device=fmap.device)
    count = F.avg_pool2d(ones, 3, stride=1, padding=1, count_include_pad=True) * 9.0
    if not include_center:
        box = box - x
        count = count - 1.0
    has = count > 0.5
    mean = box / count.clamp_min(1.0)
    cos = _cosine(x.permute(0, 2, 3, 1), mean.permute(0, 2, 3, 1))
    return torch.where(has[0, 0], 1.0 - cos, torch.zeros_like(cos))


def spatial_dissimilarity_official(fmap: torch.Tensor) -> torch.Tensor:
    """Official-code spatial term: -cos(x_i, all-ones CxC 3x3 conv of x). fmap: [B, h, w, C]."""
    b, h, w, c = fmap.shape
    s = fmap.sum(-1)[:, None]  # channel sum [B, 1, h, w]
    box = (F.avg_pool2d(s, 3, stride=1, padding=1, count_include_pad=True) * 9.0)[:, 0]
    # The neighbour vector is box * ones(C): cos = box * sum_c x / (|box| sqrt(C) |x|).
    dot = box * fmap.sum(-1)
    denom = (box.abs() * (c**0.5) * fmap.square().sum(-1).sqrt()).clamp_min(_EPS)
    return -(dot / denom)


def spatial_global(fmap: torch.Tensor, how: str = "global") -> torch.Tensor:
    """Map-level spatial term. fmap: [B, h, w, C] -> [B, h, w]: ``1 - cos(x_i, map mean)`` ("global")
    or ``|x_i - map mean|_2`` ("deviation")."""
    b, h, w, c = fmap.shape
    f = fmap.reshape(b, h * w, c)
    mean = f.mean(1, keepdim=True)
    if how == "global":
        out = 1.0 - _cosine(f, mean.expand_as(f))
    elif how == "deviation":
        out = (f - mean).square().sum(-1).sqrt()
    else:
        raise ValueError(f"spatial: found {how!r}; expected 'global' or 'deviation'")
    return out.reshape(b, h, w)


SPATIAL_FORMS = ("paper", "official", "global", "deviation")


def temporal_change(x: torch.Tensor, prev_mean: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Temporal term. x: [T, B, n, C]; prev_mean: [B, n] or None -> (score [B, n], last mean [B, n])."""
    m = x.mean(-1)  # [T, B, n]
    first = prev_mean if prev_mean is not None else torch.zeros_like(m[0])
    if m.shape[0] == 1:  # one time step (the tracker's case): the same value with 4 fewer ops in a graph
        return (m[0] - first).abs(), m[0]
    seq = torch.cat([first[None], m], 0)
    return (seq[1:] - seq[:-1]).abs().mean(0), m[-1]


def normalize_scores(s: torch.Tensor, how: str = "minmax") -> torch.Tensor:
    """Normalise [B, n] scores over the n tokens of one map."""
    if how == "minmax":
        lo = s.amin(-1, keepdim=True)
        rng = s.amax(-1, keepdim=True) - lo
        return torch.where(rng > _EPS, (s - lo) / rng.clamp_min(_EPS), torch.zeros_like(s))
    if how == "softmax":
        return torch.softmax(s, -1)
    raise ValueError(f"normalize: found {how!r}; expected 'minmax' or 'softmax'")


@dataclass(frozen=True)
class ScoreOptions:
    """How the information-retaining score is formed."""

    spatial: str = "paper"  # "paper" (1 - cos, 3x3 neighbour mean), "official" (-cos, box), "global" (1 - cos,
    # map mean) or "deviation" (L2 distance from the map mean)
    normalize: str = "minmax"  # per-map normalisation: "minmax" (paper) or "softmax" (code)
    temporal_weight: float = 1.0  # weight of the temporal term (0 = spatial only)
    include_center: bool = False  # paper form: include the token itself in its 3x3 mean


def ir_scores(
    x: torch.Tensor,
    maps: Sequence[TokenMap],
    prev_mean: torch.Tensor | None = None,
    opts: ScoreOptions = ScoreOptions(),
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores of every token. x: [T, B, N, C] block input -> (scores [B, N], channel mean of last step [B, N]).

    Scores are normalised per map, so they are comparable only within a map (selection is per map).
    ``prev_mean`` is the second return value of the previous frame's call, or None.
    """
    t, b, n, c = x.shape
    scores = torch.zeros(b, n, dtype=x.dtype, device=x.device)
    for mp in maps:
        scores[:, mp.offset : mp.offset + mp.h * mp.w] = map_scores(x, mp, prev_mean, opts)
    return scores, x[-1].mean(-1)


def map_scores(
    x: torch.Tensor, mp: TokenMap, prev_mean: torch.Tensor | None = None, opts: ScoreOptions = ScoreOptions()
) -> torch.Tensor:
    """Scores [B, h*w] of the tokens of one map ``mp`` of x [T, B, N, C] (see :func:`ir_scores`); exported
    graphs call it per map, so they need no scatter into a full score vector."""
    t, b, n, c = x.shape
    sl = slice(mp.offset, mp.offset + mp.h * mp.w)
    fmap = (x[0, :, sl] if t == 1 else x[:, :, sl].mean(0)).reshape(b, mp.h, mp.w, c)
    if opts.spatial == "paper":
        sp = spatial_dissimilarity(fmap, opts.include_center)
    elif opts.spatial == "official":
        sp = spatial_dissimilarity_official(fmap)
    elif opts.spatial in ("global", "deviation"):
        sp = spatial_global(fmap, opts.spatial)
    else:
        raise ValueError(f"spatial: found {opts.spatial!r}; expected one of {SPATIAL_FORMS}")
    total = normalize_scores(sp.reshape(b, -1), opts.normalize)
    if opts.temporal_weight != 0.0:
        prev = prev_mean[:, sl] if prev_mean is not None else None
        tm, _ = temporal_change(x[:, :, sl], prev)
        total = total + opts.temporal_weight * normalize_scores(tm, opts.normalize)
    return total
