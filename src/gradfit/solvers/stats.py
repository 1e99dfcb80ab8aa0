"""Sufficient statistics of a least-squares problem, and the step sizes they imply.

For a linear model the squared loss depends on the data only through the means, the centred
second moments and the target variances. Computed once (one pass, float64), they make each
full-batch gradient step cost O(d² k) instead of O(n d k).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gradfit.errors import ValidationError

__all__ = ["SufficientStats", "batch_lipschitz", "hessian_lipschitz"]

_CHUNK_ROWS = 1 << 16
_CHUNK_ELEMENTS = 1 << 22  # float64 buffer of one chunk: 32 MiB


@dataclass(frozen=True)
class SufficientStats:
    """Statistics of features Z (n, d) and targets Y (n, k), all float64.

    ``zbar`` (d,), ``ybar`` (k,), ``Szz = Zc.T @ Zc / n`` (d, d), ``Szy = Zc.T @ Yc / n`` (d, k),
    ``syy = (Yc**2).sum(0) / n`` (k,), where Zc and Yc are the column-centred data.
    """

    n: int
    zbar: torch.Tensor
    ybar: torch.Tensor
    Szz: torch.Tensor
    Szy: torch.Tensor
    syy: torch.Tensor

    @classmethod
    def compute(cls, Z: torch.Tensor, Y: torch.Tensor) -> SufficientStats:
        """One pass over (Z, Y) in chunks, accumulated in float64 (shifted by the first chunk's
        means so that the centred moments do not suffer cancellation)."""
        n, d, k = Z.shape[0], Z.shape[1], Y.shape[1]
        f64, dev = torch.float64, Z.device
        head = min(n, _CHUNK_ROWS)
        z0 = Z[:head].double().mean(0)
        y0 = Y[:head].double().mean(0)
        # One product per chunk gives every sum: with A = [Z - z0, Y - y0, 1] (c, d + k + 1),
        # A^T A holds Mzz, Mzy, the targets' sums of squares and, in its last row, the column
        # sums. The shift and the conversion to float64 are one pass into a reused buffer.
        w = d + k + 1
        rows = max(1, min(_CHUNK_ROWS, _CHUNK_ELEMENTS // w))
        buf = torch.empty(min(n, rows), w, dtype=f64, device=dev)
        buf[:, -1] = 1.0
        G = torch.zeros(w, w, dtype=f64, device=dev)
        for start in range(0, n, rows):
            A = buf[: min(rows, n - start)]
            torch.sub(Z[start : start + rows], z0, out=A[:, :d])  # float64 arithmetic
            torch.sub(Y[start : start + rows], y0, out=A[:, d : d + k])
            G.addmm_(A.T, A)  # (w, c) @ (c, w)
        Mzz, Mzy = G[:d, :d], G[:d, d : d + k]
        myy = G[d : d + k, d : d + k].diagonal()
        sz, sy = G[-1, :d], G[-1, d : d + k]
        mz, my = sz / n, sy / n  # means of the shifted data
        Szz = Mzz / n - torch.outer(mz, mz)
        Szz = (Szz + Szz.T) / 2  # exact symmetry for eigvalsh
        for name, value in (("X^T X", Mzz), ("X^T Y", Mzy), ("Y^T Y", myy)):
            if not bool(torch.isfinite(value).all()):
                raise ValidationError(
                    f"the data are too large to train on: {name} overflows float64 (values "
                    "beyond about 1e150); rescale the columns (e.g. change their units)"
                )
        return cls(
            n=n,
            zbar=z0 + mz,
            ybar=y0 + my,
            Szz=Szz,
            Szy=Mzy / n - torch.outer(mz, my),
            syy=(myy / n - my * my).clamp_min(0.0),
        )

    def second_moment(self, fit_intercept: bool) -> torch.Tensor:
        """Uncentred second moment of [Z, 1] (or of Z alone without an intercept)."""
        G = self.Szz + torch.outer(self.zbar, self.zbar)
        if not fit_intercept:
            return G
        d = G.shape[0]
        M = torch.empty(d + 1, d + 1, dtype=G.dtype, device=G.device)
        M[:d, :d] = G
        M[:d, d] = M[d, :d] = self.zbar
        M[d, d] = 1.0
        return M


def hessian_lipschitz(stats: SufficientStats, fit_intercept: bool, n_targets: int) -> float:
    """Largest eigenvalue L of the Hessian of the MSE (averaged over n·k entries)::

        H = (2 / k) * M ⊗ I_k,  M = [Z, 1].T @ [Z, 1] / n   =>   L = (2 / k) λmax(M)

    Full-batch gradient descent is stable exactly for lr < 2 / L.
    """
    M = stats.second_moment(fit_intercept)
    return 2.0 / n_targets * float(torch.linalg.eigvalsh(M.cpu())[-1])


def batch_lipschitz(
    L: float, max_row_norm2: float, n: int, batch_size: int, n_targets: int
) -> float:
    """Expected smoothness of a mini-batch of ``batch_size`` rows drawn without replacement
    (Gower et al., 2019): interpolates between the full-batch L and the worst single row's
    ``(2/k) max_i ||[z_i, 1]||²``."""
    l_max = 2.0 / n_targets * max_row_norm2
    b = min(batch_size, n)
    if n <= 1:
        return max(L, l_max)
    return n * (b - 1) / (b * (n - 1)) * L + (n - b) / (b * (n - 1)) * l_max
