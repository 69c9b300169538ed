"""Float32 graph runtimes track like torch: on the shipped sample and on random inputs, dense and pruned.

Why the tolerances are not zero: every layer ends in an I-LIF neuron, ``round(clip(x, 0, D))``, so a
float32 sum taken in another order (ONNX Runtime's and OpenVINO's kernels vs torch's) moves a value that
sits within ~1e-6 of a rounding boundary to the neighbouring spike count, and the flip propagates. On the
shipped sample that happens in 1-4 of 49 frames; every other frame is identical to 1e-4. How often depends
on the CPU's vector width: an AMD AVX2 VM (2026-12-07) flips more often than the AVX-512 Intel ones the
tolerances were first measured on, and moves the peak by a cell of the score map where two cells nearly tie.
Pruned graphs are compared with torch's own scorer (``backend="torch"``, float32): the default Numba scorer
sums in float64, so near-tied tokens at the top-k boundary can be chosen differently, and the cached
keys/values then carry that difference on to every later frame (on the AMD VM one such choice at the
sample's 4th frame); so on the sample each pruned frame starts from a fresh state, and the state hand-over
is checked on random inputs (:func:`test_random_inputs_mostly_give_identical_outputs`: a graph that starts
from scratch every frame fails it).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evtrack.commands.demo import load_sample
from evtrack.metrics import evaluate_ope
from evtrack.network.head import decode_boxes
from evtrack.tracker.online import load_tracker, track_sequence

# Teacher-forced (both networks get the same crops): per frame, the decoded box (crop units) and peak score.
# One integer spike that rounds the other way moves a box by up to ~2% of the crop (measured 0.014 and 0.0203
# on Intel VMs), or, where two cells of the 16x16 score map nearly tie, moves the peak to the other one:
# 0.054 on the AMD VM with the window power 2 shipped on 2026-12-07. The bound is one cell plus that 2%.
BOX_TOL = 1 / 16 + 0.025
SCORE_TOL = 0.05
EXACT = 1e-4  # ... and at least EXACT_SHARE of the frames agree to this in every output
EXACT_SHARE = 0.9
AUC_TOL = 2.5  # end to end on the sample (each tracker follows its own boxes): AUC points (AMD VM: up to 1.81)
MEDIAN_PX_TOL = 2.5  # ... and the median frame's largest box difference, pixels (AMD VM: up to 1.99)
CASES = [(rt, keep) for keep in (None, "default") for rt in ("onnx", "openvino")]


def torch_tracker(keep):
    tr = load_tracker(keep=keep, n_threads=1)
    if keep is not None:
        tr.model.token_stack().scorer.backend = "torch"  # the float32 definition the graph traces
    return tr


@pytest.fixture(scope="module")
def sample():
    return load_sample()


def run(tracker, seq):
    with seq.open() as reader:
        return track_sequence(tracker, reader, seq.init_box, seq.frame_timestamps_us)


@pytest.mark.parametrize(("runtime", "keep"), CASES)
def test_runtime_matches_torch_frame_by_frame_on_the_sample(sample, runtime, keep):
    ref = torch_tracker(keep)
    other = load_tracker(keep=keep, n_threads=1, runtime=runtime)
    search, reset = ref.runner.search, ref.runner.reset
    rows = []

    def both(z_feat, x):
        if keep is not None:  # a fresh state every frame: one top-k near-tie would otherwise carry on
            reset_both()
        a, b = search(z_feat, x), other.runner.search(z_feat, x)
        (box_a, s_a), (box_b, s_b) = decode_boxes(a, ref.window), decode_boxes(b, ref.window)
        rows.append((float((box_a - box_b).abs().max()), float((s_a - s_b).abs().max()),
                     max(float((a[k] - b[k]).abs().max()) for k in a)))
        return a

    def reset_both():
        reset()
        other.runner.reset()

    ref.runner.search, ref.runner.reset = both, reset_both
    run(ref, sample)
    d = np.array(rows)
    assert len(d) >= 40
    assert d[:, 0].max() <= BOX_TOL and d[:, 1].max() <= SCORE_TOL, d.max(0)
    assert (d[:, 2] <= EXACT).mean() >= EXACT_SHARE, d[:, 2]


@pytest.mark.parametrize(("runtime", "keep"), CASES)
def test_runtime_tracks_the_sample_like_torch(sample, runtime, keep):
    boxes = {name: run(tr, sample).boxes for name, tr in
             (("torch", torch_tracker(keep)), (runtime, load_tracker(keep=keep, n_threads=1, runtime=runtime)))}
    auc = {k: evaluate_ope({"s": b}, {"s": sample.boxes}, {"s": sample.absent}).auc for k, b in boxes.items()}
    assert abs(auc["torch"] - auc[runtime]) <= AUC_TOL, auc
    assert np.median(np.abs(boxes["torch"] - boxes[runtime]).max(1)) <= MEDIAN_PX_TOL  # px: most frames agree


@pytest.fixture(scope="module")
def pairs():
    return {keep: (torch_tracker(keep), load_tracker(keep=keep, n_threads=1, runtime="onnx"))
            for keep in (None, "default")}


PROB_TOL = 0.1  # peak-probability difference a spike flip caused on random inputs: <= 0.04 on Intel, 0.07 on AMD


def random_frames(cfg, seed: int, density: float, n: int = 3):
    g = torch.Generator().manual_seed(seed)
    z = (torch.rand(1, 3, cfg.template_size, cfg.template_size, generator=g) < density).float()
    return z, [(torch.rand(1, 3, cfg.search_size, cfg.search_size, generator=g) < density).float() for _ in range(n)]


def compare(ref, other, z, frames):
    """Per frame: (largest |probability| difference, largest decoded-box difference, exact to EXACT)."""
    ref.runner.reset()
    other.runner.reset()
    z_feat = ref.runner.template(z)
    rows = []
    for x in frames:  # one after another: the pruned graph's state carries over
        a, b = ref.runner.search(z_feat, x), other.runner.search(z_feat, x)
        prob = float((torch.sigmoid(a["score"]) - torch.sigmoid(b["score"])).abs().max())
        box = float((decode_boxes(a)[0] - decode_boxes(b)[0]).abs().max())
        rows.append((prob, box, max(float((a[k] - b[k]).abs().max()) for k in a) <= EXACT))
    return rows


@settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31 - 1), density=st.floats(0.01, 0.4), keep=st.sampled_from([None, "default"]))
def test_random_inputs_give_close_outputs(pairs, seed, density, keep):
    ref, other = pairs[keep]
    for prob, _, _ in compare(ref, other, *random_frames(ref.cfg, seed, density)):
        # the probability maps, not the decoded boxes: random inputs give flat maps whose near-tied peaks
        # lie anywhere, so a flip may move the argmax far (0.56 of the crop on the AMD VM, probabilities 0.09 apart)
        assert prob <= PROB_TOL, prob


@pytest.mark.parametrize("keep", [None, "default"])
def test_random_inputs_mostly_give_identical_outputs(pairs, keep):
    """Flips are rare: most frames of random sequences agree to EXACT in every output."""
    ref, other = pairs[keep]
    rows = [r for seed in range(8) for r in compare(ref, other, *random_frames(ref.cfg, seed, (0.01, 0.06, 0.2, 0.4)[seed % 4]))]
    assert np.mean([exact for _, _, exact in rows]) >= 0.75, rows
