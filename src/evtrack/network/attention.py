"""Spiking self-attention of Spikformer, Spike-driven Transformer V1 and QKFormer over ``[T, B, N, C]``.

None uses softmax, so each costs O(N) and runs on any subset of tokens: what a token's output depends
on is either the token itself or a per-channel / per-head summary over the tokens present. A module
whose summary sums over tokens has a ``token_scale`` (default 1.0) multiplying that sum before its
neuron; a pruning wrapper running it on K of N tokens may set it to N / K (docs/design.md). Modules
that can take their summary from other tokens accept ``context`` (all tokens; outputs for ``x`` only).
``neuron(threshold)`` makes the spiking neurons (``evtrack.network.neurons.neuron_factory``); the
papers' attention neurons fire at 0.5.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from evtrack.network.layers import LinearBN

Neuron = Callable[..., nn.Module]


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """[T, B, N, C] -> [T, B, h, N, C/h]."""
    t, b, n, _ = x.shape
    return x.reshape(t, b, n, heads, -1).transpose(2, 3)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    """[T, B, h, N, d] -> [T, B, N, h*d]."""
    t, b, h, n, d = x.shape
    return x.transpose(2, 3).reshape(t, b, n, h * d)


class SpikingSelfAttention(nn.Module):
    """Spikformer's SSA (Zhou et al., ICLR 2023): ``SN(Linear(SN(Q K^T V * s)))``.

    Q, K, V are spikes of Linear + BN + LIF on the block input (no neuron before them: Spikformer's
    residual stream is the sum of spike outputs). Without softmax ``(Q K^T) V = Q (K^T V)``, computed
    in the right-hand order (O(N d^2)). ``kv_cache(k, v)`` (optional) completes the keys/values
    ``[T, B, h, M, d]`` with skipped tokens' (cached_kv pruning); ``context`` gives keys/values from
    other tokens than the queries.
    """

    def __init__(self, dim: int, heads: int, neuron: Neuron, scale: float = 0.125) -> None:
        super().__init__()
        self.heads = heads
        self.scale = scale  # Spikformer's fixed 0.125
        self.token_scale = 1.0
        self.q, self.k, self.v = LinearBN(dim, dim), LinearBN(dim, dim), LinearBN(dim, dim)
        self.s_q, self.s_k, self.s_v = neuron(), neuron(), neuron()
        self.s_attn = neuron(0.5)
        self.proj = LinearBN(dim, dim)
        self.s_out = neuron()

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, kv_cache=None) -> torch.Tensor:
        src = x if context is None else context
        q = _heads(self.s_q(self.q(x)), self.heads)
        k = _heads(self.s_k(self.k(src)), self.heads)
        v = _heads(self.s_v(self.v(src)), self.heads)
        if kv_cache is not None:
            k, v = kv_cache(k, v)
        out = (q @ (k.transpose(-2, -1) @ v)) * (self.scale * self.token_scale)
        return self.s_out(self.proj(self.s_attn(_merge_heads(out))))


class SpikeDrivenSelfAttention(nn.Module):
    """SDT-V1's SDSA (Yao et al., NeurIPS 2023): ``SN(SUM_tokens(Q * K)) * V``, then Linear + BN.

    Q, K, V are spikes of Linear + BN + SN on ``SN(x)`` (membrane shortcut: the block input is a
    membrane potential). The column sum over tokens gives one value per channel; its neuron makes a
    channel mask gating V element-wise, so nothing is N x N. ``context``: the tokens the channel sum
    runs over (all tokens under ``full_kv`` pruning); V and the output are for ``x``.
    """

    def __init__(self, dim: int, neuron: Neuron) -> None:
        super().__init__()
        self.token_scale = 1.0
        self.s_in = neuron()
        self.q, self.k, self.v = LinearBN(dim, dim), LinearBN(dim, dim), LinearBN(dim, dim)
        self.s_q, self.s_k, self.s_v = neuron(), neuron(), neuron()
        self.s_mask = neuron(0.5)
        self.proj = LinearBN(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        s = self.s_in(x)
        src = s if context is None else self.s_in(context)
        qk = (self.s_q(self.q(src)) * self.s_k(self.k(src))).sum(dim=2, keepdim=True)  # [T, B, 1, C]
        mask = self.s_mask(qk * self.token_scale)
        return self.proj(mask * self.s_v(self.v(s)))


class QKTokenAttention(nn.Module):
    """QKFormer's Q-K token attention (Zhou et al., NeurIPS 2024): ``SN(Linear(SN(SUM_channels(Q)) * K))``.

    Per head, the channel sum of a token's Q spikes fires a binary token mask that selects the token's
    K spikes. Every token's output depends on that token only (token-wise), so no summary and no
    ``token_scale``; ``context`` is accepted and not needed (the outputs for ``x`` are exact without it).
    """

    def __init__(self, dim: int, heads: int, neuron: Neuron) -> None:
        super().__init__()
        self.heads = heads
        self.q, self.k = LinearBN(dim, dim), LinearBN(dim, dim)
        self.s_q, self.s_k = neuron(), neuron()
        self.s_mask = neuron(0.5)
        self.proj = LinearBN(dim, dim)
        self.s_out = neuron()

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        q = _heads(self.s_q(self.q(x)), self.heads)
        k = _heads(self.s_k(self.k(x)), self.heads)
        mask = self.s_mask(q.sum(dim=-1, keepdim=True))  # [T, B, h, N, 1]
        return self.s_out(self.proj(_merge_heads(mask * k)))


class QKChannelAttention(nn.Module):
    """QKFormer's Q-K channel attention: ``SN(Linear(SN(SUM_tokens(Q)) * K))``.

    The token sum of the Q spikes fires a binary channel mask that selects channels of every token's K
    spikes. The sum runs over the tokens present, hence ``token_scale``; ``context``: the tokens the
    sum runs over.
    """

    def __init__(self, dim: int, neuron: Neuron) -> None:
        super().__init__()
        self.token_scale = 1.0
        self.q, self.k = LinearBN(dim, dim), LinearBN(dim, dim)
        self.s_q, self.s_k = neuron(), neuron()
        self.s_mask = neuron(0.5)
        self.proj = LinearBN(dim, dim)
        self.s_out = neuron()

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        src = x if context is None else context
        mask = self.s_mask(self.s_q(self.q(src)).sum(dim=2, keepdim=True) * self.token_scale)  # [T, B, 1, C]
        return self.s_out(self.proj(mask * self.s_k(self.k(x))))
