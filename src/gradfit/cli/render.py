"""Terminal rendering: number formats, plain tables, progress bars, log lines."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:  # not imported: `gradfit --help` does not wait for torch
    import torch

if TYPE_CHECKING:
    from gradfit.solvers.interfaces import EpochInfo

__all__ = [
    "DEFAULT_LOG_EVERY",
    "BytesProgress",
    "LogLines",
    "Progress",
    "duration",
    "escape",
    "escape_report",
    "fmt",
    "matrix",
    "table",
]

DEFAULT_LOG_EVERY = 30.0  # seconds between two log lines (--log-every)


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

    def __call__(self, info: EpochInfo) -> None:
        """An epoch observer (:mod:`gradfit.observers`): one step of the bar."""
        self.update(info.loss)

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


def duration(seconds: float) -> str:
    """``seconds`` for a person: 0.4s, 42s, 3m05s, 2h03m."""
    if seconds < 9.95:
        return f"{max(0.0, seconds):.1f}s"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000:
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} TB"


class LogLines:
    """Progress as lines for a log (a batch job: stderr not a terminal), or nothing.

    An epoch observer (:mod:`gradfit.observers`) and a reading-progress callback
    (``reading(bytes done, total bytes, rows)``, a streamed fit's passes over its files). The
    first epoch gives a line at once (reading gives its first once ``every`` seconds have
    passed), then at most one line every ``every`` seconds of ``clock``; ``close()`` gives the
    last (so that a short job says how it ended), ``drop()`` nothing more (a failed fit: its
    error says why). An epoch's line::

        gradfit: fit gd: epoch 40/1000, loss 0.0123, lr 0.1, validation R2 0.95,
            1,234,567 rows/s, at most 2m03s left

    (one line): the time left is the epochs still allowed times the mean epoch so far (a fit
    that converges stops sooner); rows per second are the training rows of an epoch over its
    time. A pass's line: ``gradfit: fit gd: reading (pass 1): 45% of 2.1 GB, 300,000 rows,
    1,234,567 rows/s, about 20s left in this pass``."""

    def __init__(
        self,
        enabled: bool,
        every: float,
        max_epochs: int,
        desc: str,
        *,
        file: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.enabled, self.every, self.max_epochs, self.desc = enabled, every, max_epochs, desc
        self.file, self.clock = file, clock
        self.started = clock()
        self.pass_first = (self.started, 0, 0)  # (time, bytes, rows) at a pass's first batch
        self.last_written: float | None = None
        self.pending: str | None = None  # the latest line not written
        self.pending_epoch = False  # whether it is an epoch's
        self.epoch_seconds = 0.0
        self.epochs = 0
        self.last_epoch: EpochInfo | None = None
        self.done = -1
        self.passes = 0

    def __call__(self, info: EpochInfo) -> None:
        if not self.enabled:
            return
        self.epochs += 1
        self.epoch_seconds += info.seconds
        self.last_epoch = info
        line = self._epoch_line(info, final=False)
        if self.epochs == 1:  # the first epoch's line, whenever the last reading line was
            self._write(line)
            self.last_written = self.clock()
        else:
            self._offer(line, epoch=True)

    def reading(self, done: int, total: int, rows: int) -> None:
        if not self.enabled:
            return
        now = self.clock()
        if done < self.done or self.passes == 0:  # a new pass: measured from its first batch
            self.passes += 1
            self.pass_first = (now, done, rows)
        self.done = done
        t0, done0, rows0 = self.pass_first
        elapsed = now - t0
        parts = [f"{self.desc}: reading (pass {self.passes}):"]
        if total > 0:
            parts.append(f"{100 * done / total:.0f}% of {_bytes(total)},")
        parts.append(f"{rows:,} rows")
        if elapsed > 0 and done > done0:
            parts[-1] += ","
            parts.append(f"{(rows - rows0) / elapsed:,.0f} rows/s")
            if done < total:
                left = elapsed * (total - done) / (done - done0)
                parts[-1] += ","
                parts.append(f"about {duration(left)} left in this pass")
        self._offer(" ".join(parts), epoch=False)

    def drop(self) -> None:
        """Nothing more to write: the fit failed, and its error line says why."""
        self.enabled = False

    def close(self) -> None:
        if not self.enabled:
            return
        if self.last_epoch is not None:
            self.pending = self._epoch_line(self.last_epoch, final=True)
        if self.pending is not None:
            self._write(self.pending)

    def _epoch_line(self, info: EpochInfo, *, final: bool) -> str:
        parts = [
            f"epoch {info.epoch}/{self.max_epochs}",
            f"loss {fmt(info.loss, 4)}",
            f"lr {fmt(info.learning_rate, 3)}",
        ]
        if info.validation_score is not None:
            parts.append(f"validation R2 {fmt(info.validation_score, 4)}")
        if info.rows_per_second is not None:
            parts.append(f"{info.rows_per_second:,.0f} rows/s")
        if final:
            parts.append(f"{duration(self.clock() - self.started)} in all")
            return f"{self.desc}: ended at " + ", ".join(parts)
        left = self.max_epochs - info.epoch
        if left > 0 and self.epochs:
            parts.append(f"at most {duration(left * self.epoch_seconds / self.epochs)} left")
        return f"{self.desc}: " + ", ".join(parts)

    def _offer(self, line: str, *, epoch: bool) -> None:
        """Write ``line`` if the last line is ``every`` seconds old, else keep it for later. An
        epoch's line not yet written goes before any reading line (sgd's passes are epochs:
        the loss is what a log must show)."""
        if not epoch and self.pending is not None and self.pending_epoch:
            line, epoch = self.pending, True
        now = self.clock()
        last = self.last_written
        if last is None and not epoch:
            last = self.started  # the first line is an epoch's, or one after `every` seconds
        if last is None or now - last >= self.every:
            self._write(line)
            self.last_written = now
        else:
            self.pending, self.pending_epoch = line, epoch

    def _write(self, line: str) -> None:
        print(f"gradfit: {escape(line)}", file=self.file or sys.stderr, flush=True)
        self.pending, self.pending_epoch = None, False
