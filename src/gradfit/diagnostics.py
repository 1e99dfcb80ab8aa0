"""Per-row regression diagnostics of a saved model over a data source, in one pass:
:func:`diagnose`.

The model of an unpenalized least-squares fit keeps in its file what the influence measures
need (:meth:`gradfit.persistence.SavedModel.interval_predictor`): the coefficients, σ, the
residual degrees of freedom, the centre of the features and the covariance ``σ² (X̃ᵀX̃)⁻¹`` of
the slopes and of the mean response at the centre. Divided by σ² it is the unscaled
``(X̃ᵀX̃)⁻¹`` of the (centred, weighted) design, whose block of the slopes, factored
(Cholesky of its equilibrated form), stands for the fit's QR factor; its intercept entry is
``1 / n`` (or ``1 / Σ w``). With these, :func:`gradfit.inference.influence_batch` gives each
batch's fitted values, residuals, leverage, studentized residuals, Cook's distance, DFFITS,
COVRATIO, σ without the row and DFBETAS, as R's ``influence.measures`` — the same numbers as
:meth:`gradfit.inference.OLSResult.influence` in memory, to rounding, whether the source is
read whole or streamed (:func:`gradfit.jobs.predict_batches`' road: a file read whole is one
batch). The model's rows are read as predict and evaluate read them (a design encodes each
batch; a weighted fit's weight column, named in the model file, is read beside them).

Besides the columns of every row, a :class:`Diagnostics` keeps, for the report and the plots:
the ``top`` rows by Cook's distance per target, and the rows to draw — a uniform sample of
``sample_rows`` rows (the rows of the smallest seeded random keys, so the same rows whether the
source is read whole or in batches of any size) plus every row beyond Cook's distance 0.5 (at
most ``sample_rows`` of them, those of the largest distances: memory stays bounded).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import numpy.typing as npt
import torch

from gradfit.batch_sources import Source, _Batches, _check_features, _number_column, _open
from gradfit.data.weights import check_weight_values
from gradfit.errors import DataError, ValidationError
from gradfit.inference import OLSPredictor, influence_batch
from gradfit.inference.covariance import Factor
from gradfit.model_rows import ModelLike, _model, _Rows
from gradfit.persistence import SavedModel
from gradfit.report import PlotPoints
from gradfit.settings import (
    DEFAULT_BATCH_ROWS,
    DEFAULT_MEMORY_LIMIT,
    DEFAULT_SEED,
    ApplySettings,
)
from gradfit.streaming import Progress

if TYPE_CHECKING:
    from gradfit.inference import OLSResult

__all__ = ["DIAGNOSTIC_MEASURES", "Diagnostics", "PlotPoints", "TopRow", "diagnose"]

# The output's columns per target (dfbetas_<coefficient> after them), R's names in brackets:
# fitted, residuals (y - ŷ), hatvalues, rstandard, rstudent, cooks.distance, dffits, covratio,
# influence()$sigma (σ without the row).
DIAGNOSTIC_MEASURES = (
    "fitted",
    "residual",
    "hat",
    "rstandard",
    "rstudent",
    "cooks_distance",
    "dffits",
    "covratio",
    "sigma_i",
)
COOK_CONTOUR = 0.5  # rows beyond it are always drawn
DEFAULT_SAMPLE_ROWS = 20_000  # rows drawn in the plots of a larger source


class _Kept:
    """What :func:`gradfit.inference.influence_batch` reads of an OLS result, rebuilt from a
    model file (duck-typed: the routine reads these attributes only)."""

    def __init__(self, model: SavedModel, predictor: OLSPredictor, weighted: bool) -> None:
        summary = (model.inference or {}).get("summary") or {}
        d = len(model.feature_names)
        cov = predictor.covariance.numpy()  # (k, p, p), σ² (X̃ᵀX̃)⁻¹ in centred coordinates
        sigma = predictor.sigma.numpy()
        aliased = np.diagonal(cov[:, :d, :d], 0, 1, 2).max(axis=0) == 0
        try:  # the table's own flags, when the file has them
            first = next(iter(summary["targets"].values()))["coefficients"]
            aliased = np.array([bool(first[name]["aliased"]) for name in model.feature_names])
        except (KeyError, TypeError, StopIteration):
            pass
        j = int(np.argmax(sigma))
        if not sigma[j] > 0:
            raise ValidationError(
                "diagnose: the fit is exact (sigma 0 for every target): there are no residuals "
                "to study"
            )
        unscaled = cov[j] / (sigma[j] * sigma[j])
        kept = ~aliased
        G = unscaled[:d, :d][np.ix_(kept, kept)]  # (r, r) (X_cᵀX_c)⁻¹ of the kept columns
        root = np.sqrt(np.diagonal(G))
        if not bool(np.all(root > 0)):
            raise ValidationError("diagnose: the model's covariance is degenerate")
        # G = left leftᵀ with left = diag(root) chol(G / root rootᵀ): Factor.left = r_inv / scale
        chol = np.linalg.cholesky(G / np.outer(root, root))
        self.factor = Factor(r_inv=chol, scale=1.0 / root)
        self.sample_weights = weighted
        self.weight = predictor.weight.double()
        self.bias = predictor.bias.double()
        self.aliased = torch.from_numpy(aliased)
        self.predictor = predictor
        self.fit_intercept = predictor.fit_intercept
        n = summary.get("n")
        if predictor.fit_intercept and (weighted or not isinstance(n, int)):
            self.total = float(1.0 / unscaled[d, d])  # Σ w (the intercept's entry is 1 / Σ w)
        else:
            self.total = float(n) if isinstance(n, int) else 0.0
        self.sigma = predictor.sigma
        self.df_resid = predictor.df_resid
        self.feature_names = model.feature_names
        self.n = n if isinstance(n, int) else None


def _kept_of(model: SavedModel) -> _Kept:
    """The model's kept fit, or a ValidationError saying which models diagnose needs."""
    if model.inference is None:
        raise ValidationError(
            "diagnose needs the model of an unpenalized least-squares fit (fit --solver lstsq, "
            "alpha 0, with its coefficient table); " + model_problem(model)
        )
    predictor = model.interval_predictor()
    if predictor.cov_type != "nonrobust":
        raise ValidationError(
            f"diagnose needs the classical (nonrobust) covariance, and this model keeps the "
            f"{predictor.cov_type} one; refit it with --cov nonrobust (the default)"
        )
    return _Kept(model, predictor, model.hyperparameters.get("weights") is not None)


