import numpy as np
import pytest
import torch

from evtrack.errors import UserError
from evtrack.network.checkpoint import save_checkpoint
from evtrack.network.registry import create_model
from evtrack.tracker.baselines import CentroidTracker, StationaryTracker
from evtrack.tracker.crops import box_to_crop, clip_box, crop_around, crop_to_box
from evtrack.tracker.online import Tracker, load_tracker, track_sequence

from .fakes import FRAME_US, SENSOR, ListReader, moving_square

SMALL = dict(conv_channels=(8, 8, 16), stage_dims=(16,), stage_depths=(2,), heads=2, head_channels=8)


@pytest.fixture(scope="module")
def clip():
    return moving_square(12, seed=4)


def small_tracker(**kw):
    torch.manual_seed(0)
    return Tracker(create_model("tiny", **SMALL), sensor_size=SENSOR, **kw)


def test_crop_box_roundtrip():
    crop = crop_around(50.0, 40.0, 64.0)
    box = np.array([40.0, 30.0, 12.0, 8.0])
    assert np.allclose(crop_to_box(box_to_crop(box, crop), crop), box)


def test_clip_box_keeps_boxes_on_the_sensor():
    h, w = SENSOR
    b = clip_box(np.array([-10.0, 90.0, 30.0, 20.0]), SENSOR)
    assert b[0] == 0 and b[1] + b[3] <= h and b[2] == 20 and b[3] >= 2
    b = clip_box(np.array([500.0, 500.0, 10.0, 10.0]), SENSOR)
    assert b[0] + b[2] <= w and b[1] + b[3] <= h and b[2] >= 2 and b[3] >= 2


def test_track_sequence_contract(clip):
    events, boxes, ts = clip
    tracker = small_tracker()
    res = track_sequence(tracker, ListReader(events), boxes[0], ts)
    n = len(ts)
    assert res.boxes.shape == (n, 4) and res.scores.shape == (n,) and res.latency_s.shape == (n,)
    assert np.allclose(res.boxes[0], boxes[0])
    h, w = SENSOR
    assert np.all(res.boxes[:, 0] >= 0) and np.all(res.boxes[:, 0] + res.boxes[:, 2] <= w + 1e-9)
    assert np.all(res.boxes[:, 1] >= 0) and np.all(res.boxes[:, 1] + res.boxes[:, 3] <= h + 1e-9)
    assert np.all((res.scores[1:] >= 0) & (res.scores[1:] <= 1))
    assert res.fps > 0 and tracker.stats()["frames"] == n - 1


def test_template_is_fixed_after_init(clip):
    events, boxes, ts = clip
    tracker = small_tracker()
    first = events[events["t"] < ts[0]]
    tracker.init(first, boxes[0])
    z = tracker.template_features.clone()
    tracker.update(events[(events["t"] >= ts[0]) & (events["t"] < ts[1])])
    assert torch.equal(z, tracker.template_features)


def test_empty_packet_keeps_the_box(clip):
    events, boxes, ts = clip
    tracker = small_tracker()
    tracker.init(events[events["t"] < ts[0]], boxes[0])
    r = tracker.update(events[:0])
    assert np.allclose(r.box, boxes[0]) and r.score == 0.0


def test_update_before_init_and_bad_boxes():
    tracker = small_tracker()
    with pytest.raises(UserError, match="before Tracker.init"):
        tracker.update(np.zeros(0))
    ev = moving_square(2)[0]
    with pytest.raises(UserError, match="w > 0"):
        tracker.init(ev, [1, 2, 0, 5])
    with pytest.raises(UserError, match="outside"):
        tracker.init(ev, [500, 2, 10, 5])


def test_centroid_baseline_follows_the_square(clip):
    events, boxes, ts = clip
    res = track_sequence(CentroidTracker(), ListReader(events), boxes[0], ts)
    centre_err = np.hypot(*(res.boxes[:, :2] + res.boxes[:, 2:] / 2 - boxes[:, :2] - boxes[:, 2:] / 2).T)
    assert centre_err.mean() < 3.0
    stat = track_sequence(StationaryTracker(), ListReader(events), boxes[0], ts)
    assert np.allclose(stat.boxes, boxes[0])
    stat_err = np.hypot(*(stat.boxes[:, :2] - boxes[:, :2]).T)
    assert stat_err.mean() > 3 * centre_err.mean()


def test_load_tracker_from_checkpoint(tmp_path, clip):
    torch.manual_seed(0)
    path = save_checkpoint(tmp_path / "m.pt", create_model("tiny", **SMALL))
    tracker = load_tracker(path, sensor_size=SENSOR, keep="1.0")
    events, boxes, ts = clip
    res = track_sequence(tracker, ListReader(events), boxes[0], ts[:4])
    assert res.boxes.shape == (4, 4)
    with pytest.raises(UserError, match="n_threads"):
        load_tracker(path, n_threads=0)


