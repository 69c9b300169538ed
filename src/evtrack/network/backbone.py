"""SDT-V3 style spiking backbone over a template map and a search map processed jointly.

Conv stages (stride 2 each, SepConv + conv MLP) run on each crop separately (the template's
are computed once per sequence and cached by the tracker), then both maps become tokens with their
own learned positions and go through one stack of spike-driven transformer blocks as a single
token set ``[T, B, N_z + N_x, C]``. The maps are never packed into one canvas, so unrelated tokens
never become spatial neighbours; :class:`evtrack.tokens.TokenLayout` says where each map lives in N.
"""

from __future__ import annotations

import torch
from torch import nn

from evtrack.network.config import TrackerConfig
from evtrack.network.layers import ChannelTransition, ConvBlock, Downsample, TransformerBlock
from evtrack.network.neurons import neuron_factory
from evtrack.tokens import TokenLayout, layout_after


class BlockStack(nn.Module):
    """The pruning seam: ``forward(x [T,B,N,C], layout) -> [T,B,N,C']`` applying ``blocks`` in order.

    ``evtrack.pruning`` replaces ``backbone.block_stack`` with a wrapper that runs each prunable
    block on a subset of tokens; every block here is token-wise apart from linear attention.
    """

    def __init__(self, blocks: list[nn.Module]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor, layout: TokenLayout) -> torch.Tensor:
        if x.shape[2] != layout.n_tokens:
            raise ValueError(f"block_stack got {x.shape[2]} tokens, layout has {layout.n_tokens}")
        for blk in self.blocks:
            x = blk(x)  # a block that changes the layout (patch merging) holds its own
        return x


class ConvStages(nn.Module):
    """Event frame ``[T, B, 3, H, W]`` -> token-dim feature map ``[T, B, C, H/s, W/s]``."""

    def __init__(self, cfg: TrackerConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_prev = cfg.in_channels
        spike = neuron_factory(cfg.neuron, cfg.max_value)
        for i, (c, n) in enumerate(zip(cfg.conv_channels, cfg.conv_blocks, strict=True)):
            kernel = cfg.stem_kernel if i == 0 else 3
            layers.append(Downsample(c_prev, c, kernel, 2, first=(i == 0), max_value=cfg.max_value, neuron=spike))
            layers += [ConvBlock(c, cfg.conv_mlp_ratio, cfg.sep_kernel, cfg.max_value, spike) for _ in range(n)]
            c_prev = c
        layers.append(Downsample(c_prev, cfg.stage_dims[0], 3, cfg.embed_stride, False, cfg.max_value, spike))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] == 1 and all(hasattr(layer, "step") for layer in self.layers):
            y = x.squeeze(0)  # one time step: the layers run on [B, C, H, W] (layers.step_spike)
            for layer in self.layers:
                y = layer.step(y)
            return y.unsqueeze(0)
        return self.layers(x)


def sdt_v3_blocks(cfg: TrackerConfig) -> list[nn.Module]:
    """SDT-V3 transformer blocks of every stage, with a channel transition where the width changes."""
    blocks: list[nn.Module] = []
    c_prev = cfg.stage_dims[0]
    for dim, depth in zip(cfg.stage_dims, cfg.stage_depths, strict=True):
        if dim != c_prev:
            blocks.append(ChannelTransition(c_prev, dim, cfg.max_value))
        blocks += [TransformerBlock(dim, cfg.heads, cfg.mlp_ratio, cfg.v_ratio, cfg.max_value) for _ in range(depth)]
        c_prev = dim
    return blocks


def stem_layout(cfg: TrackerConfig) -> TokenLayout:
    """The token maps the conv stages give (the block stack's input layout)."""
    z, x = cfg.template_size // cfg.stem_stride, cfg.search_size // cfg.stem_stride
    return TokenLayout.template_search(z, z, x, x)


class SDTBackbone(nn.Module):
    """Conv stages + positions + :class:`BlockStack` of transformer blocks.

    ``blocks`` (default: SDT-V3's, :func:`sdt_v3_blocks`) is what other spiking transformers replace;
    the conv stages, positions and token layout stay the same, so backbones differ in the transformer
    only. ``out_layout`` is the layout of the stack's output (the input's unless blocks merge tokens).
    """

    def __init__(self, cfg: TrackerConfig, blocks: list[nn.Module] | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.conv = ConvStages(cfg)
        c0 = cfg.stage_dims[0]
        self.layout = stem_layout(cfg)
        hz, wz = self.layout.map("template").h, self.layout.map("template").w
        hx, wx = self.layout.map("search").h, self.layout.map("search").w
        self.pos_template = nn.Parameter(torch.zeros(1, 1, hz * wz, c0))
        self.pos_search = nn.Parameter(torch.zeros(1, 1, hx * wx, c0))
        nn.init.trunc_normal_(self.pos_template, std=0.02)
        nn.init.trunc_normal_(self.pos_search, std=0.02)
        blocks = sdt_v3_blocks(cfg) if blocks is None else blocks
        self.block_stack = BlockStack(blocks)
        out: TokenLayout = self.layout
        for blk in blocks:
            out = layout_after(blk, out)
        self.out_layout = out
        self.out_dim = blocks[-1].dim_out

    def embed(self, frames: torch.Tensor) -> torch.Tensor:
        """Conv stages on one crop ``[T, B, 3, H, W]`` -> ``[T, B, C, h, w]`` (cacheable for the template)."""
        return self.conv(frames)

    def forward_features(self, z_feat: torch.Tensor, x_feat: torch.Tensor) -> torch.Tensor:
        """Joint transformer over template and search feature maps -> tokens ``[T, B, N, C]``."""
        return self.block_stack(self.tokens(z_feat, x_feat), self.layout)

    def tokens(self, z_feat: torch.Tensor, x_feat: torch.Tensor) -> torch.Tensor:
        """The block stack's input ``[T, B, N, C]`` (``self.layout``): both feature maps as tokens plus
        their position embeddings."""
        z = z_feat.flatten(3).transpose(2, 3)
        x = x_feat.flatten(3).transpose(2, 3)
        if z.shape[2] != self.pos_template.shape[2] or x.shape[2] != self.pos_search.shape[2]:
            raise ValueError(
                f"feature maps of {z.shape[2]}/{x.shape[2]} tokens do not match the config "
                f"({self.cfg.template_size}/{self.cfg.search_size} px crops)"
            )
        z = z + self.pos_template
        x = x + self.pos_search
        return torch.cat([z, x], dim=2)

    def forward(self, template: torch.Tensor, search: torch.Tensor) -> torch.Tensor:
        return self.forward_features(self.embed(template), self.embed(search))
