"""A scikit-learn regressor over the gradfit engine (with :mod:`gradfit.estimator_cv`, the only
modules that import scikit-learn).

:class:`GradientDescentRegressor` fits ``Y ≈ X @ coef_.T + intercept_`` (one or several targets,
trained jointly) with one of five solvers:

``"gd"``
    full-batch descent on sufficient statistics (:mod:`gradfit.solvers.engine`): conjugate
    gradients by default, plain gradient descent with an explicit step, momentum or schedule;
``"sgd"``
    mini-batch SGD with momentum and step schedules (same engine);
``"lstsq"``
    the closed form (:func:`gradfit.least_squares`; closed-form ridge when ``alpha > 0``);
``"scratch"`` / ``"builtin"``
    the tutorial's two loops, called unchanged (:func:`gradfit.tutorial.train_from_scratch`,
    :func:`gradfit.tutorial.train_builtin`) with ``seed=random_state``.

Objective (all solvers; see :class:`~gradfit.solvers.config.SolverConfig`)::

    J(W, b) = ||X W^T + b - Y||^2 / (n k)
              + (2 alpha / k) * (l1_ratio * ||W||_1 + (1 - l1_ratio) / 2 * ||W||_F^2)

``fit``, ``partial_fit`` and ``score`` take ``sample_weight`` with scikit-learn's meaning: the
mean squared error becomes ``Σ w_i ||e_i||² / (k Σ w_i)``, so integer weights equal repeated
rows (exactly for gd, lstsq and their penalties; for sgd in each step's expected gradient) and
rows of weight 0 are left out.

Divergence is never hidden: :class:`~gradfit.errors.DivergenceError` propagates, after the
estimator has taken the last good weights as its ``coef_``/``intercept_``. Stopping at
``max_epochs`` before the stopping rule is met emits a :class:`ConvergenceWarning` (a subclass
of both scikit-learn's and gradfit's).
"""

from __future__ import annotations

import math
import numbers
import os
import warnings
from contextlib import nullcontext
from dataclasses import replace
from typing import Any

import numpy as np
import sklearn.exceptions
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data

from gradfit import errors
from gradfit.errors import DivergenceError, ValidationError
from gradfit.fit_checks import columns_named
from gradfit.observers import observing
from gradfit.settings import DEVICES, resolve_device
from gradfit.solvers import registry
from gradfit.solvers.config import SolverConfig
from gradfit.solvers.result import FitResult
from gradfit.solvers.state import StateDict, TrainState
from gradfit.training import fit_linear
from gradfit.validation import check_weights

__all__ = ["ConvergenceWarning", "GradientDescentRegressor"]

_DTYPES: dict[str, tuple[torch.dtype, Any]] = {
    "float32": (torch.float32, np.float32),
    "float64": (torch.float64, np.float64),
}


class ConvergenceWarning(errors.ConvergenceWarning, sklearn.exceptions.ConvergenceWarning):  # type: ignore[misc]
    """Training stopped at ``max_epochs`` before its stopping rule was met.

    Caught by filters on either :class:`sklearn.exceptions.ConvergenceWarning` or
    :class:`gradfit.ConvergenceWarning`."""


def _partial_fit_available(estimator: GradientDescentRegressor) -> bool:
    spec = registry.get(estimator.solver)
    if "partial_fit" not in spec.supports:
        able = " or ".join(
            repr(s.name) for s in registry.REGISTRY.values() if "partial_fit" in s.supports
        )
        raise ValidationError(
            f"partial_fit trains solver={able} one epoch at a time; solver="
            f"{estimator.solver!r} has no incremental form (use fit)"
        )
    return True


