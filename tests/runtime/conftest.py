"""Runtime tests share one graph cache per session (exports take a second or two each)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def _graph_cache(tmp_path_factory):
    """Graphs exported by the tests go to a temporary cache, never the user's ~/.cache/evtrack."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("openvino")
    mp = pytest.MonkeyPatch()
    mp.setenv("EVTRACK_CACHE", str(tmp_path_factory.mktemp("evtrack-cache")))
    yield
    mp.undo()
