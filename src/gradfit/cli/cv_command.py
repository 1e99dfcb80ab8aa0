"""``gradfit fit --alpha cv``: the penalty chosen by cross-validation
(:func:`gradfit.cv_fit.fit_cv`), in memory, streamed or under torchrun. Imports its work (and
torch) when it runs: ``gradfit fit --help`` waits for none (tests/test_startup.py)."""

from __future__ import annotations

import argparse
import sys
import warnings
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from gradfit.atomic import atomic_write, temporary_path
from gradfit.cli.common import (
    EXIT_OK,
    _check_output_dir,
    _check_plot_path,
    _emit_warnings,
    _join_group,
    _note_left_out,
    _print_json,
)
from gradfit.cli.config_options import config_from_args, settings_from_args
from gradfit.cli.render import BytesProgress, escape, fmt, table
from gradfit.errors import GradfitError, ModelFileError, ValidationError
from gradfit.settings import (
    CheckpointSettings,
    ClusterSettings,
    CVSettings,
    DesignSettings,
    ReadSettings,
    RunSettings,
    WeightSettings,
)
from gradfit.solvers.config import SolverConfig

if TYPE_CHECKING:
    from gradfit.fitting import FitReport
    from gradfit.solvers.collective import Communicator

__all__: list[str] = []


def _cmd_fit_cv(args: argparse.Namespace, out: TextIO) -> int:
    """``gradfit fit --alpha cv``: :func:`gradfit.cv_fit.fit_cv` in memory, streamed or under
    torchrun; the summary per target (the chosen alpha, its CV error and standard error),
    ``--json`` with the whole path, ``--plot`` the CV curves."""
    from gradfit.distributed import launched, shutdown
    from gradfit.solvers.collective import LOCAL, guarded

    # As plain fit: under torchrun the group forms first and the checks run inside it, so
    # that any process's error is said once, at once, by rank 0.
    comm = _join_group(args) if launched() else None
    try:
        plan = guarded(comm or LOCAL, lambda: _plan_fit_cv(args, out, comm))
        return _fit_cv_command(args, out, plan, comm)
    finally:
        if comm is not None:
            shutdown()


_CVPlan = tuple[SolverConfig, list[float], ReadSettings, RunSettings, CVSettings, Path, Path | None]


def _plan_fit_cv(args: argparse.Namespace, out: TextIO, comm: Communicator | None) -> _CVPlan:
    """``gradfit fit --alpha cv``'s arguments checked, on every process of a group."""
    from gradfit.outputs import check_outputs
    from gradfit.streaming import use_streaming

    if args.tensorboard is not None:
        raise ValidationError(
            "--tensorboard records each epoch; --alpha cv has none (one pass, then the "
            "path of penalties): leave out --tensorboard"
        )
    reading = settings_from_args(ReadSettings, args)
    run = settings_from_args(RunSettings, args)
    checkpointing = settings_from_args(CheckpointSettings, args)
    cv = settings_from_args(CVSettings, args)
    if (
        checkpointing.checkpoint is not None
        or checkpointing.resume
        or args.checkpointing_checkpoint_every is not None
    ):
        raise ValidationError(
            "--alpha cv has no epochs to checkpoint (one pass, then the path from the "
            "statistics); leave out --checkpoint, --checkpoint-every and --resume"
        )
    if settings_from_args(ClusterSettings, args).groups is not None:
        raise ValidationError(
            "--groups (clustered standard errors) does not apply to --alpha cv: a penalized "
            "fit has no standard errors; leave out --groups and --cov"
        )
    design = settings_from_args(DesignSettings, args)
    if design.formula is not None:
        raise ValidationError(
            "--formula does not apply to --alpha cv: its folds read numeric columns as they "
            "are; name them with --target and --features, or fit one --alpha with --formula"
        )
    if design.missing != "error":
        raise ValidationError(
            f"--missing {design.missing} does not apply to --alpha cv: its folds read numeric "
            "columns as they are; remove the rows with a missing value first, or fit one "
            f"--alpha with --missing {design.missing}"
        )
    check_outputs([("--out", args.out), ("--plot", args.plot)], data=args.data, stdout=out)
    model_path = _check_output_dir(args.out, "model file")
    plot_path = _check_plot_path(args.plot)
    if not any(value.strip(" ,") for value in args.target):
        raise ValidationError("give at least one --target column")
    ratios = args.config_l1_ratio
    ratios = list(ratios) if isinstance(ratios, tuple) else [ratios]
    settings = argparse.Namespace(**vars(args))
    settings.config_alpha, settings.config_l1_ratio = 0.0, ratios[0]
    config = config_from_args(settings)
    streamed = use_streaming(args.data, config, reading, group=comm is not None)
    reading = replace(reading, stream=streamed)
    return config, ratios, reading, run, cv, model_path, plot_path


