"""Terminal rendering: number formats, plain tables, progress bars."""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # not imported: `gradfit --help` does not wait for torch
    import torch

__all__ = ["BytesProgress", "Progress", "escape", "escape_report", "fmt", "matrix", "table"]


def fmt(value: float, digits: int = 6) -> str:
    if not math.isfinite(value):
        return str(value)
    if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
        return f"{value:.{digits - 1}e}"
    return f"{value:.{digits}g}"


def escape(text: object, keep: str = "") -> str:
    """``text`` made safe for a terminal: every character that is not printable is shown as its
    escape, as ``repr`` writes it (ESC as ``\\x1b``, a newline as ``\\n``, U+202E as
    ``\\u202e``), so user-supplied text (column names, paths, cell values, names stored in a
    model file) can neither drive the terminal nor forge lines.

    Not printable are the control characters (C0, DEL, C1 such as the CSI ``\\x9b``), the format
    characters (bidi overrides and isolates U+202A-202E, U+2066-2069, zero-width characters),
    the line and paragraph separators U+2028/9, other separators than the space, and lone
    surrogates (undecodable bytes of a file name). Characters in ``keep`` (e.g. ``"\\n\\t"`` for
    a multi-line report) are left as they are. Every line the command line writes to the
    terminal goes through this function; its result is printable, so it is idempotent.

    >>> escape("a\\x1b[2Jb\\nc\\u202e")
    'a\\\\x1b[2Jb\\\\nc\\\\u202e'
    """
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in keep else repr(c)[1:-1] for c in text)


def escape_report(text: str, names: Sequence[str]) -> str:
    """A multi-line report (an inference summary) made safe: each of ``names`` (feature and
    target names, which the report shows raw) is replaced by its :func:`escape`, so that a
    newline in a name cannot forge a line; then every other unprintable character but the
    report's own newlines and tabs is escaped. (A name of blanks and control characters only
    is not looked for: it could match the report's own layout.)"""
    unsafe = {
        n
        for n in names
        if not n.isprintable() and any(c.isprintable() and not c.isspace() for c in n)
    }
    for name in sorted(unsafe, key=len, reverse=True):
        text = text.replace(name, escape(name))
    return escape(text, keep="\n\t")


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain text table: the first column left-aligned, the others right-aligned. Every
    header and cell goes through :func:`escape` (names come from the user's files)."""
    headers = [escape(h) for h in headers]
    rows = [[escape(c) for c in r] for r in rows]
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
            self._passes += 1
            from tqdm import tqdm

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
