"""Per-target regression metrics: MSE, RMSE, MAE and R² (coefficient of determination)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gradfit.errors import ValidationError

__all__ = ["RegressionMetrics", "r2_from_errors", "r2_score", "regression_metrics"]


@dataclass(frozen=True)
class RegressionMetrics:
    """Each field holds one value per target, in target order."""

    mse: tuple[float, ...]
    rmse: tuple[float, ...]
    mae: tuple[float, ...]
    r2: tuple[float, ...]

    def as_dict(self, target_names: tuple[str, ...] | None = None) -> dict[str, dict[str, float]]:
        """``{target: {"mse": .., "rmse": .., "mae": .., "r2": ..}}``."""
        names = target_names or tuple(f"y{j}" for j in range(len(self.mse)))
        return {
            name: {"mse": self.mse[j], "rmse": self.rmse[j], "mae": self.mae[j], "r2": self.r2[j]}
            for j, name in enumerate(names)
        }


def _pair(y_true: torch.Tensor, y_pred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if y_true.shape != y_pred.shape:
        raise ValidationError(
            f"y_true and y_pred must have the same shape, got {tuple(y_true.shape)} "
            f"and {tuple(y_pred.shape)}"
        )
    if y_true.ndim == 1:
        y_true, y_pred = y_true.unsqueeze(1), y_pred.unsqueeze(1)
    if y_true.ndim != 2 or y_true.shape[0] == 0:
        raise ValidationError(
            f"targets must be (n,) or (n, k) with n >= 1, got {tuple(y_true.shape)}"
        )
    # Metrics are summaries a person reads: compute them in float64 whatever the model's dtype.
    return y_true.double(), y_pred.double()


def r2_from_errors(ss_res: torch.Tensor, ss_tot: torch.Tensor) -> torch.Tensor:
    """``1 - ss_res / ss_tot`` per target, from residual and total sums of squares (or their
    means). A constant target (``ss_tot == 0``) scores 1.0 if predicted exactly, else 0.0
    (scikit-learn's ``force_finite`` convention), so the result is always finite."""
    r2 = 1.0 - ss_res / torch.where(ss_tot > 0, ss_tot, torch.ones_like(ss_tot))
    return torch.where(ss_tot == 0, (ss_res == 0).to(r2.dtype), r2)


def r2_score(y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
    """R² per target, shape (k,). A constant target scores 1.0 if predicted exactly, else 0.0
    (scikit-learn's ``force_finite`` convention), so the result is always finite."""
    y_true, y_pred = _pair(y_true, y_pred)
    ss_res = ((y_true - y_pred) ** 2).sum(dim=0)
    ss_tot = ((y_true - y_true.mean(dim=0)) ** 2).sum(dim=0)
    return r2_from_errors(ss_res, ss_tot)


def regression_metrics(y_true: torch.Tensor, y_pred: torch.Tensor) -> RegressionMetrics:
    """MSE, RMSE, MAE and R² for each target column.

    >>> import torch
    >>> m = regression_metrics(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 2.0, 4.0]))
    >>> round(m.mse[0], 4), round(m.mae[0], 4), m.r2[0]
    (0.3333, 0.3333, 0.5)
    """
    t, p = _pair(y_true, y_pred)
    err = p - t
    mse = (err**2).mean(dim=0)
    return RegressionMetrics(
        mse=tuple(mse.tolist()),
        rmse=tuple(mse.sqrt().tolist()),
        mae=tuple(err.abs().mean(dim=0).tolist()),
        r2=tuple(r2_score(t, p).tolist()),
    )
