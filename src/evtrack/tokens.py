"""The token seam: where a network's token maps lie and what its transformer blocks promise.

Pruning (:mod:`evtrack.pruning`), op counting and any export/runtime work against this module, never
against a network's attribute paths, so a new backbone joins by implementing :class:`TokenModel`.

- :class:`TokenLayout` lists the 2-D maps inside the token axis N of ``[T, B, N, C]``. A map marked
  ``reference`` describes the target (the template): ``apply_pruning(prune_template=False)`` keeps it whole.
- :class:`TokenModel`: ``token_layout``, ``token_stack()`` (a module with ``blocks`` and
  ``forward(x [T, B, N, C], layout) -> [T, B, N, C']``), ``set_token_stack(stack)`` and
  ``frame_encoder()`` (the module that sees every raw input frame ``[T, B, C, H, W]``).
- :class:`TokenBlock`: the attributes a block of the stack declares (absent = the default in
  ``BLOCK_DEFAULTS``); its attention module may carry a float ``token_scale`` (see docs/design.md).
  A non-prunable block may change the token layout (hierarchical stages): it then declares
  ``token_layout_out`` (a :class:`TokenLayout`), and :func:`layout_after` follows it through a stack.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from torch import nn

from evtrack.errors import UserError


@dataclass(frozen=True)
class TokenMap:
    """One 2-D map inside the token axis: tokens ``offset .. offset + h*w`` in row-major order."""

    name: str
    h: int
    w: int
    offset: int
    reference: bool = False  # describes the target (template) rather than where to look for it

    @property
    def n(self) -> int:
        return self.h * self.w


@dataclass(frozen=True)
class TokenLayout:
    """Where the maps live in the token axis N (template first, then search)."""

    maps: tuple[TokenMap, ...]

    @property
    def n_tokens(self) -> int:
        return sum(m.n for m in self.maps)

    @property
    def reference_maps(self) -> tuple[str, ...]:
        """Names of the maps marked ``reference``."""
        return tuple(m.name for m in self.maps if m.reference)

    def map(self, name: str) -> TokenMap:
        for m in self.maps:
            if m.name == name:
                return m
        raise KeyError(f"no token map named {name!r}; maps are {[m.name for m in self.maps]}")

    @classmethod
    def template_search(cls, hz: int, wz: int, hx: int, wx: int) -> TokenLayout:
        return cls((TokenMap("template", hz, wz, 0, reference=True), TokenMap("search", hx, wx, hz * wz)))


def as_maps(layout: TokenLayout | Iterable) -> list[TokenMap]:
    """The maps of a :class:`TokenLayout`, or of an iterable of maps / ``(name, h, w, offset)`` tuples."""
    out = []
    for m in getattr(layout, "maps", layout):
        if isinstance(m, TokenMap):
            out.append(m)
        else:
            name, h, w, offset = m
            out.append(TokenMap(str(name), int(h), int(w), int(offset)))
    return out


# What a block that does not declare an attribute is taken to promise.
BLOCK_DEFAULTS = {
    "prunable": True,  # maps [T, B, N', C] -> [T, B, N', C] for any token subset (False: channel transitions)
    "accepts_context": False,  # forward(x_kept, context=x_all): keys/values from context
    "accepts_kv_cache": False,  # forward(x, kv_cache=f): attention calls f(k, v) and attends to what it returns
    "token_wise": False,  # each token's output depends on that token only: nothing to compensate for N/K
}


class TokenBlock(Protocol):
    """A block of a token stack (attributes optional, see ``BLOCK_DEFAULTS``)."""

    prunable: bool
    accepts_context: bool
    accepts_kv_cache: bool
    token_wise: bool


def block_flag(block: nn.Module, name: str) -> bool:
    """``block``'s declared value of a :class:`TokenBlock` attribute, else its default."""
    return bool(getattr(block, name, BLOCK_DEFAULTS[name]))


def layout_after(block: nn.Module, layout: TokenLayout | Iterable) -> TokenLayout | Iterable:
    """The token layout of ``block``'s output: its ``token_layout_out`` when it declares one (a
    non-prunable block that changes the token count, e.g. patch merging between hierarchical stages),
    else ``layout`` unchanged."""
    out = getattr(block, "token_layout_out", None)
    return layout if out is None else out


def block_input_tokens(blocks: Iterable[nn.Module], layout: TokenLayout) -> list[int]:
    """Tokens each block of a dense stack reads, following layout changes (their sum is the dense token
    count a kept-token fraction should be taken of; ``n_blocks * layout.n_tokens`` only without merging)."""
    counts = []
    for b in blocks:
        counts.append(layout.n_tokens)
        layout = layout_after(b, layout)
    return counts


def scaled_modules(block: nn.Module) -> list[nn.Module]:
    """The submodules of ``block`` with a ``token_scale`` (linear attention whose output sums over tokens)."""
    return [m for m in block.modules() if hasattr(m, "token_scale")]


@runtime_checkable
class TokenModel(Protocol):
    """A network whose transformer runs over a :class:`TokenLayout` through a replaceable block stack."""

    token_layout: TokenLayout

    def token_stack(self) -> nn.Module: ...

    def set_token_stack(self, stack: nn.Module) -> None: ...

    def frame_encoder(self) -> nn.Module: ...


def token_model(model: nn.Module, who: str) -> TokenModel:
    """``model`` if it implements :class:`TokenModel`, else a UserError naming ``who`` needed it."""
    if not isinstance(model, TokenModel):
        raise UserError(
            f"{who}: {type(model).__name__} does not implement the token seam (token_layout, token_stack(), "
            "set_token_stack(), frame_encoder(); evtrack.tokens, docs/design.md)"
        )
    return model
