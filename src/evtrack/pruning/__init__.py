"""TP-Spikformer token pruning: information-retaining scores, block-level early stopping.

Public API: :func:`apply_pruning`, :func:`parse_keep`, :func:`reset_state`, :class:`PrunedBlockStack`.
Op counting lives in :mod:`evtrack.metrics.ops`. See docs/design.md for the contracts with the tracker.
"""

from evtrack.pruning.apply import (
    PruningOptions,
    apply_checkpoint_pruning,
    apply_pruning,
    prunable_blocks,
    prunable_stages,
    reset_state,
)
from evtrack.pruning.blocks import PrunedBlockStack
from evtrack.pruning.schedule import default_schedule, parse_keep
from evtrack.pruning.scores import ScoreOptions, ir_scores
from evtrack.pruning.select import select_indices, select_tokens

__all__ = [
    "PrunedBlockStack", "PruningOptions", "ScoreOptions", "apply_checkpoint_pruning",
    "apply_pruning",
    "default_schedule", "ir_scores", "parse_keep", "prunable_blocks", "prunable_stages",
    "reset_state", "select_indices", "select_tokens",
]
