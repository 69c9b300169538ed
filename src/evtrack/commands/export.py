"""``evtrack export CKPT OUT``: write the network as runtime graphs (ONNX or OpenVINO IR) with its settings.

Tracking with ``--runtime onnx|openvino`` exports on first use by itself (into the graph cache); this
command is for shipping the graphs elsewhere: ``load_tracker(OUT, runtime=...)`` and ``--checkpoint OUT``
load the folder with only the runtime installed.
"""

from __future__ import annotations

import argparse

from evtrack.cli_options import TRACKING_KEEP_DEFAULT, add_runtime_arguments, checkpoint_values, keep_help


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export", help="export the tracker network as ONNX / OpenVINO graphs (with token pruning inside)",
        description="Write the template branch and the per-frame search branch of CHECKPOINT as graphs into the "
        "folder OUT, with graphs.json (network config, tracking options, pruning, state tensors). Token pruning "
        "runs inside the graph; the pruned network's per-frame state (scorer memory, cached keys/values) is an "
        "explicit input and output of the search graph, and search_init is the graph for a sequence's first frame.",
    )
    p.add_argument("checkpoint", help=f"tracker checkpoint: {checkpoint_values(folders=False)}; 'shipped' = tiny")
    p.add_argument("out", help="output folder (created; an earlier export there is replaced)")
    p.add_argument("--format", choices=("onnx", "openvino"), default="onnx",
                   help="onnx (runs on ONNX Runtime and OpenVINO) or openvino (IR .xml/.bin) (default onnx)")
    p.add_argument("--keep", default=None, help=keep_help(TRACKING_KEEP_DEFAULT))
    add_runtime_arguments(p, runtimes=False)
    p.add_argument("--json", action="store_true", help="print the written graphs.json as one JSON line")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from evtrack.errors import UserError
    from evtrack.runtime.export import META_NAME, ExportOptions, write_graphs
    from evtrack.runtime.runners import require
    from evtrack.shipped import resolve_checkpoint
    from evtrack.tracker.online import load_network

    options = ExportOptions(format=args.format, precision=args.precision or "f32")
    if options.precision != "f32" and options.format != "openvino":
        raise UserError(f"--precision {options.precision}: reduced precision is an OpenVINO setting; "
                        "expected --format openvino (or --precision f32)")
    require("onnx")  # torch.onnx.export needs it
    if options.format == "openvino":
        require("openvino")
    path = resolve_checkpoint(None if args.checkpoint == "shipped" else args.checkpoint, folders=False)
    model, payload = load_network(path, args.keep)
    out = write_graphs(model, args.out, options, tracking=payload.get("tracking"), source=str(path))
    if args.json:
        print((out / META_NAME).read_text().replace("\n", ""))
    else:
        meta = json.loads((out / META_NAME).read_text())
        pruning = meta["pruning"]["keep"] if meta["pruning"] else "dense"
        print(f"wrote {', '.join(meta['files'].values())} and {META_NAME} to {out} (pruning: {pruning}, "
              f"state tensors: {len(meta['state'])})", file=sys.stderr)
    return 0
