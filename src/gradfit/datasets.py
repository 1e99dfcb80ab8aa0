"""Built-in data: the tutorial's crop yields (apples and oranges from temperature, rainfall and
humidity)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gradfit.errors import ValidationError

__all__ = ["Dataset", "load_crops", "load_dataset"]

# The five regions of the tutorial: (temp, rainfall, humidity) -> (apples, oranges).
_CROP_INPUTS = (
    (73.0, 67.0, 43.0),
    (91.0, 88.0, 64.0),
    (87.0, 134.0, 58.0),
    (102.0, 43.0, 37.0),
    (69.0, 96.0, 70.0),
)
_CROP_TARGETS = (
    (56.0, 70.0),
    (81.0, 101.0),
    (119.0, 133.0),
    (22.0, 37.0),
    (103.0, 119.0),
)


@dataclass(frozen=True)
class Dataset:
    """A small in-memory data set, named as scikit-learn's ``Bunch`` fields are."""

    data: torch.Tensor  # (n, d) float32
    target: torch.Tensor  # (n, k) float32
    feature_names: tuple[str, ...]
    target_names: tuple[str, ...]
    name: str = ""


def load_crops(rows: int = 15) -> Dataset:
    """The tutorial's crop data.

    ``rows=15`` is the seed's set (the five regions repeated three times, used with
    ``batch_size=5`` in the built-ins part); ``rows=5`` is the from-scratch part's set.

    >>> crops = load_crops()
    >>> tuple(crops.data.shape), tuple(crops.target.shape), crops.target_names
    ((15, 3), (15, 2), ('apples', 'oranges'))
    """
    if isinstance(rows, bool) or rows not in (5, 15):
        raise ValidationError(f"rows must be 5 or 15 (the tutorial's two sets), got {rows!r}")
    repeats = rows // 5
    data = torch.tensor(_CROP_INPUTS, dtype=torch.float32).repeat(repeats, 1)
    target = torch.tensor(_CROP_TARGETS, dtype=torch.float32).repeat(repeats, 1)
    return Dataset(
        data=data,
        target=target,
        feature_names=("temp", "rainfall", "humidity"),
        target_names=("apples", "oranges"),
        name="crops",
    )


BUILTIN_DATASETS = ("crops",)


def load_dataset(name: str) -> Dataset:
    """A built-in data set by name (``"crops"``), wherever a data source is accepted."""
    if name == "crops":
        return load_crops()
    raise ValidationError(
        f"unknown built-in data set {name!r}; available: {', '.join(BUILTIN_DATASETS)}"
    )
