"""Choose the penalty by K-fold cross-validation over a data source: :func:`fit_cv`.

``gradfit.fit_cv(source, targets, ...)`` is :class:`~gradfit.GradientDescentRegressorCV` for
files: read whole, streamed in batches, or sharded over a group of processes (torchrun), with
the same folds and the same result on every road.

* **One pass** over the source builds every fold's
  :class:`~gradfit.solvers.stats.SufficientStats`
  (:func:`gradfit.solvers.path.fold_statistics_from_batches`): a row's fold is the seeded hash
  of its address (:func:`gradfit.solvers.rows.fold_ids` of the file's index in the source and
  the data row in that file, counted from 1; the rule of early stopping's hold-out), so a file
  read whole (file 0, rows 1..n), streamed in batches of any size or sharded over processes
  puts every row in the same fold. The seed is the fit's (``seed``), as
  ``GradientDescentRegressorCV(random_state=seed)``'s.
* Under torchrun each fold's statistics are merged across processes as the total is
  (:func:`gradfit.solvers.collective.merge_stats`, in rank order: the same bits everywhere).
* Then everything comes from the statistics (:func:`gradfit.solvers.path.cross_validate`, the
  estimator's own code): the path on each training fold (the other folds merged), each
  validation error as a quadratic form, the choice (``"min"`` or glmnet's ``"1se"``), and the
  refit at the chosen penalty on the statistics of all rows.

The result is an ordinary :class:`~gradfit.fit_report.FitReport` (built by
:func:`gradfit.fit_report.build_fit_report`) whose model is the refit, with the
cross-validation in ``report.cv`` (a :class:`CVRecord`) and recorded in the model file
(``hyperparameters["cv"]``, JSON: the alphas, l1 ratios, the mean CV error and its standard
error per alpha, and the choice).

Why a function of its own rather than an option of :func:`gradfit.fit`: a cross-validated fit
takes settings no solver has (the alphas, folds, the rule) and returns a record no other fit
has; its solver is fixed (the path solvers on the statistics: the minimiser of gd's objective
for each alpha), and ``fit``'s solver settings (step sizes, epochs, checkpoints) mean nothing
to it. ``gradfit fit --alpha cv`` is the command line's face of this function.

The pass over the source is :mod:`gradfit.fold_pass`'s, shared with :func:`fit_path` (``gradfit
path``: the path over all rows), which is :mod:`gradfit.path_fit`'s, imported here with
:class:`PathRecord`.
"""

from __future__ import annotations

import math
import numbers
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from gradfit.data.memory import TableInMemory
from gradfit.data.weights import refuse_all_zero
from gradfit.errors import ConvergenceWarning, DataError, ValidationError
from gradfit.fit_report import FitReport, build_fit_report
from gradfit.fold_pass import _fold_statistics, without_drop_offer
from gradfit.path_fit import PathRecord, fit_path
from gradfit.scaling import Standardizer
from gradfit.settings import (
    DEFAULT_BATCH_ROWS,
    DEFAULT_MEMORY_LIMIT,
    DEFAULT_SEED,
    CVSettings,
    ReadSettings,
    RunSettings,
)
from gradfit.solvers import path as paths
from gradfit.solvers import registry
from gradfit.solvers.collective import LOCAL
from gradfit.solvers.config import MAX_ALPHA, SolverConfig
from gradfit.solvers.result import FitResult
from gradfit.solvers.rows import holdout_seed, resolve_seed
from gradfit.solvers.stats import SufficientStats
from gradfit.sources import source_kind
from gradfit.streaming import Progress, use_streaming

if TYPE_CHECKING:
    from gradfit.solvers.collective import Communicator

__all__ = ["CVRecord", "PathRecord", "cv_coefficient_paths", "fit_cv", "fit_path"]


