"""Named tracker configurations (timm-style): ``register_model``, ``create_model``, ``list_models``.

Variants are data: each entry point returns a :class:`TrackerConfig`; ``create_model(name,
**overrides)`` builds the network, dropping ``None`` overrides so CLI defaults never override
the variant's own values.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from evtrack.errors import UserError
from evtrack.tracker.config import TrackerConfig
from evtrack.tracker.model import SDTrackNet

_REGISTRY: dict[str, Callable[[], TrackerConfig]] = {}


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


def create_model(name: str, **overrides) -> SDTrackNet:
    """Build a freshly initialised network for variant ``name``."""
    return SDTrackNet(model_config(name, **overrides))


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
def small() -> TrackerConfig:
    """``tiny`` with a transformer twice as wide (4 blocks at C=128, 8 heads of 16): more capacity, still
    CPU-sized. Same head width and head size as ``tiny``, so a trained ``tiny`` embeds in it exactly
    (``evtrack train --config small --grow-from tiny.pt``). Grown from the shipped checkpoint and trained
    on 1000 generated sequences it tracked level with ``tiny`` on 410 held-out ones at half the frame rate
    (BENCHMARKS.md), so ``tiny`` is what ships."""
    return dataclasses.replace(tiny(), name="small", stage_dims=(128,), heads=8)


@register_model
def sdtrack_tiny() -> TrackerConfig:
    """The published SDTrack-Tiny size (~19.6 M params): 256/128 px, conv 32/64/128, 6x256 + 2x360."""
    return TrackerConfig(
        name="sdtrack-tiny", search_size=256, template_size=128, min_search_crop_px=0.0,
        conv_channels=(32, 64, 128), conv_blocks=(1, 2, 2), conv_mlp_ratio=4.0, embed_stride=2,
        stage_dims=(256, 360), stage_depths=(6, 2), heads=8, v_ratio=4, head_channels=256,
    )
