"""``gradfit fit | predict | evaluate | info``: real data files through the engine.

The parser's part (:func:`add_data_commands`) imports nothing heavy: ``gradfit --help``, ``fit
--help`` and a usage error never wait for torch (tests/test_startup.py). Each command imports
the work it runs (and with it torch) when it starts.
"""

from __future__ import annotations

import argparse
import functools
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from gradfit.atomic import atomic_write, remove_stale_temporaries, temporary_path
from gradfit.cli.common import (
    EXIT_OK,
    _check_output_dir,
    _check_plot_path,
    _emit_warnings,
    _join_group,
    _note_left_out,
    _print_json,
)
from gradfit.cli.config_options import (
    add_config_arguments,
    add_settings_arguments,
    config_from_args,
    settings_from_args,
)
from gradfit.cli.cv_command import _cmd_fit_cv
from gradfit.cli.options import (
    DEFAULT_TIMEOUT,
    confidence_level,
    non_negative_float,
    timeout_seconds,
)
from gradfit.cli.render import (
    DEFAULT_LOG_EVERY,
    BytesProgress,
    LogLines,
    Progress,
    escape,
    escape_report,
    fmt,
    table,
)
from gradfit.errors import (
    DivergenceError,
    GradfitError,
    ModelFileError,
    ValidationError,
)
from gradfit.settings import (
    DEFAULT_LEVEL,
    SCORED_MISSING,
    ApplySettings,
    CheckpointSettings,
    ClusterSettings,
    CVSettings,
    DesignSettings,
    ReadSettings,
    RunSettings,
    WeightSettings,
    as_keywords,
)
from gradfit.solvers import registry
from gradfit.solvers.config import SolverConfig

if TYPE_CHECKING:
    from gradfit.fitting import FitReport
    from gradfit.solvers.collective import Communicator
    from gradfit.solvers.engine import EpochInfo

__all__ = ["add_data_commands"]

_PLOT_SAMPLE = 20_000  # rows drawn in the predicted-vs-actual plot of a streamed fit


# ----------------------------------------------------------------------------- helpers


# ----------------------------------------------------------------------------- fit


def _cmd_fit(args: argparse.Namespace, out: TextIO) -> int:
    from gradfit.distributed import launched, shutdown
    from gradfit.solvers.collective import LOCAL, guarded

    if _cross_validated(args):  # --alpha cv: the one branch to cross-validation
        return _cmd_fit_cv(args, out)
    # Under torchrun the group forms first, so that what can fail on one process (its --out
    # or --checkpoint folder missing on its node) is agreed and said at once by rank 0, not
    # left to make the others wait --dist-timeout (an error before the group forms is said by
    # each process itself).
    comm = _join_group(args) if launched() else None
    try:
        plan = guarded(comm or LOCAL, lambda: _plan_fit(args, out, comm))
        return _fit_command(args, out, plan)
    finally:
        if comm is not None:
            shutdown()


