"""Shared fixtures: a seeded synthetic event stream and the location of the real samples."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from evtrack.io.events import random_events  # noqa: F401  (re-exported for tests)

# Real recordings live beside the checkout (../shared/data); EVTRACK_SHARED overrides it.
SHARED = Path(os.environ.get("EVTRACK_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
NO_SHARED_DATA = "real sample data not found at"


@pytest.fixture(autouse=True, scope="session")
def _graph_cache(tmp_path_factory):
    """Graphs exported by the tests (``--runtime onnx``, and ``auto`` on track/live) go to a temporary cache,
    never the user's ~/.cache/evtrack; subprocesses inherit it. Exports take a second or two each."""
    mp = pytest.MonkeyPatch()
    mp.setenv("EVTRACK_CACHE", str(tmp_path_factory.mktemp("evtrack-cache")))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = SHARED / "data"
    if not path.is_dir():
        pytest.skip(f"{NO_SHARED_DATA} {path} (set EVTRACK_SHARED)")
    return path


def pytest_terminal_summary(terminalreporter) -> None:
    """One closing line when the real-data tests were skipped: without it a checkout with no
    ../shared beside it passes quietly while testing far less."""
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if NO_SHARED_DATA in str(r.longrepr)]
    if skipped:
        terminalreporter.write_line(
            f"real-data tests: {len(skipped)} skipped, sample recordings not found at {SHARED / 'data'}; "
            "set EVTRACK_SHARED to the folder that holds data/events (see README, Set-up)",
            yellow=True, bold=True,
        )


@pytest.fixture
def events_small():
    return random_events(10_000)


@pytest.fixture(autouse=True, scope="session")
def _torch_one_thread():
    """Tests run torch single-threaded: on a shared 2-core machine, OpenMP's spinning threads make
    multi-threaded small-tensor work many times slower, not faster."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
