"""CPU cost of the spiking backbones (issue 21): batch-1 search forward per config and time-step count T.

Why: the neuron (integer I-LIF at T=1 or binary LIF over T steps) is config data, and what T costs on
this CPU decides what each architecture can afford. Every network is untrained (random weights): a
CPU forward of these sizes runs the same dense tensor ops whatever the weights, so the latency is
that of a trained network; spike counts (SOPs) of random weights are not, so none are reported.

For each config and T: median and min ms of ``model(None, search, z_feat=...)`` (BN folded, template
features cached as in tracking), dense and at the default pruning schedule; configs and T are
interleaved call by call so machine load affects them alike. Prints a Markdown table (and JSON with
``--json``).

    python benchmarks/backbones.py --threads 1 --runs 30
"""

from __future__ import annotations

import argparse
import json
import statistics
import time


def build(name: str, t: int, keep: str | None):
    import torch

    from evtrack.network.registry import create_model
    from evtrack.pruning import apply_pruning

    torch.manual_seed(0)
    m = create_model(name, time_steps=t).eval()
    if keep:
        apply_pruning(m, keep)
    m.fuse()
    cfg = m.cfg
    z = torch.rand(1, cfg.in_channels, cfg.template_size, cfg.template_size)
    x = torch.rand(1, cfg.in_channels, cfg.search_size, cfg.search_size)
    with torch.inference_mode():
        zf = m.embed_template(z)
    return m, zf, x


def main() -> int:
    import torch

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", nargs="+", default=["tiny", "spikformer", "sdt-v1", "qkformer"])
    p.add_argument("--time-steps", nargs="+", type=int, default=[1, 2, 4])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cases = {(n, t, k): build(n, t, k) for n in args.configs for t in args.time_steps for k in (None, "default")}
    times: dict[tuple, list[float]] = {c: [] for c in cases}
    with torch.inference_mode():
        for i in range(args.runs + 3):
            for c, (m, zf, x) in cases.items():
                t0 = time.perf_counter()
                m(None, x, z_feat=zf)
                if i >= 3:
                    times[c].append(1000 * (time.perf_counter() - t0))
    rows = []
    for (n, t, k), ts in times.items():
        m = cases[(n, t, k)][0]
        rows.append({"config": n, "neuron": m.cfg.neuron, "time_steps": t, "keep": k or "1.0",
                     "params": sum(p.numel() for p in m.parameters()),
                     "ms_median": statistics.median(ts), "ms_min": min(ts)})
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"| config | neuron | T | keep | params | ms median | ms min |  ({args.threads} thread(s), batch 1)")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['config']} | {r['neuron']} | {r['time_steps']} | {r['keep']} | {r['params'] / 1e6:.2f} M "
              f"| {r['ms_median']:.1f} | {r['ms_min']:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
