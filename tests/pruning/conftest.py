"""Tracker tests run torch single-threaded: on a shared 2-core machine, OpenMP's spinning threads
make multi-threaded small-tensor work many times slower, not faster."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _torch_one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
