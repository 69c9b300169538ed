"""Growing a trained narrow network into a wider configuration (evtrack.tracker.grow)."""

import dataclasses

import pytest
import torch

from evtrack.errors import UserError
from evtrack.tracker.checkpoint import load_checkpoint
from evtrack.tracker.grow import check_growable, grow_state
from evtrack.tracker.model import SDTrackNet
from evtrack.tracker.registry import model_config
from evtrack.tracker.train import TrainConfig, train

from .test_train import SMALL, fake_sequences

NARROW = model_config("tiny", **SMALL)  # 1 block at C=16, 2 heads of 8
WIDE = dataclasses.replace(NARROW, stage_dims=(32,), heads=4)


def trained_like(cfg):
    """A network with non-trivial BN statistics, as after training (fresh BN is the identity)."""
    torch.manual_seed(1)
    net = SDTrackNet(cfg)
    with torch.no_grad():
        for mod in net.modules():
            if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 2.0)
                mod.weight.uniform_(0.5, 2.0)
                mod.bias.uniform_(-0.3, 0.3)
    return net.eval()


def test_grown_network_computes_what_the_narrow_one_did():
    narrow = trained_like(NARROW)
    torch.manual_seed(2)
    wide = SDTrackNet(WIDE)
    wide.load_state_dict(grow_state(narrow.state_dict(), wide))
    wide.eval()
    torch.manual_seed(3)
    z = torch.poisson(torch.rand(2, 3, NARROW.template_size, NARROW.template_size))
    x = torch.poisson(torch.rand(2, 3, NARROW.search_size, NARROW.search_size))
    with torch.no_grad():
        a, b = narrow(z, x), wide(z, x)
    for key in ("score", "offset", "size"):
        assert torch.equal(a[key], b[key]), key
    # the new channels are really there and trainable, not zero
    w = wide.state_dict()["backbone.block_stack.blocks.0.mlp.fc1.linear.weight"]
    assert w.shape == (128, 32) and float(w[64:].abs().sum()) > 0


def test_only_the_transformer_width_may_grow():
    check_growable(NARROW, WIDE, source="narrow.pt")
    with pytest.raises(UserError, match="narrow.pt: stage width 16 with 2 heads cannot grow into 32 with 2 heads"):
        check_growable(NARROW, dataclasses.replace(WIDE, heads=2), source="narrow.pt")
    with pytest.raises(UserError, match="config field 'conv_channels'"):
        check_growable(NARROW, dataclasses.replace(WIDE, conv_channels=(8, 8, 32)), source="narrow.pt")
    with pytest.raises(UserError, match="cannot grow"):
        check_growable(WIDE, NARROW, source="wide.pt")


def test_train_grow_from(tmp_path):
    seqs = fake_sequences(1)
    narrow = train(TrainConfig(data=tmp_path, out=tmp_path / "narrow", steps=1, batch=2, overrides=SMALL,
                               progress=False), sequences=seqs)
    wide = {**SMALL, "stage_dims": (32,), "heads": 4}
    last = train(TrainConfig(data=tmp_path, out=tmp_path / "wide", steps=2, batch=2, overrides=wide,
                             grow_from=narrow, progress=False), sequences=seqs)
    payload = load_checkpoint(last)
    assert payload["config"].stage_dims == (32,) and payload["extra"]["grown_from"] == str(narrow)
    # an interrupted grown run resumes with its origin kept
    resumed = train(TrainConfig(data=tmp_path, out=tmp_path / "wide", steps=3, batch=2, resume=last,
                                progress=False), sequences=seqs)
    assert load_checkpoint(resumed)["extra"]["grown_from"] == str(narrow)
    with pytest.raises(UserError, match="--resume and --grow-from exclude each other"):
        train(TrainConfig(data=tmp_path, out=tmp_path / "x", steps=1, batch=2, resume=last, grow_from=narrow),
              sequences=seqs)
    with pytest.raises(UserError, match="config field 'conv_channels'"):
        train(TrainConfig(data=tmp_path, out=tmp_path / "y", steps=1, batch=2, grow_from=narrow,
                          overrides={**wide, "conv_channels": (8, 8, 32)}), sequences=seqs)


def test_cli_grow_from(tmp_path):
    from evtrack.cli import main as cli_main

    from .fakes import write_fake_dataset

    data = write_fake_dataset(tmp_path / "data", n_train=1, n_test=0)
    common = ["--data", str(data), "--steps", "1", "--batch", "2", "--threads", "1", "--no-progress"]
    assert cli_main(["train", "--config", "tiny", "--out", str(tmp_path / "t"), *common]) == 0
    narrow = tmp_path / "t" / "last.pt"
    assert cli_main(["train", "--config", "small", "--grow-from", str(narrow), "--out", str(tmp_path / "s"),
                     *common]) == 0
    payload = load_checkpoint(tmp_path / "s" / "last.pt")
    assert payload["config"].name == "small" and payload["extra"]["grown_from_config"] == "tiny"


def test_grow_state_names_the_source_of_a_misfit():
    narrow = SDTrackNet(NARROW).state_dict()
    del narrow["head.out.bias"]
    with pytest.raises(UserError, match="narrow.pt: the narrow network has no tensor 'head.out.bias'"):
        grow_state(narrow, SDTrackNet(WIDE), source="narrow.pt")
    wide_state = SDTrackNet(WIDE).state_dict()
    with pytest.raises(UserError, match="wide.pt: tensor .* does not fit in"):
        grow_state(wide_state, SDTrackNet(NARROW), source="wide.pt")
