"""``evtrack prune CKPT --keep ... --out PRUNED``: store token-pruning settings in a checkpoint.

The weights are copied unchanged (pruning is training-free); the settings go into the checkpoint's
``pruning`` field, which ``load_tracker`` passes back to ``apply_pruning``.
"""

from __future__ import annotations

import argparse

from evtrack.cli_options import keep_help

# Kept literal so building the CLI does not import torch; tests check they match PruningOptions.
SPATIAL_FORMS = ("paper", "official", "global", "deviation")
DEFAULT_SPATIAL = "deviation"
# The --keep values, worded the same in every command that takes them ('%%': argparse help text).
def register(subparsers) -> None:
    p = subparsers.add_parser(
        "prune",
        help="apply TP-Spikformer token pruning settings to a checkpoint (no retraining)",
        description="Store token-pruning settings in a copy of CHECKPOINT, written to --out. The weights are "
        "copied unchanged (pruning is training-free); the settings go into the checkpoint's 'pruning' field, "
        "which load_tracker applies again when the checkpoint is loaded.",
    )
    p.add_argument("checkpoint", help="trained tracker checkpoint (.pt)")
    p.add_argument("--out", required=True, help="where to write the pruned checkpoint (required)")
    p.add_argument("--keep", default="default", help=keep_help("'default'"))
    add_pruning_arguments(p)
    p.set_defaults(func=run)


def add_pruning_arguments(p, *, defaults: bool = True) -> None:
    """The pruning option flags (shared by ``prune`` and ``train``). With ``defaults=False`` every
    flag defaults to None, so a command can tell given flags from stored settings."""

    def d(value):
        return value if defaults else None

    def h(text: str, value) -> str:  # the default in the help only where there is one
        return f"{text} (default: {value})" if defaults else text

    p.add_argument("--mode", choices=("reselect", "cumulative"), default=d("reselect"),
                   help=h("re-score every block, or stop skipped tokens for good", "reselect"))
    p.add_argument("--criterion", choices=("ir", "random", "density"), default=d("ir"),
                   help=h("token score: information-retaining, random, or input event density", "ir"))
    p.add_argument("--keep-template", action="store_const", const=True, default=d(False),
                   help="never prune template tokens")
    p.add_argument("--compensate", action="store_const", const=True, default=d(False),
                   help="rescale linear attention by N/K when running on K of N tokens")
    p.add_argument("--full-kv", action="store_const", const=True, default=d(False),
                   help="keys/values from all tokens; only kept tokens get attention output and MLP")
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


def run(args) -> int:
    from pathlib import Path

    import torch

    from evtrack.io import atomic
    from evtrack.network.checkpoint import load_checkpoint, load_state
    from evtrack.network.registry import build_model
    from evtrack.pruning import apply_pruning
    from evtrack.tokens import block_flag, block_input_tokens

    src, out = Path(args.checkpoint), Path(args.out)
    payload = load_checkpoint(src)
    cfg = payload["config"]
    model = build_model(cfg)
    load_state(model, payload["model"], source=str(src))
    apply_pruning(model, args.keep, **options_from_args(args))
    payload["config"] = cfg.to_dict()
    if model.pruning is None:
        payload.pop("pruning", None)
    else:
        payload["pruning"] = model.pruning
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic.replacing(out) as tmp:
        torch.save(payload, tmp)
    if model.pruning is None:
        print(f"{out}: dense (no pruning)")
    else:
        keep = model.pruning["keep"]
        blocks = model.token_stack().blocks
        per_block = block_input_tokens(blocks, model.token_layout)
        counts = [n for n, b in zip(per_block, blocks, strict=True) if block_flag(b, "prunable")]
        stage_tokens = "/".join(str(n) for i, n in enumerate(counts) if i == 0 or n != counts[i - 1])
        kv = ("from all tokens" if model.pruning["full_kv"] else
              "cached for skipped tokens" if model.pruning["cached_kv"] else "from kept tokens only")
        print(f"{out}: keep per prunable block {', '.join(f'{r:.3g}' for r in keep)} "
              f"(mean {sum(keep) / len(keep):.1%} of {stage_tokens} tokens), mode {args.mode}, "
              f"criterion {args.criterion}, attention keys/values {kv}")
    return 0