def model_problem(model: SavedModel) -> str:
    """Why a model without inference has none, in a few words."""
    alpha = model.hyperparameters.get("alpha")
    if isinstance(alpha, (int, float)) and alpha > 0:
        return f"this model is a penalized fit (alpha={alpha:g})"
    return f"this {model.solver or 'model'} fit holds no coefficient table"


@dataclass(frozen=True)
class TopRow:
    """One of the most influential rows of a target: its data row (counted from 1 over the
    source), its ``--label`` value (None without), its Cook's distance and its other
    measures (``values``: measure name to float)."""

    row: int
    label: str | None
    cooks_distance: float
    values: dict[str, float]


@dataclass
class _Pool:
    """Rows kept for the plots: those of the smallest random keys, and those beyond the
    contour; per row ``key`` (inf for a row beyond the contour only) and its values."""

    key: npt.NDArray[np.float64]
    columns: dict[str, npt.NDArray[Any]]


@dataclass
class Diagnostics:
    """The job of :func:`diagnose`: iterate once over it for each batch's columns (a dict of
    column name to (m,) array: the ``keep`` columns, ``row`` then the measures); afterwards
    :attr:`top`, :attr:`points` and :attr:`n_rows` describe the whole source.

    Columns: one target, ``fitted, residual, hat, rstandard, rstudent, cooks_distance, dffits,
    covratio, sigma_i`` and ``dfbetas_<coefficient>`` (``dfbetas_(Intercept)``,
    ``dfbetas_wt``...); several targets, each measure but ``hat`` prefixed by
    ``<target>_``."""

    model: SavedModel
    target_names: tuple[str, ...]
    coefficient_names: tuple[str, ...]
    columns: tuple[str, ...]
    n_rows: int = 0
    n_dropped: int = 0
    top: dict[str, list[TopRow]] = field(default_factory=dict)
    points: PlotPoints | None = None
    _batches: Iterator[dict[str, npt.NDArray[Any]]] | None = None

    def __iter__(self) -> Iterator[dict[str, npt.NDArray[Any]]]:
        if self._batches is None:
            raise ValidationError("a Diagnostics is iterated once")
        batches, self._batches = self._batches, None
        return batches

    def table(self) -> dict[str, npt.NDArray[Any]]:
        """Every batch's columns joined into one table (reads the whole source)."""
        parts = list(self)
        if not parts:
            return {name: np.empty(0) for name in self.columns}
        return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def _names(targets: Sequence[str], coefficients: Sequence[str]) -> list[tuple[str, int, str]]:
    """(column, target index, measure) of the output, ``hat`` once (target -1)."""
    measures = [*DIAGNOSTIC_MEASURES, *(f"dfbetas_{c}" for c in coefficients)]
    out: list[tuple[str, int, str]] = []
    for measure in measures:
        if measure == "hat":
            out.append(("hat", -1, "hat"))
            continue
        for j, target in enumerate(targets):
            name = measure if len(targets) == 1 else f"{target}_{measure}"
            out.append((name, j, measure))
    return out


