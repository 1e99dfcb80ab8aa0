"""``gradfit diagnose | anova``: the influence measures of a model over its data (with R's four
diagnostic plots), and analysis-of-variance tables of formulas.

As in :mod:`gradfit.cli.data_commands`, the parser's part imports nothing heavy; each command
imports its work (and torch) when it starts."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from gradfit.cli.common import EXIT_OK, _check_plot_path, _print_json
from gradfit.cli.common import _check_output_dir as _output_path
from gradfit.cli.config_options import add_settings_arguments, settings_from_args
from gradfit.cli.data_commands import _warnings_to_stderr
from gradfit.cli.options import positive_int
from gradfit.cli.render import BytesProgress, escape, escape_report, fmt, table
from gradfit.errors import DataError, ValidationError
from gradfit.settings import SCORED_MISSING, ApplySettings, ReadSettings, WeightSettings

if TYPE_CHECKING:
    from gradfit.diagnostics import Diagnostics
    from gradfit.inference import AnovaTable, OLSResult

__all__ = ["add_diagnose_commands"]

# ----------------------------------------------------------------------------- diagnose


def _cmd_diagnose(args: argparse.Namespace, out: TextIO) -> int:
    """Every row's diagnostics to ``--out`` (atomically), the ``--top`` rows by Cook's
    distance on standard output, and R's four plots to ``--plot``."""
    from gradfit.data import write_table_batches
    from gradfit.diagnostics import diagnose
    from gradfit.outputs import check_outputs
    from gradfit.persistence import load_model
    from gradfit.report import plot_diagnostics

    reads = [("the model file", args.model)]
    outputs = [("--out", args.out), ("--plot", args.plot)]
    check_outputs(outputs, data=args.data, reads=reads, stdout=out)
    out_path = _output_path(args.out, "diagnostics") if args.out else None
    plot_path = _check_plot_path(args.plot)
    model = load_model(args.model)
    settings = settings_from_args(ReadSettings, args)
    applying = settings_from_args(ApplySettings, args)
    keep = [name for value in (args.keep or []) for name in _split(value)]
    reading = BytesProgress(sys.stderr.isatty(), "diagnose")
    try:
        job = diagnose(
            model,
            args.data,
            keep=keep,
            label=args.label,
            top=args.top,
            stream=settings.stream,
            memory_limit=settings.memory_limit,
            batch_rows=settings.batch_rows,
            progress=reading,
            missing=applying.missing,
            unknown_level=applying.unknown_level,
        )
        if out_path is not None:
            write_table_batches(out_path, job)
        else:
            for _ in job:
                pass
    finally:
        reading.close()
    if job.n_dropped:
        print(f"diagnose: {job.n_dropped} rows dropped for missing values", file=sys.stderr)
    fitted = (model.inference or {}).get("summary", {}).get("n")
    if (
        isinstance(fitted, int)
        and fitted != job.n_rows
        and model.hyperparameters.get("weights") is None
    ):
        print(
            escape(
                f"gradfit: warning: the model was fitted to {fitted} rows and the data hold "
                f"{job.n_rows}: influence measures describe the rows a model was fitted to"
            ),
            file=sys.stderr,
        )
    if plot_path is not None and job.points is not None:
        plot_diagnostics(plot_path, job.points, f"gradfit diagnose: {Path(args.model).name}")
    _print_top(job, args, out)
    if out_path is not None:
        print(f"diagnostics of {job.n_rows} rows written to {escape(out_path)}", file=out)
    if plot_path is not None:
        print(f"plot written to {escape(plot_path)}", file=out)
    return EXIT_OK


def _split(value: str) -> list[str]:
    return [part for part in (p.strip() for p in value.split(",")) if part] or [value]


def _print_top(job: Diagnostics, args: argparse.Namespace, out: TextIO) -> None:
    if not args.top:
        return
    for target, rows in job.top.items():
        shown = len(rows)
        print(
            f"Most influential rows of {escape(target)} by Cook's distance "
            f"({shown} of {job.n_rows}):",
            file=out,
        )
        headers = [
            "row",
            *([args.label] if args.label else []),
            "cooks_distance",
            "hat",
            "rstudent",
            "dffits",
        ]
        cells = [
            [
                str(r.row),
                *([r.label or ""] if args.label else []),
                fmt(r.cooks_distance),
                fmt(r.values["hat"]),
                fmt(r.values["rstudent"]),
                fmt(r.values["dffits"]),
            ]
            for r in rows
        ]
        print(table(headers, cells), file=out)
        print(file=out)


# ----------------------------------------------------------------------------- anova


