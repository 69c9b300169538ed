"""Spike-driven building blocks of the SDT-V3 backbone (Yao et al., "Scaling spike-driven transformer").

Conv-side modules take ``[T, B, C, H, W]`` and token-side modules take ``[T, B, N, C]`` (time steps
first). Every weight layer is followed by BatchNorm, which :func:`fuse_batchnorm` folds into the
weights for inference. Every weight layer's input is a spike tensor (integer counts / D), so the
network is spike-driven except for the very first convolution on the event frame; for inference
:func:`fold_spike_scale` moves the 1/D into those weights (the neurons then emit the counts).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import nn

from evtrack.network.neurons import ILIF

Neuron = Callable[[], nn.Module]  # makes one spiking neuron (None: I-LIF with the layer's max_value)


def _spike(neuron: Neuron | None, max_value: int) -> nn.Module:
    return neuron() if neuron is not None else ILIF(max_value)


def step_spike(neuron: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """One time step of ``neuron`` (from rest) on a tensor without the time axis: ``neuron(x[None])[0]``.

    The conv stages and the head take this path when T = 1 (:meth:`ConvStages.forward`): their convolutions
    then see ``[B, C, H, W]`` directly, with no reshape to and from ``[T, B, ...]`` around each of them, which
    in an exported graph is two nodes per convolution and keeps a runtime from fusing the neuron's clip
    into the convolution."""
    step = getattr(neuron, "step", None)
    if step is not None:
        return step(x)
    if isinstance(neuron, nn.Identity):
        return x
    return neuron(x.unsqueeze(0)).squeeze(0)


class ConvBN(nn.Module):
    """Conv2d (no bias) + BatchNorm2d on ``[T, B, C, H, W]``; :meth:`fuse` folds the BN."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 1, stride: int = 1, groups: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False)
        self.bn: nn.Module = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, b = x.shape[:2]
        y = self.bn(self.conv(x.flatten(0, 1)))
        return y.unflatten(0, (t, b))

    def step(self, x: torch.Tensor) -> torch.Tensor:
        """One time step ``[B, C, H, W]`` (see :func:`step_spike`)."""
        return self.bn(self.conv(x))

    @torch.no_grad()
    def fuse(self) -> None:
        if not isinstance(self.bn, nn.BatchNorm2d):
            return
        w, bias = _fold(self.conv.weight, None, self.bn)
        conv = nn.Conv2d(
            self.conv.in_channels, self.conv.out_channels, self.conv.kernel_size, self.conv.stride,
            self.conv.padding, groups=self.conv.groups, bias=True,
        ).to(w.device)
        conv.weight.copy_(w)
        conv.bias.copy_(bias)
        self.conv, self.bn = conv, nn.Identity()


class LinearBN(nn.Module):
    """Token-wise Linear (no bias) + BatchNorm1d over channels on ``[T, B, N, C]``.

    Token-wise, so it runs unchanged on any subset of tokens (the pruning seam relies on this).
    """

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.linear = nn.Linear(c_in, c_out, bias=False)
        self.bn: nn.Module = nn.BatchNorm1d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.linear(x)
        if isinstance(self.bn, nn.BatchNorm1d):
            shape = y.shape
            y = self.bn(y.reshape(-1, shape[-1])).reshape(shape)
        return y

    @torch.no_grad()
    def fuse(self) -> None:
        if not isinstance(self.bn, nn.BatchNorm1d):
            return
        w, bias = _fold(self.linear.weight, None, self.bn)
        lin = nn.Linear(self.linear.in_features, self.linear.out_features, bias=True).to(w.device)
        lin.weight.copy_(w)
        lin.bias.copy_(bias)
        self.linear, self.bn = lin, nn.Identity()


def _fold(weight: torch.Tensor, bias: torch.Tensor | None, bn: nn.modules.batchnorm._BatchNorm):
    """Fold eval-mode BN into the preceding weight: BN(Wx + b) = W'x + b'."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    shape = (-1,) + (1,) * (weight.dim() - 1)
    w = weight * scale.reshape(shape)
    b0 = bias if bias is not None else torch.zeros_like(bn.running_mean)
    return w, (b0 - bn.running_mean) * scale + bn.bias


def fuse_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every BatchNorm of ``model`` into its weight layer (in place, for inference only)."""
    if model.training:
        raise RuntimeError("fuse_batchnorm needs an eval-mode model (BN statistics are frozen)")
    for m in model.modules():
        if isinstance(m, (ConvBN, LinearBN)):
            m.fuse()
    return model