def diagnose(
    model: ModelLike,
    source: Source,
    *,
    keep: Sequence[str] = (),
    label: str | None = None,
    top: int = 10,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    seed: int | None = DEFAULT_SEED,
    stream: bool | None = None,
    memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    progress: Progress | None = None,
    missing: str = "error",
    unknown_level: str = "error",
) -> Diagnostics:
    """The influence measures of every row of ``source`` under ``model`` (a model of an
    unpenalized least-squares fit with the classical covariance, or its file), as R's
    ``influence.measures``, in one pass: iterate over the returned :class:`Diagnostics` for
    its batches, then read its ``top`` rows and plot ``points`` (see the module's doc).

    ``keep``: columns copied through (as predict copies them); ``label``: a column naming the
    rows in the top list and the plots (default: the row numbers); ``top``: how many rows per
    target by Cook's distance; ``sample_rows`` and ``seed``: the uniform sample drawn in the
    plots; ``stream`` to ``unknown_level``: as in :func:`gradfit.jobs.predict_batches`
    (``missing``: "error" or "drop"; the rows of a dropped row keep their numbers).

    The measures assume the rows are those the model was fitted to (R's ``influence`` of the
    fit): another data set gives numbers, but not the fit's diagnostics.
    """
    if missing == "keep":
        raise ValidationError(
            "diagnose: missing must be 'error' or 'drop': a row without a residual has no "
            "diagnostics; use 'drop'"
        )
    if isinstance(top, bool) or not isinstance(top, int) or top < 0:
        raise ValidationError(f"top must be an integer >= 0, got {top!r}")
    if isinstance(sample_rows, bool) or not isinstance(sample_rows, int) or sample_rows < 1:
        raise ValidationError(f"sample_rows must be an integer >= 1, got {sample_rows!r}")
    loaded = _model(model)
    fit = _kept_of(loaded)
    rows = _Rows(loaded, ApplySettings(missing=missing, unknown_level=unknown_level), True)
    weights = loaded.hyperparameters.get("weights")
    weights = weights if isinstance(weights, str) else None
    given = [keep] if isinstance(keep, str) else list(keep)
    extra = [*given, *([label] if label is not None else []), *([weights] if weights else [])]
    data = _open(
        source,
        stream=stream,
        memory_limit=memory_limit,
        batch_rows=batch_rows,
        progress=progress,
        text=[*rows.text, *extra],
    )
    targets = list(rows.design.target_variables) if rows.design is not None else loaded.target_names
    absent = [name for name in targets if name not in data.columns]
    if absent:
        raise DataError(
            f"{data.name}: missing target column(s) {', '.join(map(repr, absent))} that the "
            f"residuals need; available columns: {', '.join(map(repr, data.columns))}"
        )
    _check_features(data, rows.features)
    for option, name in [*(("--keep", n) for n in given), ("--label", label)]:
        if name is not None and name not in data.columns:
            raise DataError(
                f"{data.name}: {option} column {name!r} not found; available: "
                f"{', '.join(data.columns)}"
            )
    if weights is not None and weights not in data.columns:
        raise DataError(
            f"{data.name}: the model was fitted with the weights of column {weights!r}, which "
            f"the data lack; available: {', '.join(data.columns)}"
        )
    kept = ~fit.aliased.numpy()
    estimable = [name for name, ok in zip(loaded.feature_names, kept, strict=True) if ok]
    coefficients = (*(["(Intercept)"] if fit.fit_intercept else []), *estimable)
    names = _names(loaded.target_names, coefficients)
    for name in given:
        if name == "row" or any(name == column for column, _, _ in names):
            raise DataError(
                f"--keep column {name!r} has the name of a diagnostics column; rename it or "
                "leave it out"
            )
    job = Diagnostics(
        model=loaded,
        target_names=loaded.target_names,
        coefficient_names=coefficients,
        columns=(*given, "row", *(column for column, _, _ in names)),
    )
    job._batches = _run(job, fit, data, rows, given, label, weights, names, top, sample_rows, seed)
    return job


