import csv
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from evtrack.cli import main as cli_main
from evtrack.datasets.sequence import interval_edges
from evtrack.errors import UserError
from evtrack.network.checkpoint import load_checkpoint, load_model
from evtrack.training.loss import gaussian_heatmap, giou_loss, tracking_loss
from evtrack.training.sampler import SamplerConfig, SequenceData
from evtrack.training.train import TrainConfig, lr_at, train

from .fakes import SENSOR, moving_square, write_fake_dataset

SMALL = dict(conv_channels=(8, 8, 16), stage_dims=(16,), stage_depths=(1,), heads=2, head_channels=8)


def fake_sequences(n=2):
    out = []
    for s in range(n):
        ev, boxes, ts = moving_square(16, seed=s)
        out.append(SequenceData(f"s{s}", ev, boxes, np.ones(len(boxes), bool), interval_edges(ts), SENSOR))
    return out


def read_log(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_giou_and_heatmap():
    b = torch.tensor([[0.5, 0.5, 0.2, 0.2]])
    loss, iou = giou_loss(b, b)
    assert float(loss) == pytest.approx(0.0, abs=1e-6) and float(iou) == pytest.approx(1.0)
    far = torch.tensor([[0.1, 0.1, 0.1, 0.1]])
    assert float(giou_loss(far, b)[0]) > 1.0  # disjoint boxes: GIoU < 0
    heat = gaussian_heatmap(torch.tensor([[0.53, 0.27, 0.25, 0.25]]), 16, 16)
    assert heat[0, 4, 8] == 1.0 and heat.max() == 1.0 and heat[0, 0, 0] < 0.01


def test_loss_prefers_the_right_answer():
    target = torch.tensor([[0.53, 0.41, 0.2, 0.3]])
    h = w = 16
    score = torch.full((1, h, w), -4.0)
    score[0, 6, 8] = 4.0
    good = {"score": score, "offset": torch.full((1, 2, h, w), 0.48), "size": torch.tensor([0.2, 0.3]).view(1, 2, 1, 1).expand(1, 2, h, w)}
    bad = {"score": -score, "offset": torch.full((1, 2, h, w), 0.1), "size": torch.full((1, 2, h, w), 0.6)}
    assert tracking_loss(good, target)[0] < 0.5 * tracking_loss(bad, target)[0]


def test_negative_pairs_only_push_the_score_down():
    """A zero-size target (negative pair) has no box loss and its focal loss falls with lower scores."""
    from evtrack.training.sampler import NEGATIVE

    h = w = 16
    pos_t = torch.tensor([[0.53, 0.41, 0.2, 0.3]])
    neg_t = torch.from_numpy(NEGATIVE).view(1, 4)

    def maps(level):
        return {"score": torch.full((2, h, w), level, requires_grad=True),
                "offset": torch.full((2, 2, h, w), 0.5), "size": torch.full((2, 2, h, w), 0.25)}

    low, high = maps(-4.0), maps(2.0)
    loss_low, parts_low = tracking_loss({k: v[1:] for k, v in low.items()}, neg_t)
    loss_high, _ = tracking_loss({k: v[1:] for k, v in high.items()}, neg_t)
    assert parts_low["giou"] == 0 and parts_low["l1"] == 0 and loss_low < loss_high
    loss_high.backward()
    assert float(high["score"].grad.sum()) > 0  # gradient descent lowers every score
    # in a mixed batch the box terms are those of the positive pair alone
    mixed, parts = tracking_loss(maps(0.0), torch.cat([pos_t, neg_t]))
    alone, parts1 = tracking_loss({k: v[:1] for k, v in maps(0.0).items()}, pos_t)
    assert parts["giou"] == pytest.approx(parts1["giou"]) and parts["l1"] == pytest.approx(parts1["l1"])


def test_lr_schedule_warms_up_and_decays():
    tc = TrainConfig(data=".", out=".", steps=100, warmup_steps=10, lr=1e-3, min_lr_ratio=0.1)
    assert lr_at(0, tc) == pytest.approx(1e-4)
    assert lr_at(10, tc) == pytest.approx(1e-3)
    assert lr_at(100, tc) == pytest.approx(1e-4)


def test_training_reduces_loss_and_resumes(tmp_path):
    torch.manual_seed(0)
    seqs = fake_sequences()
    sc = SamplerConfig(center_jitter=1.0, scale_jitter=0.1)
    tc = TrainConfig(data=tmp_path, out=tmp_path / "run", steps=30, batch=4, lr=2e-3, warmup_steps=2,
                     sampler=sc, overrides=SMALL, progress=False)
    last = train(tc, sequences=seqs)
    rows = read_log(tmp_path / "run" / "log.csv")
    assert [int(r["step"]) for r in rows] == list(range(1, 31))
    losses = [float(r["loss"]) for r in rows]
    assert np.mean(losses[-5:]) < 0.9 * np.mean(losses[:5])
    assert load_checkpoint(last)["step"] == 30
    # resume to 33: continues the step count and appends to the log
    tc2 = TrainConfig(data=tmp_path, out=tmp_path / "run", steps=33, batch=4, resume=last, sampler=sc,
                      progress=False, export=tmp_path / "export.pt")
    train(tc2, sequences=seqs)
    assert load_checkpoint(last)["step"] == 33
    assert len(read_log(tmp_path / "run" / "log.csv")) == 33
    exported = load_checkpoint(tmp_path / "export.pt")
    assert "optimizer" not in exported and exported["model"]["head.out.weight"].dtype == torch.float16


def test_resume_with_other_config_is_refused(tmp_path):
    tc = TrainConfig(data=tmp_path, out=tmp_path / "run", steps=1, batch=2, overrides=SMALL, progress=False)
    last = train(tc, sequences=fake_sequences(1))
    bad = TrainConfig(data=tmp_path, out=tmp_path / "run", model="sdtrack-tiny", steps=2, batch=2, resume=last)
    with pytest.raises(UserError, match="checkpoint is config 'tiny'"):
        train(bad, sequences=fake_sequences(1))


def test_init_from_another_config_copies_the_weights_that_fit(tmp_path):
    """--init-from: a spikformer run starts with tiny's tensors wherever name and shape fit, at step 0."""
    tc = TrainConfig(data=tmp_path, out=tmp_path / "tiny", steps=1, batch=2, overrides=SMALL, progress=False)
    donor = load_checkpoint(train(tc, sequences=fake_sequences(1)))["model"]
    tc2 = TrainConfig(data=tmp_path, out=tmp_path / "sf", model="spikformer-ilif", steps=1, batch=2, lr=0.0,
                      warmup_steps=1, min_lr_ratio=0.0, overrides=SMALL, progress=False, init_from=tmp_path / "tiny" / "last.pt")
    got = load_checkpoint(train(tc2, sequences=fake_sequences(1)))
    assert got["step"] == 1 and got["extra"]["init_from"].endswith("last.pt")
    same = [k for k in donor if k in got["model"] and torch.equal(donor[k].float(), got["model"][k].float())]
    weights = [k for k in donor if k.endswith("weight")]
    assert set(weights) <= set(same)  # lr 0: every weight is tiny's (BN running stats move in train mode)


def test_init_from_and_resume_exclude_each_other(tmp_path, capsys):
    rc = cli_main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "r"), "--resume", "a.pt",
                   "--init-from", "b.pt"])
    assert rc == 2 and "exclude each other" in capsys.readouterr().err


