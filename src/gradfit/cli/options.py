"""The command line's argument parser and option types: every usage error is one line."""

from __future__ import annotations

import argparse
import math
import os
import re
from typing import NoReturn

from gradfit.cli.render import escape
from gradfit.solvers.config import MAX_COUNT, MAX_LEARNING_RATE

__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_COUNT",
    "MAX_SEED",
    "MAX_TIMEOUT",
    "OneLineParser",
    "byte_size",
    "launched_rank",
    "learning_rate",
    "non_negative_float",
    "positive_int",
    "seed",
    "srun_without_torchrun",
    "timeout_seconds",
    "unit_fraction",
    "unit_interval",
]

MAX_SEED = MAX_COUNT  # torch.manual_seed and numpy accept up to a signed 64-bit integer
MAX_TIMEOUT = 7 * 24 * 3600.0  # --dist-timeout: one week (datetime.timedelta overflows ~1e14 s)
# --dist-timeout's default: gradfit.distributed.DEFAULT_TIMEOUT, the same number (not imported:
# torch; tests/test_startup.py holds them equal).
DEFAULT_TIMEOUT = 300.0


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr and exit code 2, e.g.
    ``gradfit: error: argument --epochs: expected a positive integer, got '0' (see 'gradfit
    fit --help')``; used for the main parser and every subcommand's parser."""

    def error(self, message: str) -> NoReturn:
        if launched_rank():  # under torchrun, rank 0 alone says it (every rank exits 2)
            self.exit(2)
        text = _LONG_WORD.sub(_shortened, escape(message))
        self.exit(2, f"gradfit: error: {text} (see '{escape(self.prog)} --help')\n")


def launched_rank() -> int:
    """This process's rank when launched as one of several (torchrun), else 0."""
    try:
        if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
            return 0
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def srun_without_torchrun(environ: dict[str, str] | None = None) -> str | None:
    """The advice when Slurm's ``srun`` started several tasks that are not one group (no
    ``RANK``/``WORLD_SIZE``: no torchrun), each of which would fit the whole data alone; None
    otherwise."""
    env = os.environ if environ is None else environ
    try:
        tasks = int(env.get("SLURM_NTASKS", "1"))
    except ValueError:
        return None
    if tasks <= 1 or "SLURM_PROCID" not in env or "RANK" in env or "WORLD_SIZE" in env:
        return None
    return (
        f"started by srun as one of {tasks} tasks without torchrun: each task would run the "
        "whole command alone; run one task per node that starts torchrun (srun "
        "--ntasks-per-node=1 torchrun --nnodes $SLURM_NNODES --nproc-per-node N --rdzv-backend "
        "c10d --rdzv-endpoint HEAD:29500 -m gradfit fit ...: the README's Slurm example), or "
        "srun --ntasks 1"
    )


_LONG_WORD = re.compile(r"\S{80,}")


def _shortened(match: re.Match[str]) -> str:
    """A very long value in a usage error (10**400 written out) cut short."""
    word = match.group()
    return f"{word[:30]}... ({len(word)} characters)"


def _number(text: str, expected: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def _in_range(text: str, expected: str, low: float, high: float, open_high: bool) -> float:
    value = _number(text, expected)
    if value < low or value > high or (open_high and value == high):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def learning_rate(text: str) -> float:
    """argparse type: a learning rate, a number above 0 and up to
    :data:`~gradfit.solvers.config.MAX_LEARNING_RATE` (demo --lr; fit --lr adds 'auto')."""
    expected = f"a positive number up to {MAX_LEARNING_RATE:g}"
    value = _number(text, expected)
    if not 0 < value <= MAX_LEARNING_RATE:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0 (--tol)."""
    return _in_range(text, "a number >= 0", 0.0, math.inf, open_high=False)


def unit_interval(text: str) -> float:
    """argparse type: a number in [0, 1] (--l1-ratio)."""
    return _in_range(text, "a number from 0 to 1", 0.0, 1.0, open_high=False)


def unit_fraction(text: str) -> float:
    """argparse type: a number in [0, 1) (--momentum)."""
    return _in_range(text, "a number from 0 up to, not including, 1", 0.0, 1.0, open_high=True)


def confidence_level(text: str) -> float:
    """argparse type: a number strictly between 0 and 1 (--level)."""
    value = _number(text, "a number between 0 and 1, such as 0.95")
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(
            f"expected a number between 0 and 1, such as 0.95, got {text!r}"
        )
    return value


def _integer(text: str, expected: str, low: int, high: int) -> int:
    """``text`` as an integer from ``low`` to ``high``, or argparse's one-line refusal."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer from 1 to :data:`MAX_COUNT` (2**63 - 1)."""
    return _integer(text, "a positive integer up to 2**63 - 1", 1, MAX_COUNT)


def seed(text: str) -> int:
    """argparse type: a random seed, an integer in [0, 2**63)."""
    return _integer(text, f"an integer from 0 to {MAX_SEED} (2**63 - 1)", 0, MAX_SEED)


def timeout_seconds(text: str) -> float:
    """argparse type: a number of seconds from 0.001 to :data:`MAX_TIMEOUT` (one week)
    (--dist-timeout; ``datetime.timedelta`` and torch's milliseconds overflow far above)."""
    expected = f"a number of seconds from 0.001 to {MAX_TIMEOUT:.0f} (one week)"
    value = _number(text, expected)
    if not 0.001 <= value <= MAX_TIMEOUT:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def byte_size(text: str) -> int:
    """argparse type: a size in bytes, with an optional K, M, G or T suffix (powers of 1024):
    ``512M``, ``2G``, ``1048576``."""
    cleaned = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = cleaned[-1:] if cleaned[-1:] in _UNITS and cleaned[-1:] != "" else ""
    number = cleaned[: len(cleaned) - len(unit)]
    try:
        value = float(number) * _UNITS[unit]
    except ValueError:
        value = -1.0
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(
            f"expected a size such as 512M or 2G, got {text!r}"
        ) from None
    return int(value)
