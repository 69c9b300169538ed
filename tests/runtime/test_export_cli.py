"""``evtrack export``, the graph cache behind ``--runtime`` and the errors users see."""

from __future__ import annotations

import importlib
import json

import pytest

from evtrack.cli import main
from evtrack.errors import UserError
from evtrack.runtime import cache
from evtrack.tracker.online import load_tracker


def test_export_writes_pruned_graphs_with_explicit_state(tmp_path, capsys):
    out = tmp_path / "graphs"
    assert main(["export", "shipped", str(out), "--keep", "default", "--json"]) == 0
    meta = json.loads(capsys.readouterr().out)
    assert set(meta["files"]) == {"template", "search", "search_init"}
    assert meta["pruning"]["keep"] and meta["tracking"] and meta["config"]["name"] == "tiny"
    # per scored block: scorer memory, keys and values
    assert len(meta["state"]) == 3 * len(meta["pruning"]["keep"])
    import onnx

    search = onnx.load(str(out / "search.onnx"))
    ops = {n.op_type for n in search.graph.node}
    assert {"TopK", "Gather", "ScatterND"} <= ops  # pruning is inside the graph
    assert "ScatterElements" not in ops  # element-wise scatters were the pruned graph's costliest ops
    assert [i.name for i in search.graph.input] == ["z_feat", "search", *meta["state"]]
    assert [o.name for o in search.graph.output][3:] == [f"{n}_out" for n in meta["state"]]


def test_exported_folder_tracks_and_refuses_what_it_cannot_do(tmp_path, capsys):
    out = tmp_path / "ov"
    assert main(["export", "shipped", str(out), "--format", "openvino"]) == 0
    assert sorted(p.suffix for p in out.iterdir()) == [".bin", ".bin", ".json", ".xml", ".xml"]
    assert main(["demo", "--checkpoint", str(out), "--runtime", "openvino", "--no-video", "--json",
                 "--out", str(tmp_path / "demo")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["runtime"] == "openvino" and summary["auc"] > 50 and "sops" not in summary
    with pytest.raises(UserError, match="exported folder.*not torch"):
        load_tracker(out)
    with pytest.raises(UserError, match="fixed.*re-export"):
        load_tracker(out, runtime="openvino", keep="default")
    with pytest.raises(UserError, match="onnx runtime needs .onnx"):
        load_tracker(out, runtime="onnx")


def test_reduced_precision_needs_openvino(tmp_path, capsys):
    assert main(["export", "shipped", str(tmp_path / "x"), "--precision", "bf16"]) == 2
    assert "expected --format openvino" in capsys.readouterr().err
    with pytest.raises(UserError, match="needs runtime 'openvino'"):
        load_tracker(runtime="onnx", precision="f16")


def test_export_refuses_a_folder_that_is_not_an_export(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["export", "shipped", str(tmp_path)]) == 2
    assert "not an evtrack export folder" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_graphs_are_cached_by_checkpoint_and_pruning():
    load_tracker(runtime="onnx")
    folders = sorted((cache.cache_root() / "graphs").iterdir())
    stamps = {f: (f / "search.onnx").stat().st_mtime_ns for f in folders}
    load_tracker(runtime="openvino")  # same graphs, another runtime: no new export
    assert sorted((cache.cache_root() / "graphs").iterdir()) == folders
    assert {f: (f / "search.onnx").stat().st_mtime_ns for f in folders} == stamps
    load_tracker(runtime="onnx", keep="official")
    assert len(list((cache.cache_root() / "graphs").iterdir())) == len(folders) + 1


def _without(monkeypatch, module: str) -> None:
    """Make ``importlib.import_module(module)`` fail as if the package were not installed."""
    real = importlib.import_module

    def fake(name, *a, **k):
        if name == module:
            raise ImportError(f"No module named {module!r}")
        return real(name, *a, **k)

    monkeypatch.setattr(importlib, "import_module", fake)


def test_a_missing_runtime_says_how_to_install_it(monkeypatch):
    _without(monkeypatch, "onnxruntime")
    with pytest.raises(UserError, match=r"the onnxruntime package is not installed; install it with `pip install "
                       r"onnxruntime==1\.32\.0`"):
        load_tracker(runtime="onnx")


def test_a_missing_openvino_points_to_the_extra(monkeypatch):
    _without(monkeypatch, "openvino")
    with pytest.raises(UserError, match=r"pip install 'evtrack\[runtimes\]'"):
        load_tracker(runtime="openvino")


def test_auto_is_onnx_runtime_unless_ops_are_counted(monkeypatch):
    import importlib.util

    from evtrack.runtime.runners import resolve_runtime

    assert resolve_runtime("auto") == "onnx"
    assert resolve_runtime("auto", count_ops=True) == "torch"  # the op counter hooks the torch model
    assert resolve_runtime("openvino", count_ops=True) == "openvino"  # explicit names pass through
    assert resolve_runtime("auto", count_ops=True, checkpoint=cache.cache_root()) == "onnx"  # a folder: graphs only
    assert load_tracker(runtime="auto").runner.name == "onnx"
    assert load_tracker(runtime="auto", count_ops=True).runner.name == "torch"
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    assert resolve_runtime("auto") == "torch"  # without ONNX Runtime installed


def test_unknown_runtime_is_named():
    with pytest.raises(UserError, match="runtime is 'tensorrt'; expected one of"):
        load_tracker(runtime="tensorrt")


def test_the_cache_key_follows_the_code_that_defines_the_graphs(monkeypatch):
    from evtrack.runtime.export import ExportOptions

    key = cache.cache_key("abc", {"keep": [0.5], "backend": "numba"}, ExportOptions())
    assert key == cache.cache_key("abc", {"keep": [0.5], "backend": "torch"}, ExportOptions())  # same graph
    assert key != cache.cache_key("abc", {"keep": [0.6], "backend": "numba"}, ExportOptions())
    monkeypatch.setattr(cache, "code_hash", lambda: "edited")
    assert cache.cache_key("abc", {"keep": [0.5], "backend": "numba"}, ExportOptions()) != key


def test_a_cache_entry_written_meanwhile_by_another_process_is_kept(tmp_path):
    from evtrack.runtime.export import META_NAME, write_graphs
    from evtrack.tracker.online import load_network, shipped_checkpoint

    model, _ = load_network(shipped_checkpoint())
    first = write_graphs(model, tmp_path / "g")
    (first / "marker").write_text("the other process's export")
    write_graphs(model, tmp_path / "g", replace=False)
    assert (first / "marker").is_file() and (first / META_NAME).is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["g"]  # no temporary folder left behind
    write_graphs(model, tmp_path / "g")  # `evtrack export` replaces
    assert not (first / "marker").exists()


def test_track_reports_the_pruning_of_an_export_folder(tmp_path, capsys):
    import json

    from evtrack.cli import main
    from evtrack.commands.demo import load_sample
    from evtrack.pruning.schedule import default_schedule

    folder = tmp_path / "graphs"
    assert main(["export", "tiny", str(folder), "--keep", "default"]) == 0
    seq = load_sample()
    init = ",".join(f"{v:.2f}" for v in seq.boxes[0])
    capsys.readouterr()
    assert main(["track", str(seq.events_path), "--init", init, "--frames", "--json", "--checkpoint", str(folder),
                 "--out", str(tmp_path / "b.txt")]) == 0
    summary = json.loads(capsys.readouterr().out)
    # the folder's pruning is fixed at export; the report used to say "1.0" (dense) for it
    assert summary["runtime"] == "onnx"
    assert summary["keep"] == ",".join(f"{r:g}" for r in default_schedule(4))
