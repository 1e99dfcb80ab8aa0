"""The public surface: `__all__` is exact, and importing gradfit stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest

import gradfit


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
