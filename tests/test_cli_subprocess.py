"""`gradfit` in a real process: no traceback and nothing on stdout for errors, a quiet stderr
on success (but for a fit's progress lines: stderr is not a terminal here)."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import (
    REGION_NOTE,
    TARGETS,
    SideEffect,
    new_data,
    read_csv_floats,
    split_log,
    write_csv,
)

from gradfit.persistence import load_model


def run_gradfit(*argv: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gradfit", *map(str, argv)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        start_new_session=True,  # no controlling terminal
        check=False,
    )


@pytest.mark.slow
def test_subprocess_fit_and_predict_success(tmp_path: Path, train_csv: Path) -> None:
    done = run_gradfit(
        "fit", train_csv, "--target", "apples,oranges", "--out", "m.safetensors", cwd=tmp_path
    )
    err, log = split_log(done.stderr)
    assert (done.returncode, err) == (0, REGION_NOTE)
    assert log.startswith("gradfit: fit gd: epoch 1/1000, ") and "ended at epoch" in log
    assert "model written to m.safetensors" in done.stdout
    X, columns = new_data()
    write_csv(tmp_path / "new.csv", columns)
    done = run_gradfit("predict", "m.safetensors", "new.csv", "--keep", "id", cwd=tmp_path)
    assert (done.returncode, done.stderr) == (0, "")
    header, got = read_csv_floats(done.stdout)
    assert header == ["id", *TARGETS]
    expected = load_model(tmp_path / "m.safetensors").predict(torch.from_numpy(X)).numpy()
    np.testing.assert_array_equal(np.array([float(v) for v in got["apples"]]), expected[:, 0])


@pytest.mark.slow
@pytest.mark.parametrize("case", ["bad-cell", "pickle", "diverges"])
def test_subprocess_error_is_one_line(tmp_path: Path, case: str) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    marker = tmp_path / "unpickled"
    if case == "bad-cell":
        (tmp_path / "d.csv").write_text("a,y\n1,2\n2,x\n3,4\n", encoding="utf-8")
        argv: list[str | Path] = ["fit", "d.csv", "--target", "y", "--out", out_dir / "m"]
        says = "d.csv: column 'y', row 2: 'x' is not a number"
    elif case == "pickle":
        (tmp_path / "evil.safetensors").write_bytes(pickle.dumps(SideEffect(marker)))
        argv = ["info", "evil.safetensors"]
        says = "evil.safetensors: not a gradfit model file (it looks like a Python pickle"
    else:
        argv = ["fit", "crops", "--target", "apples", "--solver", "gd", "--no-standardize"]
        argv += ["--lr", "1", "--out", out_dir / "m"]
        says = "crops: training diverged"
    done = run_gradfit(*argv, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"gradfit: error: {says}")
    assert list(out_dir.iterdir()) == []
    assert not marker.exists()