def test_pruned_tracker_counts_ops(tmp_path, clip):
    pytest.importorskip("evtrack.pruning")
    torch.manual_seed(0)
    path = save_checkpoint(tmp_path / "m.pt", create_model("tiny", **SMALL))
    events, boxes, ts = clip
    dense = load_tracker(path, sensor_size=SENSOR, count_ops=True)
    pruned = load_tracker(path, sensor_size=SENSOR, count_ops=True, keep="0.5,0.5")
    for tr in (dense, pruned):
        track_sequence(tr, ListReader(events), boxes[0], ts[:5])
    sd, sp = dense.stats(), pruned.stats()
    assert sd["frames"] == sp["frames"] == 4
    assert sp["tokens_kept"] < sd["tokens_kept"]
    assert sd["sops"] >= 0 and sd["macs"] > 0 and sd["energy_mj"] > 0  # untrained: few spikes, first conv MACs


def test_window_mode_frames(clip):
    """Fixed time windows (live use) work the same as ground-truth intervals."""
    events, boxes, _ = clip
    edges = np.arange(FRAME_US, events["t"].max() + 1, 20_000)
    res = track_sequence(CentroidTracker(), ListReader(events), boxes[0], edges)
    assert len(res.boxes) == len(edges)


def test_low_score_keeps_the_box(clip):
    events, boxes, ts = clip
    torch.manual_seed(0)
    strict = Tracker(create_model("tiny", **SMALL), sensor_size=SENSOR, min_score=0.99)
    res = track_sequence(strict, ListReader(events), boxes[0], ts[:5])
    assert np.all(res.scores[1:] < 0.99)  # an untrained head never reaches this score ...
    assert np.allclose(res.boxes, boxes[0])  # ... so the box never moves
    with pytest.raises(UserError, match="min_score"):
        Tracker(create_model("tiny", **SMALL), min_score=1.5)


def test_motion_prior_centres_the_crop_and_coasts_when_lost(clip):
    from evtrack.tracker.online import COAST_DECAY

    events, boxes, ts = clip
    edges = np.concatenate([[ts[0] - FRAME_US], ts])
    packet = [events[(events["t"] >= edges[i]) & (events["t"] < edges[i + 1])] for i in range(len(ts))]
    tr = small_tracker(motion=1.0, size_lr=0.0)  # fixed size: the untrained box stays off the border
    tr.init(packet[0], boxes[0])
    centre = lambda b: np.array([b[0] + b[2] / 2, b[1] + b[3] / 2])  # noqa: E731
    prev = centre(boxes[0])
    for i in range(1, 5):  # found: the velocity is the smoothed step of the box centre
        v = tr._velocity.copy()
        r = tr.update(packet[i])
        x0, y0, side, _ = r.search_crop
        assert np.allclose([x0 + side / 2, y0 + side / 2], prev + v)  # crop centred on the prediction
        prev = centre(r.box)
    tr.min_score = 0.99  # an untrained head never scores this: from now on the target is lost
    for i in range(5, 8):
        v = tr._velocity.copy()
        b = tr.update(packet[i]).box
        assert np.allclose(centre(b), prev + COAST_DECAY * v, atol=1e-6)  # coasting, slowing down
        assert np.allclose(b[2:], tr.box[2:])
        prev = centre(b)
    with pytest.raises(UserError, match="motion"):
        small_tracker(motion=2.0)


def test_search_input_is_what_the_next_update_sees(clip):
    """Measurements time the network on search_input + template_features: the same call update makes."""
    from evtrack.network.head import decode_boxes

    events, boxes, ts = clip
    edges = np.concatenate([[ts[0] - FRAME_US], ts])
    packet = [events[(events["t"] >= edges[i]) & (events["t"] < edges[i + 1])] for i in range(len(ts))]
    tr = small_tracker(motion=1.0, size_lr=0.0)
    tr.init(packet[0], boxes[0])
    for i in range(1, 4):
        tr.update(packet[i])  # a velocity builds up, so the crop moves off the box
    x, crop = tr.search_input(packet[4])
    with torch.inference_mode():
        _, score = decode_boxes(tr.model(None, x, z_feat=tr.template_features), tr.window)
    r = tr.update(packet[4])
    assert crop == r.search_crop and float(score[0]) == r.score


