"""Integer-valued spiking neurons (I-LIF) for the spike-driven backbone.

I-LIF (Luo et al., ECCV 2024, used by SDT-V3 and SDTrack) emits an integer spike count
``C = round(clip(H, 0, D))`` per time step instead of a binary spike; at deployment each count
is expanded into ``D`` binary sub-steps, so the network stays multiplication-free. Training uses a
straight-through gradient inside ``[0, D]``.

Outputs are the counts divided by ``D`` (values ``0, 1/D, ..., 1``), as in SDT-V3: the next layer's
weights absorb the constant, and ``count = round(out * D)`` recovers the integer spikes (the op
counter in ``evtrack.metrics.ops`` reads ``spike_levels`` for this). At inference the network does
that absorption literally (:func:`evtrack.network.layers.fold_spike_scale`, part of ``fuse()``): the
neurons then emit the integer counts themselves (``counts=True``, ``spike_unit`` 1) and every layer
they feed has its weights (or the attention its product scale) divided by ``D``.
This is equivalent to spikingjelly's ``ILIFNode`` (which returns the raw counts ``0..D``) up to that
1/D scale; a fused clamp+round is used because it is several times cheaper on CPU than the generic
multi-step neuron machinery.
"""

from __future__ import annotations

import torch
from torch import nn


