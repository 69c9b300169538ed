"""Tracker checkpoints: a plain dict of tensors and builtins, loadable with ``weights_only=True``.

A checkpoint file therefore cannot run code when loaded. It carries a format name and version
and the full :class:`TrackerConfig`, so ``load_model(path)`` rebuilds the exact network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from evtrack.errors import FormatError, UserError
from evtrack.network.config import TrackerConfig
from evtrack.network.registry import build_model

FORMAT = "evtrack-tracker"
FORMAT_VERSION = 1
# online-tracking options a checkpoint may carry (tuned for its weights: a score threshold only means
# something for the network that produced the score); load_tracker uses them as defaults.
# ``min_score_pruned`` replaces ``min_score`` when the network runs token-pruned (pruning lowers the
# peak scores a little; tuned at the default keep schedule).
TRACKING_OPTIONS = {"min_score": float, "min_score_pruned": float, "motion": float, "size_lr": float, "hann": bool,
                    "window_power": float}


def save_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    *,
    step: int = 0,
    optimizer: torch.optim.Optimizer | None = None,
    extra: dict[str, Any] | None = None,
    half: bool = False,
    tracking: dict[str, Any] | None = None,
) -> Path:
    """Write atomically (temp file in the same directory, then rename). ``half`` stores fp16 weights."""
    path = Path(path)
    net = getattr(model, "module", model)  # unwrap DDP
    if getattr(net, "fused", False):
        raise ValueError("cannot save a BN-fused (inference-only) model; save before calling fuse()")
    state = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu() for k, v in net.state_dict().items()}
    payload: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": net.cfg.to_dict(),
        "model": state,
        "step": int(step),
    }
    if getattr(net, "pruning", None):
        payload["pruning"] = dict(net.pruning)  # plain settings dict; load_tracker re-applies it
    if optimizer is not None:
        payload["optimizer"] = optimizer.state_dict()
    if extra:
        payload["extra"] = extra
    if tracking:
        payload["tracking"] = check_tracking_options(tracking, source=str(path))
    return _atomic_save(payload, path)


def _atomic_save(payload: dict[str, Any], path: Path) -> Path:
    from evtrack.io import atomic  # here: evtrack.io loads numba, which loading a model does not need

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic.replacing(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read and validate a checkpoint dict (format, version, config). Never unpickles code."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, random bytes, pickled code objects...
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise FormatError(
            f"{path}: not a readable evtrack checkpoint ({type(exc).__name__}: {msg[:200]}); "
            "expected a file written by `evtrack train` (torch.save of a dict of tensors)"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise FormatError(f"{path}: field 'format' is {found!r}, expected {FORMAT!r}")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise FormatError(f"{path}: field 'format_version' is {version!r}, expected {FORMAT_VERSION}")
    for key, kind in (("config", dict), ("model", dict)):
        if not isinstance(payload.get(key), kind):
            raise FormatError(f"{path}: field {key!r} is missing or not a {kind.__name__}")
    try:
        payload["config"] = TrackerConfig.from_dict(payload["config"], source=f"{path}: field 'config'")
    except (UserError, TypeError) as exc:
        raise FormatError(f"{path}: field 'config' is invalid: {exc}") from None
    if "tracking" in payload:
        payload["tracking"] = check_tracking_options(payload["tracking"], source=f"{path}: field 'tracking'")
    return payload


def check_tracking_options(options: Any, *, source: str) -> dict[str, Any]:
    """Validate a ``tracking`` dict: known keys (``TRACKING_OPTIONS``) with values of the right kind."""
    if not isinstance(options, dict):
        raise FormatError(f"{source}: expected a dict of tracking options, found {type(options).__name__}")
    out = {}
    for key, value in options.items():
        kind = TRACKING_OPTIONS.get(key)
        if kind is None:
            raise FormatError(f"{source}: unknown tracking option {key!r}; expected one of {sorted(TRACKING_OPTIONS)}")
        if kind is bool and not isinstance(value, bool) or kind is float and (
            isinstance(value, bool) or not isinstance(value, int | float)
        ):
            raise FormatError(f"{source}: tracking option {key!r} is {value!r}, expected a {kind.__name__}")
        out[key] = kind(value)
    return out


def set_tracking_options(path: str | Path, options: dict[str, Any]) -> Path:
    """Store online-tracking defaults (e.g. the tuned ``min_score``) in an existing checkpoint, atomically."""
    path = Path(path)
    payload = load_checkpoint(path)
    payload["config"] = payload["config"].to_dict()
    payload["tracking"] = check_tracking_options(options, source=str(path))
    return _atomic_save(payload, path)


def load_state(model: torch.nn.Module, state: dict[str, torch.Tensor], *, source: str) -> None:
    """``load_state_dict`` with a clear error listing missing / unexpected / mis-shaped entries."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [
        f"{k}: found {tuple(state[k].shape)}, expected {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} (e.g. {missing[:3]})")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} (e.g. {unexpected[:3]})")
        if shapes:
            parts.append(f"wrong shape {len(shapes)} (e.g. {shapes[:3]})")
        raise FormatError(f"{source}: weights do not match the config: " + "; ".join(parts))
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})


def load_matching_state(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> tuple[int, int]:
    """Copy the entries of ``state`` whose name and shape fit ``model`` (timm-style partial loading, e.g. a
    new backbone starting from ``tiny``'s stem and head); returns (parameters copied, parameters in total)."""
    own = model.state_dict()
    fit = {k: v.to(own[k].dtype) for k, v in state.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    model.load_state_dict(fit, strict=False)
    copied = sum(v.numel() for k, v in fit.items() if k in dict(model.named_parameters()))
    return copied, sum(p.numel() for p in model.parameters())


def load_model(path: str | Path, **overrides) -> torch.nn.Module:
    """Rebuild the network of a checkpoint and load its weights (fp32, eval mode)."""
    return model_from_payload(load_checkpoint(path), source=str(path), **overrides)


def model_from_payload(payload: dict[str, Any], *, source: str, **overrides) -> torch.nn.Module:
    """The network of an already validated :func:`load_checkpoint` payload."""
    path = source
    cfg: TrackerConfig = payload["config"]
    if overrides:
        import dataclasses

        cfg = dataclasses.replace(cfg, **overrides)
    model = build_model(cfg)
    load_state(model, payload["model"], source=str(path))
    return model.eval()


def export_checkpoint(src: str | Path, dst: str | Path, *, half: bool = True) -> Path:
    """Inference copy of a training checkpoint: weights (fp16 by default) and config, no optimiser."""
    payload = load_checkpoint(src)
    model = model_from_payload(payload, source=str(src))
    step = int(payload["step"])
    return save_checkpoint(dst, model, step=step, half=half, extra={"exported_from_step": step},
                           tracking=payload.get("tracking"))