class GradientDescentRegressor(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """Linear least-squares regression (one or several targets) fitted by gradient descent.

    Parameters
    ----------
    solver : {"gd", "sgd", "lstsq", "scratch", "builtin"}, default="gd"
        "gd": full-batch descent from the sufficient statistics (one step per epoch, O(d² k)
        per step after one pass over the data). With the defaults (``learning_rate="auto"``,
        no momentum, schedule or L1 part) the steps are **conjugate gradients**: each epoch
        moves along a direction conjugate to the last, by the exact minimiser along it, so
        the loss never rises and the optimum is reached in about ``sqrt(cond)`` rather than
        ``cond`` epochs (at most d + 1 in exact arithmetic). An explicit ``learning_rate``,
        ``momentum`` or ``schedule`` gives plain (heavy-ball, Nesterov) gradient descent with
        that step, the tutorial's iterates. "sgd": mini-batch SGD (a compiled loop on the
        CPU for large epochs, the same iterates as the torch one); "lstsq": closed form;
        "scratch"/"builtin": the tutorial's loops, unchanged (plain SGD on the MSE, always
        with an intercept, no penalty, momentum, schedule or early stopping).
    learning_rate : "auto" or float > 0, default="auto"
        "auto" takes a step computed from the data: ``1/L`` for scratch (``L`` the largest
        eigenvalue of the Hessian of the objective; gd by default takes conjugate-gradient
        steps instead, and reports ``1/L``), ``0.5/L_B`` for sgd and builtin
        (``L_B`` the expected smoothness of a mini-batch of ``batch_size`` rows), times
        ``1 - momentum``. The tutorial's ``lr=1e-5`` is never assumed.
    schedule : {"constant", "invscaling", "step"}, default="constant"
        Step at epoch ``t`` (from 0): ``lr``, ``lr / (1 + t) ** power_t`` or
        ``lr * decay_rate ** (t // decay_every)``.
    power_t : float >= 0, default=0.5
    decay_every : int >= 1, default=10
    decay_rate : float in (0, 1], default=0.5
    momentum : float in [0, 1), default=0.0
        Heavy-ball momentum, as ``torch.optim.SGD``.
    nesterov : bool, default=False
    alpha : float >= 0, default=0.0
        Penalty strength; with ``l1_ratio=0`` the fit equals ``Ridge(alpha * n_samples)``, in
        general ``ElasticNet(alpha, l1_ratio)`` per target (on the standardized features when
        ``standardize=True``).
    l1_ratio : float in [0, 1], default=0.0
    fit_intercept : bool, default=True
    standardize : bool, default=True
        Train on standardized features; coefficients are always reported in original units.
    batch_size : int >= 1, default=32
        Rows per step of sgd and builtin.
    max_epochs : int >= 1, default=1000
    tol : float >= 0 or None, default=1e-6
        Stop after ``n_iter_no_change`` epochs in a row in which the training loss did not
        beat its best by more than ``tol * max(best, 0.001 * var(y))`` (relative, down to 0.1%
        of the targets' variance, so that exactly solvable problems stop too; for gd, a loss
        above the best, i.e. momentum overshoot, also counts as moving), or, with early
        stopping, the validation R² its best by more than ``tol``. A ``tol`` below 1e-13 (the
        resolution of a float64 loss) acts as 1e-13. ``None``: run
        ``max_epochs`` epochs and never warn. The tutorial solvers always run ``max_epochs``
        epochs; the same rule, applied to their loss history, sets ``converged_``.
    n_iter_no_change : int >= 1, default=5
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows (gd and sgd), stop on their R² and keep
        the best weights.
    validation_fraction : float in (0, 1), default=0.1
    warm_start : bool, default=False
        Start ``fit`` from the current ``coef_``/``intercept_`` (iterative solvers).
    device : {"cpu", "cuda", "auto"}, default="cpu"
        "auto" means "cuda" when available.
    dtype : {"float64", "float32"}, default="float64"
        Precision of the data on the device (gd accumulates its statistics in float64 either
        way). Learned attributes are always float64 NumPy arrays.
    random_state : int, numpy RandomState or None, default=None
        Seed of the shuffles, the validation split and (tutorial solvers) the initial weights:
        an int is used as the torch seed itself.
    tensorboard_dir : str, path or None, default=None
        A directory (created) where every ``fit`` and ``partial_fit`` writes each epoch's
        loss, learning rate, rows per second and validation R² for TensorBoard, in a new event
        file (iterative solvers; needs ``pip install 'gradfit[tensorboard]'``:
        :mod:`gradfit.observers`).

    Attributes
    ----------
    coef_ : ndarray (n_targets, n_features), or (n_features,) when y is 1-D
    intercept_ : ndarray (n_targets,), or float when y is 1-D
    n_iter_ : int
        Epochs run (lstsq: 1).
    loss_curve_ : ndarray (n_iter_,)
        Training objective per epoch (sgd, builtin: mean over the epoch's batches; scratch: the
        loss before each epoch's update, as the tutorial records it).
    validation_scores_ : ndarray (n_iter_,) or None
        Validation R² per epoch, with early stopping.
    converged_ : bool
    learning_rate_ : float or None
        Initial step used (before the schedule); None for lstsq.
    stable_learning_rate_ : float or None
        Largest stable step for this solver and data (2/L, or 2/L_B for mini-batches).
    n_features_in_ : int
    feature_names_in_ : ndarray of str, when X has string column names

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> reg = GradientDescentRegressor(tol=1e-10).fit(X, 3 * X[:, 0] + 1)
    >>> round(float(reg.coef_[0]), 6), round(float(reg.intercept_), 6), reg.converged_
    (3.0, 1.0, True)
    """

    # Learned attributes (set by fit; annotations only, no class attributes).
    coef_: np.ndarray
    intercept_: Any  # ndarray (n_targets,), or float when y is 1-D
    n_iter_: int
    loss_curve_: np.ndarray
    validation_scores_: np.ndarray | None
    converged_: bool
    learning_rate_: float | None
    stable_learning_rate_: float | None

    def __init__(
        self,
        *,
        solver: str = "gd",
        learning_rate: float | str = "auto",
        schedule: str = "constant",
        power_t: float = 0.5,
        decay_every: int = 10,
        decay_rate: float = 0.5,
        momentum: float = 0.0,
        nesterov: bool = False,
        alpha: float = 0.0,
        l1_ratio: float = 0.0,
        fit_intercept: bool = True,
        standardize: bool = True,
        batch_size: int = 32,
        max_epochs: int = 1000,
        tol: float | None = 1e-6,
        n_iter_no_change: int = 5,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        warm_start: bool = False,
        device: str = "cpu",
        dtype: str = "float64",
        random_state: int | np.random.RandomState | None = None,
        tensorboard_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.solver = solver
        self.learning_rate = learning_rate
        self.schedule = schedule
        self.power_t = power_t
        self.decay_every = decay_every
        self.decay_rate = decay_rate
        self.momentum = momentum
        self.nesterov = nesterov
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.standardize = standardize
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.warm_start = warm_start
        self.device = device
        self.dtype = dtype
        self.random_state = random_state
        self.tensorboard_dir = tensorboard_dir

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    # ------------------------------------------------------------------------- parameters

    def _config(self) -> SolverConfig:
        """The validated configuration (raises :class:`ValidationError`, a ``ValueError``)."""
        for name in ("nesterov", "fit_intercept", "standardize", "early_stopping", "warm_start"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValidationError(f"{name} must be True or False, got {getattr(self, name)!r}")
        return SolverConfig(
            solver=self.solver,
            learning_rate=self.learning_rate,  # type: ignore[arg-type]
            schedule=self.schedule,  # type: ignore[arg-type]
            power_t=self.power_t,
            decay_every=self.decay_every,
            decay_rate=self.decay_rate,
            momentum=self.momentum,
            nesterov=bool(self.nesterov),
            alpha=self.alpha,
            l1_ratio=self.l1_ratio,
            batch_size=self.batch_size,
            max_epochs=self.max_epochs,
            tol=self.tol,
            n_iter_no_change=self.n_iter_no_change,
            early_stopping=bool(self.early_stopping),
            validation_fraction=self.validation_fraction,
            standardize=bool(self.standardize),
            fit_intercept=bool(self.fit_intercept),
        )

    def _device_dtype(self) -> tuple[torch.device, torch.dtype, Any]:
        if self.dtype not in _DTYPES:
            raise ValidationError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        if self.device not in DEVICES:
            raise ValidationError(
                f"device must be one of {', '.join(DEVICES)}; got {self.device!r}"
            )
        device = resolve_device(self.device)
        tdtype, ndtype = _DTYPES[self.dtype]
        return device, tdtype, ndtype

    def _seed(self) -> int | None:
        """The torch seed: an int as given, one drawn from a RandomState, or None (fresh)."""
        rs = self.random_state
        if rs is None:
            return None
        if isinstance(rs, np.random.RandomState):
            return int(rs.randint(np.iinfo(np.int32).max))
        if isinstance(rs, numbers.Integral) and not isinstance(rs, bool) and int(rs) >= 0:
            return int(rs)
        raise ValidationError(
            f"random_state must be None, a non-negative int or a numpy RandomState, got {rs!r}"
        )

    # ------------------------------------------------------------------------- data

    def _tensors(
        self, X: np.ndarray, y: np.ndarray, device: torch.device, ndtype: Any
    ) -> tuple[torch.Tensor, torch.Tensor, bool]:
        y = np.asarray(y, dtype=ndtype)
        one_d = y.ndim == 1
        Y = y.reshape(-1, 1) if one_d else y
        if Y.shape[1] < 1:
            raise ValidationError(f"y must have at least 1 target column, got shape {y.shape}")
        return _tensor(X, device), _tensor(Y, device), one_d

    # ------------------------------------------------------------------------- fit

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> GradientDescentRegressor:
        """Fit the model.

        Parameters
        ----------
        X : array-like (n_samples, n_features)
        y : array-like (n_samples,) or (n_samples, n_targets)
        sample_weight : array-like (n_samples,) or float, optional
            Row weights, finite and >= 0, not all 0 (see the module's docstring; a number
            weighs every row alike, as scikit-learn's); the tutorial solvers refuse them.

        Returns
        -------
        self

        Raises
        ------
        ValidationError
            an invalid parameter or parameter combination (a ``ValueError``).
        DivergenceError
            the loss became non-finite or exploded; ``coef_``/``intercept_`` then hold the
            last good weights and ``stable_learning_rate_`` the step that would be stable.
        """
        return self._fit(X, y, sample_weight, partial=False)

    @available_if(_partial_fit_available)  # type: ignore[untyped-decorator]
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> GradientDescentRegressor:
        """One epoch of gd or sgd over the given rows, continuing from the previous call (or
        from ``fit``). The first call fixes the scaling and the step from its rows; ``tol`` and
        early stopping do not apply. ``partial_fit(X, y)`` once from scratch equals
        ``fit(X, y)`` with ``max_epochs=1`` and the same ``random_state``, bit for bit.
        ``sample_weight``: the rows' weights, relative to each other within the call (sgd
        scales them to mean 1 over the call's rows).
        """
        return self._fit(X, y, sample_weight, partial=True)

    def _fit(
        self, X: Any, y: Any, sample_weight: Any, *, partial: bool
    ) -> GradientDescentRegressor:
        """The one path of ``fit`` and ``partial_fit`` (as scikit-learn's SGD estimators'
        ``_partial_fit``): ``fit`` trains ``max_epochs`` epochs from a fresh (or warm) start,
        ``partial_fit`` one epoch from the saved training state."""
        config = self._config()
        device, _, ndtype = self._device_dtype()
        seed = self._seed()
        first = not partial or not hasattr(self, "coef_")
        X, y = validate_data(
            self, X, y, dtype=ndtype, order="C", y_numeric=True, multi_output=True, reset=first
        )
        Xt, Yt, one_d = self._tensors(X, y, device, ndtype)
        weights = None
        if sample_weight is not None:
            weights = check_weights(row_weights(sample_weight, Xt.shape[0]), Xt.shape[0])
            weights = weights.to(device)
        k, d = Yt.shape[1], Xt.shape[1]
        state = start = None
        if partial:
            # One epoch; no stopping rule, no validation split.
            config = replace(config, max_epochs=1, tol=None, early_stopping=False)
            if not first:
                self._check_targets(one_d, k)
                state = self._saved_state(config, device)
                if state is None:  # parameters changed since the last call: restart from coef_
                    start = self._coefficients(k, d)
        elif self.warm_start and hasattr(self, "coef_"):
            start = self._coefficients(k, d)
        self._one_d = one_d
        self._state: StateDict | None = None
        spec = registry.get(config.solver)
        board = self.tensorboard_dir
        # With X's column names (a DataFrame), a column too small or too large is named.
        names = getattr(self, "feature_names_in_", None)
        try:
            with (
                observing(None, board, iterative=spec.iterative, solver=config.solver) as watch,
                nullcontext() if names is None else columns_named("X", list(names), ()),
            ):
                result = fit_linear(
                    Xt,
                    Yt,
                    config,
                    random_state=seed,
                    start=start,
                    state=state,
                    sample_weight=weights,
                    callback=watch,
                )
        except DivergenceError as exc:
            if exc.result is not None:  # the last good epoch
                self._take(exc.result)
            raise
        self._take(result)
        if not partial and not result.converged and config.tol is not None:
            warnings.warn(
                f"solver={config.solver!r} stopped at max_epochs={config.max_epochs} without "
                f"converging (the loss must stop improving by more than tol={config.tol} over "
                f"n_iter_no_change={config.n_iter_no_change} epochs, and for 'gd' be within tol "
                "of the optimum computed from the data); last loss "
                f"{result.loss_curve[-1] if result.loss_curve else math.nan:.6g}. Increase "
                "max_epochs, use standardize=True or momentum, or set tol=None to run a fixed "
                "number of epochs",
                ConvergenceWarning,
                stacklevel=3,
            )
        return self

    def _check_targets(self, one_d: bool, k: int) -> None:
        trained = np.atleast_2d(self.coef_).shape[0]
        if one_d != self._one_d or trained != k:
            raise ValidationError(
                f"y has {k} target(s) ({'1-D' if one_d else '2-D'}), but this model was "
                f"trained on {trained} ({'1-D' if self._one_d else '2-D'}); call fit to start "
                "over"
            )

    def _coefficients(self, k: int, d: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The current coef_/intercept_ as a start, (k, d) and (k,) float64."""
        coef = np.atleast_2d(np.asarray(self.coef_, dtype=np.float64))
        if coef.shape != (k, d):
            raise ValidationError(
                f"warm_start=True but the previous fit has coef_ of shape {coef.shape} and this "
                f"data needs ({k}, {d}); refit with warm_start=False"
            )
        bias = np.atleast_1d(np.asarray(self.intercept_, dtype=np.float64))
        return torch.from_numpy(coef.copy()), torch.from_numpy(bias.copy())

    def _saved_state(self, config: SolverConfig, device: torch.device) -> TrainState | None:
        """The training state of the last call, when its settings shape an epoch as
        ``config`` does; None otherwise (or after lstsq and the tutorial solvers)."""
        saved = getattr(self, "_state", None)
        if saved is None:
            return None
        state = TrainState.from_state_dict(saved, device=device)
        return state if _dynamics(state.config) == _dynamics(config) else None

    # ------------------------------------------------------------------------- results

    def _take(self, result: FitResult) -> None:
        """Set the fitted attributes, and keep the engine's state dict (NumPy arrays and
        plain values: the fitted estimator holds no torch object, pickles, and continues
        exactly where training stopped)."""
        self._state = None
        if result.state is not None:
            sd = result.state.state_dict()
            tensors = {n: t.detach().cpu().numpy().copy() for n, t in sd["tensors"].items()}
            self._state = {"tensors": tensors, "meta": sd["meta"]}
        w = result.weight.detach().double().cpu().numpy()
        b = result.bias.detach().double().cpu().numpy()
        if self._one_d:
            self.coef_ = w[0].copy()
            self.intercept_ = float(b[0])
        else:
            self.coef_ = w.copy()
            self.intercept_ = b.copy()
        self.n_iter_ = int(result.n_iter)
        self.loss_curve_ = np.asarray(result.loss_curve, dtype=np.float64)
        self.validation_scores_ = (
            None
            if result.validation_scores is None
            else np.asarray(result.validation_scores, dtype=np.float64)
        )
        self.converged_ = bool(result.converged)
        self.learning_rate_ = result.learning_rate
        self.stable_learning_rate_ = result.stable_lr

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """R² of the predictions (scikit-learn's ``r2_score``, weighted by ``sample_weight``;
        several targets: their uniform average)."""
        return float(super().score(X, y, sample_weight=sample_weight))

    def predict(self, X: Any) -> np.ndarray:
        """Predictions ``X @ coef_.T + intercept_``: (n_samples,) when fitted on a 1-D y,
        else (n_samples, n_targets); float64."""
        check_is_fitted(self, "coef_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        coef = np.asarray(self.coef_, dtype=np.float64)
        return np.asarray(X @ coef.T + self.intercept_, dtype=np.float64)


# ----------------------------------------------------------------------------- helpers


def row_weights(sample_weight: Any, n: int) -> Any:
    """``sample_weight`` as given, or a number (scikit-learn's ``fit`` takes one: every row
    that weight) as ``n`` copies of it."""
    if isinstance(sample_weight, numbers.Real) and not isinstance(sample_weight, bool):
        return np.full(n, float(sample_weight))
    return sample_weight


def _tensor(a: np.ndarray, device: torch.device) -> torch.Tensor:
    # torch.from_numpy shares memory; a read-only array (memmap) is copied, never written.
    a = np.ascontiguousarray(a)
    if not a.flags.writeable:
        a = a.copy()
    return torch.from_numpy(a).to(device)


def _dynamics(config: SolverConfig) -> SolverConfig:
    """The part of a configuration that shapes one epoch (stopping rules aside)."""
    return replace(
        config,
        max_epochs=1,
        tol=None,
        n_iter_no_change=1,
        early_stopping=False,
        validation_fraction=0.1,
    )
