"""The complete spiking tracker network: SDT-V3 backbone + centre head."""

from __future__ import annotations

import torch
from torch import nn

from evtrack.network.backbone import SDTBackbone
from evtrack.network.config import TrackerConfig
from evtrack.network.head import CenterHead
from evtrack.network.layers import fold_spike_scale, fuse_batchnorm
from evtrack.network.neurons import neuron_factory
from evtrack.network.registry import register_architecture
from evtrack.tokens import TokenLayout


@register_architecture("sdtrack")
class SDTrackNet(nn.Module):
    """``forward(template [B,3,Hz,Wz], search [B,3,Hx,Wx]) -> {"score", "offset", "size"}``.

    Frames are SDTrack event frames scaled to 0..1 (``sdtrack_frame`` without ``raw``), repeated over
    ``cfg.time_steps`` (T, time steps first inside the network). ``blocks`` (default SDT-V3's) is the
    transformer: the other spiking backbones (``evtrack.network.architectures``) pass their own and
    share the conv stages and the head.
    """

    def __init__(self, cfg: TrackerConfig, blocks: list[nn.Module] | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.backbone = SDTBackbone(cfg, blocks)
        spike = neuron_factory(cfg.neuron, cfg.max_value)
        self.head = CenterHead(self.backbone.out_dim, cfg.head_channels, cfg.max_value, spike)
        self.fused = False
        self.spikes_folded = False  # fuse(): neurons emit integer counts, their 1/D is in the weights

    # ---- the token seam (evtrack.tokens.TokenModel): what pruning and op counting use
    @property
    def token_layout(self) -> TokenLayout:
        return self.backbone.layout

    def token_stack(self) -> nn.Module:
        return self.backbone.block_stack

    def set_token_stack(self, stack: nn.Module) -> None:
        self.backbone.block_stack = stack

    def frame_encoder(self) -> nn.Module:
        return self.backbone.conv

    def _to_steps(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.dim() != 4:
            raise ValueError(f"expected frames [B, C, H, W], got shape {tuple(frames.shape)}")
        return frames.unsqueeze(0).expand(self.cfg.time_steps, *frames.shape)

    def embed_template(self, template: torch.Tensor) -> torch.Tensor:
        """Conv features of the template ``[T, B, C, h, w]``; cached by the online tracker."""
        return self.backbone.embed(self._to_steps(template))

    def embed_search(self, search: torch.Tensor) -> torch.Tensor:
        """Conv features of a search crop ``[T, B, C, h, w]`` (computed on every tracked frame)."""
        return self.backbone.embed(self._to_steps(search))

    def forward_search(self, z_feat: torch.Tensor, search: torch.Tensor) -> dict[str, torch.Tensor]:
        tokens = self.backbone.forward_features(z_feat, self.embed_search(search))
        m = self.backbone.out_layout.map("search")
        x = tokens[:, :, m.offset : m.offset + m.n]  # [T, B, Nx, C]
        x = x.transpose(2, 3).unflatten(3, (m.h, m.w))  # [T, B, C, H, W]
        return self.head(x)

    def forward(
        self, template: torch.Tensor | None, search: torch.Tensor, z_feat: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Full forward; the online tracker passes the cached ``z_feat`` (and ``template=None``) so
        that one call is one tracked frame (op counters hook this method)."""
        if z_feat is None:
            if template is None:
                raise ValueError("forward needs a template or its cached features z_feat")
            z_feat = self.embed_template(template)
        return self.forward_search(z_feat, search)

    def fuse(self, fold_spikes: bool = True) -> SDTrackNet:
        """Fold BatchNorm for inference (eval mode only; irreversible), and with ``fold_spikes`` the
        neurons' 1/D into the layers they feed (:func:`evtrack.network.layers.fold_spike_scale`: same
        outputs bit for bit, one division fewer per neuron; skipped where a model's spikes feed sums)."""
        self.eval()
        fuse_batchnorm(self)
        if fold_spikes and not self.spikes_folded:
            self.spikes_folded = fold_spike_scale(self)
        self.fused = True
        return self
