"""Representations against slow, independent references (numpy scatter, tonic, pure-Python loops)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evtrack.errors import FormatError, UserError
from evtrack.io.events import EVENT_DTYPE, make_events
from evtrack.io.representations import (
    CountFrame,
    SDTrackFrame,
    SDTrackStream,
    TimeSurface,
    VoxelGrid,
    count_frame,
    sdtrack_frame,
    time_surface,
    voxel_grid,
)

H, W = 26, 34  # small sensor so references stay fast; real sizes are covered in the last tests


def rand_events(n: int, height: int = H, width: int = W, duration_us: int = 10_000, seed: int = 0):
    rng = np.random.default_rng(seed)
    return make_events(
        np.sort(rng.integers(0, duration_us, n)),
        rng.integers(0, width, n),
        rng.integers(0, height, n),
        rng.integers(0, 2, n),
    )


# ----------------------------------------------------------------------------- references


def ref_voxel(ev, height, width, n_bins, t0=None, t1=None):
    """E-RAFT voxel grid by np.add.at, float64."""
    grid = np.zeros(n_bins * height * width)
    t = ev["t"].astype(np.float64)
    t0 = t[0] if t0 is None else t0
    t1 = t[-1] if t1 is None else t1
    tn = (n_bins - 1) * (t - t0) / (t1 - t0) if t1 > t0 else np.zeros_like(t)
    pol = np.where(ev["p"] == 1, 1.0, -1.0)
    pix = ev["y"].astype(np.int64) * width + ev["x"]
    for b in range(n_bins):
        w = np.maximum(0.0, 1.0 - np.abs(tn - b))
        np.add.at(grid, b * height * width + pix, pol * w)
    return grid.reshape(n_bins, height, width)


def ref_counts(ev, height, width):
    out = np.zeros((2, height, width))
    for c, pv in ((0, 1), (1, 0)):
        sel = ev["p"] == pv
        pix = ev["y"][sel].astype(np.int64) * width + ev["x"][sel]
        out[c] = np.bincount(pix, minlength=height * width).reshape(height, width)
    return out


def ref_sdtrack(ev, height, width, n_sub, stack=30.0, decay=0.8, t0=None, t1=None):
    """Pure-Python event loop in the style of SDTrack's GTP script (raw 0..255 values)."""
    t0 = int(ev["t"][0]) if t0 is None else t0
    t1 = int(ev["t"][-1]) if t1 is None else t1
    subs = [[np.zeros((height, width)), np.zeros((height, width))] for _ in range(n_sub)]
    pos = np.zeros((height, width))
    neg = np.zeros((height, width))
    for e in ev:
        s = n_sub - 1 if t1 == t0 else min(n_sub - 1, int((int(e["t"]) - t0) * n_sub // (t1 - t0)))
        if e["p"] == 1:
            pos[e["y"], e["x"]] = min(255.0, pos[e["y"], e["x"]] + stack)
            subs[s][0][e["y"], e["x"]] += 1
        else:
            neg[e["y"], e["x"]] = min(255.0, neg[e["y"], e["x"]] + stack)
            subs[s][1][e["y"], e["x"]] += 1
    hidden = np.zeros((height, width))
    last_pos = np.zeros((height, width))
    last_neg = np.zeros((height, width))
    for cur_pos, cur_neg in subs:
        hidden = hidden * decay
        hidden[(last_pos == 0) & (cur_pos != 0)] += stack
        hidden[(last_neg == 0) & (cur_neg != 0)] += stack
        hidden = np.clip(hidden, 0, 255)
        last_pos, last_neg = cur_pos, cur_neg
    return np.stack([pos, neg, hidden])


def ref_time_surface(ev, height, width, tau, t_ref=None):
    last = np.full((2, height, width), -1.0)
    for e in ev:
        last[0 if e["p"] == 1 else 1, e["y"], e["x"]] = e["t"]
    t_ref = ev["t"][-1] if t_ref is None else t_ref
    return np.where(last >= 0, np.exp(-(t_ref - last) / tau), 0.0)


def pad_crop(full, x0, y0, w, h):
    """Integer crop of ``[C, H, W]`` that may leave the frame; zero outside."""
    c, fh, fw = full.shape
    out = np.zeros((c, h, w), full.dtype)
    xs, ys = max(x0, 0), max(y0, 0)
    xe, ye = min(x0 + w, fw), min(y0 + h, fh)
    if xe > xs and ye > ys:
        out[:, ys - y0 : ye - y0, xs - x0 : xe - x0] = full[:, ys:ye, xs:xe]
    return out


def block_reduce(a, k, fn=np.sum):
    c, h, w = a.shape
    return fn(a.reshape(c, h // k, k, w // k, k), axis=(2, 4))


# ----------------------------------------------------------------------------- voxel grid


@pytest.mark.parametrize("n_bins", [1, 2, 5, 9])
def test_voxel_matches_numpy_reference(n_bins):
    ev = rand_events(5_000, seed=n_bins)
    got = voxel_grid(ev, (H, W), n_bins)
    assert got.dtype == np.float32 and got.shape == (n_bins, H, W) and got.flags.c_contiguous
    np.testing.assert_allclose(got, ref_voxel(ev, H, W, n_bins), rtol=1e-5, atol=1e-4)
    # every event keeps total weight |pol| = 1 when t0/t1 are the first/last event time
    np.testing.assert_allclose(got.sum(), np.where(ev["p"] == 1, 1, -1).sum(), atol=1e-2)


def test_voxel_explicit_time_bounds_use_tent_weights():
    ev = rand_events(3_000, duration_us=10_000, seed=3)
    got = voxel_grid(ev, (H, W), 4, t0_us=2_000, t1_us=8_000)
    np.testing.assert_allclose(got, ref_voxel(ev, H, W, 4, t0=2_000, t1=8_000), rtol=1e-5, atol=1e-4)


def test_voxel_matches_tonic_with_documented_offset():
    """tonic normalises with B (not B-1) and drops bin B: tonic(B) == ours(B + 1)[:B]."""
    tonic_vg = pytest.importorskip("tonic.functional.to_voxel_grid")
    ev = rand_events(4_000, seed=11)
    tonic_ev = np.empty(len(ev), dtype=[("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "i1")])
    for name in "txyp":
        tonic_ev[name] = ev[name]
    before = tonic_ev.copy()
    theirs = tonic_vg.to_voxel_grid_numpy(tonic_ev.copy(), (W, H, 2), n_time_bins=5)
    np.testing.assert_array_equal(tonic_ev, before)  # we passed a copy: tonic rewrites p=0 to -1
    assert theirs.shape == (5, 1, H, W)
    ours = voxel_grid(ev, (H, W), 6)[:5]
    np.testing.assert_allclose(ours, theirs[:, 0], rtol=1e-5, atol=1e-4)
    # and the plain definitions really differ (tonic loses the last event and rescales time)
    assert not np.allclose(voxel_grid(ev, (H, W), 5), theirs[:, 0], atol=1e-3)


def test_voxel_single_and_same_time_events():
    one = make_events([7], [3], [2], [1])
    got = voxel_grid(one, (H, W), 3)
    expected = np.zeros((3, H, W), np.float32)
    expected[0, 2, 3] = 1.0
    np.testing.assert_array_equal(got, expected)
    two = make_events([5, 5], [1, 1], [1, 1], [0, 0])
    assert voxel_grid(two, (H, W), 3)[0, 1, 1] == -2.0


# ----------------------------------------------------------------------------- count frame


def test_count_frame_matches_bincount():
    ev = rand_events(20_000, seed=5)
    got = count_frame(ev, (H, W))
    assert got.shape == (2, H, W) and got.dtype == np.float32
    np.testing.assert_array_equal(got, ref_counts(ev, H, W))
    assert got[0].sum() == (ev["p"] == 1).sum()  # channel 0 is ON


def test_bool_polarity_is_read_as_on_off_not_all_positive():
    """tonic-style bool polarity: False must mean OFF (-1), not be counted as positive."""
    ev = rand_events(2_000, seed=14)
    as_bool = np.empty(len(ev), dtype=[("t", "<u8"), ("x", "<u2"), ("y", "<u2"), ("p", "?")])
    for name in "txyp":
        as_bool[name] = ev[name]
    np.testing.assert_array_equal(voxel_grid(as_bool, (H, W), 3), voxel_grid(ev, (H, W), 3))
    assert (voxel_grid(as_bool, (H, W), 3) < 0).any()


def test_count_frame_real_recording_noncanonical_dtype(shared_data):
    ev = np.load(shared_data / "events" / "evt3_sample.npy")  # p stored as u1
    assert ev["p"].dtype == np.uint8
    got = count_frame(ev, (720, 1280))
    canon = make_events(ev["t"], ev["x"], ev["y"], ev["p"])
    np.testing.assert_array_equal(got, ref_counts(canon, 720, 1280))
    assert got.sum() == len(ev)


# ----------------------------------------------------------------------------- SDTrack frame


@pytest.mark.parametrize("n_sub", [1, 3, 4])
def test_sdtrack_matches_python_reference(n_sub):
    # few pixels and many events so counts saturate at 255 and the trajectory builds up
    ev = rand_events(3_000, height=6, width=7, seed=20 + n_sub)
    got = sdtrack_frame(ev, (6, 7), n_sub=n_sub, raw=True)
    ref = ref_sdtrack(ev, 6, 7, n_sub)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-3)
    assert got[:2].max() == 255.0
    scaled = sdtrack_frame(ev, (6, 7), n_sub=n_sub)
    np.testing.assert_allclose(scaled, ref / 255.0, rtol=1e-5, atol=1e-5)


def test_sdtrack_sparse_events_trajectory_values():
    # ON event at pixel (1, 1) in sub-slice 0 only, OFF events at (2, 2) in sub-slices 0 and 3
    ev = make_events([0, 0, 100, 399, 400], [1, 2, 5, 2, 2], [1, 2, 5, 2, 2], [1, 0, 1, 0, 0])
    got = sdtrack_frame(ev, (6, 6), n_sub=4, raw=True)
    assert got[0, 1, 1] == 30.0 and got[1, 2, 2] == 90.0
    # (1,1): new in sub 0 -> 30, then decays over 3 more sub-slices
    assert got[2, 1, 1] == pytest.approx(30 * 0.8**3, rel=1e-6)
    # (2,2): new in sub 0 and again in sub 3 (absent in sub 2)
    assert got[2, 2, 2] == pytest.approx(30 * 0.8**3 + 30, rel=1e-6)
    # (5,5): event at t=100 lands in sub-slice 1 of [0, 400]
    assert got[2, 5, 5] == pytest.approx(30 * 0.8**2, rel=1e-6)


def test_sdtrack_reference_on_real_events(shared_data):
    ev = np.load(shared_data / "events" / "evt3_sample.npy")[:4_000]
    canon = make_events(ev["t"], ev["x"] - ev["x"].min(), ev["y"] - ev["y"].min(), ev["p"])
    hh, ww = int(canon["y"].max()) + 1, int(canon["x"].max()) + 1
    got = sdtrack_frame(canon, (hh, ww), n_sub=4, raw=True)
    np.testing.assert_allclose(got, ref_sdtrack(canon, hh, ww, 4), rtol=1e-5, atol=1e-3)


def ref_gtp_sequence(ev, edges, height, width, stack=30.0, decay=0.8):
    """SDTrack's released GTP loop (inter1: one slice per interval, state across intervals), as uint8 PNGs."""
    images = []
    hidden = np.zeros((height, width), np.uint8)
    last_pos = np.zeros((height, width), np.uint8)
    last_neg = np.zeros((height, width), np.uint8)
    started = False
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        pos = np.zeros((height, width), np.uint8)
        neg = np.zeros((height, width), np.uint8)
        for e in ev[(ev["t"] >= a) & (ev["t"] < b)]:
            img = pos if e["p"] == 1 else neg
            img[e["y"], e["x"]] = min(255, img[e["y"], e["x"]] + stack)
        if started:
            hidden = hidden * decay  # becomes float64 and stays so, as in the script
            hidden[(last_pos == 0) & (pos != 0)] += stack
            hidden[(last_neg == 0) & (neg != 0)] += stack
            hidden = np.clip(hidden, 0, 255)
        started = True
        last_pos, last_neg = pos, neg
        png = np.zeros((3, height, width), np.uint8)
        png[0], png[1], png[2] = pos, neg, hidden  # uint8 assignment floors like cv2.imwrite input
        images.append(png)
    return images


def test_sdtrack_stream_matches_released_script_loop():
    ev = rand_events(6_000, height=8, width=9, duration_us=6_000, seed=31)
    edges = np.arange(0, 6_001, 1_000)
    ref = ref_gtp_sequence(ev, edges, 8, 9)
    stream = SDTrackStream((8, 9), raw=True)
    for i, (a, b) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        got = stream(ev[(ev["t"] >= a) & (ev["t"] < b)])
        np.testing.assert_array_equal(got, ref[i].astype(np.float32), err_msg=f"interval {i}")
    assert not ref[0][2].any() and ref[-1][2].any()  # first interval: no trajectory yet
    stream.reset()
    np.testing.assert_array_equal(stream(ev[ev["t"] < 1_000]), ref[0].astype(np.float32))
    np.testing.assert_allclose(SDTrackStream((8, 9))(ev[ev["t"] < 1_000]), ref[0] / 255.0, rtol=1e-6)


def test_sdtrack_stream_empty_interval_clears_activity():
    stream = SDTrackStream((4, 4), raw=True)
    stream(make_events([0], [1], [1], [1]))
    assert stream(make_events([10], [1], [1], [1]))[2, 1, 1] == 0.0  # active before: not new
    assert stream(np.empty(0, EVENT_DTYPE))[2, 1, 1] == 0.0  # 0 * 0.8
    assert stream(make_events([30], [1], [1], [1]))[2, 1, 1] == 30.0  # new again after a gap


# ----------------------------------------------------------------------------- time surface


def test_time_surface_matches_reference():
    ev = rand_events(4_000, seed=9)
    got = time_surface(ev, (H, W), tau_us=3_000.0)
    np.testing.assert_allclose(got, ref_time_surface(ev, H, W, 3_000.0), rtol=1e-5, atol=1e-6)
    later = time_surface(ev, (H, W), tau_us=3_000.0, t_ref_us=20_000)
    np.testing.assert_allclose(later, ref_time_surface(ev, H, W, 3_000.0, 20_000), rtol=1e-5, atol=1e-7)


# ----------------------------------------------------------------------------- crop and resample


def _all_full(ev, height, width):
    return {
        "voxel": voxel_grid(ev, (height, width), 3),
        "count": count_frame(ev, (height, width)),
        "ts": time_surface(ev, (height, width), tau_us=2_000.0),
    }


def _all_crop(ev, height, width, crop, out_size=None):
    return {
        "voxel": voxel_grid(ev, (height, width), 3, crop=crop, out_size=out_size),
        "count": count_frame(ev, (height, width), crop=crop, out_size=out_size),
        "ts": time_surface(ev, (height, width), tau_us=2_000.0, crop=crop, out_size=out_size),
    }


@pytest.mark.parametrize("crop", [(5, 4, 12, 10), (-6, -3, 20, 15), (25, 18, 16, 14), (-10, -10, 60, 50)])
def test_crop_equals_padded_slice_of_full_frame(crop):
    ev = rand_events(8_000, seed=2)
    full = _all_full(ev, H, W)
    cropped = _all_crop(ev, H, W, crop)
    for name in full:
        assert cropped[name].shape[1:] == (crop[3], crop[2])
        np.testing.assert_allclose(cropped[name], pad_crop(full[name], *crop), atol=1e-5, err_msg=name)
    # SDTrack: the trajectory uses sub-slices of the whole event time range, so crop == slice too
    sd_full = sdtrack_frame(ev, (H, W), raw=True)
    sd_crop = sdtrack_frame(ev, (H, W), raw=True, crop=crop)
    np.testing.assert_allclose(sd_crop, pad_crop(sd_full, *crop), atol=1e-4)


def test_crop_entirely_outside_sensor_is_zero():
    ev = rand_events(1_000, seed=4)
    assert not count_frame(ev, (H, W), crop=(100, 100, 8, 8)).any()


@pytest.mark.parametrize("k", [2, 3])
def test_downscale_is_sum_pooling_of_the_crop(k):
    ev = rand_events(8_000, seed=k)
    crop = (-3, 2, 12 * k // 2 * 2, 6 * k)
    cw, ch = crop[2], crop[3]
    out_size = (ch // k, cw // k)
    full = _all_full(ev, H, W)
    small = _all_crop(ev, H, W, crop, out_size)
    for name in ("voxel", "count"):
        ref = block_reduce(pad_crop(full[name], *crop), k)
        np.testing.assert_allclose(small[name], ref, atol=1e-4, err_msg=name)
    np.testing.assert_allclose(small["ts"], block_reduce(pad_crop(full["ts"], *crop), k, np.max), atol=1e-6)


@pytest.mark.parametrize("k", [2, 4])
def test_integer_upscale_is_nearest_neighbour(k):
    ev = rand_events(3_000, seed=7)
    crop = (20, 15, 10, 8)
    full = _all_full(ev, H, W)
    big = _all_crop(ev, H, W, crop, (8 * k, 10 * k))
    for name in full:
        ref = np.repeat(np.repeat(pad_crop(full[name], *crop), k, axis=1), k, axis=2)
        np.testing.assert_allclose(big[name], ref, atol=1e-5, err_msg=name)
    # SDTrack under pure upscaling is the same image, enlarged
    sd_full = sdtrack_frame(ev, (H, W), raw=True)
    sd_big = sdtrack_frame(ev, (H, W), raw=True, crop=crop, out_size=(8 * k, 10 * k))
    ref = np.repeat(np.repeat(pad_crop(sd_full, *crop), k, axis=1), k, axis=2)
    np.testing.assert_allclose(sd_big, ref, atol=1e-4)


def test_fractional_upscale_samples_pixel_under_each_output_centre():
    ev = rand_events(3_000, seed=8)
    crop = (3.25, -2.5, 13.5, 9.0)  # float crop, partly outside the sensor
    out_h, out_w = 32, 40
    full = count_frame(ev, (H, W))
    got = count_frame(ev, (H, W), crop=crop, out_size=(out_h, out_w))
    ref = np.zeros((2, out_h, out_w), np.float32)
    for v in range(out_h):
        sy = math.floor(crop[1] + (v + 0.5) * crop[3] / out_h)
        for u in range(out_w):
            sx = math.floor(crop[0] + (u + 0.5) * crop[2] / out_w)
            if 0 <= sx < W and 0 <= sy < H:
                ref[:, v, u] = full[:, sy, sx]
    np.testing.assert_array_equal(got, ref)


def test_fractional_downscale_keeps_every_event_inside_the_crop():
    ev = rand_events(5_000, seed=12)
    crop = (2.3, 1.7, 29.0, 21.0)
    got = count_frame(ev, (H, W), crop=crop, out_size=(8, 11))
    cx, cy = ev["x"] + 0.5, ev["y"] + 0.5  # pixel centres decide membership
    inside = (cx >= crop[0]) & (cx < crop[0] + crop[2]) & (cy >= crop[1]) & (cy < crop[1] + crop[3])
    assert got.sum() == inside.sum()
    # each event lands in the output cell whose footprint holds its centre
    ref = np.zeros((2, 8, 11))
    for e, ok in zip(ev, inside, strict=True):
        if ok:
            u = int((e["x"] + 0.5 - crop[0]) // (crop[2] / 11))
            v = int((e["y"] + 0.5 - crop[1]) // (crop[3] / 8))
            ref[0 if e["p"] == 1 else 1, v, u] += 1
    np.testing.assert_array_equal(got, ref)


def test_downscaled_sdtrack_is_sdtrack_of_the_coarse_grid():
    """Non-linear channels are computed on the output grid (a virtual coarse sensor)."""
    ev = rand_events(4_000, seed=13)
    coarse = make_events(ev["t"], ev["x"] // 2, ev["y"] // 2, ev["p"])
    got = sdtrack_frame(ev, (H, W), n_sub=3, raw=True, out_size=(H // 2, W // 2))
    np.testing.assert_allclose(got, ref_sdtrack(coarse, H // 2, W // 2, 3), atol=1e-3)


# ----------------------------------------------------------------------------- threads, empty, wrappers


@pytest.mark.parametrize("n_threads", [2, 3])
def test_threads_match_single_thread(n_threads):
    ev = rand_events(30_000, seed=1)
    kw = dict(crop=(-4, 3, 30, 20), out_size=(40, 60))
    np.testing.assert_allclose(
        voxel_grid(ev, (H, W), 5, n_threads=n_threads, **kw), voxel_grid(ev, (H, W), 5, **kw), atol=1e-4
    )
    np.testing.assert_array_equal(count_frame(ev, (H, W), n_threads=n_threads), count_frame(ev, (H, W)))
    np.testing.assert_array_equal(
        sdtrack_frame(ev, (H, W), n_threads=n_threads, **kw), sdtrack_frame(ev, (H, W), **kw)
    )
    np.testing.assert_array_equal(
        time_surface(ev, (H, W), n_threads=n_threads, **kw), time_surface(ev, (H, W), **kw)
    )


@pytest.mark.parametrize(
    "fn, kwargs, channels",
    [(voxel_grid, {"n_bins": 4}, 4), (count_frame, {}, 2), (sdtrack_frame, {}, 3), (time_surface, {}, 2)],
)
@pytest.mark.parametrize("n_threads", [1, 2])
def test_empty_input_gives_zeros_of_the_right_shape(fn, kwargs, channels, n_threads):
    empty = np.empty(0, EVENT_DTYPE)
    out = fn(empty, (H, W), n_threads=n_threads, **kwargs)
    assert out.shape == (channels, H, W) and out.dtype == np.float32 and not out.any()
    out = fn(empty, (H, W), crop=(1, 2, 10, 5), out_size=(7, 9), **kwargs)
    assert out.shape == (channels, 7, 9) and not out.any()


def test_single_event_everywhere():
    one = make_events([1_000], [4], [3], [0])
    assert count_frame(one, (H, W))[1, 3, 4] == 1.0 and count_frame(one, (H, W)).sum() == 1.0
    sd = sdtrack_frame(one, (H, W), raw=True)
    assert (sd[:, 3, 4] == [0.0, 30.0, 30.0]).all() and sd.sum() == 60.0
    # with explicit bounds the event sits in sub-slice 0 of 4 and its trajectory has decayed 3 times
    sd = sdtrack_frame(one, (H, W), raw=True, t0_us=1_000, t1_us=2_000)
    assert sd[2, 3, 4] == pytest.approx(30 * 0.8**3)
    ts = time_surface(one, (H, W), tau_us=100.0, t_ref_us=1_100)
    assert ts[1, 3, 4] == pytest.approx(math.exp(-1.0)) and ts.sum() == pytest.approx(math.exp(-1.0))


def test_wrappers_only_forward():
    ev = rand_events(2_000, seed=6)
    np.testing.assert_array_equal(VoxelGrid(5, (H, W))(ev), voxel_grid(ev, (H, W), 5))
    np.testing.assert_array_equal(CountFrame((H, W))(ev, crop=(1, 1, 5, 5)), count_frame(ev, (H, W), crop=(1, 1, 5, 5)))
    np.testing.assert_array_equal(SDTrackFrame((H, W), n_sub=2)(ev), sdtrack_frame(ev, (H, W), n_sub=2))
    np.testing.assert_array_equal(TimeSurface((H, W), 500.0)(ev), time_surface(ev, (H, W), tau_us=500.0))
    with pytest.raises(AttributeError):
        VoxelGrid(5, (H, W)).n_bins = 3  # frozen


# ----------------------------------------------------------------------------- bad input


BUILDERS = {
    "voxel": lambda e, n: voxel_grid(e, (H, W), 3, n_threads=n),
    "count": lambda e, n: count_frame(e, (H, W), n_threads=n),
    "sdtrack": lambda e, n: sdtrack_frame(e, (H, W), n_threads=n),
    "time_surface": lambda e, n: time_surface(e, (H, W), n_threads=n),
}


@pytest.mark.parametrize("name", list(BUILDERS))
@pytest.mark.parametrize("n_threads", [1, 2])
def test_bad_events_name_the_offending_event(name, n_threads):
    def call(e):
        return BUILDERS[name](e, n_threads)

    ev = rand_events(1_000, seed=3)
    unsorted = ev.copy()
    unsorted["t"][700] = unsorted["t"][699] - 1
    with pytest.raises(FormatError, match=r"not sorted by time at event 700"):
        call(unsorted)
    wide = ev.copy()
    wide["x"][600] = W
    with pytest.raises(FormatError, match=rf"event 600 has x={W}, expected 0 <= x < {W}"):
        call(wide)
    neg = ev.copy()
    neg["y"][10] = -1
    with pytest.raises(FormatError, match=r"event 10 has y=-1"):
        call(neg)
    pol = ev.copy()
    pol["p"][999] = 2
    with pytest.raises(FormatError, match=r"event 999 has polarity p=2"):
        call(pol)


def test_bad_arguments_raise_user_errors():
    ev = rand_events(100)
    with pytest.raises(UserError, match="missing field"):
        count_frame(np.zeros(3, dtype=[("t", "<i8"), ("x", "<i2")]), (H, W))
    with pytest.raises(UserError, match="structured array"):
        count_frame(np.zeros((3, 4)), (H, W))
    with pytest.raises(UserError, match="n_bins"):
        voxel_grid(ev, (H, W), 0)
    with pytest.raises(UserError, match="crop"):
        count_frame(ev, (H, W), crop=(0, 0, 0, 5))
    with pytest.raises(UserError, match="out_size"):
        count_frame(ev, (H, W), out_size=(0, 5))
    with pytest.raises(UserError, match="n_threads"):
        count_frame(ev, (H, W), n_threads=0)
    with pytest.raises(UserError, match="sensor_size"):
        count_frame(ev, (0, W))
    with pytest.raises(UserError, match="t_ref_us"):
        time_surface(ev, (H, W), t_ref_us=int(ev["t"][-1]) - 1)
    with pytest.raises(UserError, match="t1_us"):
        voxel_grid(ev, (H, W), 3, t0_us=10, t1_us=5)
