"""The solver engine: pure functions on tensors (closed form, full-batch and mini-batch gradient
descent), shared by the estimator and the command line."""

from gradfit.solvers.lstsq import LeastSquaresResult, least_squares

__all__ = ["LeastSquaresResult", "least_squares"]
