"""Checks on user-supplied arguments, each failing with a :class:`ValidationError` that names
the argument, what was expected and what was got. Never ``assert``: these run under
``python -O`` too."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from gradfit.errors import ValidationError

__all__ = [
    "as_matrix",
    "as_targets",
    "check_lengths",
    "check_positive_float",
    "check_positive_int",
    "check_weights",
]


def _to_tensor(value: Any, name: str, dtype: torch.dtype | None) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        tensor = value.detach()
    else:
        try:
            array = np.asarray(value)
        except Exception as exc:  # pragma: no cover - numpy's own message is kept
            raise ValidationError(f"{name} must be array-like of numbers: {exc}") from exc
        if array.dtype == object:
            array = _nullable_numbers(value, array)
        if array.dtype == object or not (
            np.issubdtype(array.dtype, np.number) or array.dtype == bool
        ):
            raise ValidationError(f"{name} must hold numbers, got an array of dtype {array.dtype}")
        array = np.ascontiguousarray(array)
        if not array.flags.writeable:
            # A read-only array (a pandas frame's values under copy-on-write, a memmap) is
            # copied: torch.from_numpy would share it, and warns that it cannot be written.
            array = array.copy()
        tensor = torch.from_numpy(array)
    if tensor.is_complex():
        raise ValidationError(f"{name} must be real, got a complex tensor")
    if tensor.dtype == torch.int32:
        _refuse_r_integer_na(tensor, name)
    if not tensor.is_floating_point():
        tensor = tensor.to(torch.get_default_dtype() if dtype is None else dtype)
    if dtype is not None and tensor.dtype != dtype:
        tensor = tensor.to(dtype)
    return tensor


def _nullable_numbers(value: Any, array: np.ndarray) -> np.ndarray:
    """pandas' nullable numeric columns (``Float64``, ``Int64``, ``boolean``), which NumPy
    sees as objects, as float64 with ``pd.NA`` as NaN (then refused by the finiteness check,
    with its row); ``array`` unchanged for anything else (text, mixed objects)."""
    to_numpy = getattr(value, "to_numpy", None)
    if to_numpy is None or isinstance(value, np.ndarray):
        return array
    try:
        converted: np.ndarray = to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        return array
    return converted


_R_INTEGER_NA = -(2**31)  # R's NA_integer_, as reticulate hands it over in an int32 array


def _refuse_r_integer_na(tensor: torch.Tensor, name: str) -> None:
    """An int32 array holding -2**31 is R data whose NA reticulate turned into that number:
    refused (it would otherwise be fitted as a value near -2.1e9)."""
    hits = (tensor == _R_INTEGER_NA).nonzero()
    if hits.shape[0]:
        where = hits[0].tolist()
        at = f"row {where[0]}" + (f", column {where[1]}" if len(where) > 1 else "")
        raise ValidationError(
            f"{name} holds -2147483648 at {at} of an int32 array: that is R's NA_integer_ as "
            "reticulate passes it on, not a number; pass R data through gf_matrix() (or "
            "gf_frame(), gf_vector(); r/gradfit.R), which turns NA into NaN and says where it "
            "is, or remove the NA in R first"
        )


def _check_finite(tensor: torch.Tensor, name: str) -> None:
    # Fast path: NaN and inf propagate into the sum, so a finite sum proves every value finite
    # (one vectorised reduction); only a non-finite sum (or an overflow) needs the exact check.
    if not tensor.numel() or bool(torch.isfinite(tensor.sum(dtype=torch.float64))):
        return
    if not bool(torch.isfinite(tensor).all()):
        bad = (~torch.isfinite(tensor)).nonzero()[0].tolist()
        kind = "NaN" if bool(torch.isnan(tensor).any()) else "inf"
        where = f"row {bad[0]}" + (f", column {bad[1]}" if len(bad) > 1 else "")
        raise ValidationError(
            f"{name} contains {kind} (first non-finite value at {where}); "
            "remove or impute non-finite values before fitting"
        )


def as_matrix(
    value: Any,
    name: str = "X",
    *,
    dtype: torch.dtype | None = None,
    min_rows: int = 1,
    min_columns: int = 1,
) -> torch.Tensor:
    """Return ``value`` as a finite 2-D floating tensor of shape (n, d), d >= ``min_columns``
    (0 for the design of an intercept alone, R's ``y ~ 1``)."""
    tensor = _to_tensor(value, name, dtype)
    if tensor.ndim != 2:
        raise ValidationError(
            f"{name} must be 2-D with shape (n_samples, n_features), "
            f"got shape {tuple(tensor.shape)}"
        )
    if tensor.shape[0] < min_rows:
        raise ValidationError(f"{name} must have at least {min_rows} row(s), got {tensor.shape[0]}")
    if tensor.shape[1] < min_columns:
        raise ValidationError(f"{name} must have at least 1 column, got 0")
    _check_finite(tensor, name)
    return tensor


def as_targets(value: Any, name: str = "Y", *, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Return targets as a finite 2-D tensor (n, k); a 1-D ``value`` becomes (n, 1)."""
    tensor = _to_tensor(value, name, dtype)
    if tensor.ndim == 1:
        tensor = tensor.unsqueeze(1)
    if tensor.ndim != 2:
        raise ValidationError(
            f"{name} must be 1-D (n_samples,) or 2-D (n_samples, n_targets), "
            f"got shape {tuple(tensor.shape)}"
        )
    if tensor.shape[1] < 1:
        raise ValidationError(f"{name} must have at least 1 target column, got 0")
    _check_finite(tensor, name)
    return tensor


def check_lengths(X: torch.Tensor, Y: torch.Tensor, x_name: str = "X", y_name: str = "Y") -> None:
    """X and Y must have the same number of rows."""
    if X.shape[0] != Y.shape[0]:
        raise ValidationError(
            f"{x_name} and {y_name} must have the same number of rows, "
            f"got {X.shape[0]} and {Y.shape[0]}"
        )


def check_positive_float(value: Any, name: str) -> float:
    """A finite float strictly above zero (learning rates, tolerances)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise ValidationError(f"{name} must be a positive number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number <= 0.0:
        raise ValidationError(f"{name} must be a positive finite number, got {value!r}")
    return number


def check_positive_int(value: Any, name: str) -> int:
    """An integer of at least 1 (epochs, batch sizes)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValidationError(f"{name} must be a positive integer, got {value!r}")
    if int(value) < 1:
        raise ValidationError(f"{name} must be a positive integer (at least 1), got {value!r}")
    return int(value)


def check_weights(
    value: Any, n: int, name: str = "sample_weight", *, all_zero: bool = False
) -> torch.Tensor:
    """Row weights as a float64 (n,) CPU tensor: 1-D, one per row, finite, non-negative and
    not all zero (``all_zero``: allowed, for one batch of many). A bad weight is one line
    naming the first bad row (counted from 0, as the rows of X in :func:`as_matrix`'s
    messages) and its value."""
    if not isinstance(value, torch.Tensor):
        value = np.array(value)  # a copy: writable (pandas' arrays may not be), never shared
    tensor = _to_tensor(value, name, torch.float64).cpu()
    if tensor.ndim != 1 or tensor.shape[0] != n:
        raise ValidationError(
            f"{name} must be 1-D with one weight per row ({n},), got shape {tuple(tensor.shape)}"
        )
    bad = (~torch.isfinite(tensor) | (tensor < 0)).nonzero()
    if bad.shape[0]:
        row = int(bad[0, 0])
        value = float(tensor[row])
        what = "negative" if value < 0 else "not finite"
        raise ValidationError(
            f"{name} at row {row} (counted from 0) is {what} ({value:g}); weights must be "
            "finite and >= 0 (0 leaves the row out)"
        )
    if n and not all_zero and not bool((tensor > 0).any()):
        raise ValidationError(f"{name} are all zero: at least one row needs a positive weight")
    return tensor.contiguous()
