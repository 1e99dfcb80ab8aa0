"""Shared fixtures: the tutorial's crop data in float64, a seeded NumPy generator, and one
intra-op thread for modules of tiny problems."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

import gradfit


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240611)


@pytest.fixture
def crops64() -> tuple[torch.Tensor, torch.Tensor]:
    """The 15-row crop data as float64 tensors X (15, 3), Y (15, 2)."""
    crops = gradfit.load_crops()
    return crops.data.double(), crops.target.double()


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """For modules of tiny problems (``pytestmark = pytest.mark.usefixtures("one_thread")``):
    intra-op threads only add latency, and on a shared 2-core machine MKL's threaded small
    matmuls were seen to stall for milliseconds per call (a 0.1 s fit took 2-10 s). One thread
    keeps the run time steady; results do not depend on it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
