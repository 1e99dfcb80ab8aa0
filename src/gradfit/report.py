"""Plots of a training run: the loss curve and, per target, predicted against actual values.

matplotlib is optional (``pip install 'gradfit[plot]'``) and imported only when a plot is drawn.
Figures are built with :class:`matplotlib.figure.Figure` and the Agg canvas directly, so no global
pyplot state or backend setting is touched.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import IO, Any

import numpy as np
import numpy.typing as npt
import torch

from gradfit.atomic import atomic_write
from gradfit.errors import DataError, GradfitError, ValidationError
from gradfit.metrics import r2_score

__all__ = [
    "PlotPoints",
    "diagnostic_figure",
    "lowess",
    "plot_cv",
    "plot_diagnostics",
    "plot_training",
]

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
    fmt = _image_format(path)
    k = true.shape[1]
    panels = 1 + k
    ncols = min(panels, 3)
    nrows = math.ceil(panels / ncols)
    figure = _figure((4.6 * ncols, 4.0 * nrows))
    axes = figure.subplots(nrows, ncols, squeeze=False).ravel()
    _draw_loss(axes[0], [float(v) for v in loss_history])
    r2 = r2_score(torch.from_numpy(true), torch.from_numpy(pred)).tolist()
    for j in range(k):
        _draw_fit(axes[1 + j], true[:, j], pred[:, j], str(target_names[j]), r2[j])
    for ax in axes[panels:]:
        ax.set_visible(False)
    figure.suptitle(_literal(title), parse_math=False)
    _save(figure, path, fmt, dpi=110)


def _image_format(path: str | Path) -> str:
    """The matplotlib format of ``path``'s suffix (.png, .svg, .pdf), else a DataError."""
    fmt = _FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise DataError(f"{path}: unsupported image type; use .png, .svg or .pdf")
    return fmt


