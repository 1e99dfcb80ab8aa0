"""Command-line options derived from :class:`~gradfit.solvers.config.SolverConfig`.

Every field of the configuration becomes one option (its ``metadata["cli"]`` gives the flag,
the kind of value and the help text; the default is the field's own), so the command line
covers every setting and cannot drift from the library. :func:`config_from_args` builds the
configuration back from the parsed options.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import MISSING, Field, fields
from typing import Any

from gradfit.cli.options import (
    learning_rate,
    non_negative_float,
    positive_int,
    unit_fraction,
    unit_interval,
)
from gradfit.solvers import registry
from gradfit.solvers.config import MAX_ALPHA, MAX_POWER_T, SCHEDULES, SolverConfig

__all__ = ["add_config_arguments", "config_fields", "config_from_args", "flag_of"]


def _learning_rate(text: str) -> float | str:
    if text == "auto":
        return "auto"
    try:
        return learning_rate(text)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(
            f"expected 'auto' or {str(exc).removeprefix('expected ')}"
        ) from None


def _tol(text: str) -> float | None:
    if text.lower() == "none":
        return None
    try:
        return non_negative_float(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected a number >= 0, got {text!r} ('none': no stopping rule)"
        ) from None


def _open_range(low: float, high: float, *, high_closed: bool) -> Callable[[str], float]:
    expected = f"a number above {low:g} and {'up to' if high_closed else 'below'} {high:g}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not (
            math.isfinite(value)
            and low < value
            and (value <= high if high_closed else value < high)
        ):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


def _closed_range(low: float, high: float, why: str = "") -> Callable[[str], float]:
    """A number from ``low`` to ``high``, both included (``why``: the reason for the bound)."""
    expected = f"a number from {low:g} to {high:g}{why}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not (math.isfinite(value) and low <= value <= high):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


def _above_one(text: str) -> float:
    return _open_range(1.0, math.inf, high_closed=False)(text)


# kind -> keyword arguments of ArgumentParser.add_argument
_KINDS: dict[str, Callable[[], dict[str, Any]]] = {
    "solver": lambda: {"choices": registry.names()},
    "schedule": lambda: {"choices": SCHEDULES},
    "lr": lambda: {"type": _learning_rate},
    "tol": lambda: {"type": _tol},
    "positive_int": lambda: {"type": positive_int},
    # --alpha: far beyond MAX_ALPHA every coefficient is 0 all the same, and the arithmetic
    # of the penalty overflows (see gradfit.solvers.config).
    "penalty": lambda: {
        "type": _closed_range(0.0, MAX_ALPHA, " (a larger penalty sets every coefficient to 0)")
    },
    "exponent": lambda: {"type": _closed_range(0.0, MAX_POWER_T)},
    "unit_interval": lambda: {"type": unit_interval},
    "unit_fraction": lambda: {"type": unit_fraction},
    "fraction": lambda: {"type": _open_range(0.0, 1.0, high_closed=False)},
    "decay_rate": lambda: {"type": _open_range(0.0, 1.0, high_closed=True)},
    "above_one": lambda: {"type": _above_one},
    "bool": lambda: {"action": argparse.BooleanOptionalAction},
}


def config_fields() -> tuple[Field[Any], ...]:
    """The configuration's fields, each of which has an option."""
    return tuple(fields(SolverConfig))


def flag_of(f: Field[Any]) -> str:
    """The option of a configuration field: ``--lr``, ``--epochs``, else ``--field-name``."""
    flag: str | None = f.metadata["cli"]["flag"]
    return flag if flag is not None else "--" + f.name.replace("_", "-")


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One option per configuration field, with the field's default."""
    group = parser.add_argument_group("solver settings")
    for f in config_fields():
        cli = f.metadata["cli"]
        default = f.default if f.default is not MISSING else None
        shown = "none" if default is None else default
        group.add_argument(
            flag_of(f),
            dest=f"config_{f.name}",
            default=default,
            help=f"{cli['help']} ({shown})",
            **_KINDS[cli["kind"]](),
        )


def config_from_args(args: argparse.Namespace) -> SolverConfig:
    """The validated configuration of the parsed options."""
    return SolverConfig(**{f.name: getattr(args, f"config_{f.name}") for f in config_fields()})