@dataclass(frozen=True)
class CVRecord:
    """What cross-validation found, per target where it differs.

    ``alphas`` (G, L, A): the alphas tried, decreasing, one grid per l1 ratio (G = 1) or per
    target and l1 ratio (G = k: ``alpha_per_target`` with generated grids); ``l1_ratios``
    (L,); ``mean`` and ``se`` (A, L, k): each target's mean CV error over the folds and its
    standard error; ``mse_path`` (K, A, L, k) each fold's; ``alpha`` and ``l1_ratio`` (k,) the
    chosen penalty of each target (by ``selection``); ``alpha_min`` and ``alpha_1se`` (k,)
    those of both rules (each at the l1 ratio of the minimum); ``cv_error`` and ``cv_se``
    (k,) each target's mean CV error and standard error at its chosen penalty."""

    alphas: np.ndarray
    l1_ratios: np.ndarray
    mean: np.ndarray
    se: np.ndarray
    mse_path: np.ndarray
    alpha: np.ndarray
    l1_ratio: np.ndarray
    alpha_min: np.ndarray
    alpha_1se: np.ndarray
    l1_index: np.ndarray
    cv_error: np.ndarray
    cv_se: np.ndarray
    folds: int  # asked
    folds_used: int  # with rows to train and validate on
    fold_rows: tuple[int, ...]  # rows in each fold
    selection: str
    alpha_per_target: bool
    seed: int

    def grid(self, target: int, ratio: int) -> np.ndarray:
        """The alphas (A,) of ``target`` at l1 ratio number ``ratio``."""
        g = target if self.alphas.shape[0] > 1 else 0
        out: np.ndarray = self.alphas[g, ratio]
        return out

    def as_dict(self, target_names: Sequence[str]) -> dict[str, Any]:
        """JSON-able: the settings, and per target the path at the chosen l1 ratio and every
        l1 ratio's (alphas, mean, se) and the choice."""
        targets: dict[str, Any] = {}
        for t, name in enumerate(target_names):
            int(self.l1_index[t])
            targets[name] = {
                "alpha": float(self.alpha[t]),
                "l1_ratio": float(self.l1_ratio[t]),
                "cv_error": float(self.cv_error[t]),
                "cv_se": float(self.cv_se[t]),
                "alpha_min": float(self.alpha_min[t]),
                "alpha_1se": float(self.alpha_1se[t]),
                "path": [
                    {
                        "l1_ratio": float(self.l1_ratios[q]),
                        "alphas": self.grid(t, q).tolist(),
                        "mean": self.mean[:, q, t].tolist(),
                        "se": self.se[:, q, t].tolist(),
                    }
                    for q in range(self.l1_ratios.shape[0])
                ],
            }
        return {
            "folds": self.folds,
            "folds_used": self.folds_used,
            "fold_rows": list(self.fold_rows),
            "selection": self.selection,
            "alpha_per_target": self.alpha_per_target,
            "seed": self.seed,
            "l1_ratios": self.l1_ratios.tolist(),
            "targets": targets,
        }


