"""Bad arguments fail early with a ValidationError (a ValueError) that names the argument."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

import gradfit
from gradfit.tutorial import train_builtin, train_from_scratch
from gradfit.validation import as_matrix


def _X(n: int = 6) -> torch.Tensor:
    return torch.arange(3.0 * n).reshape(n, 3) / 10


def _Y(n: int = 6) -> torch.Tensor:
    return torch.arange(2.0 * n).reshape(n, 2)


def _lstsq(X: Any, Y: Any, **kwargs: Any) -> object:
    return gradfit.least_squares(X, Y, **kwargs)


# Every entry point with the names it gives its data arguments in messages.
ENTRY_POINTS: list[tuple[Callable[..., object], str, str]] = [
    (train_from_scratch, "inputs", "targets"),
    (train_builtin, "inputs", "targets"),
    (_lstsq, "X", "Y"),
]
IDS = ["scratch", "builtin", "least_squares"]
TRAINERS = [train_from_scratch, train_builtin]


def _raises(match: str):
    return pytest.raises(gradfit.ValidationError, match=match)


def test_validation_error_is_a_value_error() -> None:
    assert issubclass(gradfit.ValidationError, ValueError)
    assert issubclass(gradfit.ValidationError, gradfit.GradfitError)


@pytest.mark.parametrize("train", TRAINERS)
@pytest.mark.parametrize("lr", [-0.1, 0.0, math.nan, math.inf, -math.inf, True, "0.1", None])
def test_bad_learning_rate(train: Callable[..., object], lr: object) -> None:
    with _raises(r"^lr must be a positive"):
        train(_X(), _Y(), lr=lr, epochs=1)


@pytest.mark.parametrize("train", TRAINERS)
@pytest.mark.parametrize("epochs", [0, -1, 2.0, 1.5, True, "3"])
def test_bad_epochs(train: Callable[..., object], epochs: object) -> None:
    with _raises(r"^epochs must be a positive integer"):
        train(_X(), _Y(), epochs=epochs)


@pytest.mark.parametrize("batch_size", [0, -5, 2.5, False])
def test_bad_batch_size(batch_size: object) -> None:
    with _raises(r"^batch_size must be a positive integer"):
        train_builtin(_X(), _Y(), epochs=1, batch_size=batch_size)


@pytest.mark.parametrize("train", TRAINERS)
def test_numpy_numbers_are_accepted(train: Callable[..., object]) -> None:
    train(_X(), _Y(), lr=np.float32(1e-5), epochs=np.int64(1))


@pytest.mark.parametrize(("fn", "x_name", "y_name"), ENTRY_POINTS, ids=IDS)
def test_different_lengths(fn: Callable[..., object], x_name: str, y_name: str) -> None:
    with _raises(rf"^{x_name} and {y_name} must have the same number of rows, got 6 and 5"):
        fn(_X(6), _Y(5))


@pytest.mark.parametrize(("fn", "x_name", "y_name"), ENTRY_POINTS, ids=IDS)
@pytest.mark.parametrize(
    ("value", "kind"), [(math.nan, "NaN"), (math.inf, "inf"), (-math.inf, "inf")]
)
def test_non_finite_inputs(
    fn: Callable[..., object], x_name: str, y_name: str, value: float, kind: str
) -> None:
    X = _X()
    X[4, 2] = value
    with _raises(rf"^{x_name} contains {kind} \(first non-finite value at row 4, column 2\)"):
        fn(X, _Y())
    Y = _Y()
    Y[3, 1] = value
    with _raises(rf"^{y_name} contains {kind} \(first non-finite value at row 3, column 1\)"):
        fn(_X(), Y)


@pytest.mark.parametrize(("fn", "x_name", "y_name"), ENTRY_POINTS, ids=IDS)
def test_non_finite_in_1d_targets_names_the_row(
    fn: Callable[..., object], x_name: str, y_name: str
) -> None:
    y = torch.arange(6.0)
    y[2] = math.nan
    with _raises(rf"^{y_name} contains NaN \(first non-finite value at row 2"):
        fn(_X(), y)


@pytest.mark.parametrize(("fn", "x_name", "y_name"), ENTRY_POINTS, ids=IDS)
@pytest.mark.parametrize("shape", [(), (6,), (6, 3, 1)])
def test_wrong_input_dimensions(
    fn: Callable[..., object], x_name: str, y_name: str, shape: tuple[int, ...]
) -> None:
    with _raises(rf"^{x_name} must be 2-D with shape \(n_samples, n_features\), got shape"):
        fn(torch.zeros(shape), _Y())


@pytest.mark.parametrize(("fn", "x_name", "y_name"), ENTRY_POINTS, ids=IDS)
@pytest.mark.parametrize("shape", [(), (6, 2, 1)])
def test_wrong_target_dimensions(
    fn: Callable[..., object], x_name: str, y_name: str, shape: tuple[int, ...]
) -> None:
    with _raises(rf"^{y_name} must be 1-D \(n_samples,\) or 2-D"):
        fn(_X(), torch.zeros(shape))


@pytest.mark.parametrize(("fn", "x_name", "y_name"), ENTRY_POINTS, ids=IDS)
def test_empty_and_non_numeric(fn: Callable[..., object], x_name: str, y_name: str) -> None:
    with _raises(rf"^{x_name} must have at least 1 row"):
        fn(torch.zeros(0, 3), torch.zeros(0, 2))
    with _raises(rf"^{x_name} must have at least 1 column"):
        fn(torch.zeros(6, 0), _Y())
    with _raises(rf"^{y_name} must have at least 1 target column"):
        fn(_X(), torch.zeros(6, 0))
    with _raises(rf"^{x_name} must hold numbers"):
        fn(np.array([["a", "b", "c"]] * 6), _Y())
    with _raises(rf"^{x_name} must be real"):
        fn(torch.zeros(6, 3, dtype=torch.complex64), _Y())


def test_read_only_arrays_are_copied_without_a_warning() -> None:
    """A read-only array (pandas' values under copy-on-write, a memmap) is copied, not shared:
    torch.from_numpy on it warned "The given NumPy array is not writable" through every entry
    point (gradfit.ols(DataFrame, ...) among them)."""
    X = np.random.default_rng(2).normal(size=(6, 3))
    X.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tensor = as_matrix(X, "X", dtype=torch.float64)
        gradfit.ols(X, np.arange(6.0) ** 1.5)
    first = X[0, 0]
    tensor[0, 0] = 99.0  # its own memory
    assert X[0, 0] == first


def test_pandas_nullable_columns_are_numbers() -> None:
    """Float64/Int64 columns (NumPy sees objects) are float64, as scikit-learn reads them; a
    missing value (pd.NA) is refused like NaN, with its row and column; text stays refused."""
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(20, 2)), rng.normal(size=20)
    frame = pd.DataFrame({"a": X[:, 0], "b": X[:, 1]}).astype("Float64")
    np.testing.assert_array_equal(
        gradfit.ols(frame, y).weight.numpy(), gradfit.ols(X, y).weight.numpy()
    )
    counts = pd.DataFrame({"a": pd.array(range(20), dtype="Int64"), "b": X[:, 1]})
    assert as_matrix(counts, "X").dtype == torch.float64
    frame.loc[4, "b"] = pd.NA
    with pytest.raises(gradfit.ValidationError, match=r"NaN.*row 4, column 1"):
        gradfit.ols(frame, y)
    with pytest.raises(gradfit.ValidationError, match="must hold numbers"):
        gradfit.ols(pd.DataFrame({"a": ["x"] * 20, "b": X[:, 1]}), y)
