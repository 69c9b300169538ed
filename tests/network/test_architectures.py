"""Every registered architecture (timm-style loop): build small, track-forward, prune, count ops, save/load.

BN is set so that neurons fire (a random-init network is almost silent), as in tests/pruning/fakes.py.
"""

import dataclasses
import json

import numpy as np
import pytest
import torch

from evtrack.cli import main
from evtrack.errors import UserError
from evtrack.io.events import make_events
from evtrack.metrics.ops import count_ops
from evtrack.network.checkpoint import load_checkpoint, load_model, save_checkpoint
from evtrack.network.registry import build_model, list_architectures, list_models, model_config
from evtrack.pruning import (
    PrunedBlockStack,
    apply_checkpoint_pruning,
    apply_pruning,
    parse_keep,
    prunable_stages,
)
from evtrack.tokens import block_input_tokens
from evtrack.tracker.online import Tracker

# search 64 px / template 32 px (stride 8 or 16: maps stay >= 2x2), two time steps, narrow stages
SMALL = dict(search_size=64, template_size=32, min_search_crop_px=0.0, head_channels=16, time_steps=2)


def small_config(arch: str):
    """The first registered config of ``arch``, shrunk (keeps its stages, neuron and attention kinds)."""
    names = [n for n in list_models() if model_config(n).architecture == arch]
    assert names, f"architecture {arch!r} has no registered config"
    cfg = model_config(names[0], **SMALL)
    dims = tuple(16 * (i + 1) for i in range(len(cfg.stage_dims)))
    depths = tuple(min(d, 2) for d in cfg.stage_depths)
    return dataclasses.replace(cfg, stage_dims=dims, stage_depths=depths, heads=2,
                               conv_channels=(8,) * (len(cfg.conv_channels) - 1) + (16,))


def active(cfg, seed=0):
    torch.manual_seed(seed)
    m = build_model(cfg).eval()
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
            mod.weight.data.fill_(2.0)
            mod.bias.data.fill_(0.5)
    return m


