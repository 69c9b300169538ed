import numpy as np
import pytest

from evtrack.datasets.sequence import interval_edges
from evtrack.errors import UserError
from evtrack.network.registry import model_config
from evtrack.training.sampler import BatchPrefetcher, PairSampler, SamplerConfig, SequenceData

from .fakes import SENSOR, moving_square


def fake_sequences(n=2):
    out = []
    for s in range(n):
        ev, boxes, ts = moving_square(16, seed=s)
        out.append(SequenceData(f"s{s}", ev, boxes, np.ones(len(boxes), bool), interval_edges(ts), SENSOR))
    return out


def test_interval_edges_prepend_first_interval():
    assert interval_edges(np.array([40, 80, 120])).tolist() == [0, 40, 80, 120]


def test_pairs_have_network_sizes_and_target_inside():
    cfg = model_config("tiny")
    sampler = PairSampler(fake_sequences(), cfg, SamplerConfig(negative_prob=0.0), seed=1)
    for _ in range(10):
        z, x, t = sampler.sample()
        assert z.shape == (3, 64, 64) and x.shape == (3, 128, 128)
        assert z.dtype == np.float32 and x.any()
        assert np.all((t[:2] > 0) & (t[:2] < 1)) and np.all(t[2:] > 0)


def test_target_box_matches_rendered_events():
    """Without jitter and flips the square's events sit where the target box says."""
    cfg = model_config("tiny")
    sc = SamplerConfig(center_jitter=0.0, scale_jitter=0.0, flip_prob=0.0, negative_prob=0.0)
    sampler = PairSampler(fake_sequences(1), cfg, sc, seed=0)
    _, x, t = sampler.sample()
    img = x[:2].sum(0)
    ys, xs = np.nonzero(img > 0.3 * img.max())
    cx, cy = xs.mean() / 128, ys.mean() / 128
    assert abs(cx - t[0]) < 0.05 and abs(cy - t[1]) < 0.05


def test_flip_mirrors_target():
    cfg = model_config("tiny")
    base = SamplerConfig(center_jitter=0.0, scale_jitter=0.0, flip_prob=0.0, negative_prob=0.0)
    flip = SamplerConfig(center_jitter=0.0, scale_jitter=0.0, flip_prob=1.0, negative_prob=0.0)
    _, x0, t0 = PairSampler(fake_sequences(1), cfg, base, seed=3).sample()
    _, x1, t1 = PairSampler(fake_sequences(1), cfg, flip, seed=3).sample()
    assert np.allclose(x1, x0[:, :, ::-1]) and np.isclose(t1[0], 1 - t0[0])


def test_seeded_sampling_is_deterministic():
    cfg = model_config("tiny")
    a = PairSampler(fake_sequences(), cfg, seed=5).batch(3)
    b = PairSampler(fake_sequences(), cfg, seed=5).batch(3)
    assert all(np.array_equal(u.numpy(), v.numpy()) for u, v in zip(a, b, strict=True))


def test_no_usable_sequence_is_an_error():
    seq = fake_sequences(1)[0]
    seq.valid[:] = False
    with pytest.raises(UserError, match="at least two frames"):
        PairSampler([seq], model_config("tiny"))


def test_prefetcher_yields_batches_and_surfaces_errors():
    cfg = model_config("tiny")
    pf = BatchPrefetcher(PairSampler(fake_sequences(), cfg), 2)
    z, x, t = next(pf)
    assert z.shape == (2, 3, 64, 64) and t.shape == (2, 4)
    pf.close()

    def broken(*a, **k):
        raise ValueError("representation failed")

    pf = BatchPrefetcher(PairSampler(fake_sequences(), cfg, representation=broken), 2)
    with pytest.raises(ValueError, match="representation failed"):
        next(pf)
    pf.close()


def _overlaps(box, crop) -> bool:
    x0, y0, side, _ = crop
    return not (x0 >= box[0] + box[2] or x0 + side <= box[0] or y0 >= box[1] + box[3] or y0 + side <= box[1])


def test_negative_pairs_have_no_target_in_the_search_crop():
    cfg = model_config("tiny")
    seqs = fake_sequences(1)
    seqs[0].absent = np.zeros(len(seqs[0].boxes), bool)
    seqs[0].absent[10:13] = True  # the target is hidden in these frames
    sampler = PairSampler(seqs, cfg, SamplerConfig(negative_prob=1.0), seed=2)
    hidden_used = 0
    for _ in range(40):
        crop, j = sampler._negative_crop(seqs[0], 8)
        assert crop is not None
        if seqs[0].absent[j]:
            hidden_used += 1  # cropped where the hidden target is: the target has no events there
        else:
            assert not _overlaps(seqs[0].boxes[j], crop)
    assert 0 < hidden_used < 40
    for _ in range(5):
        z, x, t = sampler.sample()
        assert t[2] == 0 and t[3] == 0 and z.shape == (3, 64, 64) and x.shape == (3, 128, 128)


def test_negative_share_follows_the_config():
    cfg = model_config("tiny")
    _, _, t = PairSampler(fake_sequences(), cfg, SamplerConfig(negative_prob=0.3), seed=0).batch(200)
    share = float((t[:, 2] == 0).float().mean())
    assert 0.2 < share < 0.4
    _, _, t = PairSampler(fake_sequences(), cfg, SamplerConfig(negative_prob=0.0), seed=0).batch(50)
    assert bool((t[:, 2] > 0).all())


def test_group_shares_set_each_sources_share_of_pairs():
    seqs = fake_sequences(3)
    seqs[0].group, seqs[1].group, seqs[2].group = 0, 1, 1
    cfg = model_config("tiny")
    sampler = PairSampler(seqs, cfg, SamplerConfig(negative_prob=0.0), seed=0, group_shares=[0.8, 0.2])
    # group 0 (one sequence) gets 80% of the pairs although it holds a third of the frames
    np.testing.assert_allclose(sampler.seq_p, [0.8, 0.1, 0.1])
    plain = PairSampler(seqs, cfg, SamplerConfig(negative_prob=0.0), seed=0)
    np.testing.assert_allclose(plain.seq_p, [1 / 3] * 3)
    with pytest.raises(UserError, match="one non-negative share per data source"):
        PairSampler(seqs, cfg, seed=0, group_shares=[1.0])


def test_template_crop_floor_is_the_trackers():
    """Training renders the template with the same min_template_crop_px floor as Tracker._template."""

    def template_side(floor: float) -> float:
        cfg = model_config("tiny", min_template_crop_px=floor)
        sampler = PairSampler(fake_sequences(1), cfg, SamplerConfig(negative_prob=0.0), seed=0)
        seen, render = [], sampler._render_pair

        def spy(seq, i, z_crop, j, x_crop, target):
            seen.append(z_crop[2])
            return render(seq, i, z_crop, j, x_crop, target)

        sampler._render_pair = spy
        sampler.sample()
        return seen[0]

    assert template_side(0.0) < 200.0 and template_side(200.0) == 200.0  # 200 px: above 2x the fake square
