"""scikit-learn's own estimator checks on :class:`GradientDescentRegressor`, every one of them,
for the default (full-batch gd), mini-batch sgd and the closed form. No check is expected to
fail: ``expected_failed_checks`` is left empty on purpose, and ``xfail_strict`` would turn an
unexpected pass of a listed check into a failure."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from sklearn.utils.estimator_checks import parametrize_with_checks

from gradfit.estimator import GradientDescentRegressor

ESTIMATORS = [
    GradientDescentRegressor(),
    GradientDescentRegressor(solver="sgd"),
    GradientDescentRegressor(solver="lstsq"),
]


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """The checks' problems are tiny: intra-op threads only add latency, and on a shared 2-core
    machine MKL's threaded small matmuls were seen to stall for milliseconds per call (a 0.1 s
    fit took 2-10 s). One thread keeps the run time steady; results do not depend on it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def expected_failed_checks(estimator: GradientDescentRegressor) -> dict[str, str]:
    """Checks known to fail, with the reason: none."""
    return {}


@parametrize_with_checks(  # type: ignore[untyped-decorator]
    ESTIMATORS, expected_failed_checks=expected_failed_checks, xfail_strict=True
)
def test_sklearn_compatible(estimator: GradientDescentRegressor, check: object) -> None:
    check(estimator)  # type: ignore[operator]
