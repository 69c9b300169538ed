import pytest
import torch

from evtrack.errors import UserError
from evtrack.network.config import TrackerConfig
from evtrack.network.inputs import frame_representation
from evtrack.network.layers import ChannelTransition, TokenMLP, TransformerBlock
from evtrack.network.model import SDTrackNet
from evtrack.network.registry import (
    build_model,
    create_model,
    list_architectures,
    list_models,
    model_config,
    register_architecture,
)
from evtrack.tokens import TokenLayout

SMALL = dict(conv_channels=(8, 8, 16), stage_dims=(16, 24), stage_depths=(1, 1), heads=2, head_channels=8)


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def test_registry_lists_both_variants():
    assert {"tiny", "sdtrack-tiny"} <= set(list_models())


def test_unknown_names_and_fields_are_user_errors():
    with pytest.raises(UserError, match="unknown model config 'nope'"):
        create_model("nope")
    with pytest.raises(UserError, match="unknown override"):
        create_model("tiny", depth=3)


def test_create_model_builds_the_architecture_the_config_names(monkeypatch):
    from evtrack.network import registry

    monkeypatch.setattr(registry, "_ARCHITECTURES", dict(registry._ARCHITECTURES))  # the test's entry goes away
    assert "sdtrack" in list_architectures()
    assert type(create_model("tiny", **SMALL)) is SDTrackNet
    built = []

    @register_architecture("test-echo")
    class Echo(torch.nn.Module):
        def __init__(self, cfg):
            super().__init__()
            self.cfg = cfg
            built.append(cfg.name)

    net = create_model("tiny", architecture="test-echo")
    assert isinstance(net, Echo) and built == ["tiny"]
    with pytest.raises(ValueError, match="registered twice"):
        register_architecture("test-echo")(Echo)
    with pytest.raises(UserError, match="unknown architecture 'nope'"):
        build_model(TrackerConfig(architecture="nope"))


def test_config_names_the_representation_its_network_eats():
    from evtrack.io.representations import sdtrack_frame

    assert frame_representation(model_config("tiny")) is sdtrack_frame
    with pytest.raises(UserError, match="unknown representation 'voxels'"):
        frame_representation(TrackerConfig(representation="voxels"))


def test_none_overrides_keep_defaults():
    assert model_config("tiny", heads=None) == model_config("tiny")


def test_sdtrack_tiny_has_published_shape():
    cfg = model_config("sdtrack-tiny")
    assert (cfg.search_size, cfg.template_size, cfg.search_feat, cfg.template_feat) == (256, 128, 16, 8)
    m = create_model("sdtrack-tiny")
    assert 15e6 < n_params(m) < 22e6


