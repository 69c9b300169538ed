"""Transformer blocks of Spikformer, SDT-V1 and QKFormer, and QKFormer's patch merging between stages.

Every block maps ``[T, B, N', C] -> [T, B, N', C]`` for any token subset N' (token-wise layers plus
the linear attentions of :mod:`evtrack.network.attention`) and declares the block attributes of
:mod:`evtrack.tokens` truthfully: what pruning may do with it follows from them, never from its type.
Two residual styles, as in the papers:

- spike outputs (Spikformer, QKFormer): ``x + SN(...)``; each branch ends in a neuron and starts on the
  residual stream itself;
- membrane shortcut (SDT-V1): ``x + f(SN(x))``; each branch starts with a neuron and ends in BN, so
  every weight layer's input is spikes.
"""

from __future__ import annotations

import torch
from torch import nn

from evtrack.network.attention import (
    Neuron,
    QKChannelAttention,
    QKTokenAttention,
    SpikeDrivenSelfAttention,
    SpikingSelfAttention,
)
from evtrack.network.layers import ConvBN, LinearBN, TokenMLP
from evtrack.tokens import TokenLayout, TokenMap


class SpikeOutputMLP(nn.Module):
    """Spikformer / QKFormer MLP: ``SN(BN(Linear(SN(BN(Linear(x))))))``."""

    def __init__(self, dim: int, ratio: float, neuron: Neuron) -> None:
        super().__init__()
        hidden = int(dim * ratio)
        self.fc1, self.s1 = LinearBN(dim, hidden), neuron()
        self.fc2, self.s2 = LinearBN(hidden, dim), neuron()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.s2(self.fc2(self.s1(self.fc1(x))))


class SpikformerBlock(nn.Module):
    """``x + SSA(x)``, then ``x + MLP(x)`` (spike-output residuals). SSA has real keys/values, so the
    block takes a ``context`` and a key/value cache."""

    prunable = True
    accepts_context = True
    accepts_kv_cache = True

    def __init__(self, dim: int, heads: int, mlp_ratio: float, neuron: Neuron) -> None:
        super().__init__()
        self.dim_in = self.dim_out = dim
        self.attn = SpikingSelfAttention(dim, heads, neuron)
        self.mlp = SpikeOutputMLP(dim, mlp_ratio, neuron)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, kv_cache=None) -> torch.Tensor:
        x = x + self.attn(x, context, kv_cache)
        return x + self.mlp(x)


class SDTV1Block(nn.Module):
    """``x + SDSA(x)``, then ``x + MLP(x)`` with membrane shortcuts. SDSA's summary is a channel sum of
    Q*K over tokens, not keys/values, so no key/value cache (plain early stopping by default)."""

    prunable = True
    accepts_context = True
    accepts_kv_cache = False

    def __init__(self, dim: int, mlp_ratio: float, max_value: int, neuron: Neuron) -> None:
        super().__init__()
        self.dim_in = self.dim_out = dim
        self.attn = SpikeDrivenSelfAttention(dim, neuron)
        self.mlp = TokenMLP(dim, mlp_ratio, max_value, neuron)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(x, context)
        return x + self.mlp(x)


class QKFormerBlock(nn.Module):
    """``x + QKA(x)``, then ``x + MLP(x)`` (spike-output residuals) with Q-K token or channel attention.

    No key/value cache (the masks come from Q, the output from K). Token attention is token-wise
    (``token_wise``): no ``token_scale``, nothing for ``compensate`` to rescale, and ``context`` is ignored.
    """

    prunable = True
    accepts_context = True
    accepts_kv_cache = False

    def __init__(self, dim: int, heads: int, mlp_ratio: float, neuron: Neuron, attention: str) -> None:
        super().__init__()
        self.dim_in = self.dim_out = dim
        self.token_wise = attention == "qk_token"  # evtrack.tokens: no token sum, nothing to compensate
        if attention == "qk_token":
            self.attn: nn.Module = QKTokenAttention(dim, heads, neuron)
        elif attention == "qk_channel":
            self.attn = QKChannelAttention(dim, neuron)
        else:
            raise ValueError(f"QKFormer attention is {attention!r}; expected 'qk_token' or 'qk_channel'")
        self.mlp = SpikeOutputMLP(dim, mlp_ratio, neuron)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(x, context)
        return x + self.mlp(x)


def halved(layout: TokenLayout) -> TokenLayout:
    """``layout`` with every map downsampled by 2 (ceil), offsets recomputed in order."""
    maps, offset = [], 0
    for m in layout.maps:
        h, w = (m.h + 1) // 2, (m.w + 1) // 2
        maps.append(TokenMap(m.name, h, w, offset, m.reference))
        offset += h * w
    return TokenLayout(tuple(maps))


class PatchMerge(nn.Module):
    """QKFormer's stage transition: each map of the token axis is downsampled 2x with a 3x3 stride-2
    ConvBN on its spikes plus a 1x1 stride-2 ConvBN shortcut (the paper's deformed shortcut; its main
    path is a 3x3 stride-1 and a 3x3 stride-2 conv, one conv here to stay near tiny's size), changing
    the width ``dim_in -> dim_out``. It mixes neighbouring tokens, so it sees all of them (not
    prunable) and declares the layout it outputs (``token_layout_out``, evtrack.tokens)."""

    prunable = False

    def __init__(self, layout: TokenLayout, dim_in: int, dim_out: int, neuron: Neuron) -> None:
        super().__init__()
        self.dim_in, self.dim_out = dim_in, dim_out
        self.token_layout_in = layout
        self.token_layout_out = halved(layout)
        self.spike = neuron()
        self.conv = ConvBN(dim_in, dim_out, 3, 2)
        self.shortcut = ConvBN(dim_in, dim_out, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[2] != self.token_layout_in.n_tokens:
            raise ValueError(f"PatchMerge got {x.shape[2]} tokens; its layout has {self.token_layout_in.n_tokens}")
        s = self.spike(x)
        out = []
        for m in self.token_layout_in.maps:
            grid = s[:, :, m.offset : m.offset + m.n].transpose(2, 3).unflatten(3, (m.h, m.w))  # [T, B, C, h, w]
            y = self.conv(grid) + self.shortcut(grid)
            out.append(y.flatten(3).transpose(2, 3))
        return torch.cat(out, dim=2)
