"""TP-Spikformer token pruning: information-retaining scores, block-level early stopping, op accounting.

Public API: :func:`apply_pruning`, :func:`parse_keep`, :func:`reset_state`, :class:`PrunedBlockStack`,
:func:`count_ops`. See docs/design.md for the contracts with the tracker.
"""

from evtrack.pruning.accounting import OpCounter, count_ops
from evtrack.pruning.apply import (
    PruningOptions,
    apply_checkpoint_pruning,
    apply_pruning,
    prunable_blocks,
    reset_state,
)
from evtrack.pruning.blocks import PrunedBlockStack
from evtrack.pruning.schedule import default_schedule, parse_keep
from evtrack.pruning.scores import ScoreOptions, ir_scores
from evtrack.pruning.select import select_indices, select_tokens

__all__ = [
    "OpCounter", "PrunedBlockStack", "PruningOptions", "ScoreOptions", "apply_checkpoint_pruning",
    "apply_pruning",
    "count_ops", "default_schedule", "ir_scores", "parse_keep", "prunable_blocks",
    "reset_state", "select_indices", "select_tokens",
]