def test_tiny_forward_backward_shapes_and_finite():
    torch.manual_seed(0)
    m = create_model("tiny")
    cfg = m.cfg
    z = torch.rand(1, 3, cfg.template_size, cfg.template_size)
    x = torch.rand(1, 3, cfg.search_size, cfg.search_size)
    out = m(z, x)
    n = cfg.search_feat
    assert out["score"].shape == (1, n, n)
    assert out["offset"].shape == out["size"].shape == (1, 2, n, n)
    loss = out["score"].mean() + out["size"].mean() + out["offset"].mean()
    loss.backward()
    grads = [p.grad for p in m.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_bn_fusion_preserves_outputs():
    torch.manual_seed(1)
    m = create_model("tiny", **SMALL)
    # give BN non-trivial statistics
    m.train()
    with torch.no_grad():
        for _ in range(3):
            m(torch.rand(2, 3, 64, 64), torch.rand(2, 3, 128, 128))
    m.eval()
    z, x = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        ref = m(z, x)
        m.fuse()
        got = m(z, x)
    assert all(not isinstance(mod, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d) for mod in m.modules())
    # spikes may flip where a potential sits exactly on a rounding boundary: compare the bulk
    close = torch.isclose(got["score"], ref["score"], atol=1e-3)
    assert close.float().mean() > 0.95


def test_cached_template_features_equal_full_forward():
    torch.manual_seed(2)
    m = create_model("tiny", **SMALL).eval()
    z, x = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        a = m(z, x)
        b = m(None, x, z_feat=m.embed_template(z))
    assert torch.equal(a["score"], b["score"])


def test_block_stack_seam():
    m = create_model("tiny", **SMALL)
    stack = m.backbone.block_stack
    layout = m.backbone.layout
    assert isinstance(layout, TokenLayout)
    assert [mp.name for mp in layout.maps] == ["template", "search"]
    assert layout.map("search").offset == layout.map("template").n
    assert layout.n_tokens == 8 * 8 + 16 * 16
    kinds = [type(b) for b in stack.blocks]
    assert kinds == [TransformerBlock, ChannelTransition, TransformerBlock]
    assert [b.prunable for b in stack.blocks] == [True, False, True]
    x = torch.randn(1, 2, layout.n_tokens, 16)
    assert stack(x, layout).shape == (1, 2, layout.n_tokens, 24)


def test_blocks_run_on_any_token_subset_and_are_tokenwise_outside_attention():
    torch.manual_seed(3)
    blk = TransformerBlock(16, 2, 4.0, 1, 4).eval()
    x = torch.randn(1, 1, 40, 16)
    idx = torch.tensor([0, 3, 7, 21, 39])
    with torch.no_grad():
        assert blk(x[:, :, idx]).shape == (1, 1, 5, 16)
        mlp = TokenMLP(16, 4.0, 4).eval()
        assert torch.allclose(mlp(x)[:, :, idx], mlp(x[:, :, idx]))


def test_block_with_context_computes_the_full_outputs_of_the_kept_tokens():
    """Linear attention sums K^T V over the context, so a block run on a token subset with every token as
    context gives exactly those tokens' rows of the full run (what full-K/V pruning relies on), while
    without the context the subset's outputs differ."""
    torch.manual_seed(4)
    blk = TransformerBlock(16, 2, 4.0, 1, 4).eval()
    for mod in blk.modules():  # random-init BN would leave the attention's neurons silent
        if isinstance(mod, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
            mod.weight.data.fill_(2.0)
            mod.bias.data.fill_(0.5)
    assert blk.accepts_context
    x = torch.randn(1, 2, 40, 16) * 2
    idx = torch.tensor([0, 3, 7, 21, 39])
    with torch.no_grad():
        full = blk(x)
        kept = blk(x[:, :, idx], context=x)
        alone = blk(x[:, :, idx])
    assert torch.allclose(kept, full[:, :, idx], atol=1e-5)
    assert not torch.allclose(alone, full[:, :, idx], atol=1e-3)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("windowed", [False, True])
def test_decode_boxes_reads_the_windowed_peak_cell(batch, windowed):
    # decode_boxes runs in numpy once a frame; here the same decoding spelt out cell by cell in torch
    from evtrack.network.head import decode_boxes, hann_window

    g = torch.Generator().manual_seed(batch)
    h, w = 16, 12
    out = {"score": torch.randn(batch, h, w, generator=g) * 3, "offset": torch.rand(batch, 2, h, w, generator=g),
           "size": torch.rand(batch, 2, h, w, generator=g)}
    window = hann_window(h, w) ** 2 if windowed else None
    boxes, scores = decode_boxes(out, window)
    assert boxes.shape == (batch, 4) and scores.shape == (batch,) and boxes.dtype == scores.dtype == torch.float32
    for i in range(batch):
        p = torch.sigmoid(out["score"][i])
        ranked = p * window if windowed else p
        iy, ix = divmod(int(ranked.argmax()), w)
        ox, oy = out["offset"][i, :, iy, ix]
        expected = torch.stack([(ix + ox) / w, (iy + oy) / h, out["size"][i, 0, iy, ix], out["size"][i, 1, iy, ix]])
        torch.testing.assert_close(boxes[i], expected)
        assert float(scores[i]) == float(p[iy, ix])  # the raw peak score, before the window