def _plan_fit(args: argparse.Namespace, out: TextIO, comm: Communicator | None) -> _FitPlan:
    """``gradfit fit``'s arguments checked, on every process of a group."""
    from gradfit.checkpoint import check_solver
    from gradfit.fitting import clusters_problem, inference_problem
    from gradfit.observers import check_tensorboard
    from gradfit.outputs import check_checkpoint_target, check_outputs
    from gradfit.streaming import use_streaming

    if args.tensorboard is not None:
        check_tensorboard(args.tensorboard)  # before anything is read: one line, exit 2
    reading = settings_from_args(ReadSettings, args)
    run = settings_from_args(RunSettings, args)
    checkpointing = settings_from_args(CheckpointSettings, args)
    checkpoint, resume = checkpointing.checkpoint, checkpointing.resume
    outputs = [("--out", args.out), ("--checkpoint", checkpoint), ("--plot", args.plot)]
    check_outputs(outputs, data=args.data, stdout=out)
    if checkpoint:
        check_checkpoint_target("--checkpoint", str(checkpoint), resume=resume)
    model_path = _check_output_dir(args.out, "model file")
    plot_path = _check_plot_path(args.plot)
    design = settings_from_args(DesignSettings, args)
    if design.formula is not None and (args.target or args.features):
        what = "--target" if args.target else "--features"
        raise ValidationError(
            f"--formula names the targets and features itself; leave out {what}, or --formula"
        )
    if design.formula is None and not any(value.strip(" ,") for value in args.target or ()):
        raise ValidationError("give at least one --target column, or a --formula 'y ~ x'")
    config = config_from_args(args)
    problem = inference_problem(config, args.run_inference, asked=True) or clusters_problem(
        run.inference, settings_from_args(ClusterSettings, args).groups
    )
    if problem is not None:
        raise ValidationError(problem)
    run = replace(run, device=run.torch_device())
    if resume and not checkpoint:
        raise ValidationError("--resume needs --checkpoint PATH (the checkpoint to resume from)")
    if args.checkpointing_checkpoint_every is not None and not checkpoint:
        raise ValidationError(
            "--checkpoint-every needs --checkpoint PATH (where to save the training state); "
            "add --checkpoint, or leave out --checkpoint-every"
        )
    if checkpoint:
        check_solver(config.solver)
        _check_output_dir(str(checkpoint), "checkpoint")
    # Decided once, on every process alike (several processes, or a checkpoint, run the
    # streaming engine: it shards and resumes); the library then follows the choice.
    streamed = use_streaming(
        args.data, config, reading, group=comm is not None, checkpoint=checkpoint is not None
    )
    reading = replace(reading, stream=streamed)
    if resume and (comm is None or comm.rank == 0):
        # A run killed outright (kill -9) may have died writing its model: its temporary goes.
        remove_stale_temporaries(model_path)
    clustering = settings_from_args(ClusterSettings, args)
    return _FitPlan(
        config, reading, run, checkpointing, design, comm, model_path, plot_path, clustering
    )


@dataclass(frozen=True)
class _FitPlan:
    """What ``gradfit fit`` was asked to do, checked: the settings, the group of processes
    (None: this one alone) and where the model and the plot go."""

    config: SolverConfig
    reading: ReadSettings
    run: RunSettings
    checkpointing: CheckpointSettings
    design: DesignSettings
    comm: Communicator | None
    model_path: Path
    plot_path: Path | None
    clustering: ClusterSettings


