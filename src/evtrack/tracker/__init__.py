"""Online single-object tracking with a trained network (and the baselines it is compared with).

>>> from evtrack.tracker import load_tracker, track_sequence
>>> tracker = load_tracker()          # the shipped ``tiny`` checkpoint
>>> tracker = load_tracker("spikformer")   # another shipped one by name (see shipped_checkpoints())

The network itself lives in :mod:`evtrack.network`; the names below are re-exported for the
public API (README) so ``evtrack.tracker`` stays the one import users need.
"""

from evtrack.network.checkpoint import load_checkpoint, load_model, save_checkpoint
from evtrack.network.registry import create_model, list_models, model_config, register_model
from evtrack.shipped import resolve_checkpoint, shipped_checkpoints
from evtrack.tracker.online import SequenceResult, Tracker, TrackResult, load_tracker, track_sequence

__all__ = [
    "SequenceResult", "TrackResult", "Tracker", "create_model", "list_models", "load_checkpoint",
    "load_model", "load_tracker", "model_config", "register_model", "resolve_checkpoint", "save_checkpoint",
    "shipped_checkpoints", "track_sequence",
]
