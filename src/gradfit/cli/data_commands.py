"""``gradfit fit | predict | evaluate | info``: real data files through the engine."""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import secrets
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np
import torch

from gradfit.cli.options import (
    non_negative_float,
    positive_int,
    seed,
    unit_fraction,
    unit_interval,
)
from gradfit.cli.render import Progress, fmt, table
from gradfit.errors import (
    DataError,
    DivergenceError,
    GradfitError,
    ModelFileError,
    ValidationError,
)

if TYPE_CHECKING:
    from gradfit.persistence import SavedModel

__all__ = ["add_data_commands"]

EXIT_OK = 0
_PLOT_SUFFIXES = (".png", ".svg", ".pdf")  # what gradfit.report.plot_training draws


# ----------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class _Loaded:
    X: np.ndarray  # (n, d) float64
    Y: np.ndarray  # (n, k) float64
    feature_names: tuple[str, ...]
    target_names: tuple[str, ...]


def _split_names(values: str | Sequence[str] | None) -> list[str]:
    """Names from repeated and/or comma-separated options (one string is one option value)."""
    if isinstance(values, str):
        values = [values]
    names: list[str] = []
    for value in values or ():
        names.extend(part.strip() for part in value.split(",") if part.strip())
    return names


def _load_training(source: str, targets: list[str], features: list[str] | None) -> _Loaded:
    from gradfit.data import select

    X, Y, fnames, tnames = select(_read_any(source), targets, features, min_rows=2)
    return _Loaded(X, Y, tuple(fnames), tuple(tnames))


def _read_any(source: str, text_columns: Sequence[str] = ()) -> Any:
    from gradfit.data import Table, read_table
    from gradfit.datasets import BUILTIN_DATASETS, load_dataset

    if source in BUILTIN_DATASETS and not Path(source).exists():
        data = load_dataset(source)
        columns = {
            **{n: data.data[:, j].double().numpy() for j, n in enumerate(data.feature_names)},
            **{n: data.target[:, j].double().numpy() for j, n in enumerate(data.target_names)},
        }
        return Table(columns=columns, source=source)
    return read_table(source, text_columns=text_columns)


def _check_output_dir(path: str, what: str) -> Path:
    out = Path(path)
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise DataError(
            f"{path}: the directory {str(parent)!r} for the {what} does not exist; "
            "create it first or choose another path"
        )
    if out.is_dir():
        raise DataError(f"{path}: is a directory; give a file name for the {what}")
    return out


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValidationError("--device cuda: no CUDA device is available; use --device cpu")
    return torch.device(name)


def _learning_rate(text: str) -> float | str:
    if text == "auto":
        return "auto"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 'auto' or a positive number, got {text!r}"
        ) from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected 'auto' or a positive number, got {text!r}")
    return value


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
    print(json.dumps(_finite_or_none(document), indent=2, allow_nan=False), file=out)


def _emit_warnings(caught: list[warnings.WarningMessage]) -> None:
    seen: set[str] = set()
    for w in caught:
        text = str(w.message)
        if text not in seen:
            seen.add(text)
            print(f"gradfit: warning: {text}", file=sys.stderr)


# ----------------------------------------------------------------------------- fit


