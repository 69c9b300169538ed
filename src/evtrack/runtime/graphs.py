"""Export-ready views of a network: the template branch and the per-frame search branch as pure functions.

An inference runtime (ONNX Runtime, OpenVINO) runs a graph, not a Python object with memory, so
everything the torch tracker keeps between frames becomes an explicit input and output here
(RVT-style recurrent state). For a token-pruned network (``evtrack.pruning.PrunedBlockStack``) that
is, per scored block, the IR scorer's previous-frame channel mean ``prev`` ``[B, N]`` and, with
``cached_kv``, the keys/values of every token ``k``/``v`` (token-major ``[N, T*B*h*d]``, see
:class:`_UpdateKV`). Scoring, top-k,
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
from evtrack.pruning.scores import (
    ScoreOptions,
    _cosine,
    spatial_dissimilarity,
    spatial_dissimilarity_official,
    temporal_change,
)
from evtrack.pruning.select import map_keep_counts
from evtrack.tokens import as_maps, block_flag

OUTPUTS = ("score", "offset", "size")
_EPS = 1e-8  # evtrack.pruning.scores' normalisation epsilon


class _Segments:
    """Constants that let one op act on every map of the token axis at once (the layout is fixed per
    graph): ``map_id`` [N] (the map of each token), ``avg`` [M, N] (row m averages map m's tokens) and
    ``pen_lo`` / ``pen_hi`` [M, N] (0 inside map m, +inf / -inf outside: a masked min / max is one
    broadcast add and one reduction)."""

    def __init__(self, maps, dtype=torch.float32) -> None:
        # built from Python lists: each is one constant in a traced graph (indexing ops would be traced)
        self.maps = maps
        ids = [m for m, mp in enumerate(maps) for _ in range(mp.n)]
        inside = [[i == m for i in ids] for m in range(len(maps))]
        self.map_id = torch.tensor(ids, dtype=torch.int64)
        self.avg = torch.tensor([[float(v) / mp.n for v in row] for row, mp in zip(inside, maps, strict=True)],
                                dtype=dtype)
        self.pen_lo = torch.tensor([[0.0 if v else float("inf") for v in row] for row in inside], dtype=dtype)
        self.pen_hi = -self.pen_lo

    def per_token(self, v: torch.Tensor) -> torch.Tensor:
        """[..., M] per-map values -> [..., N] (each token gets its map's value)."""
        return v.index_select(-1, self.map_id) if len(self.maps) > 1 else v.expand(*v.shape[:-1], self.map_id.shape[0])


def _normalize_maps(s: torch.Tensor, seg: _Segments, how: str) -> torch.Tensor:
    """:func:`evtrack.pruning.scores.normalize_scores` of every map of s [..., N] at once."""
    if how == "minmax":
        lo = seg.per_token((s.unsqueeze(-2) + seg.pen_lo).amin(-1))
        hi = seg.per_token((s.unsqueeze(-2) + seg.pen_hi).amax(-1))
        rng = hi - lo
        return torch.where(rng > _EPS, (s - lo) / rng.clamp_min(_EPS), torch.zeros_like(s))
    if how == "softmax":
        e = (s - seg.per_token((s.unsqueeze(-2) + seg.pen_hi).amax(-1))).exp()
        return e / seg.per_token(e @ seg.avg.transpose(0, 1).gt(0).to(e.dtype))
    raise ValueError(f"normalize: found {how!r}; expected 'minmax' or 'softmax'")


def graph_scores(x: torch.Tensor, seg: _Segments, prev: torch.Tensor | None,
                 opts: ScoreOptions) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`evtrack.pruning.scores.ir_scores` as a few ops over the whole token axis (a graph's
    per-map slices, reductions and concatenations are what made the pruned graph slower than the dense
    one): the map means of the map-level spatial terms are one matmul, the per-map min/max one masked
    reduction for both terms. Same values as the torch scorer up to float summation order.
    x [T, B, N, C], prev [B, N] or None (first frame) -> (scores [B, N], last step's channel mean [B, N])."""
    t = x.shape[0]
    f = x.squeeze(0) if t == 1 else x.mean(0)  # [B, N, C] (squeeze, not x[0]: no copy in a graph)
    if opts.spatial in ("global", "deviation"):
        mean = (seg.avg @ f).index_select(1, seg.map_id) if len(seg.maps) > 1 else f.mean(1, keepdim=True)
        if opts.spatial == "deviation":
            sp = (f - mean).square().sum(-1).sqrt()
        else:
            sp = 1.0 - _cosine(f, mean.expand_as(f))
    else:  # neighbourhood terms: per map (their 3x3 windows must not cross maps)
        b, c = f.shape[0], f.shape[2]
        parts = []
        for mp in seg.maps:
            fmap = f[:, mp.offset : mp.offset + mp.n].reshape(b, mp.h, mp.w, c)
            term = (spatial_dissimilarity(fmap, opts.include_center) if opts.spatial == "paper"
                    else spatial_dissimilarity_official(fmap))
            parts.append(term.reshape(b, mp.n))
        sp = torch.cat(parts, -1)
    last = f.mean(-1) if t == 1 else x[-1].mean(-1)  # [B, N]
    if opts.temporal_weight == 0.0:
        return _normalize_maps(sp, seg, opts.normalize), last
    if t == 1:
        tm = last.abs() if prev is None else (last - prev).abs()
    else:
        tm, _ = temporal_change(x, prev)
    both = _normalize_maps(torch.cat([sp, tm]), seg, opts.normalize).reshape(2, *sp.shape)
    if opts.temporal_weight == 1.0:
        return both.sum(0), last  # a + b either way
    return both[0] + opts.temporal_weight * both[1], last


def _rows(x: torch.Tensor) -> torch.Tensor:
    """[T, B, N, ...] -> [N, T*B*...]: the token axis first, so that a scatter copies whole rows."""
    if x.shape[0] * x.shape[1] == 1:
        return x.reshape(x.shape[2], -1)
    return x.movedim(2, 0).reshape(x.shape[2], -1)


def _unrows(r: torch.Tensor, like: torch.Size) -> torch.Tensor:
    """Inverse of :func:`_rows` for a tensor shaped ``like`` with ``r.shape[0]`` tokens."""
    shape = (r.shape[0], *like[:2], *like[3:])
    if like[0] * like[1] == 1:
        return r.reshape(like[0], like[1], r.shape[0], *like[3:])
    return r.reshape(shape).movedim(0, 2)


class _PutRows(torch.autograd.Function):
    """``rows.index_put((idx,), y)`` exported as exactly one ScatterND (torch's own export of ``index_put``
    adds a chain of Shape/Slice/Concat/Reshape nodes computing shapes that are static here)."""

    @staticmethod
    def forward(ctx, rows: torch.Tensor, at: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return rows.index_put((at[:, 0],), y)

    @staticmethod
    def symbolic(g, rows, at, y):
        out = g.op("ScatterND", rows, at, y)
        out.setType(rows.type())
        return out


def _put_rows(rows: torch.Tensor, at: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Copy of rows [N, D] with rows ``at`` [K, 1] (ScatterND's index layout, made once per block) replaced
    by y [K, D]: one ScatterND copying whole rows (ScatterElements, the export of ``scatter``, writes
    element by element and was the costliest op)."""
    return _PutRows.apply(rows, at, y)


class _StoreKV:
    """``kv_cache`` callable of the first frame: keep the keys/values of all tokens as the new state
    (token-major ``[N, T*B*h*d]``, see :class:`_UpdateKV`)."""

    def __init__(self) -> None:
        self.k = self.v = None

    def __call__(self, k: torch.Tensor, v: torch.Tensor):
        self.k, self.v = _rows(k.transpose(2, 3)), _rows(v.transpose(2, 3))
        return k, v


class _UpdateKV:
    """``kv_cache`` callable of later frames: write the kept tokens' keys/values into the state inputs.

    The state is token-major, ``[N, T*B*h*d]`` (the attention's ``[T, B, h, N, d]`` with the token axis
    first), so the update is one row scatter; the transposes between the layouts cancel against the
    attention's own head split in the runtimes' graph optimisers."""

    def __init__(self, k_all: torch.Tensor, v_all: torch.Tensor, at: torch.Tensor) -> None:
        self.k, self.v, self.at = k_all, v_all, at

    def __call__(self, k: torch.Tensor, v: torch.Tensor):
        self.k = _put_rows(self.k, self.at, _rows(k.transpose(2, 3)))
        self.v = _put_rows(self.v, self.at, _rows(v.transpose(2, 3)))
        kt, vt = k.transpose(2, 3), v.transpose(2, 3)
        full_k = _unrows(self.k, (*kt.shape[:2], self.k.shape[0], *kt.shape[3:])).transpose(2, 3)
        full_v = _unrows(self.v, (*vt.shape[:2], self.v.shape[0], *vt.shape[3:])).transpose(2, 3)
        return full_k, full_v


class GraphPrunedStack(nn.Module):
    """:class:`PrunedBlockStack` with its state passed in and out (``state_in`` / ``state_out`` are set by
    :class:`SearchGraph` around one traced call; batch 1).

    Per scored block the graph holds: the scores of all tokens (:func:`graph_scores`, ~20 ops), one TopK
    per pruned map (every k is a Python int: the keep ratios are fixed per graph, so all shapes are
    static), one Gather of the kept tokens, the block, and one row scatter back (plus one per cached
    key/value tensor). The kept tokens are in score order, not token order: every op of a block is
    token-wise or sums over the (cached, token-ordered) keys/values, so the order changes nothing but
    saves a sort per map.
    """

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
        seg = _Segments(maps, x.dtype)
        n = x.shape[2]
        state = list(self.state_in) if self.state_in is not None else None
        out: list[torch.Tensor] = []
        for i, blk in enumerate(self.blocks):
            if i not in self.scored:
                x = blk(x)
                continue
            prev = state.pop(0) if state is not None else None
            ks = map_keep_counts(maps, self.pruned.keep[i], self.pruned.keep_maps)
            if sum(ks) == n:  # every token kept (a ratio close to 1)
                out.append(x[-1].mean(-1))  # the scorer's memory for the next frame
                x = self._run_all(i, blk, x, state, out)
                continue
            scores, last = graph_scores(x, seg, prev, self.opts)
            out.append(last)
            flat = scores.reshape(-1)  # batch 1
            parts = []
            for mp, k in zip(maps, ks, strict=True):
                if k == mp.n:
                    parts.append(torch.arange(mp.offset, mp.offset + mp.n))
                elif len(maps) == 1:
                    parts.append(torch.topk(flat, k).indices)
                else:
                    parts.append(torch.topk(flat[mp.offset : mp.offset + mp.n], k).indices + mp.offset)
            idx = torch.cat(parts) if len(parts) > 1 else parts[0]
            at = idx.unsqueeze(1)  # ScatterND's index layout, shared by every row scatter of this block
            kept = x.index_select(2, idx)
            y = self._run(i, blk, kept, x, at, state, out)
            x = _unrows(_put_rows(_rows(x), at, _rows(y)), x.shape)
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

    def _run(self, i, blk, kept, full, at, state, out) -> torch.Tensor:
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
            cache = _UpdateKV(state.pop(0), state.pop(0), at)
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
