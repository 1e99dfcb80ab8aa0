"""Cluster-robust standard errors (``cov_type="cluster"``): CR1, as Stata's ``vce(cluster g)``,
R's ``sandwich::vcovCL(fit, cluster = ~g)`` (its default ``type = "HC1"``) and statsmodels'
``cov_type="cluster"`` give it::

    Cov(β̂) = G/(G - 1) · (n - 1)/(n - p) · (X̃ᵀX̃)⁻¹ [Σ_g s_g s_gᵀ] (X̃ᵀX̃)⁻¹,
    s_g = Σ_{i in g} w_i e_i x_i        (x_i with the intercept's 1; w_i = 1 unweighted)

with G the number of groups, n the rows (of positive weight) and p the estimated coefficients
(the rank). The rows are needed only through the per-group score sums ``s_g``, which
:class:`ClusterScores` accumulates batch by batch and merges across batches and processes: a
stream computes them in one pass after the fit, memory bounded by the number of groups
(refused beyond ``max_groups``).

The t tests and intervals keep the model's residual degrees of freedom ``n - p``, as R's
``lmtest::coeftest(fit, vcov = vcovCL)`` does (statsmodels' default is the normal
distribution, Stata's t with G - 1 degrees of freedom, wider when the groups are few);
:attr:`OLSResult.n_groups` gives G for those who want G - 1. The Wald F test of the slopes
uses the clustered covariance. Rows of weight 0 are not part of the fit and their groups not
counted (sandwich counts every row of the data in n and G).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import torch

from gradfit.errors import ValidationError
from gradfit.inference.covariance import Factor

__all__ = ["DEFAULT_MAX_GROUPS", "ClusterScores", "cluster_covariances"]

DEFAULT_MAX_GROUPS = 100_000


def _array(values: Any, name: str) -> np.ndarray:
    array: np.ndarray = np.asarray(
        values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else values,
        dtype=np.float64,
    )
    return array


def _missing(value: Any) -> bool:
    """A missing label: None, NaN, or a value that is not equal to itself (pandas' NA, whose
    comparison is itself NA)."""
    if value is None:
        return True
    try:
        return bool(value != value)
    except (TypeError, ValueError):
        return True


def _labels(groups: Any, m: int, first_row: int) -> np.ndarray:
    """The group labels (m,) of a block as a 1-D array; a missing label is refused by row."""
    if isinstance(groups, torch.Tensor):
        groups = groups.detach().cpu().numpy()
    array = np.asarray(groups)
    if array.ndim != 1 or array.shape[0] != m:
        raise ValidationError(
            f"groups must give one label per row: {m} row(s), got an array of shape {array.shape}"
        )
    if array.dtype.kind == "f":
        bad = ~np.isfinite(array)
    elif array.dtype == object:
        bad = np.fromiter((_missing(v) for v in array.tolist()), bool, m)
    else:
        bad = np.zeros(m, bool)
    if m and bool(bad.any()):
        row = int(np.argmax(bad))
        raise ValidationError(
            f"groups, row {first_row + row}: missing group label ({array[row]!r}); give every "
            "row a group, or leave that row out"
        )
    return array


def _unique(array: np.ndarray) -> tuple[list[Any], np.ndarray]:
    """The distinct labels (plain Python values) and each row's index among them."""
    try:
        unique, inverse = np.unique(array, return_inverse=True)
        return unique.tolist(), inverse.reshape(-1)
    except TypeError:  # labels of several kinds (object array): Python's own hashing
        index: dict[Any, int] = {}
        inverse = np.fromiter(
            (index.setdefault(v, len(index)) for v in array.tolist()), np.int64, array.shape[0]
        )
        return list(index), inverse


