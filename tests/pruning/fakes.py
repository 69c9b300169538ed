"""Small fake spiking transformer pieces for testing pruning without the tracker model."""

from __future__ import annotations

import torch
from torch import nn

from evtrack.tokens import TokenLayout


def spike(x: torch.Tensor, levels: int = 4) -> torch.Tensor:
    """Integer spikes round(clamp(x, 0, D)) / D."""
    return torch.clamp(x, 0, levels).round() / levels


class FakeAttention(nn.Module):
    """Spiking linear attention Q (K^T V) with a ``token_scale`` hook, as in docs/design.md."""

    def __init__(self, dim: int):
        super().__init__()
        self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)
        self.token_scale = 1.0
        self.seen_scales: list[float] = []

    def forward(self, x):
        s = spike(x)
        q, k, v = spike(self.q(s)), spike(self.k(s)), spike(self.v(s))
        self.seen_scales.append(self.token_scale)
        out = q @ (k.transpose(-2, -1) @ v) * (self.token_scale / x.shape[-1])
        return self.proj(spike(out))


class FakeBlock(nn.Module):
    prunable = True

    def __init__(self, dim: int):
        super().__init__()
        self.attn = FakeAttention(dim)
        self.fc = nn.Linear(dim, dim)
        self.seen_tokens: list[int] = []

    def forward(self, x):
        self.seen_tokens.append(x.shape[2])
        x = x + self.attn(x)
        return x + self.fc(spike(x))


class FakeTransition(nn.Module):
    prunable = False

    def __init__(self, dim: int):
        super().__init__()
        self.fc = nn.Linear(dim, dim)

    def forward(self, x):
        return self.fc(spike(x))


class FakeStack(nn.Module):
    def __init__(self, blocks):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x, layout):
        for b in self.blocks:
            x = b(x)
        return x


class FakeBackbone(nn.Module):
    def __init__(self, blocks):
        super().__init__()
        self.block_stack = FakeStack(blocks)


class FakeModel(nn.Module):
    """The token seam of evtrack.tokens over a 4x4 template and an 8x8 search map; forward(tokens) -> tokens."""

    def __init__(self, dim: int = 16, n_blocks: int = 4, transition_at: int | None = None, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        blocks: list[nn.Module] = []
        for i in range(n_blocks):
            if transition_at is not None and i == transition_at:
                blocks.append(FakeTransition(dim))
            blocks.append(FakeBlock(dim))
        self.backbone = FakeBackbone(blocks)
        self.token_layout = TokenLayout.template_search(4, 4, 8, 8)

    def token_stack(self) -> nn.Module:
        return self.backbone.block_stack

    def set_token_stack(self, stack: nn.Module) -> None:
        self.backbone.block_stack = stack

    def frame_encoder(self) -> nn.Module:
        return self.backbone

    def forward(self, x):
        return self.backbone.block_stack(x, self.token_layout)


def tokens(t: int = 1, b: int = 2, dim: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(t, b, 16 + 64, dim, generator=g) * 2


def active_model(seed=0):
    """The real ``tiny`` tracker network with BN set so that its I-LIF neurons fire."""
    from evtrack.network import registry

    torch.manual_seed(seed)
    m = registry.create_model("tiny").eval()
    for mod in m.modules():  # random-init BN would leave almost every I-LIF silent
        if isinstance(mod, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
            mod.weight.data.fill_(2.0)
            mod.bias.data.fill_(0.5)
    return m


def inputs(seed=0):
    """A template (64 px) and a search (128 px) frame of random intensities."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, 64, 64, generator=g) * 255, torch.rand(1, 3, 128, 128, generator=g) * 255