def fit_cv(
    source: str | Path | TableInMemory,
    targets: Sequence[str],
    features: Sequence[str] | None = None,
    config: SolverConfig | None = None,
    *,
    alphas: int | Sequence[float] = 100,
    l1_ratio: float | Sequence[float] | None = None,
    folds: int = 5,
    alpha_per_target: bool = False,
    selection: str = "min",
    weights: str | None = None,
    eps: float | None = None,
    tol: float = 1e-4,
    max_iter: int = 1000,
    seed: int | None = DEFAULT_SEED,
    stream: bool | None = None,
    memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    progress: Progress | None = None,
    comm: Communicator | None = None,
    notes: list[str] | None = None,
) -> FitReport:
    """Fit with the penalty chosen by K-fold cross-validation, from one pass over ``source``.

    Parameters
    ----------
    source, targets, features : as :func:`gradfit.fit` (a file, directory, glob, built-in data
        set or table in memory; column names)
    config : ``fit_intercept``, ``standardize`` (penalize the standardized coefficients, each
        training fold's own scales, as ``GradientDescentRegressorCV``) and the solver recorded
        (one of the solvers that honour a penalty: the tutorial loops are refused);
        ``config.l1_ratio`` is the l1 ratio when ``l1_ratio`` is None. Its ``alpha`` is not
        read: it is what is chosen.
    alphas : a count (the grid of ``alphas`` values from ``alpha_max`` down to ``eps *
        alpha_max``, per l1 ratio; with ``alpha_per_target``, per target) or the alphas
    l1_ratio : one l1 ratio or several to try (0 ridge, in closed form; 1 the lasso)
    folds : K >= 2; each row's fold from the seeded row hash (the same on every road)
    alpha_per_target, selection : one alpha for all targets or one each; "min" or "1se"
    weights : the column of row weights (``--weights``), or None: weighted statistics, as
        ``ElasticNetCV.fit(sample_weight=w)``: each training fold's objective is its weighted
        mean squared error (the weights rescaled to sum to its rows: the same minimiser), each
        validation error the fold's weighted mean squared error, the folds averaged with equal
        weight; rows of weight 0 count nowhere (nor in the folds' row counts)
    eps, tol, max_iter : the grid's depth (None: 1e-3 with an L1 part, scikit-learn's; 1e-4
        for ridge, glmnet's); coordinate descent's duality gap tolerance (times var(y)) and
        sweeps per alpha
    seed : the folds' seed (as ``GradientDescentRegressorCV(random_state=seed)``; None: fresh)
    stream, memory_limit, batch_rows, progress : read whole or streamed, as :func:`gradfit.fit`
    comm : a group of processes (torchrun): each reads its shard, the fold statistics are
        merged; every process returns the same report. A group always streams.
    notes : receives messages for the user (folds left out)

    Returns
    -------
    FitReport
        the refit at the chosen penalty (its model, metrics over all rows), with ``cv`` a
        :class:`CVRecord`; the model file records it in ``hyperparameters["cv"]``.
    """
    config = config if config is not None else SolverConfig()
    ratios = _ratios(config.l1_ratio if l1_ratio is None else l1_ratio)
    settings = CVSettings(
        alphas=int(alphas)
        if isinstance(alphas, numbers.Integral) and not isinstance(alphas, bool)
        else tuple(alphas),  # type: ignore[arg-type]
        folds=folds,
        alpha_per_target=alpha_per_target,
        selection=selection,
    )
    paths.check_path_settings(ratios[0], tol, max_iter)
    eps = paths.check_eps(eps)
    _check_solver(config, ratios)
    reading = ReadSettings(stream=stream, memory_limit=memory_limit, batch_rows=batch_rows)
    run = RunSettings(seed=seed, inference=None)
    group = comm if comm is not None else LOCAL
    fold_seed = resolve_seed(seed)
    if comm is not None and comm.world > 1 and seed is None:
        # Every process must draw the same folds: rank 0's fresh seed, to all.
        shared = torch.tensor([float(fold_seed % (1 << 52))], dtype=torch.float64)
        fold_seed = int(group.sum(shared if group.rank == 0 else shared * 0).item())
    hash_seed = holdout_seed(fold_seed)
    data = source if source_kind(source) == "memory" else str(source)
    streamed = use_streaming(data, config, reading, group=comm is not None)
    start = time.perf_counter()
    K = settings.folds
    job = {  # what every process of a group must agree on before the fold statistics
        **config.as_dict(),
        "alphas": settings.alphas,
        "l1_ratios": ratios,
        "folds": K,
        "selection": selection,
        "alpha_per_target": alpha_per_target,
        "seed": seed,
        "weights": weights,
        "targets": list(targets),
        "features": None if features is None else list(features),
        "eps": eps,
        "tol": tol,
        "max_iter": max_iter,
        "batch_rows": batch_rows,
    }
    with without_drop_offer():
        read = _fold_statistics(
            data, targets, features, weights, K, hash_seed, streamed, group, reading, progress, job
        )
    name, fold_stats, fnames, tnames, left_out, rows, row_weights = read
    pairs, total = paths.fold_pairs(fold_stats)
    n_rows = 0 if total is None else total.n
    if weights is not None and n_rows == 0:
        raise refuse_all_zero(name, weights)
    if total is None or n_rows < 2:
        raise DataError(f"{name}: {n_rows} row(s); at least 2 are needed to fit a model")
    if len(pairs) < 2:
        raise ValidationError(
            f"{name}: cross-validation needs at least 2 folds with rows to train and validate "
            f"on; the {n_rows} rows gave {len(pairs)} of --folds {K}: give more rows or fewer "
            "folds"
        )
    if len(pairs) < K and notes is not None:
        notes.append(f"{K - len(pairs)} of {K} folds had no rows and were left out")
    cv = paths.cross_validate(
        pairs,
        total,
        settings.alphas,
        ratios,
        per_target=settings.alpha_per_target,
        selection=settings.selection,
        eps=eps,
        tol=tol,
        max_iter=max_iter,
        fit_intercept=config.fit_intercept,
        standardize=config.standardize,
    )
    seconds = time.perf_counter() - start
    if cv.not_converged:
        warnings.warn(
            f"coordinate descent did not reach its duality gap tolerance (tol={tol}) within "
            f"max_iter={max_iter} sweeps for {cv.not_converged} of the path's solutions; "
            "increase max_iter or tol",
            ConvergenceWarning,
            stacklevel=2,
        )
    record = _record(cv, settings, fold_stats, fold_seed)
    chosen = replace(
        config,
        alpha=min(float(cv.alpha[0]), MAX_ALPHA),
        l1_ratio=float(cv.l1_ratio[0]),
        early_stopping=False,
    )
    ridge = bool(np.all(cv.l1_ratio == 0))
    d = len(fnames)
    result = FitResult(
        weight=torch.from_numpy(cv.coef.copy()),
        bias=torch.from_numpy(cv.intercept.copy()),
        loss_curve=(),
        n_iter=cv.n_iter,
        converged=cv.not_converged == 0,
        learning_rate=None,
        stable_lr=None,
        scaler=Standardizer(
            torch.zeros(d, dtype=torch.float64), torch.ones(d, dtype=torch.float64)
        ),
        stats=total,
        method="closed form (eigendecomposition)" if ridge else "coordinate descent",
    )
    report = build_fit_report(
        name,
        result,
        chosen,
        features=fnames,
        targets=tnames,
        run=run,
        device="cpu",
        seconds=seconds,
        left_out=left_out,
        stats=total,
        rows=rows,
        weights=row_weights,
        weights_column=weights,
    )
    cv_json = record.as_dict(tnames)
    # "alpha" stays a number (the first target's choice), as every penalized model's; the
    # choice of every target and the whole path are in "cv".
    hyper = {
        **report.model.hyperparameters,
        "alpha_selection": "cv",
        "alpha_chosen": record.alpha.tolist(),
        "l1_ratio_chosen": record.l1_ratio.tolist(),
        "cv": cv_json,
    }
    model = replace(report.model, hyperparameters=hyper)
    return replace(report, model=model, cv=record)


