"""``gradfit path``: coefficients along a regularization path, from one pass over the data
(:func:`gradfit.cv_fit.fit_path`), as a table, JSON, a file of coefficients and R's
``plot(glmnet)``."""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import TYPE_CHECKING, Any, TextIO

from gradfit.cli.common import (
    EXIT_OK,
    _check_plot_path,
    _emit_warnings,
    _note_left_out,
    _print_json,
)
from gradfit.cli.common import _check_output_dir as _output_path
from gradfit.cli.config_options import _alphas, add_settings_arguments, settings_from_args
from gradfit.cli.options import unit_interval
from gradfit.cli.render import BytesProgress, escape, fmt, table
from gradfit.errors import ValidationError
from gradfit.settings import ReadSettings, WeightSettings

if TYPE_CHECKING:  # `gradfit path --help` waits for no torch (tests/test_startup.py)
    from gradfit.cv_fit import PathRecord

__all__ = ["add_path_command"]

_SHOWN = 10  # alphas in the summary table (the whole path: --json, --out)


def _cmd_path(args: argparse.Namespace, out: TextIO) -> int:
    """The path's summary per target (alpha, non-zero coefficients, R² of the training rows
    at a few alphas), ``--json`` with every coefficient, ``--out`` a table of coefficients
    (one row per target and alpha) and ``--plot`` the paths."""
    import numpy as np

    from gradfit.cv_fit import fit_path
    from gradfit.data import write_table_batches
    from gradfit.outputs import check_outputs
    from gradfit.report import plot_path

    check_outputs([("--out", args.out), ("--plot", args.plot)], data=args.data, stdout=out)
    out_path = _output_path(args.out, "coefficients") if args.out else None
    plot_path_ = _check_plot_path(args.plot)
    if not args.target or not any(value.strip(" ,") for value in args.target):
        raise ValidationError("give at least one --target column")
    reading = settings_from_args(ReadSettings, args)
    show = not args.quiet and not args.json and sys.stderr.isatty()
    progress = BytesProgress(show, "read")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            record = fit_path(
                args.data,
                args.target,
                args.features,
                alphas=args.alphas,
                l1_ratio=args.l1_ratio,
                fit_intercept=args.fit_intercept,
                standardize=args.standardize,
                weights=settings_from_args(WeightSettings, args).weights,
                stream=reading.stream,
                memory_limit=reading.memory_limit,
                batch_rows=reading.batch_rows,
                progress=progress,
            )
    finally:
        progress.close()
    if not args.quiet:
        _note_left_out(record.left_out)
        _emit_warnings(caught)
    if out_path is not None:
        write_table_batches(out_path, [_coefficient_table(record)])
    if plot_path_ is not None:
        k = len(record.target_names)
        plot_path(
            plot_path_,
            [record.alphas] * k,
            list(record.coefs),
            record.feature_names,
            record.target_names,
            title=f"gradfit coefficient paths (l1_ratio {record.l1_ratio:g}) on {args.data}",
        )
    if args.json:
        _print_json(
            {
                **record.as_dict(),
                "out": None if out_path is None else str(out_path),
                "plot": None if plot_path_ is None else str(plot_path_),
            },
            out,
        )
        return EXIT_OK
    A = record.alphas.shape[0]
    shown = np.unique(np.linspace(0, A - 1, min(_SHOWN, A)).round().astype(int))
    nonzero = record.n_nonzero
    rows = [
        [str(name), fmt(float(record.alphas[a])), str(int(nonzero[t, a]))]
        for t, name in enumerate(record.target_names)
        for a in shown
    ]
    header = f"target ({record.n_samples} rows, l1_ratio {record.l1_ratio:g})"
    print(table([header, "alpha", "non-zero coefficients"], rows), file=out)
    written = [f"{A} alphas"]
    if out_path is not None:
        written.append(f"coefficients written to {out_path}")
    if plot_path_ is not None:
        written.append(f"plot to {plot_path_}")
    print(escape(", ".join(written)), file=out)
    return EXIT_OK


def _coefficient_table(record: PathRecord) -> dict[str, Any]:
    """One row per (target, alpha): the target, alpha, the number of non-zero coefficients,
    the intercept and each feature's coefficient, one column each (no two of the same name)."""
    import numpy as np

    k, _, A = record.coefs.shape
    columns: dict[str, Any] = {
        "target": np.repeat(np.asarray(record.target_names, dtype=object), A),
        "alpha": np.tile(record.alphas, k),
        "n_nonzero": record.n_nonzero.reshape(-1),
        "intercept": record.intercepts.reshape(-1),
    }
    # A feature named as one of the four columns above gets "coef_" before its name, as many
    # times as it takes to name no other column (a feature may itself be called coef_alpha).
    taken = set(columns) | set(record.feature_names)
    for j, name in enumerate(record.feature_names):
        key = name
        if name in columns:
            while key in taken:
                key = f"coef_{key}"
            taken.add(key)
        columns[key] = record.coefs[:, j, :].reshape(-1)
    return columns


def add_path_command(sub: Any) -> None:
    parser = sub.add_parser(
        "path",
        help="coefficients along a regularization path (lasso, elastic net, ridge) from one "
        "pass over a data file, as glmnet and enet_path",
    )
    parser.add_argument("data", help="data file, directory or glob (as for fit)")
    parser.add_argument(
        "--target", action="append", help="target column(s), repeated or comma-separated"
    )
    parser.add_argument(
        "--features",
        action="append",
        help="feature columns, repeated or comma-separated (default: every other numeric column)",
    )
    parser.add_argument(
        "--alphas",
        type=_alphas,
        default=100,
        metavar="N|A,B,..",
        help="how many alphas, log-spaced from the smallest that zeroes every coefficient "
        "down 1000-fold (as glmnet and enet_path), or the alphas themselves comma-separated "
        "(100)",
    )
    parser.add_argument(
        "--l1-ratio",
        type=unit_interval,
        default=1.0,
        help="the elastic-net mix: 1 the lasso, 0 ridge (1)",
    )
    parser.add_argument(
        "--standardize",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="penalize the coefficients of the standardized features (as fit; "
        "--no-standardize: of the raw features, as enet_path)",
    )
    parser.add_argument(
        "--fit-intercept", action=argparse.BooleanOptionalAction, default=True, help="(yes)"
    )
    add_settings_arguments(parser, WeightSettings)
    parser.add_argument(
        "--out", help="write the coefficients (one row per target and alpha): .csv, .parquet"
    )
    parser.add_argument("--plot", help="draw the paths per target (.png, .svg, .pdf)")
    add_settings_arguments(parser, ReadSettings, ("stream", "memory_limit", "batch_rows"))
    parser.add_argument("--quiet", action="store_true", help="no progress bar or warnings")
    parser.add_argument("--json", action="store_true", help="print the whole path as JSON")
    parser.set_defaults(handler=_cmd_path)
