import os

import numpy as np
import pytest
import torch

from evtrack.errors import FormatError
from evtrack.network.checkpoint import FORMAT, FORMAT_VERSION, load_checkpoint, load_model, save_checkpoint
from evtrack.network.registry import create_model

SMALL = dict(conv_channels=(8, 8, 16), stage_dims=(16,), stage_depths=(1,), heads=2, head_channels=8)


@pytest.fixture
def model():
    torch.manual_seed(0)
    return create_model("tiny", **SMALL)


def test_roundtrip_restores_config_and_weights(model, tmp_path):
    path = save_checkpoint(tmp_path / "a.pt", model, step=7)
    payload = load_checkpoint(path)
    assert payload["step"] == 7 and payload["config"] == model.cfg
    loaded = load_model(path)
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)
    assert not list(tmp_path.glob(".*tmp"))  # no temp file left behind


def test_half_checkpoint_loads_as_float(model, tmp_path):
    path = save_checkpoint(tmp_path / "h.pt", model, half=True)
    loaded = load_model(path)
    w = loaded.head.out.weight
    assert w.dtype == torch.float32
    assert torch.allclose(w, model.head.out.weight, atol=1e-3)


def test_truncated_file_is_a_format_error(model, tmp_path):
    path = save_checkpoint(tmp_path / "t.pt", model)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError, match="t.pt: not a readable evtrack checkpoint"):
        load_checkpoint(path)


def test_random_bytes_are_a_format_error(tmp_path):
    path = tmp_path / "r.pt"
    path.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(FormatError, match="r.pt"):
        load_checkpoint(path)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "format_version": FORMAT_VERSION, "x": _Evil()}, path)
    with pytest.raises(FormatError, match="not a readable evtrack checkpoint"):
        load_checkpoint(path)


def test_wrong_version_and_format(model, tmp_path):
    path = tmp_path / "v.pt"
    torch.save({"format": FORMAT, "format_version": 99, "config": {}, "model": {}}, path)
    with pytest.raises(FormatError, match="'format_version' is 99, expected 1"):
        load_checkpoint(path)
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(FormatError, match="field 'format' is None"):
        load_checkpoint(path)


def test_config_and_shape_mismatch(model, tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", model)
    payload = torch.load(path, weights_only=True)
    payload["config"]["stage_dims"] = [32]
    torch.save(payload, path)
    with pytest.raises(FormatError, match="weights do not match the config: .*wrong shape"):
        load_model(path)
    payload["config"]["bogus"] = 1
    torch.save(payload, path)
    with pytest.raises(FormatError, match="unknown config field"):
        load_checkpoint(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "none.pt")


def test_checkpoint_without_architecture_and_representation_fields_loads_as_sdtrack(model, tmp_path):
    """Checkpoints written before the config named its architecture and input keep loading unchanged."""
    path = save_checkpoint(tmp_path / "old.pt", model)
    payload = torch.load(path, weights_only=True)
    del payload["config"]["architecture"], payload["config"]["representation"]
    torch.save(payload, path)
    loaded = load_model(path)
    assert (loaded.cfg.architecture, loaded.cfg.representation) == ("sdtrack", "sdtrack")
    assert loaded.cfg == model.cfg
