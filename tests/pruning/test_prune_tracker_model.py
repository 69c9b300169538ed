"""Pruning on the real tracker network (evtrack.tracker), with BN set so that neurons fire."""

import pytest
import torch

from evtrack.errors import UserError
from evtrack.metrics.ops import count_ops
from evtrack.pruning import PrunedBlockStack, apply_pruning

from .fakes import active_model, inputs


def test_keep_one_equals_dense_and_default_prunes():
    m = active_model()
    z, x = inputs()
    with torch.no_grad():
        dense = m(z, x)
        apply_pruning(m, "1.0")
        same = m(z, x)
        assert all(torch.equal(dense[k], same[k]) for k in dense)
        apply_pruning(m, "default")
        pruned = m(z, x)
    st = m.backbone.block_stack
    assert isinstance(st, PrunedBlockStack)
    assert st.last_tokens == [214, 189, 145, 125]  # 64+256 tokens, default schedule over 4 blocks
    assert {k: v.shape for k, v in pruned.items()} == {k: v.shape for k, v in dense.items()}


def test_compensation_scales_attention_product():
    m = active_model()
    z, x = inputs()
    seen = []
    attn = m.backbone.block_stack.blocks[0].attn
    attn.s_attn.register_forward_hook(lambda mod, a, out: seen.append(a[0].clone()))  # sees pre-hook edits
    with torch.no_grad():
        apply_pruning(m, "0.5", criterion="random", cached_kv=False)  # plain pruning, then compensated
        m(z, x)
        apply_pruning(m, "0.5", criterion="random", compensate=True)
        m(z, x)
    assert seen[0].shape[2] == seen[1].shape[2] == 160
    assert torch.allclose(seen[1], seen[0] * 2.0)
    apply_pruning(m, "1.0")
    with torch.no_grad():
        m(z, x)
    assert seen[-1].shape[2] == 320


def test_pruned_finetuning_backward_on_real_model():
    m = active_model().train()
    apply_pruning(m, "default")
    z, x = inputs()
    out = m(z, x)
    sum(v.float().square().mean() for v in out.values()).backward()
    grads = [p.grad for p in m.backbone.block_stack.blocks[-1].parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)


def test_transformer_sops_fall_with_pruning():
    m = active_model()
    z, x = inputs()
    res = {}
    with torch.no_grad():
        for keep in ("1.0", "default"):
            apply_pruning(m, keep)
            with count_ops(m) as c:
                m(z, x)
            res[keep] = c.summary()
    d, p = res["1.0"], res["default"]
    assert d["spike_levels"] == 4
    assert d["transformer_sops"] > 0 and d["macs"] > 0
    assert p["tokens"] == 214 + 189 + 145 + 125
    assert p["transformer_sops"] < 0.75 * d["transformer_sops"]
    assert p["macs"] == d["macs"]  # the stem conv on the event frame is never pruned


def test_compensation_without_any_attention_is_rejected():
    from .fakes import FakeModel

    m = FakeModel()
    for b in m.backbone.block_stack.blocks:
        del b.attn.token_scale
    with pytest.raises(UserError, match="no module with a `token_scale`"):
        apply_pruning(m, "0.5", compensate=True)
    assert not isinstance(m.backbone.block_stack, PrunedBlockStack)
