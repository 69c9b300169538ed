"""What a network eats: the event representation its config names, chosen here for every caller.

Training pairs and online tracking must render crops the same way the network was trained on, so
both ask :func:`frame_representation` with the network's config instead of importing a renderer.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from evtrack.errors import UserError

Representation = Callable[..., np.ndarray]

# TrackerConfig.representation -> function of evtrack.io.representations with the signature
# ``f(events, sensor_size, *, t0_us, t1_us, crop, out_size) -> float32 [C, h, w]``
REPRESENTATIONS = {"sdtrack": "sdtrack_frame"}


def frame_representation(cfg) -> Representation:
    """The renderer of ``cfg.representation`` (a :class:`TrackerConfig`)."""
    from evtrack.io import representations

    name = REPRESENTATIONS.get(cfg.representation)
    if name is None:
        raise UserError(f"config {cfg.name}: unknown representation {cfg.representation!r}; "
                        f"expected one of {sorted(REPRESENTATIONS)}")
    return getattr(representations, name)
