"""The solver registry (gradfit.solvers.registry): every entry imports, the configuration's
capability checks are lookups in it, and a new solver plugs in at that one place (the
configuration, fit_linear, the estimator and the command line all follow).

Numbers: the "mean" solver's predictions are the target means computed by torch; NumPy sums in
a different order, so they agree to a few ulps (``rtol=1e-14``).
"""

from __future__ import annotations

import importlib
import inspect
import sys
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

import gradfit
from gradfit.cli import build_parser
from gradfit.data.stream import BatchStream
from gradfit.estimator import GradientDescentRegressor
from gradfit.scaling import Standardizer
from gradfit.solvers import registry, tsqr
from gradfit.solvers.config import SolverConfig
from gradfit.solvers.registry import CAPABILITIES, SolverSpec
from gradfit.solvers.result import FitResult
from gradfit.streaming import fit_stream
from gradfit.training import fit_linear

pytestmark = pytest.mark.usefixtures("one_thread")

# Settings that demand exactly one capability each (the rest, partial_fit, streaming and
# distributed, are not configuration settings).
DEMANDING: dict[str, dict[str, Any]] = {
    "ridge": {"alpha": 0.1},
    "l1": {"alpha": 0.1, "l1_ratio": 0.5},
    "learning_rate": {"learning_rate": 0.01},
    "momentum": {"momentum": 0.5},
    "schedule": {"schedule": "step"},
    "early_stopping": {"early_stopping": True},
    "no_intercept": {"fit_intercept": False},
}


