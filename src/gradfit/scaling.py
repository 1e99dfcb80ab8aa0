"""Standardization: centre and scale features inside training, report in original units.

A model fitted on ``Z = (X - mean) / scale`` as ``Z @ Wz.T + bz`` is, in the original units,
``weight = Wz / scale`` and ``bias = bz - weight @ mean``: :meth:`Standardizer.unscale` does it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["Standardizer"]


@dataclass(frozen=True)
class Standardizer:
    """Per-feature ``mean`` (d,) and ``scale`` (d,); constant features get scale 1."""

    mean: torch.Tensor
    scale: torch.Tensor

    @classmethod
    def fit(cls, X: torch.Tensor, *, center: bool = True) -> Standardizer:
        """Statistics of X (n, d), accumulated in float64 for accuracy."""
        X64 = X.double()
        mean = X64.mean(dim=0)
        return cls.from_moments(mean, (X64 - mean).pow(2).mean(dim=0), center=center)

    @classmethod
    def from_moments(
        cls, mean: torch.Tensor, variance: torch.Tensor, *, center: bool = True
    ) -> Standardizer:
        """From per-feature means and (population) variances, float64 (d,) each.

        ``center=False`` (a model without an intercept cannot be centred) scales by the root
        mean square ``sqrt(variance + mean²)`` and leaves the mean at 0.
        """
        mean, variance = mean.double(), variance.double().clamp_min(0.0)
        spread = (variance if center else variance + mean * mean).sqrt()
        # Constant (or all-zero) columns: leave unscaled rather than divide by ~0. "Constant"
        # is relative to the column's own magnitude (a spread within rounding of its mean), so
        # that a column of small values (1e-100, 1e-20, ...) is still scaled; an absolute floor
        # of eps left such columns unscaled and gd crawled without converging.
        info = torch.finfo(torch.float64)
        tiny = (info.eps * mean.abs()).clamp_min(info.tiny)
        scale = torch.where(spread > tiny, spread, torch.ones_like(spread))
        return cls(mean=mean.clone() if center else torch.zeros_like(mean), scale=scale)

    @classmethod
    def identity(cls, n_features: int, device: torch.device | str = "cpu") -> Standardizer:
        ones = torch.ones(n_features, dtype=torch.float64, device=device)
        return cls(mean=torch.zeros_like(ones), scale=ones)

    def transform(self, X: torch.Tensor) -> torch.Tensor:
        """(n, d) -> (n, d) standardized, in X's dtype."""
        return (X - self.mean.to(X.dtype)) / self.scale.to(X.dtype)

    def unscale(
        self, weight: torch.Tensor, bias: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Coefficients on standardized inputs -> coefficients on original inputs."""
        w = weight.double() / self.scale  # (k, d) / (d,)
        b = bias.double() - w @ self.mean  # (k,) - (k, d) @ (d,)
        return w.to(weight.dtype), b.to(bias.dtype)

    def rescale(
        self, weight: torch.Tensor, bias: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Inverse of :meth:`unscale`: original-unit coefficients -> standardized ones."""
        w = weight.double() * self.scale
        b = bias.double() + weight.double() @ self.mean
        return w.to(weight.dtype), b.to(bias.dtype)
