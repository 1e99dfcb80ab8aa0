"""The compiled sgd epoch (gradfit.solvers.compiled, numba) against the torch reference epoch,
the engine's choice between them, and the divergence checks within an epoch.

Tolerances: both paths apply the same update to the same rows in the same order; only the
sums inside a batch's gradient and residuals are grouped differently (BLAS against a compiled
loop), so float64 iterates agree to a few ulps per step: ``1e-12`` over several epochs (values
are O(1)) leaves room for rounding and none for a wrong factor, sign, order or step. float32
iterates carry float32 rounding of the same kind: ``1e-4``.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from gradfit.errors import DivergenceError
from gradfit.solvers import compiled, engine
from gradfit.solvers.config import SolverConfig
from gradfit.solvers.engine import EPOCH_KERNELS, TensorData, epoch_kernel, init_state, run_epochs
from gradfit.solvers.state import TrainState

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.skipif(not compiled.available(), reason="numba is not installed"),
]

NUMBA = dataclasses.replace(EPOCH_KERNELS[0], min_steps=0, min_rows=0)  # on any epoch size
TORCH = EPOCH_KERNELS[-1]
F64_TOL = 1e-12  # see the module doc
F32_TOL = 1e-4


def _problem(
    seed: int, n: int = 203, d: int = 4, k: int = 3, dtype: torch.dtype = torch.float64
) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 3.0, size=d) + rng.normal(size=d)
    Y = X @ rng.normal(size=(k, d)).T + rng.normal(size=k) + 0.3 * rng.normal(size=(n, k))
    return torch.from_numpy(X).to(dtype), torch.from_numpy(Y).to(dtype)


def _both(
    X: torch.Tensor, Y: torch.Tensor, config: SolverConfig, epochs: int
) -> tuple[TrainState, TrainState]:
    states = []
    for kernel in (NUMBA, TORCH):
        state = init_state(X, Y, config, random_state=3)
        run_epochs(state, X, Y, epochs, stop_early=False, kernels=(kernel,))
        states.append(state)
    return states[0], states[1]


def _gap(a: TrainState, b: TrainState) -> float:
    gaps = [(a.weight - b.weight).abs().max(), (a.bias - b.bias).abs().max()]
    for va, vb in ((a.velocity_w, b.velocity_w), (a.velocity_b, b.velocity_b)):
        assert (va is None) == (vb is None)
        if va is not None and vb is not None:
            gaps.append((va - vb).abs().max())
    return float(max(gaps))


RULES = {
    "plain": {},
    "momentum": {"momentum": 0.9},
    "nesterov": {"momentum": 0.9, "nesterov": True},
}
PENALTIES = {
    "none": {},
    "ridge": {"alpha": 0.05},
    "elastic-net": {"alpha": 0.05, "l1_ratio": 0.5},
    "lasso": {"alpha": 0.2, "l1_ratio": 1.0},
}


@pytest.mark.parametrize("penalty", sorted(PENALTIES))
@pytest.mark.parametrize("rule", sorted(RULES))
def test_compiled_epochs_equal_the_torch_reference_in_float64(rule: str, penalty: str) -> None:
    """Every combination of update rule, penalty, schedule, batch size (1, 5 and 32: 67 rows
    leave a short last batch), standardization and intercept, over four epochs."""
    X, Y = _problem(1, n=67)
    for batch, schedule, standardize, intercept in itertools.product(
        (1, 5, 32), ("constant", "invscaling", "step"), (True, False), (True, False)
    ):
        config = SolverConfig(
            solver="sgd",
            learning_rate=0.01,
            batch_size=batch,
            schedule=schedule,  # type: ignore[arg-type]
            decay_every=2,
            standardize=standardize,
            fit_intercept=intercept,
            tol=None,
            **RULES[rule],  # type: ignore[arg-type]
            **PENALTIES[penalty],  # type: ignore[arg-type]
        )
        ours, ref = _both(X, Y, config, 4)
        where = f"batch {batch}, {schedule}, standardize={standardize}, intercept={intercept}"
        assert _gap(ours, ref) <= F64_TOL, where
        np.testing.assert_allclose(ours.loss_curve, ref.loss_curve, rtol=F64_TOL, err_msg=where)
        assert ours.generator.get_state().equal(ref.generator.get_state())  # one randperm each
        if penalty in ("elastic-net", "lasso"):
            assert torch.equal(ours.weight == 0, ref.weight == 0)  # the same exact zeros


def test_compiled_epochs_follow_the_reference_in_float32() -> None:
    X, Y = _problem(2, n=500, dtype=torch.float32)
    for batch, rule in itertools.product((1, 5, 32), RULES.values()):
        config = SolverConfig(solver="sgd", learning_rate=0.005, batch_size=batch, tol=None, **rule)  # type: ignore[arg-type]
        ours, ref = _both(X, Y, config, 3)
        assert ours.weight.dtype == torch.float32
        scale = float(ref.weight.abs().max())
        assert _gap(ours, ref) <= F32_TOL * scale, f"batch {batch}, {rule}"


def test_rows_in_order_equal_the_reference() -> None:
    """Without shuffling (the kernel's other row order), one step per epoch or several."""
    X, Y = _problem(3)
    config = SolverConfig(solver="sgd", learning_rate=0.01, batch_size=7, momentum=0.5, tol=None)
    for batch in (7, X.shape[0]):
        states = [init_state(X, Y, config, random_state=0) for _ in range(2)]
        for state, kernel in zip(states, (NUMBA, TORCH), strict=True):
            for _ in range(3):
                kernel.run(state, TensorData(X, Y), 0.01, batch, False)
        assert _gap(*states) <= F64_TOL


def test_resuming_a_compiled_run_from_its_state_dict_is_bitwise() -> None:
    X, Y = _problem(4)
    config = SolverConfig(solver="sgd", batch_size=3, momentum=0.9, nesterov=True, tol=None)
    whole = init_state(X, Y, config, random_state=8)
    run_epochs(whole, X, Y, 4, stop_early=False, kernels=(NUMBA,))
    first = init_state(X, Y, config, random_state=8)
    run_epochs(first, X, Y, 2, stop_early=False, kernels=(NUMBA,))
    resumed = TrainState.from_state_dict(first.state_dict())
    run_epochs(resumed, X, Y, 2, stop_early=False, kernels=(NUMBA,))
    assert torch.equal(resumed.weight, whole.weight) and torch.equal(resumed.bias, whole.bias)
    assert resumed.velocity_w is not None and whole.velocity_w is not None
    assert torch.equal(resumed.velocity_w, whole.velocity_w)


# ----------------------------------------------------------------------------- the choice


def test_the_engine_picks_the_compiled_kernel_for_large_epochs_on_the_cpu() -> None:
    X, Y = _problem(5, n=1 << 16, d=2, k=1)
    for batch in (1, 1024):  # many steps; many rows
        config = SolverConfig(solver="sgd", batch_size=batch)
        state = init_state(X, Y, config, random_state=0)
        assert epoch_kernel(state, TensorData(X, Y), batch).name == "numba"


def _small_state(X: torch.Tensor, Y: torch.Tensor) -> TrainState:
    return init_state(X, Y, SolverConfig(solver="sgd", batch_size=1), random_state=0)


class _Stream:
    """Rows that are not a TensorData (a stream of files, say)."""

    def __init__(self, X: torch.Tensor, Y: torch.Tensor) -> None:
        self.data = TensorData(X, Y)

    def batches(
        self, generator: torch.Generator, batch_size: int, shuffle: bool
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.data.batches(generator, batch_size, shuffle)


def test_the_torch_reference_takes_every_other_epoch() -> None:
    X, Y = _problem(6, n=4096, d=3, k=2)
    state = _small_state(X, Y)
    assert epoch_kernel(state, TensorData(X, Y), 1).name == "numba"
    assert epoch_kernel(state, TensorData(X, Y), 8).name == "torch"  # 512 steps: not worth it
    assert epoch_kernel(state, _Stream(X, Y), 1).name == "torch"  # not rows in memory
    strided = torch.empty(X.shape[0], 2 * X.shape[1], dtype=X.dtype)[:, ::2]
    strided.copy_(X)
    assert epoch_kernel(state, TensorData(strided, Y), 1).name == "torch"  # not contiguous
    half = _small_state(X.float(), Y.float())
    assert epoch_kernel(half, TensorData(X, Y), 1).name == "torch"  # dtypes differ
    unavailable = dataclasses.replace(EPOCH_KERNELS[0], available=lambda: False)
    assert epoch_kernel(state, TensorData(X, Y), 1, (unavailable, TORCH)).name == "torch"
    # Weights on another device (CUDA; "meta" here, without a GPU) go to the torch reference.
    state.weight = state.weight.to("meta")
    assert epoch_kernel(state, TensorData(X, Y), 1).name == "torch"


# ----------------------------------------------------------------------------- divergence


def _exploding(n: int) -> tuple[torch.Tensor, torch.Tensor, SolverConfig]:
    X, Y = _problem(7, n=n, d=5, k=2)
    config = SolverConfig(solver="sgd", batch_size=1, learning_rate=5.0, tol=None)
    return X, Y, config


@pytest.mark.parametrize("kernel", [NUMBA, TORCH], ids=["numba", "torch"])
def test_a_blow_up_at_batch_1_is_caught_within_the_epoch(kernel: engine.EpochKernel) -> None:
    """A step 100x the stable one explodes within a few hundred rows: the epoch stops at the
    next check (every 4096 rows), long before its 40,000 rows, and the engine raises with the
    last good (finite) weights."""
    X, Y, config = _exploding(40_000)
    state = init_state(X, Y, config, random_state=0)
    drawn = 0

    class Counting(TensorData):
        # The epoch draws its batches with their weights (interfaces.weighted_batches).
        def weighted_batches(
            self, generator: torch.Generator, batch_size: int, shuffle: bool
        ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
            nonlocal drawn
            for batch in super().weighted_batches(generator, batch_size, shuffle):
                drawn += 1
                yield batch

    data = Counting(X, Y)
    if kernel is NUMBA:
        perm = torch.randperm(X.shape[0], generator=torch.Generator().manual_seed(0))
        outcome, _, _ = compiled.sgd_epoch(
            X, Y, state.weight.clone(), state.bias.clone(), None, None, perm,
            state.scaler.mean, state.scaler.scale, lr=5.0, momentum=0.0, nesterov=False,
            weight_decay=0.0, l1=0.0, standardize=True, fit_intercept=True, batch_size=1,
            check_every=engine._check_every(1), limit=engine._window_limit(state),
        )  # fmt: skip
        assert outcome.rows == 4096 and outcome.window_mse is not None
        assert not outcome.window_mse <= engine._window_limit(state)
    else:
        loss = kernel.run(state, data, 5.0, 1, True)
        assert drawn == 4096 and not loss <= engine._window_limit(state)
    fresh = init_state(X, Y, config, random_state=0)
    with pytest.raises(DivergenceError, match="diverged at epoch 1") as info:
        run_epochs(fresh, X, Y, 3, kernels=(kernel,))
    good = info.value.result
    assert good is not None and good.n_iter == 0
    assert math.isfinite(float(good.weight.abs().max()))


@pytest.mark.parametrize("kernel", [NUMBA, TORCH], ids=["numba", "torch"])
def test_a_nan_weight_is_not_hidden_by_the_l1_step(kernel: engine.EpochKernel) -> None:
    """The proximal step maps |w| <= threshold to 0; a NaN weight must stay NaN."""
    X, Y = _problem(8, n=64)
    config = SolverConfig(solver="sgd", batch_size=4, alpha=0.1, l1_ratio=1.0, tol=None)
    state = init_state(X, Y, config, random_state=0)
    X = X.clone()
    X[10, 0] = math.nan
    loss = kernel.run(state, TensorData(X, Y), 0.01, 4, True)
    assert math.isnan(loss)
    assert bool(torch.isnan(state.weight).all())


@pytest.mark.slow
def test_short_fits_and_imports_do_not_load_numba() -> None:
    """numba costs about a second on first use: gradfit's import and a small sgd fit (the torch
    loop) never import it."""
    code = (
        "import sys, numpy as np, gradfit\n"
        "X = np.random.default_rng(0).normal(size=(200, 3))\n"
        "gradfit.GradientDescentRegressor(solver='sgd', max_epochs=2).fit(X, X[:, 0])\n"
        "print('numba' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
