"""Shipped checkpoints by name (issue 21): one resolver behind ``load_tracker``, ``--checkpoint NAME`` and
``--backbone NAME`` in every command, and ``model-info --shipped``.

The parametrised tests run over whatever ``evtrack/data/*.pt`` holds, so a checkpoint added there is
tested by itself; the others point the shipped folder at a tmp dir of fakes (``shipped.shipped_dir``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from evtrack import shipped
from evtrack.cli import build_parser, main
from evtrack.cli_options import checkpoint_argument
from evtrack.errors import UserError
from evtrack.network.checkpoint import load_checkpoint, save_checkpoint
from evtrack.network.registry import create_model
from evtrack.shipped import resolve_checkpoint, shipped_checkpoint, shipped_checkpoints

SHIPPED = shipped_checkpoints()  # at collection: new files in evtrack/data/ get their own test ids
REAL_TINY = shipped_checkpoint()
SMALL = dict(conv_channels=(8, 8, 16), stage_dims=(16,), stage_depths=(1,), heads=2, head_channels=8)


@pytest.fixture
def fake_shipped(tmp_path, monkeypatch):
    """A shipped folder of tiny.pt (the real one), qkformer.pt, spikformer.pt (fake bytes) and non-checkpoints."""
    folder = tmp_path / "data"
    (folder / "sample").mkdir(parents=True)
    shutil.copy(REAL_TINY, folder / "tiny.pt")
    for name in ("spikformer.pt", "qkformer.pt"):
        (folder / name).write_bytes(b"not loaded by the resolver")
    (folder / "notes.txt").write_text("not a checkpoint")
    monkeypatch.setattr(shipped, "shipped_dir", lambda: folder)
    return folder


def test_shipped_checkpoints_lists_the_pt_files_tiny_first(fake_shipped):
    assert list(shipped_checkpoints()) == ["tiny", "qkformer", "spikformer"]
    assert shipped_checkpoints()["spikformer"] == fake_shipped / "spikformer.pt"
    assert shipped.shipped_names() == "tiny, qkformer, spikformer"


def test_resolve_checkpoint_none_path_folder_name_and_name_pt(fake_shipped, tmp_path, monkeypatch):
    assert resolve_checkpoint(None) == fake_shipped / "tiny.pt"
    own = tmp_path / "mine.pt"
    own.write_bytes(b"x")
    assert resolve_checkpoint(own) == own and resolve_checkpoint(str(own)) == own
    exported = tmp_path / "graphs"
    exported.mkdir()
    assert resolve_checkpoint(exported) == exported
    for given in ("spikformer", "spikformer.pt"):
        assert resolve_checkpoint(given) == fake_shipped / "spikformer.pt"
    monkeypatch.chdir(tmp_path)  # a file or folder of that name wins over the shipped name
    (tmp_path / "qkformer").mkdir()
    assert resolve_checkpoint("qkformer") == Path("qkformer")  # returned as given
    assert shipped.is_shipped_name("spikformer") and not shipped.is_shipped_name("qkformer")


def test_resolve_checkpoint_unknown_name_lists_the_shipped_ones(fake_shipped, tmp_path):
    with pytest.raises(UserError) as err:
        resolve_checkpoint("sdt-v2", "--checkpoint")
    assert str(err.value) == ("--checkpoint sdt-v2: no such file or folder; expected a checkpoint file, an exported "
                              "folder, or one of the shipped checkpoints: tiny, qkformer, spikformer")
    with pytest.raises(UserError, match="expected a checkpoint file or one of the shipped checkpoints: tiny, "):
        resolve_checkpoint("nope", folders=False)
    with pytest.raises(UserError, match="a folder .* expected a checkpoint file or a shipped name"):
        resolve_checkpoint(tmp_path, folders=False)
    with pytest.raises(UserError, match="sdt-v2: not a shipped checkpoint; the shipped ones are tiny, qkformer"):
        shipped_checkpoint("sdt-v2")


def test_a_missing_tiny_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(shipped, "shipped_dir", lambda: tmp_path)
    with pytest.raises(UserError, match="tiny.pt is missing from this installation; pass --checkpoint"):
        resolve_checkpoint(None)
    with pytest.raises(UserError, match="shipped checkpoints: none$"):
        resolve_checkpoint("tiny")


def test_backbone_choices_follow_the_shipped_folder(fake_shipped):
    args = build_parser().parse_args(["demo", "--backbone", "spikformer"])
    assert checkpoint_argument(args) == fake_shipped / "spikformer.pt"
    args = build_parser().parse_args(["demo", "--checkpoint", "qkformer.pt"])
    assert checkpoint_argument(args) == fake_shipped / "qkformer.pt"
    assert checkpoint_argument(build_parser().parse_args(["demo"])) is None  # load_tracker's default: tiny


@pytest.mark.parametrize("argv", [["demo", "--checkpoint", "tiny", "--backbone", "tiny"],
                                  ["tune", "--data", "d"],  # tune needs one of them
                                  ["demo", "--backbone", "sdt-v2"]])
def test_checkpoint_flag_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert ("not allowed with argument" in err or "one of the arguments --checkpoint --backbone is required" in err
            or "invalid choice: 'sdt-v2'" in err)


def test_commands_name_a_bad_checkpoint_before_any_work(tmp_path, capsys):
    # track resolves before opening the (missing) recording; compare before loading the (missing) data
    assert main(["track", str(tmp_path / "none.raw"), "--init", "1,1,2,2", "--checkpoint", "nope"]) == 2
    assert "--checkpoint nope: no such file or folder; expected a checkpoint file, an exported folder, or one of " \
           "the shipped checkpoints: tiny" in capsys.readouterr().err
    assert main(["compare", "tiny", "nope", "--data", str(tmp_path)]) == 2
    assert "no such checkpoint: nope; expected checkpoint files or shipped names (tiny" in capsys.readouterr().err
    assert main(["compare", "tiny", str(REAL_TINY), "--data", str(tmp_path)]) == 2  # the same file twice
    assert "checkpoints must differ" in capsys.readouterr().err
    assert main(["benchmark", "--root", str(tmp_path), "--backbone", "tiny", "--baseline", "centroid"]) == 2
    assert "--baseline cannot be combined with --checkpoint, --backbone or --keep" in capsys.readouterr().err


def test_tune_write_refuses_the_file_inside_the_package(tmp_path, capsys):
    for flags in (["--backbone", "tiny"], ["--checkpoint", "tiny.pt"]):
        assert main(["tune", *flags, "--data", str(tmp_path), "--write"]) == 2
        assert "--write: tiny" in capsys.readouterr().err
    assert load_checkpoint(REAL_TINY)["tracking"]  # untouched


def test_prune_takes_a_shipped_name(tmp_path, capsys):
    out = tmp_path / "pruned.pt"
    assert main(["prune", "tiny", "--keep", "default", "--out", str(out)]) == 0
    assert load_checkpoint(out)["pruning"]["keep"] and load_checkpoint(REAL_TINY).get("pruning") is None


_DEMOS: dict[tuple, dict] = {}


def _demo(capsys, tmp_path_factory, *flags: str) -> dict:
    """``evtrack demo --json --no-video`` with ``flags``, once per flag set in this module (~3 s each)."""
    if flags not in _DEMOS:
        out = tmp_path_factory.mktemp("demo")
        assert main(["demo", "--json", "--no-video", "--out", str(out), *flags]) == 0
        _DEMOS[flags] = json.loads(capsys.readouterr().out)
    return _DEMOS[flags]


def test_backbone_and_checkpoint_name_track_the_same(capsys, tmp_path_factory):
    by_name = _demo(capsys, tmp_path_factory, "--checkpoint", "tiny")
    by_backbone = _demo(capsys, tmp_path_factory, "--backbone", "tiny")
    same = ("frames", "auc", "pr", "npr", "sops", "macs")
    assert {k: by_name[k] for k in same} == {k: by_backbone[k] for k in same}
    assert by_name["auc"] > 0


@pytest.mark.parametrize("name", list(SHIPPED))
def test_every_shipped_checkpoint_runs_the_demo_and_its_config_is_described(name, capsys, tmp_path_factory):
    summary = _demo(capsys, tmp_path_factory, "--checkpoint", name)
    assert summary["frames"] >= 20 and 0 <= summary["auc"] <= 100 and summary["sops"] > 0
    assert main(["model-info", "--shipped", "--json"]) == 0
    row = next(r for r in json.loads(capsys.readouterr().out) if r["name"] == name)
    assert row["config"] == load_checkpoint(SHIPPED[name])["config"].name
    assert main(["model-info", "--config", row["config"], "--runs", "1", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["config"] == row["config"] and info["params"]["total"] == row["params"]


def test_a_checkpoint_added_to_the_shipped_folder_works_by_name(fake_shipped, tmp_path, capsys):
    """What happens when spikformer.pt lands in evtrack/data/: listed, selectable, tracked with."""
    (fake_shipped / "qkformer.pt").unlink()  # fake bytes: model-info --shipped reads every file
    torch.manual_seed(0)
    model = create_model("spikformer-ilif", **SMALL)
    save_checkpoint(fake_shipped / "spikformer.pt", model, step=5, half=True)
    assert main(["model-info", "--shipped", "--json"]) == 0
    row = {r["name"]: r for r in json.loads(capsys.readouterr().out)}["spikformer"]
    assert (row["config"], row["step"]) == ("spikformer-ilif", 5)
    assert row["params"] == sum(p.numel() for p in model.parameters())
    assert main(["demo", "--backbone", "spikformer", "--json", "--no-video", "--out", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out)["frames"] >= 20
    assert main(["model-info", "--shipped"]) == 0
    assert "spikformer   config spikformer-ilif" in capsys.readouterr().out
