"""Token-pruned fine-tuning: ``evtrack train --resume CKPT --keep ...`` (TP-Spikformer issue)."""

import pytest
import torch

from evtrack.cli import main as cli_main
from evtrack.errors import UserError
from evtrack.network.checkpoint import load_checkpoint
from evtrack.tracker.online import load_tracker
from evtrack.training.sampler import SamplerConfig
from evtrack.training.train import TrainConfig, train

from .fakes import write_fake_dataset
from .test_train import SMALL, fake_sequences, read_log

pruning = pytest.importorskip("evtrack.pruning")

SC = SamplerConfig(center_jitter=1.0, scale_jitter=0.1)


@pytest.fixture
def exported(tmp_path):
    """An fp16 inference checkpoint without optimiser state (what `--export` / the shipped tiny.pt are)."""
    torch.manual_seed(0)
    tc = TrainConfig(data=tmp_path, out=tmp_path / "dense", steps=3, batch=2, warmup_steps=1, overrides=SMALL,
                     sampler=SC, progress=False, export=tmp_path / "dense.pt")
    train(tc, sequences=fake_sequences(1))
    payload = load_checkpoint(tmp_path / "dense.pt")
    assert "optimizer" not in payload and payload["step"] == 3 and "pruning" not in payload
    return tmp_path / "dense.pt"


def block_weights(payload):
    return {k: v.float() for k, v in payload["model"].items() if "block_stack" in k}


def test_finetune_from_exported_checkpoint_then_resume(tmp_path, exported):
    seqs = fake_sequences(1)
    run = tmp_path / "ft"
    tc = TrainConfig(data=tmp_path, out=run, steps=4, batch=2, lr=1e-3, warmup_steps=1, sampler=SC, progress=False,
                     resume=exported, keep="0.5", pruning={"compensate": True}, export=tmp_path / "ft.pt")
    last = train(tc, sequences=seqs)
    # a new run from the exported weights: step 0 -> 4, fresh log, pruning stored in every file it writes
    assert [int(r["step"]) for r in read_log(run / "log.csv")] == [1, 2, 3, 4]
    payload = load_checkpoint(last)
    assert payload["step"] == 4 and "optimizer" in payload
    assert payload["pruning"]["keep"] == [0.5] and payload["pruning"]["compensate"] is True
    assert payload["extra"] == {"init_from": str(exported), "init_step": 3}
    assert load_checkpoint(tmp_path / "ft.pt")["pruning"] == payload["pruning"]
    # the blocks were trained (pruned forward, gradients through gather/scatter)
    before, after = block_weights(load_checkpoint(exported)), block_weights(payload)
    assert any(not torch.allclose(before[k], after[k], atol=1e-3) for k in before)
    # a tracker built from the fine-tuned checkpoint runs pruned with the stored options
    tracker = load_tracker(tmp_path / "ft.pt")
    assert isinstance(tracker.model.backbone.block_stack, pruning.PrunedBlockStack)
    assert tracker.model.pruning == payload["pruning"]

    # resuming the fine-tuning run without --keep continues it (step, optimiser, log, pruning)
    tc2 = TrainConfig(data=tmp_path, out=run, steps=6, batch=2, sampler=SC, progress=False, resume=last)
    train(tc2, sequences=seqs)
    payload2 = load_checkpoint(last)
    assert payload2["step"] == 6 and payload2["pruning"] == payload["pruning"]
    assert [int(r["step"]) for r in read_log(run / "log.csv")] == [1, 2, 3, 4, 5, 6]

    # --keep 1.0 on a pruned checkpoint: a new dense run from its weights
    tc3 = TrainConfig(data=tmp_path, out=tmp_path / "dense2", steps=1, batch=2, sampler=SC, progress=False,
                      resume=last, keep="1.0")
    payload3 = load_checkpoint(train(tc3, sequences=seqs))
    assert payload3["step"] == 1 and "pruning" not in payload3


def test_pruning_options_without_keep_are_refused(tmp_path, exported):
    tc = TrainConfig(data=tmp_path, out=tmp_path / "x", steps=1, batch=2, sampler=SC, progress=False,
                     resume=exported, pruning={"mode": "cumulative"})
    with pytest.raises(UserError, match="need --keep"):
        train(tc, sequences=fake_sequences(1))


def test_cli_train_keep(tmp_path, exported, capsys):
    data = write_fake_dataset(tmp_path / "data", n_train=1, n_test=0)
    run = tmp_path / "cli"
    rc = cli_main(["train", "--data", str(data), "--out", str(run), "--resume", str(exported), "--keep", "0.6",
                   "--mode", "cumulative", "--keep-template", "--steps", "2", "--batch", "2", "--threads", "1",
                   "--no-progress"])
    assert rc == 0
    stored = load_checkpoint(run / "last.pt")["pruning"]
    assert stored["keep"] == [0.6] and stored["mode"] == "cumulative" and stored["prune_template"] is False
    assert stored["criterion"] == "ir" and stored["compensate"] is False  # unspecified flags: apply_pruning defaults
    assert "new run from the weights of" in capsys.readouterr().err
