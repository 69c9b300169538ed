"""OSTrack-style centre head on the search tokens: score map, sub-cell offset and box size.

Outputs are per search-map cell: ``score`` logits ``[B, H, W]``, ``offset`` in cells ``[B, 2, H, W]``
(sigmoid, 0..1 within the cell) and ``size`` ``[B, 2, H, W]`` (sigmoid, box w/h as a fraction of
the search crop). :func:`decode_boxes` turns them into normalised ``cx, cy, w, h`` crop boxes.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from evtrack.network.layers import ConvBN, SpikeFold, feeds_linear, step_spike
from evtrack.network.neurons import ILIF


class CenterHead(nn.Module):
    """Two spiking 3x3 ConvBN layers shared by the three branches, then a 1x1 conv to 5 maps."""

    def __init__(self, dim: int, hidden: int, max_value: int, neuron: Callable[[], nn.Module] | None = None) -> None:
        super().__init__()
        spike = neuron or (lambda: ILIF(max_value))
        self.s0, self.conv1 = spike(), ConvBN(dim, hidden, 3)
        self.s1, self.conv2 = spike(), ConvBN(hidden, hidden, 3)
        self.s2 = spike()
        self.out = nn.Conv2d(hidden, 5, 1)
        with torch.no_grad():  # CenterNet prior: start with a low score everywhere (p = 0.1)
            self.out.bias.zero_()
            self.out.bias[0] = -math.log((1 - 0.1) / 0.1)

    def spike_folds(self) -> list[SpikeFold]:
        return [*feeds_linear(self.s0, self.conv1), *feeds_linear(self.s1, self.conv2), *feeds_linear(self.s2, self.out)]

    def forward(self, feat: torch.Tensor) -> dict[str, torch.Tensor]:
        """``feat``: ``[T, B, C, H, W]`` search features -> dict of maps (time-averaged)."""
        if feat.shape[0] == 1:  # one time step: convolutions on [B, C, H, W] (layers.step_spike)
            y = self.conv2.step(step_spike(self.s1, self.conv1.step(step_spike(self.s0, feat.squeeze(0)))))
            y = self.out(step_spike(self.s2, y)).contiguous()  # the layout the time mean below gives (so
            # the sigmoids see the same strides, hence the same bits, as on the [T, B, ...] path)
        else:
            y = self.s2(self.conv2(self.s1(self.conv1(self.s0(feat)))))
            t, b = y.shape[:2]
            y = self.out(y.flatten(0, 1)).unflatten(0, (t, b)).mean(0)
        return {
            "score": y[:, 0],
            "offset": torch.sigmoid(y[:, 1:3]),
            "size": torch.sigmoid(y[:, 3:5]),
        }


def decode_boxes(
    out: dict[str, torch.Tensor], window: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Peak of the (optionally Hann-windowed) score map -> boxes ``[B, 4]`` (cx, cy, w, h in 0..1) and
    the raw peak score ``[B]`` (sigmoid probability before windowing).

    In numpy after the sigmoid: the tracker calls this once a frame on a 16x16 map, where a dozen small
    torch ops cost ~0.3 ms and numpy ~0.03 ms (the same float32 arithmetic, so the same boxes).
    """
    score = torch.sigmoid(out["score"].detach()).cpu().numpy()  # .cpu(): a no-op for the tracker's CPU maps
    b, h, w = score.shape
    ranked = score * window.cpu().numpy() if window is not None else score
    idx = ranked.reshape(b, -1).argmax(1)
    iy, ix = idx // w, idx % w
    ar = np.arange(b)
    off = out["offset"].detach().cpu().numpy()[ar, :, iy, ix]
    size = out["size"].detach().cpu().numpy()[ar, :, iy, ix]
    cx = (ix.astype(off.dtype) + off[:, 0]) / w
    cy = (iy.astype(off.dtype) + off[:, 1]) / h
    boxes = np.stack([cx, cy, size[:, 0], size[:, 1]], axis=1)
    return torch.from_numpy(boxes), torch.from_numpy(score.reshape(b, -1)[ar, idx])


def hann_window(h: int, w: int) -> torch.Tensor:
    """Separable 2-D Hann window ``[H, W]`` (OSTrack's motion prior around the previous position)."""
    wy = torch.hann_window(h + 2, periodic=False)[1:-1]
    wx = torch.hann_window(w + 2, periodic=False)[1:-1]
    return wy[:, None] * wx[None, :]
