"""Named tracker configurations (timm-style) and the architectures that build them.

Variants are data: each entry point registered with ``register_model`` returns a
:class:`TrackerConfig`. Architectures are code: ``register_architecture(name)`` registers a builder
``TrackerConfig -> nn.Module`` under the name a config's ``architecture`` field refers to, so a new
backbone is one decorated class and its configs, and checkpoints rebuild it through
:func:`build_model`. ``create_model(name, **overrides)`` drops ``None`` overrides so CLI defaults
never override the variant's own values.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from torch import nn

from evtrack.errors import UserError
from evtrack.network.config import TrackerConfig

_REGISTRY: dict[str, Callable[[], TrackerConfig]] = {}
_ARCHITECTURES: dict[str, Callable[[TrackerConfig], nn.Module]] = {}


def register_architecture(name: str):
    """Class/function decorator: ``builder(cfg) -> nn.Module`` builds configs whose ``architecture`` is
    ``name``."""

    def deco(builder: Callable[[TrackerConfig], nn.Module]):
        if name in _ARCHITECTURES:
            raise ValueError(f"architecture {name!r} is registered twice")
        _ARCHITECTURES[name] = builder
        return builder

    return deco


def list_architectures() -> list[str]:
    _load_builtin_architectures()
    return sorted(_ARCHITECTURES)


def _load_builtin_architectures() -> None:
    import evtrack.network.architectures  # noqa: F401  (registers "spikformer", "sdt-v1", "qkformer")
    import evtrack.network.model  # noqa: F401  (registers "sdtrack")


def build_model(cfg: TrackerConfig) -> nn.Module:
    """A freshly initialised network of ``cfg`` from the builder its ``architecture`` names."""
    _load_builtin_architectures()
    builder = _ARCHITECTURES.get(cfg.architecture)
    if builder is None:
        raise UserError(f"config {cfg.name}: unknown architecture {cfg.architecture!r}; "
                        f"available: {', '.join(sorted(_ARCHITECTURES))}")
    return builder(cfg)


def register_model(fn: Callable[[], TrackerConfig]) -> Callable[[], TrackerConfig]:
    """Register ``fn`` under its name with ``_`` spelled ``-`` (``sdtrack_tiny`` -> ``sdtrack-tiny``)."""
    name = fn.__name__.replace("_", "-")
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is registered twice")
    _REGISTRY[name] = fn
    return fn


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def model_config(name: str, **overrides) -> TrackerConfig:
    """The config of variant ``name`` with ``overrides`` (None values ignored) applied."""
    if name not in _REGISTRY:
        raise UserError(f"unknown model config {name!r}; available: {', '.join(list_models())}")
    cfg = _REGISTRY[name]()
    overrides = {k: v for k, v in overrides.items() if v is not None}
    known = {f.name for f in dataclasses.fields(TrackerConfig)}
    bad = sorted(set(overrides) - known)
    if bad:
        raise UserError(f"unknown override(s) {bad} for config {name!r}; valid fields: {sorted(known)}")
    return dataclasses.replace(cfg, **overrides)


def create_model(name: str, **overrides) -> nn.Module:
    """Build a freshly initialised network for variant ``name``."""
    return build_model(model_config(name, **overrides))


@register_model
def tiny() -> TrackerConfig:
    """CPU-sized tracker: 128 px search / 64 px template, 16x16 + 8x8 token maps, 4 blocks at C=64.

    Sized for > 50 tracked frames/s on one CPU thread: the conv stages skip the 64x64-resolution block
    (its many small element-wise ops dominate on CPU) and the transformer runs at C=64.
    """
    return TrackerConfig(
        name="tiny", search_size=128, template_size=64, conv_channels=(16, 32, 64), conv_blocks=(0, 1, 1),
        conv_mlp_ratio=2.0, embed_stride=1, stage_dims=(64,), stage_depths=(4,), heads=4, v_ratio=1,
        head_channels=48,
    )


@register_model
def sdtrack_tiny() -> TrackerConfig:
    """The published SDTrack-Tiny size (~19.6 M params): 256/128 px, conv 32/64/128, 6x256 + 2x360."""
    return TrackerConfig(
        name="sdtrack-tiny", search_size=256, template_size=128, min_search_crop_px=0.0,
        conv_channels=(32, 64, 128), conv_blocks=(1, 2, 2), conv_mlp_ratio=4.0, embed_stride=2,
        stage_dims=(256, 360), stage_depths=(6, 2), heads=8, v_ratio=4, head_channels=256,
    )


# The seed's other spiking transformers (issue 21; evtrack.network.architectures): tiny's stem, event
# frames and head, a transformer near tiny's size. Binary LIF over T=4 steps as in the papers; the
# neuron ("ilif" / "lif") and T are config data: the "-ilif" variants below run tiny's I-LIF at T=1.
@register_model
def spikformer() -> TrackerConfig:
    """Spikformer (SSA: Q K^T V * 0.125, no softmax; spike-output residuals), 4 blocks at C=64."""
    return dataclasses.replace(tiny(), name="spikformer", architecture="spikformer", neuron="lif", time_steps=4)


@register_model
def sdt_v1() -> TrackerConfig:
    """Spike-driven Transformer V1 (SDSA: SN(sum_tokens Q*K) gating V; membrane shortcuts), 4 blocks at C=64."""
    return dataclasses.replace(tiny(), name="sdt-v1", architecture="sdt-v1", neuron="lif", time_steps=4)


@register_model
def qkformer() -> TrackerConfig:
    """QKFormer, two stages: 2 Q-K token-attention blocks at C=48 on 32x32 + 16x16 maps (stride 4, tiny's
    stem without its last stage), patch merging, 3 Q-K channel-attention blocks at C=96 on tiny's 16x16 + 8x8."""
    return dataclasses.replace(
        tiny(), name="qkformer", architecture="qkformer", neuron="lif", time_steps=4,
        conv_channels=(16, 32), conv_blocks=(0, 1), stage_dims=(48, 96), stage_depths=(2, 3),
        stage_attention=("qk_token", "qk_channel"), merge_stages=True,
    )


def _ilif(cfg: TrackerConfig) -> TrackerConfig:
    """``cfg`` with SDTrack's neuron instead: integer I-LIF, T=1, D=4 (about T times cheaper on CPU)."""
    return dataclasses.replace(cfg, name=f"{cfg.name}-ilif", neuron="ilif", time_steps=1, max_value=4)


@register_model
def spikformer_ilif() -> TrackerConfig:
    """``spikformer`` with I-LIF spikes at T=1 (the neuron of ``tiny``)."""
    return _ilif(spikformer())


@register_model
def sdt_v1_ilif() -> TrackerConfig:
    """``sdt-v1`` with I-LIF spikes at T=1 (the neuron of ``tiny``)."""
    return _ilif(sdt_v1())


@register_model
def qkformer_ilif() -> TrackerConfig:
    """``qkformer`` with I-LIF spikes at T=1 (the neuron of ``tiny``)."""
    return _ilif(qkformer())