def _figure(figsize: tuple[float, float]) -> Any:
    """A new matplotlib Figure (constrained layout, the Agg canvas: no display needed);
    matplotlib, an optional extra, is imported here, else a GradfitError saying how."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise GradfitError("plotting needs matplotlib: pip install 'gradfit[plot]'") from None
    figure = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Any, path: str | Path, fmt: str, dpi: int) -> None:
    """``figure`` written to ``path`` atomically (whole, or not at all)."""

    def write(fh: IO[bytes]) -> None:
        figure.savefig(fh, format=fmt, dpi=dpi)

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


# ----------------------------------------------------------------------------- diagnostics

DIAGNOSTIC_TITLES = ("Residuals vs Fitted", "Normal Q-Q", "Scale-Location", "Residuals vs Leverage")
_COOK_LEVELS = (0.5, 1.0)
_SMOOTHER = "lowess (f = 2/3, 3 robustness iterations, evaluated on 100 points)"


@dataclass
class PlotPoints:
    """The rows drawn in the diagnostic plots (:func:`gradfit.diagnostics.diagnose` gathers
    them): ``row`` (m,) their data rows (counted from 1), ``label`` (m,) their labels (None:
    the row numbers), ``sampled`` (m,) whether a row is of the uniform sample (the others are
    drawn for being beyond Cook's distance 0.5), ``hat`` (m,) and per target (m, k)
    ``fitted``, ``residual``, ``rstandard``, ``cooks_distance``; ``n_rows``: the rows of the
    source; ``sample_rows``: the sample's size; ``p``: the fit's coefficients (the Cook's
    distance contours are ``rstandard = ±sqrt(c p (1 - h) / h)``)."""

    row: npt.NDArray[np.int64]
    label: npt.NDArray[Any] | None
    sampled: npt.NDArray[np.bool_]
    hat: npt.NDArray[np.float64]
    fitted: npt.NDArray[np.float64]
    residual: npt.NDArray[np.float64]
    rstandard: npt.NDArray[np.float64]
    cooks_distance: npt.NDArray[np.float64]
    n_rows: int
    sample_rows: int
    p: int
    target_names: tuple[str, ...]

    @property
    def complete(self) -> bool:
        """Every row of the source is drawn."""
        return int(self.sampled.sum()) == self.n_rows


def lowess(
    x: npt.ArrayLike, y: npt.ArrayLike, f: float = 2 / 3, iterations: int = 3, points: int = 100
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Cleveland's robust locally weighted line (R's ``lowess``: span ``f``, tricube weights
    over the ``ceil(f n)`` nearest x, ``iterations`` robustness steps with bisquare weights
    of the residuals over 6 median |residual|), evaluated at ``points`` x values evenly
    spread over the range (R skips and interpolates too, by its ``delta``), the residuals of
    the robustness steps from the curve interpolated between them. Returns (x, curve)."""
    xs = np.asarray(x, dtype=np.float64)
    ys = np.asarray(y, dtype=np.float64)
    keep = np.isfinite(xs) & np.isfinite(ys)
    xs, ys = xs[keep], ys[keep]
    n = xs.shape[0]
    if n < 2 or float(xs.min()) == float(xs.max()):
        return np.empty(0), np.empty(0)
    grid = np.linspace(float(xs.min()), float(xs.max()), points)
    q = min(n, max(2, math.ceil(f * n)))
    robust = np.ones(n)
    curve = np.empty(points)
    for step in range(iterations + 1):
        for i, x0 in enumerate(grid):
            distance = np.abs(xs - x0)
            h = float(np.partition(distance, q - 1)[q - 1])
            h = h if h > 0 else float(distance.max()) or 1.0
            u = np.clip(distance / (h * 1.0000001), 0.0, 1.0)
            w = (1 - u**3) ** 3 * robust
            total = float(w.sum())
            if total <= 0:
                curve[i] = np.nan
                continue
            mx, my = float(w @ xs) / total, float(w @ ys) / total
            sxx = float(w @ (xs - mx) ** 2)
            slope = float(w @ ((xs - mx) * (ys - my))) / sxx if sxx > 0 else 0.0
            curve[i] = my + slope * (x0 - mx)
        if step == iterations:
            break
        residual = ys - np.interp(xs, grid, curve)
        scale = 6.0 * float(np.median(np.abs(residual)))
        if scale == 0:
            break
        robust = np.clip(1 - (residual / scale) ** 2, 0.0, None) ** 2
    return grid, curve


def _normal_quantiles(n: int) -> npt.NDArray[np.float64]:
    """R's ``qnorm(ppoints(n))``."""
    a = 3 / 8 if n <= 10 else 1 / 2
    probabilities = (np.arange(1, n + 1) - a) / (n + 1 - 2 * a)
    normal = NormalDist()
    return np.array([normal.inv_cdf(float(p)) for p in probabilities])


def diagnostic_figure(points: PlotPoints, title: str = "gradfit diagnose") -> Any:
    """The matplotlib Figure of R's ``plot(lm)`` (``which = c(1, 2, 3, 5)``) per target: four
    axes, titled as R 4.2 titles them (:data:`DIAGNOSTIC_TITLES`; with several targets the
    target's name first, ``mpg: Residuals vs Fitted``), the three most extreme rows labelled
    (largest |residual| in panels 1 and 3, |standardized residual| in the Q-Q panel, Cook's
    distance in the last) by their row numbers or labels, and a caption saying which rows are
    drawn and which smoother (:func:`lowess`). Raises GradfitError without matplotlib."""
    k = len(points.target_names)
    figure = _figure((9.0, 7.6 * k))
    axes = figure.subplots(2 * k, 2, squeeze=False)
    names = (
        np.array([_literal(str(v)) for v in points.label], dtype=object)
        if points.label is not None
        else points.row.astype(str).astype(object)
    )
    for j, target in enumerate(points.target_names):
        prefix = "" if k == 1 else f"{_literal(target)}: "
        panels = axes[2 * j : 2 * j + 2].ravel()
        _diagnostic_panels(panels, points, j, names, prefix)
    figure.suptitle(_literal(title), parse_math=False)
    figure.supxlabel(_literal(_caption(points)), fontsize=8, color="0.3", parse_math=False)
    return figure


def _caption(points: PlotPoints) -> str:
    n = points.n_rows
    if points.complete:
        drawn = f"all {n:,} rows drawn"
    else:
        sampled = int(points.sampled.sum())
        beyond = int((~points.sampled).sum())
        drawn = (
            f"{n:,} rows, measures exact; drawn: a uniform random sample of {sampled:,} rows "
            f"(seeded) and the {beyond:,} other rows beyond Cook's distance 0.5"
        )
    return f"{drawn}; smoother: {_SMOOTHER}"


def _diagnostic_panels(
    panels: Any, points: PlotPoints, j: int, names: npt.NDArray[Any], prefix: str
) -> None:
    fitted, residual = points.fitted[:, j], points.residual[:, j]
    rstandard, cooks, hat = points.rstandard[:, j], points.cooks_distance[:, j], points.hat
    m = fitted.shape[0]
    size = 14 if m <= 500 else 4
    style: dict[str, Any] = {
        "s": size,
        "facecolors": "none" if m <= 500 else "0.2",
        "edgecolors": "0.2",
        "rasterized": m > 1000,
        "linewidths": 0.7,
    }

    def label(
        ax: Any,
        x: npt.NDArray[Any],
        y: npt.NDArray[Any],
        by: npt.NDArray[Any],
        called: npt.NDArray[Any] = names,
    ) -> None:
        score = np.where(np.isfinite(by), by, -np.inf)
        for i in np.argsort(-score, kind="stable")[: min(3, x.shape[0])]:
            if np.isfinite(x[i]) and np.isfinite(y[i]):
                ax.annotate(
                    called[i], (x[i], y[i]), xytext=(4, 2), textcoords="offset points",
                    fontsize=7, parse_math=False,
                )  # fmt: skip

    def smooth(ax: Any, x: npt.NDArray[Any], y: npt.NDArray[Any]) -> None:
        gx, gy = lowess(x, y)
        if gx.size:
            ax.plot(gx, gy, color="red", linewidth=1)

    titles = [f"{prefix}{t}" for t in DIAGNOSTIC_TITLES]
    ax = panels[0]
    ax.scatter(fitted, residual, **style)
    ax.axhline(0.0, color="0.5", linestyle=":", linewidth=1)
    smooth(ax, fitted, residual)
    label(ax, fitted, residual, np.abs(residual))
    ax.set(title=titles[0], xlabel="Fitted values", ylabel="Residuals")

    ax = panels[1]
    drawn = np.flatnonzero(points.sampled & np.isfinite(rstandard))
    order = drawn[np.argsort(rstandard[drawn], kind="stable")]
    theory = _normal_quantiles(order.size)
    ax.scatter(theory, rstandard[order], **style)
    if order.size >= 2:
        q1, q3 = np.quantile(rstandard[order], [0.25, 0.75])
        t1, t3 = NormalDist().inv_cdf(0.25), NormalDist().inv_cdf(0.75)
        slope = (q3 - q1) / (t3 - t1)
        ends = np.array([theory[0], theory[-1]])
        ax.plot(ends, q1 + slope * (ends - t1), color="0.5", linestyle=":", linewidth=1)
    label(ax, theory, rstandard[order], np.abs(rstandard[order]), names[order])
    ax.set(title=titles[1], xlabel="Theoretical Quantiles", ylabel="Standardized residuals")

    ax = panels[2]
    root = np.sqrt(np.abs(rstandard))
    ax.scatter(fitted, root, **style)
    smooth(ax, fitted, root)
    label(ax, fitted, root, np.abs(residual))
    ax.set(title=titles[2], xlabel="Fitted values", ylabel="√|Standardized residuals|")

    ax = panels[3]
    ax.scatter(hat, rstandard, **style)
    ax.axhline(0.0, color="0.5", linestyle=":", linewidth=1)
    ax.axvline(0.0, color="0.5", linestyle=":", linewidth=1)
    smooth(ax, hat, rstandard)
    finite = hat[np.isfinite(hat)]
    top = float(finite.max()) if finite.size else 1.0
    # The contours end at a leverage of 0.99 at most, as R's plot.lm labels them: beyond 1
    # they do not exist (the square root of a negative number, and a RuntimeWarning printed).
    h = np.linspace(top / 200, min(top * 1.05, 0.99), 200)
    low, high = ax.get_ylim()
    for level in _COOK_LEVELS:
        bound = np.sqrt(level * points.p * (1 - h) / h)
        for sign in (1, -1):
            ax.plot(h, sign * bound, color="red", linestyle="--", linewidth=0.8)
            ax.annotate(
                f"{level:g}", (h[-1], sign * bound[-1]), fontsize=7, color="red",
                xytext=(2, 0), textcoords="offset points",
            )  # fmt: skip
    ax.set_ylim(low, high)
    label(ax, hat, rstandard, cooks)
    ax.set(title=titles[3], xlabel="Leverage", ylabel="Standardized residuals")
    ax.text(
        0.02, 0.02, "Cook's distance (- -)", transform=ax.transAxes, fontsize=7, color="red"
    )  # fmt: skip


def plot_diagnostics(path: str | Path, points: PlotPoints, title: str = "gradfit diagnose") -> None:
    """:func:`diagnostic_figure` written to ``path`` (``.png``, ``.svg`` or ``.pdf``; its
    directory must exist), atomically."""
    fmt = _image_format(path)
    figure = diagnostic_figure(points, title)
    _save(figure, path, fmt, dpi=80)


# ----------------------------------------------------------------------------- cross-validation


def plot_cv(
    path: str | Path,
    alphas: Sequence[npt.ArrayLike],
    mean: Sequence[npt.ArrayLike],
    se: Sequence[npt.ArrayLike],
    alpha_min: Sequence[float],
    alpha_1se: Sequence[float],
    target_names: Sequence[str],
    title: str = "gradfit cross-validation",
    paths: Sequence[tuple[npt.ArrayLike, npt.ArrayLike]] | None = None,
    feature_names: Sequence[str] = (),
) -> Any:
    """Draw each target's cross-validation curve, as R's ``plot(cv.glmnet)``: the mean CV
    error (points) with one standard error above and below (error bars) against log(alpha),
    the alphas of both rules (``"min"``, ``"1se"``) marked by dashed vertical lines; written
    atomically.

    ``alphas``, ``mean``, ``se``: per target, the (A,) alphas of its path (at its chosen l1
    ratio) and the mean CV error and standard error at each; ``alpha_min``, ``alpha_1se``: per
    target. An alpha of 0 has no logarithm and is left out of the drawing. ``paths``: per
    target, (alphas (A,), coefficients (d, A)) on all rows at its chosen l1 ratio, drawn below
    its CV curve as :func:`plot_path` draws them, both choices marked (``feature_names``: the d
    features). Returns the matplotlib Figure drawn.
    """
    k = len(target_names)
    if not (len(alphas) == len(mean) == len(se) == len(alpha_min) == len(alpha_1se) == k):
        raise ValidationError("plot_cv needs the path and the choices of every target")
    if paths is not None and len(paths) != k:
        raise ValidationError("plot_cv needs the coefficient paths of every target")
    fmt = _image_format(path)
    ncols = min(k, 3)
    nrows = math.ceil(k / ncols)
    rows = nrows if paths is None else 2 * nrows  # a path panel below each CV curve
    figure = _figure((4.8 * ncols, 4.0 * rows))
    grid = figure.subplots(rows, ncols, squeeze=False)
    curve_rows = grid if paths is None else grid[0::2]
    axes = curve_rows.ravel()
    if paths is not None:
        path_axes = grid[1::2].ravel()
        for t in range(k):
            marks = (("min", float(alpha_min[t])), ("1se", float(alpha_1se[t])))
            _draw_path(path_axes[t], paths[t][0], paths[t][1], feature_names, marks)
            path_axes[t].set_title(_literal(f"{target_names[t]}: coefficients"), parse_math=False)
        for ax in path_axes[k:]:
            ax.set_visible(False)
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
    _save(figure, path, fmt, dpi=110)
    return figure


def plot_path(
    path: str | Path,
    alphas: Sequence[npt.ArrayLike],
    coefs: Sequence[npt.ArrayLike],
    feature_names: Sequence[str],
    target_names: Sequence[str],
    marks: Sequence[Sequence[tuple[str, float]]] | None = None,
    title: str = "gradfit coefficient paths",
) -> Any:
    """Draw each target's coefficient paths, as R's ``plot(glmnet, xvar = "lambda")``: every
    coefficient against log(alpha) (one line per feature, the legend naming them when there
    are at most 12), the number of non-zero coefficients on the top axis, and ``marks`` (per
    target, (label, alpha) pairs: the alphas chosen by cross-validation) as dashed vertical
    lines; written atomically.

    ``alphas``: per target, its (A,) alphas; ``coefs``: per target, (d, A) coefficients at
    them. An alpha of 0 has no logarithm and is left out of the drawing. Returns the
    matplotlib Figure drawn."""
    k = len(target_names)
    if not (len(alphas) == len(coefs) == k) or (marks is not None and len(marks) != k):
        raise ValidationError("plot_path needs the alphas and coefficients of every target")
    fmt = _image_format(path)
    ncols = min(k, 3)
    nrows = math.ceil(k / ncols)
    figure = _figure((4.8 * ncols, 4.2 * nrows))
    axes = figure.subplots(nrows, ncols, squeeze=False).ravel()
    for t in range(k):
        _draw_path(axes[t], alphas[t], coefs[t], feature_names, () if marks is None else marks[t])
        axes[t].set_title(_literal(str(target_names[t])), parse_math=False)
    for ax in axes[k:]:
        ax.set_visible(False)
    figure.suptitle(_literal(title), parse_math=False)
    _save(figure, path, fmt, dpi=110)
    return figure


def _draw_path(
    ax: Any,
    alphas: npt.ArrayLike,
    coefs: npt.ArrayLike,
    feature_names: Sequence[str],
    marks: Sequence[tuple[str, float]],
) -> None:
    """One target's coefficient paths on ``ax`` (see :func:`plot_path`)."""
    a = np.asarray(alphas, dtype=np.float64)
    c = np.asarray(coefs, dtype=np.float64).reshape(len(feature_names), a.shape[0])
    keep = a > 0
    x = np.log(a[keep])
    for j, name in enumerate(feature_names):
        ax.plot(x, c[j, keep], lw=1.2, label=_literal(str(name)))
    ax.axhline(0.0, color="0.6", lw=0.6)
    for label, value in marks:
        if value > 0:
            ax.axvline(
                math.log(value), color="0.2", linestyle="--" if label == "min" else ":",
                lw=1.0, label=f"{label}: {value:.3g}",
            )  # fmt: skip
    ax.set_xlabel("log(alpha)")
    ax.set_ylabel("coefficient")
    d = len(feature_names)
    if d <= 12 or marks:
        handles, labels = ax.get_legend_handles_labels()
        if d > 12:  # only the marks
            handles, labels = handles[d:], labels[d:]
        ax.legend(handles, labels, loc="best", fontsize="x-small")
    if x.size:
        # glmnet's top axis: the number of non-zero coefficients at a few alphas
        top = ax.twiny()
        top.set_xlim(ax.get_xlim())
        where = np.unique(np.linspace(0, x.size - 1, min(6, x.size)).round().astype(int))
        nonzero = np.count_nonzero(c[:, keep] != 0, axis=0)
        top.set_xticks(x[where], [str(int(v)) for v in nonzero[where]])
        top.set_xlabel("non-zero coefficients")
