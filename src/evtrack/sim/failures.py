"""Why a tracker lost the target on a generated sequence: the scene is rebuilt from its seed.

A generated sequence is fully determined by the dataset's seed, its configuration (``dataset.json``)
and the sequence's split and index, so the distractors and occluders that the recording does not
annotate can be recomputed frame by frame. For every sequence this finds the first *loss* (the
first present frame from which the box misses the target, IoU <= ``miss_iou``, on at least
``miss_frames`` of the next ``window`` present frames) and names what the scene was doing there:

- ``distractor``: after the loss the box sits on a look-alike distractor (IoU > ``on_iou`` on at
  least ``miss_frames`` of the next ``window`` frames): the tracker switched objects;
- ``occlusion``: otherwise, the target was less than ``occluded_visibility`` visible in the frames
  just before the loss;
- ``distractor_near``: otherwise, a distractor came within one target size of the target there;
- ``other``: none of these (fast motion, low contrast, a scale change, ...);
- ``none``: the target was never lost.

Frames after the loss are what the loss costs in the success/precision curves.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evtrack.datasets.sequence import Sequence
from evtrack.errors import UserError
from evtrack.metrics.losses import MissRule, first_loss, locate_loss, summarise_losses
from evtrack.metrics.ope import centers, iou_inclusive
from evtrack.metrics.results import read_boxes
from evtrack.sim.dataset import SequenceConfig, dataset_config, ground_truth, sequence_scene, sequence_seed
from evtrack.sim.scenes import Scene

CAUSES = ("distractor", "occlusion", "distractor_near", "other", "none")


@dataclass(frozen=True)
class LossRules(MissRule):
    """Thresholds of the loss and cause definitions (module docstring)."""

    on_iou: float = 0.2
    occluded_visibility: float = 0.3
    before: int = 6  # frames before the loss inspected for occlusion / a nearby distractor


@dataclass(frozen=True)
class SequenceLoss:
    """The first loss of one sequence and its cause; ``loss`` is None when the target was never lost."""

    name: str
    n_frames: int
    loss: int | None
    cause: str
    min_visibility: float | None = None  # of the target, over the frames inspected before the loss
    nearest_distractor: float | None = None  # centre distance in target sizes, same frames
    frames_on_distractor: int = 0

    @property
    def frames_after(self) -> int:
        return 0 if self.loss is None else self.n_frames - self.loss


def rebuild_scene(seq: Sequence, split: str, seed: int, cfg: SequenceConfig) -> Scene:
    """The scene of generated sequence ``seq`` (named ``synth_<split>_<index>``, as the ``synthetic``
    dataset adapter loads it), checked against its boxes so a mismatched seed or configuration cannot go
    unnoticed."""
    where = seq.events_path.parent if seq.events_path is not None else seq.name
    try:
        index = int(seq.name.rsplit("_", 1)[1])
    except (IndexError, ValueError):
        raise UserError(f"{where}: expected a generated sequence named synth_{split}_<index>") from None
    scene, _ = sequence_scene(sequence_seed(seed, split, index), cfg)
    ts = seq.frame_times_us()
    probe = np.unique([0, len(ts) // 2, len(ts) - 1])
    boxes, _ = ground_truth(scene, ts[probe], cfg.absent_visibility)
    for i, box in zip(probe, boxes, strict=True):
        if not np.allclose(box, seq.boxes[i], atol=2e-3):
            raise UserError(f"{where}/groundtruth_rect.txt: frame {i} is {seq.boxes[i].tolist()}, the scene rebuilt "
                            f"from seed {seed} puts the target at {box.round(3).tolist()}; not made with this "
                            "dataset.json")
    return scene


def sequence_loss(scene: Scene, name: str, times_us: np.ndarray, gt: np.ndarray, absent: np.ndarray,
                  pred: np.ndarray, rules: LossRules = LossRules()) -> SequenceLoss:
    """The first loss of one tracked sequence and its cause (module docstring)."""
    loss = locate_loss(name, gt, absent, pred, rules)
    n = len(gt)
    if loss is None:
        return SequenceLoss(name, n, None, "none")
    t = times_us * 1e-6
    on = 0
    for f in range(loss, min(loss + rules.window, n)):
        if any(iou_inclusive(np.asarray(d.box(t[f]))[None], pred[f][None])[0] > rules.on_iou for d in scene.distractors):
            on += 1
    vis, near = 1.0, np.inf
    for f in range(max(loss - rules.before, 0), loss + 1):
        tb = scene.target_box(t[f])
        size = max(tb[2], tb[3], 1e-9)
        vis = min(vis, scene.target_visibility(t[f]))
        for d in scene.distractors:
            dc, tc = centers(np.array([d.box(t[f]), tb]))
            near = min(near, float(np.hypot(*(dc - tc))) / size)
    if on >= rules.miss_frames or on == n - loss:
        cause = "distractor"
    elif vis < rules.occluded_visibility:
        cause = "occlusion"
    elif near < 1.0:
        cause = "distractor_near"
    else:
        cause = "other"
    return SequenceLoss(name, n, loss, cause, round(vis, 3), None if np.isinf(near) else round(near, 3), on)


def analyse_results(root: str | Path, results_dir: str | Path, split: str = "test",
                    rules: LossRules = LossRules()) -> list[SequenceLoss]:
    """Losses of every sequence of ``<root>/<split>`` that has ``<results_dir>/<name>.txt`` (the files
    ``evtrack benchmark --out`` writes)."""
    from evtrack.datasets import load_dataset

    results_dir = Path(results_dir)
    seed, cfg = dataset_config(root)
    out = []
    for seq in load_dataset("synthetic", root, split):
        res = results_dir / f"{seq.name}.txt"
        if res.is_file():
            scene = rebuild_scene(seq, split, seed, cfg)
            out.append(sequence_loss(scene, seq.name, seq.frame_times_us(), seq.boxes, seq.absent, read_boxes(res), rules))
    if not out:
        raise UserError(f"{results_dir}: no result file for any sequence of {Path(root) / split}; expected "
                        "<name>.txt as written by `evtrack benchmark --out`")
    return out


def summarise(losses: list[SequenceLoss]) -> dict[str, dict[str, float]]:
    """Per cause: sequences, frames after the loss, and those frames as a share of all frames."""
    return summarise_losses(losses, CAUSES)


__all__ = ["CAUSES", "LossRules", "SequenceLoss", "analyse_results", "first_loss", "rebuild_scene", "sequence_loss",
           "summarise"]
