"""Training loop of the spiking tracker: CPU or GPU, single process or DDP under ``torchrun``.

Reproduce the shipped checkpoint (``evtrack/data/tiny.pt``) with::

    evtrack make-dataset data/synth --train 100 --test 30 --seed 0 --workers 2
    evtrack train --config tiny --data data/synth --out runs/tiny --steps 3000 --batch 24 --threads 2 \
        --export src/evtrack/data/tiny.pt

(see BENCHMARKS.md, "Tracking accuracy and speed", for the exact run that produced it).

Token-pruned fine-tuning (TP-Spikformer, issue "token pruning")::

    evtrack train --resume src/evtrack/data/tiny.pt --keep default --data data/synth --out runs/tiny_ft \
        --steps 300 --lr 1e-4 --export runs/tiny_ft/pruned_ft.pt

``--resume`` continues a run (its step and optimiser state) only when the checkpoint holds optimiser
state and the requested pruning equals the stored one (an interrupted run); otherwise - an exported
fp16 inference checkpoint, or a dense training checkpoint with ``--keep`` - a new run starts at
step 0 from the checkpoint's weights (fresh optimiser, warm-up, new log) for ``--steps`` steps.
The pruning settings are saved in every checkpoint it writes (field ``pruning``).

Writes ``RUN_DIR/last.pt`` (resumable: weights, optimiser, step) every ``ckpt_every_s`` seconds and
at the end, and ``RUN_DIR/log.csv`` with the losses. Under ``torchrun`` every rank samples different
pairs (seed + rank) and rank 0 alone writes files.
"""

from __future__ import annotations

import csv
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from evtrack.errors import UserError
from evtrack.network.checkpoint import load_checkpoint, load_matching_state, load_state, save_checkpoint
from evtrack.network.registry import build_model, model_config
from evtrack.training.loss import tracking_loss
from evtrack.training.sampler import (
    BatchPrefetcher,
    PairSampler,
    SamplerConfig,
    SequenceData,
    load_sequence_data,
)

LOG_FIELDS = ["step", "loss", "giou", "l1", "focal", "iou", "lr", "s_per_step", "elapsed_s"]


@dataclass
class TrainConfig:
    """One training run. Paths come from the command line; nothing is looked up implicitly."""

    data: Path | list[Path]  # one dataset root or several (their sequences are pooled)
    out: Path
    model: str = "tiny"
    split: str = "train"
    steps: int = 2000  # total optimiser steps (a resumed run continues up to this number)
    batch: int = 16  # per process
    lr: float = 4e-4  # AdamW, SDTrack's value (from scratch: the same for backbone and head)
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    min_lr_ratio: float = 0.05  # cosine decay ends at lr * this
    grad_clip: float = 1.0
    seed: int = 0
    threads: int | None = None  # torch intra-op threads (None: leave torch's default)
    ckpt_every_s: float = 180.0
    resume: Path | None = None
    init_from: Path | None = None  # a new run starting from another config's weights where names/shapes fit
    export: Path | None = None  # also write fp16 inference weights here at the end
    max_sequences: int | None = None
    data_shares: list[float] | None = None  # share of the pairs drawn from each --data root (None: by frames)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    overrides: dict = field(default_factory=dict)
    progress: bool = True
    keep: str | None = None  # token pruning ratios (None: whatever the resumed checkpoint stores)
    pruning: dict = field(default_factory=dict)  # apply_pruning options overriding the stored ones


