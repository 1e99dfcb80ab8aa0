"""The tutorial's two ways, kept readable and exact: from scratch (part 1) and with PyTorch
built-ins (part 2). These are the reference semantics the engine in :mod:`gradfit.solvers` is
checked against."""

from gradfit.tutorial.builtin import BuiltinResult, FitHistory, fit, make_linear, train_builtin
from gradfit.tutorial.scratch import (
    ScratchResult,
    compute_gradients,
    init_params,
    model,
    mse,
    step,
    train_from_scratch,
)

__all__ = [
    "BuiltinResult",
    "FitHistory",
    "ScratchResult",
    "compute_gradients",
    "fit",
    "init_params",
    "make_linear",
    "model",
    "mse",
    "step",
    "train_builtin",
    "train_from_scratch",
]
