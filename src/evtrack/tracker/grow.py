"""Grow a trained network into a wider configuration without changing what it computes.

Training on a laptop CPU is slow, so a wider transformer (``small``) starts from a trained ``tiny``
instead of from scratch. Every tensor of the narrow network is copied into the leading slice of the
wide one's; the new entries are initialised so they stay silent at first: new BatchNorm channels get
scale 0.1 and shift 0 (running mean 0, variance 1), new weights are the fresh initialisation times
0.1. Their outputs then stay (typically far) below half a spike, so the integer spikes of the grown network - and
with them its boxes - equal the narrow network's until training moves the new weights (tested).

Heads keep their width (``dim / heads`` must not change), so each head of the narrow network is one
head of the wide one and no attention sum mixes old with new channels.
"""

from __future__ import annotations

import torch
from torch import nn

from evtrack.errors import UserError
from evtrack.tracker.config import TrackerConfig
from evtrack.tracker.model import SDTrackNet

# Fields that may differ between the narrow and the wide configuration; every other must be equal.
GROWABLE = ("name", "stage_dims", "heads")
NEW_BN_SCALE = 0.1
NEW_WEIGHT_SCALE = 0.1


def check_growable(old: TrackerConfig, new: TrackerConfig, *, source: str) -> None:
    """Raise a UserError naming the field when ``old`` cannot be embedded exactly in ``new``."""
    a, b = old.to_dict(), new.to_dict()
    for key in a:
        if key not in GROWABLE and a[key] != b[key]:
            raise UserError(f"{source}: config field {key!r} is {a[key]} there but {b[key]} in {new.name!r}; "
                            f"only {', '.join(GROWABLE[1:])} may differ when growing a network")
    if len(old.stage_dims) != len(new.stage_dims):
        raise UserError(f"{source}: {len(old.stage_dims)} transformer stages there, {len(new.stage_dims)} "
                        f"in {new.name!r}; expected the same number")
    for d_old, d_new in zip(old.stage_dims, new.stage_dims, strict=True):
        if d_new < d_old or d_old // old.heads != d_new // new.heads:
            raise UserError(
                f"{source}: stage width {d_old} with {old.heads} heads cannot grow into {d_new} with {new.heads} "
                f"heads; expected a width >= {d_old} and the same head width {d_old // old.heads}")


def grow_state(old_state: dict[str, torch.Tensor], model: SDTrackNet, *, source: str = "grow") -> dict[str, torch.Tensor]:
    """State dict for ``model`` (freshly initialised, wide) holding ``old_state`` (narrow, read from
    ``source``, named in errors) exactly."""
    bn_params = {
        f"{name}.{p}" for name, mod in model.named_modules() if isinstance(mod, nn.modules.batchnorm._BatchNorm)
        for p in ("weight", "bias", "running_mean", "running_var")
    }
    out = {}
    for key, fresh in model.state_dict().items():
        if key not in old_state:
            raise UserError(f"{source}: the narrow network has no tensor {key!r}, which {model.cfg.name!r} needs")
        old = old_state[key].to(fresh.dtype)
        if old.shape == fresh.shape:
            out[key] = old.clone()
            continue
        if old.dim() != fresh.dim() or any(o > f for o, f in zip(old.shape, fresh.shape, strict=True)):
            raise UserError(f"{source}: tensor {key!r} has shape {tuple(old.shape)}, which does not fit in "
                            f"{tuple(fresh.shape)}")
        t = fresh.clone()
        if key in bn_params:
            kind = key.rsplit(".", 1)[1]
            t.fill_({"weight": NEW_BN_SCALE, "bias": 0.0, "running_mean": 0.0, "running_var": 1.0}[kind])
        else:
            t.mul_(NEW_WEIGHT_SCALE)
        t[tuple(slice(0, s) for s in old.shape)] = old
        out[key] = t
    return out
