"""Apply TP-Spikformer token pruning to a trained model, without retraining.

``apply_pruning(model, keep, **options)`` swaps the model's token stack (``evtrack.tokens``) for a
:class:`PrunedBlockStack` (or back to the dense stack) and records the settings in
``model.pruning`` (a plain dict, so checkpoints can store it and ``load_tracker`` re-applies it).
The same call works in training mode for short fine-tuning: the torch scorer path is used
automatically when gradients are needed, and gather/scatter are differentiable w.r.t. the blocks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace

import torch
from torch import nn

from evtrack.errors import UserError
from evtrack.pruning.blocks import MODES, PrunedBlockStack
from evtrack.pruning.schedule import parse_keep
from evtrack.pruning.scorers import DensityScorer, IRScorer, RandomScorer
from evtrack.pruning.scores import SPATIAL_FORMS, ScoreOptions
from evtrack.tokens import block_flag, token_model

CRITERIA = ("ir", "random", "density")


@dataclass(frozen=True)
class PruningOptions:
    """Everything that defines a pruned model besides its weights (stored in checkpoints)."""

    keep: tuple[float, ...]  # keep fraction per prunable block
    mode: str = "reselect"  # "reselect" (official code) or "cumulative" (stopped tokens stay stopped)
    prune_template: bool = True  # False keeps every template-map token in every block
    criterion: str = "ir"  # "ir" (information-retaining), "random" or "density" (input event density)
    # IR spatial term: "deviation" (L2 distance from the map mean; the default, chosen on the train split,
    # see BENCHMARKS.md), "global" (1 - cos to the map mean), "paper" (1 - cos to the 3x3 mean) or
    # "official" (channel-summed box, -cos)
    spatial: str = "deviation"
    normalize: str = "minmax"  # per-map normalisation of each IR term: "minmax" or "softmax"
    temporal_weight: float = 1.0  # weight of the IR temporal term
    include_center: bool = False  # paper spatial term: include the token in its own 3x3 mean
    compensate: bool = False  # rescale linear attention by N/K through `token_scale`
    full_kv: bool = False  # keys/values from all tokens; attention output + MLP for the kept ones only
    # Skipped tokens' keys/values from the last frame they were computed in (online tracking; in training
    # it acts as full_kv). None (the default): for every block that supports it (`accepts_kv_cache`),
    # unless full_kv or compensate is set; on 100 held-out sequences it kept AUC within ~1 point of dense
    # at the default schedule, where plain pruning lost ~4 at the same SOPs (BENCHMARKS.md).
    cached_kv: bool | None = None
    backend: str = "auto"  # IR scorer: "auto", "torch" or "numba"
    seed: int = 0  # random criterion seed

    def to_dict(self) -> dict:
        d = asdict(self)
        d["keep"] = list(self.keep)
        return d


def _stack_of(model: nn.Module) -> nn.Module:
    stack = token_model(model, "apply_pruning").token_stack()
    if not hasattr(stack, "blocks"):
        raise UserError(f"apply_pruning: the token stack of {type(model).__name__} has no `blocks`; "
                        "expected the seam of evtrack.tokens (docs/design.md)")
    return stack


def dense_stack(model: nn.Module) -> nn.Module:
    """The unpruned block stack of ``model`` (whether or not pruning is applied)."""
    stack = _stack_of(model)
    return stack.dense_stack if isinstance(stack, PrunedBlockStack) else stack


def prunable_blocks(model: nn.Module) -> list[int]:
    """Indices of the blocks of the stack that may be pruned."""
    return [i for i, b in enumerate(dense_stack(model).blocks) if block_flag(b, "prunable")]


def prunable_stages(model: nn.Module) -> list[int]:
    """Prunable blocks per stage, a stage ending at a block that changes the token layout (patch merging
    of hierarchical models, ``token_layout_out`` in evtrack.tokens); stages without prunable blocks are
    left out. One entry for a single-stage model."""
    counts = [0]
    for b in dense_stack(model).blocks:
        if getattr(b, "token_layout_out", None) is not None:
            counts.append(0)
        elif block_flag(b, "prunable"):
            counts[-1] += 1
    return [c for c in counts if c] or [0]


def _remove_hooks(model: nn.Module) -> None:
    for h in getattr(model, "_pruning_hooks", []):
        h.remove()
    model._pruning_hooks = []


def _capture_frames(scorer: DensityScorer):
    """Forward pre-hook handing the 5-D input frames [T, B, C, H, W] of the conv stages to the scorer."""

    def hook(module, args, kwargs):
        for a in list(args) + list(kwargs.values()):
            if torch.is_tensor(a) and a.dim() == 5:
                scorer.add_frame(a)

    return hook


def apply_pruning(
    model: nn.Module,
    keep: str | float | Sequence[float] | None = "default",
    **options,
) -> nn.Module:
    """Prune ``model`` in place (returns it). keep None / "1.0" / all ones restores the dense stack.

    ``options`` are the fields of :class:`PruningOptions` other than ``keep``.
    """
    known = {f.name for f in fields(PruningOptions)} - {"keep"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise UserError(f"apply_pruning: unknown option(s) {unknown}; expected some of {sorted(known)}")
    dense = dense_stack(model)
    prunable = prunable_blocks(model)
    ratios = parse_keep(keep, max(len(prunable), 1), prunable_stages(model)) if prunable else []
    _remove_hooks(model)
    if not prunable or all(r >= 1.0 for r in ratios):
        model.set_token_stack(dense)
        model.pruning = None
        return model
    opts = PruningOptions(keep=tuple(ratios), **options)
    if opts.mode not in MODES:
        raise UserError(f"apply_pruning: mode is {opts.mode!r}; expected one of {MODES}")
    if opts.criterion not in CRITERIA:
        raise UserError(f"apply_pruning: criterion is {opts.criterion!r}; expected one of {CRITERIA}")
    if opts.spatial not in SPATIAL_FORMS or opts.normalize not in ("minmax", "softmax"):
        raise UserError(
            f"apply_pruning: spatial={opts.spatial!r}, normalize={opts.normalize!r}; "
            f"expected spatial in {SPATIAL_FORMS} and normalize in ('minmax', 'softmax')"
        )
    if opts.criterion == "ir":
        score_opts = ScoreOptions(opts.spatial, opts.normalize, opts.temporal_weight, opts.include_center)
        scorer = IRScorer(score_opts, backend=opts.backend)
    elif opts.criterion == "random":
        scorer = RandomScorer(opts.seed)
    else:
        scorer = DensityScorer()
        target = model.frame_encoder()  # sees every raw frame
        model._pruning_hooks = [target.register_forward_pre_hook(_capture_frames(scorer), with_kwargs=True)]
    per_block = [1.0] * len(dense.blocks)
    for i, r in zip(prunable, ratios, strict=True):
        per_block[i] = r
    whole = () if opts.prune_template else model.token_layout.reference_maps
    try:
        pruned = PrunedBlockStack(
            dense, per_block, scorer, mode=opts.mode, keep_maps=whole, compensate=opts.compensate,
            full_kv=opts.full_kv, cached_kv=opts.cached_kv,
        )
        model.set_token_stack(pruned)
        if opts.cached_kv is None:  # record what "wherever supported" turned out to be
            opts = replace(opts, cached_kv=pruned.cached_kv)
    except ValueError as exc:
        model.set_token_stack(dense)
        model.pruning = None
        raise UserError(f"apply_pruning: {exc}") from None
    model.pruning = opts.to_dict()
    return model


def reset_state(model: nn.Module) -> None:
    """Clear per-sequence pruning state (scorer memory of the previous frame); call at tracker init."""
    for m in model.modules():
        if isinstance(m, PrunedBlockStack):
            m.reset_state()


def apply_checkpoint_pruning(model: nn.Module, settings: dict | None, keep=None, **overrides) -> nn.Module:
    """Re-apply the ``pruning`` field of a checkpoint (None = dense); an explicit ``keep`` overrides
    the stored ratios and ``overrides`` (:class:`PruningOptions` fields) the stored options.

    The one merge of stored and requested settings, for ``load_tracker`` and for pruned fine-tuning
    (``evtrack train --resume CKPT --keep K [flags]``: call it after loading the weights; parameter
    names do not change, so the optimiser state still matches). In training mode the IR scorer runs
    its torch path without temporal state and the blocks get gradients through gather/scatter.
    """
    options = {k: v for k, v in (settings or {}).items() if k != "keep"}
    if settings and "cached_kv" not in settings:  # written before the option: plain pruning, as then
        options["cached_kv"] = False
    options.update(overrides)
    if keep is None:
        keep = (settings or {}).get("keep")
    try:
        return apply_pruning(model, keep, **options)
    except TypeError as exc:
        raise UserError(f"checkpoint field 'pruning' is invalid ({exc}); expected apply_pruning options") from None
