"""Exactness of pruning on the real tracker blocks and the shipped tracker (issue: TP-Spikformer tests)."""

import numpy as np
import pytest
import torch

from evtrack.pruning import PrunedBlockStack, apply_pruning
from evtrack.pruning.scorers import IRScorer
from evtrack.pruning.scores import ScoreOptions, ir_scores
from evtrack.pruning.select import select_indices
from evtrack.tokens import as_maps

registry = pytest.importorskip("evtrack.network.registry")


def trained_like_model(seed=0):
    """tiny with BN set so that the I-LIF neurons fire (random-init BN leaves them silent)."""
    torch.manual_seed(seed)
    m = registry.create_model("tiny").eval()
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
            mod.weight.data.fill_(2.0)
            mod.bias.data.fill_(0.5)
    return m.fuse()


def block_tokens(m, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = torch.rand(1, 1, 3, 64, 64, generator=g) * (torch.rand(1, 1, 3, 64, 64, generator=g) < 0.2)
    x = torch.rand(1, 1, 3, 128, 128, generator=g) * (torch.rand(1, 1, 3, 128, 128, generator=g) < 0.2)
    bb = m.backbone
    with torch.no_grad():
        zf, xf = bb.embed(z), bb.embed(x)
    return torch.cat([zf.flatten(3).transpose(2, 3) + bb.pos_template, xf.flatten(3).transpose(2, 3) + bb.pos_search], 2)


@pytest.mark.parametrize("opts", [ScoreOptions(), ScoreOptions("official", "softmax"), ScoreOptions("paper", "softmax", 0.5)])
def test_real_block_skips_are_bit_identical_and_kept_set_is_topk(opts):
    m = trained_like_model()
    x = block_tokens(m)
    layout = m.backbone.layout
    maps = as_maps(layout)
    stack = m.backbone.block_stack
    blk = stack.blocks[0]
    seen = []
    blk.register_forward_pre_hook(lambda mod, args: seen.append(args[0].clone()))
    pruned = PrunedBlockStack(stack, [0.5, 1.0, 1.0, 1.0], IRScorer(opts, backend="torch"))
    first = PrunedBlockStack(type(stack)([blk]), [0.5], IRScorer(opts, backend="torch"))
    with torch.no_grad():
        y = first(x, layout)
        pruned(x, layout)
    scores, _ = ir_scores(x, maps, None, opts)
    idx = select_indices(scores, maps, 0.5)[0]
    assert idx.numel() == 32 + 128
    kept = torch.zeros(x.shape[2], dtype=torch.bool)
    kept[idx] = True
    # the block really ran on the top-K tokens of the score, gathered into a smaller tensor
    assert seen[0].shape[2] == 160 and torch.equal(seen[0], x[:, :, idx])
    for mp in maps:  # per map: every kept score >= every skipped score
        sl = slice(mp.offset, mp.offset + mp.h * mp.w)
        s, k = scores[0, sl], kept[sl]
        assert s[k].min() >= s[~k].max()
    # skipped tokens: bit-identical to the block input; kept tokens: the block's output on the subset
    assert torch.equal(y[:, :, ~kept], x[:, :, ~kept])
    with torch.no_grad():
        ref = blk(x[:, :, idx])
    assert torch.equal(y[:, :, idx], ref)
    assert not torch.equal(y[:, :, idx], x[:, :, idx])


@pytest.mark.parametrize("spatial, normalize", [("paper", "minmax"), ("official", "softmax"), ("official", "minmax"), ("global", "minmax")])
def test_numba_and_torch_scorers_prune_the_real_model_identically(spatial, normalize):
    m = trained_like_model()
    x = block_tokens(m, seed=1)
    outs, tokens = [], []
    for backend in ("torch", "numba"):
        apply_pruning(m, "default", backend=backend, spatial=spatial, normalize=normalize)
        with torch.no_grad():
            outs.append(m.backbone.block_stack(x, m.backbone.layout))
        tokens.append(m.backbone.block_stack.last_tokens)
    assert tokens[0] == tokens[1]
    assert torch.equal(outs[0], outs[1])


@pytest.fixture(scope="module")
def sample():
    from evtrack.commands.demo import load_sample

    seq = load_sample()
    with seq.open() as reader:
        slices = list(reader.slices(__import__("evtrack.datasets.sequence", fromlist=["x"]).interval_edges(
            seq.frame_timestamps_us)))
    return seq, slices


def run_tracker(tracker, seq, slices, n=20):
    from evtrack.datasets.sequence import interval_edges

    edges = interval_edges(seq.frame_timestamps_us)
    boxes = []
    for i in range(n):
        t0, t1 = int(edges[i]), int(edges[i + 1])
        if i == 0:
            r = tracker.init(slices[0], seq.init_box, sensor_size=(260, 346), t0_us=t0, t1_us=t1)
        else:
            r = tracker.update(slices[i], t0_us=t0, t1_us=t1)
        boxes.append(r.box)
    return np.array(boxes), tracker.stats()


def test_shipped_tracker_keep_one_is_exactly_dense_and_pruning_cuts_transformer_sops(sample):
    from evtrack.tracker.online import load_tracker

    seq, slices = sample
    plain, _ = run_tracker(load_tracker(None), seq, slices)
    dense_boxes, dense = run_tracker(load_tracker(None, keep="1.0", count_ops=True, count_every=1), seq, slices)
    np.testing.assert_array_equal(dense_boxes, plain)  # keep 1.0 (and op counting) change nothing
    assert dense["pruning"] is None and dense["tokens_kept_frac"] == 1.0 and dense["ops_frames"] == 19
    tr = load_tracker(None, keep="default", count_ops=True, count_every=1)
    _, pruned = run_tracker(tr, seq, slices)
    blocks = tr._counter.summary()["blocks"]
    assert pruned["tokens_kept_frac"] == pytest.approx(673 / 1280)  # default schedule on tiny: 53% of tokens
    # the default (skipped tokens' keys/values cached) attends over every token, so it saves a little less
    assert pruned["transformer_sops"] < 0.7 * dense["transformer_sops"]
    plain_tr = load_tracker(None, keep="default", count_ops=True, count_every=1)
    from evtrack.pruning import apply_pruning

    apply_pruning(plain_tr.model, "default", cached_kv=False)
    _, plain_stats = run_tracker(plain_tr, seq, slices)
    assert plain_stats["transformer_sops"] < min(0.6 * dense["transformer_sops"], pruned["transformer_sops"])
    assert pruned["macs"] == dense["macs"]  # only the stem conv on the event frame is a MAC layer
    assert pruned["energy_mj"] == pytest.approx((4.6 * pruned["macs"] + 0.9 * pruned["sops"]) * 1e-9)
    assert all(b["tokens"] < 320 for b in blocks.values())
    # sampled counting (every 4th call) estimates the same per-frame figures
    _, sampled = run_tracker(load_tracker(None, keep="default", count_ops=True, count_every=4), seq, slices)
    assert sampled["ops_frames"] == 5
    assert sampled["transformer_sops"] == pytest.approx(pruned["transformer_sops"], rel=0.1)
