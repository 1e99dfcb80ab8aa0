"""Shared fixtures: the tutorial's crop data in float64, a seeded NumPy generator, and one
intra-op thread for modules of tiny problems; the command-line tests' training file and empty
output directory; and the rule that only tests marked ``slow`` start Python processes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from cli_helpers import training_columns, write_csv

import gradfit


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240611)


@pytest.fixture
def crops64() -> tuple[torch.Tensor, torch.Tensor]:
    """The 15-row crop data as float64 tensors X (15, 3), Y (15, 2)."""
    crops = gradfit.load_crops()
    return crops.data.double(), crops.target.double()


@pytest.fixture
def train_csv(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "train.csv", training_columns())


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    """An empty directory for every output: a test asserts what it holds afterwards."""
    path = tmp_path / "out"
    path.mkdir()
    return path


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


@pytest.fixture(autouse=True)
def _only_slow_tests_start_python(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that starts a Python process (``python -m gradfit``, a worker of a process group,
    torchrun) is marked ``@pytest.mark.slow``: each such process pays the imports (PyTorch:
    seconds), and ``make test-fast`` leaves these tests out. An unmarked one fails here at its
    first start, naming the rule. Other programs (a library asking ``lscpu`` or ``fc-list``)
    are not this rule's business and pass."""
    if request.node.get_closest_marker("slow") is not None:
        yield
        return
    start = subprocess.Popen.__init__

    def refuse_python(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
        program = args if isinstance(args, (str, bytes, os.PathLike)) else next(iter(args), "")
        name = os.path.basename(os.fsdecode(program).split()[0]) if program else ""
        if os.fsdecode(program) == sys.executable or name.startswith(("python", "torchrun")):
            raise AssertionError(
                f"{request.node.nodeid} starts a Python process ({name}): mark it "
                "@pytest.mark.slow (`make test-fast` leaves such tests out)"
            )
        start(self, args, *rest, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(subprocess.Popen, "__init__", refuse_python)
        yield
