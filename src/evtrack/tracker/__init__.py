"""SDT-V3 spiking tracker: model registry, checkpoints, training and online tracking.

>>> from evtrack.tracker import load_tracker, track_sequence
>>> tracker = load_tracker()          # the shipped ``tiny`` checkpoint
"""

from evtrack.tracker.checkpoint import load_checkpoint, load_model, save_checkpoint
from evtrack.tracker.online import SequenceResult, Tracker, TrackResult, load_tracker, track_sequence
from evtrack.tracker.registry import create_model, list_models, model_config, register_model

__all__ = [
    "SequenceResult", "TrackResult", "Tracker", "create_model", "list_models", "load_checkpoint",
    "load_model", "load_tracker", "model_config", "register_model", "save_checkpoint", "track_sequence",
]
