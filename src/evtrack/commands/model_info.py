"""``evtrack model-info``: parameter counts per part and forward latency of a tracker config, and the
checkpoints shipped with evtrack."""

from __future__ import annotations

import argparse

from evtrack.cli_options import add_checkpoint_arguments, checkpoint_argument


def register(subparsers) -> None:
    p = subparsers.add_parser("model-info", help="parameters and CPU latency of a tracker config; the shipped "
                              "checkpoints")
    p.add_argument("--config", default=None, help="config name (default: all registered configs)")
    add_checkpoint_arguments(p, "describe this checkpoint's network instead", default=None, folders=False)
    p.add_argument("--shipped", action="store_true",
                   help="only list the checkpoints shipped with evtrack (name, config, parameters, file); "
                   "the listing of all configs ends with them too")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads for the latency run")
    p.add_argument("--runs", type=int, default=20, help="timed forwards (after 3 warm-up runs)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def dense_macs(model, parts: dict, z_feat, x) -> dict[str, int]:
    """Multiply-accumulates of each part in one search forward, counted by the op counter as if every
    input were dense (convolutions, linear layers and attention products). Why: how much of a frame the
    transformer is bounds what token pruning can save; spikes make the real SOPs lower
    (``Tracker(count_ops=True)`` counts those)."""
    import torch

    from evtrack.metrics.ops import count_ops

    with torch.inference_mode(), count_ops(model, blocks=parts, dense=True) as counter:
        model(None, x, z_feat=z_feat)
    return {name: int(b["macs"]) for name, b in counter.summary()["blocks"].items()}


def shipped_info() -> list[dict]:
    """Name, config, parameter count, step and file of every shipped checkpoint (no latency run: the
    parameters are counted on a weightless 'meta' copy of the network)."""
    import torch

    from evtrack.network.checkpoint import load_checkpoint
    from evtrack.network.registry import build_model
    from evtrack.shipped import shipped_checkpoints

    rows = []
    for name, path in shipped_checkpoints().items():
        payload = load_checkpoint(path)
        with torch.device("meta"):
            model = build_model(payload["config"])
        rows.append({"name": name, "config": payload["config"].name,
                     "params": sum(p.numel() for p in model.parameters()), "step": int(payload["step"]),
                     "pruning": (payload.get("pruning") or {}).get("keep"), "path": str(path),
                     "mb": round(path.stat().st_size / 1e6, 2)})
    return rows


def format_shipped(rows: list[dict]) -> str:
    """The shipped-checkpoint lines of the text output (one per checkpoint)."""
    if not rows:
        return "shipped checkpoints: none in this installation"
    lines = ["shipped checkpoints (--checkpoint NAME or --backbone NAME in every command):"]
    for r in rows:
        pruned = f", token-pruned {r['pruning']}" if r["pruning"] else ""
        lines.append(f"  {r['name']:<12} config {r['config']}, {r['params'] / 1e6:.3f} M params, step {r['step']}"
                     f"{pruned}, {r['mb']:.1f} MB ({r['path']})")
    return "\n".join(lines)


def describe(model, runs: int) -> dict:
    """Parameter counts (per part), dense MACs per part and median latency of a BN-fused batch-1
    search forward."""
    import time

    import torch

    cfg = model.cfg
    parts = {
        "conv_stages": model.backbone.conv,
        "transformer": model.backbone.block_stack,
        "head": model.head,
    }
    params = {k: sum(p.numel() for p in m.parameters()) for k, m in parts.items()}
    params["positions"] = model.backbone.pos_template.numel() + model.backbone.pos_search.numel()
    params["total"] = sum(p.numel() for p in model.parameters())
    model.eval()
    z = torch.rand(1, cfg.in_channels, cfg.template_size, cfg.template_size)
    x = torch.rand(1, cfg.in_channels, cfg.search_size, cfg.search_size)
    times = []
    with torch.inference_mode():
        model.fuse()
        zf = model.embed_template(z)
        for i in range(runs + 3):
            t = time.perf_counter()
            model(None, x, z_feat=zf)
            if i >= 3:
                times.append(time.perf_counter() - t)
    times.sort()
    macs = dense_macs(model, parts, zf, x)
    macs["total"] = sum(macs.values())
    return {
        "config": cfg.name,
        "architecture": cfg.architecture,
        "neuron": cfg.neuron,
        "time_steps": cfg.time_steps,
        "search_px": cfg.search_size,
        "template_px": cfg.template_size,
        "tokens": model.backbone.layout.n_tokens,
        "blocks": len(model.backbone.block_stack.blocks),
        "params": params,
        "dense_macs": macs,
        "latency_ms_median": 1000 * times[len(times) // 2],
        "latency_ms_min": 1000 * times[0],
        "threads": torch.get_num_threads(),
    }


def run(args: argparse.Namespace) -> int:
    import json

    import torch

    from evtrack.errors import UserError
    from evtrack.network.checkpoint import load_checkpoint, load_model
    from evtrack.network.registry import create_model, list_models

    if args.threads < 1 or args.runs < 1:
        raise UserError(f"--threads and --runs must be >= 1, got {args.threads} and {args.runs}")
    torch.set_num_threads(args.threads)
    checkpoint = checkpoint_argument(args)
    if args.shipped:
        if checkpoint or args.config:
            raise UserError("--shipped lists the shipped checkpoints; expected no --config, --checkpoint or --backbone")
        rows = shipped_info()
        print(json.dumps(rows) if args.json else format_shipped(rows))
        return 0
    if checkpoint:
        models = [load_model(checkpoint)]
    else:
        names = [args.config] if args.config else list_models()
        models = [create_model(n) for n in names]
    infos = [describe(m, args.runs) for m in models]
    if checkpoint:  # what the checkpoint carries besides the weights
        payload = load_checkpoint(checkpoint)
        infos[0].update(step=int(payload["step"]), tracking=payload.get("tracking", {}),
                        pruning=payload.get("pruning"))
    if args.json:
        print(json.dumps(infos[0] if len(infos) == 1 else infos))
        return 0
    for info in infos:
        p = info["params"]
        print(f"{info['config']}: search {info['search_px']} px, template {info['template_px']} px, "
              f"{info['tokens']} tokens, {info['blocks']} transformer blocks ({info['architecture']}, "
              f"{info['neuron']} neurons, T={info['time_steps']})")
        for k in ("conv_stages", "positions", "transformer", "head", "total"):
            print(f"  {k:<12} {p[k] / 1e6:8.3f} M params")
        m = info["dense_macs"]
        print(f"  MACs per search forward, as if dense: conv stages {m['conv_stages'] / 1e6:.1f} M, "
              f"transformer {m['transformer'] / 1e6:.1f} M ({100 * m['transformer'] / m['total']:.0f}%), "
              f"head {m['head'] / 1e6:.1f} M")
        print(f"  forward (batch 1, BN folded, {info['threads']} thread(s)): "
              f"median {info['latency_ms_median']:.1f} ms, min {info['latency_ms_min']:.1f} ms")
        if "tracking" in info:
            print(f"  checkpoint: step {info['step']}, online options {info['tracking'] or 'defaults'}, "
                  f"token pruning {(info['pruning'] or {}).get('keep', 'none')}")
    if not checkpoint and not args.config:  # the listing of everything ends with the shipped checkpoints
        print(format_shipped(shipped_info()))
    return 0
