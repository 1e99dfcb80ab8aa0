"""Plots of a training run: the loss curve and, per target, predicted against actual values.

matplotlib is optional (``pip install 'gradfit[plot]'``) and imported only when a plot is drawn.
Figures are built with :class:`matplotlib.figure.Figure` and the Agg canvas directly, so no global
pyplot state or backend setting is touched.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt
import torch

from gradfit.atomic import atomic_write
from gradfit.errors import DataError, GradfitError, ValidationError
from gradfit.metrics import r2_score

__all__ = ["plot_cv", "plot_training"]

_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
_MAX_POINTS = 20_000  # points drawn per scatter panel; more only blur into a blob and slow down


def plot_training(
    path: str | Path,
    loss_history: Sequence[float],
    y_true: npt.ArrayLike,
    y_pred: npt.ArrayLike,
    target_names: Sequence[str],
    title: str = "gradfit training",
) -> None:
    """Draw the loss curve and predicted-against-actual panels to an image file, atomically.

    Parameters
    ----------
    path : str or Path
        ``.png`` (or ``.svg``, ``.pdf``); its directory must exist.
    loss_history : sequence of float
        One loss per epoch, drawn on a log scale (linear if a loss is zero or negative). May be
        empty (e.g. a closed-form solver); the panel then says so.
    y_true, y_pred : (n,) or (n, k) array-like
        Actual and predicted targets.
    target_names : sequence of k str
    title : str

    Raises
    ------
    GradfitError
        matplotlib is not installed.
    ValidationError
        Shapes or names that do not match.
    DataError
        Unsupported extension, missing directory, or a write failure (no partial file is left).
    """
    true, pred = _targets(y_true, y_pred, target_names)
    fmt = _FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise DataError(f"{path}: unsupported image type; use .png, .svg or .pdf")
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise GradfitError("plotting needs matplotlib: pip install 'gradfit[plot]'") from None

    k = true.shape[1]
    panels = 1 + k
    ncols = min(panels, 3)
    nrows = math.ceil(panels / ncols)
    figure = Figure(figsize=(4.6 * ncols, 4.0 * nrows), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(nrows, ncols, squeeze=False).ravel()
    _draw_loss(axes[0], [float(v) for v in loss_history])
    r2 = r2_score(torch.from_numpy(true), torch.from_numpy(pred)).tolist()
    for j in range(k):
        _draw_fit(axes[1 + j], true[:, j], pred[:, j], str(target_names[j]), r2[j])
    for ax in axes[panels:]:
        ax.set_visible(False)
    figure.suptitle(_literal(title), parse_math=False)

    def write(fh: IO[bytes]) -> None:
        figure.savefig(fh, format=fmt, dpi=110)

    atomic_write(path, write)


def _literal(text: str) -> str:
    """``text`` as matplotlib can draw it: a file name's bytes that are not UTF-8 (kept by
    Python as lone surrogates, which the font engine refuses) shown as ``\\xff`` escapes.
    (Dollar signs are kept literal by ``parse_math=False`` where the text is drawn.)"""
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that no file name's byte stands for
        raw = text.encode("utf-8", "backslashreplace")
    return raw.decode("utf-8", "backslashreplace")


def _targets(
    y_true: npt.ArrayLike, y_pred: npt.ArrayLike, target_names: Sequence[str]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    true = np.asarray(y_true, dtype=np.float64)
    pred = np.asarray(y_pred, dtype=np.float64)
    if true.ndim == 1:
        true, pred = true[:, None], pred.reshape(-1, 1) if pred.ndim == 1 else pred
    if true.shape != pred.shape or true.ndim != 2 or true.shape[0] == 0:
        raise ValidationError(
            f"y_true and y_pred must have the same shape (n, k) with n >= 1, got "
            f"{np.shape(y_true)} and {np.shape(y_pred)}"
        )
    if isinstance(target_names, str) or len(target_names) != true.shape[1]:
        raise ValidationError(
            f"target_names must name each of the {true.shape[1]} target(s), got {target_names!r}"
        )
    return true, pred


def _draw_loss(ax: Any, history: list[float]) -> None:
    ax.set_title("training loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    values = np.asarray(history, dtype=np.float64)
    epochs = np.arange(1, len(values) + 1)
    finite = np.isfinite(values)
    if not finite.any():
        ax.text(
            0.5,
            0.5,
            "no finite loss values"
            if len(values)
            else "no loss history\n(e.g. closed-form solver)",
            ha="center",
            va="center",
            transform=ax.transAxes,
            color="0.4",
        )
        ax.set_xticks([])
        ax.set_yticks([])
        return
    ax.plot(epochs[finite], values[finite], color="C0", linewidth=1.5)
    if (values[finite] > 0).all():
        ax.set_yscale("log")
    else:
        ax.set_ylabel("loss (linear scale: a loss is ≤ 0)")
    if len(values) == 1:
        ax.plot(epochs, values, "o", color="C0")
    ax.annotate(
        f"final {values[finite][-1]:.4g}",
        xy=(1.0, 1.0),
        xycoords="axes fraction",
        xytext=(-6, -6),
        textcoords="offset points",
        ha="right",
        va="top",
        fontsize=9,
        color="0.3",
    )
    ax.grid(True, which="major", alpha=0.3)


def _draw_fit(
    ax: Any,
    true: npt.NDArray[np.float64],
    pred: npt.NDArray[np.float64],
    name: str,
    r2: float,
) -> None:
    n = len(true)
    shown = np.arange(n)
    if n > _MAX_POINTS:  # a fixed random subset: the plot is the same each run
        shown = np.sort(np.random.default_rng(0).choice(n, _MAX_POINTS, replace=False))
    alpha = 0.8 if len(shown) <= 200 else max(0.1, 0.8 * math.sqrt(200 / len(shown)))
    ax.scatter(
        true[shown],
        pred[shown],
        s=28 if n <= 200 else 5,
        alpha=alpha,
        color="C1",
        edgecolors="none",
        rasterized=len(shown) > 1000,
    )
    low = float(min(true.min(), pred.min()))
    high = float(max(true.max(), pred.max()))
    pad = 0.05 * (high - low) if high > low else max(1.0, abs(high)) * 0.05
    line = [low - pad, high + pad]
    ax.plot(line, line, color="0.3", linewidth=1, linestyle="--", label="y = x")
    ax.set_xlim(line)
    ax.set_ylim(line)
    ax.set_aspect("equal", adjustable="box")
    name = _literal(name)  # a column or file name is drawn as written, never as mathtext
    ax.set_title(f"{name}: R² = {r2:.4f}", parse_math=False)
    ax.set_xlabel(f"actual {name}", parse_math=False)
    ax.set_ylabel(f"predicted {name}", parse_math=False)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize=9, frameon=False)
    if n > _MAX_POINTS:
        ax.text(
            0.98,
            0.02,
            f"{_MAX_POINTS:,} of {n:,} points",
            transform=ax.transAxes,
            ha="right",
            va="bottom",
            fontsize=8,
            color="0.4",
        )


def plot_cv(
    path: str | Path,
    alphas: Sequence[npt.ArrayLike],
    mean: Sequence[npt.ArrayLike],
    se: Sequence[npt.ArrayLike],
    alpha_min: Sequence[float],
    alpha_1se: Sequence[float],
    target_names: Sequence[str],
    title: str = "gradfit cross-validation",
) -> Any:
    """Draw each target's cross-validation curve, as R's ``plot(cv.glmnet)``: the mean CV
    error (points) with one standard error above and below (error bars) against log(alpha),
    the alphas of both rules (``"min"``, ``"1se"``) marked by dashed vertical lines; written
    atomically.

    ``alphas``, ``mean``, ``se``: per target, the (A,) alphas of its path (at its chosen l1
    ratio) and the mean CV error and standard error at each; ``alpha_min``, ``alpha_1se``: per
    target. An alpha of 0 has no logarithm and is left out of the drawing. Returns the
    matplotlib Figure drawn.
    """
    k = len(target_names)
    if not (len(alphas) == len(mean) == len(se) == len(alpha_min) == len(alpha_1se) == k):
        raise ValidationError("plot_cv needs the path and the choices of every target")
    fmt = _FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise DataError(f"{path}: unsupported image type; use .png, .svg or .pdf")
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise GradfitError("plotting needs matplotlib: pip install 'gradfit[plot]'") from None
    ncols = min(k, 3)
    nrows = math.ceil(k / ncols)
    figure = Figure(figsize=(4.8 * ncols, 4.0 * nrows), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(nrows, ncols, squeeze=False).ravel()
    for t in range(k):
        ax = axes[t]
        a = np.asarray(alphas[t], dtype=np.float64)
        m = np.asarray(mean[t], dtype=np.float64)
        s = np.asarray(se[t], dtype=np.float64)
        keep = a > 0
        x = np.log(a[keep])
        ax.errorbar(
            x, m[keep], yerr=s[keep], fmt="o", color="tab:red", ecolor="0.6", ms=3, capsize=2
        )
        for value, style, label in (
            (alpha_min[t], "--", "min"),
            (alpha_1se[t], ":", "1se"),
        ):
            if value > 0:
                ax.axvline(
                    math.log(value), color="0.2", linestyle=style, label=f"{label}: {value:.3g}"
                )
        ax.set_xlabel("log(alpha)")
        ax.set_ylabel("mean squared error (CV)")
        ax.set_title(_literal(str(target_names[t])), parse_math=False)
        ax.legend(loc="best", fontsize="small")
    for ax in axes[k:]:
        ax.set_visible(False)
    figure.suptitle(_literal(title), parse_math=False)

    def write(fh: IO[bytes]) -> None:
        figure.savefig(fh, format=fmt, dpi=110)

    atomic_write(path, write)
    return figure
