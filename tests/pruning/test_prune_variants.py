"""Map-level spatial scores and full-K/V pruning (options added to choose the tracker default)."""

import numpy as np
import pytest
import torch

from evtrack.errors import UserError
from evtrack.pruning import PrunedBlockStack, apply_pruning
from evtrack.pruning.scorers import IRScorer
from evtrack.pruning.scores import ScoreOptions, ir_scores, spatial_global
from evtrack.pruning.select import gather_tokens, select_indices
from evtrack.tokens import TokenMap, as_maps

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
    maps = [TokenMap("template", 2, 2, 0), TokenMap("search", 3, 3, 4)]
    x = torch.rand(1, 1, 13, 6, generator=torch.Generator().manual_seed(2))
    s, _ = ir_scores(x, maps, None, ScoreOptions(spatial="deviation", temporal_weight=0.0))
    for mp in maps:  # min-max normalised within each map
        part = s[0, mp.offset : mp.offset + mp.h * mp.w]
        assert part.min().item() == pytest.approx(0.0) and part.max().item() == pytest.approx(1.0)
    for form in ("global", "deviation"):  # the Numba kernel gives the torch scores
        opts = ScoreOptions(spatial=form)
        a = IRScorer(opts, backend="torch")(x, maps, 0, False)
        assert torch.allclose(a, IRScorer(opts, backend="numba")(x, maps, 0, False), atol=1e-5)


@pytest.mark.parametrize("opts", [{"full_kv": True}, {"spatial": "global"}, {"spatial": "deviation", "full_kv": True},
                                  {"cached_kv": True}])
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
    maps = as_maps(m.backbone.layout)
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



def _pair(**opts):
    """Two copies of the same network: ``cached_kv`` and ``full_kv``, with ``opts`` in common."""
    a, b = active_model(), active_model()
    apply_pruning(a, "default", cached_kv=True, **opts)
    apply_pruning(b, "default", full_kv=True, **opts)
    return a, b


def _k_tokens(model):
    seen = []
    for blk in model.backbone.block_stack.blocks:
        blk.attn.k.register_forward_hook(lambda mod, a, out: seen.append(a[0].shape[2]))
    return seen


def test_cached_kv_equals_full_kv_while_the_input_repeats_and_then_goes_stale():
    # No temporal term: the same input selects the same tokens, so every block's input repeats too.
    a, b = _pair(temporal_weight=0.0)
    z, x = inputs()
    _, x2 = inputs(seed=1)
    seen = _k_tokens(a)
    n = a.backbone.layout.n_tokens
    with torch.no_grad():
        # 1st frame: every block fills its cache from all tokens, exactly as full_kv computes them
        assert all(torch.equal(u, w) for u, w in zip(a(z, x).values(), b(z, x).values(), strict=True))
        assert seen == [n] * 4
        # 2nd frame, same input: the cached keys/values of the skipped tokens are exactly current
        out_a, out_b = a(z, x), b(z, x)
        assert all(torch.allclose(out_a[k], out_b[k], atol=1e-5) for k in out_a)
        kept = a.backbone.block_stack.last_tokens
        assert seen[4:] == kept and all(k < n for k in kept)  # K/V projected for the kept tokens only
        # 3rd frame, new input: skipped tokens attend with last frame's keys/values, full_kv with new ones
        out_a, out_b = a(z, x2), b(z, x2)
        assert not torch.allclose(out_a["score"], out_b["score"], atol=1e-4)
        # after reset_state (a tracker's init) the cache is rebuilt from all tokens again
        a.backbone.block_stack.reset_state()
        b.backbone.block_stack.reset_state()
        out_a, out_b = a(z, x2), b(z, x2)
        assert all(torch.equal(out_a[k], out_b[k]) for k in out_a)
        assert seen[-4:] == [n] * 4


