"""Command-line pieces several subcommands share: the online-tracking flags and the op-count report.

Kept out of any one command module so commands import this, never each other.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

RUNTIME_HELP = ("what runs the network: torch (eager; the only one that counts SOPs/energy), onnx (ONNX Runtime), "
                "openvino (needs `pip install 'evtrack[runtimes]'`), or auto (onnx unless SOPs are counted, then "
                "torch); the graph is exported on first use and cached in $EVTRACK_CACHE (default ~/.cache/evtrack)")
PRECISION_HELP = ("inference precision: f32 (default), or bf16 / f16 with --runtime openvino (faster on CPUs that "
                  "have them; boxes then differ from float32)")


def checkpoint_values(folders: bool = True) -> str:
    """What a checkpoint argument accepts, the same words in every command (the shipped names are read
    from evtrack/data/, so a checkpoint added there is listed by itself). ``folders=False`` for commands
    that read the weights (an `evtrack export` folder holds only graphs)."""
    from evtrack.shipped import shipped_names

    if not folders:
        return f"a checkpoint file or a shipped name ({shipped_names()})"
    return f"a checkpoint file, an `evtrack export` folder, or a shipped name ({shipped_names()})"


def add_checkpoint_arguments(p: argparse.ArgumentParser, help_text: str = "tracker checkpoint",
                             default: str | None = "tiny", *, required: bool = False,
                             folders: bool = True) -> None:
    """``--checkpoint CKPT`` and ``--backbone NAME`` as a mutually exclusive pair (one of them required
    with ``required``); read them back with :func:`checkpoint_argument`. ``help_text`` says what the
    checkpoint is for, ``default`` what is used without either flag (None or ``required``: not said);
    ``folders``: whether an `evtrack export` folder is accepted."""
    from evtrack.shipped import shipped_checkpoints

    group = p.add_mutually_exclusive_group(required=required)
    tail = f"; default: {default}" if default and not required else ""
    group.add_argument("--checkpoint", default=None, metavar="CKPT",
                       help=f"{help_text}: {checkpoint_values(folders)}{tail}")
    group.add_argument("--backbone", default=None, choices=list(shipped_checkpoints()),
                       help="the shipped checkpoint of this backbone; the same as --checkpoint NAME, but never a "
                       "file of that name")
    p.set_defaults(checkpoint_folders=folders)


def checkpoint_argument(args: argparse.Namespace) -> Path | None:
    """The checkpoint ``--checkpoint`` / ``--backbone`` name, resolved to a path (``--backbone``: always the
    shipped file); None when neither was given (the caller's default, e.g. ``load_tracker``'s tiny). A
    value that is neither a file or folder nor a shipped name is a UserError listing the shipped names."""
    from evtrack.shipped import resolve_checkpoint, shipped_checkpoint

    if getattr(args, "backbone", None):
        return shipped_checkpoint(args.backbone)
    if getattr(args, "checkpoint", None) is None:
        return None
    return resolve_checkpoint(args.checkpoint, "--checkpoint", folders=getattr(args, "checkpoint_folders", True))


def add_runtime_arguments(p: argparse.ArgumentParser, runtimes: bool = True, default: str = "torch") -> None:
    """``--runtime`` (unless ``runtimes`` is False; ``default``: "auto" for the tracking commands, "torch" for
    those that measure, whose figures BENCHMARKS.md reports with torch) and ``--precision``."""
    if runtimes:
        p.add_argument("--runtime", choices=("auto", "torch", "onnx", "openvino"), default=default,
                       help=f"{RUNTIME_HELP} (default {default})")
    p.add_argument("--precision", choices=("f32", "bf16", "f16"), default=None, help=PRECISION_HELP)


def add_tracking_arguments(p: argparse.ArgumentParser, runtime_default: str = "torch") -> None:
    """Online-tracking options shared by track, demo, benchmark and live (default: the checkpoint's), with
    the runtime flags (:func:`add_runtime_arguments`)."""
    add_runtime_arguments(p, default=runtime_default)
    p.add_argument("--min-score", type=float, default=None,
                   help="below this peak score the target counts as lost and the box coasts "
                   "(default: the value stored in the checkpoint, else 0)")
    p.add_argument("--motion", type=float, default=None,
                   help="constant-velocity prior 0..1 for the search crop and for coasting while lost "
                   "(default: the checkpoint's, else 0)")
    p.add_argument("--window-power", type=float, default=None,
                   help="power of the Hann window on the score map (> 0; higher keeps the box nearer its last "
                   "position; default: the checkpoint's, else 1)")


def tracking_options(args: argparse.Namespace, count_ops: bool = False) -> dict:
    """The ``load_tracker`` keyword arguments given on the command line (None = checkpoint default), with
    the runtime ("auto" resolved: ``resolve_runtime``) and its precision."""
    from evtrack.runtime.runners import resolve_runtime

    runtime = resolve_runtime(getattr(args, "runtime", "torch"), count_ops, getattr(args, "checkpoint", None))
    return {"min_score": getattr(args, "min_score", None), "motion": getattr(args, "motion", None),
            "window_power": getattr(args, "window_power", None), "runtime": runtime,
            "precision": getattr(args, "precision", None)}


def keep_label(given: str | None, pruning: dict | None) -> str:
    """What a report says about the keep schedule: ``--keep`` as given, else the pruning stored in the checkpoint
    or export folder (its per-block ratios), else "1.0" (dense)."""
    if given:
        return given
    if pruning and pruning.get("keep"):
        return ",".join(f"{r:g}" for r in pruning["keep"])
    return "1.0"


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


def add_held_out_arguments(p: argparse.ArgumentParser) -> None:
    """Where the held-out sequences of ``tune`` and ``compare`` come from (never the test split)."""
    p.add_argument("--data", required=True, nargs="+", metavar="ROOT",
                   help="dataset root(s) of held-out sequences; several are scored as one set")
    p.add_argument("--dataset", default="synthetic",
                   help="layout of the roots: fe108, visevent, felt, coesot, eventvot, synthetic (default)")
    p.add_argument("--split", default="train",
                   help="split inside each root (make-dataset --test 0 puts every sequence in train)")


TRE_HELP = ("temporal robustness evaluation: up to N runs per sequence, each started from the ground truth at a "
            "later frame and run to the end, scored together per sequence (OTB uses 20; about N/2 times the "
            "tracking work). Default 0: one run from the first frame (OPE)")


def _tre_segments(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of runs per sequence, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 (0 = one run per sequence), got {value}")
    return value


def add_tre_argument(p: argparse.ArgumentParser, help_text: str = TRE_HELP) -> None:
    """``--tre N``: score with the temporal robustness evaluation (evtrack.metrics.tre) instead of OPE."""
    p.add_argument("--tre", type=_tre_segments, default=0, metavar="N", help=help_text)


def held_out_sequences(args: argparse.Namespace, per_root: int | None) -> dict:
    """``load_roots`` of the ``add_held_out_arguments`` flags: key (name, or root/name) -> sequence."""
    from evtrack.datasets import load_roots
    from evtrack.errors import UserError

    if args.split == "test":
        raise UserError("--split test: rank and tune on held-out sequences, report the test split once")
    if per_root is not None and per_root < 1:
        raise UserError(f"the number of sequences per root must be >= 1, got {per_root}")
    return load_roots(args.dataset, args.data, args.split, per_root)


# Kept literal so building the CLI does not import torch; tests check they match the scorer's forms.
SPATIAL_FORMS = ("paper", "official", "global", "deviation")
DEFAULT_SPATIAL = "deviation"


def add_pruning_arguments(p, *, defaults: bool = True) -> None:
    """The pruning option flags (shared by ``prune`` and ``train``). With ``defaults=False`` every
    flag defaults to None, so a command can tell given flags from stored settings.

    Only ``--cached-kv`` / ``--no-cached-kv`` (the shipped method vs the official plain pruning) is listed
    in --help; the ablation variants (score criterion, spatial form, normalisation, ...) are accepted but
    not listed, named once in the epilog: the method's comparisons need them, everyday use does not."""

    def d(value):
        return value if defaults else None

    def h(text: str, value=None) -> str:  # ablation flags work but stay out of --help
        return argparse.SUPPRESS

    p.add_argument("--mode", choices=("reselect", "cumulative"), default=d("reselect"),
                   help=h("re-score every block, or stop skipped tokens for good", "reselect"))
    p.add_argument("--criterion", choices=("ir", "random", "density"), default=d("ir"),
                   help=h("token score: information-retaining, random, or input event density", "ir"))
    p.add_argument("--keep-template", action="store_const", const=True, default=d(False),
                   help=h("never prune template tokens"))
    p.add_argument("--compensate", action="store_const", const=True, default=d(False),
                   help=h("rescale linear attention by N/K when running on K of N tokens"))
    p.add_argument("--full-kv", action="store_const", const=True, default=d(False),
                   help=h("keys/values from all tokens; only kept tokens get attention output and MLP"))
    p.add_argument("--cached-kv", action=argparse.BooleanOptionalAction, default=None,
                   help="skipped tokens' keys/values from the last frame they were computed in (online "
                   "tracking; default: on for blocks that support it unless --full-kv/--compensate); "
                   "--no-cached-kv: plain pruning (the official code), attention over the kept tokens only")
    p.add_argument("--spatial", choices=SPATIAL_FORMS, default=d(DEFAULT_SPATIAL),
                   help=h("IR spatial term: 3x3 neighbourhood ('paper', 'official') or whole map ('global', "
                          "'deviation')", DEFAULT_SPATIAL))
    p.add_argument("--normalize", choices=("minmax", "softmax"), default=d("minmax"),
                   help=h("IR score normalisation", "minmax"))
    p.add_argument("--temporal-weight", type=float, default=d(1.0), help=h("weight of the IR temporal term", 1.0))
    p.epilog = ("Ablation variants of the pruning method are accepted but not listed: --mode reselect|cumulative, "
                "--criterion ir|random|density, --spatial paper|official|global|deviation, --normalize "
                "minmax|softmax, --temporal-weight W, --keep-template, --compensate, --full-kv (docs/design.md, "
                "evtrack.pruning).")


def options_from_args(args) -> dict:
    """apply_pruning options of the parsed flags (shared with other commands that take --keep); flags
    left at None (``add_pruning_arguments(defaults=False)``) are omitted."""
    opts = dict(
        mode=args.mode, criterion=args.criterion,
        prune_template=None if args.keep_template is None else not args.keep_template,
        compensate=args.compensate, full_kv=args.full_kv,
        cached_kv=args.cached_kv, spatial=args.spatial, normalize=args.normalize,
        temporal_weight=args.temporal_weight,
    )
    return {k: v for k, v in opts.items() if v is not None}


def _sensor_side(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected two integers H W (e.g. --sensor-size 260 346), got {text!r}") from None
    if not 0 < value <= 32767:
        raise argparse.ArgumentTypeError(f"sides must be 1..32767 pixels, got {value}")
    return value


def add_sensor_size_argument(p: argparse.ArgumentParser, help_text: str, default=None) -> None:
    """``--sensor-size H W`` the same way in every command (``H,W`` is accepted too, see cli.normalize_argv)."""
    p.add_argument("--sensor-size", nargs=2, type=_sensor_side, metavar=("H", "W"), default=default,
                   help=f"{help_text}; H W or H,W")


def reader_options(args: argparse.Namespace) -> dict:
    """Reader keyword options from the shared --format/--sensor-size/--time-unit/--columns flags."""
    opts: dict = {}
    if args.fmt:
        opts["fmt"] = args.fmt
    if args.sensor_size:
        opts["sensor_size"] = tuple(args.sensor_size)
    if args.time_unit:
        opts["time_unit"] = args.time_unit
    if args.columns:
        opts["columns"] = args.columns
    return opts
