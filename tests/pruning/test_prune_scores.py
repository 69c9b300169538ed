import numpy as np
import pytest
import torch

from evtrack.pruning.scores import (
    ScoreOptions,
    ir_scores,
    normalize_scores,
    spatial_dissimilarity,
    spatial_dissimilarity_official,
    temporal_change,
)
from evtrack.pruning.scores_numba import ir_scores_numba
from evtrack.tokens import TokenMap


def test_odd_token_out_scores_highest_and_uniform_map_scores_zero():
    fmap = torch.ones(1, 5, 5, 3)
    s = spatial_dissimilarity(fmap)
    assert torch.allclose(s, torch.zeros_like(s), atol=1e-6)
    fmap[0, 2, 3] = torch.tensor([1.0, -1.0, 0.0])  # orthogonal to its neighbours
    s = spatial_dissimilarity(fmap)
    assert s[0, 2, 3] == pytest.approx(1.0, abs=1e-6)
    assert s.flatten().argmax().item() == 2 * 5 + 3


def test_border_uses_only_valid_neighbours_and_excludes_centre():
    # Corner (0,0): neighbours (0,1), (1,0), (1,1) only. Make them [1,0] and the corner [1,1].
    fmap = torch.zeros(1, 3, 3, 2)
    fmap[..., 0] = 1.0
    fmap[0, 0, 0] = torch.tensor([1.0, 1.0])
    s = spatial_dissimilarity(fmap)
    # Neighbour mean is [1, 0] (zero padding would shrink it but not change the direction, so
    # check a case where padding would matter: include_center=True adds [1,1] into a 4-token mean).
    assert s[0, 0, 0] == pytest.approx(1 - 1 / np.sqrt(2), abs=1e-6)
    s_c = spatial_dissimilarity(fmap, include_center=True)
    mean = np.array([4.0, 1.0]) / 4
    expect = 1 - (mean @ np.array([1.0, 1.0])) / (np.linalg.norm(mean) * np.sqrt(2))
    assert s_c[0, 0, 0] == pytest.approx(expect, abs=1e-6)


def test_one_by_one_map_has_no_neighbours():
    assert spatial_dissimilarity(torch.randn(2, 1, 1, 4)).abs().max() == 0


def test_official_form_is_minus_cos_with_channel_summed_box():
    g = torch.Generator().manual_seed(1)
    fmap = torch.randn(1, 4, 4, 3, generator=g)
    s = spatial_dissimilarity_official(fmap)
    # Reference with an explicit all-ones CxC 3x3 conv (zero padding, centre included).
    w = torch.ones(3, 3, 3, 3)
    nb = torch.nn.functional.conv2d(fmap.permute(0, 3, 1, 2), w, padding=1).permute(0, 2, 3, 1)
    ref = -torch.nn.functional.cosine_similarity(fmap, nb, dim=-1, eps=1e-12)
    assert torch.allclose(s, ref, atol=1e-5)


def test_temporal_uses_previous_frame_or_zero():
    x = torch.tensor([[[[1.0, 3.0], [0.0, 0.0]]], [[[4.0, 4.0], [1.0, 1.0]]]])  # [T=2, B=1, n=2, C=2]
    s, last = temporal_change(x, None)
    # m = [[2, 0], [4, 1]]: |2-0| + |4-2| = 4 -> 2 ; |0-0| + |1-0| = 1 -> 0.5
    assert s.tolist() == [[2.0, 0.5]]
    assert last.tolist() == [[4.0, 1.0]]
    s2, _ = temporal_change(x[:1], torch.tensor([[2.0, 5.0]]))
    assert s2.tolist() == [[0.0, 5.0]]


def test_minmax_and_softmax_normalisation():
    s = torch.tensor([[1.0, 3.0, 2.0]])
    assert normalize_scores(s).tolist() == [[0.0, 1.0, 0.5]]
    assert normalize_scores(torch.ones(1, 4)).abs().max() == 0  # constant map: no information
    assert torch.allclose(normalize_scores(s, "softmax").sum(), torch.tensor(1.0))


def test_maps_are_scored_separately():
    maps = [TokenMap("template", 2, 2, 0), TokenMap("search", 3, 3, 4)]
    x = torch.randn(1, 1, 13, 5)
    full, _ = ir_scores(x, maps)
    alone, _ = ir_scores(x[:, :, 4:], [TokenMap("search", 3, 3, 0)])
    assert torch.allclose(full[:, 4:], alone)


@pytest.mark.parametrize("spatial", ["paper", "official", "global", "deviation"])
@pytest.mark.parametrize("normalize", ["minmax", "softmax"])
@pytest.mark.parametrize("t", [1, 2])
@pytest.mark.parametrize("with_prev", [False, True])
def test_numba_equals_torch(spatial, normalize, t, with_prev):
    g = torch.Generator().manual_seed(t + 7 * with_prev)
    maps = [TokenMap("template", 4, 4, 0), TokenMap("search", 8, 6, 16)]
    x = torch.randn(t, 3, 16 + 48, 24, generator=g)
    prev = torch.randn(3, 64, generator=g) if with_prev else None
    for opts in (ScoreOptions(spatial, normalize), ScoreOptions(spatial, normalize, 0.5, True)):
        a, la = ir_scores(x, maps, prev, opts)
        b, lb = ir_scores_numba(x.numpy(), maps, None if prev is None else prev.numpy(), opts)
        np.testing.assert_allclose(b, a.numpy(), atol=2e-6)
        np.testing.assert_allclose(lb, la.numpy(), atol=1e-6)