def _run(
    job: Diagnostics,
    fit: _Kept,
    data: _Batches,
    rows: _Rows,
    keep: list[str],
    label: str | None,
    weights: str | None,
    names: list[tuple[str, int, str]],
    top: int,
    sample_rows: int,
    seed: int | None,
) -> Iterator[dict[str, npt.NDArray[Any]]]:
    rng = np.random.default_rng(seed)
    k = len(job.target_names)
    best: list[dict[str, npt.NDArray[Any]]] = [{} for _ in range(k)]
    pool: _Pool | None = None
    read = n = dropped = 0
    extra = [*keep, *([label] if label else []), *([weights] if weights else [])]
    for batch in data.read(rows.numeric, [*rows.text, *extra]):
        # The batch's rows: its kept columns' (a model of plain columns may keep none).
        m = batch.table.n_rows if batch.table.columns else batch.X.shape[0]
        encoded = rows.encode(batch)
        if encoded.Y is None:  # the targets were asked for: never
            raise RuntimeError("diagnose: a batch was encoded without its targets")
        where = np.arange(read + 1, read + m + 1, dtype=np.int64)
        w = None
        if weights is not None:
            w = check_weight_values(_number_column(batch, weights), data.name, weights, read + 1)
        if encoded.kept is not None:
            where = where[encoded.kept]
            w = None if w is None else w[encoded.kept]
            dropped += int(m - encoded.kept.sum())
        read += m
        if encoded.X.shape[0] == 0:  # every row of the batch dropped (--missing drop)
            continue
        measures = influence_batch(cast("OLSResult", fit), encoded.X, encoded.Y, w)
        values = {
            "fitted": measures.fitted.numpy(),
            "residual": measures.residuals.numpy(),
            "rstandard": measures.rstandard.numpy(),
            "rstudent": measures.rstudent.numpy(),
            "cooks_distance": measures.cooks_distance.numpy(),
            "dffits": measures.dffits.numpy(),
            "covratio": measures.covratio.numpy(),
            "sigma_i": measures.sigma.numpy(),
        }
        dfbetas = measures.dfbetas.numpy()
        for i, c in enumerate(job.coefficient_names):
            values[f"dfbetas_{c}"] = dfbetas[:, :, i]
        hat = measures.hat.numpy()
        columns: dict[str, npt.NDArray[Any]] = {}
        for name in keep:
            part = batch.table.columns[name]
            columns[name] = part if encoded.kept is None else part[encoded.kept]
        columns["row"] = where
        for column, j, measure in names:
            columns[column] = hat if j < 0 else np.ascontiguousarray(values[measure][:, j])
        labels = None
        if label is not None:
            labels = np.asarray(batch.table.columns[label], dtype=object)
            labels = labels if encoded.kept is None else labels[encoded.kept]
        cooks = values["cooks_distance"]
        for j in range(k):
            best[j] = _best(best[j], where, labels, hat, values, j, top)
        keys = rng.random(where.shape[0])
        pool = _merge(pool, keys, where, labels, hat, values, cooks, sample_rows)
        n += where.shape[0]
        yield columns
    job.n_rows, job.n_dropped = n, dropped
    job.top = {
        target: _top_rows(best[j], job.coefficient_names)
        for j, target in enumerate(job.target_names)
    }
    job.points = _points(pool, job, n, sample_rows, fit)


def _best(
    best: dict[str, npt.NDArray[Any]],
    where: npt.NDArray[np.int64],
    labels: npt.NDArray[Any] | None,
    hat: npt.NDArray[np.float64],
    values: dict[str, npt.NDArray[np.float64]],
    j: int,
    top: int,
) -> dict[str, npt.NDArray[Any]]:
    """The ``top`` rows by Cook's distance (NaN last) among ``best`` and a batch."""
    cooks = values["cooks_distance"][:, j]
    score = np.where(np.isnan(cooks), -np.inf, cooks)
    if score.shape[0] > top:  # the batch's candidates only: its top, ties included
        floor = np.partition(score, score.shape[0] - top)[score.shape[0] - top] if top else np.inf
        pick: npt.NDArray[np.intp] | slice = np.flatnonzero(score >= floor)
    else:
        pick = slice(None)
    batch: dict[str, npt.NDArray[Any]] = {"row": where[pick], "hat": hat[pick]}
    if labels is not None:
        batch["label"] = labels[pick]
    for measure, array in values.items():
        batch[measure] = array[pick, j]
    both = batch if not best else {key: np.concatenate([best[key], batch[key]]) for key in batch}
    key = np.where(np.isnan(both["cooks_distance"]), -np.inf, both["cooks_distance"])
    order = np.lexsort((both["row"], -key))[:top]  # largest first; ties by row
    return {name: array[order] for name, array in both.items()}


