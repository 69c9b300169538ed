"""Pick the top-K tokens per map and move tokens between the full set and the kept subset.

Selection is deterministic: ties go to the lower token index (stable descending sort), and the
returned indices are ascending so kept tokens keep their original order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from evtrack.tokens import TokenMap


def n_keep(n: int, ratio: float) -> int:
    """Tokens kept from a map of n tokens at keep fraction ``ratio`` (at least one)."""
    if ratio >= 1.0:
        return n
    return max(1, min(n, int(math.floor(ratio * n + 0.5))))


def topk_indices(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices [B, k] (ascending) of the k highest of scores [B, n]; ties to the lower index."""
    order = torch.sort(scores, dim=-1, descending=True, stable=True).indices[:, :k]
    return torch.sort(order, dim=-1).values


def map_keep_counts(
    maps: Sequence[TokenMap],
    ratio: float,
    keep_maps: Sequence[str] = (),
    active: torch.Tensor | None = None,
) -> list[int]:
    """Tokens kept per map: ``n_keep`` of the map size (whole maps for ``keep_maps``), capped by the
    fewest active tokens of any sample in cumulative mode."""
    ks = []
    for mp in maps:
        n = mp.h * mp.w
        k = n if mp.name in keep_maps else n_keep(n, ratio)
        if active is not None:
            k = min(k, int(active[:, mp.offset : mp.offset + n].sum(-1).min().item()))
        ks.append(k)
    return ks


def kept_share(blocks, layout, ratios: Sequence[float], keep_maps: Sequence[str] = ()) -> float:
    """Fraction of the prunable blocks' input tokens that a keep schedule runs (``ratios`` per block of the
    stack), counting maps named in ``keep_maps`` whole and following layout changes between blocks."""
    from evtrack.tokens import as_maps, block_flag, layout_after

    kept = total = 0
    for blk, ratio in zip(blocks, ratios, strict=True):
        maps = as_maps(layout)
        layout = layout_after(blk, layout)
        if not block_flag(blk, "prunable"):
            continue
        total += sum(m.h * m.w for m in maps)
        kept += sum(map_keep_counts(maps, ratio, keep_maps))
    return kept / total if total else 1.0


def select_indices(
    scores: torch.Tensor,
    maps: Sequence[TokenMap],
    ratio: float,
    *,
    keep_maps: Sequence[str] = (),
    active: torch.Tensor | None = None,
) -> torch.Tensor:
    """Kept token indices [B, K] over the whole token axis, top-K of ``scores`` [B, N] per map.

    Maps named in ``keep_maps`` are kept whole. ``active`` [B, N] bool restricts the choice to
    tokens not yet stopped (cumulative early stopping); K per map is computed from the full map
    size and capped by the number of active tokens, so a stopped token is never revived.
    """
    ks = map_keep_counts(maps, ratio, keep_maps, active)
    parts = []
    for mp, k in zip(maps, ks, strict=True):
        sl = slice(mp.offset, mp.offset + mp.h * mp.w)
        s = scores[:, sl]
        if active is not None:
            s = s.masked_fill(~active[:, sl], float("-inf"))
        parts.append(topk_indices(s, k) + mp.offset)
    return torch.cat(parts, dim=-1)


def gather_tokens(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """x [T, B, N, C], idx [B, K] -> [T, B, K, C] (differentiable w.r.t. x)."""
    t, b, n, c = x.shape
    if b == 1:  # the tracking case: a plain index_select is cheaper than gather
        return x.index_select(2, idx[0])
    return torch.gather(x, 2, idx[None, :, :, None].expand(t, b, idx.shape[1], c))


def scatter_tokens(x: torch.Tensor, idx: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Copy of x [T, B, N, C] with the tokens at idx [B, K] replaced by y [T, B, K, C]."""
    t, b, k, c = y.shape
    if b == 1:
        return x.index_copy(2, idx[0], y)
    return x.scatter(2, idx[None, :, :, None].expand(t, b, k, c), y)


def select_tokens(
    x: torch.Tensor, scores: torch.Tensor, keep_ratio: float, num_prefix: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Single-map convenience: keep the first ``num_prefix`` tokens plus the top-K of the rest.

    x [T, B, N, C], scores [B, N] -> (kept [T, B, K, C], keep_idx [B, K] ascending).
    """
    b, n = scores.shape
    rest = scores[:, num_prefix:]
    k = n_keep(n - num_prefix, keep_ratio)
    idx = topk_indices(rest, k) + num_prefix
    if num_prefix:
        prefix = torch.arange(num_prefix, device=scores.device).expand(b, num_prefix)
        idx = torch.cat([prefix, idx], -1)
    return gather_tokens(x, idx), idx
