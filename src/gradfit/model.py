"""The linear model: ``Y_hat = X @ weight.T + bias``, one convention everywhere.

``weight`` has shape (k, d) and ``bias`` shape (k,), as in :class:`torch.nn.Linear` and the
tutorial (``x @ w.t() + b``): row ``j`` of ``weight`` and ``bias[j]`` predict target ``j``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from gradfit.errors import ValidationError

__all__ = ["LinearMap", "LinearModel", "predict"]


def predict(X: torch.Tensor | Any, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Predictions of a linear model.

    Parameters
    ----------
    X : (n, d) tensor, or a NumPy array or nested list (converted, as :func:`gradfit.ols`
        takes them; a table with named columns is refused: columns are matched by name by
        ``gradfit.predict(model, table)``, not by position)
    weight : (k, d) tensor
    bias : (k,) tensor

    Returns
    -------
    (n, k) tensor ``X @ weight.T + bias``.

    Examples
    --------
    >>> import torch
    >>> predict(torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, 4.0]]), torch.tensor([0.5]))
    tensor([[11.5000]])
    """
    if not isinstance(X, torch.Tensor):
        X = _matrix(X)
    if X.ndim != 2 or weight.ndim != 2 or bias.ndim != 1:
        raise ValidationError(
            "predict expects X (n, d), weight (k, d) and bias (k,), got shapes "
            f"{tuple(X.shape)}, {tuple(weight.shape)} and {tuple(bias.shape)}"
        )
    if X.shape[1] != weight.shape[1]:
        raise ValidationError(
            f"X has {X.shape[1]} features, but the model expects {weight.shape[1]} features"
        )
    if bias.shape[0] != weight.shape[0]:
        raise ValidationError(
            f"bias has {bias.shape[0]} entries but weight has {weight.shape[0]} rows (targets)"
        )
    # (n, d) @ (d, k) -> (n, k), then the bias is broadcast over rows.
    return torch.addmm(bias.to(X.dtype), X, weight.to(X.dtype).T)


def _matrix(X: Any) -> torch.Tensor:
    """An array-like X (n, d) as a tensor: float32 arrays as they are, anything else float64;
    a table with named columns refused."""
    from gradfit.validation import as_matrix  # validation imports nothing of the model

    if hasattr(X, "columns"):
        raise ValidationError(
            f"X is a table ({type(X).__name__}) with named columns: predict by column name with "
            "gradfit.predict(model, table), or pass its values in the model's feature order "
            "as an array"
        )
    matrix = as_matrix(X, "X")
    return matrix if getattr(X, "dtype", None) == "float32" else matrix.double()


class LinearMap:
    """What every holder of a ``weight`` (k, d) and ``bias`` (k,) answers: its sizes and its
    predictions (:class:`LinearModel`; a model file's
    :class:`~gradfit.persistence.SavedModel`)."""

    weight: torch.Tensor
    bias: torch.Tensor

    @property
    def n_features(self) -> int:
        return int(self.weight.shape[1])

    @property
    def n_targets(self) -> int:
        return int(self.weight.shape[0])

    def predict(self, X: torch.Tensor | Any) -> torch.Tensor:
        """(n, d) -> (n, k): ``X @ weight.T + bias``, in ``X``'s dtype (a tensor, or an
        array-like: see :func:`predict`)."""
        return predict(X, self.weight, self.bias)


@dataclass(frozen=True)
class LinearModel(LinearMap):
    """A trained linear model with the names that travel with it."""

    weight: torch.Tensor  # (k, d)
    bias: torch.Tensor  # (k,)
    feature_names: tuple[str, ...] | None = None
    target_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if (
            self.weight.ndim != 2
            or self.bias.ndim != 1
            or self.bias.shape[0] != self.weight.shape[0]
        ):
            raise ValidationError(
                f"weight must be (k, d) and bias (k,), got {tuple(self.weight.shape)} "
                f"and {tuple(self.bias.shape)}"
            )
        if self.feature_names is not None and len(self.feature_names) != self.n_features:
            raise ValidationError(
                f"{len(self.feature_names)} feature names for {self.n_features} features"
            )
        if self.target_names is not None and len(self.target_names) != self.n_targets:
            raise ValidationError(
                f"{len(self.target_names)} target names for {self.n_targets} targets"
            )
