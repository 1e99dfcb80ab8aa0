"""What the data commands share (``fit``, ``fit --alpha cv``, ``path``, ``diagnose``,
``anova``): the exit code, output paths checked, JSON and warnings printed, the torchrun group
joined. Imports nothing heavy (tests/test_startup.py)."""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from gradfit.cli.config_options import settings_from_args
from gradfit.cli.render import escape
from gradfit.errors import DataError, GradfitError
from gradfit.settings import RunSettings
from gradfit.storage import RemotePath, as_path, check_writable

if TYPE_CHECKING:
    from gradfit.solvers.collective import Communicator

__all__: list[str] = []

EXIT_OK = 0
_PLOT_SUFFIXES = (".png", ".svg", ".pdf")  # what gradfit.report.plot_training draws


def _check_output_dir(path: str, what: str) -> Path:
    out = as_path(path)
    if isinstance(out, RemotePath):  # an object in a store: its bucket must exist
        check_writable(out, what)
        return out
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise DataError(
            f"{path}: the directory {str(parent)!r} for the {what} does not exist; "
            "create it first or choose another path"
        )
    if out.is_dir():
        raise DataError(f"{path}: is a directory; give a file name for the {what}")
    return out


def _check_plot_path(plot: str | None) -> Path | None:
    """``--plot``'s path checked (None without one): its folder (:func:`_check_output_dir`),
    an image type that gradfit draws, and matplotlib installed; one line each."""
    plot_path = _check_output_dir(plot, "plot") if plot else None
    if plot_path is not None and plot_path.suffix.lower() not in _PLOT_SUFFIXES:
        raise DataError(f"{plot}: unsupported image type; use .png, .svg or .pdf")
    if plot_path is not None and importlib.util.find_spec("matplotlib") is None:
        raise GradfitError(
            "--plot needs matplotlib, an optional extra: "
            "pip install 'gradfit[plot]' (or leave out --plot)"
        )
    return plot_path


def _finite_or_none(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None: JSON has no NaN or Infinity."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite_or_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(item) for item in value]
    return value


def _print_json(document: Any, out: TextIO) -> None:
    # ensure_ascii: control, bidi and other non-ASCII characters of names are \u escapes.
    text = json.dumps(_finite_or_none(document), indent=2, allow_nan=False, ensure_ascii=True)
    print(text, file=out)


# Warnings for developers, which Python itself shows nobody by default: the commands record
# every warning ("always"), so these are left out here (an import cut short by Ctrl-C leaves an
# "unclosed file" ResourceWarning of a .pyc behind; it is not the user's business).
_DEVELOPERS_ONLY = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)


def _emit_warnings(caught: list[warnings.WarningMessage]) -> None:
    seen: set[str] = set()
    for w in caught:
        if issubclass(w.category, _DEVELOPERS_ONLY):
            continue
        text = str(w.message)
        if text not in seen:
            seen.add(text)
            print(f"gradfit: warning: {escape(text)}", file=sys.stderr)


def _join_group(args: argparse.Namespace) -> Communicator:
    """The group of processes this one was launched into (torchrun)."""
    from gradfit.distributed import ProcessGroupError, from_environment

    try:
        device = settings_from_args(RunSettings, args).torch_device()
    except GradfitError as exc:  # before the group forms: every process says its own
        raise ProcessGroupError(str(exc)) from None
    return from_environment(device, timeout=args.dist_timeout, report=_say_error)


def _say_error(message: str) -> None:
    print(f"gradfit: error: {escape(message)}", file=sys.stderr, flush=True)


def _note_left_out(left_out: dict[str, str]) -> None:
    """On stderr: the note naming the columns the default features left out, each with why."""
    if left_out:
        listed = ", ".join(f"{name!r} ({why})" for name, why in left_out.items())
        print(
            f"gradfit: note: {len(left_out)} column(s) left out of the features: "
            f"{escape(listed)}; name the features with --features to choose them yourself",
            file=sys.stderr,
        )
