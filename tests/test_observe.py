"""Watching a fit: the epoch observers' seam (gradfit.observers), TensorBoard's scalars and the
log lines of batch jobs (gradfit.cli.render.LogLines).

References: TensorBoard's scalars are read back from the event files
(EventAccumulator) and compared with the fit's own loss history, learning rates and validation
scores: TensorBoard stores a scalar as float32, so each value must equal the float32 rounding
of the fit's float64 value exactly (no tolerance). The log lines are checked against a fake
clock: their cadence and their text, character for character.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cli_helpers import gradfit_cli, ok, one_error_line

import gradfit
from gradfit.cli.render import LogLines, duration
from gradfit.errors import DataError, GradfitError, ValidationError
from gradfit.estimator import GradientDescentRegressor
from gradfit.observers import TAGS, Observers
from gradfit.persistence import load_model
from gradfit.solvers.config import SolverConfig
from gradfit.solvers.interfaces import EpochInfo

N = 3000


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(7)
    X = rng.normal(size=(N, 3)) * [1.0, 4.0, 0.3] + [10.0, -3.0, 2.0]
    y = X @ [1.5, -0.5, 2.0] + 3.0 + rng.normal(size=N) * 0.5
    path = tmp_path_factory.mktemp("observe") / "d.parquet"
    table = pa.table({"x1": X[:, 0], "x2": X[:, 1], "x3": X[:, 2], "y": y})
    pq.write_table(table, path, row_group_size=500)
    return path


def scalars(directory: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of the event files in ``directory``: tag -> [(step, value)]."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = list(directory.glob("events.out.tfevents.*"))
    assert len(files) == 1, files
    acc = EventAccumulator(str(files[0]), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def f32(values: Any) -> list[float]:
    return [float(v) for v in np.asarray(values, dtype=np.float64).astype(np.float32)]


# ----------------------------------------------------------------------------- TensorBoard


CASES = [
    pytest.param("gd", False, {}, id="gd-memory"),
    pytest.param("gd", True, {}, id="gd-streamed"),
    pytest.param("sgd", False, {"batch_size": 64}, id="sgd-memory"),
    pytest.param("sgd", True, {"batch_size": 64}, id="sgd-streamed"),
    pytest.param(
        "sgd",
        False,
        {"batch_size": 64, "early_stopping": True, "validation_fraction": 0.2},
        id="sgd-memory-validation",
    ),
    pytest.param(
        "sgd",
        True,
        {"batch_size": 64, "early_stopping": True, "validation_fraction": 0.2},
        id="sgd-streamed-validation",
    ),
    pytest.param("gd", False, {"learning_rate": 0.05, "schedule": "invscaling"}, id="gd-schedule"),
]


@pytest.mark.parametrize(("solver", "stream", "settings"), CASES)
def test_tensorboard_scalars_are_the_fits_own(
    tmp_path: Path, data: Path, solver: str, stream: bool, settings: dict[str, Any]
) -> None:
    seen: list[EpochInfo] = []
    config = SolverConfig(solver=solver, max_epochs=40, **settings)
    board = tmp_path / "runs" / "a"  # created, parents too
    report = gradfit.fit(
        data,
        ["y"],
        config=config,
        stream=stream,
        batch_rows=700,
        seed=3,
        callback=seen.append,  # the caller's callback still sees every epoch
        tensorboard_dir=board,
    )
    history = report.result.loss_curve
    assert len(history) >= 5 and [i.epoch for i in seen] == list(range(1, len(history) + 1))
    got = scalars(board)
    steps = list(range(1, len(history) + 1))
    assert [s for s, _ in got[TAGS["loss"]]] == steps
    assert [v for _, v in got[TAGS["loss"]]] == f32(history)
    assert [v for _, v in got[TAGS["learning_rate"]]] == f32([i.learning_rate for i in seen])
    if settings.get("schedule"):  # the scheduled rate, epoch by epoch
        assert len({v for _, v in got[TAGS["learning_rate"]]}) == len(steps)
    speeds = got[TAGS["rows_per_second"]]
    assert [s for s, _ in speeds] == steps and all(v > 0 for _, v in speeds)
    if config.early_stopping:
        scores = report.result.validation_scores
        assert scores is not None
        assert [v for _, v in got[TAGS["validation_score"]]] == f32(scores)
    else:
        assert TAGS["validation_score"] not in got


def test_epoch_info_counts_the_training_rows_and_times_the_epoch(data: Path) -> None:
    seen: list[EpochInfo] = []
    config = SolverConfig(solver="sgd", max_epochs=3, tol=None, batch_size=100)
    config_es = SolverConfig(
        solver="gd", max_epochs=3, early_stopping=True, validation_fraction=0.2
    )
    gradfit.fit(data, ["y"], config=config, callback=seen.append)
    assert [i.rows for i in seen] == [N] * 3
    assert all(i.seconds > 0 and i.rows_per_second == N / i.seconds for i in seen)
    seen.clear()
    gradfit.fit(data, ["y"], config=config_es, callback=seen.append, stream=True)
    held = N - seen[0].rows  # the rows held out are not stepped on
    assert 0.1 * N < held < 0.3 * N and all(i.validation_score is not None for i in seen)
    assert EpochInfo(1, 1, 0.0, 0.1).rows_per_second is None  # not timed


def test_tensorboard_is_refused_before_reading_when_it_cannot_be_used(
    tmp_path: Path, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = tmp_path / "notes.txt"
    taken.write_text("mine\n")
    with pytest.raises(DataError, match=r"notes\.txt: exists and is not a directory"):
        gradfit.fit(data, ["y"], tensorboard_dir=taken)
    assert taken.read_text() == "mine\n"  # never written into
    with pytest.raises(ValidationError, match="solver 'lstsq' has none"):
        lstsq = SolverConfig(solver="lstsq")
        gradfit.fit(data, ["y"], config=lstsq, tensorboard_dir=tmp_path / "t")
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if not installed
    with pytest.raises(GradfitError, match=re.escape("pip install 'gradfit[tensorboard]'")):
        gradfit.fit(tmp_path / "no such file.csv", ["y"], tensorboard_dir=tmp_path / "t")
    assert not (tmp_path / "t").exists()


def test_tensorboard_adds_its_own_file_beside_others(tmp_path: Path, data: Path) -> None:
    board = tmp_path / "board"
    board.mkdir()
    (board / "README").write_text("runs of the week\n")
    gradfit.fit(data, ["y"], config=SolverConfig(max_epochs=5), tensorboard_dir=board)
    assert (board / "README").read_text() == "runs of the week\n"
    assert len(scalars(board)[TAGS["loss"]]) == 5


def test_the_estimator_writes_its_epochs_too(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    y = X @ [1.0, -2.0, 0.5] + rng.normal(size=400) * 0.1
    board = tmp_path / "est"
    reg = GradientDescentRegressor(
        solver="sgd", max_epochs=12, tol=None, random_state=0, tensorboard_dir=board
    ).fit(X, y)
    assert reg.get_params()["tensorboard_dir"] == board
    assert [v for _, v in scalars(board)[TAGS["loss"]]] == f32(reg.loss_curve_)
    with pytest.raises(ValidationError, match="solver 'lstsq' has none"):
        GradientDescentRegressor(solver="lstsq", tensorboard_dir=board).fit(X, y)


def test_cli_tensorboard(capsys: pytest.CaptureFixture[str], tmp_path: Path, data: Path) -> None:
    model, board = tmp_path / "m.safetensors", tmp_path / "tb"
    ok(capsys, "fit", data, "--target", "y", "--solver", "sgd", "--batch-size", "64",
       "--epochs", "30", "--stream", "--out", model, "--tensorboard", board, "--quiet")  # fmt: skip
    history = load_model(model).loss_history
    assert [v for _, v in scalars(board)[TAGS["loss"]]] == f32(history)


def test_cli_tensorboard_errors_are_one_line_before_the_fit(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    data: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = tmp_path / "m.safetensors"
    base = ["fit", data, "--target", "y", "--out", model]
    line = one_error_line(gradfit_cli(capsys, *base, "--tensorboard", data))
    assert "exists and is not a directory" in line
    line = one_error_line(gradfit_cli(capsys, *base, "--solver", "lstsq", "--tensorboard", "t"))
    assert "use gd or sgd" in line
    line = one_error_line(gradfit_cli(capsys, *base, "--alpha", "cv", "--tensorboard", "t"))
    assert "--alpha cv has none" in line
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    line = one_error_line(gradfit_cli(capsys, *base, "--tensorboard", tmp_path / "tb"))
    assert line.endswith(
        "needs the tensorboard package, an optional extra: pip install 'gradfit[tensorboard]' "
        "(or leave out --tensorboard)"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written, no directory


# ----------------------------------------------------------------------------- the seam


def test_observers_hand_each_epoch_to_each_and_close_them_all() -> None:
    calls: list[str] = []

    class Watcher:
        def __init__(self, name: str, fail: bool = False) -> None:
            self.name, self.fail = name, fail

        def __call__(self, info: EpochInfo) -> None:
            calls.append(f"{self.name}{info.epoch}")

        def close(self) -> None:
            calls.append(f"{self.name} closed")
            if self.fail:
                raise OSError("disk full")

    watch = Observers(Watcher("a", fail=True), None, lambda i: calls.append("f"), Watcher("b"))
    watch(EpochInfo(1, 2, 1.0, 0.1))
    with pytest.raises(OSError, match="disk full"):
        watch.close()
    assert calls == ["a1", "f", "b1", "a closed", "b closed"]


# ----------------------------------------------------------------------------- log lines


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def info(epoch: int, loss: float = 0.25, score: float | None = None) -> EpochInfo:
    return EpochInfo(epoch, 100, loss, 0.1, score, rows=20_000, seconds=0.5)


def test_log_lines_first_then_every_period_then_the_last() -> None:
    clock, out = Clock(), io.StringIO()
    lines = LogLines(True, 30.0, 100, "fit sgd", file=out, clock=clock)
    for epoch in range(1, 11):  # an epoch every 8 s: lines at 0, 32 (epoch 5), 64 (epoch 9)
        lines(info(epoch, loss=1.0 / epoch))
        clock.now += 8.0
    lines.close()  # at 80 s
    assert out.getvalue().splitlines() == [
        "gradfit: fit sgd: epoch 1/100, loss 1, lr 0.1, 40,000 rows/s, at most 50s left",
        "gradfit: fit sgd: epoch 5/100, loss 0.2, lr 0.1, 40,000 rows/s, at most 48s left",
        "gradfit: fit sgd: epoch 9/100, loss 0.1111, lr 0.1, 40,000 rows/s, at most 46s left",
        "gradfit: fit sgd: ended at epoch 10/100, loss 0.1, lr 0.1, 40,000 rows/s, 1m20s in all",
    ]


def test_log_lines_show_validation_and_reading_and_say_nothing_when_off() -> None:
    clock, out = Clock(), io.StringIO()
    lines = LogLines(True, 10.0, 100, "fit gd", file=out, clock=clock)
    clock.now += 4.0
    lines.reading(1_000_000, 4_000_000, 50_000)  # before `every` seconds: not yet
    clock.now += 8.0
    lines.reading(2_000_000, 4_000_000, 100_000)  # 12 s: written (the rate from the first)
    clock.now += 3.0
    lines.reading(4_000_000, 4_000_000, 200_000)  # kept for later, then replaced
    lines(info(1, score=0.875))  # the first epoch: at once
    clock.now += 3.0
    lines(info(2, score=0.875))  # kept for later
    clock.now += 8.0
    lines.reading(1_000, 4_000_000, 50)  # a new pass, but the epoch's line goes first
    lines.close()
    assert out.getvalue().splitlines() == [
        "gradfit: fit gd: reading (pass 1): 50% of 4 MB, 100,000 rows, 6,250 rows/s, "
        "about 16s left in this pass",
        "gradfit: fit gd: epoch 1/100, loss 0.25, lr 0.1, validation R2 0.875, 40,000 rows/s, "
        "at most 50s left",
        "gradfit: fit gd: epoch 2/100, loss 0.25, lr 0.1, validation R2 0.875, 40,000 rows/s, "
        "at most 49s left",
        "gradfit: fit gd: ended at epoch 2/100, loss 0.25, lr 0.1, validation R2 0.875, "
        "40,000 rows/s, 26s in all",
    ]
    for off in (LogLines(False, 0.0, 5, "fit gd", file=out), LogLines(True, 0.0, 5, "x", file=out)):
        out.seek(0)
        out.truncate()
        if off.enabled:
            off.drop()  # a failed fit: its error line says why
        off(info(1))
        off.reading(1, 2, 3)
        off.close()
        assert out.getvalue() == ""


def test_durations() -> None:
    assert [duration(s) for s in (0.04, 9.9, 42.4, 185, 7380, 1e6)] == [
        "0.0s", "9.9s", "42s", "3m05s", "2h03m", "277h46m"
    ]  # fmt: skip


def test_log_every_and_quiet_on_the_command_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, data: Path
) -> None:
    base = ["fit", data, "--target", "y", "--out", tmp_path / "m.safetensors", "--epochs", "20"]
    run = ok(capsys, *base, "--tol", "none", "--log-every", "0")  # a line per epoch
    assert len(run.log.splitlines()) == 21
    pattern = r"gradfit: fit gd: epoch \d+/20, loss [\d.e+-]+, lr [\d.e+-]+, [\d,]+ rows/s"
    assert all(re.match(pattern, line) for line in run.log.splitlines()[:-1])
    assert ok(capsys, *base, "--quiet").log == ""
    line = one_error_line(gradfit_cli(capsys, *base, "--log-every", "-1"))
    assert "--log-every" in line


# ----------------------------------------------------------------------------- processes


def _env() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    env["OMP_NUM_THREADS"] = "1"
    return env


@pytest.mark.slow
def test_a_batch_job_logs_lines_to_a_non_terminal_stderr(tmp_path: Path, data: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "gradfit", "fit", data, "--target", "y", "--solver", "sgd",
         "--batch-size", "16", "--epochs", "60", "--tol", "none", "--stream", "--batch-rows", "200",
         "--out", tmp_path / "m.safetensors", "--log-every", "0.1"],
        env=_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    log = [line for line in run.stderr.splitlines() if line.startswith("gradfit: fit sgd: ")]
    assert len(log) >= 4, run.stderr  # the first, some every 0.1 s, the last
    assert any(line.startswith("gradfit: fit sgd: epoch 1/60, loss ") for line in log)
    assert log[-1].startswith("gradfit: fit sgd: ended at epoch 60/60, loss ")
    epochs = [line for line in log if re.match(r"gradfit: fit sgd: epoch \d+/60, ", line)]
    assert len(epochs) >= 2 and all(" rows/s" in line for line in epochs)
    assert all(" left" in line for line in epochs if "epoch 60/" not in line), log


@pytest.mark.slow
def test_torchrun_writes_tensorboard_and_log_lines_from_rank_0_only(
    tmp_path: Path, data: Path
) -> None:
    model, board = tmp_path / "m.safetensors", tmp_path / "tb"
    run = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "gradfit", "fit", data, "--target", "y", "--solver", "sgd", "--batch-size", "256",
         "--epochs", "8", "--out", model, "--batch-rows", "500", "--tensorboard", board,
         "--log-every", "0"],
        env=_env(), capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    history = load_model(model).loss_history
    got = scalars(board)  # exactly one event file
    assert [v for _, v in got[TAGS["loss"]]] == f32(history)
    ended = [line for line in run.stderr.splitlines() if "gradfit: fit sgd: ended at" in line]
    assert len(ended) == 1, run.stderr[-2000:]
    epochs = [line for line in run.stderr.splitlines() if "gradfit: fit sgd: epoch " in line]
    assert len(epochs) == len(history), run.stderr[-2000:]
