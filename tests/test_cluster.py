"""Clustered standard errors (cov_type="cluster", CR1) against R's sandwich::vcovCL(type =
"HC1"), its default (Stata's and statsmodels' correction G/(G-1) (n-1)/(n-p)), with and
without weights and an intercept; per-group score sums merged over batches as the whole; the
streamed route (ols_from_stats with ClusterScores) as the in-memory one; refusals.

References: R 4 with sandwich 3, 17 significant digits:

    library(sandwich); m <- read.csv("tests/data/r/mtcars.csv")
    f <- lm(mpg ~ wt + hp, m)                          # and weights = cyl
    V <- vcovCL(f, cluster = ~cyl, type = "HC1"); se <- sqrt(diag(V))
    2 * pt(-abs(coef(f) / se), df.residual(f))         # lmtest::coeftest(f, vcov = V)

Tolerance 1e-8 relative (p-values 1e-6): a sandwich of a QR factor's inverse and per-group
sums, good to about 1e-13 in both.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from gradfit.errors import ValidationError
from gradfit.inference import ClusterScores, ols, ols_from_stats
from gradfit.solvers.stats import SufficientStats

R_DATA = Path(__file__).parent / "data" / "r"
RTOL, PTOL = 1e-8, 1e-6

# vcovCL(lm(mpg ~ wt + hp, m), cluster = ~cyl, type = "HC1"): (Intercept), wt, hp
R_COV = {
    "none": [
        [9.3711255901113386, -1.9643410582885814, -0.012673819554665823],
        [-1.9643410582885839, 0.48983326246825265, 0.0017660719688383812],
        [-0.012673819554665856, 0.0017660719688383994, 2.7298776072834016e-05],
    ],
    "cyl": [
        [13.431645781657531, -2.5509851997829487, -0.018776129270500094],
        [-2.5509851997829491, 0.53365297171439252, 0.0029454641722216281],
        [-0.018776129270500101, 0.0029454641722216355, 3.4080646325001886e-05],
    ],
}
R_SE = {
    "none": [3.0612294246121667, 0.69988089162960621, 0.00522482306617497],
    "cyl": [3.6649209789103954, 0.73051555200036122, 0.0058378631642923839],
}
R_P = {  # 2 * pt(-abs(coef(f) / se), df.residual(f))
    "none": [6.5515708514113852e-13, 5.6522872559509792e-06, 1.2751718818395336e-06],
    "cyl": [1.0292838205909832e-10, 3.0514902584890725e-05, 1.5573218206799927e-05],
}


@pytest.fixture(scope="module")
def mtcars() -> dict[str, np.ndarray]:
    with (R_DATA / "mtcars.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {key: np.array([float(row[key]) for row in rows]) for key in rows[0] if key != "model"}


def _ours_r_order(fit_cov: torch.Tensor) -> np.ndarray:
    """gradfit's (features, intercept) covariance in R's order (intercept, features)."""
    order = [2, 0, 1]
    return fit_cov[0].numpy()[np.ix_(order, order)]


@pytest.mark.parametrize("weighting", ["none", "cyl"])
def test_clustered_errors_as_sandwich_vcovcl(mtcars: dict[str, np.ndarray], weighting: str) -> None:
    X = np.column_stack([mtcars["wt"], mtcars["hp"]])
    w = mtcars["cyl"] if weighting == "cyl" else None
    fit = ols(X, mtcars["mpg"], weights=w, cov_type="cluster", groups=mtcars["cyl"].astype(int))
    assert fit.cov_type == "cluster" and fit.n_groups == 3
    np.testing.assert_allclose(_ours_r_order(fit.covariance), R_COV[weighting], rtol=RTOL)
    se = [float(fit.bias_se[0]), *fit.weight_se[0].tolist()]
    np.testing.assert_allclose(se, R_SE[weighting], rtol=RTOL)
    # t tests on the model's residual degrees of freedom (n - p = 29), as lmtest::coeftest
    p = [float(fit.bias_p[0]), *fit.weight_p[0].tolist()]
    np.testing.assert_allclose(p, R_P[weighting], rtol=PTOL)
    assert "clustered by group (CR1, 3 groups)" in fit.summary()
    assert fit.as_dict()["n_groups"] == 3
    # confidence intervals of the response use the clustered covariance too
    assert fit.predictor.cov_type == "cluster"


def test_other_clusterings_and_no_intercept_as_r(mtcars: dict[str, np.ndarray]) -> None:
    X = np.column_stack([mtcars["wt"], mtcars["hp"]])
    y = mtcars["mpg"]
    # sqrt(diag(vcovCL(lm(mpg ~ 0 + wt + hp, m), cluster = ~cyl, type = "HC1")))
    origin = ols(X, y, fit_intercept=False, cov_type="cluster", groups=mtcars["cyl"])
    np.testing.assert_allclose(
        origin.weight_se[0].numpy(), [3.4274605115050574, 0.039776101471104601], rtol=RTOL
    )
    # ... lm(mpg ~ wt + hp, m), cluster = ~gear and cluster = m$carb (labels as text here)
    for labels, reference in (
        (mtcars["gear"], [2.8046331506560342, 0.82188281603483837, 0.0069947031664134409]),
        (
            np.array([f"carb {v:g}" for v in mtcars["carb"]], dtype=object),
            [2.4137610570285029, 0.83190618649765746, 0.0065066501844128254],
        ),
    ):
        fit = ols(X, y, cov_type="cluster", groups=labels)
        se = [float(fit.bias_se[0]), *fit.weight_se[0].tolist()]
        np.testing.assert_allclose(se, reference, rtol=RTOL)


@pytest.mark.parametrize("weighted", [False, True])
def test_sums_merged_over_batches_equal_the_whole(
    mtcars: dict[str, np.ndarray], weighted: bool
) -> None:
    X = np.column_stack([mtcars["wt"], mtcars["hp"], mtcars["qsec"]])
    Y = np.column_stack([mtcars["mpg"], mtcars["disp"]])
    w = mtcars["cyl"] if weighted else None
    groups = mtcars["carb"]
    fit = ols(X, Y, weights=w)
    shift = X.mean(axis=0)
    whole = ClusterScores(fit.weight, fit.bias, shift=shift)
    whole.update(X, Y, groups, weights=w)
    parts = []
    for a, b in ((0, 7), (7, 8), (8, 25), (25, 32)):  # batches, as a stream or ranks see them
        part = ClusterScores(fit.weight, fit.bias, shift=shift)
        part.update(X[a:b], Y[a:b], groups[a:b], weights=None if w is None else w[a:b])
        parts.append(part)
    merged = parts[0]
    for part in parts[1:]:
        merged = merged.merge(part)
    assert merged.rows == whole.rows == 32
    assert sorted(merged.labels) == sorted(whole.labels) == [1.0, 2.0, 3.0, 4.0, 6.0, 8.0]
    order = [merged.labels.index(v) for v in whole.labels]
    scale = np.abs(whole.sums).max(axis=0)  # per target and column
    np.testing.assert_allclose(merged.sums[order] / scale, whole.sums / scale, rtol=0, atol=1e-12)
    # and, through the statistics (a streamed fit's route), the in-memory clustered covariance
    stats = SufficientStats.compute(
        torch.from_numpy(X), torch.from_numpy(Y), weights=None if w is None else torch.from_numpy(w)
    )
    streamed = ols_from_stats(stats, fit.weight, fit.bias, cov_type="cluster", clusters=merged)
    memory = ols(X, Y, weights=w, cov_type="cluster", groups=groups)
    assert streamed.n_groups == memory.n_groups == 6
    np.testing.assert_allclose(
        streamed.covariance.numpy(), memory.covariance.numpy(), rtol=1e-9, atol=0
    )


def test_zero_weight_rows_and_their_groups_do_not_count(mtcars: dict[str, np.ndarray]) -> None:
    X = np.column_stack([mtcars["wt"], mtcars["hp"]])
    y = mtcars["mpg"]
    w = np.ones(32)
    groups = mtcars["carb"].copy()
    groups[[0, 5]] = 99.0  # a group of rows of weight 0 only
    w[[0, 5]] = 0.0
    fit = ols(X, y, weights=w, cov_type="cluster", groups=groups)
    keep = w > 0
    alone = ols(X[keep], y[keep], cov_type="cluster", groups=groups[keep])
    assert fit.n_groups == alone.n_groups == 6
    np.testing.assert_allclose(fit.covariance.numpy(), alone.covariance.numpy(), rtol=1e-10)


def test_cluster_refusals(mtcars: dict[str, np.ndarray]) -> None:
    X = np.column_stack([mtcars["wt"], mtcars["hp"]])
    y = mtcars["mpg"]
    with pytest.raises(ValidationError, match="needs groups="):
        ols(X, y, cov_type="cluster")
    with pytest.raises(ValidationError, match="groups= goes with cov_type='cluster'"):
        ols(X, y, cov_type="HC1", groups=mtcars["cyl"])
    with pytest.raises(ValidationError, match="one label per row"):
        ols(X, y, cov_type="cluster", groups=mtcars["cyl"][:10])
    with pytest.raises(ValidationError, match="at least 2 groups"):
        ols(X, y, cov_type="cluster", groups=np.zeros(32))
    labels = mtcars["cyl"].copy()
    labels[4] = np.nan
    with pytest.raises(ValidationError, match="row 4: missing group label"):
        ols(X, y, cov_type="cluster", groups=labels)
    fit = ols(X, y)
    bounded = ClusterScores(fit.weight, fit.bias, max_groups=5)
    with pytest.raises(ValidationError, match="more than 5 groups for clustered standard errors"):
        bounded.update(X, y, mtcars["carb"])  # 6 groups
    stats = SufficientStats.compute(torch.from_numpy(X), torch.from_numpy(y[:, None]))
    with pytest.raises(ValidationError, match="needs clusters="):
        ols_from_stats(stats, fit.weight, fit.bias, cov_type="cluster")
    half = ClusterScores(fit.weight, fit.bias)
    half.update(X[:16], y[:16], mtcars["cyl"][:16])
    with pytest.raises(ValidationError, match="hold 16 row"):
        ols_from_stats(stats, fit.weight, fit.bias, cov_type="cluster", clusters=half)
    other = ClusterScores(fit.weight * 2, fit.bias)
    with pytest.raises(ValidationError, match="same fit"):
        half.merge(other)


def test_a_formula_fit_clusters_by_a_column_of_its_data() -> None:
    # a <- read.csv("tests/data/r/airquality.csv"); f <- lm(Ozone ~ Wind + Temp, a)  # na.omit
    # sqrt(diag(vcovCL(f, cluster = ~Month, type = "HC1")))
    data = pd.read_csv(R_DATA / "airquality.csv")
    fit = ols(
        "Ozone ~ Wind + Temp",
        data=data,
        missing="drop",
        cov_type="cluster",
        groups=data["Month"].to_numpy(),  # a label per data row: those of the rows kept
    )
    assert fit.n == 116 and fit.n_groups == 5
    se = [float(fit.bias_se[0]), *fit.weight_se[0].tolist()]
    np.testing.assert_allclose(
        se, [21.748420720815368, 1.1655089641058443, 0.23298451124730221], rtol=RTOL
    )
