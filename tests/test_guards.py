"""The guards of gradfit.solvers.guards, each alone on hand-made loss sequences.

Every expected value is worked out by hand in the comments from the documented rules; the
losses are chosen so that no comparison sits within rounding of its threshold (except where
the threshold itself is the subject, and then the margin is stated).
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from gradfit.solvers.guards import LOSS_RESOLUTION, DivergenceGuard, EarlyStopping, PlateauRule

# ----------------------------------------------------------------------------- divergence


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_divergence_non_finite_loss(bad: float) -> None:
    guard = DivergenceGuard(factor=10.0)
    assert not guard.diverged(1.0)
    assert guard.diverged(bad)
    assert guard.previous == 1.0  # a bad loss is not remembered
    assert guard.reference == 1.0


def test_divergence_non_finite_first_loss_sets_no_reference() -> None:
    guard = DivergenceGuard(factor=10.0)
    assert guard.diverged(math.nan)
    assert guard.reference is None and guard.previous is None
    assert not guard.diverged(5.0)
    assert guard.reference == 5.0


def test_divergence_non_finite_parameters() -> None:
    guard = DivergenceGuard(factor=10.0, reference=1.0, previous=1.0)
    assert guard.diverged(0.5, finite=False)  # a fine loss, but the weights hold inf/NaN
    assert guard.previous == 1.0
    assert not guard.diverged(0.5)
    assert guard.previous == 0.5


def test_divergence_above_factor_times_the_given_reference() -> None:
    guard = DivergenceGuard(factor=10.0, reference=2.0)
    # The given reference is kept: the first loss seen does not replace it.
    assert not guard.diverged(19.0)
    assert guard.reference == 2.0
    assert not guard.diverged(20.0)  # exactly factor x reference: not above it
    assert guard.diverged(20.5)
    assert not guard.diverged(0.1)  # falling far below is fine


def test_divergence_reference_is_the_first_loss_when_not_given() -> None:
    guard = DivergenceGuard(factor=100.0)
    assert not guard.diverged(3.0)
    assert guard.reference == 3.0
    assert not guard.diverged(0.5)
    assert guard.reference == 3.0  # only the first loss sets it
    assert not guard.diverged(299.0)  # below 100 x 3
    assert guard.diverged(301.0)  # above 100 x 3, though it is below 100 x the last good loss


def test_divergence_monotone_rule_only_above_the_stable_rate_and_only_when_rising() -> None:
    def guard(monotone: bool = True) -> DivergenceGuard:
        return DivergenceGuard(
            factor=1e6, stable_lr=0.1, monotone=monotone, reference=1.0, previous=1.0
        )

    assert guard().diverged(1.1, lr=0.2)  # above the stable rate, rising: diverged
    assert not guard().diverged(1.0, lr=0.2)  # equal is not rising
    assert not guard().diverged(0.9, lr=0.2)  # falling
    assert not guard().diverged(1.1, lr=0.1)  # at the stable rate: not above it
    assert not guard().diverged(1.1, lr=0.05)  # below it
    assert not guard().diverged(1.1)  # no rate given
    assert not guard(monotone=False).diverged(1.1, lr=0.2)  # only for monotone runs
    no_bound = DivergenceGuard(factor=1e6, monotone=True, reference=1.0, previous=1.0)
    assert not no_bound.diverged(1.1, lr=0.2)  # no stable rate known

    # "Rising" is against the last good loss, which a bad check does not replace.
    g = guard()
    assert not g.diverged(0.5, lr=0.2)
    assert g.previous == 0.5
    assert g.diverged(0.6, lr=0.2)
    assert g.previous == 0.5
    assert not g.diverged(0.55, lr=0.05)  # a rise below the stable rate is tolerated...
    assert g.previous == 0.55
    assert not g.diverged(0.54, lr=0.2)  # ...and the rule continues from there


def test_divergence_monotone_rule_needs_a_previous_loss() -> None:
    guard = DivergenceGuard(factor=1e6, stable_lr=0.1, monotone=True)
    assert not guard.diverged(5.0, lr=0.2)  # nothing to rise from
    assert guard.previous == 5.0
    assert guard.diverged(6.0, lr=0.2)


def test_divergence_reason_names_epoch_loss_start_rate_and_stable_rate() -> None:
    guard = DivergenceGuard(factor=10.0, stable_lr=0.0123, reference=2.5)
    text = guard.reason(7, 1234.5, 0.5, "full-batch gradient descent")
    assert "epoch 7" in text
    assert "1.23e+03" in text  # the loss, 3 significant digits
    assert "started at 2.5" in text
    assert "learning rate 0.5" in text
    assert "full-batch gradient descent" in text
    assert "about 0.0123" in text  # the stable rate
    assert "non-finite" in guard.reason(3, math.nan, 0.5, "sgd")
    assert "non-finite" in guard.reason(3, math.inf, 0.5, "sgd")

    bare = DivergenceGuard(factor=10.0).reason(2, math.inf, 0.25, "sgd")
    assert "epoch 2" in bare and "learning rate 0.25" in bare
    assert "started at" not in bare  # no reference seen
    assert "stable" not in bare  # no stable rate known


# ----------------------------------------------------------------------------- plateau


def test_plateau_counts_patience_losses_in_a_row() -> None:
    rule = PlateauRule(tol=0.01, patience=3, floor=0.0)
    # best (step = 1% of it) -> stalled
    assert not rule.update(10.0)  # first loss: improving (best was inf) -> 0
    assert not rule.update(9.0)  # 9 < 10 - 0.1 -> 0
    assert not rule.update(8.95)  # 8.95 > 9 - 0.09 -> 1 (best 8.95)
    assert not rule.update(8.94)  # 8.94 > 8.95 - 0.0895 -> 2 (best 8.94)
    assert not rule.update(5.0)  # 5 < 8.94 - 0.0894: improving resets -> 0
    assert rule.stalled == 0 and rule.best == 5.0
    assert not rule.update(4.99)  # -> 1
    assert not rule.update(5.01)  # -> 2 (not deterministic: above the best is stalled)
    assert rule.update(4.98)  # -> 3 = patience
    assert rule.stalled == 3 and rule.best == 4.98
    assert rule.update(4.98)  # stays stopped while it does not improve


def test_plateau_step_is_relative_to_the_best_but_never_below_tol_times_floor() -> None:
    # best 1, tol 0.1: the relative step is 0.1; with floor 10 the step is 0.1 * 10 = 1.
    relative = PlateauRule(tol=0.1, patience=1, floor=0.0)
    floored = PlateauRule(tol=0.1, patience=1, floor=10.0)
    for rule in (relative, floored):
        assert not rule.update(1.0)
    assert not relative.update(0.5)  # 0.5 < 1 - 0.1: improving
    assert floored.update(0.5)  # 0.5 > 1 - 1: stalled, patience 1 reached
    # A loss falling geometrically to zero stops under the floor, never without it.
    falling = PlateauRule(tol=0.1, patience=2, floor=1e-3)
    pure = PlateauRule(tol=0.1, patience=2, floor=0.0)
    stopped = None
    for i in range(60):
        loss = 0.5**i
        if falling.update(loss) and stopped is None:
            stopped = i
        assert not pure.update(loss)  # halving beats a 10% relative step every time
    # Stalls once a halving (0.5**i) is no more than 0.1 * 1e-3: 0.5**i <= 1e-4, i >= 14,
    # and stops patience=2 losses later.
    assert stopped == 15


def test_plateau_deterministic_overshoot_counts_as_moving() -> None:
    det = PlateauRule(tol=0.01, patience=2, floor=0.0, deterministic=True)
    sto = PlateauRule(tol=0.01, patience=2, floor=0.0)
    for rule in (det, sto):
        assert not rule.update(1.0)
    # 1.5 > 1 + 0.01: overshoot; moving when deterministic, stalled otherwise
    assert not det.update(1.5)
    assert det.stalled == 0
    assert not sto.update(1.5)
    assert sto.stalled == 1
    assert sto.update(1.5)
    assert not det.update(1.5)  # still overshooting
    # Within the step above the best is stalled for both.
    assert not det.update(1.005)
    assert det.update(1.005)
    assert det.best == 1.0  # an overshoot never becomes the best


def test_plateau_tol_below_the_resolution_acts_as_it() -> None:
    assert LOSS_RESOLUTION == 1e-13
    # A loss at its optimum wobbling by ~3e-15 relative (a few ulps of the sums it is computed
    # from), with tol=0 (deterministic: the overshoot rule must not take +3e-15 as moving).
    wobble = [1.0, 1.0 + 3e-15, 1.0 - 3e-15, 1.0 + 3e-15, 1.0 - 3e-15, 1.0]
    for tol in (0.0, 1e-16, LOSS_RESOLUTION):
        rule = PlateauRule(tol=tol, patience=3, floor=0.0, deterministic=True)
        stops = [rule.update(loss) for loss in wobble]
        assert stops == [False, False, False, True, True, True], tol
    # Changes of 1e-12 relative (10x the resolution) are still moving.
    rule = PlateauRule(tol=0.0, patience=2, floor=0.0, deterministic=True)
    for i in range(10):
        assert not rule.update(1.0 - i * 1e-12)  # improving each time
    assert not rule.update(1.0)  # overshoot by ~9e-12: moving
    assert rule.stalled == 0


# ----------------------------------------------------------------------------- early stopping


def test_early_stopping_tracks_the_best_and_stops_after_patience() -> None:
    early = EarlyStopping(tol=0.01, patience=3)
    assert not early.update(0.50, 1)  # first score: improving -> 0
    assert (early.best, early.best_epoch) == (0.50, 1)
    assert not early.update(0.60, 2)  # 0.60 > 0.50 + 0.01 -> 0
    assert not early.update(0.605, 3)  # a new best, but not by tol -> 1
    assert (early.best, early.best_epoch) == (0.605, 3)
    assert not early.update(0.55, 4)  # -> 2
    assert not early.update(0.615, 5)  # 0.615 > 0.60 + 0.01 (the last counted): reset -> 0
    assert (early.best, early.best_epoch, early.stalled) == (0.615, 5, 0)
    assert not early.update(0.62, 6)  # -> 1 (best 0.62, epoch 6)
    assert not early.update(0.0, 7)  # -> 2
    assert early.update(0.61, 8)  # -> 3 = patience
    assert (early.best, early.best_epoch) == (0.62, 6)


def test_early_stopping_with_zero_tol_needs_a_strict_improvement() -> None:
    early = EarlyStopping(tol=0.0, patience=2)
    assert not early.update(0.3, 1)
    assert not early.update(0.3, 2)  # equal: -> 1, and the best epoch stays the first
    assert early.best_epoch == 1
    assert early.update(0.2, 3)  # -> 2
    assert early.best == 0.3


# ----------------------------------------------------------------------------- state dicts


def _used_guards() -> list[Any]:
    div = DivergenceGuard(factor=50.0, stable_lr=0.3, monotone=True)
    for loss in (4.0, 3.0, 2.5):
        div.diverged(loss, lr=0.2)
    plateau = PlateauRule(tol=0.01, patience=4, floor=0.2, deterministic=True)
    for loss in (5.0, 4.0, 3.99, 3.98):
        plateau.update(loss)
    early = EarlyStopping(tol=0.001, patience=3)
    for epoch, score in enumerate((0.1, 0.4, 0.3), start=1):
        early.update(score, epoch)
    fresh = [DivergenceGuard(factor=2.0), PlateauRule(0.1, 2, 0.0), EarlyStopping(0.1, 2)]
    return [div, plateau, early, *fresh]


@pytest.mark.parametrize("index", range(6))
def test_state_dict_round_trips_through_the_constructor(index: int) -> None:
    guard = _used_guards()[index]
    sd = guard.state_dict()
    assert all(isinstance(v, (int, float, bool, type(None))) for v in sd.values())
    again = type(guard)(**json.loads(json.dumps(sd)))
    assert again == guard
    assert again is not guard


def test_restored_guards_continue_as_the_originals() -> None:
    div, plateau, early, *_ = _used_guards()
    div2 = DivergenceGuard(**div.state_dict())
    plateau2 = PlateauRule(**plateau.state_dict())
    early2 = EarlyStopping(**early.state_dict())
    for loss in (2.4, 2.6, 2.39, 1e9):
        assert div.diverged(loss, lr=0.5) == div2.diverged(loss, lr=0.5)
    for loss in (3.97, 3.0, 2.99, 2.985, 2.98, 2.975):
        assert plateau.update(loss) == plateau2.update(loss)
    for epoch, score in enumerate((0.4005, 0.2, 0.39, 0.41), start=4):
        assert early.update(score, epoch) == early2.update(score, epoch)
    assert (div, plateau, early) == (div2, plateau2, early2)
