"""Shared fixtures: the tutorial's crop data in float64, and a seeded NumPy generator."""

from __future__ import annotations

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
