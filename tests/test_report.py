"""gradfit.report: real image files, written atomically; clear errors."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gradfit.errors import DataError, GradfitError, ValidationError
from gradfit.report import plot_training

pytest.importorskip("matplotlib")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def data(n: int = 30, k: int = 2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y_true = rng.standard_normal((n, k)) * 10 + 50
    return y_true, y_true + rng.standard_normal((n, k))


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == PNG_MAGIC
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


def test_writes_a_png_with_one_panel_per_target(tmp_path: Path) -> None:
    y_true, y_pred = data(k=2)
    history = list(1e4 * np.exp(-np.arange(100) / 10) + 1.0)
    plot_training(tmp_path / "a.png", history, y_true, y_pred, ["apples", "oranges"])
    width2, height2 = png_size(tmp_path / "a.png")
    y_true, y_pred = data(k=5)
    plot_training(tmp_path / "b.png", history, y_true, y_pred, list("abcde"))
    width5, height5 = png_size(tmp_path / "b.png")
    y_true, y_pred = data(k=1)
    plot_training(tmp_path / "c.png", history, y_true, y_pred, ["y"])
    width1, height1 = png_size(tmp_path / "c.png")
    # Loss + 1 target: two panels; loss + 2: one row of three; loss + 5: two rows of three.
    assert width1 < width2 == width5
    assert height1 == height2 and height5 > 1.5 * height2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png", "c.png"]


def test_panel_titles_show_r2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from matplotlib.figure import Figure

    titles: list[str] = []
    original = Figure.savefig

    def spy(self: Any, *args: Any, **kwargs: Any) -> None:
        titles.extend(ax.get_title() for ax in self.axes if ax.get_visible())
        original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", spy)
    y_true = np.array([[1.0], [2.0], [3.0], [4.0]])
    y_pred = np.array([[1.0], [2.0], [3.0], [5.0]])  # R² = 1 - 1/5 = 0.8
    plot_training(tmp_path / "p.png", [3.0, 2.0, 1.0], y_true, y_pred, ["yield"])
    assert titles == ["training loss", "yield: R² = 0.8000"]


@pytest.mark.parametrize(
    "history",
    [[], [5.0], [1.0, 0.0], [float("nan"), float("inf")], [1e30, float("inf"), 1.0]],
)
def test_unusual_loss_histories(tmp_path: Path, history: list[float]) -> None:
    y_true, y_pred = data(k=1)
    plot_training(tmp_path / "p.png", history, y_true[:, 0], y_pred[:, 0], ["y"])
    png_size(tmp_path / "p.png")


def test_constant_target_and_many_points(tmp_path: Path) -> None:
    plot_training(tmp_path / "c.png", [1.0], np.ones((3, 1)), np.ones((3, 1)), ["c"])
    y_true, y_pred = data(n=50_000, k=1)
    plot_training(tmp_path / "big.png", [2.0, 1.0], y_true, y_pred, ["y"])
    png_size(tmp_path / "big.png")


@pytest.mark.parametrize(("suffix", "magic"), [(".svg", b"<?xml"), (".pdf", b"%PDF")])
def test_other_formats(tmp_path: Path, suffix: str, magic: bytes) -> None:
    y_true, y_pred = data(k=1)
    plot_training(tmp_path / f"p{suffix}", [1.0], y_true, y_pred, ["y"])
    assert (tmp_path / f"p{suffix}").read_bytes().startswith(magic)


def test_shape_and_name_errors(tmp_path: Path) -> None:
    y_true, y_pred = data(k=2)
    with pytest.raises(ValidationError, match="same shape"):
        plot_training(tmp_path / "p.png", [1.0], y_true, y_pred[:, :1], ["a", "b"])
    with pytest.raises(ValidationError, match="must name each of the 2 target"):
        plot_training(tmp_path / "p.png", [1.0], y_true, y_pred, ["a"])
    with pytest.raises(ValidationError, match="n >= 1"):
        plot_training(tmp_path / "p.png", [1.0], np.zeros((0, 1)), np.zeros((0, 1)), ["a"])
    assert list(tmp_path.iterdir()) == []


def test_unsupported_extension_and_missing_directory(tmp_path: Path) -> None:
    y_true, y_pred = data(k=1)
    with pytest.raises(DataError, match=r"p\.jpg: unsupported image type; use \.png"):
        plot_training(tmp_path / "p.jpg", [1.0], y_true, y_pred, ["y"])
    path = tmp_path / "missing" / "p.png"
    with pytest.raises(DataError, match=r"directory '.*missing' does not exist; create it first"):
        plot_training(path, [1.0], y_true, y_pred, ["y"])


def test_failed_render_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from matplotlib.figure import Figure

    old = tmp_path / "p.png"
    old.write_bytes(b"old")

    def failing_savefig(self: Any, fh: Any, **kwargs: Any) -> None:
        fh.write(PNG_MAGIC)
        raise RuntimeError("renderer exploded")

    monkeypatch.setattr(Figure, "savefig", failing_savefig)
    y_true, y_pred = data(k=1)
    with pytest.raises(RuntimeError, match="renderer exploded"):
        plot_training(old, [1.0], y_true, y_pred, ["y"])
    assert old.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["p.png"]


def test_without_matplotlib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(sys.modules):
        if name == "matplotlib" or name.startswith("matplotlib."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    y_true, y_pred = data(k=1)
    with pytest.raises(GradfitError) as exc:
        plot_training(tmp_path / "p.png", [1.0], y_true, y_pred, ["y"])
    assert str(exc.value) == "plotting needs matplotlib: pip install 'gradfit[plot]'"
    assert list(tmp_path.iterdir()) == []
