"""Export-ready views of a network: the template branch and the per-frame search branch as pure functions.

An inference runtime (ONNX Runtime, OpenVINO) runs a graph, not a Python object with memory, so
everything the torch tracker keeps between frames becomes an explicit input and output here
(RVT-style recurrent state). For a token-pruned network (``evtrack.pruning.PrunedBlockStack``) that
is, per scored block, the IR scorer's previous-frame channel mean ``prev`` ``[B, N]`` and, with
``cached_kv``, the keys/values of every token ``k``/``v`` ``[T, B, h, N, d]``. Scoring, top-k,
gather, the block and scatter are all traced into the graph, with the per-map token counts fixed
by the keep schedule (so the graph's shapes are static).

The first frame after a reset has no state (the scorer's temporal term starts from zeros and the
key/value caches are filled from all tokens), so a pruned network exports two search graphs: ``init``
(no state in, state out) and ``step`` (state in and out). The blocks themselves run unchanged: the
stack below calls them with the same ``context``/``kv_cache`` arguments as the torch path.
"""

from __future__ import annotations

import torch
from torch import nn

from evtrack.errors import UserError
from evtrack.pruning.blocks import PrunedBlockStack
from evtrack.pruning.scorers import IRScorer
from evtrack.pruning.scores import map_scores
from evtrack.pruning.select import gather_tokens, map_keep_counts
from evtrack.tokens import as_maps, block_flag

OUTPUTS = ("score", "offset", "size")


def _scatter(x: torch.Tensor, idx: torch.Tensor, y: torch.Tensor, axis: int) -> torch.Tensor:
    """Copy of ``x`` with positions ``idx`` [K] along ``axis`` replaced by ``y`` (ScatterElements in ONNX)."""
    shape = [1] * y.dim()
    shape[axis] = idx.shape[0]
    return x.scatter(axis, idx.reshape(shape).expand_as(y), y)


class _StoreKV:
    """``kv_cache`` callable of the first frame: keep the keys/values of all tokens as the new state."""

    def __init__(self) -> None:
        self.k = self.v = None

    def __call__(self, k: torch.Tensor, v: torch.Tensor):
        self.k, self.v = k, v
        return k, v


class _UpdateKV:
    """``kv_cache`` callable of later frames: write the kept tokens' keys/values into the state inputs."""

    def __init__(self, k_all: torch.Tensor, v_all: torch.Tensor, idx: torch.Tensor) -> None:
        self.k, self.v, self.idx = k_all, v_all, idx

    def __call__(self, k: torch.Tensor, v: torch.Tensor):
        self.k = _scatter(self.k, self.idx, k, 3)
        self.v = _scatter(self.v, self.idx, v, 3)
        return self.k, self.v


