import pytest
import torch

from evtrack.cli import main
from evtrack.pruning import apply_pruning

tracker = pytest.importorskip("evtrack.network.checkpoint")


@pytest.fixture
def ckpt(tmp_path):
    from evtrack.network.registry import create_model

    model = create_model("tiny")
    return tracker.save_checkpoint(tmp_path / "dense.pt", model), model


def test_prune_writes_settings_and_weights(ckpt, tmp_path, capsys):
    path, model = ckpt
    out = tmp_path / "pruned.pt"
    assert main(["prune", str(path), "--keep", "0.8,0.7,0.6,0.5", "--mode", "cumulative", "--out", str(out)]) == 0
    payload = tracker.load_checkpoint(out)
    assert payload["pruning"]["keep"] == [0.8, 0.7, 0.6, 0.5]
    assert payload["pruning"]["mode"] == "cumulative"
    for k, v in model.state_dict().items():
        assert torch.equal(payload["model"][k], v)
    # The stored settings re-apply as keyword arguments.
    m2 = tracker.load_model(out)
    apply_pruning(m2, **payload["pruning"])
    assert m2.pruning == payload["pruning"]
    assert "keep per prunable block 0.8, 0.7, 0.6, 0.5" in capsys.readouterr().out
    assert not list(tmp_path.glob(".*tmp"))


def test_prune_dense_removes_field(ckpt, tmp_path):
    path, _ = ckpt
    out = tmp_path / "p.pt"
    main(["prune", str(path), "--keep", "default", "--out", str(out)])
    out2 = tmp_path / "d.pt"
    main(["prune", str(out), "--keep", "1.0", "--out", str(out2)])
    assert "pruning" not in tracker.load_checkpoint(out2)


def test_prune_bad_keep_is_one_line_error(ckpt, tmp_path, capsys):
    path, _ = ckpt
    out = tmp_path / "p.pt"
    assert main(["prune", str(path), "--keep", "0.9,0.8", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "found 2 ratios; expected 1 or one per prunable block (4)" in err
    assert not out.exists()


def test_apply_checkpoint_pruning_reapplies_and_overrides(ckpt, tmp_path):
    from evtrack.pruning import apply_checkpoint_pruning

    path, _ = ckpt
    out = tmp_path / "p.pt"
    main(["prune", str(path), "--keep", "0.5", "--keep-template", "--out", str(out)])
    settings = tracker.load_checkpoint(out)["pruning"]
    m = tracker.load_model(out)
    apply_checkpoint_pruning(m, settings)
    assert m.pruning == settings and m.pruning["prune_template"] is False
    apply_checkpoint_pruning(m, settings, keep="0.7")  # explicit keep wins, options stay
    assert m.pruning["keep"] == [0.7] * 4 and m.pruning["prune_template"] is False
    apply_checkpoint_pruning(m, None)
    assert m.pruning is None


def test_track_json_reports_ops_with_keep(tmp_path, capsys):
    import json

    from evtrack.commands.demo import load_sample

    seq = load_sample()
    init = ",".join(f"{v:.2f}" for v in seq.boxes[0])
    out = tmp_path / "boxes.txt"
    assert main(["track", str(seq.events_path), "--init", init, "--frames", "--keep", "default", "--json",
                 "--out", str(out)]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["keep"] == "default" and res["tokens_kept_frac"] == pytest.approx(673 / 1280)
    assert res["sops"] > res["transformer_sops"] > 0 and res["energy_mj"] > 0 and res["ops_frames"] > 0
    assert len(out.read_text().splitlines()) == res["updates"]


def test_prune_output_has_the_normal_file_mode(ckpt, tmp_path):
    """A pruned checkpoint is an ordinary file: 0666 less the umask, as open() would make it (was 0600)."""
    import os

    path, _ = ckpt
    out = tmp_path / "p.pt"
    old = os.umask(0o022)
    try:
        assert main(["prune", str(path), "--keep", "default", "--out", str(out)]) == 0
    finally:
        os.umask(old)
    assert oct(out.stat().st_mode & 0o777) == oct(0o644)


def test_prune_reports_the_share_of_tokens_kept(ckpt, tmp_path, capsys):
    # tiny: 64 template + 256 search tokens per block; --keep-template keeps the 64 whole
    path, _ = ckpt
    main(["prune", str(path), "--keep", "0.5", "--out", str(tmp_path / "a.pt")])
    assert "(50.0% of the 320 tokens kept over the block stack)" in capsys.readouterr().out
    main(["prune", str(path), "--keep", "0.5", "--keep-template", "--out", str(tmp_path / "b.pt")])
    assert "(60.0% of the 320 tokens kept over the block stack, template tokens kept whole)" in capsys.readouterr().out