def test_cli_train_then_track(tmp_path, capsys):
    data = write_fake_dataset(tmp_path / "data", n_train=2, n_test=1)
    run = tmp_path / "run"
    rc = cli_main(["train", "--data", str(data), "--out", str(run), "--steps", "2", "--batch", "2",
                   "--threads", "1", "--no-progress"])
    assert rc == 0 and (run / "last.pt").is_file()
    seq = data / "test" / "test_000"
    boxes = tmp_path / "boxes.txt"
    video = tmp_path / "overlay.mp4"
    gt = np.loadtxt(seq / "groundtruth_rect.txt", delimiter=",")
    init = ",".join(f"{v:.2f}" for v in gt[0])
    rc = cli_main(["track", str(seq / "events.h5"), "--init", init, "--window-ms", "20",
                   "--checkpoint", str(run / "last.pt"), "--out", str(boxes), "--video", str(video)])
    assert rc == 0
    lines = boxes.read_text().splitlines()
    # 24 frames of 40 ms = 960 ms; first window ends at 20 ms + start
    assert 40 <= len(lines) <= 50 and all(len(line.split(",")) == 4 for line in lines)
    assert video.stat().st_size > 1000
    assert not list(tmp_path.glob(".*partial*"))
    # --min-score reaches the tracker: a 2-step model never scores 0.999, so the box never moves
    held = tmp_path / "held.txt"
    rc = cli_main(["track", str(seq / "events.h5"), "--init", init, "--window-ms", "20", "--checkpoint",
                   str(run / "last.pt"), "--out", str(held), "--min-score", "0.999", "--motion", "0"])
    assert rc == 0
    rows = np.loadtxt(held, delimiter=",")
    assert np.allclose(rows, rows[0], atol=1e-6) and np.allclose(rows[0], gt[0], atol=0.01)


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert cli_main(["train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "r"), "--steps", "1"]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert cli_main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "r"), "--negative-prob", "1.5"]) == 2
    assert "--negative-prob must be in [0, 1)" in capsys.readouterr().err
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00" * 100)
    assert cli_main(["model-info", "--checkpoint", str(bad)]) == 2
    assert "bad.pt: not a readable evtrack checkpoint" in capsys.readouterr().err


def test_model_info_json(capsys):
    import json

    from evtrack.tracker.online import shipped_checkpoint

    assert cli_main(["model-info", "--config", "tiny", "--runs", "2", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["config"] == "tiny" and info["params"]["total"] > 1e5 and info["latency_ms_median"] > 0
    assert "tracking" not in info  # a config has no checkpoint fields
    # the shipped checkpoint reports the online options it carries
    assert cli_main(["model-info", "--runs", "2", "--json", "--checkpoint",
                     str(shipped_checkpoint())]) == 0
    info = json.loads(capsys.readouterr().out)
    assert set(info["tracking"]) >= {"min_score", "motion"} and info["step"] > 0 and info["pruning"] is None


def test_model_info_dense_macs_match_layer_shapes():
    """Transformer MACs = tokens x the weights of its linear layers (one MAC per weight per token) plus the
    two attention products per block (K^T V and Q (K^T V): 2 N d dv per head); the first conv's MACs =
    output pixels x its weights per output channel."""
    import torch

    from evtrack.commands.model_info import describe
    from evtrack.network.registry import create_model

    model = create_model("tiny")
    info = describe(model, runs=1)
    linears = [m for m in model.backbone.block_stack.modules() if isinstance(m, torch.nn.Linear)]
    assert linears and not any(isinstance(m, torch.nn.Conv2d) for m in model.backbone.block_stack.modules())
    n = model.backbone.layout.n_tokens * model.cfg.time_steps
    cfg = model.cfg
    d, dv = cfg.stage_dims[0] // cfg.heads, cfg.stage_dims[0] * cfg.v_ratio // cfg.heads
    attention = len(model.backbone.block_stack.blocks) * cfg.heads * 2 * n * d * dv
    assert info["dense_macs"]["transformer"] == n * sum(m.weight.numel() for m in linears) + attention
    first = next(m for m in model.backbone.conv.modules() if isinstance(m, torch.nn.Conv2d))
    out_px = (model.cfg.search_size // 2) ** 2  # stride 2, padding k//2
    assert info["dense_macs"]["conv_stages"] > out_px * first.weight.numel()
    macs = info["dense_macs"]
    assert macs["total"] == macs["conv_stages"] + macs["transformer"] + macs["head"]


@pytest.mark.slow
def test_ddp_two_cpu_processes(tmp_path):
    """torchrun with 2 gloo processes: both ranks step together and rank 0 alone writes the run files."""
    data = write_fake_dataset(tmp_path / "data", n_train=2, n_test=0)
    run = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "evtrack.cli", "train", "--data", str(data), "--out", str(run), "--steps", "2",
           "--batch", "2", "--threads", "1", "--no-progress"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert load_checkpoint(run / "last.pt")["step"] == 2
    assert len(read_log(run / "log.csv")) == 2
    load_model(run / "last.pt")
