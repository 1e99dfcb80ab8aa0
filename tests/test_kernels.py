"""The engine's pure maths: the update kernel against ``torch.optim.SGD`` and the proximal map
against a hand computation (the sufficient statistics' maths: test_stats.py).

Tolerances: the kernel and ``torch.optim.SGD`` perform the same float64 operations, possibly
fused differently (``add(x, alpha=a)`` may use an FMA), so they agree to a couple of ulps per
step: ``rtol=1e-14`` over a few steps (values are O(1)).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gradfit.solvers.kernels import sgd_update, soft_threshold_

pytestmark = pytest.mark.usefixtures("one_thread")

KERNEL_RTOL = 1e-14  # same float64 operations, fused differently: a few ulps (see module doc)


# ----------------------------------------------------------------------------- sgd_update


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
@pytest.mark.parametrize(("momentum", "nesterov"), [(0.0, False), (0.9, False), (0.9, True)])
def test_sgd_update_equals_torch_optim_sgd_step_by_step(
    momentum: float, nesterov: bool, weight_decay: float
) -> None:
    rng = np.random.default_rng(11)
    lr = 0.07
    start = torch.from_numpy(rng.normal(size=(3, 5)))
    ours = start.clone()
    ref = start.clone().requires_grad_(True)
    opt = torch.optim.SGD(
        [ref],
        lr=lr,
        momentum=momentum,
        nesterov=nesterov,
        weight_decay=weight_decay,
        dampening=0.0,
        foreach=False,
    )
    velocity = None
    for _ in range(6):
        grad = torch.from_numpy(rng.normal(size=(3, 5)))
        before = grad.clone()
        velocity = sgd_update(
            ours,
            grad,
            velocity,
            lr=lr,
            momentum=momentum,
            nesterov=nesterov,
            weight_decay=weight_decay,
        )
        ref.grad = grad.clone()
        opt.step()
        assert torch.equal(grad, before)  # the gradient is never modified
        np.testing.assert_allclose(ours.numpy(), ref.detach().numpy(), rtol=KERNEL_RTOL)
        buffer = opt.state[ref].get("momentum_buffer")
        if momentum:
            assert velocity is not None and buffer is not None
            np.testing.assert_allclose(velocity.numpy(), buffer.numpy(), rtol=KERNEL_RTOL)
        else:
            assert velocity is None and buffer is None


def test_sgd_update_first_velocity_is_a_copy_of_the_gradient() -> None:
    # The velocity is created from grad on the first step and then updated in place: it must
    # not alias grad, or the next step would modify the caller's gradient.
    param = torch.tensor([1.0, -2.0], dtype=torch.float64)
    grad = torch.tensor([0.5, 0.25], dtype=torch.float64)
    velocity = sgd_update(param, grad, None, lr=0.1, momentum=0.9)
    assert velocity is not None and velocity.data_ptr() != grad.data_ptr()
    assert torch.equal(velocity, grad)
    # By hand: p = p - lr * g = [1 - 0.05, -2 - 0.025]
    assert param.tolist() == [1.0 - 0.1 * 0.5, -2.0 - 0.1 * 0.25]
    again = sgd_update(param, grad, velocity, lr=0.1, momentum=0.9)
    assert again is velocity  # updated in place
    assert grad.tolist() == [0.5, 0.25]
    assert velocity.tolist() == [0.9 * 0.5 + 0.5, 0.9 * 0.25 + 0.25]


def test_soft_threshold_by_hand_with_exact_zeros() -> None:
    # Threshold lr * l1 = 0.5 * 0.25 = 0.125 exactly (binary fractions, so the hand values are
    # exact): |p| <= 0.125 becomes an exact zero, the rest moves 0.125 towards zero.
    param = torch.tensor([0.5, -0.0625, 0.125, -0.125, -0.75, 0.0], dtype=torch.float64)
    sgd_update(param, torch.zeros_like(param), None, lr=0.5, l1=0.25)
    assert param.tolist() == [0.375, 0.0, 0.0, 0.0, -0.625, 0.0]
    assert int((param == 0).sum()) == 4

    # The functional form, in place, on values that are not binary fractions.
    values = [0.3, -0.05, 0.1, -0.8, 1e-17, 2.0]
    p = torch.tensor(values, dtype=torch.float64)
    out = soft_threshold_(p, 0.1)
    assert out is p
    assert p.tolist() == [math.copysign(max(abs(v) - 0.1, 0.0), v) for v in values]


@pytest.mark.parametrize(("momentum", "nesterov"), [(0.0, False), (0.9, False), (0.9, True)])
def test_proximal_step_follows_the_sgd_step(momentum: float, nesterov: bool) -> None:
    """With ``l1``: torch.optim.SGD's step, then the soft threshold at ``lr * l1`` computed by
    hand (NumPy), for several steps; the velocity ignores the proximal step."""
    rng = np.random.default_rng(12)
    lr, l1, wd = 0.05, 0.8, 0.1
    start = torch.from_numpy(rng.normal(scale=0.2, size=(2, 6)))
    ours = start.clone()
    ref = start.clone().requires_grad_(True)
    opt = torch.optim.SGD(
        [ref], lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=wd, foreach=False
    )
    velocity = None
    zeros = 0
    for _ in range(5):
        grad = torch.from_numpy(rng.normal(scale=0.5, size=(2, 6)))
        before = grad.clone()
        velocity = sgd_update(
            ours,
            grad,
            velocity,
            lr=lr,
            momentum=momentum,
            nesterov=nesterov,
            weight_decay=wd,
            l1=l1,
        )
        assert torch.equal(grad, before)
        ref.grad = grad.clone()
        opt.step()
        with torch.no_grad():
            p = ref.numpy()
            ref.copy_(torch.from_numpy(np.sign(p) * np.maximum(np.abs(p) - lr * l1, 0.0)))
        # Entries just above the threshold lose their relative accuracy to cancellation in
        # |p| - lr * l1: compare them absolutely, to a few ulps of the O(0.1) parameters.
        np.testing.assert_allclose(ours.numpy(), ref.detach().numpy(), rtol=KERNEL_RTOL, atol=1e-15)
        # Where the reference is exactly zero, so is the kernel's parameter.
        assert torch.equal(ours == 0, ref.detach() == 0)
        zeros += int((ours == 0).sum())
        if momentum:
            buffer = opt.state[ref]["momentum_buffer"]
            assert velocity is not None
            np.testing.assert_allclose(velocity.numpy(), buffer.numpy(), rtol=KERNEL_RTOL)
    assert zeros > 0  # the threshold (0.04) is large enough to zero some entries