def _fit_command(args: argparse.Namespace, out: TextIO, plan: _FitPlan) -> int:
    from gradfit.inference import preload_distributions
    from gradfit.jobs import fit
    from gradfit.observers import Observers
    from gradfit.persistence import save_model

    preload_distributions()  # the report's p-values need SciPy: imported while the data are read
    config, comm, model_path, plot_path = plan.config, plan.comm, plan.model_path, plan.plot_path
    spec = registry.get(config.solver)
    main_rank = comm is None or comm.rank == 0
    show = main_rank and not args.quiet and not args.json and sys.stderr.isatty()
    notes: list[str] = []
    bar = Progress(config.max_epochs, show and spec.iterative, f"fit {config.solver}")
    reading = BytesProgress(show, "read")
    # A batch job (stderr not a terminal): a line now and then instead of the bars.
    logging = main_rank and not args.quiet and not sys.stderr.isatty()
    lines = LogLines(logging, args.log_every, config.max_epochs, f"fit {config.solver}")

    def on_read(done: int, total: int, rows: int) -> None:
        reading(done, total, rows)
        lines.reading(done, total, rows)

    def on_epoch(info: EpochInfo) -> None:
        reading.close()  # the first epoch ends the reading bar

    watch = Observers(on_epoch, bar, lines)  # the epoch observers (gradfit.observers)
    fitted = False

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            report = fit(
                args.data,
                args.target,
                args.features,
                config,
                **as_keywords(plan.reading, plan.run, plan.checkpointing, plan.design),
                callback=watch,
                progress=on_read,
                sample_rows=_PLOT_SAMPLE if plot_path is not None and main_rank else 0,
                comm=comm,
                notes=notes,
                weights=settings_from_args(WeightSettings, args).weights,
                groups=plan.clustering.groups,
                max_groups=plan.clustering.max_groups,
                tensorboard_dir=args.tensorboard,
            )
            fitted = True
        except DivergenceError as exc:
            hint = " or --standardize" if not config.standardize else ""
            bound = exc.stable_lr
            advice = f"try --lr {bound / 2:.2g}" if bound else "try a smaller --lr"
            raise DivergenceError(
                f"{args.data}: {exc.reason}; nothing was written; {advice}{hint}",
                stable_lr=bound,
            ) from None
        finally:
            reading.close()
            if not fitted:
                lines.drop()  # the error line says what happened
            watch.close()
            if main_rank and not args.quiet:
                for note in notes:
                    print(f"gradfit: note: {escape(note)}", file=sys.stderr)
    if not main_rank:
        return EXIT_OK  # one program: rank 0 reports and writes the model
    result = report.result
    if not args.quiet:
        _note_left_out(report.left_out)
        _emit_warnings(caught)
        # Said when the table was asked for, or would have been shown (an exact solver's).
        shown = args.run_inference is not None or not spec.iterative
        if report.inference_note is not None and shown:
            print(f"gradfit: note: {escape(report.inference_note)}", file=sys.stderr)
        if not result.converged and spec.iterative and result.n_iter >= config.max_epochs:
            tol = "none" if config.tol is None else f"{config.tol:g}"
            print(
                f"gradfit: warning: {config.solver} did not converge in {config.max_epochs} "
                f"epochs; the loss still improved by more than --tol {tol} per epoch: raise "
                "--epochs, or --tol to stop sooner",
                file=sys.stderr,
            )
    if plot_path is None:
        save_model(model_path, report.model)
    else:
        _save_with_plot(model_path, report, plot_path, args.data)

    names = report.model.target_names
    ratio = report.loss_ratio
    summary = {
        "model": str(model_path),
        "solver": config.solver,
        "epochs_run": result.n_iter,
        "final_loss": report.final_loss,
        "optimal_loss": report.optimal_loss,
        "loss_ratio": ratio,
        "learning_rate": result.learning_rate,
        "converged": result.converged,
        "seconds": report.seconds,
        "r2": dict(zip(names, report.metrics.r2, strict=True)),
        "rows_dropped": report.rows_dropped,
        "plot": str(plot_path) if plot_path else None,
        "inference": None
        if report.inference is None
        else {
            **report.inference.as_dict(plan.run.level),
            "covariance": dict(zip(names, report.inference.covariance.tolist(), strict=True)),
        },
    }
    if args.json:
        _print_json(summary, out)
        return EXIT_OK
    rows = [
        ["final loss (MSE)", fmt(report.final_loss)],
        ["closed-form optimum", fmt(report.optimal_loss)],
        ["loss / optimum", "- (exact fit)" if ratio is None else f"{ratio:.6f}"],
        ["epochs run", str(result.n_iter)],
        ["converged", "yes" if result.converged else "no"],
        ["learning rate", "-" if result.learning_rate is None else fmt(result.learning_rate)],
        *([f"R² {n}", f"{r:.6f}"] for n, r in zip(names, report.metrics.r2, strict=True)),
        ["time", f"{report.seconds:.3f} s"],
    ]
    if report.rows_dropped:
        rows.append(["rows dropped (missing values)", str(report.rows_dropped)])
    print(table([f"fit ({config.solver}, {report.n_samples} rows)", "value"], rows), file=out)
    if report.inference is not None:
        names = (*report.model.feature_names, *report.model.target_names)
        print(f"\n{escape_report(report.inference.summary(), names)}\n", file=out)
        if args.run_level is not None:  # R's confint(fit, level = ...)
            confint = report.inference.confint_text(plan.run.level)
            print(f"{escape_report(confint, names)}\n", file=out)
    written = f"model written to {model_path}" + (f", plot to {plot_path}" if plot_path else "")
    print(escape(written), file=out)
    return EXIT_OK


