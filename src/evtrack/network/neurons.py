"""Integer-valued spiking neurons (I-LIF) for the spike-driven backbone.

I-LIF (Luo et al., ECCV 2024, used by SDT-V3 and SDTrack) emits an integer spike count
``C = round(clip(H, 0, D))`` per time step instead of a binary spike; at deployment each count
is expanded into ``D`` binary sub-steps, so the network stays multiplication-free. Training uses a
straight-through gradient inside ``[0, D]``.

Outputs are the counts divided by ``D`` (values ``0, 1/D, ..., 1``), as in SDT-V3: the next layer's
weights absorb the constant, and ``count = round(out * D)`` recovers the integer spikes (the op
counter in ``evtrack.metrics.ops`` reads ``spike_levels`` for this).
This is equivalent to spikingjelly's ``ILIFNode`` (which returns the raw counts ``0..D``) up to that
1/D scale; a fused clamp+round is used because it is several times cheaper on CPU than the generic
multi-step neuron machinery.
"""

from __future__ import annotations

import torch
from torch import nn


class _QuantiseSTE(torch.autograd.Function):
    """round(clamp(x, 0, D)) / D with a rectangular straight-through gradient on [0, D]."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, max_value: float) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.max_value = max_value
        return torch.clamp(x, 0.0, max_value).round_().div_(max_value)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        mask = (x >= 0) & (x <= ctx.max_value)
        return grad * mask.to(grad.dtype) / ctx.max_value, None


def int_spike(x: torch.Tensor, max_value: float = 4.0) -> torch.Tensor:
    """Quantise a membrane potential to normalised integer spikes ``round(clip(x,0,D))/D``.

    Pure function: no state, does not modify ``x``. Under ``torch.no_grad`` / inference mode it
    skips the autograd wrapper (one clamp and one in-place round).
    """
    if torch.is_grad_enabled() and x.requires_grad:
        return _QuantiseSTE.apply(x, float(max_value))
    return torch.clamp(x, 0.0, max_value).round_().div_(max_value)


def ilif_multistep(x: torch.Tensor, max_value: float = 4.0, beta: float = 0.25) -> torch.Tensor:
    """Multi-step I-LIF over the leading time axis of ``x`` ``[T, ...]`` (soft reset).

    ``H[t] = beta * V[t-1] + X[t]``, ``C[t] = round(clip(H[t], 0, D))``, ``V[t] = H[t] - C[t]``.
    With ``T == 1`` this reduces to :func:`int_spike`.
    """
    if x.shape[0] == 1:
        return int_spike(x, max_value)
    out = []
    v = torch.zeros_like(x[0])
    for t in range(x.shape[0]):
        h = beta * v + x[t]
        s = int_spike(h, max_value)
        v = h - s * max_value
        out.append(s)
    return torch.stack(out)


class ILIF(nn.Module):
    """Integer LIF neuron module over ``[T, ...]`` tensors (time steps first).

    Stateless between calls: every forward starts from a zero membrane, which is what one tracking
    frame (T time steps of the same frame) needs.
    """

    def __init__(self, max_value: int = 4, beta: float = 0.25) -> None:
        super().__init__()
        self.max_value = int(max_value)
        self.beta = float(beta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ilif_multistep(x, self.max_value, self.beta)

    @property
    def spike_levels(self) -> int:
        """D: outputs are k / D, k in 0..D (how op counting recognises spike tensors)."""
        return self.max_value

    def extra_repr(self) -> str:
        return f"max_value={self.max_value}, beta={self.beta}"