def lr_at(step: int, tc: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to ``min_lr_ratio``."""
    if step < tc.warmup_steps:
        return tc.lr * (step + 1) / tc.warmup_steps
    frac = min(1.0, (step - tc.warmup_steps) / max(1, tc.steps - tc.warmup_steps))
    return tc.lr * (tc.min_lr_ratio + (1 - tc.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * frac)))


def _dist_info() -> tuple[int, int, int]:
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def load_training_sequences(tc: TrainConfig) -> list[SequenceData]:
    from tqdm import tqdm

    from evtrack.datasets import load_dataset

    roots = [Path(p) for p in (tc.data if isinstance(tc.data, list | tuple) else [tc.data])]
    if tc.data_shares is not None and len(tc.data_shares) != len(roots):
        raise UserError(f"--data-shares: {len(tc.data_shares)} shares for {len(roots)} --data roots; expected one each")
    seqs, groups = [], []
    for g, root in enumerate(roots):
        if not root.is_dir():
            raise UserError(f"--data {root}: not a directory; expected a dataset root with {tc.split}/<seq>/ folders")
        found = load_dataset("synthetic", root, tc.split)
        if tc.max_sequences:
            found = found[: tc.max_sequences]
        if not found:
            raise UserError(f"--data {root}: no sequences in split {tc.split!r}")
        seqs += found
        groups += [g] * len(found)
    out = [load_sequence_data(s, tc.sampler.min_box_px) for s in tqdm(seqs, desc="load events", disable=not tc.progress)]
    for data, g in zip(out, groups, strict=True):
        data.group = g
    return out


def training_memory_format(device: torch.device) -> torch.memory_format:
    """Channels-last on CPU: oneDNN's depthwise 7x7 backward runs ~4x faster in NHWC than in NCHW
    (BENCHMARKS.md "Training step on CPU"); the default layout elsewhere (not measured there)."""
    return torch.channels_last if device.type == "cpu" else torch.contiguous_format


def train(
    tc: TrainConfig,
    *,
    sequences: list[SequenceData] | None = None,
    representation=None,
) -> Path:
    """Run (or resume) training; returns the path of the last checkpoint."""
    from tqdm import tqdm

    rank, world, local_rank = _dist_info()
    distributed = world > 1
    if tc.threads:
        torch.set_num_threads(tc.threads)
    device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    if distributed and not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    torch.manual_seed(tc.seed + rank)

    payload = None
    if tc.resume is not None:
        payload = load_checkpoint(tc.resume)
        cfg = payload["config"]
        if tc.model != cfg.name:
            raise UserError(f"--resume {tc.resume}: checkpoint is config {cfg.name!r}, but --config is {tc.model!r}")
    else:
        cfg = model_config(tc.model, **tc.overrides)
    memory_format = training_memory_format(device)
    model = build_model(cfg).to(device, memory_format=memory_format)
    if payload is not None:
        load_state(model, payload["model"], source=str(tc.resume))
    elif tc.init_from is not None:
        donor = load_checkpoint(tc.init_from)
        copied, total = load_matching_state(model, donor["model"])
        if copied == 0:
            raise UserError(f"--init-from {tc.init_from}: no weight of config {donor['config'].name!r} fits "
                            f"config {cfg.name!r} (names and shapes differ everywhere)")
        if rank == 0:
            import sys

            print(f"train: new run from the weights of {tc.init_from} (config {donor['config'].name!r}) where they "
                  f"fit: {copied:,} of {total:,} parameters", file=sys.stderr)
    stored = payload.get("pruning") if payload is not None else None
    _apply_training_pruning(model, stored, tc)
    opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    step = 0
    continuing = payload is not None and "optimizer" in payload and (model.pruning or None) == (stored or None)
    if continuing:
        opt.load_state_dict(payload["optimizer"])
        step = int(payload["step"])
    extra = payload.get("extra") if continuing else None  # an interrupted run keeps where it began
    if payload is None and tc.init_from is not None:
        extra = {"init_from": str(tc.init_from), "init_params": f"{copied} of {total}"}
    if payload is not None and not continuing:  # a new (fine-tuning) run from the checkpoint's weights
        extra = {"init_from": str(tc.resume), "init_step": int(payload["step"])}
    if rank == 0 and payload is not None:
        import sys

        if continuing:
            what = f"continuing run at step {step}"
        else:
            what = f"new run from the weights of {tc.resume} (its step {int(payload['step'])}), {tc.steps} steps"
        keep = model.pruning["keep"] if model.pruning else "dense"
        print(f"train: {what}; token pruning: {keep}", file=sys.stderr)
    net = model
    if distributed:
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[local_rank] if device.type == "cuda" else None)

    if sequences is None:
        sequences = load_training_sequences(tc)
    sampler = PairSampler(sequences, cfg, tc.sampler, seed=tc.seed * 1000 + rank + step, representation=representation,
                          group_shares=tc.data_shares)
    batches = BatchPrefetcher(sampler, tc.batch)

    out = Path(tc.out)
    last = out / "last.pt"
    log_path = out / "log.csv"
    writer = None
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        new_log = not log_path.exists() or not continuing
        log_file = open(log_path, "w" if new_log else "a", newline="")
        writer = csv.DictWriter(log_file, fieldnames=LOG_FIELDS)
        if new_log:
            writer.writeheader()
    model.train()
    stop = _StopRequest()
    # denormal surrogate gradients slow CPU element-wise ops several-fold; flushed for the run
    flushed = device.type == "cpu" and torch.set_flush_denormal(True)
    t_start = t_ckpt = time.perf_counter()
    bar = tqdm(total=tc.steps, initial=step, desc=f"train {cfg.name}", disable=not (tc.progress and rank == 0))
    try:
        while step < tc.steps and not stop.requested:
            t0 = time.perf_counter()
            z, x, target = next(batches)
            z = z.to(device, memory_format=memory_format)
            x, target = x.to(device, memory_format=memory_format), target.to(device)
            lr = lr_at(step, tc)
            for g in opt.param_groups:
                g["lr"] = lr
            out_maps = model(z, x)
            loss, parts = tracking_loss(out_maps, target)
            if not math.isfinite(parts["loss"]):
                raise RuntimeError(f"training diverged at step {step}: loss {parts['loss']} ({parts})")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if tc.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
            opt.step()
            step += 1
            dt = time.perf_counter() - t0
            if writer is not None:
                writer.writerow({**{k: round(v, 5) for k, v in parts.items()}, "step": step, "lr": f"{lr:.3e}",
                                 "s_per_step": round(dt, 3), "elapsed_s": round(time.perf_counter() - t_start, 1)})
                bar.set_postfix(loss=f"{parts['loss']:.3f}", iou=f"{parts['iou']:.2f}")
                if time.perf_counter() - t_ckpt > tc.ckpt_every_s:
                    log_file.flush()
                    save_checkpoint(last, net, step=step, optimizer=opt, extra=extra)
                    t_ckpt = time.perf_counter()
            bar.update(1)
    finally:
        stop.restore()
        if flushed:
            torch.set_flush_denormal(False)
        batches.close()
        bar.close()
        if writer is not None:
            log_file.close()
    if rank == 0:
        save_checkpoint(last, net, step=step, optimizer=opt, extra=extra)
        if tc.export is not None:
            save_checkpoint(tc.export, net, step=step, half=True, extra=extra)
    if distributed:
        torch.distributed.barrier()
    return last


def _apply_training_pruning(model: torch.nn.Module, stored: dict | None, tc: TrainConfig) -> None:
    """Token pruning for training: ``tc.keep`` / ``tc.pruning`` over the resumed checkpoint's settings."""
    model.pruning = None
    if tc.keep is None and not stored:
        if tc.pruning:
            raise UserError(f"pruning options {sorted(tc.pruning)} need --keep (the checkpoint stores no pruning)")
        return
    from evtrack.pruning import apply_checkpoint_pruning

    apply_checkpoint_pruning(model, stored, tc.keep, **tc.pruning)


class _StopRequest:
    """SIGINT/SIGTERM finish the current step, then training saves ``last.pt`` and returns normally,
    so a run can be stopped at any time without losing work (resume with ``--resume``)."""

    def __init__(self) -> None:
        import signal
        import threading

        self.requested = False
        self._old = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        self.requested = True

    def restore(self) -> None:
        import signal

        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old = {}
