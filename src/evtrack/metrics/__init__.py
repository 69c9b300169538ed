"""Tracking metrics: official-kit-exact OPE (success / precision / normalised precision),
multi-object metrics via motmetrics, result-file I/O and plots."""

from evtrack.metrics.ope import (
    NORM_PRECISION_THRESHOLDS,
    PRECISION_THRESHOLDS_PX,
    SUCCESS_THRESHOLDS,
    OPEResult,
    SequenceErrors,
    attribute_breakdown,
    evaluate_ope,
    iou_inclusive,
    sequence_errors,
)
from evtrack.metrics.results import read_boxes, read_flags, write_boxes

__all__ = [
    "NORM_PRECISION_THRESHOLDS",
    "PRECISION_THRESHOLDS_PX",
    "SUCCESS_THRESHOLDS",
    "OPEResult",
    "SequenceErrors",
    "attribute_breakdown",
    "evaluate_ope",
    "iou_inclusive",
    "read_boxes",
    "read_flags",
    "sequence_errors",
    "write_boxes",
]
