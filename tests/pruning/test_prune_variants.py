"""Map-level spatial scores and full-K/V pruning (options added to choose the tracker default)."""

import numpy as np
import pytest
import torch

from evtrack.errors import UserError
from evtrack.pruning import PrunedBlockStack, apply_pruning
from evtrack.pruning.scorers import IRScorer
from evtrack.pruning.scores import MapSpec, ScoreOptions, ir_scores, layout_maps, spatial_global
from evtrack.pruning.select import gather_tokens, select_indices

from .fakes import FakeModel, active_model, inputs


def test_global_and_deviation_spatial_terms_by_hand():
    g = torch.Generator().manual_seed(1)
    fmap = torch.rand(2, 3, 4, 5, generator=g) - 0.3
    f = fmap.reshape(2, 12, 5).double().numpy()
    mean = f.mean(1, keepdims=True)
    cos = (f * mean).sum(-1) / (np.linalg.norm(f, axis=-1) * np.linalg.norm(mean, axis=-1))
    assert np.allclose(spatial_global(fmap, "global").reshape(2, 12).numpy(), 1 - cos, atol=1e-5)
    dev = np.linalg.norm(f - mean, axis=-1)
    assert np.allclose(spatial_global(fmap, "deviation").reshape(2, 12).numpy(), dev, atol=1e-5)
    # A uniform background with one event-carrying token: that token scores highest.
    bg = torch.ones(1, 4, 4, 3)
    bg[0, 1, 2] = torch.tensor([5.0, -1.0, 0.0])
    for how in ("global", "deviation"):
        assert spatial_global(bg, how).flatten().argmax().item() == 1 * 4 + 2
    with pytest.raises(ValueError, match="spatial"):
        spatial_global(bg, "nope")


def test_map_level_scores_are_per_map_and_numba_equals_torch():
    maps = [MapSpec("template", 2, 2, 0), MapSpec("search", 3, 3, 4)]
    x = torch.rand(1, 1, 13, 6, generator=torch.Generator().manual_seed(2))
    s, _ = ir_scores(x, maps, None, ScoreOptions(spatial="deviation", temporal_weight=0.0))
    for mp in maps:  # min-max normalised within each map
        part = s[0, mp.offset : mp.offset + mp.h * mp.w]
        assert part.min().item() == pytest.approx(0.0) and part.max().item() == pytest.approx(1.0)
    for form in ("global", "deviation"):  # the Numba kernel gives the torch scores
        opts = ScoreOptions(spatial=form)
        a = IRScorer(opts, backend="torch")(x, maps, 0, False)
        assert torch.allclose(a, IRScorer(opts, backend="numba")(x, maps, 0, False), atol=1e-5)


@pytest.mark.parametrize("opts", [{"full_kv": True}, {"spatial": "global"}, {"spatial": "deviation", "full_kv": True}])
def test_new_options_keep_one_is_exactly_dense(opts):
    m = active_model()
    z, x = inputs()
    with torch.no_grad():
        dense = m(z, x)
        apply_pruning(m, "1.0", **opts)
        same = m(z, x)
    assert all(torch.equal(dense[k], same[k]) for k in dense)


def test_full_kv_attends_to_all_tokens_but_updates_only_kept_ones():
    m = active_model()
    z, x = inputs()
    apply_pruning(m, "0.5", full_kv=True, spatial="global", temporal_weight=0.0)
    st = m.backbone.block_stack
    assert isinstance(st, PrunedBlockStack) and st.full_kv
    seen = []
    for blk in st.blocks:
        blk.attn.k.register_forward_hook(lambda mod, a, out: seen.append(("k", a[0].shape[2])))
        blk.attn.q.register_forward_hook(lambda mod, a, out: seen.append(("q", a[0].shape[2])))
        blk.mlp.fc1.register_forward_hook(lambda mod, a, out: seen.append(("mlp", a[0].shape[2])))
    captured = {}
    blk0 = st.blocks[0]

    def grab(mod, args, kwargs):  # block 0's full input
        captured.setdefault("in", (args[0] if args else kwargs["x"]).clone())

    st.register_forward_pre_hook(grab, with_kwargs=True)
    with torch.no_grad():
        m(z, x)
    n, k = 64 + 256, 32 + 128
    assert [s for s in seen if s[0] == "k"] == [("k", n)] * 4
    assert [s for s in seen if s[0] == "q"] == [("q", k)] * 4
    assert [s for s in seen if s[0] == "mlp"] == [("mlp", k)] * 4
    # The kept tokens' output equals the dense block's output restricted to them: K^T V is exact.
    xin = captured["in"]
    maps = layout_maps(m.backbone.layout)
    idx = select_indices(st.scorer(xin, maps, 0, False), maps, 0.5)
    with torch.no_grad():
        full = blk0(xin)
        part = blk0(gather_tokens(xin, idx), context=xin)
    assert torch.allclose(part, gather_tokens(full, idx), atol=1e-5)


def test_full_kv_needs_blocks_that_accept_context():
    m = FakeModel()
    with pytest.raises(UserError, match="accepts_context"):
        apply_pruning(m, "0.5", full_kv=True)
    with pytest.raises(UserError, match="spatial"):
        apply_pruning(m, "0.5", spatial="bogus")



def test_cli_flags_match_pruning_options():
    import argparse

    from evtrack.commands import prune
    from evtrack.pruning import PruningOptions
    from evtrack.pruning.scores import SPATIAL_FORMS

    assert prune.SPATIAL_FORMS == SPATIAL_FORMS
    p = argparse.ArgumentParser()
    prune.add_pruning_arguments(p)
    opts = prune.options_from_args(p.parse_args([]))
    assert opts == {k: v for k, v in PruningOptions(keep=(1.0,)).to_dict().items() if k in opts}
    assert prune.options_from_args(p.parse_args(["--full-kv", "--spatial", "global"]))["full_kv"] is True
