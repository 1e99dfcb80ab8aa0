"""Plain JSON for formulaic's stateful-transform state (``poly``'s recurrence coefficients,
``center``'s mean, the splines' knots...), exactly and without pickle.

JSON has str keys, no arrays and no NumPy scalars: a dict whose keys are not all str becomes
``{"__items__": [[key, value], ...]}``, an array ``{"__array__": [...], "dtype": "float64"}``,
a tuple ``{"__tuple__": [...]}``; NumPy scalars become Python numbers (exact: float64 is
Python's float, and JSON writes its shortest exact repr). Anything else is refused.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gradfit.errors import ValidationError

__all__ = ["from_plain", "to_plain"]

_ARRAY_DTYPES = ("float64", "int64", "bool")


def to_plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if not math.isfinite(number):
            return {"__float__": repr(number)}
        return number
    if isinstance(value, np.ndarray):
        dtype = str(value.dtype)
        if dtype not in _ARRAY_DTYPES:
            raise ValidationError(f"cannot keep an array of {dtype} in a design")
        return {"__array__": [to_plain(v) for v in value.tolist()], "dtype": dtype}
    if isinstance(value, tuple):
        return {"__tuple__": [to_plain(v) for v in value]}
    if isinstance(value, list):
        return [to_plain(v) for v in value]
    if isinstance(value, dict):
        if all(isinstance(key, str) and not key.startswith("__") for key in value):
            return {key: to_plain(v) for key, v in value.items()}
        return {"__items__": [[to_plain(k), to_plain(v)] for k, v in value.items()]}
    raise ValidationError(f"cannot keep a {type(value).__name__} in a design: {value!r}")


def from_plain(value: Any) -> Any:
    if isinstance(value, list):
        return [from_plain(v) for v in value]
    if not isinstance(value, dict):
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise ValueError(f"unexpected {type(value).__name__}")
    if "__float__" in value:
        return float(value["__float__"])
    if "__array__" in value:
        if value.get("dtype") not in _ARRAY_DTYPES:
            raise ValueError(f"unknown array dtype {value.get('dtype')!r}")
        return np.asarray(from_plain(value["__array__"]), dtype=value["dtype"])
    if "__tuple__" in value:
        return tuple(from_plain(value["__tuple__"]))
    if "__items__" in value:
        return {_key(from_plain(k)): from_plain(v) for k, v in value["__items__"]}
    return {key: from_plain(v) for key, v in value.items()}


def _key(key: Any) -> Any:
    return tuple(key) if isinstance(key, list) else key
