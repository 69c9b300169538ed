import json

import numpy as np
import pytest

from evtrack.cli import main as cli_main
from evtrack.commands.demo import load_sample
from evtrack.tracker.baselines import StationaryTracker
from evtrack.tracker.online import shipped_checkpoint, track_sequence


def test_shipped_files_are_small_and_loadable():
    ckpt = shipped_checkpoint()
    assert ckpt.stat().st_size < 8e6
    seq = load_sample()
    assert len(seq) >= 20 and seq.events_path.stat().st_size < 2e6
    assert seq.boxes.shape == (len(seq), 4)


def test_demo_json_runs_out_of_the_box(tmp_path, capsys):
    assert cli_main(["demo", "--json", "--out", str(tmp_path)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert {"auc", "pr", "npr", "fps"} <= set(summary)
    assert (tmp_path / "demo_overlay.mp4").stat().st_size > 1000
    assert (tmp_path / "demo_frames.png").stat().st_size > 1000
    assert summary["fps"] > 0
    # op accounting (sampled every 4th call): SOPs, the stem conv's MACs, energy from both, all tokens kept
    assert summary["sops"] > summary["transformer_sops"] > 0 and summary["macs"] > 0
    assert summary["energy_mj"] == pytest.approx((4.6 * summary["macs"] + 0.9 * summary["sops"]) * 1e-9)
    assert summary["tokens_kept_frac"] == 1.0 and summary["ops_frames"] >= 10
    # the shipped tracker must clearly beat standing still on its own sample
    seq = load_sample()
    with seq.open() as reader:
        still = track_sequence(StationaryTracker(), reader, seq.init_box, seq.frame_timestamps_us)
    from evtrack.metrics import evaluate_ope

    base = evaluate_ope({"s": still.boxes}, {"s": seq.boxes}, {"s": seq.absent})
    assert summary["auc"] > base.auc + 10
    assert np.isfinite(summary["npr"])