def frames(cfg, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = torch.rand(batch, 3, cfg.template_size, cfg.template_size, generator=g)
    return z, torch.rand(batch, 3, cfg.search_size, cfg.search_size, generator=g)


ARCHS = list_architectures()


def test_the_seed_backbones_are_registered():
    assert {"sdtrack", "spikformer", "sdt-v1", "qkformer"} <= set(ARCHS)
    for name in ("tiny", "spikformer", "sdt-v1", "qkformer"):
        n = sum(p.numel() for p in build_model(model_config(name)).parameters())
        assert 0.5e6 <= n <= 1.5e6, (name, n)


@pytest.mark.parametrize("arch", ARCHS)
def test_forward_prune_count_and_checkpoint(arch, tmp_path):
    cfg = small_config(arch)
    m = active(cfg)
    z, x = frames(cfg)
    side = cfg.search_feat
    with torch.no_grad():
        dense = m(z, x)
        assert dense["score"].shape == (2, side, side) and dense["size"].shape == (2, 2, side, side)
        with count_ops(m) as c:
            m(z, x)
        d_ops = c.summary()
        apply_pruning(m, "1.0")
        same = m(z, x)
        assert all(torch.equal(dense[k], same[k]) for k in dense)
        for keep in ("default", "0.8", "0.5"):
            apply_pruning(m, keep)
            assert isinstance(m.token_stack(), PrunedBlockStack)
            with count_ops(m) as c:
                out = m(z, x)
            p_ops = c.summary()
            assert {k: v.shape for k, v in out.items()} == {k: v.shape for k, v in dense.items()}
            assert p_ops["tokens"] < d_ops["tokens"], keep
            assert 0 < p_ops["transformer_sops"] < d_ops["transformer_sops"], keep
    assert d_ops["spike_levels"] == (1 if cfg.neuron == "lif" else cfg.max_value)
    assert d_ops["transformer_sops"] > 0 and d_ops["sops"] > d_ops["transformer_sops"]
    apply_pruning(m, "default")
    path = save_checkpoint(tmp_path / f"{arch}.pt", m)
    loaded = apply_checkpoint_pruning(load_model(path).eval(), load_checkpoint(path).get("pruning"))
    assert loaded.pruning == m.pruning and type(loaded.token_stack()) is PrunedBlockStack
    with torch.no_grad():
        a, b = m(z, x), loaded(z, x)
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("arch", ARCHS)
def test_training_step_reaches_every_block(arch):
    cfg = small_config(arch)
    m = active(cfg).train()
    apply_pruning(m, "default")
    z, x = frames(cfg)
    out = m(z, x)
    (out["score"].square().mean() + out["size"].mean()).backward()
    for i, blk in enumerate(m.token_stack().blocks):
        grads = [p.grad for p in blk.parameters() if p.grad is not None]
        assert grads and any(g.abs().sum() > 0 for g in grads), (arch, i)


def test_qkformer_two_stages_change_the_token_count():
    cfg = small_config("qkformer")
    assert len(cfg.stage_dims) == 2 and cfg.merge_stages
    m = active(cfg)
    z, x = frames(cfg, batch=1)
    lay = m.token_layout
    n0 = lay.n_tokens
    n1 = sum(((t.h + 1) // 2) * ((t.w + 1) // 2) for t in lay.maps)
    assert prunable_stages(m) == [2, 2]
    assert block_input_tokens(m.token_stack().blocks, lay) == [n0, n0, n0, n1, n1]
    with torch.no_grad(), count_ops(m) as c:
        m(z, x)
    assert [b["tokens"] for b in c.summary()["blocks"].values()] == [n0, n0, n0, n1, n1]
    with torch.no_grad():
        apply_pruning(m, "1.0/0.5")  # per stage: stage 1 dense, stage 2 at half its tokens
        m(z, x)
        assert m.token_stack().last_tokens == [n0, n0, n0, n1 // 2, n1 // 2]  # the merge reads n0
        assert m.pruning["keep"] == [1.0, 1.0, 0.5, 0.5]
        apply_pruning(m, "0.5/1.0", mode="cumulative")
        m(z, x)
        assert m.token_stack().last_tokens == [n0 // 2, n0 // 2, n0, n1, n1]
    with pytest.raises(UserError, match="per-stage schedules"):
        apply_pruning(m, "0.5/0.5/0.5")


def test_per_stage_keep_text():
    assert parse_keep("1.0/0.5", 5, [2, 3]) == [1.0, 1.0, 0.5, 0.5, 0.5]
    assert parse_keep("0.9,0.8/default", 4, [2, 2])[:2] == [0.9, 0.8]
    with pytest.raises(UserError, match="expected one per stage"):
        parse_keep("0.5/0.5", 4, [4])


def test_pruning_variants_follow_the_block_attributes():
    """Key/value cache where the attention has keys/values (Spikformer's SSA), plain early stopping
    elsewhere; N/K compensation needs a token sum (not QKFormer's token-wise attention)."""
    want = {"spikformer": True, "sdt-v1": False, "qkformer": False, "sdtrack": True}
    for arch, cached in want.items():
        m = active(small_config(arch))
        apply_pruning(m, "default")
        assert m.pruning["cached_kv"] is cached, arch
        apply_pruning(m, "0.5", full_kv=True)  # every block takes a context
    cfg = small_config("qkformer")  # stage 1 Q-K token attention (token-wise), stage 2 channel attention
    m = active(cfg)
    z, x = frames(cfg, batch=1)
    seen = []
    first_channel = m.token_stack().blocks[3]  # after 2 token-wise blocks and the merge: same input both runs
    first_channel.attn.s_mask.register_forward_pre_hook(lambda mod, a: seen.append(a[0].clone()))
    with torch.no_grad():
        apply_pruning(m, "0.5", cached_kv=False)
        m(z, x)
        apply_pruning(m, "0.5", compensate=True)  # token-wise blocks need none, channel sums get N/K
        m(z, x)
    assert torch.allclose(seen[1], seen[0] * 2.0) and seen[0].abs().sum() > 0
    m = active(dataclasses.replace(cfg, stage_attention=("qk_channel", "qk_channel")))
    del m.token_stack().blocks[0].attn.token_scale  # a summing block without the attribute is refused
    with pytest.raises(UserError, match="token_scale"):
        apply_pruning(m, "0.5", compensate=True)


def test_full_kv_is_exact_for_token_wise_attention():
    """QKFormer's token attention is token-wise: with full_kv the kept tokens' outputs are the dense
    ones, so pruning only stage 1 with full_kv changes only the skipped tokens' features."""
    cfg = dataclasses.replace(small_config("qkformer"), stage_attention=("qk_token", "qk_token"))
    m = active(cfg)
    z, x = frames(cfg, batch=1)
    stack = m.token_stack()
    with torch.no_grad():
        tokens = m.backbone.tokens(m.embed_template(z), m.embed_search(x))
        dense = stack.blocks[0](tokens)
        apply_pruning(m, "0.5/1.0", full_kv=True)
        pruned = m.token_stack()
        kept = pruned.blocks[0](tokens[:, :, :7], context=tokens)
    assert torch.equal(kept, dense[:, :, :7])


def test_neuron_is_config_data():
    cfg = dataclasses.replace(small_config("sdt-v1"), neuron="ilif", time_steps=1)
    m = active(cfg)
    z, x = frames(cfg)
    with torch.no_grad(), count_ops(m) as c:
        m(z, x)
    assert c.summary()["spike_levels"] == 4 and c.summary()["transformer_sops"] > 0
    with pytest.raises(UserError, match="neuron"):
        dataclasses.replace(cfg, neuron="izhikevich")


@pytest.mark.parametrize("name", ["spikformer", "sdt-v1", "qkformer"])
def test_model_info_cli(name, capsys):
    assert main(["model-info", "--config", name, "--runs", "1", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["config"] == name and info["architecture"] == model_config(name).architecture
    assert info["neuron"] == "lif" and info["time_steps"] == 4 and 0.5e6 <= info["params"]["total"] <= 1.5e6
    assert info["dense_macs"]["transformer"] > 0 and info["latency_ms_median"] > 0


def square_events(i: int, rng) -> np.ndarray:
    """Events of a 16 px square at x = 40 + 3i, y = 30 during frame i (40 ms)."""
    n = 600
    x0 = 40 + 3 * i
    t = np.sort(rng.integers(i * 40_000, (i + 1) * 40_000, n))
    return make_events(t, rng.integers(x0, x0 + 16, n), rng.integers(30, 46, n), rng.integers(0, 2, n))


@pytest.mark.parametrize("arch", ARCHS)
def test_online_tracking_pruned(arch):
    """The online tracker runs every backbone token-pruned (key/value cache where the blocks have one),
    with op counting."""
    rng = np.random.default_rng(1)
    m = active(small_config(arch))
    apply_pruning(m, "default")
    tracker = Tracker(m, sensor_size=(96, 128), count_ops=True, count_every=1)
    tracker.init(square_events(0, rng), [40.0, 30.0, 16.0, 16.0])
    boxes = [tracker.update(square_events(i, rng)).box for i in range(1, 5)]
    stats = tracker.stats()
    assert np.isfinite(boxes).all() and stats["frames"] == 4
    assert 0 < stats["tokens_kept_frac"] < 1 and stats["transformer_sops"] > 0


@pytest.mark.parametrize("arch", ARCHS)
def test_blocks_give_kept_tokens_their_dense_outputs_with_context(arch):
    """The seam's promise for `accepts_context` blocks: run on any token subset with the full token set as
    context, the kept tokens get exactly their dense outputs."""
    cfg = small_config(arch)
    m = active(cfg)
    z, x = frames(cfg, batch=1)
    with torch.no_grad():
        tokens = m.backbone.tokens(m.embed_template(z), m.embed_search(x))
        blk = next(b for b in m.token_stack().blocks if getattr(b, "accepts_context", False))
        idx = torch.arange(0, tokens.shape[2], 3)
        dense = blk(tokens)[:, :, idx]
        kept = blk(tokens[:, :, idx], context=tokens)
    assert dense.abs().sum() > 0
    assert torch.allclose(kept, dense, atol=1e-5)


def test_prune_cli_per_stage_on_qkformer(tmp_path, capsys):
    cfg = small_config("qkformer")
    src = save_checkpoint(tmp_path / "qk.pt", active(cfg))
    out = tmp_path / "qk_pruned.pt"
    assert main(["prune", str(src), "--keep", "1.0/0.5", "--out", str(out)]) == 0
    assert "(90.0% of the 320/80 tokens kept over the block stack)" in capsys.readouterr().out
    assert load_checkpoint(out)["pruning"]["keep"] == [1.0, 1.0, 0.5, 0.5]
