"""Model files: one ``.safetensors`` file holding the weights and a JSON description.

A gradfit model file is a standard `safetensors <https://github.com/huggingface/safetensors>`_
file with exactly two tensors, ``weight`` (k, d) and ``bias`` (k,), always in the data's original
units, so that ``Y_hat = X @ weight.T + bias`` whatever scaling was used in training. Its
safetensors metadata holds one key, ``"gradfit"``, whose value is a JSON document::

    {"format": "gradfit-model", "format_version": 3,
     "feature_names": [...], "target_names": [...],
     "scaling": {"mean": [...], "scale": [...]} or null,
     "solver": "...", "hyperparameters": {...}, "final_loss": 0.5, "loss_history": [...],
     "metrics": {...}, "versions": {"gradfit": "...", "torch": "...", "python": "..."},
     "created": "2025-01-01T12:00:00Z",
     "inference": null or {"predictor": {...}, "summary": {...}, "text": "..."},
     "design": null or {...}, "rows_dropped": 0}

``design`` and ``rows_dropped`` (new in format version 4; older files, which lack them, load
with null and 0): what the model's columns are made of when it was fitted from a formula or
from categorical columns (the document of :meth:`gradfit.design.Design.to_dict`: the formula,
the levels, the transforms' state; predict and evaluate encode new data by it), and the rows
the fit left out for a missing value (``missing="drop"``, R's ``na.omit``).

``inference`` (new in format version 2; version 1 files, which lack it, still load) is what
confidence and prediction intervals need (:meth:`gradfit.inference.OLSPredictor.to_dict`:
the covariance, sigma and the residual degrees of freedom) with the coefficient table of the
fit (:meth:`gradfit.inference.OLSResult.as_dict` and its text), for models of an unpenalized
least-squares fit (``lstsq``, or ``gd``/``sgd`` converged to the optimum); null otherwise.

A second metadata key, ``"gradfit_sha256"`` (new in format version 3), seals the file: the
SHA-256 of the JSON document's UTF-8 text followed by the whole data section (the tensors'
bytes, as the header lays them out); see :mod:`gradfit.tensorfile`. :func:`load_model` checks
it before building anything, so that a flipped bit in the weights or the description fails with
"checksum mismatch" naming the file. Files of format versions 1 and 2 have no checksum: they
still load, unverified (:attr:`SavedModel.has_checksum` is False; ``gradfit info`` says so).

Non-finite floats, which JSON cannot hold, are written as the strings ``"nan"``, ``"inf"`` and
``"-inf"`` (and read back as floats in ``final_loss`` and ``loss_history``).

gradfit never unpickles: :func:`load_model` reads regular files only, parses and checks the
safetensors header itself (bounded, against the file size and the feature and target names)
before decoding the tensors from the bytes, and refuses pickles (``torch.save`` files) with a
message that says so. Every problem is a :class:`~gradfit.errors.ModelFileError` with a one-line
message that starts with the path.
"""

from __future__ import annotations

import dataclasses
import json
import math
import platform
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from gradfit import design as design_layer  # its Design imports formulaic on first use only
from gradfit._version import __version__
from gradfit.atomic import atomic_write
from gradfit.errors import ModelFileError, ValidationError
from gradfit.inference import OLSPredictor
from gradfit.model import LinearMap, LinearModel
from gradfit.model_file import (
    CHECKSUM_SINCE,
    FORMAT,
    FORMAT_VERSION,
    model_problem,
    read_model,
)
from gradfit.tensorfile import seal

if TYPE_CHECKING:
    from gradfit.design import Design

__all__ = ["FORMAT", "FORMAT_VERSION", "SavedModel", "load_model", "save_model"]

_FLOAT_DTYPES = {torch.float32: "F32", torch.float64: "F64"}

