"""Per-block keep ratios: parsing ``--keep`` text and the default TP-Spikformer schedule.

A keep ratio here is the *fraction of each map's tokens* a block processes (template and search
are counted separately). The official SDT-V3 code instead gives a per-side ratio r and keeps
``int(H * r) ** 2`` tokens; the *official* schedule is the square of those side ratios, spread over
however many prunable blocks the model has (about 57% of the tokens kept). Our *default* keeps
``DEFAULT_SCALE`` times that (about 53%): with the skipped tokens' cached keys/values (the default
attention), the kept tokens' attention outputs are dense-sized and fire as many spikes as dense
ones, so the official schedule cut transformer SOPs by only 37-38% on held-out sequences.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from evtrack.errors import UserError

# Official SDT-V3 per-side ratios for its 8 transformer blocks (6 in stage 3, 2 in stage 4).
OFFICIAL_SIDE_RATIOS: tuple[float, ...] = (0.9, 0.8, 0.8, 0.8, 0.75, 0.65, 0.65, 0.65)
# As token fractions: about 57% of tokens kept on average.
OFFICIAL_TOKEN_FRACTIONS: tuple[float, ...] = tuple(r * r for r in OFFICIAL_SIDE_RATIOS)
# Chosen by transformer SOPs on 310 held-out sequences (BENCHMARKS.md, "Token pruning"): the largest
# of the scales tried (0.95, 0.92, 0.9) that cut them by >= 40% on every held-out set (41.2-41.6%);
# the AUC cost of 0.9-1.0x was below what 310 sequences resolve (gaps 0.15-0.71 points, +-1.5).
DEFAULT_SCALE = 0.92


def default_schedule(n_blocks: int) -> list[float]:
    """The official schedule times ``DEFAULT_SCALE`` (about 53% of the tokens kept)."""
    return [round(v * DEFAULT_SCALE, 6) for v in official_schedule(n_blocks)]


def official_schedule(n_blocks: int) -> list[float]:
    """The official token fractions resampled onto ``n_blocks`` blocks by relative depth.

    Block i of n samples the official 8-block curve at the centre of its depth interval
    (linear interpolation), so 8 blocks give the official values exactly.
    """
    if n_blocks < 1:
        raise UserError(f"keep schedule: need at least one prunable block, found {n_blocks}")
    ref = OFFICIAL_TOKEN_FRACTIONS
    out = []
    for i in range(n_blocks):
        pos = (i + 0.5) / n_blocks * len(ref) - 0.5
        pos = min(max(pos, 0.0), len(ref) - 1.0)
        lo = int(math.floor(pos))
        hi = min(lo + 1, len(ref) - 1)
        frac = pos - lo
        out.append(round(ref[lo] * (1.0 - frac) + ref[hi] * frac, 6))
    return out


def parse_keep(text: str | float | Sequence[float] | None, n_blocks: int,
               stages: Sequence[int] | None = None) -> list[float]:
    """Per-block keep fractions from ``text``.

    Accepts None / ``"1.0"`` / ``"dense"`` (all 1.0), ``"default"`` (our default schedule),
    ``"official"`` (the official SDT-V3 schedule, about 57% kept),
    a single ratio broadcast to every block (``"0.6"``), or one ratio per block
    (``"0.9,0.8,0.8"``). Ratios must lie in (0, 1].
    Per stage (hierarchical models, ``stages`` = prunable blocks per stage): one such schedule per
    stage separated by ``/``, e.g. ``"1.0/default"`` or ``"0.8/0.6,0.5,0.5"``.
    """
    if isinstance(text, str) and "/" in text:
        return parse_stage_keep(text, stages if stages is not None else [n_blocks])
    if n_blocks < 1:
        raise UserError(f"keep schedule: need at least one prunable block, found {n_blocks}")
    if text is None:
        return [1.0] * n_blocks
    if isinstance(text, int | float):
        values: list[float] = [float(text)]
    elif isinstance(text, str):
        t = text.strip().lower()
        if t in ("dense", "none", ""):
            return [1.0] * n_blocks
        if t == "default":
            return default_schedule(n_blocks)
        if t == "official":
            return official_schedule(n_blocks)
        values = []
        for pos, part in enumerate(t.split(",")):
            try:
                values.append(float(part))
            except ValueError:
                raise UserError(
                    f"--keep: item {pos} is {part.strip()!r}; expected a number in (0, 1], "
                    f"'default', 'official' or 'dense'"
                ) from None
    else:
        values = [float(v) for v in text]
    for pos, v in enumerate(values):
        if not (0.0 < v <= 1.0) or math.isnan(v):
            raise UserError(f"--keep: item {pos} is {v}; expected a ratio in (0, 1]")
    if len(values) == 1:
        return values * n_blocks
    if len(values) != n_blocks:
        raise UserError(
            f"--keep: found {len(values)} ratios; expected 1 or one per prunable block ({n_blocks})"
        )
    return values


def parse_stage_keep(text: str, stages: Sequence[int]) -> list[float]:
    """``"A/B/..."``: schedule A (any :func:`parse_keep` form) over the prunable blocks of stage 1, B over
    stage 2, ... (``stages`` = prunable blocks per stage). Why: a hierarchical network's stages have
    different token counts, so one depth curve over all blocks need not suit each of them."""
    parts = text.split("/")
    if len(parts) != len(stages):
        raise UserError(f"--keep: found {len(parts)} per-stage schedules in {text!r}; expected one per "
                        f"stage with prunable blocks ({len(stages)}: {list(stages)} blocks)")
    out: list[float] = []
    for part, n in zip(parts, stages, strict=True):
        out += parse_keep(part, n)
    return out
