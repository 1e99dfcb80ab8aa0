"""The common design (an intercept, plain numeric columns and text categorical columns in
treatment coding, no interactions) is encoded with NumPy, not formulaic: the same matrices,
names, kept rows and counts, to the bit, as formulaic's own path (forced here by clearing
Design._direct), with missing cells dropped, unknown levels, booleans and pandas
Categoricals; other designs keep formulaic's path."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pandas as pd
import pytest

from gradfit.data import Table
from gradfit.design import Design
from gradfit.errors import DataError


def _data(n: int = 500, seed: int = 3) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    g = np.array(["b", "a", "c", "é", "B"], dtype=object)[rng.integers(0, 5, n)]
    g[rng.random(n) < 0.05] = None
    h = np.array(["x", "y"], dtype=object)[rng.integers(0, 2, n)]
    x = rng.normal(size=n)
    x[rng.random(n) < 0.05] = np.nan
    return {
        "x": x,
        "g": g,
        "k": rng.integers(-3, 4, n),
        "ok": rng.random(n) < 0.4,
        "h": h,
        "y": rng.normal(size=n),
        "y2": rng.normal(size=n),
    }


def _formulaic(design: Design) -> Design:
    slow = copy.copy(design)
    slow.__dict__["_direct"] = None
    return slow


def _same(design: Design, batch: Any, **options: Any) -> None:
    fast = design.matrices(batch, **options)
    slow = _formulaic(design).matrices(batch, **options)
    assert fast.X.dtype == slow.X.dtype == np.float64
    assert fast.X.shape == slow.X.shape
    assert fast.X.tobytes() == slow.X.tobytes()  # to the bit (-0.0 included)
    assert fast.Y is not None and slow.Y is not None
    assert fast.Y.tobytes() == slow.Y.tobytes()
    assert np.array_equal(fast.kept, slow.kept)
    assert (fast.n_dropped, fast.n_unknown) == (slow.n_dropped, slow.n_unknown)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_default_design_is_encoded_directly_as_formulaic_does(seed: int) -> None:
    data = _data(seed=seed)
    table = Table(data, source="t")
    design = Design.default(table, ["y", "y2"], ["x", "g", "k", "ok", "h"], missing="drop")
    assert design._direct is not None
    assert "gb" in design.columns and "okTRUE" in design.columns and "hy" in design.columns
    _same(design, table, missing="drop")
    _same(design, pd.DataFrame(data), missing="drop")
    # another batch: unknown levels, as the reference with unknown_level="zero"
    other = _data(n=300, seed=seed + 10)
    other["g"][:7] = "new"
    _same(design, Table(other, source="u"), missing="drop", unknown_level="zero")
    with pytest.raises(DataError, match="level 'new' was not seen in training"):
        design.matrices(Table(other, source="u"), missing="drop")
    # one level only in a batch, a batch of no kept rows
    one = {k: v[:40] for k, v in _data(n=40, seed=seed).items()}
    one["g"][:] = "c"
    _same(design, Table(one, source="v"), missing="drop")
    none = {k: v[:3] for k, v in _data(n=3).items()}
    none["x"][:] = np.nan
    _same(design, Table(none, source="w"), missing="drop")


def test_formula_of_plain_terms_and_categorical_order_are_direct() -> None:
    data = _data(seed=5)
    frame = pd.DataFrame(data).dropna()
    frame["g"] = pd.Categorical(frame["g"], categories=["é", "c", "b", "a", "B"])
    design = Design.from_formula("y ~ g + x + h", frame)
    assert design._direct is not None
    assert design.columns[:4] == ("gc", "gb", "ga", "gB")
    _same(design, frame)


@pytest.mark.parametrize(
    "formula",
    ["y ~ g * x", "y ~ 0 + g + x", "y ~ C(k) + x", "y ~ np.log(x ** 2) + g", "y ~ C(g, contr.sum)"],
)
def test_other_designs_keep_formulaic(formula: str) -> None:
    frame = pd.DataFrame(_data(seed=6)).dropna()
    design = Design.from_formula(formula, frame)
    assert design._direct is None
    design.matrices(frame)  # formulaic's path, unchanged


def test_targets_formulaic_computes_beside_a_direct_design() -> None:
    frame = pd.DataFrame(_data(seed=7)).dropna()
    frame["y"] = frame["y"].abs() + 1
    design = Design.from_formula("np.log(y) ~ g + x", frame)
    assert design._direct is not None and design.targets == ("np.log(y)",)
    _same(design, frame)
    fast = design.matrices(frame)
    assert fast.Y is not None
    np.testing.assert_array_equal(fast.Y[:, 0], np.log(frame["y"].to_numpy()))


def test_a_text_target_is_refused_on_the_direct_path() -> None:
    data = _data(seed=8)
    table = Table(data, source="t")
    design = Design.default(table, ["y"], ["x", "g"], missing="drop")
    assert design._direct is not None
    data["y"] = data["h"]
    for each in (design, _formulaic(design)):
        with pytest.raises(DataError, match="target column 'y' holds text"):
            each.matrices(Table(data, source="t"), missing="drop")