class ClusterScores:
    """Per-group sums of the scores ``w_i e_i [x_i - shift, 1]`` of a fit ``(weight, bias)``
    (k, d), (k,), for each target (``e = y - ŷ``, ``w`` the row weight or 1): ``sums``
    (G, k, d + 1), the groups in the order first seen, ``labels`` those groups. Add the rows
    with :meth:`update`, batch by batch; the accumulators of other batches or processes add
    with :meth:`merge` (by label). ``shift`` (d,): a point subtracted from the features
    (their mean, best), which keeps digits when the features are far from 0; ``max_groups``:
    more groups are refused in one line (None: no bound)."""

    def __init__(
        self,
        weight: Any,
        bias: Any,
        *,
        shift: Any = None,
        max_groups: int | None = DEFAULT_MAX_GROUPS,
    ) -> None:
        self.weight = _array(weight, "weight")
        self.bias = _array(bias, "bias").reshape(-1)
        if self.weight.ndim != 2 or self.bias.shape != (self.weight.shape[0],):
            raise ValidationError(
                f"weight must be (k, d) and bias (k,), got {self.weight.shape} and "
                f"{self.bias.shape}"
            )
        k, d = self.weight.shape
        self.shift = np.zeros(d) if shift is None else _array(shift, "shift").reshape(-1)
        if self.shift.shape != (d,):
            raise ValidationError(f"shift must have {d} value(s), got {self.shift.shape}")
        if max_groups is not None and (
            isinstance(max_groups, bool) or not isinstance(max_groups, int) or max_groups < 1
        ):
            raise ValidationError(f"max_groups must be a positive integer, got {max_groups!r}")
        self.max_groups = max_groups
        self.rows = 0  # rows of positive weight added
        self._index: dict[Any, int] = {}
        self._sums = np.zeros((0, k, d + 1))

    @property
    def n_groups(self) -> int:
        return len(self._index)

    @property
    def labels(self) -> tuple[Any, ...]:
        return tuple(self._index)

    @property
    def sums(self) -> np.ndarray:
        """(G, k, d + 1): per group and target, ``Σ w e (x - shift)`` then ``Σ w e``."""
        return self._sums[: self.n_groups]

    def _slots(self, labels: list[Any]) -> np.ndarray:
        """The rows of ``_sums`` of ``labels``, new ones appended (refused past the bound)."""
        new = [v for v in labels if v not in self._index]
        if self.max_groups is not None and self.n_groups + len(new) > self.max_groups:
            p = self._sums.shape[1] * self._sums.shape[2]
            raise ValidationError(
                f"more than {self.max_groups} groups for clustered standard errors (each keeps "
                f"{p} sum(s)); cluster by a coarser column, or raise max_groups (--max-groups)"
            )
        for v in new:
            self._index[v] = len(self._index)
        if self.n_groups > self._sums.shape[0]:
            grown = np.zeros((max(self.n_groups, 2 * self._sums.shape[0]), *self._sums.shape[1:]))
            grown[: self._sums.shape[0]] = self._sums
            self._sums = grown
        return np.fromiter((self._index[v] for v in labels), np.int64, len(labels))

    def add(self, X: np.ndarray, scaled: np.ndarray, groups: Any, first_row: int = 0) -> None:
        """Add the rows ``X`` (m, d) with their ``scaled`` residuals ``w e`` (m, k) and
        ``groups`` (m,), all of positive weight (rows of weight 0 add nothing and are left
        out before)."""
        m = X.shape[0]
        labels = _labels(groups, m, first_row)
        if m == 0:
            return
        unique, inverse = _unique(labels)
        slots = self._slots(unique)
        Z = np.hstack([X - self.shift, np.ones((m, 1))])  # (m, d + 1)
        contributions = scaled[:, :, None] * Z[:, None, :]  # (m, k, d + 1)
        order = np.argsort(inverse, kind="stable")
        sorted_inverse = inverse[order]
        starts = np.flatnonzero(np.r_[True, sorted_inverse[1:] != sorted_inverse[:-1]])
        block = np.add.reduceat(contributions[order], starts, axis=0)  # (labels, k, d + 1)
        self._sums[slots[sorted_inverse[starts]]] += block
        self.rows += m

    def update(self, X: Any, Y: Any, groups: Any, weights: Any = None, first_row: int = 0) -> None:
        """Add a batch of rows ``X`` (m, d), ``Y`` (m,) or (m, k), their ``groups`` (m,) and,
        for a weighted fit, ``weights`` (m,) (rows of weight 0 are left out). ``first_row``:
        the batch's first row in the data (counted from 0), for messages."""
        Xn = _array(X, "X")
        Yn = _array(Y, "Y")
        if Yn.ndim == 1:
            Yn = Yn[:, None]
        k, d = self.weight.shape
        if Xn.ndim != 2 or Xn.shape[1] != d or Yn.shape != (Xn.shape[0], k):
            raise ValidationError(
                f"the fit has {d} feature(s) and {k} target(s): X must be (m, {d}) and Y "
                f"(m, {k}), got {Xn.shape} and {Yn.shape}"
            )
        labels = _labels(groups, Xn.shape[0], first_row)
        scaled = Yn - Xn @ self.weight.T - self.bias
        if weights is not None:
            w = _array(weights, "weights").reshape(-1)
            if w.shape[0] != Xn.shape[0]:
                raise ValidationError(f"weights must have {Xn.shape[0]} value(s)")
            keep = w > 0
            if not bool(keep.all()):
                Xn, scaled, labels, w = Xn[keep], scaled[keep], labels[keep], w[keep]
            scaled = scaled * w[:, None]
        self.add(Xn, scaled, labels, first_row)

    def to_json(self) -> str:
        """The accumulator as JSON (the fit, the shift, the labels and their sums, exactly:
        floats as Python writes them round-trip), to merge the sums of other processes."""
        return json.dumps(
            {
                "weight": self.weight.tolist(),
                "bias": self.bias.tolist(),
                "shift": self.shift.tolist(),
                "rows": self.rows,
                "labels": [_plain(v) for v in self.labels],
                "sums": self.sums.tolist(),
            }
        )

    @classmethod
    def from_json(
        cls, text: str | bytes, max_groups: int | None = DEFAULT_MAX_GROUPS
    ) -> ClusterScores:
        """The accumulator of :meth:`to_json`."""
        document = json.loads(text)
        out = cls(
            np.asarray(document["weight"], dtype=np.float64).reshape(len(document["bias"]), -1),
            document["bias"],
            shift=document["shift"],
            max_groups=max_groups,
        )
        labels = list(document["labels"])
        if labels:
            slots = out._slots(labels)
            out._sums[slots] += np.asarray(document["sums"], dtype=np.float64)
        out.rows = int(document["rows"])
        return out

    def merge(self, other: ClusterScores) -> ClusterScores:
        """A new accumulator of the rows of both (the same fit and shift), groups matched by
        label."""
        if not (
            isinstance(other, ClusterScores)
            and np.array_equal(self.weight, other.weight)
            and np.array_equal(self.bias, other.bias)
            and np.array_equal(self.shift, other.shift)
        ):
            raise ValidationError("only cluster sums of the same fit and shift can be merged")
        limits = [v for v in (self.max_groups, other.max_groups) if v is not None]
        out = ClusterScores(
            self.weight, self.bias, shift=self.shift, max_groups=min(limits) if limits else None
        )
        for part in (self, other):
            slots = out._slots(list(part.labels))
            out._sums[slots] += part.sums
            out.rows += part.rows
        return out