def _top_rows(best: dict[str, npt.NDArray[Any]], coefficients: Sequence[str]) -> list[TopRow]:
    if not best:
        return []
    measures = [*DIAGNOSTIC_MEASURES, *(f"dfbetas_{c}" for c in coefficients)]
    return [
        TopRow(
            row=int(best["row"][i]),
            label=None if "label" not in best else str(best["label"][i]),
            cooks_distance=float(best["cooks_distance"][i]),
            values={m: float(best[m][i]) for m in measures},
        )
        for i in range(best["row"].shape[0])
    ]


_DRAWN = ("fitted", "residual", "rstandard", "cooks_distance")


def _merge(
    pool: _Pool | None,
    keys: npt.NDArray[np.float64],
    where: npt.NDArray[np.int64],
    labels: npt.NDArray[Any] | None,
    hat: npt.NDArray[np.float64],
    values: dict[str, npt.NDArray[np.float64]],
    cooks: npt.NDArray[np.float64],
    size: int,
) -> _Pool:
    """The pool with a batch's rows: those of the ``size`` smallest keys over all rows so far
    (a uniform sample without replacement, whatever the batches), and every row beyond
    Cook's distance 0.5 for some target (key inf when it is not in the sample); of the latter
    at most ``size`` (those of the largest distance), so the pool stays within 2 ``size``
    rows (plus ties)."""
    cooks_max = np.nan_to_num(cooks, nan=0.0).max(axis=1)
    pick = cooks_max > COOK_CONTOUR
    sampled = np.isfinite(pool.key) if pool is not None else None
    if pool is not None and sampled is not None and int(sampled.sum()) >= size:
        pick |= keys < float(pool.key[sampled].max())  # only those can enter the sample
    else:
        pick[:] = True
    keys = keys[pick]
    columns: dict[str, npt.NDArray[Any]] = {"row": where[pick], "hat": hat[pick]}
    if labels is not None:
        columns["label"] = labels[pick]
    for name in _DRAWN:
        columns[name] = values[name][pick]
    if pool is not None:
        keys = np.concatenate([pool.key, keys])
        columns = {name: np.concatenate([pool.columns[name], a]) for name, a in columns.items()}
    cooks_max = np.nan_to_num(columns["cooks_distance"], nan=0.0).max(axis=1)
    beyond = cooks_max > COOK_CONTOUR
    finite = np.isfinite(keys)
    if int(finite.sum()) > size:
        cut = np.partition(keys[finite], size - 1)[size - 1]
        in_sample = finite & (keys <= cut)
    else:
        in_sample = finite
    keys = np.where(in_sample, keys, np.inf)
    only = beyond & ~in_sample
    if int(only.sum()) > size:  # memory stays bounded: the `size` largest of them
        cut = np.partition(cooks_max[only], -size)[-size]
        beyond &= in_sample | (cooks_max >= cut)
    stay = in_sample | beyond
    return _Pool(keys[stay], {name: a[stay] for name, a in columns.items()})


def _points(pool: _Pool | None, job: Diagnostics, n: int, size: int, fit: _Kept) -> PlotPoints:
    k = len(job.target_names)
    p = int((~fit.aliased.numpy()).sum()) + int(fit.fit_intercept)
    if pool is None:
        empty = np.empty((0, k))
        return PlotPoints(
            np.empty(0, np.int64), None, np.empty(0, bool), np.empty(0), empty, empty, empty,
            empty, n, size, p, job.target_names,
        )  # fmt: skip
    order = np.argsort(pool.columns["row"], kind="stable")
    c = {name: a[order] for name, a in pool.columns.items()}
    return PlotPoints(
        row=c["row"],
        label=c.get("label"),
        sampled=np.isfinite(pool.key[order]),
        hat=c["hat"],
        fitted=c["fitted"],
        residual=c["residual"],
        rstandard=c["rstandard"],
        cooks_distance=c["cooks_distance"],
        n_rows=n,
        sample_rows=size,
        p=p,
        target_names=job.target_names,
    )
