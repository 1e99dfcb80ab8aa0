"""scikit-learn's own estimator checks on :class:`GradientDescentRegressor`, every one of them,
for the default (full-batch gd), mini-batch sgd and the closed form. No check is expected to
fail: ``expected_failed_checks`` is left empty on purpose, and ``xfail_strict`` would turn an
unexpected pass of a listed check into a failure."""

from __future__ import annotations

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from gradfit.estimator import GradientDescentRegressor

ESTIMATORS = [
    GradientDescentRegressor(),
    GradientDescentRegressor(solver="sgd"),
    GradientDescentRegressor(solver="lstsq"),
]


pytestmark = pytest.mark.usefixtures("one_thread")


def expected_failed_checks(estimator: GradientDescentRegressor) -> dict[str, str]:
    """Checks known to fail, with the reason: none."""
    return {}


@parametrize_with_checks(  # type: ignore[untyped-decorator]
    ESTIMATORS, expected_failed_checks=expected_failed_checks, xfail_strict=True
)
def test_sklearn_compatible(estimator: GradientDescentRegressor, check: object) -> None:
    check(estimator)  # type: ignore[operator]
