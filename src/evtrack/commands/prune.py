"""``evtrack prune CKPT --keep ... --out PRUNED``: store token-pruning settings in a checkpoint.

The weights are copied unchanged (pruning is training-free); the settings go into the checkpoint's
``pruning`` field, which ``load_tracker`` passes back to ``apply_pruning``.
"""

from __future__ import annotations

from evtrack.cli_options import add_pruning_arguments, checkpoint_values, keep_help, options_from_args


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "prune",
        help="apply TP-Spikformer token pruning settings to a checkpoint (no retraining)",
        description="Store token-pruning settings in a copy of CHECKPOINT, written to --out. The weights are "
        "copied unchanged (pruning is training-free); the settings go into the checkpoint's 'pruning' field, "
        "which load_tracker applies again when the checkpoint is loaded.",
    )
    p.add_argument("checkpoint", help=f"trained tracker checkpoint: {checkpoint_values(folders=False)}")
    p.add_argument("--out", required=True, help="where to write the pruned checkpoint (required)")
    p.add_argument("--keep", default="default", help=keep_help("'default'"))
    add_pruning_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    import torch

    from evtrack.io import atomic
    from evtrack.network.checkpoint import load_checkpoint, load_state
    from evtrack.network.registry import build_model
    from evtrack.pruning import apply_pruning
    from evtrack.pruning.select import kept_share
    from evtrack.shipped import resolve_checkpoint
    from evtrack.tokens import block_flag, block_input_tokens

    src, out = resolve_checkpoint(args.checkpoint, folders=False), Path(args.out)
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
        stack = model.token_stack()
        per_block = block_input_tokens(stack.blocks, model.token_layout)
        counts = [n for n, b in zip(per_block, stack.blocks, strict=True) if block_flag(b, "prunable")]
        stage_tokens = "/".join(str(n) for i, n in enumerate(counts) if i == 0 or n != counts[i - 1])
        whole = "" if model.pruning["prune_template"] else ", template tokens kept whole"
        share = kept_share(stack.blocks, model.token_layout, stack.keep, stack.keep_maps)
        kv = ("from all tokens" if model.pruning["full_kv"] else
              "cached for skipped tokens" if model.pruning["cached_kv"] else "from kept tokens only")
        print(f"{out}: keep per prunable block {', '.join(f'{r:.3g}' for r in keep)} "
              f"({share:.1%} of the {stage_tokens} tokens kept over the block stack{whole}), mode {args.mode}, "
              f"criterion {args.criterion}, attention keys/values {kv}")
    return 0
