"""The public surface: `__all__` is exact, importing gradfit stays light, and the tensor
form of ``gradfit.predict`` takes arrays too."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

import gradfit
from gradfit.model import LinearModel


def test_all_is_exact_and_importable() -> None:
    public = {name for name in dir(gradfit) if not name.startswith("_")}
    modules = {
        "atomic",
        "cli",
        "data",
        "datasets",
        "demo",
        "errors",
        "losses",
        "metrics",
        "model",
        "scaling",
        "solvers",
        "training",
        "tutorial",
        "validation",
        "persistence",
        "report",
        "estimator",
        "estimator_cv",
        "cv_fit",
        "path_fit",
        "fold_pass",
        "fitting",
        "sources",
        "column_choice",
        "fit_checks",
        "fit_report",
        "jobs",
        "prediction",
        "evaluation",
        "model_rows",
        "batch_sources",
        "file_kinds",
        "settings",
        "streaming",
        "stream_data",
        "stream_order",
        "stream_decision",
        "stream_design",
        "distributed",
        "checkpoint",
        "inference",
        "tensorfile",
        "model_file",
        "outputs",
        "design",
        "diagnostics",
        "observers",
        "storage",
        "stream_anova",
        "group_checks",
        "stream_clusters",
    }
    assert set(gradfit.__all__) - {"__version__"} == (public - modules) | {
        "GradientDescentRegressor"
    }
    for name in gradfit.__all__:
        assert getattr(gradfit, name) is not None


@pytest.mark.slow
def test_import_does_not_load_sklearn() -> None:
    code = "import sys, gradfit; print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_predict_of_arrays_as_of_tensors() -> None:
    """``gradfit.predict(X, weight, bias)`` and ``model.predict(X)`` with a NumPy array or list
    X: the tensor form's numbers (they failed with TypeErrors from the table form's and
    torch's internals); a DataFrame, whose columns might be in another order, is refused with
    a pointer to ``gradfit.predict(model, table)``."""
    weight = torch.tensor([[1.0, 2.0], [0.5, -1.0]], dtype=torch.float64)
    model = LinearModel(weight, torch.tensor([0.25, 1.0], dtype=torch.float64))
    X = np.array([[1.0, 3.0], [2.0, -1.0], [0.5, 0.5]])
    expected = gradfit.predict(torch.from_numpy(X), model.weight, model.bias)
    for given in (X, X.tolist()):
        torch.testing.assert_close(gradfit.predict(given, model.weight, model.bias), expected)
        torch.testing.assert_close(model.predict(given), expected)
    assert model.predict(X.astype(np.float32)).dtype == torch.float32
    pd = pytest.importorskip("pandas")
    with pytest.raises(gradfit.ValidationError, match=r"gradfit\.predict\(model, table\)"):
        model.predict(pd.DataFrame(X, columns=["a", "b"]))