# ----------------------------------------------------------------------------- spike scale folding
SpikeFold = tuple[tuple[ILIF, ...], Callable[[float], None]]  # (neurons, rescale(factor) of what they feed)


def _weight(layer: nn.Module) -> torch.Tensor:
    """The weight multiplying a layer's input (ConvBN / LinearBN: their conv / linear; BN folded or not,
    since BN acts on the output)."""
    if isinstance(layer, ConvBN):
        return layer.conv.weight
    if isinstance(layer, LinearBN):
        return layer.linear.weight
    return layer.weight  # nn.Conv2d / nn.Linear


def _foldable(neuron: nn.Module) -> bool:
    """An I-LIF still emitting ``counts / D`` with D a power of two (so ``w / D`` is exact)."""
    return isinstance(neuron, ILIF) and not neuron.counts and neuron.max_value & (neuron.max_value - 1) == 0


def feeds_linear(neuron: nn.Module, *layers: nn.Module) -> list[SpikeFold]:
    """The fold of a neuron whose output only feeds the weight ``layers`` (linear in their input):
    the layers' weights absorb the 1/D. Empty when the neuron is not a foldable I-LIF."""
    if not _foldable(neuron):
        return []

    def rescale(factor: float) -> None:
        for layer in layers:
            _weight(layer).mul_(factor)

    return [((neuron,), rescale)]


@torch.no_grad()
def fold_spike_scale(model: nn.Module) -> bool:
    """Let every I-LIF of ``model`` emit integer counts and fold its 1/D into what it feeds (in place).

    Each module that owns neurons declares, in ``spike_folds()``, which neurons feed only something
    linear in their output and how to rescale that (a weight layer's weights by 1/D; the linear
    attention's ``Q (K^T V)`` scale by 1/D^3). With D a power of two every product and sum downstream is
    the same float operation on values scaled by a power of two, so the outputs are bit-identical.

    All or nothing: when some I-LIF of the model is not covered (its spikes feed a residual sum or a
    gate, as in the spike-output blocks of Spikformer / QKFormer or SDT-V1's attention), or a D is not a
    power of two, nothing is changed, so a model's spike tensors are all ``counts / D`` or all counts
    (how op counting tells them apart: the neurons' ``spike_unit``). Returns whether it folded.
    """
    neurons = {id(m): m for m in model.modules() if isinstance(m, ILIF) and not m.counts}
    if not neurons:
        return False
    sites: list[SpikeFold] = []
    for m in model.modules():
        folds = getattr(m, "spike_folds", None)
        if callable(folds):
            sites += folds()
    covered = [id(n) for ns, _ in sites for n in ns]
    if len(covered) != len(set(covered)) or set(covered) != set(neurons):
        return False
    for ns, rescale in sites:
        factor = 1.0
        for n in ns:
            factor /= n.max_value
        rescale(factor)
        for n in ns:
            n.counts = True
    return True


def _folds(*pairs: tuple[nn.Module, Iterable[nn.Module]]) -> list[SpikeFold]:
    return [f for neuron, layers in pairs for f in feeds_linear(neuron, *layers)]


