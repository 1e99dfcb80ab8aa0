"""Bad model files given to `info`, `predict` and `evaluate` (missing, truncated, a pickle, a
torch.save archive, text, random bytes, a newer format, a directory): one line, and nothing
unpickled."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from cli_helpers import SideEffect, fit_model, rewrite_document, user_error

from gradfit.persistence import FORMAT_VERSION


def make_bad_model(kind: str, path: Path, good: Path, marker: Path) -> tuple[str, ...]:
    """Write a bad model file of ``kind`` at ``path``; return what the message must say."""
    if kind == "missing":
        return ("no such model file; check the path",)
    if kind == "truncated":
        data = good.read_bytes()
        path.write_bytes(data[: len(data) - 7])
        return ("truncated", "save the model again")
    if kind == "pickle":
        path.write_bytes(pickle.dumps(SideEffect(marker), protocol=4))
        return ("not a gradfit model file", "Python pickle", "never unpickles")
    if kind == "torch.save":
        torch.save({"weight": torch.ones(1, 2), "evil": SideEffect(marker)}, path)
        return ("ZIP archive such as torch.save writes", "never unpickles")
    if kind == "text":
        path.write_text("weight,bias\n1,2\n", encoding="utf-8")
        return ("not a gradfit model file (it looks like a text file)",)
    if kind == "random":
        path.write_bytes(bytes(range(7, 255)) * 3)
        return ("not a safetensors model file",)
    if kind == "future":
        path.write_bytes(good.read_bytes())
        rewrite_document(path, format_version=FORMAT_VERSION + 1)
        return (f"written by a newer gradfit (format version {FORMAT_VERSION + 1}", "upgrade")
    if kind == "directory":
        path.mkdir()
        return ("is not a regular file (a directory); give a model file",)
    raise AssertionError(kind)


BAD_MODELS = ["missing", "truncated", "pickle", "torch.save", "text", "random", "future"]


@pytest.mark.parametrize("kind", [*BAD_MODELS, "directory"])
@pytest.mark.parametrize("command", ["info", "predict", "evaluate"])
def test_bad_model_file(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    out_dir: Path,
    train_csv: Path,
    kind: str,
    command: str,
) -> None:
    good = fit_model(capsys, train_csv, tmp_path / "good.safetensors", "--solver", "lstsq")
    path, marker = tmp_path / "evil.safetensors", tmp_path / "unpickled"
    says = make_bad_model(kind, path, good, marker)
    argv: list[str | Path] = [command, path]
    if command != "info":
        argv.append(train_csv)
    if command == "predict":
        argv += ["--out", out_dir / "p.csv"]
    line = user_error(capsys, out_dir, *argv, says=says)
    assert line.startswith(f"gradfit: error: {path}: ")
    assert not marker.exists()


def test_pickle_payload_really_has_a_side_effect(tmp_path: Path) -> None:
    """The canary of the test above can fail: unpickling it does create the marker."""
    pickle.loads(pickle.dumps(SideEffect(tmp_path / "control"), protocol=4))
    assert (tmp_path / "control").is_dir()
