"""The tracker's configuration: one frozen dataclass, variants are data (see registry.py)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from evtrack.errors import UserError


@dataclass(frozen=True)
class TrackerConfig:
    """Architecture and cropping of an SDTrack-style spiking tracker.

    Sizes are pixels of the network input; ``*_factor`` are crop sizes relative to
    ``sqrt(w * h)`` of the target box (SDTrack: search 4x, template 2x).
    """

    name: str = "custom"
    architecture: str = "sdtrack"  # builder registered with evtrack.network.registry.register_architecture
    representation: str = "sdtrack"  # event frame the network eats (evtrack.network.inputs.REPRESENTATIONS)
    in_channels: int = 3  # SDTrack frame: ON count, OFF count, decaying trajectory
    search_size: int = 128  # px, search crop side after resizing
    template_size: int = 64  # px, template crop side after resizing
    search_factor: float = 4.0  # search crop side = factor * sqrt(w h)
    template_factor: float = 2.0  # template crop side = factor * sqrt(w h)
    min_search_crop_px: float = 48.0  # sensor px; keeps small targets from giving a tiny search region
    # sensor px; 0 = none. min_search_crop_px * template_factor / search_factor (24) gives targets smaller
    # than the search floor the same scale in template and search (BENCHMARKS.md, online-tracker changes)
    min_template_crop_px: float = 0.0
    time_steps: int = 1  # T: the frame is presented T times
    max_value: int = 4  # D: I-LIF integer spike ceiling
    neuron: str = "ilif"  # "ilif" (integer spikes k/D) or "lif" (binary spikes over T steps), whole network
    stem_kernel: int = 7  # kernel of the first (stride-2) convolution on the event frame
    conv_channels: tuple[int, ...] = (16, 32, 64)  # conv stages, each stride 2
    conv_blocks: tuple[int, ...] = (1, 1, 1)  # ConvBlocks per conv stage
    conv_mlp_ratio: float = 2.0
    sep_kernel: int = 7  # depthwise kernel of SepConv
    embed_stride: int = 1  # stride of the conv that embeds the last conv stage into tokens
    stage_dims: tuple[int, ...] = (128,)  # transformer stage widths
    stage_depths: tuple[int, ...] = (4,)  # transformer blocks per stage
    heads: int = 4
    mlp_ratio: float = 4.0
    v_ratio: int = 1  # V width relative to C (SDT-V3 uses 4)
    head_channels: int = 64  # centre head hidden width
    # attention of each transformer stage, for architectures that offer several (qkformer: "qk_token",
    # "qk_channel", "ssa"); empty = the architecture's own
    stage_attention: tuple[str, ...] = ()
    merge_stages: bool = False  # patch merging (stride 2) between transformer stages: tokens change per stage

    def __post_init__(self) -> None:
        if len(self.conv_channels) != len(self.conv_blocks):
            raise UserError(
                f"config {self.name}: conv_channels {self.conv_channels} and conv_blocks "
                f"{self.conv_blocks} must have the same length"
            )
        if len(self.stage_dims) != len(self.stage_depths) or not self.stage_dims:
            raise UserError(
                f"config {self.name}: stage_dims {self.stage_dims} and stage_depths {self.stage_depths} "
                "must be non-empty and of the same length"
            )
        for d in self.stage_dims:
            if d % self.heads:
                raise UserError(f"config {self.name}: stage width {d} is not divisible by heads={self.heads}")
        if self.stride * (self.search_size // self.stride) != self.search_size or (
            self.template_size % self.stride
        ):
            raise UserError(
                f"config {self.name}: search_size {self.search_size} and template_size {self.template_size} "
                f"must be multiples of the backbone stride {self.stride}"
            )
        if self.time_steps < 1 or self.max_value < 1:
            raise UserError(f"config {self.name}: time_steps and max_value must be >= 1")
        if self.neuron not in ("ilif", "lif"):
            raise UserError(f"config {self.name}: neuron is {self.neuron!r}; expected 'ilif' or 'lif'")
        if self.stage_attention and len(self.stage_attention) != len(self.stage_dims):
            raise UserError(
                f"config {self.name}: stage_attention {self.stage_attention} has {len(self.stage_attention)} "
                f"entries; expected none or one per stage ({len(self.stage_dims)})"
            )

    @property
    def stem_stride(self) -> int:
        """Downsampling from the input crop to the token maps the transformer starts on."""
        return 2 ** len(self.conv_channels) * self.embed_stride

    @property
    def stride(self) -> int:
        """Total downsampling from the input crop to the token maps the head reads (after any merging)."""
        merges = len(self.stage_dims) - 1 if self.merge_stages else 0
        return self.stem_stride * 2**merges

    @property
    def search_feat(self) -> int:
        return self.search_size // self.stride

    @property
    def template_feat(self) -> int:
        return self.template_size // self.stride

    def to_dict(self) -> dict:
        """Plain dict of builtins (lists for tuples): what checkpoints store."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict, *, source: str = "config") -> TrackerConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(f"{source}: unknown config field(s) {unknown}; expected a subset of {sorted(known)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
