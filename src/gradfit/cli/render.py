"""Terminal rendering: number formats, plain tables, progress bars."""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["BytesProgress", "Progress", "fmt", "matrix", "table"]


def fmt(value: float, digits: int = 6) -> str:
    if not math.isfinite(value):
        return str(value)
    if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
        return f"{value:.{digits - 1}e}"
    return f"{value:.{digits}g}"


def printable(text: str) -> str:
    """``text`` with control characters other than newline and tab shown as ``?``: text from a
    file (a model's stored summary) never drives the terminal."""
    return "".join(c if c.isprintable() or c in "\n\t" else "?" for c in text)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def matrix(t: torch.Tensor) -> str:
    rows = t.reshape(t.shape[0], -1).tolist() if t.ndim > 1 else [t.tolist()]
    return "\n".join("    [" + ", ".join(f"{v:10.4f}" for v in row) + "]" for row in rows)


class Progress:
    """A tqdm bar over epochs, or nothing (quiet, or not a terminal)."""

    def __init__(self, total: int, enabled: bool, desc: str):
        self._bar: Any = None
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit="epoch", leave=False, file=sys.stderr)

    def update(self, loss: float) -> None:
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(loss=f"{loss:.4g}", refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class BytesProgress:
    """A tqdm bar over the bytes of a pass over files, with rows per second, or nothing. A new
    pass (bytes going back to 0) starts the bar again, counting passes in its description."""

    def __init__(self, enabled: bool, desc: str):
        self._enabled, self._desc = enabled, desc
        self._bar: Any = None
        self._done = 0
        self._passes = 0
        self._rows0 = 0

    def __call__(self, done: int, total: int, rows: int) -> None:
        if not self._enabled:
            return
        if self._bar is None or done < self._done:
            self.close()
            from tqdm import tqdm

            self._passes += 1
            self._bar = tqdm(
                total=total,
                desc=f"{self._desc} (pass {self._passes})",
                unit="B",
                unit_scale=True,
                leave=False,
                file=sys.stderr,
            )
            self._done = 0
        self._bar.update(done - self._done)
        self._done = done
        elapsed = self._bar.format_dict.get("elapsed") or 0.0
        if elapsed > 0:
            self._bar.set_postfix(rows=rows, rows_per_s=f"{rows / elapsed:,.0f}", refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
