"""The main job: `gradfit demo` runs the tutorial end to end, reproducibly, and its loss falls."""

from __future__ import annotations

import math
import re
import subprocess
import sys

import pytest
import torch

from gradfit.cli import main
from gradfit.demo import NEW_INPUT, run_demo
from gradfit.solvers.lstsq import least_squares
from gradfit.tutorial import scratch


def test_report_is_reproducible_and_seed_dependent() -> None:
    a, b = run_demo(seed=3, epochs=20), run_demo(seed=3, epochs=20)
    assert a.scratch_losses == b.scratch_losses
    assert a.builtin_last_batch_losses == b.builtin_last_batch_losses
    assert all(torch.equal(p.weight, q.weight) for p, q in zip(a.paths, b.paths, strict=True))
    c = run_demo(seed=4, epochs=20)
    assert c.scratch_losses != a.scratch_losses


def test_one_step_is_recomputed_and_lowers_the_loss() -> None:
    report = run_demo(seed=0, epochs=5)
    # The seed's text re-prints the old loss after the update; ours is recomputed: it must
    # differ from, and be below, the initial loss.
    assert report.loss_after_one_step < report.initial_loss
    # ...and equal a fresh computation from the same start.
    data = report.data
    w = report.initial_weight - 1e-5 * report.weight_grad
    b = report.initial_bias - 1e-5 * report.bias_grad
    again = scratch.mse(scratch.model(data.data, w, b), data.target).item()
    assert again == pytest.approx(report.loss_after_one_step, rel=1e-6)  # float32 rounding


def test_gradients_are_the_analytic_ones() -> None:
    report = run_demo(seed=0, epochs=1)
    X, Y = report.data.data.double(), report.data.target.double()
    W, b = report.initial_weight.double(), report.initial_bias.double()
    E = X @ W.T + b - Y
    gW = 2 * E.T @ X / E.numel()
    # float32 autograd vs float64 formula: the gradient entries are ~1e4, float32 has ~7 digits.
    torch.testing.assert_close(report.weight_grad.double(), gW, rtol=1e-5, atol=1e-2)


def test_losses_fall_and_closed_form_is_the_optimum() -> None:
    report = run_demo(seed=0, epochs=100)
    assert report.scratch_losses[-1] < report.scratch_losses[0] / 10
    assert report.builtin_mean_losses[-1] < report.builtin_mean_losses[0] / 10
    names = [p.name for p in report.paths]
    assert names == ["from scratch", "built-ins", "closed form"]
    exact = report.paths[-1]
    assert exact.ratio_to_optimum == pytest.approx(1.0, abs=1e-12)
    assert all(p.ratio_to_optimum > 1.0 for p in report.paths[:2])
    # Facts measured on the 5-row set: prediction for [75, 63, 44] ~ [53.42, 67.12].
    assert exact.prediction == pytest.approx((53.42, 67.12), abs=0.006)
    ls = least_squares(report.data.data, report.data.target)
    new = torch.tensor(NEW_INPUT, dtype=torch.float64)
    assert exact.prediction == pytest.approx(tuple((ls.weight @ new + ls.bias).tolist()))


def test_five_rows_is_part_one_set() -> None:
    report = run_demo(seed=0, epochs=3, rows=5)
    assert report.data.data.shape == (5, 3)
    assert len(report.builtin_last_batch_losses) == 3


def test_cli_demo_prints_the_tutorial(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--epochs", "30", "--seed", "1"]) == 0
    text = capsys.readouterr().out
    epochs = re.findall(r"Epoch \[(\d+)/30\], Loss: ([0-9.]+)", text)
    # Part 1 and part 2 each print every 3rd epoch (epochs // 10) up to 30.
    assert [int(e) for e, _ in epochs] == list(range(3, 31, 3)) * 2
    assert all(math.isfinite(float(v)) for _, v in epochs)
    assert "loss recomputed with the new weights" in text
    for needle in ("from scratch", "built-ins", "closed form", "53.42", "67.12"):
        assert needle in text
    assert main(["demo", "--epochs", "30", "--seed", "1"]) == 0
    assert capsys.readouterr().out == text  # same seed, same output


def test_cli_demo_rejects_bad_flags(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["demo", "--lr", "-1"],
        ["demo", "--lr", "0"],
        ["demo", "--epochs", "0"],
        ["demo", "--rows", "7"],
    ):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        assert "error" in capsys.readouterr().err


@pytest.mark.parametrize("lr", ["1", "0.00012"])
def test_cli_demo_that_diverges_ends_with_one_error_line(
    capsys: pytest.CaptureFixture[str], lr: str
) -> None:
    # 1: the losses become nan; 1.2e-4, just above 2/L = 1.12e-4: they explode (~1e16).
    assert main(["demo", "--lr", lr, "--epochs", "50"]) == 2
    captured = capsys.readouterr()
    assert "Summary" in captured.out  # the run is still shown
    assert captured.err.count("\n") == 1, captured.err
    line = captured.err.rstrip("\n")
    assert line.startswith(f"gradfit: error: training diverged with --lr {float(lr):g} ")
    assert "largest stable learning rate for this data is about 1.12e-04" in line
    assert line.endswith("use --lr 1e-4 or smaller")


def test_stable_bound_in_the_message_is_two_over_l() -> None:
    from gradfit.solvers.stats import SufficientStats, hessian_lipschitz

    data = run_demo(seed=0, epochs=1).data
    X, Y = data.data.double(), data.target.double()
    bound = 2 / hessian_lipschitz(SufficientStats.compute(X, Y), True, 2)
    assert bound == pytest.approx(1.12e-4, rel=0.01)
    stable = run_demo(seed=0, epochs=100, lr=1e-4)
    assert all(math.isfinite(p.loss) and p.loss < stable.initial_loss for p in stable.paths)


def test_cli_demo_default_is_unchanged_and_succeeds(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--epochs", "20"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("seed", ["99999999999999999999", str(2**63), "-1"])
def test_cli_demo_seed_out_of_range_is_one_usage_line(
    capsys: pytest.CaptureFixture[str], seed: str
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--seed", seed])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("gradfit: error: argument --seed: expected an integer from 0 to ")
    assert err.rstrip().endswith("(see 'gradfit demo --help')")


@pytest.mark.slow
def test_console_script_runs_as_module() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "gradfit", "demo", "--epochs", "10"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "Epoch [10/10]" in proc.stdout