def test_checkpoint_tracking_options_are_the_defaults(tmp_path):
    from evtrack.errors import FormatError
    from evtrack.network.checkpoint import load_checkpoint, set_tracking_options

    torch.manual_seed(0)
    path = save_checkpoint(tmp_path / "c.pt", create_model("tiny", **SMALL), tracking={"min_score": 0.3})
    assert load_tracker(path).min_score == 0.3 and load_tracker(path).motion == 0.0
    assert load_tracker(path, min_score=0.1, motion=None).min_score == 0.1  # explicit wins, None = stored
    set_tracking_options(path, {"min_score": 0.2, "motion": 1.0})
    assert load_checkpoint(path)["tracking"] == {"min_score": 0.2, "motion": 1.0}
    t = load_tracker(path)
    assert (t.min_score, t.motion) == (0.2, 1.0)
    set_tracking_options(path, {"min_score": 0.3, "motion": 1.0, "min_score_pruned": 0.15})
    assert load_tracker(path).min_score == 0.3  # dense: min_score
    assert load_tracker(path, keep="0.5").min_score == 0.15  # token-pruned: min_score_pruned
    assert load_tracker(path, keep="0.5", min_score=0.4).min_score == 0.4  # explicit still wins
    with pytest.raises(FormatError, match="unknown tracking option 'speed'"):
        set_tracking_options(path, {"speed": 1.0})
    with pytest.raises(FormatError, match="'min_score' is 'high'"):
        save_checkpoint(tmp_path / "d.pt", create_model("tiny", **SMALL), tracking={"min_score": "high"})
    assert not (tmp_path / "d.pt").exists()


def test_template_waits_for_a_packet_with_events(clip):
    """A recording converted from video has no events in its first frame: the template comes from the
    next packet at the init box, and that frame reports the init box."""
    events, boxes, ts = clip
    tracker = small_tracker()
    empty = events[:0]
    tracker.init(empty, boxes[0])
    assert tracker.template_features is None
    second = events[(events["t"] >= ts[0]) & (events["t"] < ts[1])]
    res = tracker.update(second)
    assert np.allclose(res.box, boxes[0]) and res.score == 0.0 and tracker.template_features is not None
    ref = small_tracker()
    ref.init(second, boxes[0])  # the same template as initialising on that packet directly
    assert torch.equal(tracker.template_features, ref.template_features)
    third = events[(events["t"] >= ts[1]) & (events["t"] < ts[2])]
    assert np.allclose(tracker.update(third).box, ref.update(third).box)


def test_template_crop_floor_for_small_targets(clip):
    """min_template_crop_px floors the template crop as min_search_crop_px floors the search crop; the
    default (0) keeps the plain 2x crop, so checkpoints saved before the field track as they did."""
    events, boxes, ts = clip
    first = events[events["t"] < ts[0]]
    small = np.array([boxes[0][0], boxes[0][1], 6.0, 6.0])
    torch.manual_seed(0)
    plain = Tracker(create_model("tiny", **SMALL), sensor_size=SENSOR).init(first, small).search_crop
    torch.manual_seed(0)
    floored = Tracker(create_model("tiny", **SMALL, min_template_crop_px=24.0), sensor_size=SENSOR)
    crop = floored.init(first, small).search_crop
    # init reports the template crop (x0, y0, side, side)
    assert np.isclose(plain[2], 12.0) and np.isclose(crop[2], 24.0)
    assert np.isclose(crop[0] + crop[2] / 2, plain[0] + plain[2] / 2)  # same centre
    big = np.array([boxes[0][0], boxes[0][1], 20.0, 20.0])  # above the floor: unchanged
    assert np.isclose(floored.init(first, big).search_crop[2], 40.0)


def test_window_power_keeps_the_peak_near_the_last_position(tmp_path):
    """A look-alike peak off-centre beats a weaker peak at the centre under the plain Hann window, not
    under a sharper one; the power is a stored tracking option like min_score."""
    from evtrack.network.checkpoint import set_tracking_options
    from evtrack.network.head import decode_boxes, hann_window

    n = small_tracker().cfg.search_feat
    assert torch.equal(small_tracker(window_power=3.0).window, hann_window(n, n) ** 3)
    logits = torch.full((1, n, n), -6.0)
    centre, far = (n // 2, n // 2), (n // 2, n // 2 + 3)
    logits[0, centre[0], centre[1]] = 0.0  # score 0.5 where the target was
    logits[0, far[0], far[1]] = 4.0  # score 0.98 on a look-alike 3 cells away
    out = {"score": logits, "offset": torch.zeros(1, 2, n, n), "size": torch.full((1, 2, n, n), 0.1)}
    for power, expect in ((1.0, far), (4.0, centre)):
        boxes, score = decode_boxes(out, small_tracker(window_power=power).window)
        assert round(float(boxes[0, 0]) * n) == expect[1] and round(float(boxes[0, 1]) * n) == expect[0]
        assert float(score[0]) == pytest.approx(0.98 if expect == far else 0.5, abs=0.01)  # raw, unwindowed
    with pytest.raises(UserError, match="window_power must be > 0"):
        small_tracker(window_power=0.0)
    torch.manual_seed(0)
    path = save_checkpoint(tmp_path / "c.pt", create_model("tiny", **SMALL))
    assert load_tracker(path).window_power == 1.0
    set_tracking_options(path, {"min_score": 0.3, "window_power": 2.0})
    assert load_tracker(path).window_power == 2.0 and load_tracker(path, window_power=1.5).window_power == 1.5