class GraphPrunedStack(nn.Module):
    """:class:`PrunedBlockStack` with its state passed in and out (``state_in`` / ``state_out`` are set by
    :class:`SearchGraph` around one traced call; batch 1)."""

    def __init__(self, pruned: PrunedBlockStack) -> None:
        super().__init__()
        if pruned.mode != "reselect":
            raise UserError(f"export: pruning mode {pruned.mode!r} is not supported in a graph; expected 'reselect'")
        if not isinstance(pruned.scorer, IRScorer):
            raise UserError(f"export: pruning criterion {type(pruned.scorer).__name__} is not supported in a graph; "
                            "expected the information-retaining ('ir') criterion")
        self.pruned = pruned
        self.blocks = pruned.blocks
        self.opts = pruned.scorer.opts
        self.scored = [i for i, b in enumerate(self.blocks) if block_flag(b, "prunable") and pruned.keep[i] < 1.0]
        self.state_in: list[torch.Tensor] | None = None  # None: first frame (init graph)
        self.state_out: list[torch.Tensor] = []

    def state_names(self) -> list[str]:
        """Names of the state tensors, in graph input/output order."""
        names = []
        for i in self.scored:
            names.append(f"prev{i}")
            if self.pruned._kv[i] is not None:
                names += [f"k{i}", f"v{i}"]
        return names

    def forward(self, x: torch.Tensor, layout) -> torch.Tensor:
        maps = as_maps(layout)
        n = x.shape[2]
        state = list(self.state_in) if self.state_in is not None else None
        out: list[torch.Tensor] = []
        for i, blk in enumerate(self.blocks):
            if i not in self.scored:
                x = blk(x)
                continue
            prev = state.pop(0) if state is not None else torch.zeros(x.shape[1], n, dtype=x.dtype)
            out.append(x[-1].mean(-1))  # the scorer's memory for the next frame
            ks = map_keep_counts(maps, self.pruned.keep[i], self.pruned.keep_maps)
            parts = []
            for mp, k in zip(maps, ks, strict=True):
                if k == mp.n:
                    parts.append(torch.arange(mp.offset, mp.offset + mp.n))
                    continue
                s = map_scores(x, mp, prev, self.opts)[0]
                top = torch.topk(s, k).indices
                parts.append(torch.sort(top).values + mp.offset)
            idx = torch.cat(parts)
            if idx.shape[0] == n:  # every token kept (a ratio close to 1)
                x = self._run_all(i, blk, x, state, out)
                continue
            kept = gather_tokens(x, idx[None])
            y = self._run(i, blk, kept, x, idx, state, out)
            x = _scatter(x, idx, y, 2)
        self.state_out = out
        return x

    def _run_all(self, i, blk, x, state, out) -> torch.Tensor:
        """A scored block that keeps every token: dense, and its key/value state refreshed from all tokens
        (torch leaves its cache as it was; the two differ only in what later frames reuse)."""
        if self.pruned._kv[i] is None:
            return blk(x)
        if state is not None:
            del state[:2]
        cache = _StoreKV()
        y = blk(x, context=x, kv_cache=cache)
        out += [cache.k, cache.v]
        return y

    def _run(self, i, blk, kept, full, idx, state, out) -> torch.Tensor:
        p = self.pruned
        if p.full_kv:
            return blk(kept, context=full)
        if p._kv[i] is None:
            if p.compensate:
                raise UserError("export: pruning with compensate=True is not supported in a graph")
            return blk(kept)
        if state is None:  # first frame: keys/values from all tokens
            cache = _StoreKV()
            y = blk(kept, context=full, kv_cache=cache)
        else:
            cache = _UpdateKV(state.pop(0), state.pop(0), idx)
            y = blk(kept, kv_cache=cache)
        out += [cache.k, cache.v]
        return y


class TemplateGraph(nn.Module):
    """``template [1, C, Hz, Wz] -> z_feat``: the conv features the tracker caches per sequence."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, template: torch.Tensor) -> torch.Tensor:
        return self.model.embed_template(template)


class SearchGraph(nn.Module):
    """``(z_feat, search, *state) -> (score, offset, size, *state)``: one tracked frame."""

    def __init__(self, model: nn.Module, stack: GraphPrunedStack | None, first: bool) -> None:
        super().__init__()
        self.model = model
        self.stack = stack
        self.first = first

    def forward(self, z_feat: torch.Tensor, search: torch.Tensor, *state: torch.Tensor):
        if self.stack is None:
            out = self.model.forward_search(z_feat, search)
            return tuple(out[k] for k in OUTPUTS)
        self.stack.state_in = None if self.first else list(state)
        out = self.model.forward_search(z_feat, search)
        return tuple(out[k] for k in OUTPUTS) + tuple(self.stack.state_out)


def graph_stack(model: nn.Module) -> GraphPrunedStack | None:
    """Install the graph form of ``model``'s pruned stack (a copy of the model is expected); None when dense."""
    stack = model.token_stack()
    if not isinstance(stack, PrunedBlockStack):
        return None
    g = GraphPrunedStack(stack)
    model.set_token_stack(g)
    return g