def _cmd_fit(args: argparse.Namespace, out: TextIO) -> int:
    from gradfit.losses import mse
    from gradfit.metrics import regression_metrics
    from gradfit.model import predict
    from gradfit.persistence import SavedModel, save_model
    from gradfit.solvers.config import SolverConfig
    from gradfit.solvers.engine import EpochInfo
    from gradfit.solvers.lstsq import least_squares
    from gradfit.training import fit_linear

    targets = _split_names(args.target)
    if not targets:
        raise ValidationError("give at least one --target column")
    features = _split_names(args.features) if args.features is not None else None
    model_path = _check_output_dir(args.out, "model file")
    plot_path = _check_output_dir(args.plot, "plot") if args.plot else None
    if plot_path is not None and plot_path.suffix.lower() not in _PLOT_SUFFIXES:
        raise DataError(f"{args.plot}: unsupported image type; use .png, .svg or .pdf")
    if plot_path is not None and importlib.util.find_spec("matplotlib") is None:
        raise GradfitError(
            "--plot needs matplotlib, an optional extra: "
            "pip install 'gradfit[plot]' (or leave out --plot)"
        )
    device = _device(args.device)
    dtype = torch.float64 if args.dtype == "float64" else torch.float32

    config = SolverConfig(
        solver=args.solver,
        learning_rate=args.lr,
        batch_size=args.batch_size,
        max_epochs=args.epochs,
        standardize=args.standardize,
        tol=args.tol,
        alpha=args.alpha,
        l1_ratio=args.l1_ratio,
        momentum=args.momentum,
    )
    loaded = _load_training(args.data, targets, features)
    X = torch.from_numpy(loaded.X).to(device=device, dtype=dtype)
    Y = torch.from_numpy(loaded.Y).to(device=device, dtype=dtype)

    show = not args.quiet and not args.json and sys.stderr.isatty()
    bar = Progress(args.epochs, show and args.solver != "lstsq", f"fit {args.solver}")

    def on_epoch(info: EpochInfo) -> None:
        bar.update(info.loss)

    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            outcome = fit_linear(X, Y, config, random_state=args.seed, callback=on_epoch)
        except DivergenceError as exc:
            hint = " or --standardize" if not args.standardize else ""
            bound = exc.stable_lr
            advice = f"try --lr {bound / 2:.2g}" if bound else "try a smaller --lr"
            raise DivergenceError(
                f"{args.data}: {exc.reason}; nothing was written; {advice}{hint}",
                stable_lr=bound,
            ) from None
        finally:
            bar.close()
        elapsed = time.perf_counter() - start
        X64, Y64 = X.double().cpu(), Y.double().cpu()
        exact = least_squares(X64, Y64)
    if not args.quiet:
        _emit_warnings(caught)
        if not outcome.converged and args.solver != "lstsq" and outcome.n_iter >= args.epochs:
            print(
                f"gradfit: warning: {args.solver} did not converge in {args.epochs} epochs; "
                f"the loss still improved by more than --tol {args.tol:g} per epoch: raise "
                "--epochs, or --tol to stop sooner",
                file=sys.stderr,
            )
    weight, bias = outcome.weight.double().cpu(), outcome.bias.double().cpu()
    pred = predict(X64, weight, bias)
    final_loss = float(mse(pred, Y64))
    optimum = float(mse(predict(X64, exact.weight, exact.bias), Y64))
    # The ratio means nothing when the data fit exactly (the optimum is rounding noise).
    exact_fit = optimum <= 1e-20 * max(1.0, float((Y64**2).mean()))
    ratio = None if exact_fit else final_loss / optimum
    metrics = regression_metrics(Y64, pred)
    scaling = _scaling(outcome.scaler, args.standardize)
    hyper = {
        "learning_rate": outcome.learning_rate,
        "stable_learning_rate": outcome.stable_lr,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "standardize": args.standardize,
        "tol": args.tol,
        "alpha": args.alpha,
        "l1_ratio": args.l1_ratio,
        "momentum": args.momentum,
        "dtype": args.dtype,
        "device": str(device),
        "n_iter": outcome.n_iter,
        "converged": outcome.converged,
        "n_samples": int(X.shape[0]),
        "data": args.data,
    }
    saved = SavedModel(
        weight=weight,
        bias=bias,
        feature_names=loaded.feature_names,
        target_names=loaded.target_names,
        scaling_mean=None if scaling is None else scaling[0],
        scaling_scale=None if scaling is None else scaling[1],
        solver=args.solver,
        hyperparameters=hyper,
        final_loss=final_loss,
        loss_history=[float(v) for v in outcome.loss_curve],
        metrics=metrics.as_dict(loaded.target_names),
    )
    if plot_path is None:
        save_model(model_path, saved)
    else:
        _save_with_plot(model_path, saved, plot_path, outcome.loss_curve, Y64, pred, args)

    summary = {
        "model": str(model_path),
        "solver": args.solver,
        "epochs_run": outcome.n_iter,
        "final_loss": final_loss,
        "optimal_loss": optimum,
        "loss_ratio": ratio,
        "learning_rate": outcome.learning_rate,
        "converged": outcome.converged,
        "seconds": elapsed,
        "r2": dict(zip(loaded.target_names, metrics.r2, strict=True)),
        "plot": str(plot_path) if plot_path else None,
    }
    if args.json:
        _print_json(summary, out)
        return EXIT_OK
    rows = [
        ["final loss (MSE)", fmt(final_loss)],
        ["closed-form optimum", fmt(optimum)],
        ["loss / optimum", "- (exact fit)" if ratio is None else f"{ratio:.6f}"],
        ["epochs run", str(outcome.n_iter)],
        ["converged", "yes" if outcome.converged else "no"],
        ["learning rate", "-" if outcome.learning_rate is None else fmt(outcome.learning_rate)],
        *([f"R² {n}", f"{r:.6f}"] for n, r in zip(loaded.target_names, metrics.r2, strict=True)),
        ["time", f"{elapsed:.3f} s"],
    ]
    print(table([f"fit ({args.solver}, {X.shape[0]} rows)", "value"], rows), file=out)
    print(
        f"model written to {model_path}" + (f", plot to {plot_path}" if plot_path else ""), file=out
    )
    return EXIT_OK


