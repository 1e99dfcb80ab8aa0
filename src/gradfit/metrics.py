"""Per-target regression metrics: MSE, RMSE, MAE and R² (coefficient of determination)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from gradfit.errors import ValidationError
from gradfit.validation import check_weights

__all__ = [
    "MetricsAccumulator",
    "RegressionMetrics",
    "r2_from_errors",
    "r2_score",
    "regression_metrics",
]


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


def _as_tensor(values: Any, name: str) -> torch.Tensor:
    """``values`` as a tensor: a tensor as it is, a NumPy array or a (nested) list of numbers
    converted; anything else refused naming the argument."""
    if isinstance(values, torch.Tensor):
        return values
    try:
        array = np.asarray(values, dtype=np.float64)
        if not array.flags.writeable:  # pandas' values under copy-on-write: copied, not shared
            array = array.copy()
        tensor = torch.as_tensor(array)
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            f"{name} must be a tensor, a NumPy array or a list of numbers, got "
            f"{type(values).__name__} ({exc})"
        ) from None
    return tensor


def _pair(y_true: Any, y_pred: Any) -> tuple[torch.Tensor, torch.Tensor]:
    y_true, y_pred = _as_tensor(y_true, "y_true"), _as_tensor(y_pred, "y_pred")
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


def _row_weights(sample_weight: Any, y: torch.Tensor) -> torch.Tensor | None:
    """``sample_weight`` as a (n, 1) float64 tensor on y's device (None: unweighted)."""
    if sample_weight is None:
        return None
    return check_weights(sample_weight, y.shape[0]).to(y.device)[:, None]


def r2_score(
    y_true: torch.Tensor | npt.ArrayLike,
    y_pred: torch.Tensor | npt.ArrayLike,
    sample_weight: Any = None,
) -> torch.Tensor:
    """R² per target, shape (k,). A constant target scores 1.0 if predicted exactly, else 0.0
    (scikit-learn's ``force_finite`` convention), so the result is always finite.
    ``sample_weight`` (n,): weighted sums of squares about the weighted mean, as
    ``sklearn.metrics.r2_score(..., sample_weight=w)``."""
    y_true, y_pred = _pair(y_true, y_pred)
    w = _row_weights(sample_weight, y_true)
    if w is None:
        ss_res = ((y_true - y_pred) ** 2).sum(dim=0)
        ss_tot = ((y_true - y_true.mean(dim=0)) ** 2).sum(dim=0)
    else:
        ss_res = (w * (y_true - y_pred) ** 2).sum(dim=0)
        mean = (w * y_true).sum(dim=0) / w.sum()
        ss_tot = (w * (y_true - mean) ** 2).sum(dim=0)
    return r2_from_errors(ss_res, ss_tot)


def regression_metrics(
    y_true: torch.Tensor | npt.ArrayLike,
    y_pred: torch.Tensor | npt.ArrayLike,
    sample_weight: Any = None,
) -> RegressionMetrics:
    """MSE, RMSE, MAE and R² for each target column, of tensors, NumPy arrays or lists;
    weighted averages with ``sample_weight`` (n,), as scikit-learn's metrics take it.

    >>> import torch
    >>> m = regression_metrics(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 2.0, 4.0]))
    >>> round(m.mse[0], 4), round(m.mae[0], 4), m.r2[0]
    (0.3333, 0.3333, 0.5)
    """
    t, p = _pair(y_true, y_pred)
    err = p - t
    w = _row_weights(sample_weight, t)
    if w is None:
        mse = (err**2).mean(dim=0)
        mae = err.abs().mean(dim=0)
    else:
        mse = (w * err**2).sum(dim=0) / w.sum()
        mae = (w * err.abs()).sum(dim=0) / w.sum()
    return RegressionMetrics(
        mse=tuple(mse.tolist()),
        rmse=tuple(mse.sqrt().tolist()),
        mae=tuple(mae.tolist()),
        r2=tuple(r2_score(t, p, sample_weight).tolist()),
    )


@dataclass
class MetricsAccumulator:
    """:func:`regression_metrics` over data seen in batches: ``update(y_true, y_pred)`` per
    batch, then :meth:`result`. Sums in float64; the targets' variance (for R²) is merged batch
    by batch with the pairwise update of Chan, Golub and LeVeque, so a large common offset does
    not cancel. ``update(..., sample_weight=w)``: weighted metrics (as
    :func:`regression_metrics` with ``sample_weight`` over all the rows), merged by the same
    update with the batches' total weights; a batch without weights counts its rows as
    weight 1.

    >>> import torch
    >>> acc = MetricsAccumulator()
    >>> acc.update(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0]))
    >>> acc.update(torch.tensor([3.0]), torch.tensor([4.0]))
    >>> m = acc.result()
    >>> round(m.mse[0], 4), round(m.mae[0], 4), m.r2[0]
    (0.3333, 0.3333, 0.5)
    """

    n: int = 0
    sse: torch.Tensor | None = None  # (k,) sum of (weighted) squared errors
    sae: torch.Tensor | None = None  # (k,) sum of (weighted) absolute errors
    mean: torch.Tensor | None = None  # (k,) (weighted) mean of the targets
    m2: torch.Tensor | None = field(default=None)  # (k,) sum of squared deviations from it
    total: float = 0.0  # the rows' total weight (their number when unweighted)

    def update(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        t, p = _pair(y_true, y_pred)
        t, p = t.cpu(), p.cpu()
        m = t.shape[0]
        err = p - t
        w = None
        if sample_weight is not None:
            w = check_weights(sample_weight, m, all_zero=True)[:, None]
        if w is None:
            bw = float(m)
            bmean = t.mean(0)
            bm2 = ((t - bmean) ** 2).sum(0)
            bsse, bsae = (err**2).sum(0), err.abs().sum(0)
        else:
            bw = float(w.sum())
            bmean = (w * t).sum(0) / (bw if bw > 0 else 1.0)  # no weight: the sums are 0
            bm2 = (w * (t - bmean) ** 2).sum(0)
            bsse, bsae = (w * err**2).sum(0), (w * err.abs()).sum(0)
        if self.sse is None or self.sae is None or self.mean is None or self.m2 is None:
            self.n, self.sse, self.sae, self.total = m, bsse, bsae, bw
            self.mean, self.m2 = bmean, bm2
            return
        if t.shape[1] != self.sse.shape[0]:
            raise ValidationError(
                f"batch has {t.shape[1]} targets, earlier batches had {self.sse.shape[0]}"
            )
        self.n += m
        if bw == 0:  # rows of weight 0 only: counted, nothing else
            return
        if self.total == 0:
            self.sse, self.sae, self.total, self.mean, self.m2 = bsse, bsae, bw, bmean, bm2
            return
        total = self.total + bw
        delta = bmean - self.mean
        self.m2 = self.m2 + bm2 + delta * delta * (self.total * bw / total)
        self.mean = self.mean + delta * (bw / total)
        self.sse = self.sse + bsse
        self.sae = self.sae + bsae
        self.total = total

    def result(self) -> RegressionMetrics:
        if self.sse is None or self.sae is None or self.m2 is None:
            raise ValidationError("no rows were seen: metrics need at least one row")
        if self.total == 0:
            raise ValidationError("the rows' sample_weight are all zero: metrics need a weight")
        mse = self.sse / self.total
        return RegressionMetrics(
            mse=tuple(mse.tolist()),
            rmse=tuple(mse.sqrt().tolist()),
            mae=tuple((self.sae / self.total).tolist()),
            r2=tuple(r2_from_errors(self.sse, self.m2).tolist()),
        )