def _fit_cv_command(
    args: argparse.Namespace,
    out: TextIO,
    plan: _CVPlan,
    comm: Communicator | None,
) -> int:
    """``gradfit fit --alpha cv`` run as planned: the fit, then rank 0's summary and files."""
    from gradfit.cv_fit import fit_cv
    from gradfit.persistence import save_model

    config, ratios, reading, run, cv, model_path, plot_path = plan
    main_rank = comm is None or comm.rank == 0
    show = main_rank and not args.quiet and not args.json and sys.stderr.isatty()
    notes: list[str] = []
    progress = BytesProgress(show, "read")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            report = fit_cv(
                args.data,
                args.target,
                args.features,
                config,
                alphas=cv.alphas,
                l1_ratio=ratios,
                folds=cv.folds,
                alpha_per_target=cv.alpha_per_target,
                selection=cv.selection,
                weights=settings_from_args(WeightSettings, args).weights,
                seed=run.seed,
                stream=reading.stream,
                memory_limit=reading.memory_limit,
                batch_rows=reading.batch_rows,
                progress=progress,
                comm=comm,
                notes=notes,
            )
        finally:
            progress.close()
            if main_rank and not args.quiet:
                for note in notes:
                    print(f"gradfit: note: {escape(note)}", file=sys.stderr)
    if not main_rank:
        return EXIT_OK
    if not args.quiet:
        _note_left_out(report.left_out)
        _emit_warnings(caught)
    record = report.cv
    names = report.model.target_names
    if plot_path is None:
        save_model(model_path, report.model)
    else:
        _save_with_cv_plot(model_path, report, plot_path, args.data)
    if args.json:
        _print_json(
            {
                "model": str(model_path),
                "solver": "cv",
                "n_samples": report.n_samples,
                "final_loss": report.final_loss,
                "seconds": report.seconds,
                "r2": dict(zip(names, report.metrics.r2, strict=True)),
                "plot": str(plot_path) if plot_path else None,
                "cv": record.as_dict(names),
            },
            out,
        )
        return EXIT_OK
    rule = "1se" if record.selection == "1se" else "min"
    rows = [
        [
            name,
            fmt(float(record.alpha[t])),
            fmt(float(record.l1_ratio[t])),
            fmt(float(record.cv_error[t])),
            fmt(float(record.cv_se[t])),
            f"{report.metrics.r2[t]:.6f}",
        ]
        for t, name in enumerate(names)
    ]
    header = f"target ({record.folds_used}-fold CV, {report.n_samples} rows)"
    print(
        table([header, f"alpha ({rule})", "l1_ratio", "CV error", "standard error", "R²"], rows),
        file=out,
    )
    written = f"model written to {model_path}" + (f", plot to {plot_path}" if plot_path else "")
    print(escape(written), file=out)
    return EXIT_OK


def _save_with_cv_plot(model_path: Path, report: FitReport, plot_path: Path, data: str) -> None:
    """As :func:`_save_with_plot`, the plot being the CV curves (all or nothing)."""
    from gradfit.cv_fit import cv_coefficient_paths
    from gradfit.persistence import save_model
    from gradfit.report import plot_cv

    record = report.cv
    names = report.model.target_names
    k = len(names)
    staged = temporary_path(model_path)
    try:
        try:
            save_model(staged, report.model)
        except GradfitError as exc:
            raise type(exc)(str(exc).replace(str(staged), str(model_path))) from None
        ratio = [int(record.l1_index[t]) for t in range(k)]
        plot_cv(
            plot_path,
            [record.grid(t, ratio[t]) for t in range(k)],
            [record.mean[:, ratio[t], t] for t in range(k)],
            [record.se[:, ratio[t], t] for t in range(k)],
            [float(v) for v in record.alpha_min],
            [float(v) for v in record.alpha_1se],
            names,
            title=f"gradfit cross-validation on {data}",
            paths=cv_coefficient_paths(report),
            feature_names=report.model.feature_names,
        )
        staged_bytes = staged.read_bytes()
        atomic_write(model_path, lambda fh: fh.write(staged_bytes), error=ModelFileError)
    finally:
        staged.unlink(missing_ok=True)
