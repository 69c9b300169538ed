"""Folding the I-LIF's 1/D into the layers it feeds (``fuse()``, issue 18): the neurons emit integer counts,
the outputs stay bit-identical (D = 4 is a power of two), op counts are unchanged, and the exported graphs
lose their ``Div`` nodes."""

from __future__ import annotations

import collections
import copy

import pytest
import torch

from evtrack.metrics.ops import count_ops
from evtrack.network.checkpoint import load_checkpoint, model_from_payload
from evtrack.network.layers import fold_spike_scale
from evtrack.network.neurons import ILIF
from evtrack.network.registry import model_config
from evtrack.pruning import apply_pruning
from evtrack.shipped import resolve_checkpoint

from .test_architectures import active as firing


def shipped(fold: bool):
    payload = load_checkpoint(resolve_checkpoint("tiny"))
    return model_from_payload(payload, source="tiny").fuse(fold_spikes=fold)


def active(name="tiny", seed=0, **overrides):
    """A random network whose BN makes the neurons fire (eval mode, not fused)."""
    return firing(model_config(name, **overrides), seed)


def crops(cfg, n=3, seed=0):
    """Sparse event-like crops (most pixels empty), brighter each frame so that spike counts vary."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        z = torch.rand(1, 3, cfg.template_size, cfg.template_size, generator=g)
        x = torch.rand(1, 3, cfg.search_size, cfg.search_size, generator=g)
        mz = torch.rand(z.shape, generator=g) < 0.3
        mx = torch.rand(x.shape, generator=g) < 0.3
        out.append((z * mz * (1 + i), x * mx * (1 + i)))
    return out


def run(model, frames):
    """Track-like: template features once, then the search frames in order (pruning state carried)."""
    outs = []
    with torch.no_grad():
        z_feat = model.embed_template(frames[0][0])
        for _, x in frames:
            outs.append(model(None, x, z_feat=z_feat))
    return outs


def assert_identical(a, b):
    for ra, rb in zip(a, b, strict=True):
        for k in ra:
            assert torch.equal(ra[k], rb[k]), k


def test_counts_neuron_is_the_scaled_one():
    x = torch.randn(3, 2, 5, 7) * 3
    n = ILIF(4)
    ref = n(x)
    n.counts = True
    assert torch.equal(n(x), ref * 4) and torch.equal(n(x[:1]), ref[:1] * 4)
    assert n.spike_unit == 1.0 and n.spike_levels == 4


def test_counts_neuron_straight_through_gradient():
    x = torch.tensor([-0.5, 0.3, 2.2, 4.5], requires_grad=True)
    n = ILIF(4)
    n.counts = True
    n(x[None]).sum().backward()
    assert torch.equal(x.grad, torch.tensor([0.0, 1.0, 1.0, 0.0]))


@pytest.mark.parametrize("keep", [None, "default"])
def test_shipped_fold_is_bit_identical(keep):
    ref, got = shipped(False), shipped(True)
    assert got.spikes_folded and not ref.spikes_folded
    neurons = [m for m in got.modules() if isinstance(m, ILIF)]
    assert neurons and all(m.counts for m in neurons)
    if keep:
        apply_pruning(ref, keep)
        apply_pruning(got, keep)
    frames = crops(ref.cfg, 4)
    a, b = run(ref, frames), run(got, frames)
    assert_identical(a, b)
    assert a[-1]["score"].std() > 0  # the network is not silent on these inputs


@pytest.mark.parametrize("keep", [None, "default"])
def test_random_multistep_fold_is_bit_identical(keep):
    """Two time steps (the membrane carried between them) and a random network with firing neurons."""
    ref = active(time_steps=2).fuse(fold_spikes=False)
    got = copy.deepcopy(ref)
    assert fold_spike_scale(got)
    if keep:
        apply_pruning(ref, keep)
        apply_pruning(got, keep)
    frames = crops(ref.cfg, 3, seed=1)
    a = run(ref, frames)
    assert_identical(a, run(got, frames))
    assert a[-1]["score"].std() > 0


@pytest.mark.parametrize("keep", [None, "default"])
def test_op_counts_unchanged_by_the_fold(keep):
    ref, got = shipped(False), shipped(True)
    if keep:
        apply_pruning(ref, keep)
        apply_pruning(got, keep)
    frames = crops(ref.cfg, 2)
    summaries = []
    for m in (ref, got):
        with torch.no_grad():
            z_feat = m.embed_template(frames[0][0])
            with count_ops(m) as c:
                for _, x in frames:
                    m(None, x, z_feat=z_feat)
        summaries.append(c.summary())
    a, b = summaries
    assert a["sops"] > 0 and a["transformer_sops"] > 0
    assert a == b


@pytest.mark.parametrize("name", ["spikformer-ilif", "qkformer-ilif", "sdt-v1-ilif"])
def test_fold_is_all_or_nothing(name):
    """Blocks whose spikes feed residual sums or gates declare no fold: the model keeps every 1/D."""
    m = active(name, search_size=64, template_size=32, min_search_crop_px=0.0, head_channels=16).fuse()
    assert not m.spikes_folded
    assert not any(isinstance(n, ILIF) and n.counts for n in m.modules())


def _ops(path) -> collections.Counter:
    import onnx

    return collections.Counter(n.op_type for n in onnx.load(str(path)).graph.node)


def test_exported_graphs_have_no_neuron_divisions(tmp_path):
    pytest.importorskip("onnx")
    import onnx

    from evtrack.runtime.export import write_graphs
    from evtrack.tracker.online import load_network, shipped_checkpoint

    dense = write_graphs(load_network(shipped_checkpoint())[0], tmp_path / "dense")
    assert _ops(dense / "search.onnx")["Div"] == 0 and _ops(dense / "template.onnx")["Div"] == 0
    pruned = write_graphs(load_network(shipped_checkpoint(), "default")[0], tmp_path / "pruned")
    for name in ("search.onnx", "search_init.onnx"):
        divs = [n.name for n in onnx.load(str(pruned / name)).graph.node if n.op_type == "Div"]
        assert not [d for d in divs if "/blocks." in d], divs  # only the scorer's normalisation divides


@pytest.mark.parametrize("fold", [False, True])
def test_single_step_conv_and_head_path_is_bit_identical(fold):
    """With T = 1 the conv stages and the head run on [B, C, H, W] (no reshapes around each conv in a graph);
    the time-major path gives the same bits."""
    m = shipped(fold)
    head = m.head
    g = torch.Generator().manual_seed(3)
    x = torch.rand(1, 2, 3, 128, 128, generator=g) * (torch.rand(1, 2, 3, 128, 128, generator=g) < 0.3) * 3
    with torch.no_grad():
        feat = m.backbone.conv(x)
        assert torch.equal(feat, m.backbone.conv.layers(x))  # nn.Sequential of the [T, B, ...] forwards
        feat = feat.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)  # channels-last, as from the tokens
        got = head(feat)
        y = head.s2(head.conv2(head.s1(head.conv1(head.s0(feat)))))
        ref = head.out(y.flatten(0, 1)).unflatten(0, y.shape[:2]).mean(0)
    assert torch.equal(got["score"], ref[:, 0])
    assert torch.equal(got["offset"], torch.sigmoid(ref[:, 1:3])) and torch.equal(got["size"], torch.sigmoid(ref[:, 3:5]))


def test_dense_graph_has_no_reshapes_in_the_conv_stages(tmp_path):
    pytest.importorskip("onnx")
    import onnx

    from evtrack.runtime.export import write_graphs
    from evtrack.tracker.online import load_network, shipped_checkpoint

    folder = write_graphs(load_network(shipped_checkpoint())[0], tmp_path / "dense")
    for name in ("search.onnx", "template.onnx"):
        nodes = onnx.load(str(folder / name)).graph.node
        assert not [n.name for n in nodes if n.op_type == "Reshape" and ("/conv/" in n.name or "/head/" in n.name)]