class _QuantiseSTE(torch.autograd.Function):
    """round(clamp(x, 0, D)) / D (``counts``: without the / D) with a rectangular straight-through
    gradient on [0, D]."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, max_value: float, counts: bool) -> torch.Tensor:  # type: ignore[override]
        y = torch.clamp(x, 0.0, max_value)
        # x in [0, D] exactly where clamping left it unchanged (NaN compares unequal: no gradient, as
        # for x outside [0, D]); a bool mask is a quarter of x's memory and backward is then one multiply
        ctx.save_for_backward(y == x)
        ctx.max_value = max_value
        ctx.counts = counts
        y.round_()
        return y if counts else y.div_(max_value)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (inside,) = ctx.saved_tensors
        g = grad * inside
        return (g if ctx.counts else g.div_(ctx.max_value)), None, None


def int_spike(x: torch.Tensor, max_value: float = 4.0, counts: bool = False) -> torch.Tensor:
    """Quantise a membrane potential to normalised integer spikes ``round(clip(x,0,D))/D``, or to the
    counts ``round(clip(x,0,D))`` themselves with ``counts=True``.

    Pure function: no state, does not modify ``x``. Under ``torch.no_grad`` / inference mode it
    skips the autograd wrapper (one clamp and one in-place round).
    """
    if torch.is_grad_enabled() and x.requires_grad:
        return _QuantiseSTE.apply(x, float(max_value), bool(counts))
    y = torch.clamp(x, 0.0, max_value).round_()
    return y if counts else y.div_(max_value)


def ilif_multistep(x: torch.Tensor, max_value: float = 4.0, beta: float = 0.25, counts: bool = False) -> torch.Tensor:
    """Multi-step I-LIF over the leading time axis of ``x`` ``[T, ...]`` (soft reset).

    ``H[t] = beta * V[t-1] + X[t]``, ``C[t] = round(clip(H[t], 0, D))``, ``V[t] = H[t] - C[t]``.
    With ``T == 1`` this reduces to :func:`int_spike`. Outputs ``C / D`` (``counts``: ``C``).
    """
    if x.shape[0] == 1:
        return int_spike(x, max_value, counts)
    out = []
    v = torch.zeros_like(x[0])
    for t in range(x.shape[0]):
        h = beta * v + x[t]
        s = int_spike(h, max_value, counts)
        v = h - (s if counts else s * max_value)
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
        self.counts = False  # True once fold_spike_scale moved the 1/D into the layers this neuron feeds

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ilif_multistep(x, self.max_value, self.beta, self.counts)

    def step(self, x: torch.Tensor) -> torch.Tensor:
        """One time step from rest on a tensor without a time axis (``forward`` of ``x[None]``, squeezed)."""
        return int_spike(x, self.max_value, self.counts)

    @property
    def spike_levels(self) -> int:
        """D: outputs are k * ``spike_unit``, k in 0..D (how op counting recognises spike tensors)."""
        return self.max_value

    @property
    def spike_unit(self) -> float:
        """The value of one spike: 1 / D, or 1 once the neuron emits integer counts (``counts``)."""
        return 1.0 if self.counts else 1.0 / self.max_value

    def extra_repr(self) -> str:
        return f"max_value={self.max_value}, beta={self.beta}" + (", counts=True" if self.counts else "")


# ----------------------------------------------------------------------------- binary LIF
class _HeavisideSurrogate(torch.autograd.Function):
    """Heaviside step forward, sigmoid-surrogate gradient backward (spikingjelly's default, alpha 4)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, alpha: float) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        sg = torch.sigmoid(ctx.alpha * x)
        return grad * ctx.alpha * sg * (1 - sg), None


def heaviside(x: torch.Tensor, alpha: float = 4.0) -> torch.Tensor:
    """Binary spikes ``x >= 0`` with a surrogate gradient when one is needed."""
    if torch.is_grad_enabled() and x.requires_grad:
        return _HeavisideSurrogate.apply(x, float(alpha))
    return (x >= 0).to(x.dtype)


def lif_multistep(x: torch.Tensor, tau: float = 2.0, threshold: float = 1.0) -> torch.Tensor:
    """Binary LIF over the leading time axis (Spikformer / SDT-V1 / QKFormer neuron, hard reset to 0).

    ``H[t] = V[t-1] + (X[t] - V[t-1]) / tau``, ``S[t] = H[t] >= threshold``, ``V[t] = H[t] (1 - S[t])``
    (the reset is detached from the gradient, as spikingjelly's ``detach_reset``).
    """
    if x.shape[0] == 1:  # one step from rest: no membrane to carry (saves the loop and the stack)
        return heaviside(x / tau - threshold)
    out = []
    v = torch.zeros_like(x[0])
    for t in range(x.shape[0]):
        h = v + (x[t] - v) / tau
        s = heaviside(h - threshold)
        v = h * (1.0 - s.detach())
        out.append(s)
    return torch.stack(out)


class LIF(nn.Module):
    """Binary LIF neuron over ``[T, ...]`` (spikes 0/1; information is carried over T time steps).

    Stateless between calls like :class:`ILIF`: every forward is one frame presented T times.
    """

    spike_levels = 1  # outputs are 0 or 1 (op counting reads this)
    spike_unit = 1.0

    def __init__(self, tau: float = 2.0, threshold: float = 1.0) -> None:
        super().__init__()
        self.tau = float(tau)
        self.threshold = float(threshold)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return lif_multistep(x, self.tau, self.threshold)

    def step(self, x: torch.Tensor) -> torch.Tensor:
        """One time step from rest on a tensor without a time axis (``forward`` of ``x[None]``, squeezed)."""
        return heaviside(x / self.tau - self.threshold)

    def extra_repr(self) -> str:
        return f"tau={self.tau}, threshold={self.threshold}"


NEURONS = ("ilif", "lif")


def neuron_factory(kind: str, max_value: int):
    """``make(threshold=1.0) -> nn.Module`` for a config's ``neuron`` field.

    "ilif": :class:`ILIF` with D = ``max_value`` (integer spikes; rounding already fires at 0.5, so
    ``threshold`` is not used); "lif": binary :class:`LIF` (tau 2) firing at ``threshold``. The papers'
    attention neurons fire at 0.5, the others at 1.0.
    """
    if kind == "ilif":
        return lambda threshold=1.0: ILIF(max_value)
    if kind == "lif":
        return lambda threshold=1.0: LIF(2.0, threshold)
    raise ValueError(f"neuron is {kind!r}; expected one of {NEURONS}")
