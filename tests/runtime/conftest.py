"""Runtime tests need both graph runtimes; they share the session's temporary graph cache (tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def _runtimes_installed():
    pytest.importorskip("onnxruntime")
    pytest.importorskip("openvino")