def _save_with_plot(model_path: Path, report: FitReport, plot_path: Path, data: str) -> None:
    """All or nothing: the model is staged beside its destination and moved there only once the
    plot is written, so a failed plot leaves neither a new model nor a clobbered old one."""
    from gradfit.persistence import save_model
    from gradfit.report import plot_training

    staged = temporary_path(model_path)
    try:
        try:
            save_model(staged, report.model)
        except GradfitError as exc:  # name the user's path, not the hidden staging file
            raise type(exc)(str(exc).replace(str(staged), str(model_path))) from None
        plot_training(
            plot_path,
            report.result.loss_curve,
            report.targets,
            report.predictions,
            report.model.target_names,
            title=f"gradfit {report.config.solver} on {data}",
        )
        # Copied, not renamed, into place: atomic_write writes through a symbolic link (and
        # into a named pipe) instead of replacing it.
        staged_bytes = staged.read_bytes()
        atomic_write(model_path, lambda fh: fh.write(staged_bytes), error=ModelFileError)
    finally:
        staged.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- fit --alpha cv


_CV_FLAGS = {
    "alphas": "--alphas",
    "folds": "--folds",
    "alpha_per_target": "--alpha-per-target",
    "selection": "--select",
}


def _cross_validated(args: argparse.Namespace) -> bool:
    """Whether ``gradfit fit`` was asked for ``--alpha cv``; the options of cross-validation
    (and a list of l1 ratios) without it are refused here, one line each."""
    cv = bool(args.config_alpha == "cv")
    if not cv:
        given = [
            flag for name, flag in _CV_FLAGS.items() if getattr(args, f"cv_{name}") is not None
        ]
        if given:
            raise ValidationError(
                f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to --alpha cv "
                "(the penalty chosen by cross-validation); add --alpha cv, or leave "
                f"{'it' if len(given) == 1 else 'them'} out"
            )
        if isinstance(args.config_l1_ratio, tuple):
            raise ValidationError(
                "--l1-ratio takes one value unless --alpha cv, which tries each of a list; "
                "give one value, or add --alpha cv"
            )
    return cv


# ----------------------------------------------------------------------------- predict etc.