def _plain(value: Any) -> Any:
    """A label as a JSON value (NumPy's scalars as Python's)."""
    return value.item() if isinstance(value, np.generic) else value


def cluster_covariances(
    scores: ClusterScores,
    factor: Factor,
    kept: np.ndarray,
    center: np.ndarray,
    total: float,
    fit_intercept: bool,
    n: int,
    df_resid: int,
) -> tuple[np.ndarray, np.ndarray]:
    """CR1 covariances (k, p, p) of (w, b) and of (w, c) (see the module's docstring) from the
    per-group score sums of the rows of the fit, ``n`` rows of positive weight (total weight
    ``total``), ``center`` (d,) the features' (weighted) means or 0 without an intercept."""
    if scores.rows != n:
        raise ValidationError(
            f"the cluster sums hold {scores.rows} row(s) of positive weight where the fit "
            f"counted {n}; add every row of the fit once"
        )
    G = scores.n_groups
    if G < 2:
        raise ValidationError(
            f"clustered standard errors need at least 2 groups, got {G}: cluster by a column "
            "that has several values"
        )
    sums = scores.sums  # (G, k, d + 1)
    d = kept.shape[0]
    c = center[kept]
    s0 = sums[:, :, d]  # (G, k): Σ w e
    # Σ w e (x - c) = Σ w e (x - shift) - (c - shift) Σ w e
    a = sums[:, :, :d][:, :, kept] - s0[:, :, None] * (c - scores.shift[kept])
    u_w = a @ factor.gram_inverse()  # (G, k, r): Σ_g of the slopes' influence (AᵀA)⁻¹ a
    adjust = G / (G - 1) * (n - 1) / df_resid

    def outer(U: np.ndarray) -> np.ndarray:
        M: np.ndarray = adjust * np.einsum("gkp,gkq->kpq", U, U)
        symmetric: np.ndarray = (M + np.transpose(M, (0, 2, 1))) / 2
        return symmetric

    if not fit_intercept:
        wc = outer(u_w)
        return wc.copy(), wc
    u_c = s0 / total  # (G, k): the mean response at the centre
    u_b = u_c - u_w @ c
    wc = outer(np.concatenate([u_w, u_c[:, :, None]], axis=2))
    wb = outer(np.concatenate([u_w, u_b[:, :, None]], axis=2))
    return wb, wc
