import pytest
import torch

from evtrack.errors import UserError
from evtrack.pruning import PrunedBlockStack, apply_pruning, reset_state
from evtrack.pruning.select import n_keep, select_indices, select_tokens
from evtrack.tokens import TokenMap

from .fakes import FakeModel, tokens


class RecordingScorer:
    """Fixed random scores, remembering what it returned per block."""

    def __init__(self, seed=0):
        self.g = torch.Generator().manual_seed(seed)
        self.calls: list[torch.Tensor] = []

    def reset_state(self):
        pass

    def __call__(self, x, maps, block, training):
        s = torch.rand(x.shape[1], x.shape[2], generator=self.g)
        self.calls.append(s)
        return s


def test_keep_one_is_exactly_dense():
    model = FakeModel().eval()
    x = tokens()
    with torch.no_grad():
        dense = model(x)
        stack = model.backbone.block_stack
        model.backbone.block_stack = PrunedBlockStack(stack, [1.0] * 4, RecordingScorer())
        assert torch.equal(model(x), dense)
        apply_pruning(model, "1.0")
        assert model.backbone.block_stack is stack and model.pruning is None
        apply_pruning(model, "default")
        assert isinstance(model.backbone.block_stack, PrunedBlockStack)
        assert not torch.equal(model(x), dense)
        apply_pruning(model, None)
        assert torch.equal(model(x), dense)


def test_state_dict_names_unchanged():
    model = FakeModel()
    keys = set(model.state_dict())
    apply_pruning(model, "0.5")
    assert set(model.state_dict()) == keys


def test_skipped_tokens_are_bit_identical_and_block_runs_on_k_tokens():
    model = FakeModel(n_blocks=1).eval()
    scorer = RecordingScorer()
    blk = model.backbone.block_stack.blocks[0]
    model.backbone.block_stack = PrunedBlockStack(model.backbone.block_stack, [0.5], scorer)
    x = tokens(t=2)
    with torch.no_grad():
        y = model(x)
    idx = select_indices(scorer.calls[0], model.token_layout.maps, 0.5)
    assert blk.seen_tokens[-1] == idx.shape[1] == 8 + 32  # real compute saving: a smaller tensor
    for b in range(x.shape[1]):
        kept = set(idx[b].tolist())
        skipped = [i for i in range(x.shape[2]) if i not in kept]
        assert torch.equal(y[:, b, skipped], x[:, b, skipped])
        assert not torch.equal(y[:, b, sorted(kept)], x[:, b, sorted(kept)])
        # The kept tokens equal the block run on exactly that subset.
        with torch.no_grad():
            ref = blk(x[:, b : b + 1, sorted(kept)])
        assert torch.allclose(y[:, b : b + 1, sorted(kept)], ref, atol=1e-6)


def test_kept_set_is_topk_per_map():
    maps = [TokenMap("template", 4, 4, 0), TokenMap("search", 8, 8, 16)]
    s = torch.rand(3, 80, generator=torch.Generator().manual_seed(3))
    idx = select_indices(s, maps, 0.25)
    assert idx.shape == (3, 4 + 16)
    for b in range(3):
        t = set(idx[b, :4].tolist())
        assert t == set(torch.topk(s[b, :16], 4).indices.tolist())
        srch = set(idx[b, 4:].tolist())
        assert srch == set((torch.topk(s[b, 16:], 16).indices + 16).tolist())
        assert idx[b].tolist() == sorted(idx[b].tolist())
    keep_t = select_indices(s, maps, 0.25, keep_maps=("template",))
    assert keep_t[:, :16].tolist() == [list(range(16))] * 3


def test_select_tokens_keeps_prefix():
    x = torch.randn(1, 2, 10, 3)
    s = torch.arange(10.0).expand(2, 10)
    kept, idx = select_tokens(x, s, 0.5, num_prefix=2)
    assert idx[0].tolist() == [0, 1, 6, 7, 8, 9]
    assert torch.equal(kept, x[:, :, [0, 1, 6, 7, 8, 9]])
    assert n_keep(10, 1.0) == 10 and n_keep(10, 0.01) == 1


