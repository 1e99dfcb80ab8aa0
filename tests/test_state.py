"""The training state dict (gradfit.solvers.state): a run interrupted, saved as NumPy arrays and
JSON, rebuilt and continued equals an uninterrupted run bit for bit on the CPU (same operations
on the same values in the same order: no tolerance); a foreign or damaged dict raises
ValidationError and nothing else; the estimator pickles without torch objects and continues
exactly.
"""

from __future__ import annotations

import copy
import json
import pickle
from typing import Any

import numpy as np
import pytest
import torch

import gradfit
from gradfit.estimator import GradientDescentRegressor
from gradfit.solvers.config import SolverConfig
from gradfit.solvers.engine import init_state, run_epochs
from gradfit.solvers.state import STATE_FORMAT, StateDict, TrainState

pytestmark = pytest.mark.usefixtures("one_thread")

CASES: dict[str, dict[str, Any]] = {
    "gd": {"solver": "gd"},
    "gd-momentum": {"solver": "gd", "momentum": 0.9},
    "sgd-nesterov": {"solver": "sgd", "momentum": 0.9, "nesterov": True, "batch_size": 7},
    "sgd-invscaling": {
        "solver": "sgd",
        "momentum": 0.9,
        "nesterov": True,
        "batch_size": 7,
        "schedule": "invscaling",
    },
    "sgd-elastic-net": {"solver": "sgd", "batch_size": 7, "alpha": 0.05, "l1_ratio": 0.5},
}


def _data(seed: int = 0, n: int = 120, d: int = 4, k: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 3.0, size=d) + rng.normal(size=d)
    W = rng.normal(size=(k, d))
    Y = X @ W.T + rng.normal(size=k) + 0.3 * rng.normal(size=(n, k))
    return torch.from_numpy(X), torch.from_numpy(Y)


def _through_numpy_and_json(sd: StateDict) -> StateDict:
    """What a file would hold: tensors as NumPy arrays, meta through JSON text."""
    tensors = {name: t.detach().cpu().numpy().copy() for name, t in sd["tensors"].items()}
    meta = json.loads(json.dumps(sd["meta"], allow_nan=False))  # strict JSON
    return {"tensors": tensors, "meta": meta}


