"""evtrack: event-camera object tracking with a token-pruned spiking transformer."""

__version__ = "0.1.0"
