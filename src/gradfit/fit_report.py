"""The report of a fit, built once for every road: :func:`build_fit_report`.

A fit of a file read whole (:func:`gradfit.fitting.fit_data`) and a streamed fit
(:func:`gradfit.streaming.fit_stream`) each hand over what they computed: the
:class:`~gradfit.solvers.result.FitResult`, the training rows' sufficient statistics, the
training rows themselves when they are in memory, the names and settings. One function turns
that into the :class:`FitReport` and its :class:`~gradfit.persistence.SavedModel`: the summary
figures, the exact-fit rule, the settings the model file records and the classical inference
(:func:`attach_inference`).

**Every figure is over the training rows**: with early stopping the rows held out for
validation are left out of ``n_samples``, the metrics, the final loss, the optimum and the
inference, on both roads. The model was fitted to the training rows, so "final loss / optimum"
says how far the solver stopped from the least-squares optimum of the problem it solved, and the
standard errors describe that problem; the held-out rows are judged by the validation scores
(``result.validation_scores``), and ``gradfit evaluate`` scores any rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from gradfit.errors import ValidationError
from gradfit.inference import CLUSTER, ClusterScores, estimability, ols, ols_from_stats
from gradfit.losses import mse as mean_squared_error
from gradfit.metrics import RegressionMetrics, r2_from_errors, regression_metrics
from gradfit.model import predict
from gradfit.persistence import SavedModel
from gradfit.settings import DEFAULT_LEVEL, RunSettings
from gradfit.solvers import registry
from gradfit.solvers.config import SolverConfig
from gradfit.solvers.result import FitResult
from gradfit.solvers.stats import SufficientStats

__all__ = [
    "EXACT_FIT",
    "FitReport",
    "attach_inference",
    "build_fit_report",
    "model_file_settings",
    "recorded_scaling",
]

# Below this fraction of the targets' mean square, the optimum from the statistics is rounding
# noise (their accuracy is about eps times the condition number): the fit is called exact and
# no loss/optimum ratio is given.
EXACT_FIT = 1e-10

# An iterative fit reports the least-squares inference only when its coefficients are within
# this many standard errors of the optimum (in the Mahalanobis sense: sqrt(n (w - w*)ᵀ S
# (w - w*)) / σ, which is sqrt((mse / optimum - 1) · df_resid) for each target).
_INFERENCE_DISTANCE = 0.01


@dataclass(frozen=True)
class FitReport:
    """What a fit did (:func:`gradfit.fitting.fit_data`, :func:`gradfit.streaming.fit_stream`):
    the model to save and the figures to show, every figure over the training rows."""

    model: SavedModel  # weights in original units, names, scaling, settings, history, metrics
    result: FitResult
    config: SolverConfig
    n_samples: int  # the training rows (those held out for early stopping left out)
    final_loss: float  # MSE of the final model on the training rows
    optimal_loss: float  # the smallest MSE any linear model reaches on them
    loss_ratio: float | None  # final / optimal; None for an exact fit (optimum is noise)
    metrics: RegressionMetrics
    seconds: float  # training time
    left_out: dict[str, str]  # columns the default feature choice left out, and why
    targets: np.ndarray  # (n, k) float64, for plots
    predictions: np.ndarray  # (n, k) float64, for plots
    inference: Any = None  # gradfit.inference.OLSResult of an unpenalized least-squares fit
    inference_note: str | None = None  # why there is none, when it was asked for
    rows_dropped: int = 0  # rows left out for a missing value (missing="drop", R's na.omit)
    cv: Any = None  # gradfit.cv_fit.CVRecord of a fit whose alpha was cross-validated


def build_fit_report(
    source: str,
    result: FitResult,
    config: SolverConfig,
    *,
    features: Sequence[str],
    targets: Sequence[str],
    run: RunSettings,
    device: torch.device | str,
    seconds: float,
    left_out: dict[str, str],
    stats: SufficientStats | None = None,
    rows: tuple[torch.Tensor, torch.Tensor] | None = None,
    sample: tuple[np.ndarray, np.ndarray] | None = None,
    batches: Callable[[], Iterable[tuple[Any, ...]]] | None = None,
    collect: Callable[[Callable[[], np.ndarray]], np.ndarray] | None = None,
    weights: torch.Tensor | None = None,
    weights_column: str | None = None,
    design: dict[str, Any] | None = None,
    rows_dropped: int = 0,
    groups: np.ndarray | None = None,
    clusters: ClusterSource | None = None,
    max_groups: int | None = None,
    groups_column: str | None = None,
) -> FitReport:
    """The report of the fit ``result`` of ``config.solver`` to the training rows of
    ``source``, from what the road computed.

    Parameters
    ----------
    stats : the :class:`SufficientStats` of the training rows (any device), when computed;
        needed without ``rows``
    rows : the training rows ``(X (n, d), Y (n, k))`` float64 on the CPU, when in memory: the
        metrics (MAE included) come from them, and so do the plots' targets and predictions;
        without them the metrics (MSE, RMSE, R²) come from ``stats`` and MAE, which would need a
        pass over the rows, is NaN in the report and left out of the model file
    sample : ``(targets (m, k), predictions (m, k))`` float64 for the plots (default: every
        training row with ``rows``, none without)
    features, targets, seconds, left_out : recorded as given
    run : the run's settings: its seed and dtype are recorded, its ``inference`` and ``level``
        are those of the coefficient table (see :func:`attach_inference`)
    device : the device trained on, recorded
    batches, collect : the coefficient table's, see :func:`attach_inference`
    weights : the weights (n,) float64 of ``rows`` (positive), for a weighted fit in memory:
        the metrics and the coefficient table are weighted (scikit-learn's ``sample_weight``,
        R's ``lm(weights = w)``); a streamed weighted fit gives weighted ``stats`` instead
    weights_column : the column the weights came from, recorded in the model file
        (``hyperparameters["weights"]``)
    design, rows_dropped : the :meth:`gradfit.design.Design.to_dict` document of the model's
        columns (None: plain numeric columns) and the rows left out for a missing value, kept
        in the model file and the report (the degrees of freedom count the rows kept)
    groups, clusters, max_groups : clustered standard errors (``run.inference`` "cluster"),
        see :func:`attach_inference`
    groups_column : the column the groups came from (``--groups``), recorded in the model file
        with ``max_groups`` (``hyperparameters["groups"]``, ``["max_groups"]``)

    The optimum is the closed form's own loss (``lstsq`` without a penalty), else the least
    squares optimum of ``stats`` (computed from ``rows`` when not given). A fit whose optimum is
    below :data:`EXACT_FIT` times the targets' mean square is exact: no loss/optimum ratio.
    """
    weight, bias = result.weight.double().cpu(), result.bias.double().cpu()
    tnames = tuple(targets)
    cpu = None if stats is None else _on_cpu(stats)
    if rows is not None:
        X, Y = rows
        n = int(X.shape[0])
        pred = predict(X, weight, bias)
        final_loss = float(mean_squared_error(pred, Y))
        metrics = regression_metrics(Y, pred, sample_weight=weights)
        scale = float((Y * Y).mean())
        if weights is not None:  # the weighted mean square error and mean square
            final_loss = float(np.mean(metrics.mse))
            scale = float((weights @ (Y * Y)).sum() / (weights.sum() * Y.shape[1]))
        if sample is None:
            sample = (Y.numpy(), pred.numpy())
    elif cpu is not None:
        n = int(cpu.n)
        errors = cpu.per_target_mse(weight, bias)
        final_loss = float(errors.mean())
        metrics = RegressionMetrics(
            mse=tuple(errors.tolist()),
            rmse=tuple(errors.sqrt().tolist()),
            mae=tuple(math.nan for _ in tnames),
            r2=tuple(r2_from_errors(errors, cpu.syy).tolist()),
        )
        scale = float((cpu.syy + cpu.ybar**2).mean())
    else:
        raise ValidationError("build_fit_report needs the training rows or their statistics")
    if registry.get(config.solver).exact and config.alpha == 0:
        optimum = final_loss  # the closed form is the optimum
    else:
        if cpu is None and rows is not None:
            stats = cpu = SufficientStats.compute(*rows, weights=weights)
        optimum = float(_on_cpu(cpu).optimum(fit_intercept=config.fit_intercept).mean())
    exact_fit = optimum <= EXACT_FIT * max(scale, 1e-300)
    saved_metrics = {
        name: {key: value for key, value in row.items() if rows is not None or key != "mae"}
        for name, row in metrics.as_dict(tnames).items()
    }
    scaling = recorded_scaling(result, config)
    model = SavedModel(
        weight=weight,
        bias=bias,
        feature_names=tuple(features),
        target_names=tnames,
        scaling_mean=None if scaling is None else scaling[0],
        scaling_scale=None if scaling is None else scaling[1],
        solver=config.solver,
        hyperparameters={
            **model_file_settings(config, result, run.seed, run.torch_dtype, device, n, source),
            **({} if weights_column is None else {"weights": weights_column}),
            **(
                {} if groups_column is None else {"groups": groups_column, "max_groups": max_groups}
            ),
        },
        final_loss=final_loss,
        loss_history=[float(v) for v in result.loss_curve],
        metrics=saved_metrics,
        design=design,
        rows_dropped=int(rows_dropped),
    )
    empty = np.empty((0, len(tnames)))
    report = FitReport(
        model=model,
        result=result,
        config=config,
        n_samples=n,
        final_loss=final_loss,
        optimal_loss=optimum,
        loss_ratio=None if exact_fit else final_loss / optimum,
        metrics=metrics,
        seconds=seconds,
        left_out=left_out,
        targets=empty if sample is None else sample[0],
        predictions=empty if sample is None else sample[1],
        rows_dropped=int(rows_dropped),
    )
    return attach_inference(
        report,
        run.inference,
        rows=rows,
        stats=stats,
        batches=batches,
        collect=collect,
        level=run.level,
        weights=weights,
        rows_dropped=int(rows_dropped),
        groups=groups,
        clusters=clusters,
        max_groups=max_groups,
    )


def _on_cpu(stats: SufficientStats | None) -> SufficientStats:
    """``stats`` with every tensor on the CPU (the same object when they are there)."""
    if stats is None:
        raise ValidationError("build_fit_report needs the training rows or their statistics")
    if stats.zbar.device.type == "cpu":
        return stats
    return replace(
        stats,
        zbar=stats.zbar.cpu(),
        ybar=stats.ybar.cpu(),
        Szz=stats.Szz.cpu(),
        Szy=stats.Szy.cpu(),
        syy=stats.syy.cpu(),
    )


def attach_inference(
    report: FitReport,
    cov_type: str | None,
    *,
    rows: tuple[torch.Tensor, torch.Tensor] | None = None,
    stats: SufficientStats | None = None,
    batches: Callable[[], Iterable[tuple[Any, ...]]] | None = None,
    collect: Callable[[Callable[[], np.ndarray]], np.ndarray] | None = None,
    level: float = DEFAULT_LEVEL,
    weights: torch.Tensor | None = None,
    rows_dropped: int = 0,
    groups: np.ndarray | None = None,
    clusters: ClusterSource | None = None,
    max_groups: int | None = None,
) -> FitReport:
    """``report`` with the classical inference of its fit (:mod:`gradfit.inference`) in
    ``report.inference`` and in its model (what intervals need), where it applies:

    * ``cov_type`` None, or a penalized fit (alpha > 0): none, and no note;
    * the closed form (``lstsq``) with the rows ``(X, Y)`` (float64) in memory:
      :func:`gradfit.inference.ols` on them;
    * otherwise (a stream, or an iterative fit) from the sufficient statistics ``stats``
      (computed from ``rows`` when not given; :func:`gradfit.inference.ols_from_stats`) with
      the model's own coefficients, the HC types by one more pass over the rows (``rows``, or
      ``batches``: a callable returning a fresh iterable of ``(X, Y)`` blocks); an iterative
      fit only when its coefficients are within 1% of a standard error of the optimum for
      every target (``report.inference_note`` says how far they are otherwise). ``collect``:
      for rows spread over processes, see :func:`gradfit.inference.ols_from_stats`.

    ``level``: the coverage of the coefficients' intervals in the stored summary.
    ``weights``: the (positive) weights of ``rows``, for weighted least squares (R's
    ``lm(weights = w)``); weighted ``stats`` and ``(X, Y, w)`` blocks from ``batches`` give
    the same for rows not in memory.
    ``rows_dropped``: the rows left out for a missing value, in the table
    (:attr:`~gradfit.inference.OLSResult.n_dropped`: R's "(42 observations deleted due to
    missingness)").
    ``cov_type="cluster"`` (clustered standard errors, CR1): ``groups`` (n,), the group labels
    of ``rows`` in memory, or ``clusters``, a callable ``(weight (k, d), bias (k,), shift
    (d,))`` returning the :class:`~gradfit.inference.ClusterScores` of every training row at
    those coefficients (a pass over a stream, merged over the processes); ``max_groups``: more
    groups are refused (None: no bound).

    A rank-deficient design follows R's convention everywhere: the aliased coefficients (the
    later of collinear features) are 0 in the table, in its JSON and in the model's weights
    (replaced by the table's when they differ, e.g. a streamed or gradient-descent fit's: the
    same predictions on the training rows), and the model keeps what ``predict`` needs to
    warn about new rows off the training rows' span (:func:`gradfit.inference.estimability`,
    under ``inference["estimability"]``). The table's :class:`~gradfit.errors.RankDeficiencyWarning`
    names the aliased features.
    """
    config, model = report.config, report.model
    if cov_type is None or config.alpha > 0:
        return report
    exact = registry.get(config.solver).exact
    if exact and rows is not None:
        stats, n = None, int(rows[0].shape[0])
    else:
        stats = _stats_of(rows, stats, weights)
        n = int(stats.n_positive)
    p = len(model.feature_names) + int(config.fit_intercept)
    if n <= p:
        note = f"no standard errors: {n} rows for {p} coefficients leave no degrees of freedom"
        return replace(report, inference_note=note)
    if stats is not None and not exact:
        distance = _distance_from_optimum(stats, model, config.fit_intercept, n - p)
        if not distance <= _INFERENCE_DISTANCE:
            note = (
                f"no coefficient table: {config.solver} stopped {distance:.3g} standard errors "
                "from the least-squares optimum, and standard errors describe the optimum; "
                "fit with --solver lstsq, or raise --epochs / lower --tol"
            )
            return replace(report, inference_note=note)
    features, targets = model.feature_names, model.target_names
    if cov_type == CLUSTER and groups is None and clusters is None:
        raise ValidationError("cov_type='cluster' needs the rows' groups (--groups COLUMN)")
    if batches is None and rows is not None:
        batches = lambda: [rows if weights is None else (*rows, weights)]  # noqa: E731
    # Too many groups, a missing label: refused (not a note), before any other work.
    scores = None
    if cov_type == CLUSTER and stats is None and rows is not None:
        if groups is not None and max_groups is not None:
            _count_groups(groups, max_groups)
    elif cov_type == CLUSTER:
        scores = _cluster_scores(
            model, _stats_of(rows, stats, weights), rows, weights, groups, clusters, max_groups
        )
    try:
        if stats is None and rows is not None:  # the closed form in memory: QR of the rows
            fit = ols(
                *rows,
                fit_intercept=config.fit_intercept,
                cov_type=cov_type,
                feature_names=features,
                target_names=targets,
                weights=weights,
                groups=groups,
            )
        else:
            fit = ols_from_stats(
                _stats_of(rows, stats, weights),
                model.weight,
                model.bias,
                fit_intercept=config.fit_intercept,
                cov_type=cov_type,
                batches=batches,
                collect=collect,
                feature_names=features,
                target_names=targets,
                clusters=scores,
            )
    except ValidationError as exc:  # e.g. HC2/HC3 and a row of leverage 1: the fit stands
        return replace(report, inference_note=f"no coefficient table: {exc}")
    if rows_dropped:
        fit = replace(fit, n_dropped=int(rows_dropped))
    document: dict[str, Any] = {
        "predictor": fit.to_dict(),
        "summary": fit.as_dict(level),
        "text": fit.summary(),
    }
    if bool(fit.aliased.any()):
        # R's convention in the model file too (not the solver's minimum-norm weights).
        dtype = model.weight.dtype
        model = replace(model, weight=fit.weight.to(dtype), bias=fit.bias.to(dtype))
        document["estimability"] = estimability(fit)
    return replace(report, model=replace(model, inference=document), inference=fit)


# A streamed fit's cluster sums: (weight (k, d), bias (k,), shift (d,)) -> ClusterScores.
ClusterSource = Callable[[np.ndarray, np.ndarray, np.ndarray], ClusterScores]


def _count_groups(groups: np.ndarray, max_groups: int) -> None:
    """Refuses more than ``max_groups`` distinct labels in ``groups``, as
    :class:`~gradfit.inference.ClusterScores` does on the other roads."""
    probe = ClusterScores(np.zeros((1, 0)), np.zeros(1), max_groups=max_groups)
    probe.add(np.zeros((groups.shape[0], 0)), np.zeros((groups.shape[0], 1)), groups)


def _cluster_scores(
    model: SavedModel,
    stats: SufficientStats,
    rows: tuple[torch.Tensor, torch.Tensor] | None,
    weights: torch.Tensor | None,
    groups: np.ndarray | None,
    clusters: ClusterSource | None,
    max_groups: int | None,
) -> ClusterScores:
    """The per-group score sums of the training rows at the model's coefficients: from the
    rows in memory with their ``groups``, or from ``clusters`` (a pass over a stream)."""
    weight = model.weight.double().cpu().numpy()
    bias = model.bias.double().cpu().numpy()
    shift = stats.zbar.detach().cpu().double().numpy()
    if clusters is not None:
        return clusters(weight, bias, shift)
    if rows is None or groups is None:
        raise ValidationError("cov_type='cluster' needs the rows' groups (--groups COLUMN)")
    scores = ClusterScores(weight, bias, shift=shift, max_groups=max_groups)
    scores.update(rows[0], rows[1], groups, weights)
    return scores


def _stats_of(
    rows: tuple[torch.Tensor, torch.Tensor] | None,
    stats: SufficientStats | None,
    weights: torch.Tensor | None = None,
) -> SufficientStats:
    """``stats``, or those of ``rows`` (one pass, weighted by ``weights``) when there are
    none."""
    if stats is not None:
        return stats
    if rows is None:
        raise ValidationError("attach_inference needs the rows (X, Y) or their statistics")
    return SufficientStats.compute(*rows, weights=weights)


def _distance_from_optimum(
    stats: SufficientStats, model: SavedModel, fit_intercept: bool, df_resid: int
) -> float:
    """How many standard errors the model's coefficients are from the least-squares optimum,
    at worst over the targets: their Mahalanobis distance ``sqrt((mse / optimum - 1) ·
    df_resid)``. Where the optimum is 0 (an exact fit, e.g. a constant target): 0 when the
    model is exact too, else inf; a NaN loss is inf."""
    device = stats.zbar.device
    mse = stats.per_target_mse(model.weight.double().to(device), model.bias.double().to(device))
    optimum = stats.optimum(fit_intercept=fit_intercept)
    mse_np, optimum_np = mse.cpu().numpy(), optimum.cpu().numpy()
    positive = optimum_np > 0
    ratio = np.divide(mse_np, optimum_np, out=np.zeros_like(mse_np), where=positive)
    excess = np.where(positive, np.maximum(ratio - 1.0, 0.0), np.where(mse_np > 0, np.inf, 0.0))
    excess = np.where(np.isnan(mse_np), np.inf, excess)
    return float(np.max(np.sqrt(excess * df_resid))) if excess.size else 0.0


def model_file_settings(
    config: SolverConfig,
    result: FitResult,
    seed: int | None,
    dtype: torch.dtype,
    device: torch.device | str,
    n_samples: int,
    source: str,
) -> dict[str, Any]:
    """The settings a model file records: every solver setting, the step actually used, how
    training ended and on what."""
    settings = config.as_dict()
    return {
        "learning_rate": result.learning_rate,  # the step used ("auto" resolved)
        "stable_learning_rate": result.stable_lr,
        "learning_rate_setting": settings.pop("learning_rate"),
        **({"method": result.method} if result.method else {}),  # gd: "conjugate gradient"...
        "epochs": settings.pop("max_epochs"),
        **settings,
        "seed": seed,
        "dtype": str(dtype).removeprefix("torch."),
        "device": str(device),
        "n_iter": result.n_iter,
        "converged": result.converged,
        "n_samples": n_samples,
        "data": source,
    }


def recorded_scaling(
    result: FitResult, config: SolverConfig
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The (mean, scale) to record in the model file, or None when training used none (the
    scaler is the identity: lstsq without alpha, or standardize=False)."""
    mean, scale = result.scaler.mean.double().cpu(), result.scaler.scale.double().cpu()
    if not config.standardize or (bool((mean == 0).all()) and bool((scale == 1).all())):
        return None
    return mean, scale
