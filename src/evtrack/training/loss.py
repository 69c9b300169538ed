"""Tracking loss of SDTrack / OSTrack: 2 * GIoU + 5 * L1 on the box plus a focal loss on a Gaussian
centre map. Boxes are normalised crop coordinates ``cx, cy, w, h`` in 0..1."""

from __future__ import annotations

from dataclasses import dataclass

import torch

GIOU_WEIGHT = 2.0
L1_WEIGHT = 5.0
FOCAL_WEIGHT = 1.0


@dataclass(frozen=True)
class LossWeights:
    giou: float = GIOU_WEIGHT
    l1: float = L1_WEIGHT
    focal: float = FOCAL_WEIGHT


def cxcywh_to_xyxy(b: torch.Tensor) -> torch.Tensor:
    cx, cy, w, h = b.unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)


def giou_loss(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean ``1 - GIoU`` and the per-box IoU (detached) of ``[B, 4]`` cx,cy,w,h boxes."""
    p, t = cxcywh_to_xyxy(pred), cxcywh_to_xyxy(target)
    area_p = (p[:, 2] - p[:, 0]).clamp(min=0) * (p[:, 3] - p[:, 1]).clamp(min=0)
    area_t = (t[:, 2] - t[:, 0]).clamp(min=0) * (t[:, 3] - t[:, 1]).clamp(min=0)
    lt = torch.maximum(p[:, :2], t[:, :2])
    rb = torch.minimum(p[:, 2:], t[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    union = area_p + area_t - inter
    iou = inter / union.clamp(min=1e-7)
    lt_c = torch.minimum(p[:, :2], t[:, :2])
    rb_c = torch.maximum(p[:, 2:], t[:, 2:])
    hull = (rb_c - lt_c).clamp(min=0).prod(-1)
    giou = iou - (hull - union) / hull.clamp(min=1e-7)
    return (1 - giou).mean(), iou.detach()


def centre_cells(boxes: torch.Tensor, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer cell ``(iy, ix)`` holding each box centre, clamped to the map."""
    ix = (boxes[:, 0] * w).floor().long().clamp(0, w - 1)
    iy = (boxes[:, 1] * h).floor().long().clamp(0, h - 1)
    return iy, ix


def gaussian_heatmap(boxes: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``[B, H, W]`` target: a Gaussian around the centre cell (exactly 1 there), sigma from box size.

    sigma = sqrt(w h) / 6 in cells (at least 0.5), so a larger target tolerates a wider peak.
    """
    b = boxes.shape[0]
    iy, ix = centre_cells(boxes, h, w)
    sigma = (torch.sqrt((boxes[:, 2] * w) * (boxes[:, 3] * h)) / 6).clamp(min=0.5)
    ys = torch.arange(h, dtype=boxes.dtype, device=boxes.device).view(1, h, 1)
    xs = torch.arange(w, dtype=boxes.dtype, device=boxes.device).view(1, 1, w)
    d2 = (ys - iy.view(b, 1, 1).to(boxes.dtype)) ** 2 + (xs - ix.view(b, 1, 1).to(boxes.dtype)) ** 2
    return torch.exp(-d2 / (2 * sigma.view(b, 1, 1) ** 2))


def focal_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss (alpha 2, beta 4), normalised by the number of peaks."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = target.ge(1.0 - 1e-6).to(logits.dtype)
    neg = 1.0 - pos
    pos_loss = -torch.log(p) * (1 - p) ** 2 * pos
    neg_loss = -torch.log(1 - p) * p**2 * (1 - target) ** 4 * neg
    return (pos_loss.sum() + neg_loss.sum()) / pos.sum().clamp(min=1.0)


def boxes_at(out: dict[str, torch.Tensor], iy: torch.Tensor, ix: torch.Tensor) -> torch.Tensor:
    """Predicted cx,cy,w,h boxes read at the given cells (training reads them at the true centre)."""
    _, h, w = out["score"].shape
    ar = torch.arange(iy.shape[0], device=iy.device)
    off = out["offset"][ar, :, iy, ix]
    size = out["size"][ar, :, iy, ix]
    cx = (ix.to(off.dtype) + off[:, 0]) / w
    cy = (iy.to(off.dtype) + off[:, 1]) / h
    return torch.stack([cx, cy, size[:, 0], size[:, 1]], dim=1)


def tracking_loss(
    out: dict[str, torch.Tensor], target: torch.Tensor, weights: LossWeights = LossWeights()
) -> tuple[torch.Tensor, dict[str, float]]:
    """Total loss and its parts (floats, for logging). ``target``: ``[B, 4]`` normalised cx,cy,w,h.

    A target of zero width marks a negative pair (the target is not in the search crop): its score
    map is pushed to zero everywhere and it has no box to regress.
    """
    _, h, w = out["score"].shape
    present = target[:, 2] > 0
    heat = gaussian_heatmap(target, h, w) * present.view(-1, 1, 1).to(target.dtype)
    l_focal = focal_loss(out["score"], heat)
    if bool(present.any()):
        pos = {k: v[present] for k, v in out.items()}
        tp = target[present]
        iy, ix = centre_cells(tp, h, w)
        pred = boxes_at(pos, iy, ix)
        l_giou, iou = giou_loss(pred, tp)
        l_l1 = torch.abs(pred - tp).mean()
    else:
        l_giou = l_l1 = out["score"].sum() * 0.0
        iou = torch.zeros(1)
    total = weights.giou * l_giou + weights.l1 * l_l1 + weights.focal * l_focal
    parts = {
        "loss": float(total.detach()),
        "giou": float(l_giou.detach()),
        "l1": float(l_l1.detach()),
        "focal": float(l_focal.detach()),
        "iou": float(iou.mean()),
    }
    return total, parts
