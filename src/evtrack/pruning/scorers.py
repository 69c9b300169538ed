"""Token scorers the pruned block stack can use: information-retaining, random, event density.

A scorer maps a block input x [T, B, N, C] to scores [B, N] (higher = keep). Scorers with
per-sequence state (the IR temporal term) clear it in ``reset_state()``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from evtrack.pruning.scores import ScoreOptions, ir_scores
from evtrack.tokens import TokenMap


class IRScorer:
    """TP-Spikformer information-retaining score, with per-block previous-frame state.

    In eval mode the channel mean of each block's input is remembered per block, so with one time
    step per frame the temporal term measures change since the previous tracking frame. The state
    is dropped when the batch/token shape changes, in training mode, and on ``reset_state()``
    (a tracker calls it at init).

    backend: "torch", "numba" (CPU, no grad) or "auto" (numba when no grad is needed on CPU).
    """

    def __init__(self, opts: ScoreOptions = ScoreOptions(), backend: str = "auto"):
        if backend not in ("auto", "torch", "numba"):
            raise ValueError(f"scorer backend: found {backend!r}; expected 'auto', 'torch' or 'numba'")
        self.opts = opts
        self.backend = backend
        self._prev: dict[int, torch.Tensor] = {}

    def reset_state(self) -> None:
        self._prev.clear()

    def _use_numba(self, x: torch.Tensor) -> bool:
        if self.backend == "torch":
            return False
        ok = x.device.type == "cpu"
        if self.backend == "numba" and not ok:
            raise ValueError("scorer backend 'numba' needs CPU tensors")
        return ok

    def __call__(self, x: torch.Tensor, maps: Sequence[TokenMap], block: int, training: bool) -> torch.Tensor:
        stateful = not training
        prev = self._prev.get(block) if stateful else None
        if prev is not None and prev.shape != (x.shape[1], x.shape[2]):
            prev = None
        with torch.no_grad():
            if self._use_numba(x):
                from evtrack.pruning.scores_numba import ir_scores_numba

                prev_np = prev.numpy() if prev is not None else None
                s, last = ir_scores_numba(x.detach().float().numpy(), maps, prev_np, self.opts)
                scores, last_t = torch.from_numpy(s), torch.from_numpy(last)
            else:
                scores, last_t = ir_scores(x.detach(), maps, prev, self.opts)
        if stateful:
            self._prev[block] = last_t.float()
        return scores


class RandomScorer:
    """Uniform random scores from a seeded generator (baseline: same keep ratio, no criterion)."""

    def __init__(self, seed: int = 0):
        self.seed = seed
        self._gen = torch.Generator().manual_seed(seed)

    def reset_state(self) -> None:
        self._gen = torch.Generator().manual_seed(self.seed)

    def __call__(self, x: torch.Tensor, maps: Sequence[TokenMap], block: int, training: bool) -> torch.Tensor:
        return torch.rand(x.shape[1], x.shape[2], generator=self._gen).to(x.device)


class DensityScorer:
    """Event density of each token's patch of the input frame (baseline: no feature information).

    ``apply.py`` hands it every input frame ``[T, B, C, H, W]`` the backbone's conv stages see (the
    template once at tracker init, the search crop every frame); the latest frame of each size is
    kept. Each token map takes the frame whose size is the map's size times the common stride.
    Density = sum over channels of |frame|, averaged over time and over each token's patch.
    """

    def __init__(self):
        self.frames: dict[tuple[int, int], torch.Tensor] = {}

    def reset_state(self) -> None:
        # Frames are replaced as new ones arrive; the cached template frame must survive a reset
        # that happens after the template was embedded.
        pass

    def add_frame(self, frame: torch.Tensor) -> None:
        self.frames[(frame.shape[-2], frame.shape[-1])] = frame.detach()

    def __call__(self, x: torch.Tensor, maps: Sequence[TokenMap], block: int, training: bool) -> torch.Tensor:
        parts = []
        big = max(maps, key=lambda m: m.h * m.w)
        sizes = sorted(self.frames, key=lambda hw: hw[0] * hw[1])
        stride = sizes[-1][0] // big.h if sizes else 0
        with torch.no_grad():
            for mp in maps:
                frame = self.frames.get((mp.h * stride, mp.w * stride))
                if frame is None or frame.shape[1] != x.shape[1]:
                    raise RuntimeError(
                        f"density scorer: no input frame of size {(mp.h * stride, mp.w * stride)} for map "
                        f"{mp.name!r} with batch {x.shape[1]}; captured sizes {sizes}"
                    )
                d = frame.abs().sum(2).mean(0)  # [B, H, W]
                parts.append(F.adaptive_avg_pool2d(d[:, None].float(), (mp.h, mp.w)).flatten(1))
        return torch.cat(parts, 1).to(x.device)
