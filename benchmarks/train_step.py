"""Seconds per training step on this CPU: the layout and denormal settings `evtrack train` uses against
the plain NCHW layout with denormals kept, interleaved step by step in one process.

Both variants start from the same weights and see the same batches (drawn once from ``--data``), so
the only differences are the memory format of the model and its inputs and the denormal flush. The
straight-through neuron is the same code in both.

    python benchmarks/train_step.py --data data/synth --init src/evtrack/data/tiny.pt --steps 20
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from evtrack.network.checkpoint import load_checkpoint, load_state
from evtrack.network.registry import build_model, model_config
from evtrack.training.loss import tracking_loss
from evtrack.training.sampler import PairSampler, SamplerConfig
from evtrack.training.train import TrainConfig, load_training_sequences, training_memory_format


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="dataset root with train/<seq>/ folders")
    ap.add_argument("--config", default="tiny")
    ap.add_argument("--init", default=None, help="checkpoint whose weights both variants start from")
    ap.add_argument("--max-sequences", type=int, default=20)
    ap.add_argument("--batch", type=int, default=24)
    ap.add_argument("--steps", type=int, default=20, help="timed steps per variant (after 3 warm-up steps)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = model_config(args.config)
    tc = TrainConfig(data=[args.data], out="unused", model=args.config, max_sequences=args.max_sequences,
                     progress=False)
    sampler = PairSampler(load_training_sequences(tc), cfg, SamplerConfig(), seed=0)
    batches = [sampler.batch(args.batch) for _ in range(4)]
    torch.manual_seed(0)
    state = load_checkpoint(args.init)["model"] if args.init else build_model(cfg).state_dict()
    cpu = torch.device("cpu")
    variants = {"nchw, denormals kept": (torch.contiguous_format, False),
                "evtrack train (channels-last, flushed)": (training_memory_format(cpu), True)}
    runs = {}
    for name, (fmt, _) in variants.items():
        model = build_model(cfg).to(memory_format=fmt)
        load_state(model, state, source=args.init or "random init")
        model.train()
        runs[name] = (model, torch.optim.AdamW(model.parameters(), lr=1e-4), [])
    load0 = os.getloadavg()[0]
    for i in range(args.steps + 3):
        z, x, y = batches[i % len(batches)]
        for name, (fmt, flush) in variants.items():
            model, opt, times = runs[name]
            torch.set_flush_denormal(flush)
            t = time.perf_counter()
            out = model(z.contiguous(memory_format=fmt), x.contiguous(memory_format=fmt))
            loss, _ = tracking_loss(out, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if i >= 3:
                times.append(time.perf_counter() - t)
    torch.set_flush_denormal(False)
    base = statistics.median(runs["nchw, denormals kept"][2])
    print(f"{cfg.name}, batch {args.batch}, {args.threads} thread(s), {args.steps} interleaved steps each; "
          f"load average {load0:.2f} -> {os.getloadavg()[0]:.2f}")
    print("| variant | s/step (median) | vs nchw |\n|---|---|---|")
    for name, (_, _, times) in runs.items():
        med = statistics.median(times)
        print(f"| {name} | {med:.3f} | {base / med:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