def test_cached_kv_cache_holds_the_last_keys_of_each_token():
    from evtrack.pruning.blocks import KVCache

    cache = KVCache()
    k0, v0 = torch.arange(12.0).reshape(1, 1, 1, 6, 2), -torch.arange(12.0).reshape(1, 1, 1, 6, 2)
    assert cache(k0, v0) == (k0, v0)  # idx None: every token
    cache.idx = torch.tensor([[4, 1]])
    k1, v1 = torch.full((1, 1, 1, 2, 2), 100.0), torch.full((1, 1, 1, 2, 2), -100.0)
    k, v = cache(k1, v1)
    assert k[0, 0, 0, :, 0].tolist() == [0.0, 100.0, 4.0, 6.0, 100.0, 10.0]
    assert v[0, 0, 0, :, 1].tolist() == [-1.0, -100.0, -5.0, -7.0, -100.0, -11.0]
    assert cache.fits(torch.zeros(1, 1, 6, 3)) and not cache.fits(torch.zeros(1, 2, 6, 3))
    cache.clear()  # a batch of two sequences takes the scatter path, each with its own positions
    k0, v0 = torch.zeros(1, 2, 1, 4, 1), torch.zeros(1, 2, 1, 4, 1)
    cache.idx = None
    cache(k0, v0)
    cache.idx = torch.tensor([[0, 3], [2, 1]])
    k, _ = cache(torch.tensor([1.0, 2.0, 3.0, 4.0]).reshape(1, 2, 1, 2, 1), torch.ones(1, 2, 1, 2, 1))
    assert k[0, :, 0, :, 0].tolist() == [[1.0, 0.0, 0.0, 2.0], [0.0, 4.0, 3.0, 0.0]]


def test_cached_kv_in_training_mode_is_full_kv():
    a, b = _pair()
    a.train()
    b.train()
    z, x = inputs()
    for _ in range(2):  # no state between training batches
        out_a, out_b = a(z, x), b(z, x)
        assert all(torch.allclose(out_a[k], out_b[k], atol=1e-5) for k in out_a)


def test_cached_kv_needs_kv_cache_blocks_and_excludes_full_kv():
    with pytest.raises(UserError, match="accepts_kv_cache"):
        apply_pruning(FakeModel(), "0.5", cached_kv=True)
    with pytest.raises(UserError, match="exclude each other"):
        apply_pruning(active_model(), "0.5", cached_kv=True, full_kv=True)
    with pytest.raises(UserError, match="at most one"):
        apply_pruning(active_model(), "0.5", cached_kv=True, compensate=True)
    m = active_model()  # the default is the cache; full_kv or compensate alone switch it off
    assert apply_pruning(m, "0.5").pruning["cached_kv"] is True
    assert apply_pruning(FakeModel(), "0.5").pruning["cached_kv"] is False  # blocks without it: plain
    assert apply_pruning(m, "0.5", full_kv=True).pruning["cached_kv"] is False
    assert apply_pruning(m, "0.5", compensate=True).pruning["cached_kv"] is False


def test_cli_flags_match_pruning_options():
    import argparse

    from evtrack import cli_options
    from evtrack.pruning import PruningOptions
    from evtrack.pruning.scores import SPATIAL_FORMS

    p = argparse.ArgumentParser()
    cli_options.add_pruning_arguments(p)
    cli_forms = next(a.choices for a in p._actions if a.dest == "spatial")
    for form in sorted(set(cli_forms) | set(SPATIAL_FORMS)):  # each form both sides know prunes a model
        opts = cli_options.options_from_args(p.parse_args(["--spatial", form]))
        assert apply_pruning(FakeModel(), "0.5", **opts).pruning["spatial"] == form
    opts = cli_options.options_from_args(p.parse_args([]))
    assert opts == {k: v for k, v in PruningOptions(keep=(1.0,)).to_dict().items() if k in opts}
    assert cli_options.options_from_args(p.parse_args(["--full-kv", "--spatial", "global"]))["full_kv"] is True
    assert "cached_kv" not in cli_options.options_from_args(p.parse_args([]))  # None: wherever supported
    assert cli_options.options_from_args(p.parse_args(["--cached-kv"]))["cached_kv"] is True
    assert cli_options.options_from_args(p.parse_args(["--no-cached-kv"]))["cached_kv"] is False