@_warnings_to_stderr
def _cmd_anova(args: argparse.Namespace, out: TextIO) -> int:
    """One formula: the sequential table (R's ``anova(lm)``); two: the F test of the nested
    fits, the smaller (more residual degrees of freedom) first (R's ``anova(m1, m2)``)."""
    from gradfit.data import feature_matrix
    from gradfit.fitting import read_source
    from gradfit.inference import anova, ols
    from gradfit.outputs import check_outputs
    from gradfit.stream_anova import anova_fits
    from gradfit.streaming import use_streaming

    check_outputs([], data=args.data, stdout=out)
    formulas = list(args.formula)
    if len(formulas) > 2:
        raise ValidationError(
            f"anova takes one --formula (the sequential table) or two (the nested F test), "
            f"got {len(formulas)}"
        )
    settings = settings_from_args(ReadSettings, args)
    weights_column = settings_from_args(WeightSettings, args).weights
    fits: list[OLSResult]
    if use_streaming(args.data, None, settings):  # one pass of each formula's statistics
        fits = anova_fits(
            args.data, formulas, missing=args.missing, weights=weights_column, reading=settings
        )
    else:
        data = read_source(args.data)
        options: dict[str, Any] = {}
        if weights_column is not None:
            if weights_column not in data.columns:
                raise DataError(
                    f"{data.source}: --weights column {weights_column!r} not found; available: "
                    f"{', '.join(data.columns)}"
                )
            options["weights"] = feature_matrix(data, [weights_column])[:, 0]
        fits = [ols(formula, data=data, missing=args.missing, **options) for formula in formulas]
    if len(fits) == 2 and fits[0].df_resid < fits[1].df_resid:
        fits.reverse()  # the smaller model first, as R's anova(small, big)
    result: AnovaTable = anova(*fits)
    names = [*fits[-1].target_names, *(n for f in fits for n in f.feature_names)]
    if args.json:
        document = {
            "data": args.data,
            "formulas": [f.formula for f in fits],
            "n": fits[0].n,
            **result.as_dict(),
        }
        _print_json(document, out)
        return EXIT_OK
    print(escape_report(str(result), names), file=out)
    return EXIT_OK


# ----------------------------------------------------------------------------- parser


def add_diagnose_commands(sub: Any) -> None:
    diag = sub.add_parser(
        "diagnose",
        help="influence measures of every row (R's influence.measures) and the diagnostic "
        "plots of a least-squares model",
    )
    diag.add_argument("model", help="a model of an unpenalized least-squares fit")
    diag.add_argument("data", help="the data the model was fitted to (file, directory, glob)")
    diag.add_argument(
        "--out",
        help="write every row's diagnostics here (CSV, TSV or Parquet by extension)",
    )
    diag.add_argument(
        "--keep",
        action="append",
        help="identifier columns to copy into --out (repeat, or comma-separate)",
    )
    diag.add_argument(
        "--top",
        type=_top_count,
        default=10,
        help="list this many rows of largest Cook's distance per target (10; 0: none)",
    )
    diag.add_argument(
        "--plot",
        help="write R's four diagnostic plots per target (residuals vs fitted, normal Q-Q, "
        "scale-location, residuals vs leverage) to a PNG, SVG or PDF file",
    )
    diag.add_argument(
        "--label", metavar="COLUMN", help="name rows by this column (default: row numbers)"
    )
    add_settings_arguments(diag, ReadSettings, ("stream", "memory_limit", "batch_rows"))
    # --missing keep (predict's) is refused by diagnose: not offered (--help, argparse).
    add_settings_arguments(diag, ApplySettings, choices={"missing": SCORED_MISSING})
    diag.set_defaults(handler=_cmd_diagnose)

    an = sub.add_parser(
        "anova",
        help="analysis of variance of a formula (R's anova(lm)), or F test of two nested ones",
    )
    an.add_argument(
        "data",
        help="data file (CSV, TSV, gzip, Parquet), directory or glob: read whole, or streamed "
        "(one pass of statistics) when larger than --memory-limit",
    )
    an.add_argument(
        "--formula",
        action="append",
        required=True,
        help="an R formula, e.g. 'mpg ~ wt + hp + C(cyl)'; give two for the F test of nested "
        "models (the smaller is found by its degrees of freedom)",
    )
    an.add_argument(
        "--missing",
        choices=("error", "drop"),
        default="error",
        help="a row with a missing value in a formula's column: error, or drop (na.omit)",
    )
    add_settings_arguments(an, ReadSettings, ("stream", "memory_limit", "batch_rows"))
    add_settings_arguments(an, WeightSettings)
    an.add_argument("--json", action="store_true", help="print the table(s) as JSON")
    an.set_defaults(handler=_cmd_anova)


def _top_count(text: str) -> int:
    if text.strip() == "0":
        return 0
    value: int = positive_int(text)
    return value
