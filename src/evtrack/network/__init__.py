"""The spiking tracker network: configs, architectures, layers and checkpoints.

Nothing here knows about event files or tracking loops: :mod:`evtrack.training` fits a network,
:mod:`evtrack.tracker` runs one online. ``TrackerConfig.architecture`` names the registered builder
and ``TrackerConfig.representation`` the event frame the network eats (:mod:`evtrack.network.inputs`).
"""

from evtrack.network.checkpoint import load_checkpoint, load_model, save_checkpoint
from evtrack.network.config import TrackerConfig
from evtrack.network.model import SDTrackNet
from evtrack.network.registry import (
    build_model,
    create_model,
    list_architectures,
    list_models,
    model_config,
    register_architecture,
    register_model,
)

__all__ = [
    "SDTrackNet", "TrackerConfig", "build_model", "create_model", "list_architectures", "list_models",
    "load_checkpoint", "load_model", "model_config", "register_architecture", "register_model", "save_checkpoint",
]
