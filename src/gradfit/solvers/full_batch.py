"""Full-batch epochs from the sufficient statistics (``gd``): the plain gradient step
(:func:`gd_epoch`, the pure update of :mod:`gradfit.solvers.kernels`) and conjugate gradients
(:class:`ConjugateGradient`, gd's default). Each takes one step and returns the objective after
it, at O(d² k) whatever the number of rows."""

from __future__ import annotations

import torch

from gradfit.solvers.config import SolverConfig
from gradfit.solvers.kernels import ridge_factor, update_state
from gradfit.solvers.state import TrainState
from gradfit.solvers.stats import SufficientStats

__all__ = ["ConjugateGradient", "gd_epoch", "objective"]


def objective(state: TrainState, st: SufficientStats) -> float:
    """The objective of the state's weights on the (internal) statistics ``st``."""
    cfg = state.config
    return st.objective(state.weight, state.bias, cfg.alpha, cfg.l1_ratio)


def gd_epoch(state: TrainState, st: SufficientStats, lr: float) -> float:
    """One full-batch step from statistics; returns the objective after the step."""
    gW, gb = st.gradient(state.weight, state.bias)
    update_state(state, gW, gb, lr)
    return objective(state, st)


class ConjugateGradient:
    """Linear conjugate gradients on the objective (a quadratic: its gradient and Hessian come
    from the statistics), each target on its own; :meth:`epoch` takes one step and returns the
    objective after it.

    With ``x = [W_j, b_j]`` (the weights of target j, and its bias with an intercept), gradient
    ``g`` and Hessian ``H = (2/k) M + ridge`` (``M`` the second moment of ``[Z, 1]``, the same
    for every target; ``ridge`` on the weights only)::

        p <- -g                                  first step (steepest descent)
        p <- -g + beta p,  beta = g.Hp / p.Hp    afterwards (p conjugate to the last p)
        x <- x + alpha p,  alpha = -g.p / p.Hp   (the exact minimum along p)

    The direction p is the state's velocity, so that a saved state resumes exactly. In exact
    arithmetic this reaches the optimum within d + 1 steps; in any case it converges at the
    rate ``(sqrt(kappa) - 1) / (sqrt(kappa) + 1)`` per step (kappa the condition number of H):
    ~sqrt(kappa) steps where plain gradient descent needs ~kappa. It never raises the loss
    (each step minimises it along a line). A direction along which the loss does not curve
    (rank-deficient data, or the optimum reached) is dropped: the next step restarts from -g.
    """

    def __init__(self, st: SufficientStats, config: SolverConfig, k: int) -> None:
        self.st = st
        self.fit_intercept = config.fit_intercept
        self.ridge = ridge_factor(config.alpha, config.l1_ratio, k)
        d = st.zbar.shape[0]
        H = (2.0 / k) * st.second_moment(config.fit_intercept)  # (m, m), m = d (+ 1)
        H[:d, :d] += self.ridge * torch.eye(d, dtype=H.dtype, device=H.device)
        self.H = H
        # The direction this object last stored in a state: (its velocity_w, q, H q), which
        # saves a product per step.
        self._last: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def epoch(self, state: TrainState) -> float:
        W, b = state.weight, state.bias
        d = W.shape[1]
        gW, gb = self.st.gradient(W, b)
        if self.ridge:
            gW = gW + self.ridge * W
        g = torch.cat([gW, gb[:, None]], 1) if self.fit_intercept else gW  # (k, m)
        p = -g
        last = self._direction(state)
        if last is not None:
            q, Hq = last
            qHq = (q * Hq).sum(1)  # (k,): one inner product per target
            beta = torch.where(qHq > 0, (g * Hq).sum(1) / qHq, 0.0)
            p = p + beta[:, None] * q
        Hp = p @ self.H  # (k, m) @ (m, m)
        pHp = (p * Hp).sum(1)
        ok = pHp > 0
        alpha = torch.where(ok, -(g * p).sum(1) / pHp, 0.0)
        W.add_(alpha[:, None] * p[:, :d])
        if self.fit_intercept:
            b.add_(alpha * p[:, d])
        p, Hp = torch.where(ok[:, None], p, 0.0), torch.where(ok[:, None], Hp, 0.0)
        state.velocity_w = p[:, :d].contiguous()
        state.velocity_b = p[:, d].contiguous() if self.fit_intercept else torch.zeros_like(b)
        self._last = (state.velocity_w, p, Hp)
        return objective(state, self.st)

    def _direction(self, state: TrainState) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The state's direction q (k, m) and H q; None before the first step."""
        vw, vb = state.velocity_w, state.velocity_b
        if vw is None or vb is None:
            return None
        if self._last is not None and self._last[0] is vw:  # the one this object stored
            return self._last[1], self._last[2]
        q = torch.cat([vw, vb[:, None]], 1) if self.fit_intercept else vw
        return q, q @ self.H