# True while load_model builds the SavedModel of what read_model has just checked, with the same
# code (model_problem) on the same arrays: the model is checked once, not twice. Any other
# SavedModel (made by a user, by dataclasses.replace) is checked when it is made.
_READ_AND_CHECKED: ContextVar[bool] = ContextVar("gradfit_read_and_checked", default=False)


@dataclass(frozen=True, eq=False)
class SavedModel(LinearMap):
    """A trained model with everything needed to use and describe it.

    Attributes
    ----------
    weight : (k, d) float32 or float64 tensor
        In original units: predictions are ``X @ weight.T + bias``.
    bias : (k,) float32 or float64 tensor
    feature_names : tuple of d str
    target_names : tuple of k str
    solver : str
        The solver that trained the model (``"lstsq"``, ``"gd"``, ``"sgd"``...).
    hyperparameters : dict
        JSON-serializable settings of the solver.
    scaling_mean, scaling_scale : (d,) float64 tensors or None
        Statistics of the standardization used in training (informational: ``weight`` and
        ``bias`` already include it). Both or neither.
    final_loss : float or None
    loss_history : list of float
        One loss per epoch.
    metrics : dict
        JSON-serializable evaluation summary (e.g. training-set MSE and R² per target).
    versions : dict of str to str
        Versions of gradfit, torch and Python that wrote the file (filled in by
        :func:`save_model`).
    created : str or None
        UTC time of saving, ISO 8601 (filled in by :func:`save_model`).
    format_version : int
    inference : dict or None
        The classical inference of an unpenalized least-squares fit, JSON-serializable:
        ``{"predictor": OLSPredictor.to_dict(), "summary": OLSResult.as_dict(), "text":
        OLSResult.summary()}`` (see :meth:`interval_predictor`); None for other models.
    design : dict or None
        The :meth:`gradfit.design.Design.to_dict` document of a model fitted from a formula or
        from categorical columns: ``feature_names`` are then its encoded columns (e.g.
        ``woolB``), and new data are encoded by it (:meth:`encoding`). None: the features are
        columns of the data, as they are.
    rows_dropped : int
        Rows the fit left out for a missing value in a column it uses (``missing="drop"``).
    """

    weight: torch.Tensor
    bias: torch.Tensor
    feature_names: tuple[str, ...]
    target_names: tuple[str, ...]
    solver: str = ""
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    scaling_mean: torch.Tensor | None = None
    scaling_scale: torch.Tensor | None = None
    final_loss: float | None = None
    loss_history: list[float] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    created: str | None = None
    format_version: int = FORMAT_VERSION
    inference: dict[str, Any] | None = None
    design: dict[str, Any] | None = None
    rows_dropped: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "feature_names", tuple(self.feature_names))
        object.__setattr__(self, "target_names", tuple(self.target_names))
        if not _READ_AND_CHECKED.get():
            problem = _problem(self)
            if problem is not None:
                raise ValidationError(problem)
        if self.scaling_mean is not None and self.scaling_scale is not None:
            object.__setattr__(self, "scaling_mean", self.scaling_mean.detach().double())
            object.__setattr__(self, "scaling_scale", self.scaling_scale.detach().double())

    @property
    def has_checksum(self) -> bool:
        """Whether the file format carries a checksum (verified on loading): False for files
        written by a gradfit before format version 3, whose contents cannot be verified."""
        return self.format_version >= CHECKSUM_SINCE

    def encoding(self) -> Design | None:
        """The :class:`gradfit.design.Design` that encodes new data for this model (from
        :attr:`design`), or None for a model of plain columns.

        Raises
        ------
        ValidationError
            :attr:`design` is not a design document.
        """
        if self.design is None:
            return None
        design: Design = design_layer.Design.from_json(self.design)  # formulaic and pandas
        return design

    def interval_predictor(self) -> Any:
        """The :class:`gradfit.inference.OLSPredictor` of confidence and prediction intervals.

        Raises
        ------
        ValidationError
            The model holds no inference: a penalized fit, a gradient-descent fit that did not
            reach the least-squares optimum, or a file from before format version 2.
        """
        if self.inference is None:
            alpha = self.hyperparameters.get("alpha")
            if isinstance(alpha, (int, float)) and alpha > 0:
                why = f"it is a penalized fit (alpha={alpha:g}), for which they do not apply"
            elif self.format_version < 2:
                why = f"it was written in format version {self.format_version}, before they were"
            elif self.solver == "lstsq":
                raise ValidationError(
                    "this model holds no interval data: its fit had no coefficient table (too "
                    "few rows, or a covariance beyond float64; the fit said why in a note); "
                    "refit with more rows or rescaled columns to get intervals"
                )
            else:
                why = f"its {self.solver or 'solver'} fit did not reach the least-squares optimum"
            raise ValidationError(
                f"this model holds no interval data: {why}; refit it with --solver lstsq "
                "(alpha 0) to get intervals"
            )
        predictor = OLSPredictor.from_dict(self.inference.get("predictor"), self.weight, self.bias)
        # A weighted fit's file records its weights column: R's warning for a prediction
        # interval without the new rows' weights (OLSPredictor.predict).
        return replace(predictor, weighted=self.hyperparameters.get("weights") is not None)

    def to_linear_model(self) -> LinearModel:
        """The bare :class:`~gradfit.model.LinearModel` with its names."""
        return LinearModel(self.weight, self.bias, self.feature_names, self.target_names)