def _data(seed: int = 0, n: int = 40, d: int = 3, k: int = 2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    return X, X @ rng.normal(size=(d, k)) + rng.normal(size=k) + 0.1 * rng.normal(size=(n, k))


# ----------------------------------------------------------------------------- the table


def test_every_registered_solver_has_an_importable_fit_function() -> None:
    assert registry.names() == tuple(registry.REGISTRY)
    assert {"gd", "sgd", "lstsq", "scratch", "builtin"} <= set(registry.names())
    for name in registry.names():
        spec = registry.get(name)
        assert spec.name == name
        assert set(spec.supports) <= set(CAPABILITIES)
        fit = spec.fit_function()
        assert callable(fit)
        params = inspect.signature(fit).parameters
        assert list(params)[:3] == ["X", "Y", "config"]
        for keyword in ("random_state", "start", "callback", "state"):
            assert params[keyword].kind is inspect.Parameter.KEYWORD_ONLY, (name, keyword)


def test_every_registered_solver_configures_and_fits() -> None:
    X, Y = (torch.from_numpy(a) for a in _data())
    for name in registry.names():
        config = SolverConfig(solver=name, max_epochs=3, tol=None)
        assert config.demands() == {}
        result = fit_linear(X, Y, config)
        assert isinstance(result, FitResult)
        assert result.weight.shape == (2, 3) and result.bias.shape == (2,)
        assert result.n_iter == (3 if registry.get(name).iterative else 1)


@pytest.mark.parametrize("capability", DEMANDING)
def test_each_setting_demands_its_capability(capability: str) -> None:
    demands = SolverConfig(solver="gd", **DEMANDING[capability]).demands()
    assert list(demands) == [capability]  # one capability, so a test below reads its setting


@pytest.mark.parametrize("capability", DEMANDING)
@pytest.mark.parametrize("name", registry.names())
def test_capability_checks_are_registry_lookups(name: str, capability: str) -> None:
    spec = registry.get(name)
    settings = DEMANDING[capability]
    if capability in spec.supports:
        SolverConfig(solver=name, **settings)  # accepted
        return
    with pytest.raises(gradfit.ValidationError) as info:
        SolverConfig(solver=name, **settings)
    message = str(info.value)
    (setting,) = SolverConfig(solver="gd", **settings).demands().values()
    assert setting in message  # e.g. "momentum=0.5"
    assert f"solver={name!r}" in message
    offered = message.split("needs solver=", 1)[1]
    able = [s.name for s in registry.REGISTRY.values() if capability in s.supports]
    assert able  # every demandable capability has a solver
    for other in registry.names():
        assert (repr(other) in offered) == (other in able), (other, offered)


def test_momentum_is_refused_by_lstsq_and_accepted_by_gd() -> None:
    with pytest.raises(gradfit.ValidationError, match=r"momentum=0\.5.*'gd' or 'sgd'"):
        SolverConfig(solver="lstsq", momentum=0.5)
    assert SolverConfig(solver="gd", momentum=0.5).momentum == 0.5


@pytest.mark.parametrize("bad", ["adam", "GD", "", 3, None])
def test_unknown_solver_names_are_refused_with_the_choices(bad: Any) -> None:
    for call in (lambda: registry.get(bad), lambda: SolverConfig(solver=bad)):
        with pytest.raises(gradfit.ValidationError) as info:
            call()
        for name in registry.names():
            assert name in str(info.value)


@pytest.mark.parametrize("name", registry.names())
def test_partial_fit_is_offered_exactly_where_the_spec_supports_it(name: str) -> None:
    est = GradientDescentRegressor(solver=name)
    assert hasattr(est, "partial_fit") == ("partial_fit" in registry.get(name).supports)


# ----------------------------------------------------------------------------- a new solver


def fit_mean(
    X: torch.Tensor,
    Y: torch.Tensor,
    config: SolverConfig,
    *,
    random_state: int | None = None,
    start: tuple[torch.Tensor, torch.Tensor] | None = None,
    callback: Any = None,
    state: Any = None,
) -> FitResult:
    """The best constant model: zero weights, the target means as bias."""
    del config, random_state, start, callback, state
    k, d = Y.shape[1], X.shape[1]
    bias = Y.double().mean(0)
    loss = float(((Y.double() - bias) ** 2).mean())
    weight = torch.zeros(k, d, dtype=torch.float64, device=X.device)
    scaler = Standardizer.identity(d, device=X.device)
    return FitResult(weight, bias, (loss,), 1, True, None, None, scaler)


@pytest.fixture
def mean_solver(monkeypatch: pytest.MonkeyPatch) -> SolverSpec:
    # The entry names this module by the name it was imported under; check that importing
    # that name gives this very module (the registry imports the entry on first use).
    assert importlib.import_module(__name__) is sys.modules[__name__]
    spec = SolverSpec(
        name="mean",
        entry=f"{__name__}:fit_mean",
        summary="the target means (a test solver)",
        supports=frozenset(),
        iterative=False,
    )
    monkeypatch.setitem(registry.REGISTRY, "mean", spec)
    return spec


def test_a_new_solver_plugs_in_at_one_place(mean_solver: SolverSpec) -> None:
    assert "mean" in registry.names()
    assert registry.get("mean") is mean_solver
    assert mean_solver.fit_function() is fit_mean

    X, Y = _data(1)
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    result = fit_linear(Xt, Yt, SolverConfig(solver="mean"))
    assert torch.equal(result.weight, torch.zeros(2, 3, dtype=torch.float64))
    assert torch.equal(result.bias, Yt.mean(0))

    # The configuration checks the new spec: it supports nothing beyond the defaults.
    with pytest.raises(gradfit.ValidationError, match="solver='mean' cannot honour"):
        SolverConfig(solver="mean", momentum=0.5)
    with pytest.raises(gradfit.ValidationError, match="no training state"):
        fit_linear(Xt, Yt, SolverConfig(solver="mean"), state=object())  # type: ignore[arg-type]

    # The estimator: predictions are the means (see module doc for rtol).
    est = GradientDescentRegressor(solver="mean").fit(X, Y)
    np.testing.assert_allclose(est.predict(X), np.broadcast_to(Y.mean(0), Y.shape), rtol=1e-14)
    np.testing.assert_array_equal(est.coef_, np.zeros((2, 3)))
    assert est.converged_ and est.n_iter_ == 1
    one = GradientDescentRegressor(solver="mean").fit(X, Y[:, 0])
    np.testing.assert_allclose(one.predict(X), np.full(len(X), Y[:, 0].mean()), rtol=1e-14)
    assert not hasattr(est, "partial_fit")  # the spec does not support it

    # The command line's --solver choices come from the registry when the parser is built.
    argv = ["fit", "crops", "--target", "apples", "--out", "m.safetensors", "--solver", "mean"]
    args = build_parser().parse_args(argv)
    assert args.config_solver == "mean"


def test_the_command_line_refuses_an_unregistered_solver(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["fit", "crops", "--target", "apples", "--out", "m.safetensors", "--solver", "mean"]
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(argv)
    assert info.value.code == 2
    assert "mean" in capsys.readouterr().err
    assert "mean" not in registry.names()  # the monkeypatch of the test before was undone


def test_an_exact_solver_reads_a_stream_once_by_its_spec(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new exact solver by QR plugs in at the registry: its spec's ``one_pass_r`` (not its
    name) makes the streamed fit accumulate the R factor in the statistics pass, so that it
    reads the file once, and gives lstsq's model; the same solver without the flag reads it
    twice (the R factor in a pass of its own) and gives the same model to rounding."""
    assert registry.get("lstsq").one_pass_r
    assert not any(registry.get(name).one_pass_r for name in ("gd", "sgd"))
    monkeypatch.setattr(tsqr, "_ALWAYS_REFINE", 0)  # well conditioned: no refinement pass
    monkeypatch.setattr(tsqr, "_ONE_PASS_ELEMENTS", 0)  # the one-pass R at this size
    rng = np.random.default_rng(11)
    X = rng.normal(size=(300, 3))
    y = X @ [1.0, -2.0, 0.5] + 3.0 + rng.normal(size=300)
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "y": y}), path)
    passes: list[int] = []
    original = BatchStream.batches

    def counted(self: BatchStream, *args: Any, **kwargs: Any) -> Any:
        passes.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(BatchStream, "batches", counted)
    lstsq = fit_stream(path, ["y"], config=SolverConfig(solver="lstsq"), batch_rows=64)
    models = {}
    for flag in (True, False):
        spec = SolverSpec(**{**vars(registry.get("lstsq")), "name": "qr", "one_pass_r": flag})
        monkeypatch.setitem(registry.REGISTRY, "qr", spec)
        passes.clear()
        models[flag] = fit_stream(path, ["y"], config=SolverConfig(solver="qr"), batch_rows=64)
        assert len(passes) == (1 if flag else 2), flag
    assert torch.equal(models[True].model.weight, lstsq.model.weight)
    for report in models.values():
        torch.testing.assert_close(report.model.weight, lstsq.model.weight, rtol=1e-12, atol=0)
        torch.testing.assert_close(report.model.bias, lstsq.model.bias, rtol=1e-12, atol=0)