def _scaling(scaler: Any, standardize: bool) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The (mean, scale) to record in the model file, or None when training used none (the
    scaler is the identity: lstsq without alpha, or --no-standardize)."""
    mean, scale = scaler.mean.double().cpu(), scaler.scale.double().cpu()
    if not standardize or (bool((mean == 0).all()) and bool((scale == 1).all())):
        return None
    return mean, scale


def _save_with_plot(
    model_path: Path,
    saved: SavedModel,
    plot_path: Path,
    loss_curve: Sequence[float],
    Y: torch.Tensor,
    pred: torch.Tensor,
    args: argparse.Namespace,
) -> None:
    """All or nothing: the model is staged beside its destination and moved there only once the
    plot is written, so a failed plot leaves neither a new model nor a clobbered old one."""
    from gradfit.data import atomic_write
    from gradfit.persistence import save_model
    from gradfit.report import plot_training

    staged = model_path.parent / f".{model_path.name}.{secrets.token_hex(6)}.tmp"
    try:
        save_model(staged, saved)
        plot_training(
            plot_path,
            loss_curve,
            Y.numpy(),
            pred.numpy(),
            saved.target_names,
            title=f"gradfit {args.solver} on {args.data}",
        )
        # Copied, not renamed, into place: atomic_write writes through a symbolic link (and
        # into a named pipe) instead of replacing it.
        data = staged.read_bytes()
        atomic_write(model_path, lambda fh: fh.write(data), error=ModelFileError)
    finally:
        staged.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- predict etc.


def _cmd_predict(args: argparse.Namespace, out: TextIO) -> int:
    from gradfit.data import feature_matrix, table_to_csv_text, write_table
    from gradfit.persistence import load_model

    model = load_model(args.model)
    out_path = _check_output_dir(args.out, "predictions") if args.out else None
    keep = list(dict.fromkeys(_split_names(args.keep)))
    # Kept columns are copied exactly: from a CSV file as the text written (00123 stays
    # 00123), from a Parquet file in their stored types (integers stay int64).
    data = _read_any(args.data, text_columns=keep)
    X = torch.from_numpy(feature_matrix(data, model.feature_names))
    pred = model.predict(X.to(model.weight.dtype)).double().numpy()
    columns: dict[str, np.ndarray] = {}
    for name in keep:
        if name not in data.columns:
            raise DataError(
                f"{args.data}: --keep column {name!r} not found; available: "
                f"{', '.join(data.columns)}"
            )
        if name in model.target_names:
            raise DataError(
                f"--keep column {name!r} has the name of a predicted target; "
                "rename it or leave it out"
            )
        columns[name] = data.columns[name]
    for j, name in enumerate(model.target_names):
        columns[name] = pred[:, j]
    if out_path is None:
        out.write(table_to_csv_text(columns))
    else:
        write_table(out_path, columns)
    return EXIT_OK


def _cmd_evaluate(args: argparse.Namespace, out: TextIO) -> int:
    from gradfit.data import feature_matrix
    from gradfit.metrics import regression_metrics
    from gradfit.persistence import load_model

    model = load_model(args.model)
    data = _read_any(args.data)
    missing = [name for name in model.target_names if name not in data.columns]
    if missing:
        raise DataError(
            f"{args.data}: missing target column(s) {', '.join(map(repr, missing))} that "
            f"evaluate compares the predictions with; available columns: "
            f"{', '.join(map(repr, data.columns))}"
        )
    X = torch.from_numpy(feature_matrix(data, model.feature_names))
    Y = torch.from_numpy(feature_matrix(data, model.target_names))
    pred = model.predict(X.to(model.weight.dtype)).double()
    metrics = regression_metrics(Y, pred).as_dict(model.target_names)
    if args.json:
        _print_json(
            {
                "model": args.model,
                "data": args.data,
                "n_samples": int(X.shape[0]),
                "metrics": metrics,
            },
            out,
        )
        return EXIT_OK
    rows = [
        [name, *(fmt(m[key]) for key in ("mse", "rmse", "mae", "r2"))]
        for name, m in metrics.items()
    ]
    print(table(["target", "MSE", "RMSE", "MAE", "R²"], rows), file=out)
    return EXIT_OK


def _cmd_info(args: argparse.Namespace, out: TextIO) -> int:
    from gradfit.persistence import load_model

    model = load_model(args.model)
    info = {
        "model": args.model,
        "format_version": model.format_version,
        "solver": model.solver,
        "features": list(model.feature_names),
        "targets": list(model.target_names),
        "weight": model.weight.tolist(),
        "bias": model.bias.tolist(),
        "dtype": str(model.weight.dtype).removeprefix("torch."),
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
    }
    if args.json:
        _print_json(info, out)
        return EXIT_OK
    print(f"gradfit model {args.model} (format version {model.format_version})", file=out)
    print(
        f"solver: {model.solver}; written by gradfit {model.versions.get('gradfit')}, "
        f"torch {model.versions.get('torch')}, on {model.created}",
        file=out,
    )
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
    print(f"settings: {settings}", file=out)
    return EXIT_OK


# ----------------------------------------------------------------------------- parser


def add_data_commands(sub: Any) -> None:
    from gradfit.solvers.config import SOLVERS

    fit = sub.add_parser("fit", help="train a model on a data file (CSV, TSV, .gz, Parquet)")
    fit.add_argument("data", help="data file, or the built-in name 'crops'")
    fit.add_argument(
        "--target",
        action="append",
        required=True,
        help="target column (repeat, or comma-separate, for several)",
    )
    fit.add_argument(
        "--features",
        action="append",
        help="feature columns, comma-separated or repeated (default: every other numeric column)",
    )
    fit.add_argument("--solver", choices=SOLVERS, default="gd", help="(gd)")
    fit.add_argument("--epochs", type=positive_int, default=1000, help="maximum epochs (1000)")
    fit.add_argument(
        "--lr",
        type=_learning_rate,
        default="auto",
        help="learning rate, or 'auto' (computed from the data)",
    )
    fit.add_argument(
        "--batch-size", type=positive_int, default=32, help="mini-batch size for sgd (32)"
    )
    fit.add_argument("--seed", type=seed, default=0, help="random seed, 0 to 2**63 - 1 (0)")
    fit.add_argument(
        "--standardize",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="centre and scale features inside training (on)",
    )
    fit.add_argument(
        "--tol",
        type=non_negative_float,
        default=1e-6,
        help="stop when the loss improves by less than this fraction (1e-6)",
    )
    fit.add_argument(
        "--alpha", type=non_negative_float, default=0.0, help="regularization strength, >= 0 (0)"
    )
    fit.add_argument(
        "--l1-ratio", type=unit_interval, default=0.0, help="elastic-net mix in [0, 1] (0: ridge)"
    )
    fit.add_argument("--momentum", type=unit_fraction, default=0.0, help="momentum in [0, 1) (0)")
    fit.add_argument("--dtype", choices=("float32", "float64"), default="float64")
    fit.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    fit.add_argument("--out", required=True, help="model file to write (.safetensors)")
    fit.add_argument("--plot", help="write the loss curve and predicted-vs-actual to a PNG")
    fit.add_argument("--quiet", action="store_true", help="no progress bar or warnings")
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
        help="identifier columns to copy through unchanged (repeat, or comma-separate); from a "
        "CSV file exactly as written (00123 stays 00123)",
    )
    pred.set_defaults(handler=_cmd_predict)

    ev = sub.add_parser("evaluate", help="MSE, RMSE, MAE and R² of a saved model on data")
    ev.add_argument("model")
    ev.add_argument("data")
    ev.add_argument("--json", action="store_true")
    ev.set_defaults(handler=_cmd_evaluate)

    info = sub.add_parser("info", help="what a model file holds")
    info.add_argument("model")
    info.add_argument("--json", action="store_true")
    info.set_defaults(handler=_cmd_info)