def _problem(model: SavedModel) -> str | None:
    """What is inconsistent in ``model``, or None: the tensors' types here, the rest as a
    model file is checked (:func:`gradfit.model_file.model_problem`)."""
    for name, tensor in (("weight", model.weight), ("bias", model.bias)):
        if not isinstance(tensor, torch.Tensor):
            return f"{name} must be a torch.Tensor, got {type(tensor).__name__}"
        if tensor.dtype not in _FLOAT_DTYPES:
            return f"{name} must be float32 or float64, got {tensor.dtype}"
    stats: list[np.ndarray | None] = []
    for name, given in (
        ("scaling_mean", model.scaling_mean),
        ("scaling_scale", model.scaling_scale),
    ):
        if given is not None and (
            not isinstance(given, torch.Tensor) or not given.is_floating_point()
        ):
            return f"{name} must be a floating-point tensor"
        stats.append(None if given is None else given.detach().cpu().double().numpy())
    return model_problem(
        model.weight.detach().cpu().numpy(),
        model.bias.detach().cpu().numpy(),
        model.feature_names,
        model.target_names,
        stats[0],
        stats[1],
        model.rows_dropped,
        model.design,
    )


# ---------------------------------------------------------------------------------------------
# saving


def save_model(path: str | Path, model: SavedModel) -> SavedModel:
    """Write ``model`` to a ``.safetensors`` file, atomically.

    The versions of gradfit, torch and Python and the UTC time are recorded. The file is written
    to a temporary file in the same directory, flushed to disk and renamed over ``path``; on any
    failure nothing is left behind and an existing ``path`` is untouched.

    Parameters
    ----------
    path : str or Path
        The output file; its directory must exist.
    model : SavedModel

    Returns
    -------
    SavedModel
        ``model`` with ``versions``, ``created`` and ``format_version`` as written.

    Raises
    ------
    ModelFileError
        The directory is missing or the file cannot be written.
    ValidationError
        ``hyperparameters`` or ``metrics`` are not JSON-serializable.

    Examples
    --------
    >>> import tempfile, pathlib, torch
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "model.safetensors"
    >>> m = SavedModel(torch.tensor([[2.0, -1.0]]), torch.tensor([0.5]), ("a", "b"), ("y",))
    >>> _ = save_model(f, m)
    >>> load_model(f).predict(torch.tensor([[1.0, 1.0]]))
    tensor([[1.5000]])
    """
    if not isinstance(model, SavedModel):
        raise ValidationError(f"model must be a SavedModel, got {type(model).__name__}")

    written = dataclasses.replace(
        model,
        versions={
            "gradfit": __version__,
            "torch": str(torch.__version__),
            "python": platform.python_version(),
        },
        created=datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        format_version=FORMAT_VERSION,
    )
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "feature_names": list(written.feature_names),
        "target_names": list(written.target_names),
        "scaling": None
        if written.scaling_mean is None or written.scaling_scale is None
        else {
            "mean": written.scaling_mean.tolist(),
            "scale": written.scaling_scale.tolist(),
        },
        "solver": written.solver,
        "hyperparameters": _jsonable(written.hyperparameters, "hyperparameters"),
        "final_loss": _jsonable(written.final_loss, "final_loss"),
        "loss_history": _jsonable(written.loss_history, "loss_history"),
        "metrics": _jsonable(written.metrics, "metrics"),
        "versions": written.versions,
        "created": written.created,
        "inference": _jsonable(written.inference, "inference"),
        "design": _jsonable(written.design, "design"),
        "rows_dropped": written.rows_dropped,
    }
    text = json.dumps(document, allow_nan=False, separators=(",", ":"))
    # Own, contiguous CPU copies: safetensors refuses tensors that share storage.
    tensors = {
        name: tensor.detach().to("cpu").clone(memory_format=torch.contiguous_format)
        for name, tensor in (("weight", written.weight), ("bias", written.bias))
    }
    data = seal(tensors, text)
    atomic_write(path, lambda fh: fh.write(data), error=ModelFileError)
    return written


