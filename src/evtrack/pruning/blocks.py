"""Block-level early stopping: run each transformer block on its top-K tokens only.

``PrunedBlockStack`` replaces ``model.backbone.block_stack``. For every prunable block it scores the
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
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from evtrack.pruning.scores import layout_maps
from evtrack.pruning.select import gather_tokens, map_keep_counts, scatter_tokens, select_indices

MODES = ("reselect", "cumulative")


def _hook_targets(block: nn.Module) -> list[nn.Module]:
    """Fallback for attention without ``token_scale``: the spiking neuron that follows the (Q K^T) V
    product (``s_attn`` of evtrack's SpikingLinearAttention) gets its input rescaled by a pre-hook."""
    return [
        m.s_attn for m in block.modules()
        if type(m).__name__ == "SpikingLinearAttention" and isinstance(getattr(m, "s_attn", None), nn.Module)
    ]


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
    ):
        super().__init__()
        blocks = stack.blocks
        if len(keep) != len(blocks):
            raise ValueError(f"keep: found {len(keep)} ratios; expected one per block ({len(blocks)})")
        if mode not in MODES:
            raise ValueError(f"mode: found {mode!r}; expected one of {MODES}")
        for i, (blk, r) in enumerate(zip(blocks, keep, strict=True)):
            if not getattr(blk, "prunable", True) and r < 1.0:
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
        if full_kv:
            for i, (blk, r) in enumerate(zip(blocks, self.keep, strict=True)):
                if r < 1.0 and not getattr(blk, "accepts_context", False):
                    raise ValueError(
                        f"full_kv=True: block {i} ({type(blk).__name__}) does not accept a `context` argument "
                        "(no `accepts_context` attribute; docs/design.md)"
                    )
        self.last_tokens: list[int] = []  # tokens each block processed in the last forward (per sample)
        self._scaled = [[m for m in blk.modules() if hasattr(m, "token_scale")] for blk in blocks]
        self._hooked = [_hook_targets(blk) if not sc else [] for blk, sc in zip(blocks, self._scaled, strict=True)]
        self._scale = 1.0  # read by the fallback hooks while a block runs on a subset
        self._hooks = []
        if compensate:
            for i, (blk, r) in enumerate(zip(blocks, self.keep, strict=True)):
                if r < 1.0 and not self._scaled[i] and not self._hooked[i]:
                    raise ValueError(
                        f"compensate=True: block {i} ({type(blk).__name__}) has no module with a `token_scale` "
                        "attribute (docs/design.md) and no known attention to hook"
                    )
            for targets in self._hooked:
                for mod in targets:
                    self._hooks.append(mod.register_forward_pre_hook(self._scale_input))

    def reset_state(self) -> None:
        """Forget per-sequence scorer state (call when a tracker is initialised)."""
        self.scorer.reset_state()

    def _scale_input(self, module, args):
        if self._scale == 1.0:
            return None
        return (args[0] * self._scale,) + tuple(args[1:])

    def remove_hooks(self) -> None:
        """Detach the fallback compensation hooks (when the dense stack is restored)."""
        for h in self._hooks:
            h.remove()
        self._hooks = []

    def _run(self, i: int, blk: nn.Module, x: torch.Tensor, scale: float, full: torch.Tensor) -> torch.Tensor:
        if self.full_kv:
            return blk(x, context=full)  # exact K^T V: no compensation needed
        if not self.compensate or scale == 1.0:
            return blk(x)
        if self._hooked[i]:
            self._scale = scale
            try:
                return blk(x)
            finally:
                self._scale = 1.0
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
        maps = layout_maps(layout)
        n = x.shape[2]
        active: torch.Tensor | None = None  # cumulative mode: tokens not yet stopped
        tokens: list[int] = []
        for i, blk in enumerate(self.blocks):
            prunable = getattr(blk, "prunable", True)
            if not prunable:
                # Channel transitions see every token; cumulative stopping restarts after them.
                x = blk(x)
                active = None
                tokens.append(n)
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
            y = self._run(i, blk, gather_tokens(x, idx), n / k, x)
            x = scatter_tokens(x, idx, y)
            if self.mode == "cumulative":
                active = torch.zeros(x.shape[1], n, dtype=torch.bool, device=x.device)
                active.scatter_(1, idx, True)
        self.last_tokens = tokens
        return x