def _same_optional(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return torch.equal(a, b)


def _assert_same_state(a: TrainState, b: TrainState) -> None:
    assert torch.equal(a.weight, b.weight)
    assert torch.equal(a.bias, b.bias)
    assert a.weight.dtype == b.weight.dtype and a.bias.dtype == b.bias.dtype
    assert _same_optional(a.velocity_w, b.velocity_w)
    assert _same_optional(a.velocity_b, b.velocity_b)
    assert a.loss_curve == b.loss_curve
    assert a.epoch == b.epoch
    assert torch.equal(a.generator.get_state(), b.generator.get_state())
    assert (a.divergence, a.plateau, a.early) == (b.divergence, b.plateau, b.early)


# ----------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("case", CASES)
def test_resumed_run_equals_the_uninterrupted_run_bitwise(case: str) -> None:
    X, Y = _data()
    config = SolverConfig(**CASES[case])
    whole = init_state(X, Y, config, random_state=3)
    run_epochs(whole, X, Y, 12, stop_early=False)

    first = init_state(X, Y, config, random_state=3)
    run_epochs(first, X, Y, 5, stop_early=False)
    sd = _through_numpy_and_json(first.state_dict())
    assert sd["meta"]["format"] == STATE_FORMAT
    resumed = TrainState.from_state_dict(sd)
    assert resumed.config == config
    run_epochs(resumed, X, Y, 7, stop_early=False)

    _assert_same_state(resumed, whole)
    assert len(whole.loss_curve) == 12
    if config.momentum:
        assert whole.velocity_w is not None  # the velocity did travel
    assert not torch.equal(resumed.weight, first.weight)  # and training did continue


@pytest.mark.parametrize("case", ["gd", "sgd-nesterov"])
def test_resumed_run_stops_at_the_same_epoch(case: str) -> None:
    # The stopping rule's counters travel too: interrupted two epochs before the uninterrupted
    # run stops (mid-plateau), the resumed run stops at the same epoch with the same weights.
    X, Y = _data(1)
    config = SolverConfig(**CASES[case], tol=1e-3)
    whole = init_state(X, Y, config, random_state=3)
    assert run_epochs(whole, X, Y, 500)
    stop = whole.epoch
    assert 2 < stop < 500

    first = init_state(X, Y, config, random_state=3)
    assert not run_epochs(first, X, Y, stop - 2)
    assert first.plateau.stalled > 0  # interrupted on the plateau
    resumed = TrainState.from_state_dict(_through_numpy_and_json(first.state_dict()))
    assert run_epochs(resumed, X, Y, 500 - (stop - 2))
    _assert_same_state(resumed, whole)


def test_state_dict_does_not_share_memory_with_the_state() -> None:
    X, Y = _data()
    state = init_state(X, Y, SolverConfig(**CASES["sgd-nesterov"]), random_state=3)
    run_epochs(state, X, Y, 2, stop_early=False)
    sd = state.state_dict()
    rebuilt = TrainState.from_state_dict(sd)
    weight = state.weight.clone()
    run_epochs(rebuilt, X, Y, 1, stop_early=False)
    assert torch.equal(state.weight, weight)  # training the copy leaves the original alone
    assert torch.equal(sd["tensors"]["weight"], weight)


# ----------------------------------------------------------------------------- damaged dicts


@pytest.fixture(scope="module")
def saved() -> StateDict:
    X, Y = _data()
    state = init_state(X, Y, SolverConfig(**CASES["sgd-nesterov"]), random_state=3)
    run_epochs(state, X, Y, 2, stop_early=False)
    return state.state_dict()


def _copy(sd: StateDict) -> dict[str, Any]:
    return {"tensors": dict(sd["tensors"]), "meta": copy.deepcopy(sd["meta"])}


@pytest.mark.parametrize("fmt", [STATE_FORMAT + 1, 0, "1", None])
def test_wrong_format_is_refused(saved: StateDict, fmt: Any) -> None:
    sd = _copy(saved)
    sd["meta"]["format"] = fmt
    with pytest.raises(gradfit.ValidationError, match="format"):
        TrainState.from_state_dict(sd)


REQUIRED_TENSORS = ("weight", "bias", "scaler_mean", "scaler_scale", "generator")
REQUIRED_META = (
    "format",
    "config",
    "learning_rate",
    "stable_lr",
    "lipschitz",
    "epoch",
    "loss_curve",
    "validation_scores",
    "divergence",
    "plateau",
    "early",
)


@pytest.mark.parametrize(
    ("part", "key"),
    [("top", "tensors"), ("top", "meta")]
    + [("tensors", k) for k in REQUIRED_TENSORS]
    + [("meta", k) for k in REQUIRED_META],
)
def test_missing_keys_are_refused(saved: StateDict, part: str, key: str) -> None:
    sd = _copy(saved)
    assert set(REQUIRED_META) == set(sd["meta"])  # every meta key is required
    del (sd if part == "top" else sd[part])[key]
    with pytest.raises(gradfit.ValidationError):
        TrainState.from_state_dict(sd)


@pytest.mark.parametrize(
    "generator",
    [
        "float64 tensor",
        "int64 array",
        "short byte tensor",
        "text",
        "none",
        "list",
    ],
)
def test_generator_state_of_the_wrong_type_is_refused(saved: StateDict, generator: str) -> None:
    good = saved["tensors"]["generator"]
    bad = {
        "float64 tensor": good.double(),
        "int64 array": good.numpy().astype(np.int64),
        "short byte tensor": good[:16].clone(),
        "text": "generator",
        "none": None,
        "list": [1, 2, 3],
    }[generator]
    sd = _copy(saved)
    sd["tensors"]["generator"] = bad
    with pytest.raises(gradfit.ValidationError):
        TrainState.from_state_dict(sd)


@pytest.mark.parametrize(
    ("where", "key", "value"),
    [
        ("tensors", "weight", torch.zeros(3, dtype=torch.float64)),  # not (k, d)
        ("tensors", "bias", torch.zeros(5, dtype=torch.float64)),  # k = 2
        ("tensors", "scaler_scale", torch.ones(3, dtype=torch.float64)),  # d = 4
        ("meta", "config", {"solver": "adam"}),
        ("meta", "config", {"solver": "sgd", "bogus": 1}),
        ("meta", "learning_rate", float("nan")),
        ("meta", "epoch", None),
        ("meta", "divergence", {"factor": 1e6, "unknown": 1}),
        ("meta", "plateau", "plateau"),
        ("meta", "loss_curve", None),
    ],
)
def test_inconsistent_values_are_refused(
    saved: StateDict, where: str, key: str, value: Any
) -> None:
    sd = _copy(saved)
    sd[where][key] = value
    with pytest.raises(gradfit.ValidationError):
        TrainState.from_state_dict(sd)


# ----------------------------------------------------------------------------- estimator


def _holds_torch(value: Any) -> bool:
    if isinstance(value, (torch.Tensor, torch.Generator)):
        return True
    if isinstance(value, dict):
        return any(_holds_torch(k) or _holds_torch(v) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(_holds_torch(v) for v in value)
    return False


def test_pickled_estimator_continues_bitwise_and_holds_no_torch_objects() -> None:
    X, Y = (t.numpy() for t in _data(2))
    est = GradientDescentRegressor(solver="sgd", momentum=0.5, random_state=0)
    est.partial_fit(X, Y)
    est.partial_fit(X, Y)

    state = est.__getstate__()
    assert "_state" in state and state["_state"] is not None
    assert not _holds_torch(state)
    blob = pickle.dumps(est)
    assert b"torch" not in blob  # no torch class is referenced anywhere in the pickle

    twin = pickle.loads(blob)
    np.testing.assert_array_equal(twin.coef_, est.coef_)
    for _ in range(2):
        est.partial_fit(X, Y)
        twin.partial_fit(X, Y)
        assert np.array_equal(twin.coef_, est.coef_)
        assert np.array_equal(twin.intercept_, est.intercept_)
        assert twin.n_iter_ == est.n_iter_
    assert not _holds_torch(est.__getstate__())

    # The reference: the same four epochs without the pickle, through the engine directly.
    config = SolverConfig(solver="sgd", momentum=0.5, max_epochs=1, tol=None)
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    engine_state = init_state(Xt, Yt, config, random_state=0)
    run_epochs(engine_state, Xt, Yt, 4, stop_early=False)
    w, b = engine_state.scaler.unscale(engine_state.weight, engine_state.bias)
    assert np.array_equal(est.coef_, w.numpy())
    assert np.array_equal(est.intercept_, b.numpy())


@pytest.mark.parametrize(
    "damage",
    ["meta is None", "meta is a list", "velocity of the wrong shape", "plateau best not a number"],
)
def test_damaged_dicts_fail_on_loading_not_in_training(saved: StateDict, damage: str) -> None:
    sd = _copy(saved)
    if damage == "meta is None":
        sd["meta"] = None
    elif damage == "meta is a list":
        sd["meta"] = []
    elif damage == "velocity of the wrong shape":
        sd["tensors"]["velocity_w"] = torch.zeros(7, dtype=torch.float64)
    else:
        sd["meta"]["plateau"]["best"] = "x"
    with pytest.raises(gradfit.ValidationError):
        TrainState.from_state_dict(sd)
