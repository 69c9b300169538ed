"""Command-line pieces several subcommands share: the online-tracking flags and the op-count report.

Kept out of any one command module so commands import this, never each other.
"""

from __future__ import annotations

import argparse
import math

RUNTIME_HELP = ("what runs the network: torch (eager; the only one that counts SOPs/energy), onnx (ONNX Runtime) "
                "or openvino; the graph is exported on first use and cached in $EVTRACK_CACHE (default "
                "~/.cache/evtrack); onnx/openvino need `pip install 'evtrack[runtimes]'` (default torch)")
PRECISION_HELP = ("inference precision: f32 (default), or bf16 / f16 with --runtime openvino (faster on CPUs that "
                  "have them; boxes then differ from float32)")


def add_runtime_arguments(p: argparse.ArgumentParser, runtimes: bool = True) -> None:
    """``--runtime`` (unless ``runtimes`` is False) and ``--precision``."""
    if runtimes:
        p.add_argument("--runtime", choices=("torch", "onnx", "openvino"), default="torch", help=RUNTIME_HELP)
    p.add_argument("--precision", choices=("f32", "bf16", "f16"), default=None, help=PRECISION_HELP)


def add_tracking_arguments(p: argparse.ArgumentParser) -> None:
    """Online-tracking options shared by track, demo, benchmark and live (default: the checkpoint's), with
    the runtime flags (:func:`add_runtime_arguments`)."""
    add_runtime_arguments(p)
    p.add_argument("--min-score", type=float, default=None,
                   help="below this peak score the target counts as lost and the box coasts "
                   "(default: the value stored in the checkpoint, else 0)")
    p.add_argument("--motion", type=float, default=None,
                   help="constant-velocity prior 0..1 for the search crop and for coasting while lost "
                   "(default: the checkpoint's, else 0)")


def tracking_options(args: argparse.Namespace) -> dict:
    """The ``load_tracker`` keyword arguments given on the command line (None = checkpoint default), with
    the runtime and its precision."""
    return {"min_score": getattr(args, "min_score", None), "motion": getattr(args, "motion", None),
            "runtime": getattr(args, "runtime", "torch"), "precision": getattr(args, "precision", None)}


OPS_KEYS = ("sops", "macs", "transformer_sops", "energy_mj", "tokens_kept", "tokens_kept_frac", "ops_frames")


def ops_summary(stats: dict) -> dict:
    """The op-accounting fields of ``Tracker.stats()`` for JSON output (per network call)."""
    return {k: (int(stats[k]) if k == "ops_frames" else float(stats[k])) for k in OPS_KEYS if k in stats}


def format_ops(s: dict) -> str:
    """One human-readable line of an :func:`ops_summary` (printed by track and demo)."""
    return (f"ops per frame: {s['sops'] / 1e6:.2f} M SOPs ({s['transformer_sops'] / 1e6:.2f} M in transformer "
            f"blocks), {s['macs'] / 1e6:.2f} M MACs, {s['energy_mj']:.4f} mJ; tokens kept {s['tokens_kept']:.0f} "
            f"({s['tokens_kept_frac']:.1%}); counted on {s['ops_frames']} frames")


KEEP_VALUES = ("1.0 = dense (no pruning); 'default' = the default pruning schedule (0.92x the official one, "
               "~53%% of tokens); 'official' = the official SDT-V3 schedule (~57%%); one ratio for all blocks; "
               "or one ratio per prunable block, separated by commas")
TRACKING_KEEP_DEFAULT = "the pruning stored in the checkpoint, else 1.0 = dense"


def keep_help(default: str) -> str:
    """The --keep help text: the same value list everywhere, then this command's default."""
    return f"token keep ratios: {KEEP_VALUES} (default: {default})"


def parse_box(text: str) -> list[float]:
    """``--init`` text -> four finite numbers x,y,w,h with w, h > 0 (UserError otherwise); whether
    the box overlaps the sensor is checked once the sensor size is known (tracker.crops.check_init_box)."""
    from evtrack.errors import UserError

    try:
        vals = [float(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        vals = []
    if len(vals) != 4 or not all(math.isfinite(v) for v in vals) or vals[2] <= 0 or vals[3] <= 0:
        raise UserError(f"--init: expected four finite numbers x,y,w,h with w > 0 and h > 0, got {text!r}")
    return vals
