"""Shared fixtures: a seeded synthetic event stream and the location of the real samples."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from evtrack.io.events import EVENT_DTYPE

# Real recordings live beside the checkout (../shared/data); EVTRACK_SHARED overrides it.
SHARED = Path(os.environ.get("EVTRACK_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = SHARED / "data"
    if not path.is_dir():
        pytest.skip(f"real sample data not found at {path} (set EVTRACK_SHARED)")
    return path


def random_events(n: int, height: int = 260, width: int = 346, duration_us: int = 100_000, seed: int = 0):
    """Sorted random events in the canonical layout."""
    rng = np.random.default_rng(seed)
    ev = np.empty(n, dtype=EVENT_DTYPE)
    ev["t"] = np.sort(rng.integers(0, duration_us, n))
    ev["x"] = rng.integers(0, width, n)
    ev["y"] = rng.integers(0, height, n)
    ev["p"] = rng.integers(0, 2, n)
    return ev


@pytest.fixture
def events_small():
    return random_events(10_000)