def cv_coefficient_paths(
    report: FitReport, *, tol: float = 1e-4, max_iter: int = 1000
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The coefficient paths on all rows behind a cross-validated fit (``report`` of
    :func:`fit_cv`): per target, (its alphas (A,), its coefficients (d, A)) at its chosen l1
    ratio, from the statistics of all rows (no pass over the data), for the path panels of
    ``--alpha cv --plot``."""
    record = report.cv
    stats = report.result.stats
    if record is None or stats is None:
        raise ValidationError("cv_coefficient_paths needs the report of a cross-validated fit")
    config = report.config
    problem = paths.Quadratic.from_stats(
        stats, fit_intercept=config.fit_intercept, standardize=config.standardize
    )
    out = []
    solved: dict[tuple[int, int], np.ndarray] = {}
    k = int(record.alpha.shape[0])
    for t in range(k):
        ratio = int(record.l1_index[t])
        grid = record.grid(t, ratio)
        g = t if record.alphas.shape[0] > 1 else 0
        if (g, ratio) not in solved:
            result = paths.problem_path(
                problem, grid, float(record.l1_ratios[ratio]), tol=tol, max_iter=max_iter
            )
            coef, _ = problem.original_units(result.coefs)  # (A, k, d)
            solved[(g, ratio)] = coef
        out.append((grid, solved[(g, ratio)][:, t, :].T.copy()))
    return out


def _ratios(value: float | Sequence[float]) -> list[float]:
    values = np.atleast_1d(np.asarray(value, dtype=np.float64))
    if values.ndim != 1 or values.size == 0:
        raise ValidationError(f"l1_ratio must be a number or a list, got {value!r}")
    for v in values:
        if not (math.isfinite(v) and 0 <= v <= 1):
            raise ValidationError(f"l1_ratio must be in [0, 1], got {float(v)!r}")
    return [float(v) for v in values]


def _check_solver(config: SolverConfig, ratios: Sequence[float]) -> None:
    """The solver recorded must honour the penalties tried (the tutorial loops, which honour
    none, are refused with the registry's message)."""
    spec = registry.get(config.solver)
    demands: dict[Any, str] = {"ridge": "alpha=cv"}
    if any(r > 0 for r in ratios):
        demands["l1"] = "alpha=cv with l1_ratio > 0"
    spec.check(demands)
    if config.early_stopping:
        raise ValidationError(
            "early stopping does not apply to --alpha cv (cross-validation holds out every "
            "fold in turn); leave out --early-stopping"
        )


def _record(
    cv: paths.CrossValidation, settings: CVSettings, folds: Sequence[SufficientStats], seed: int
) -> CVRecord:
    k = cv.alpha.shape[0]
    grids = cv.grids

    def at(choice: paths.CVChoice) -> np.ndarray:
        a = np.broadcast_to(choice.alpha_index, (k,))
        r = np.broadcast_to(choice.l1_index, (k,))
        g = np.arange(k) if grids.shape[0] > 1 else np.zeros(k, dtype=np.int64)
        out: np.ndarray = grids[g, r, a]
        return out

    a_idx = np.broadcast_to(cv.choice.alpha_index, (k,))
    r_idx = np.broadcast_to(cv.choice.l1_index, (k,)).astype(np.int64)
    t_idx = np.arange(k)
    return CVRecord(
        alphas=grids,
        l1_ratios=cv.l1_ratios,
        mean=cv.mean,
        se=cv.se,
        mse_path=cv.mse_path,
        alpha=cv.alpha,
        l1_ratio=cv.l1_ratio,
        alpha_min=at(cv.choice_min),
        alpha_1se=at(cv.choice_1se),
        l1_index=r_idx,
        cv_error=cv.mean[a_idx, r_idx, t_idx],
        cv_se=cv.se[a_idx, r_idx, t_idx],
        folds=settings.folds,
        folds_used=cv.n_folds,
        fold_rows=tuple(int(s.n) for s in folds),
        selection=cv.selection,
        alpha_per_target=cv.per_target,
        seed=seed,
    )