def test_cumulative_never_revives_and_reselect_may():
    model = FakeModel(n_blocks=4).eval()
    scorer = RecordingScorer(seed=5)
    model.backbone.block_stack = PrunedBlockStack(
        model.backbone.block_stack, [0.8, 0.6, 0.6, 0.4], scorer, mode="cumulative"
    )
    with torch.no_grad():
        model(tokens())
    maps = model.token_layout.maps
    active = None
    prev_kept = None
    for i, (s, r) in enumerate(zip(scorer.calls, [0.8, 0.6, 0.6, 0.4], strict=True)):
        idx = select_indices(s, maps, r, active=active)
        kept = [set(row.tolist()) for row in idx]
        if prev_kept is not None:
            assert all(k <= p for k, p in zip(kept, prev_kept, strict=True)), f"block {i} revived a token"
        prev_kept = kept
        active = torch.zeros(s.shape, dtype=torch.bool)
        active.scatter_(1, idx, True)
    blocks = model.backbone.block_stack.blocks
    assert [b.seen_tokens[-1] for b in blocks] == model.backbone.block_stack.last_tokens
    assert model.backbone.block_stack.last_tokens == [13 + 51, 10 + 38, 10 + 38, 6 + 26]


def test_non_prunable_block_runs_dense_and_cannot_be_pruned():
    model = FakeModel(n_blocks=3, transition_at=1).eval()
    apply_pruning(model, "0.5")
    with torch.no_grad():
        model(tokens())
    st = model.backbone.block_stack
    assert st.last_tokens == [40, 80, 40, 40]
    assert model.pruning["keep"] == [0.5, 0.5, 0.5]
    with pytest.raises(ValueError, match="block 1 is not prunable"):
        PrunedBlockStack(st.dense_stack, [0.5] * 4, RecordingScorer())


def test_compensation_sets_and_restores_token_scale():
    model = FakeModel(n_blocks=2).eval()
    apply_pruning(model, "0.5", compensate=True)
    with torch.no_grad():
        model(tokens())
    attn = model.backbone.block_stack.blocks[0].attn
    assert attn.seen_scales[-1] == pytest.approx(80 / 40)
    assert attn.token_scale == 1.0


@pytest.mark.parametrize("criterion", ["ir", "random"])
@pytest.mark.parametrize("mode", ["reselect", "cumulative"])
def test_training_gradients_reach_block_weights(criterion, mode):
    model = FakeModel(n_blocks=2).train()
    apply_pruning(model, "0.5", criterion=criterion, mode=mode, backend="torch")
    x = tokens()
    y = model(x)
    y.square().mean().backward()
    g = model.backbone.block_stack.blocks[1].fc.weight.grad
    assert g is not None and g.abs().sum() > 0


def test_ir_temporal_state_is_kept_between_frames_and_reset():
    model = FakeModel(n_blocks=1).eval()
    apply_pruning(model, "0.5", backend="torch")
    scorer = model.backbone.block_stack.scorer
    with torch.no_grad():
        model(tokens())
    assert 0 in scorer._prev
    reset_state(model)
    assert scorer._prev == {}


def test_numba_and_torch_backends_select_the_same_tokens():
    x = tokens(b=1, seed=4)
    outs = []
    for backend in ("torch", "numba"):
        model = FakeModel(n_blocks=3).eval()
        apply_pruning(model, "default", backend=backend)
        with torch.no_grad():
            outs.append(model(x))
    assert torch.allclose(outs[0], outs[1], atol=1e-5)


def test_bad_options_are_user_errors():
    model = FakeModel()
    with pytest.raises(UserError, match="mode is 'sometimes'"):
        apply_pruning(model, "0.5", mode="sometimes")
    with pytest.raises(UserError, match="unknown option"):
        apply_pruning(model, "0.5", bogus=1)
    with pytest.raises(UserError, match="does not implement the token seam"):
        apply_pruning(torch.nn.Linear(2, 2), "0.5")


@pytest.mark.parametrize("with_active", [False, True])
def test_numba_topk_equals_torch_select(with_active):
    from evtrack.pruning.scores_numba import topk_maps_numba
    from evtrack.pruning.select import map_keep_counts

    maps = [TokenMap("template", 4, 4, 0), TokenMap("search", 8, 8, 16)]
    g = torch.Generator().manual_seed(11)
    s = torch.randint(0, 5, (3, 80), generator=g).float()  # many ties
    active = torch.rand(3, 80, generator=g) < 0.7 if with_active else None
    for ratio in (0.2, 0.5, 0.9):
        ref = select_indices(s, maps, ratio, active=active)
        ks = map_keep_counts(maps, ratio, (), active)
        got = topk_maps_numba(s.numpy(), maps, ks, None if active is None else active.numpy())
        assert got.tolist() == ref.tolist()
