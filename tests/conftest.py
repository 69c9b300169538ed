"""Shared fixtures: a seeded synthetic event stream and the location of the real samples."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from evtrack.io.events import random_events  # noqa: F401  (re-exported for tests)

# Real recordings live beside the checkout (../shared/data); EVTRACK_SHARED overrides it.
SHARED = Path(os.environ.get("EVTRACK_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = SHARED / "data"
    if not path.is_dir():
        pytest.skip(f"real sample data not found at {path} (set EVTRACK_SHARED)")
    return path


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