def _warnings_to_stderr(command: Callable[..., int]) -> Callable[..., int]:
    """``command`` with the library's warnings printed once each, as ``gradfit: warning: ...``,
    when it ends (e.g. predict's about rows off a rank-deficient model's training span)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> int:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                return command(*args, **kwargs)
            finally:
                _emit_warnings(caught)

    return wrapper


@_warnings_to_stderr
def _cmd_predict(args: argparse.Namespace, out: TextIO) -> int:
    """Predictions batch by batch (one batch for a file read whole): to a file atomically (it
    appears whole, or not at all), or as CSV to standard output."""
    from gradfit.data import table_to_csv_text, write_table_batches
    from gradfit.jobs import predict_batches
    from gradfit.outputs import check_outputs
    from gradfit.persistence import load_model

    reads = [("the model file", args.model)]
    check_outputs([("--out", args.out)], data=args.data, reads=reads, stdout=out)
    model = load_model(args.model)
    # Before any reading: a model without interval data is refused at once.
    predictor = model.interval_predictor() if args.interval else None
    out_path = _check_output_dir(args.out, "predictions") if args.out else None
    settings = settings_from_args(ReadSettings, args)
    applying = settings_from_args(ApplySettings, args)
    reading = BytesProgress(out_path is not None and sys.stderr.isatty(), "predict")
    notes: list[str] = []
    try:
        batches = predict_batches(
            model,
            args.data,
            keep=args.keep or [],
            interval=args.interval,
            level=args.level,
            stream=settings.stream,
            memory_limit=settings.memory_limit,
            batch_rows=settings.batch_rows,
            progress=reading,
            predictor=predictor,
            missing=applying.missing,
            unknown_level=applying.unknown_level,
            notes=notes,
            pred_weights=args.pred_weights,
        )
        if applying.missing == "keep":
            produced = {*model.target_names}
            if args.interval:
                produced |= {f"{t}_{b}" for t in model.target_names for b in ("lower", "upper")}
            batches = (_empty_for_nan(columns, produced) for columns in batches)
        if out_path is not None:
            write_table_batches(out_path, batches)
        else:
            for i, columns in enumerate(batches):
                out.write(_csv_for(out, table_to_csv_text(columns, header=i == 0)))
    finally:
        reading.close()
    for note in notes:
        print(escape(note), file=sys.stderr)
    return EXIT_OK


def _empty_for_nan(columns: dict[str, Any], produced: set[str]) -> dict[str, Any]:
    """The predicted columns of ``predict --missing keep`` masked (a null: an empty CSV cell,
    a Parquet null) where a row has no prediction (NaN)."""
    import numpy as np

    return {
        name: np.ma.masked_invalid(values) if name in produced else values
        for name, values in columns.items()
    }


def _csv_for(out: TextIO, text: str) -> str:
    """Predictions as CSV text for standard output: exactly the data when it goes to a file or
    a pipe; on a terminal, with the control characters of ``--keep`` values (or names) shown as
    escapes (:func:`escape`), so that a cell cannot drive the terminal or forge lines."""
    try:
        terminal = out.isatty()
    except (AttributeError, ValueError, OSError):
        terminal = False
    return escape(text, keep="\n") if terminal else text


def _cmd_evaluate(args: argparse.Namespace, out: TextIO) -> int:
    from gradfit.jobs import evaluate
    from gradfit.outputs import check_outputs
    from gradfit.persistence import load_model

    check_outputs([], data=args.data, reads=[("the model file", args.model)], stdout=out)
    model = load_model(args.model)
    settings = settings_from_args(ReadSettings, args)
    applying = settings_from_args(ApplySettings, args)
    reading = BytesProgress(not args.json and sys.stderr.isatty(), "evaluate")
    notes: list[str] = []
    try:
        report = evaluate(
            model,
            args.data,
            stream=settings.stream,
            memory_limit=settings.memory_limit,
            batch_rows=settings.batch_rows,
            progress=reading,
            missing=applying.missing,
            unknown_level=applying.unknown_level,
            notes=notes,
            weights=settings_from_args(WeightSettings, args).weights,
        )
    finally:
        reading.close()
    for note in notes:
        print(escape(note), file=sys.stderr)
    return _render_metrics(args, report.n_samples, report.as_dict(), out)


def _render_metrics(
    args: argparse.Namespace, n: int, metrics: dict[str, dict[str, float]], out: TextIO
) -> int:
    if args.json:
        _print_json(
            {"model": args.model, "data": args.data, "n_samples": n, "metrics": metrics}, out
        )
        return EXIT_OK
    rows = [
        [name, *(fmt(m[key]) for key in ("mse", "rmse", "mae", "r2"))]
        for name, m in metrics.items()
    ]
    print(table(["target", "MSE", "RMSE", "MAE", "R²"], rows), file=out)
    return EXIT_OK


def _cmd_info(args: argparse.Namespace, out: TextIO) -> int:
    from gradfit.model_file import CHECKSUM_SINCE, design_document, read_model
    from gradfit.outputs import check_outputs

    check_outputs([], reads=[("the model file", args.model)], stdout=out)
    # The file read and checked as load_model does, without torch (issue 23: info answers at
    # once): its tensors are NumPy arrays of the stored dtype.
    record = read_model(args.model)
    model = argparse.Namespace(**record.fields, weight=record.weight, bias=record.bias)
    info = {
        "model": args.model,
        "format_version": model.format_version,
        "checksum": model.format_version >= CHECKSUM_SINCE,
        "solver": model.solver,
        "features": list(model.feature_names),
        "targets": list(model.target_names),
        "weight": model.weight.tolist(),
        "bias": model.bias.tolist(),
        "dtype": str(model.weight.dtype),
        "scaling": None
        if model.scaling_mean is None or model.scaling_scale is None
        else {"mean": model.scaling_mean.tolist(), "scale": model.scaling_scale.tolist()},
        "hyperparameters": model.hyperparameters,
        "final_loss": model.final_loss,
        "epochs": len(model.loss_history),
        "loss_history": model.loss_history,
        "metrics": model.metrics,
        "versions": model.versions,
        "created": model.created,
        "inference": model.inference,
    }
    # A model fitted from a formula or categorical columns: its encoding (the formula, the
    # levels: gradfit.design), and the rows its fit left out; nothing for other models.
    encoding = None if model.design is None else design_document(model.design)
    if model.design is not None:
        info["design"] = model.design
    if model.rows_dropped:
        info["rows_dropped"] = model.rows_dropped
    if args.json:
        _print_json(info, out)
        return EXIT_OK
    # Everything below comes from the file: each line goes through escape (or table).
    print(escape(f"gradfit model {args.model} (format version {model.format_version})"), file=out)
    if not info["checksum"]:
        print(
            "note: written by an older gradfit without a checksum; its contents cannot be verified",
            file=out,
        )
    print(
        escape(
            f"solver: {model.solver}; written by gradfit {model.versions.get('gradfit')}, "
            f"torch {model.versions.get('torch')}, on {model.created}"
        ),
        file=out,
    )
    print(
        f"features used ({len(model.feature_names)}): "
        f"{', '.join(map(escape, model.feature_names))}; "
        f"predicts {', '.join(map(escape, model.target_names))}",
        file=out,
    )
    if encoding is not None:
        print("\n".join(escape(line) for line in encoding.describe().splitlines()), file=out)
    if model.rows_dropped:
        print(f"rows dropped for missing values in training: {model.rows_dropped}", file=out)
    headers = ["target", *model.feature_names, "bias"]
    rows = [
        [t, *(fmt(v) for v in model.weight[j].tolist()), fmt(float(model.bias[j]))]
        for j, t in enumerate(model.target_names)
    ]
    print(table(headers, rows), file=out)
    if model.scaling_mean is not None and model.scaling_scale is not None:
        rows = [
            [f, fmt(m), fmt(s)]
            for f, m, s in zip(
                model.feature_names,
                model.scaling_mean.tolist(),
                model.scaling_scale.tolist(),
                strict=True,
            )
        ]
        print(
            "\nstandardization used in training (coefficients above are in original units):",
            file=out,
        )
        print(table(["feature", "mean", "scale"], rows), file=out)
    if model.final_loss is not None:
        print(
            f"\nfinal training loss (MSE): {fmt(model.final_loss)} after "
            f"{len(model.loss_history)} epochs",
            file=out,
        )
    settings = ", ".join(f"{k}={v}" for k, v in model.hyperparameters.items())
    print(f"settings: {escape(settings)}", file=out)
    if model.inference is not None:
        names = (*model.feature_names, *model.target_names)
        print(f"\n{escape_report(str(model.inference['text']), names)}", file=out)
    return EXIT_OK


# ----------------------------------------------------------------------------- parser


def _add_reading_options(parser: argparse.ArgumentParser) -> None:
    add_settings_arguments(parser, ReadSettings, ("stream", "memory_limit", "batch_rows"))


def add_data_commands(sub: Any) -> None:
    fit = sub.add_parser("fit", help="train a model on a data file (CSV, TSV, .gz, Parquet)")
    fit.add_argument(
        "data",
        help="data file (CSV, TSV, gzip, Parquet), a directory or glob of files with the same "
        "columns, or the built-in name 'crops'",
    )
    fit.add_argument(
        "--target",
        action="append",
        help="target column (repeat, or comma-separate, for several; a value that names a "
        "column is taken literally, commas included); required without --formula",
    )
    fit.add_argument(
        "--features",
        action="append",
        help="feature columns, repeated or comma-separated (default: every other numeric, "
        "text or boolean column, text and booleans as categorical, as R's y ~ .); a value "
        "that names a column is taken literally, commas included",
    )
    add_settings_arguments(fit, DesignSettings)
    add_config_arguments(fit)
    add_settings_arguments(fit, RunSettings, ("seed", "dtype", "device"))
    fit.add_argument("--out", required=True, help="model file to write (.safetensors)")
    fit.add_argument("--plot", help="write the loss curve and predicted-vs-actual to a PNG")
    add_settings_arguments(fit, ReadSettings)
    add_settings_arguments(fit, CheckpointSettings)
    fit.add_argument(
        "--dist-timeout",
        type=timeout_seconds,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help="under torchrun: how long a process waits for the others before giving up "
        f"({DEFAULT_TIMEOUT:g})",
    )
    add_settings_arguments(fit, RunSettings, ("inference", "level"))
    add_settings_arguments(fit, WeightSettings)
    add_settings_arguments(fit, ClusterSettings)
    add_settings_arguments(fit.add_argument_group("--alpha cv (cross-validation)"), CVSettings)
    fit.add_argument(
        "--tensorboard",
        metavar="DIR",
        help="write each epoch's loss, learning rate, rows per second and validation R² for "
        "TensorBoard into DIR (created; gd and sgd; needs pip install 'gradfit[tensorboard]')",
    )
    fit.add_argument(
        "--log-every",
        type=non_negative_float,
        default=DEFAULT_LOG_EVERY,
        metavar="SECONDS",
        help="when stderr is not a terminal (a batch job): a progress line (epoch, loss, rows "
        "per second, time left) at most every SECONDS, and a first and a last one "
        f"({DEFAULT_LOG_EVERY:g})",
    )
    fit.add_argument("--quiet", action="store_true", help="no progress bar, log lines or warnings")
    fit.add_argument("--json", action="store_true", help="print the summary as JSON")
    fit.set_defaults(handler=_cmd_fit)

    pred = sub.add_parser("predict", help="predict with a saved model")
    pred.add_argument("model")
    pred.add_argument("data")
    pred.add_argument(
        "--out", help="CSV, TSV or Parquet file by extension (default: CSV to stdout)"
    )
    pred.add_argument(
        "--keep",
        action="append",
        help="identifier columns to copy through unchanged (repeat, or comma-separate); from "
        "a CSV file exactly as written (00123 stays 00123)",
    )
    pred.add_argument(
        "--interval",
        choices=("confidence", "prediction"),
        help="add <target>_lower and <target>_upper columns: an interval for the mean "
        "response (confidence) or for a new observation (prediction); needs a model of an "
        "unpenalized least-squares fit",
    )
    pred.add_argument(
        "--level",
        type=confidence_level,
        default=DEFAULT_LEVEL,
        help=f"coverage of --interval, between 0 and 1 ({DEFAULT_LEVEL})",
    )
    pred.add_argument(
        "--pred-weights",
        metavar="COLUMN",
        help="column of the new rows' weights (> 0) for --interval prediction of a weighted "
        "fit: a new observation's variance is sigma^2 / weight, as R's predict.lm (default: "
        "weight 1)",
    )
    _add_reading_options(pred)
    add_settings_arguments(pred, ApplySettings)
    pred.set_defaults(handler=_cmd_predict)

    ev = sub.add_parser("evaluate", help="MSE, RMSE, MAE and R² of a saved model on data")
    ev.add_argument("model")
    ev.add_argument("data")
    ev.add_argument("--json", action="store_true")
    _add_reading_options(ev)
    add_settings_arguments(ev, ApplySettings, choices={"missing": SCORED_MISSING})
    add_settings_arguments(ev, WeightSettings)
    ev.set_defaults(handler=_cmd_evaluate)

    info = sub.add_parser("info", help="what a model file holds")
    info.add_argument("model")
    info.add_argument("--json", action="store_true")
    info.set_defaults(handler=_cmd_info)
