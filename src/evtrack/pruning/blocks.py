"""Block-level early stopping: run each transformer block on its top-K tokens only.

``PrunedBlockStack`` replaces a model's token stack (``evtrack.tokens.TokenModel``). For every prunable block it scores the
block input, gathers the kept tokens (a real smaller tensor, so the block's compute shrinks), runs
the block on them and scatters the result back; skipped tokens keep their input features, so the
output has the full token layout and the head is unchanged. The wrapped blocks are the same module
objects under the same parameter names, so state dicts load either way.

Modes: ``"reselect"`` scores every block afresh (official code); ``"cumulative"`` stops a token for
good once it is skipped (the paper's early stopping). Non-prunable blocks run dense.

Linear attention without softmax sums over the tokens it attends, so with ``compensate=True`` every
submodule of the block that has a ``token_scale`` attribute is set to N/K while the block runs on K
of N tokens (the attention multiplies its (Q K^T) V output by it; see docs/design.md).

With ``full_kv=True`` the keys and values still come from *all* N tokens (blocks that declare
``accepts_context`` take ``forward(kept, context=all)``), so the K^T V summary every kept query
reads is the dense one; only the kept tokens get the attention output, its projection and the MLP.
This removes the N/K scale problem at the cost of the K/V projections of the skipped tokens.

With ``cached_kv=True`` (blocks that declare ``accepts_kv_cache``) the skipped tokens' keys/values
come from the last frame in which each was computed instead: a block computes K/V for its kept
tokens only, writes them into a per-block cache of all N tokens and attends to the whole cache. The
first call after :meth:`PrunedBlockStack.reset_state` (a tracker's ``init``) fills the cache from all
tokens, as ``full_kv`` does. Why it is sound: a token is skipped because it scores low, and the
score's temporal term is how much it changed since the previous frame, so its old keys/values are
close to what ``full_kv`` would recompute, for the compute of plain pruning. It carries state from
frame to frame, so it belongs to online inference; in training mode it behaves like ``full_kv``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from evtrack.pruning.select import gather_tokens, map_keep_counts, scatter_tokens, select_indices
from evtrack.tokens import as_maps, block_flag, layout_after, scaled_modules

MODES = ("reselect", "cumulative")


_CONTEXT = ("accepts_context",)  # block attributes full_kv needs
_CACHE = ("accepts_context", "accepts_kv_cache")  # and cached_kv (its first frame uses the context)


def _lacks(block: nn.Module, attributes: Sequence[str]) -> list[str]:
    return [a for a in attributes if not block_flag(block, a)]


class KVCache:
    """Keys/values ``[T, B, h, N, d]`` of every token of one block, from the last frame each was
    computed in. Called by the attention with the keys/values of the tokens it just projected."""

    def __init__(self) -> None:
        self.k: torch.Tensor | None = None
        self.v: torch.Tensor | None = None
        self.idx: torch.Tensor | None = None  # [B, K] positions of this call's tokens; None = all tokens

    def clear(self) -> None:
        self.k = self.v = self.idx = None

    def fits(self, x: torch.Tensor) -> bool:
        """The cache holds every token of ``x [T, B, N, C]`` (same batch and token count)."""
        return self.k is not None and self.k.shape[:2] == x.shape[:2] and self.k.shape[3] == x.shape[2]

    def __call__(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.idx is None:  # keys/values of all tokens (computed from the full context)
            self.k, self.v = k.contiguous(), v.contiguous()  # own copies: later frames write into them
            return self.k, self.v
        t, b, h = k.shape[:3]
        if b == 1 and self.k.is_inference() == torch.is_inference_mode_enabled():
            self.k.index_copy_(3, self.idx[0], k)  # online tracking: in place, ~4x cheaper than scatter
            self.v.index_copy_(3, self.idx[0], v)
            return self.k, self.v
        at = self.idx.reshape(1, b, 1, -1, 1)
        self.k = self.k.scatter(3, at.expand(t, b, h, at.shape[3], k.shape[4]), k)
        self.v = self.v.scatter(3, at.expand(t, b, h, at.shape[3], v.shape[4]), v)
        return self.k, self.v


class PrunedBlockStack(nn.Module):
    """Token-pruned drop-in for a block stack with ``blocks`` and ``forward(x, layout)``.

    Args:
        stack: the dense block stack (its ``blocks`` are reused, not copied).
        keep: keep fraction per block (len == number of blocks; non-prunable blocks must be 1.0).
        scorer: callable ``(x, maps, block_index, training) -> scores [B, N]`` with ``reset_state()``.
        mode: "reselect" or "cumulative".
        keep_maps: names of maps never pruned (e.g. the template maps).
        compensate: rescale attention by N/K through ``token_scale`` attributes.
        full_kv: keys/values from every token, outputs for the kept ones only (see module doc).
        cached_kv: keys/values of skipped tokens from the last frame they were computed in (module doc);
            None: for the blocks that support it (``accepts_kv_cache``), plain pruning for the others;
            off when ``full_kv`` or ``compensate`` is on.
    """

    def __init__(
        self,
        stack: nn.Module,
        keep: Sequence[float],
        scorer,
        *,
        mode: str = "reselect",
        keep_maps: Sequence[str] = (),
        compensate: bool = False,
        full_kv: bool = False,
        cached_kv: bool | None = False,
    ):
        super().__init__()
        blocks = stack.blocks
        if len(keep) != len(blocks):
            raise ValueError(f"keep: found {len(keep)} ratios; expected one per block ({len(blocks)})")
        if mode not in MODES:
            raise ValueError(f"mode: found {mode!r}; expected one of {MODES}")
        for i, (blk, r) in enumerate(zip(blocks, keep, strict=True)):
            if not block_flag(blk, "prunable") and r < 1.0:
                raise ValueError(f"keep: block {i} is not prunable but its ratio is {r}; expected 1.0")
        # Register the inner stack's children under their own names so parameter names do not change.
        for name, child in stack.named_children():
            self.add_module(name, child)
        object.__setattr__(self, "dense_stack", stack)
        self.training = stack.training  # follow the model's mode (the scorer's state depends on it)
        self.keep = [float(r) for r in keep]
        self.scorer = scorer
        self.mode = mode
        self.keep_maps = tuple(keep_maps)
        self.compensate = compensate
        self.full_kv = full_kv
        if full_kv and cached_kv:
            raise ValueError("full_kv and cached_kv exclude each other; expected at most one of them")
        if compensate and cached_kv:
            raise ValueError("compensate rescales plain pruning's attention; cached_kv keeps its scale. "
                             "Expected at most one of them")
        for flag, on, needs in (("full_kv", full_kv, _CONTEXT), ("cached_kv", cached_kv, _CACHE)):
            for i, (blk, r) in enumerate(zip(blocks, self.keep, strict=True)):
                missing = _lacks(blk, needs)
                if on and r < 1.0 and missing:
                    raise ValueError(
                        f"{flag}=True: block {i} ({type(blk).__name__}) lacks {', '.join(missing)} "
                        "(it does not take a `context`/`kv_cache` argument; docs/design.md)"
                    )
        # per block: its key/value cache, or None (cached_kv=None: wherever the block supports one, unless
        # full_kv or compensate, the alternatives to the cache, is on)
        auto = cached_kv is None and not full_kv and not compensate
        self._kv = [KVCache() if cached_kv or (auto and not _lacks(blk, _CACHE)) else None for blk in blocks]
        self.cached_kv = any(c is not None for c in self._kv)
        self.last_tokens: list[int] = []  # tokens each block processed in the last forward (per sample)
        self._scaled = [scaled_modules(blk) for blk in blocks]
        if compensate:
            for i, (blk, r) in enumerate(zip(blocks, self.keep, strict=True)):
                if r < 1.0 and not self._scaled[i] and not block_flag(blk, "token_wise"):
                    raise ValueError(
                        f"compensate=True: block {i} ({type(blk).__name__}) has no module with a `token_scale` "
                        "attribute (docs/design.md)"
                    )

    def reset_state(self) -> None:
        """Forget per-sequence state: the scorer's previous frame and the key/value caches (call when
        a tracker is initialised)."""
        self.scorer.reset_state()
        for cache in self._kv:
            if cache is not None:
                cache.clear()

    def _run(self, i: int, blk: nn.Module, x: torch.Tensor, scale: float, full: torch.Tensor,
             idx: torch.Tensor) -> torch.Tensor:
        cache = self._kv[i]
        if self.full_kv or (cache is not None and self.training):
            return blk(x, context=full)  # exact K^T V: no compensation needed
        if cache is not None:
            if not cache.fits(full):  # first frame (or a new batch shape): keys/values of all tokens
                cache.idx = None
                return blk(x, context=full, kv_cache=cache)
            cache.idx = idx
            return blk(x, kv_cache=cache)
        if not self.compensate or scale == 1.0:
            return blk(x)
        mods = self._scaled[i]
        old = [m.token_scale for m in mods]
        for m in mods:
            m.token_scale = scale
        try:
            return blk(x)
        finally:
            for m, v in zip(mods, old, strict=True):
                m.token_scale = v

    def _select(self, scores, maps, ratio, active):
        if scores.device.type != "cpu" or self.training:
            return select_indices(scores, maps, ratio, keep_maps=self.keep_maps, active=active)
        # Inference on CPU: one compiled pass instead of a sort per map (same result, tested).
        from evtrack.pruning.scores_numba import topk_maps_numba

        ks = map_keep_counts(maps, ratio, self.keep_maps, active)
        act = active.numpy() if active is not None else None
        return torch.from_numpy(topk_maps_numba(scores.detach().numpy(), maps, ks, act))

    def forward(self, x: torch.Tensor, layout) -> torch.Tensor:
        """x [T, B, N, C] -> [T, B, N, C] with the same token layout."""
        maps = as_maps(layout)
        n = x.shape[2]
        active: torch.Tensor | None = None  # cumulative mode: tokens not yet stopped
        tokens: list[int] = []
        for i, blk in enumerate(self.blocks):
            if not block_flag(blk, "prunable"):
                # Channel transitions see every token; cumulative stopping restarts after them.
                x = blk(x)
                active = None
                tokens.append(n)
                maps = as_maps(layout_after(blk, maps))  # patch merging: the next stage has other maps
                n = x.shape[2]
                continue
            r = self.keep[i]
            if r >= 1.0 and active is None:
                x = blk(x)
                tokens.append(n)
                continue
            scores = self.scorer(x, maps, i, self.training)
            idx = self._select(scores, maps, r, active)
            k = idx.shape[1]
            tokens.append(k)
            if k == n:
                x = blk(x)
                continue
            y = self._run(i, blk, gather_tokens(x, idx), n / k, x, idx)
            x = scatter_tokens(x, idx, y)
            if self.mode == "cumulative":
                active = torch.zeros(x.shape[1], n, dtype=torch.bool, device=x.device)
                active.scatter_(1, idx, True)
        self.last_tokens = tokens
        return x
