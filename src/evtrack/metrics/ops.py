"""Operation and energy accounting for integer-spike networks: SOPs, MACs, tokens, energy.

Every linear layer, convolution and matrix product is intercepted at the torch-function level (a
``TorchFunctionMode``, so functional matmuls inside attention are counted as well as Conv/Linear
layers, and it works under ``torch.inference_mode``, which hides ops from dispatch modes). An operand is
a *spike tensor* when all its values are integer multiples of ``1/levels`` in ``[0, 1]``
(I-LIF outputs ``count / D``; ``levels`` = D, read from the neurons' ``spike_levels`` attribute), or,
in a network whose neurons emit the integer counts themselves (``spike_unit`` 1: the 1/D folded into
the weights by ``fuse()``, ``evtrack.network.layers.fold_spike_scale``), integers in ``[0, D]``. Then:

- SOP (synaptic accumulate): each unit spike reaching a weight counts once, so a spike of count c
  into a layer of fan-out F is c * F accumulates (exact for convolutions, borders included);
- otherwise MAC: the dense multiply-accumulate count (the first conv on the event frame, heads).

spikingjelly's ``SynOpCounter`` only recognises binary {0, 1} spikes, so integer spikes would be
counted as zero there; this module applies the integer rule instead.

Energy (45 nm figures used by SDT/SDTrack): ``E = T * (MAC * 4.6 pJ + SOP * 0.9 pJ)`` with MAC and
SOP per time step, which equals ``4.6 pJ * MACs + 0.9 pJ * SOPs`` summed over all time steps, as
counted here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

E_MAC_PJ = 4.6
E_SOP_PJ = 0.9


def spike_count(x: torch.Tensor, levels: int, unit: float | None = None) -> float | None:
    """Total unit spikes in x if x is a spike tensor (values k * unit, k in 0..levels; ``unit`` default
    1/levels), else None."""
    r = _spike_counts(x, levels, unit)
    return None if r is None else float(r.sum(dtype=torch.float64))


def _spike_counts(x: torch.Tensor, levels: int, unit: float | None = None) -> torch.Tensor | None:
    """round(x / unit) if every value of x is k * unit with k in 0..levels (else None); ``unit`` None:
    1/levels.

    Fast path: I-LIF outputs are exact multiples of 1/D in floating point, so ``x * D`` equals its
    rounding bit for bit; otherwise a tolerant check (other neurons' divisions may be inexact).
    """
    if not x.is_floating_point() or x.numel() == 0:
        return None
    y = x.detach() * (levels if unit is None else 1.0 / unit)
    r = torch.round(y)
    if not torch.equal(r, y) and not bool(((y.double() - r.double()).abs() <= 1e-6 * levels).all()):
        return None
    lo, hi = torch.aminmax(r)
    if lo < 0 or hi > levels:
        return None
    return r


def _as_matrix_batch(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return (a[None] if a.dim() == 1 else a), (b[:, None] if b.dim() == 1 else b)


def _mm_ops(a: torch.Tensor, b: torch.Tensor, out_numel: int, count) -> tuple[float, float]:
    """(sops, macs) of a [..., n, m] @ b [..., m, p] (with broadcasting over the batch dims)."""
    a, b = _as_matrix_batch(a, b)
    n, m, p = a.shape[-2], a.shape[-1], b.shape[-1]
    batch = max(out_numel // max(n * p, 1), 1)
    ca = count(a)
    if ca is not None:
        return ca * p * (batch / max(a.numel() // max(n * m, 1), 1)), 0.0
    cb = count(b)
    if cb is not None:
        return cb * n * (batch / max(b.numel() // max(m * p, 1), 1)), 0.0
    return 0.0, float(batch * n * m * p)


def _linear_ops(x: torch.Tensor, w: torch.Tensor, count) -> tuple[float, float]:
    fan_out, fan_in = w.shape[0], w.shape[-1]
    c = count(x)
    if c is not None:
        return c * fan_out, 0.0
    return 0.0, float(x.numel() // fan_in * fan_in * fan_out)


@lru_cache(maxsize=512)
def _reach_1d(n_in: int, k: int, stride: int, pad: int, dil: int, n_out: int) -> tuple[int, ...]:
    """How many output positions of a 1-D convolution each input position feeds (borders included)."""
    reach = [0] * n_in
    for o in range(n_out):
        for j in range(k):
            i = o * stride - pad + j * dil
            if 0 <= i < n_in:
                reach[i] += 1
    return tuple(reach)


@lru_cache(maxsize=256)
def _reach_nd(axes: tuple[tuple[int, ...], ...]) -> torch.Tensor:
    """Outer product of the per-axis reaches (the kernel window is a full box). Do not modify."""
    with torch.inference_mode(False):
        reach = torch.ones((), dtype=torch.float64)
        for geometry in axes:
            reach = reach[..., None] * torch.tensor(_reach_1d(*geometry), dtype=torch.float64)
    return reach


def _tuple(v, n: int) -> tuple[int, ...]:
    return tuple(v) if isinstance(v, list | tuple) else (int(v),) * n


def _conv_ops(x, w, stride, padding, dilation, groups, out: torch.Tensor, levels: int | None,
              unit: float | None = None) -> tuple[float, float]:
    """(sops, macs) of a convolution; ``levels`` None counts the input as dense."""
    nd = w.dim() - 2
    fan_in = w.shape[1] * w[0, 0].numel()
    counts = _spike_counts(x, levels, unit) if levels else None
    if counts is None:
        return 0.0, float(out.numel() * fan_in)
    # Exact accumulates: an input spike at position p reaches reach(p) output positions (separable
    # over the axes, borders and strides included) in each of the cout / groups output channels of
    # its group, so SOPs = cout/groups * sum_p reach(p) * (spike count at p summed over channels).
    per_pos = counts.sum(dim=tuple(range(counts.dim() - nd)), dtype=torch.float64)  # [*spatial]
    if isinstance(padding, str):  # "same" / "valid": let torch work out the geometry
        ones_in = torch.ones((1, 1, *per_pos.shape), dtype=torch.float64)
        ones_k = torch.ones((1, 1, *w.shape[2:]), dtype=torch.float64)
        conv_t = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[nd]
        # reach = how many outputs each input feeds: gradient of sum(conv(input)) w.r.t. input
        with torch.inference_mode(False), torch.enable_grad():
            inp = ones_in.clone().requires_grad_(True)
            conv_t(inp, ones_k.clone(), None, stride, padding, dilation).sum().backward()
            reach = inp.grad[0, 0].detach()
    else:
        st, pd, dl = _tuple(stride, nd), _tuple(padding, nd), _tuple(dilation, nd)
        reach = _reach_nd(tuple(
            (per_pos.shape[a], w.shape[2 + a], st[a], pd[a], dl[a], out.shape[out.dim() - nd + a]) for a in range(nd)
        ))
    return float((per_pos * reach).sum()) * (w.shape[0] // groups), 0.0


def _arg(args, kwargs, i, name, default):
    return args[i] if len(args) > i else kwargs.get(name, default)


_MATMULS = {torch.matmul, torch.Tensor.__matmul__, torch.mm, torch.bmm, torch.Tensor.matmul, torch.Tensor.mm,
            torch.Tensor.bmm}
_ADDMMS = {torch.addmm, torch.baddbmm}
_CONVS = {F.conv1d, F.conv2d, F.conv3d}


class _Mode(TorchFunctionMode):
    """Counts at the torch-function level, so it also works under ``torch.inference_mode``."""

    def __init__(self, counter: OpCounter):
        super().__init__()
        self.counter = counter
        self.memo: dict[int, tuple] = {}  # id -> (tensor, version, count): q, k, v share one input

    def count(self, x: torch.Tensor) -> float | None:
        """spike_count(x) memoised per tensor object (cleared after every counted forward); None when
        the counter counts everything as dense."""
        if self.counter.dense:
            return None
        try:
            version = x._version
        except RuntimeError:  # inference tensors have no version counter (and are never modified)
            version = None
        hit = self.memo.get(id(x))
        if hit is not None and hit[0] is x and hit[1] == version:
            return hit[2]
        c = spike_count(x, self.counter.levels, self.counter.unit)
        self.memo[id(x)] = (x, version, c)  # holding x keeps its id from being reused
        return c

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        lv = None if self.counter.dense else self.counter.levels
        try:
            if func is F.linear:
                self.counter._add(*_linear_ops(args[0], _arg(args, kwargs, 1, "weight", None), self.count))
            elif func in _CONVS:
                w = _arg(args, kwargs, 1, "weight", None)
                ops = _conv_ops(
                    args[0], w, _arg(args, kwargs, 3, "stride", 1), _arg(args, kwargs, 4, "padding", 0),
                    _arg(args, kwargs, 5, "dilation", 1), _arg(args, kwargs, 6, "groups", 1), out, lv,
                    self.counter.unit,
                )
                self.counter._add(*ops)
            elif func in _MATMULS:
                self.counter._add(*_mm_ops(args[0], args[1], out.numel(), self.count))
            elif func in _ADDMMS:
                self.counter._add(*_mm_ops(args[1], args[2], out.numel(), self.count))
        except (IndexError, AttributeError, TypeError):  # an unusual call form: count nothing, never fail
            pass
        return out


def _detect_levels(model: nn.Module) -> int:
    levels = [int(m.spike_levels) for m in model.modules() if hasattr(m, "spike_levels")]
    return max(levels) if levels else 1


def _detect_unit(model: nn.Module) -> float | None:
    """1 when the model's neurons emit integer counts (a spike-folded network), else None (1 / levels)."""
    counts = any(float(getattr(m, "spike_unit", 0.0)) == 1.0 and int(m.spike_levels) > 1
                 for m in model.modules() if hasattr(m, "spike_levels"))
    return 1.0 if counts else None


def _default_blocks(model: nn.Module) -> dict[str, nn.Module]:
    """The blocks of the model's token stack (``evtrack.tokens``; a pruned stack reuses the dense one's
    blocks), none for a model without that seam."""
    token_stack = getattr(model, "token_stack", None)
    blocks = getattr(token_stack(), "blocks", ()) if callable(token_stack) else ()
    return {f"block{i}": b for i, b in enumerate(blocks)}


class OpCounter:
    """Counts SOPs, MACs and tokens of every forward of ``model`` while active.

    Args:
        model: the network (its forward calls count as frames).
        levels: spike quantisation D (None: the largest ``spike_levels`` of the model's neurons, else 1).
        unit: the value of one spike (None: 1 when the model's neurons emit integer counts, their
            ``spike_unit``, else 1 / levels).
        blocks: name -> module whose ops and input token counts are reported separately
            (default: the blocks of the model's token stack, ``evtrack.tokens``).
        dense: count every operand as dense (all MACs, no SOPs): what the network costs without spikes,
            e.g. to see how much of a frame the transformer is (``evtrack model-info``).
    """

    def __init__(self, model: nn.Module, levels: int | None = None, blocks: Mapping[str, nn.Module] | None = None,
                 *, dense: bool = False, unit: float | None = None):
        self.model = model
        self.dense = bool(dense)
        self.levels = int(levels) if levels is not None else _detect_levels(model)
        self.unit = float(unit) if unit is not None else _detect_unit(model)
        self.blocks = dict(blocks) if blocks is not None else _default_blocks(model)
        self._hooks: list = []
        self._stack: list[str] = []
        self.reset()

    def reset(self) -> None:
        self.frames = 0
        self.samples = 0
        self.time_steps = 0
        self.sops: dict[str, float] = defaultdict(float)
        self.macs: dict[str, float] = defaultdict(float)
        self.tokens: dict[str, float] = defaultdict(float)  # tokens processed per block, summed over samples

    def _add(self, sops: float, macs: float) -> None:
        scope = self._stack[-1] if self._stack else "other"
        self.sops[scope] += sops
        self.macs[scope] += macs

    def _install(self) -> None:
        def root_pre(mod, args):
            self.frames += 1

        def root_post(mod, args, out):
            mode = getattr(self, "_mode", None)
            if mode is not None:
                mode.memo.clear()  # release the frame's tensors

        self._hooks.append(self.model.register_forward_pre_hook(root_pre))
        self._hooks.append(self.model.register_forward_hook(root_post))
        for name, blk in self.blocks.items():

            def pre(mod, args, _name=name):
                self._stack.append(_name)
                x = args[0] if args else None
                if torch.is_tensor(x) and x.dim() == 4:  # [T, B, N, C]
                    self.tokens[_name] += x.shape[1] * x.shape[2]
                    self._tb = (x.shape[0], x.shape[1])

            def post(mod, args, out, _name=name):
                if self._stack and self._stack[-1] == _name:
                    self._stack.pop()

            self._hooks.append(blk.register_forward_pre_hook(pre))
            self._hooks.append(blk.register_forward_hook(post))

    def __enter__(self) -> OpCounter:
        self._tb = (1, 1)
        self._install()
        self._mode = _Mode(self)
        self._mode.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._mode.__exit__(*exc)
        self._mode.memo.clear()
        for h in self._hooks:
            h.remove()
        self._hooks = []
        self._stack = []

    def summary(self) -> dict:
        """Totals and per-frame averages; ``blocks`` lists each block's tokens (per sample), SOPs, MACs."""
        frames = max(self.frames, 1)
        t_steps, batch = self._tb
        per_sample = max(frames * batch, 1)
        blocks = {
            name: {
                "tokens": self.tokens[name] / per_sample,
                "sops": self.sops[name] / frames,
                "macs": self.macs[name] / frames,
            }
            for name in self.blocks
        }
        total_sops = sum(self.sops.values())
        total_macs = sum(self.macs.values())
        block_sops = sum(self.sops[n] for n in self.blocks)
        energy_pj = E_MAC_PJ * total_macs + E_SOP_PJ * total_sops
        return {
            "frames": self.frames,
            "time_steps": t_steps,
            "spike_levels": self.levels,
            "sops": total_sops / frames,
            "macs": total_macs / frames,
            "transformer_sops": block_sops / frames,
            "tokens": sum(b["tokens"] for b in blocks.values()),
            "energy_mj": energy_pj * 1e-9 / frames,
            "blocks": blocks,
        }


@contextmanager
def count_ops(model: nn.Module, levels: int | None = None, blocks: Mapping[str, nn.Module] | None = None, *,
              dense: bool = False) -> Iterator[OpCounter]:
    """``with count_ops(model) as c: model(...)`` then ``c.summary()`` (per-frame averages)."""
    counter = OpCounter(model, levels, blocks, dense=dense)
    with counter:
        yield counter
