"""Command-line options derived from the fields of the settings dataclasses.

Every field of :class:`~gradfit.solvers.config.SolverConfig` and of the settings of
:mod:`gradfit.settings` (:class:`~gradfit.settings.ReadSettings`,
:class:`~gradfit.settings.RunSettings`, :class:`~gradfit.settings.CheckpointSettings`,
:class:`~gradfit.settings.ApplySettings`) becomes
one option: its ``metadata["cli"]`` (:func:`gradfit.settings.cli`) gives the flag, the kind of
value and the help text; the default is the field's own (shown in the help as the command line
writes it), so the command line covers every setting and cannot drift from the library.
:func:`settings_from_args` (for the solver's, :func:`config_from_args`) builds the settings
back from the parsed options.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, Field, fields
from typing import Any, TypeVar

from gradfit.cli.options import (
    byte_size,
    confidence_level,
    learning_rate,
    non_negative_float,
    positive_int,
    seed,
    unit_fraction,
    unit_interval,
)
from gradfit.settings import (
    ALL_COV_TYPES,
    APPLY_MISSING,
    CV_SELECTIONS,
    DEVICES,
    DTYPES,
    MAX_FOLDS,
    MISSING_CHOICES,
    UNKNOWN_LEVELS,
    ApplySettings,
    CheckpointSettings,
    ClusterSettings,
    CVSettings,
    DesignSettings,
    ReadSettings,
    RunSettings,
    WeightSettings,
    format_size,
)
from gradfit.solvers import registry
from gradfit.solvers.config import MAX_ALPHA, MAX_POWER_T, SCHEDULES, SolverConfig

__all__ = [
    "add_config_arguments",
    "add_settings_arguments",
    "config_fields",
    "config_from_args",
    "flag_of",
    "settings_from_args",
]

_Settings = TypeVar(
    "_Settings",
    SolverConfig,
    ReadSettings,
    RunSettings,
    CheckpointSettings,
    DesignSettings,
    ApplySettings,
    WeightSettings,
    CVSettings,
    ClusterSettings,
)

# The prefix of each settings class's options in the parsed arguments (``config_lr``).
_PREFIX: dict[type, str] = {
    SolverConfig: "config",
    ReadSettings: "read",
    RunSettings: "run",
    CheckpointSettings: "checkpointing",
    DesignSettings: "design",
    ApplySettings: "apply",
    WeightSettings: "weighting",
    ClusterSettings: "clustering",
    CVSettings: "cv",
}


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


def _penalty(text: str) -> float | str:
    """--alpha: a number from 0 to MAX_ALPHA, or "cv" (chosen by cross-validation: the
    command runs :func:`gradfit.cv_fit.fit_cv`; the settings never see the word)."""
    if text.strip().lower() == "cv":
        return "cv"
    try:
        return _closed_range(0.0, MAX_ALPHA)(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected a number from 0 to {MAX_ALPHA:g} (a larger penalty sets every "
            f"coefficient to 0), or 'cv' (chosen by cross-validation), got {text!r}"
        ) from None


def _l1_ratios(text: str) -> float | tuple[float, ...]:
    """--l1-ratio: a number in [0, 1], or (for --alpha cv, which tries each) a comma-separated
    list of them."""
    parts = [part.strip() for part in text.split(",")]
    if len(parts) == 1:
        return unit_interval(text)
    try:
        return tuple(unit_interval(part) for part in parts)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected a number from 0 to 1, or a comma-separated list of them (--alpha cv), "
            f"got {text!r}"
        ) from None


def _alphas(text: str) -> int | tuple[float, ...]:
    """--alphas: a count N, or the alphas themselves comma-separated (each finite, >= 0)."""
    parts = [part.strip() for part in text.split(",")]
    if len(parts) == 1 and parts[0].isdigit():
        return positive_int(parts[0])
    values = []
    for part in parts:
        try:
            value = float(part)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and 0 <= value <= MAX_ALPHA):
            raise argparse.ArgumentTypeError(
                f"expected a count of alphas (a positive integer) or alphas from 0 to "
                f"{MAX_ALPHA:g} separated by commas, got {text!r}"
            )
        values.append(value)
    return tuple(values)


def _folds(text: str) -> int:
    value = positive_int(text)
    if value < 2 or value > MAX_FOLDS:
        raise argparse.ArgumentTypeError(
            f"expected a number of folds from 2 to {MAX_FOLDS}, got {text!r}"
        )
    return value


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
    "penalty": lambda: {"type": _penalty},
    "l1_ratios": lambda: {"type": _l1_ratios},
    "alphas": lambda: {"type": _alphas},
    "folds": lambda: {"type": _folds},
    "selection": lambda: {"choices": CV_SELECTIONS},
    "exponent": lambda: {"type": _closed_range(0.0, MAX_POWER_T)},
    "unit_interval": lambda: {"type": unit_interval},
    "unit_fraction": lambda: {"type": unit_fraction},
    "fraction": lambda: {"type": _open_range(0.0, 1.0, high_closed=False)},
    "decay_rate": lambda: {"type": _open_range(0.0, 1.0, high_closed=True)},
    "above_one": lambda: {"type": _above_one},
    "bool": lambda: {"action": argparse.BooleanOptionalAction},
    "flag": lambda: {"action": "store_true"},
    "byte_size": lambda: {"type": byte_size},
    "seed": lambda: {"type": seed},
    "dtype": lambda: {"choices": tuple(DTYPES)},
    "device": lambda: {"choices": DEVICES},
    "cov": lambda: {"choices": ALL_COV_TYPES},
    "level": lambda: {"type": confidence_level},
    "path": lambda: {},
    "formula": lambda: {},
    "missing": lambda: {"choices": MISSING_CHOICES},
    "apply_missing": lambda: {"choices": APPLY_MISSING},
    "unknown_level": lambda: {"choices": UNKNOWN_LEVELS},
    "column": lambda: {},
}


def _written(kind: str, value: Any) -> Any:
    """A default as the command line writes it (in the help, and as argparse's default)."""
    if kind == "byte_size" and value is not None:
        return format_size(value)
    if kind == "dtype" and value is not None:  # a name, or a torch.dtype given in Python
        return str(value).removeprefix("torch.")
    return value


def option_fields(kind: type[Any]) -> tuple[Field[Any], ...]:
    """The fields of a settings class, each of which has an option."""
    return tuple(f for f in fields(kind) if "cli" in f.metadata)


def config_fields() -> tuple[Field[Any], ...]:
    """The configuration's fields, each of which has an option."""
    return option_fields(SolverConfig)


def flag_of(f: Field[Any]) -> str:
    """The option of a settings field: ``--lr``, ``--epochs``, else ``--field-name``."""
    flag: str | None = f.metadata["cli"]["flag"]
    return flag if flag is not None else "--" + f.name.replace("_", "-")


def add_settings_arguments(
    parser: argparse.ArgumentParser | Any,
    kind: type[Any],
    names: Sequence[str] | None = None,
    choices: Mapping[str, Sequence[str]] | None = None,
) -> None:
    """One option per field of the settings class ``kind`` (only those in ``names``, when
    given), with the field's default (or the command line's own, see
    :func:`gradfit.settings.cli`) shown in its help. ``choices``: a field's values this
    command accepts, where it takes fewer than the field (argparse then refuses the others
    and ``--help`` lists only these)."""
    prefix = _PREFIX[kind]
    for f in option_fields(kind):
        if names is not None and f.name not in names:
            continue
        cli = f.metadata["cli"]
        default = f.default if f.default is not MISSING else None
        if cli["default"] is not None:
            default = cli["default"]
        default = _written(cli["kind"], default)
        shown = "none" if default is None else default
        help_text: str = cli["help"]
        if "{default}" in help_text:
            help_text = help_text.replace("{default}", f"{shown}")
        elif cli["show_default"]:
            help_text = f"{help_text} ({shown})"
        flag, how = flag_of(f), _KINDS[cli["kind"]]()
        if choices is not None and f.name in choices:
            how["choices"] = tuple(choices[f.name])
        if "type" in how or cli["metavar"]:  # --seed SEED, not the prefixed destination
            how["metavar"] = cli["metavar"] or flag.removeprefix("--").upper().replace("-", "_")
        parser.add_argument(
            flag,
            dest=f"{prefix}_{f.name}",
            default=None if cli["unset"] else default,
            help=help_text.replace("%", "%%"),
            **how,
        )


def settings_from_args(kind: type[_Settings], args: argparse.Namespace) -> _Settings:
    """The validated settings of the parsed options (a field without an option in this
    command, or whose option was left out where its default is None, keeps the field's
    default)."""
    prefix = _PREFIX[kind]
    values = {}
    for f in option_fields(kind):
        value = getattr(args, f"{prefix}_{f.name}", MISSING)
        if value is MISSING or (value is None and f.metadata["cli"]["unset"]):
            continue
        values[f.name] = value
    return kind(**values)


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One option per configuration field, with the field's default."""
    add_settings_arguments(parser.add_argument_group("solver settings"), SolverConfig)


def config_from_args(args: argparse.Namespace) -> SolverConfig:
    """The validated configuration of the parsed options."""
    return settings_from_args(SolverConfig, args)
