"""The seed's other spiking transformers as tracker backbones: Spikformer, SDT-V1 and QKFormer.

Each builder returns :class:`evtrack.network.model.SDTrackNet` with its own transformer blocks, so the
conv stages, positions, token layout, centre head, checkpoints and the token seam are shared and the
comparison with SDT-V3 (architecture "sdtrack") is about the transformer. The neuron (``cfg.neuron``:
integer I-LIF or binary LIF over ``cfg.time_steps``) is config data and used for the whole network.
"""

from __future__ import annotations

from torch import nn

from evtrack.errors import UserError
from evtrack.network.backbone import stem_layout
from evtrack.network.config import TrackerConfig
from evtrack.network.model import SDTrackNet
from evtrack.network.neurons import neuron_factory
from evtrack.network.registry import register_architecture
from evtrack.network.spiking_blocks import PatchMerge, QKFormerBlock, SDTV1Block, SpikformerBlock

QKFORMER_ATTENTION = ("qk_token", "qk_channel", "ssa")


def _single_stage(cfg: TrackerConfig, who: str) -> tuple[int, int]:
    if len(cfg.stage_dims) != 1 or cfg.merge_stages or cfg.stage_attention:
        raise UserError(
            f"config {cfg.name}: {who} has one transformer stage; found stage_dims {cfg.stage_dims}, "
            f"merge_stages={cfg.merge_stages}, stage_attention {cfg.stage_attention}; expected one width, "
            "no merging and no stage_attention"
        )
    return cfg.stage_dims[0], cfg.stage_depths[0]


@register_architecture("spikformer")
def build_spikformer(cfg: TrackerConfig) -> nn.Module:
    """Spikformer blocks (SSA, spike-output residuals) on the shared stem and head."""
    dim, depth = _single_stage(cfg, "spikformer")
    spike = neuron_factory(cfg.neuron, cfg.max_value)
    return SDTrackNet(cfg, [SpikformerBlock(dim, cfg.heads, cfg.mlp_ratio, spike) for _ in range(depth)])


@register_architecture("sdt-v1")
def build_sdt_v1(cfg: TrackerConfig) -> nn.Module:
    """Spike-driven Transformer V1 blocks (SDSA, membrane shortcuts) on the shared stem and head."""
    dim, depth = _single_stage(cfg, "sdt-v1")
    spike = neuron_factory(cfg.neuron, cfg.max_value)
    return SDTrackNet(cfg, [SDTV1Block(dim, cfg.mlp_ratio, cfg.max_value, spike) for _ in range(depth)])


@register_architecture("qkformer")
def build_qkformer(cfg: TrackerConfig) -> nn.Module:
    """QKFormer: stages of Q-K attention blocks with patch merging between them (``merge_stages``), so
    each stage has its own token count. ``stage_attention`` per stage: "qk_token", "qk_channel" or "ssa"
    (the paper's last stage uses Spikformer's SSA); default token attention, channel attention last."""
    n = len(cfg.stage_dims)
    kinds = cfg.stage_attention or ("qk_token",) * (n - 1) + ("qk_channel",)
    bad = [k for k in kinds if k not in QKFORMER_ATTENTION]
    if bad:
        raise UserError(f"config {cfg.name}: stage_attention {cfg.stage_attention}; expected each of "
                        f"{QKFORMER_ATTENTION}")
    if n > 1 and not cfg.merge_stages:
        raise UserError(f"config {cfg.name}: qkformer with {n} stages needs merge_stages=True (patch merging "
                        "between stages); found False")
    spike = neuron_factory(cfg.neuron, cfg.max_value)
    layout = stem_layout(cfg)
    blocks: list[nn.Module] = []
    for i, (dim, depth, kind) in enumerate(zip(cfg.stage_dims, cfg.stage_depths, kinds, strict=True)):
        if i > 0:
            merge = PatchMerge(layout, cfg.stage_dims[i - 1], dim, spike)
            blocks.append(merge)
            layout = merge.token_layout_out
        for _ in range(depth):
            if kind == "ssa":
                blocks.append(SpikformerBlock(dim, cfg.heads, cfg.mlp_ratio, spike))
            else:
                blocks.append(QKFormerBlock(dim, cfg.heads, cfg.mlp_ratio, spike, kind))
    return SDTrackNet(cfg, blocks)