def _jsonable(value: Any, where: str) -> Any:
    """``value`` as plain JSON types; non-finite floats become "nan", "inf" or "-inf"."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValidationError(f"{where} keys must be strings, got {key!r}")
            out[key] = _jsonable(item, f"{where}[{key!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [_jsonable(item, f"{where}[{i}]") for i, item in enumerate(value)]
    raise ValidationError(
        f"{where} must be JSON-serializable (numbers, strings, lists, dicts), "
        f"got {type(value).__name__}"
    )


# ---------------------------------------------------------------------------------------------
# loading


def load_model(path: str | Path) -> SavedModel:
    """Read and check a model file written by :func:`save_model`.

    Nothing is allocated before it is checked (:mod:`gradfit.tensorfile`): the path must be a
    regular file; the safetensors header is parsed and checked (its length bounded, every
    tensor's dtype, shape and offsets against the file size) before any tensor is read, so
    that a truncated, corrupt or foreign file (a pickle or ``torch.save`` archive is never
    unpickled) fails with a message that says what it is. Then the gradfit document: its format
    and version, its checksum (format version 3 on), every field's type and range, and the
    tensors' declared shapes against the feature and target names. Only then are the tensors
    decoded and checked (finite, the scaling, the design, the interval data). The reading and
    every check are :func:`gradfit.model_file.read_model`'s, without torch (``gradfit info``
    uses it alone); this builds the tensors from its NumPy arrays.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    SavedModel

    Raises
    ------
    ModelFileError
        Missing, not a regular file, truncated, corrupt (a checksum mismatch included) or
        foreign file, a file from a newer gradfit, or tensors and names that do not fit
        together; the one-line message starts with the path.
    """
    record = read_model(path)  # every check (gradfit.model_file): no torch there
    fields = dict(record.fields)
    for key in ("scaling_mean", "scaling_scale"):
        if fields[key] is not None:
            fields[key] = torch.from_numpy(fields[key])
    # read_model ran SavedModel's checks (model_problem) on these very arrays; the tensors
    # share their memory (float32 or float64, as decoded): they are not checked again.
    token = _READ_AND_CHECKED.set(True)
    try:
        return SavedModel(
            weight=torch.from_numpy(record.weight), bias=torch.from_numpy(record.bias), **fields
        )
    finally:
        _READ_AND_CHECKED.reset(token)