# ----------------------------------------------------------------------------- conv stages
class Downsample(nn.Module):
    """(spike) + strided ConvBN: the stage transition of SDT-V3; the first one sees the raw frame."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, first: bool, max_value: int,
                 neuron: Neuron | None = None) -> None:
        super().__init__()
        self.spike = nn.Identity() if first else _spike(neuron, max_value)
        self.conv = ConvBN(c_in, c_out, kernel, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.spike(x))

    def step(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv.step(step_spike(self.spike, x))

    def spike_folds(self) -> list[SpikeFold]:
        return _folds((self.spike, [self.conv]))


class SepConv(nn.Module):
    """Spiking inverted separable conv (MobileNetV2-like): pw 1x1 up, depthwise kxk, pw 1x1 down."""

    def __init__(self, dim: int, expansion: int = 2, kernel: int = 7, max_value: int = 4,
                 neuron: Neuron | None = None) -> None:
        super().__init__()
        hidden = dim * expansion
        self.s1, self.pw1 = _spike(neuron, max_value), ConvBN(dim, hidden, 1)
        self.s2, self.dw = _spike(neuron, max_value), ConvBN(hidden, hidden, kernel, groups=hidden)
        self.s3, self.pw2 = _spike(neuron, max_value), ConvBN(hidden, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pw2(self.s3(self.dw(self.s2(self.pw1(self.s1(x))))))

    def step(self, x: torch.Tensor) -> torch.Tensor:
        for spike, conv in ((self.s1, self.pw1), (self.s2, self.dw), (self.s3, self.pw2)):
            x = conv.step(step_spike(spike, x))
        return x

    def spike_folds(self) -> list[SpikeFold]:
        return _folds((self.s1, [self.pw1]), (self.s2, [self.dw]), (self.s3, [self.pw2]))


class ConvMLP(nn.Module):
    """Spiking MLP of two 3x3 convolutions (SDT-V3 conv block)."""

    def __init__(self, dim: int, ratio: float, max_value: int, neuron: Neuron | None = None) -> None:
        super().__init__()
        hidden = int(dim * ratio)
        self.s1, self.fc1 = _spike(neuron, max_value), ConvBN(dim, hidden, 3)
        self.s2, self.fc2 = _spike(neuron, max_value), ConvBN(hidden, dim, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.s2(self.fc1(self.s1(x))))

    def step(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2.step(step_spike(self.s2, self.fc1.step(step_spike(self.s1, x))))

    def spike_folds(self) -> list[SpikeFold]:
        return _folds((self.s1, [self.fc1]), (self.s2, [self.fc2]))


class ConvBlock(nn.Module):
    """x + SepConv(x), then x + ConvMLP(x)."""

    def __init__(self, dim: int, mlp_ratio: float, sep_kernel: int, max_value: int,
                 neuron: Neuron | None = None) -> None:
        super().__init__()
        self.sep = SepConv(dim, 2, sep_kernel, max_value, neuron)
        self.mlp = ConvMLP(dim, mlp_ratio, max_value, neuron)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.sep(x)
        return x + self.mlp(x)

    def step(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.sep.step(x)
        return x + self.mlp.step(x)


# ----------------------------------------------------------------------------- token blocks
class SpikingLinearAttention(nn.Module):
    """Spike-driven linear self-attention ``Q (K^T V) * scale`` over ``[T, B, N, C]``.

    No softmax, so ``(Q K^T) V == Q (K^T V)``; the right-hand order costs ``O(N d dv)`` instead of
    ``O(N^2 d)``. Q, K, V are spikes (1x1 projection + BN + I-LIF); V may be wider (``v_ratio``) as in
    SDT-V3. The output sums over the tokens present, so it scales with N; ``token_scale`` (default 1.0)
    multiplies the product before its neuron so that a pruning wrapper running the block on K of N
    tokens can compensate with N / K (docs/design.md, evtrack.pruning; TP-Spikformer's pruning).

    ``context`` (optional, ``[T, B, N, C]``): the tokens keys and values come from, when they differ
    from the query tokens ``x`` (a pruning wrapper passes the full token set so the K^T V summary is
    exact while only the kept tokens get an output). ``None`` means ``x`` itself.

    ``kv_cache`` (optional): a callable ``(k, v) -> (k, v)`` given the spike keys/values just computed
    ``[T, B, h, M, d]`` and returning those to attend; a pruning wrapper uses it to complete the kept
    tokens' keys/values with the skipped tokens' from an earlier frame (``cached_kv``, design.md).
    """

    def __init__(self, dim: int, heads: int, v_ratio: int, max_value: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.head_dim = dim // heads
        self.scale = 2.0 / math.sqrt(self.head_dim)
        self.token_scale = 1.0
        self.s_in = ILIF(max_value)
        self.q, self.k = LinearBN(dim, dim), LinearBN(dim, dim)
        self.v = LinearBN(dim, dim * v_ratio)
        self.s_q, self.s_k, self.s_v = ILIF(max_value), ILIF(max_value), ILIF(max_value)
        self.s_attn = ILIF(max_value)
        self.proj = LinearBN(dim * v_ratio, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, kv_cache=None) -> torch.Tensor:
        t, b, n, _ = x.shape
        s = self.s_in(x)
        h = self.heads
        q = self.s_q(self.q(s)).reshape(t, b, n, h, -1).transpose(2, 3)  # [T, B, h, N, d]
        if context is not None:
            s = self.s_in(context)
        m = s.shape[2]
        k = self.s_k(self.k(s)).reshape(t, b, m, h, -1).transpose(2, 3)  # [T, B, h, M, d]
        v = self.s_v(self.v(s)).reshape(t, b, m, h, -1).transpose(2, 3)  # [T, B, h, M, dv]
        if kv_cache is not None:
            k, v = kv_cache(k, v)
        kv = k.transpose(-2, -1) @ v  # [T, B, h, d, dv]
        out = (q @ kv) * (self.scale * self.token_scale)  # [T, B, h, N, dv]
        out = out.transpose(2, 3).reshape(t, b, n, -1)
        return self.proj(self.s_attn(out))

    def spike_folds(self) -> list[SpikeFold]:
        """s_in feeds q/k/v, s_attn the projection; q, k and v meet only in the product ``Q (K^T V)``,
        linear in each, whose scale absorbs all three 1/D (the key/value cache of pruning then holds
        counts too: it only ever feeds that product)."""
        folds = _folds((self.s_in, [self.q, self.k, self.v]), (self.s_attn, [self.proj]))
        qkv = (self.s_q, self.s_k, self.s_v)
        if all(_foldable(n) for n in qkv):

            def rescale(factor: float) -> None:
                self.scale *= factor

            folds.append((qkv, rescale))
        return folds


class TokenMLP(nn.Module):
    """Spiking token-wise MLP: spike, Linear+BN (ratio r), spike, Linear+BN."""

    def __init__(self, dim: int, ratio: float, max_value: int, neuron: Neuron | None = None) -> None:
        super().__init__()
        hidden = int(dim * ratio)
        self.s1, self.fc1 = _spike(neuron, max_value), LinearBN(dim, hidden)
        self.s2, self.fc2 = _spike(neuron, max_value), LinearBN(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.s2(self.fc1(self.s1(x))))

    def spike_folds(self) -> list[SpikeFold]:
        return _folds((self.s1, [self.fc1]), (self.s2, [self.fc2]))


class TransformerBlock(nn.Module):
    """Spike-driven transformer block ``[T, B, N', C] -> [T, B, N', C]`` for any token subset N'."""

    prunable = True
    accepts_context = True  # forward(x, context=all_tokens): keys/values from context (pruning, design.md)
    accepts_kv_cache = True  # forward(x, kv_cache=f): f completes the keys/values (cached_kv pruning)

    def __init__(self, dim: int, heads: int, mlp_ratio: float, v_ratio: int, max_value: int) -> None:
        super().__init__()
        self.dim_in = self.dim_out = dim
        self.attn = SpikingLinearAttention(dim, heads, v_ratio, max_value)
        self.mlp = TokenMLP(dim, mlp_ratio, max_value)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, kv_cache=None) -> torch.Tensor:
        x = x + self.attn(x, context, kv_cache)
        return x + self.mlp(x)


class ChannelTransition(nn.Module):
    """Token-wise channel change between transformer stages (spike + Linear + BN). Never pruned."""

    prunable = False

    def __init__(self, dim_in: int, dim_out: int, max_value: int) -> None:
        super().__init__()
        self.dim_in, self.dim_out = dim_in, dim_out
        self.spike = ILIF(max_value)
        self.proj = LinearBN(dim_in, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.spike(x))

    def spike_folds(self) -> list[SpikeFold]:
        return _folds((self.spike, [self.proj]))


__all__ = [
    "ChannelTransition", "ConvBN", "ConvBlock", "ConvMLP", "Downsample", "LinearBN", "SepConv",
    "SpikingLinearAttention", "TokenMLP", "TransformerBlock", "feeds_linear", "fold_spike_scale", "fuse_batchnorm",
]
