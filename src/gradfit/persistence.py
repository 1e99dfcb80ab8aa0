"""Model files: one ``.safetensors`` file holding the weights and a JSON description.

A gradfit model file is a standard `safetensors <https://github.com/huggingface/safetensors>`_
file with exactly two tensors, ``weight`` (k, d) and ``bias`` (k,), always in the data's original
units, so that ``Y_hat = X @ weight.T + bias`` whatever scaling was used in training. Its
safetensors metadata holds one key, ``"gradfit"``, whose value is a JSON document::

    {"format": "gradfit-model", "format_version": 2,
     "feature_names": [...], "target_names": [...],
     "scaling": {"mean": [...], "scale": [...]} or null,
     "solver": "...", "hyperparameters": {...}, "final_loss": 0.5, "loss_history": [...],
     "metrics": {...}, "versions": {"gradfit": "...", "torch": "...", "python": "..."},
     "created": "2025-01-01T12:00:00Z",
     "inference": null or {"predictor": {...}, "summary": {...}, "text": "..."}}

``inference`` (new in format version 2; version 1 files, which lack it, still load) is what
confidence and prediction intervals need (:meth:`gradfit.inference.OLSPredictor.to_dict`:
the covariance, sigma and the residual degrees of freedom) with the coefficient table of the
fit (:meth:`gradfit.inference.OLSResult.as_dict` and its text), for models of an unpenalized
least-squares fit (``lstsq``, or ``gd``/``sgd`` converged to the optimum); null otherwise.

Non-finite floats, which JSON cannot hold, are written as the strings ``"nan"``, ``"inf"`` and
``"-inf"`` (and read back as floats in ``final_loss`` and ``loss_history``).

gradfit never unpickles: :func:`load_model` parses the safetensors header itself before handing
the bytes to ``safetensors``, and refuses pickles (``torch.save`` files) with a message that says
so. Every problem is a :class:`~gradfit.errors.ModelFileError` with a one-line message.
"""

from __future__ import annotations

import dataclasses
import json
import math
import platform
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load as safetensors_load
from safetensors.torch import save as safetensors_save

from gradfit.atomic import atomic_write
from gradfit.errors import ModelFileError, ValidationError
from gradfit.model import LinearModel, predict

__all__ = ["FORMAT", "FORMAT_VERSION", "SavedModel", "load_model", "save_model"]

FORMAT = "gradfit-model"
FORMAT_VERSION = 2
_METADATA_KEY = "gradfit"
_TENSOR_NAMES = ("bias", "weight")
_FLOAT_DTYPES = {torch.float32: "F32", torch.float64: "F64"}
_MAX_HEADER_BYTES = 100_000_000
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


@dataclass(frozen=True, eq=False)
class SavedModel:
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

    def __post_init__(self) -> None:
        object.__setattr__(self, "feature_names", tuple(self.feature_names))
        object.__setattr__(self, "target_names", tuple(self.target_names))
        problem = _problem(self)
        if problem is not None:
            raise ValidationError(problem)
        if self.scaling_mean is not None and self.scaling_scale is not None:
            object.__setattr__(self, "scaling_mean", self.scaling_mean.detach().double())
            object.__setattr__(self, "scaling_scale", self.scaling_scale.detach().double())

    @property
    def n_features(self) -> int:
        return int(self.weight.shape[1])

    @property
    def n_targets(self) -> int:
        return int(self.weight.shape[0])

    def predict(self, X: torch.Tensor) -> torch.Tensor:
        """(n, d) -> (n, k): ``X @ weight.T + bias``, in ``X``'s dtype."""
        return predict(X, self.weight, self.bias)

    def interval_predictor(self) -> Any:
        """The :class:`gradfit.inference.OLSPredictor` of confidence and prediction intervals.

        Raises
        ------
        ValidationError
            The model holds no inference: a penalized fit, a gradient-descent fit that did not
            reach the least-squares optimum, or a file from before format version 2.
        """
        from gradfit.inference import OLSPredictor

        if self.inference is None:
            alpha = self.hyperparameters.get("alpha")
            if isinstance(alpha, (int, float)) and alpha > 0:
                why = f"it is a penalized fit (alpha={alpha:g}), for which they do not apply"
            elif self.format_version < 2:
                why = f"it was written in format version {self.format_version}, before they were"
            else:
                why = f"its {self.solver or 'solver'} fit did not reach the least-squares optimum"
            raise ValidationError(
                f"this model holds no interval data: {why}; refit it with --solver lstsq "
                "(alpha 0) to get intervals"
            )
        return OLSPredictor.from_dict(self.inference.get("predictor"), self.weight, self.bias)

    def to_linear_model(self) -> LinearModel:
        """The bare :class:`~gradfit.model.LinearModel` with its names."""
        return LinearModel(self.weight, self.bias, self.feature_names, self.target_names)


def _problem(model: SavedModel) -> str | None:
    """What is inconsistent in ``model``, or None."""
    for kind, names in (("feature", model.feature_names), ("target", model.target_names)):
        if not names:
            return f"a model needs at least one {kind} name"
        for name in names:
            if not isinstance(name, str) or not name:
                return f"{kind} names must be non-empty strings, got {name!r}"
        if len(set(names)) != len(names):
            repeated = next(name for name in names if names.count(name) > 1)
            return f"{kind} name {repeated!r} appears more than once; names must be unique"
    k, d = len(model.target_names), len(model.feature_names)
    for name, tensor, shape in (("weight", model.weight, (k, d)), ("bias", model.bias, (k,))):
        if not isinstance(tensor, torch.Tensor):
            return f"{name} must be a torch.Tensor, got {type(tensor).__name__}"
        if tensor.dtype not in _FLOAT_DTYPES:
            return f"{name} must be float32 or float64, got {tensor.dtype}"
        if tuple(tensor.shape) != shape:
            return (
                f"{name} has shape {tuple(tensor.shape)} but {k} target name(s) and {d} "
                f"feature name(s) need shape {shape}"
            )
        if not bool(torch.isfinite(tensor).all()):
            return f"{name} holds non-finite values (NaN or inf)"
    if (model.scaling_mean is None) != (model.scaling_scale is None):
        return "scaling_mean and scaling_scale must be given together or not at all"
    for name, stats in (
        ("scaling_mean", model.scaling_mean),
        ("scaling_scale", model.scaling_scale),
    ):
        if stats is None:
            continue
        if not isinstance(stats, torch.Tensor) or not stats.is_floating_point():
            return f"{name} must be a floating-point tensor"
        if tuple(stats.shape) != (d,):
            return f"{name} has shape {tuple(stats.shape)}, expected ({d},) for {d} features"
        if not bool(torch.isfinite(stats).all()):
            return f"{name} holds non-finite values"
    if model.scaling_scale is not None and not bool((model.scaling_scale > 0).all()):
        return "scaling_scale must be positive"
    return None


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
    import gradfit  # at call time: gradfit/__init__ may import this module

    written = dataclasses.replace(
        model,
        versions={
            "gradfit": str(gradfit.__version__),
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
    }
    text = json.dumps(document, allow_nan=False, separators=(",", ":"))
    # Own, contiguous CPU copies: safetensors refuses tensors that share storage.
    tensors = {
        name: tensor.detach().to("cpu").clone(memory_format=torch.contiguous_format)
        for name, tensor in (("weight", written.weight), ("bias", written.bias))
    }
    data = safetensors_save(tensors, metadata={_METADATA_KEY: text})
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

    The safetensors header is parsed and checked before any tensor is read, so that a truncated,
    corrupt or foreign file (a pickle or ``torch.save`` archive is never unpickled) fails with a
    message that says what it is.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    SavedModel

    Raises
    ------
    ModelFileError
        Missing, truncated, corrupt or foreign file, a file from a newer gradfit, or tensors and
        names that do not fit together.
    """
    source = str(path)
    file = Path(path)
    try:
        if file.is_dir():
            raise ModelFileError(f"{source}: is a directory, not a model file; give the file")
        with file.open("rb") as fh:
            size = file.stat().st_size
            prefix = fh.read(8)
            header, header_size = _read_header(fh, prefix, size, source)
            expected = 8 + header_size + _check_entries(header, source)
            if size < expected:
                raise ModelFileError(
                    f"{source}: truncated: the file has {size} bytes but its header describes "
                    f"{expected}; the file was cut short, save the model again"
                )
            if size > expected:
                raise ModelFileError(
                    f"{source}: corrupt: {size - expected} unexpected bytes after the tensor data; "
                    "save the model again"
                )
            fh.seek(0)
            data = fh.read()
    except FileNotFoundError:
        raise ModelFileError(f"{source}: no such model file; check the path") from None
    except PermissionError:
        raise ModelFileError(f"{source}: permission denied; check the file's permissions") from None
    except OSError as exc:
        raise ModelFileError(f"{source}: cannot read ({exc.strerror or exc})") from None
    document = _gradfit_document(header, source)
    try:
        tensors = safetensors_load(data)
    except Exception as exc:  # safetensors raises its own SafetensorError (an Exception)
        message = " ".join(str(exc).split())[:200]
        raise ModelFileError(f"{source}: corrupt tensor data ({message})") from None
    return _build(tensors, document, source)


def _foreign(prefix: bytes) -> str | None:
    """What a file that is not safetensors looks like, from its first bytes."""
    if len(prefix) >= 2 and prefix[0] == 0x80 and 2 <= prefix[1] <= 5:
        return "it looks like a Python pickle; gradfit never unpickles files"
    if prefix.startswith(b"PK\x03\x04"):
        return (
            "it looks like a ZIP archive such as torch.save writes; gradfit never unpickles files"
        )
    if prefix.startswith(b"\x1f\x8b"):
        return "it looks like a gzip-compressed file"
    if prefix and all(32 <= byte < 127 or byte in b"\t\r\n" for byte in prefix):
        return "it looks like a text file"
    return None


def _not_ours(source: str, prefix: bytes, fallback: str) -> ModelFileError:
    what = _foreign(prefix)
    if what is not None:
        return ModelFileError(
            f"{source}: not a gradfit model file ({what}); save the model with gradfit"
        )
    return ModelFileError(f"{source}: {fallback}")


def _read_header(fh: Any, prefix: bytes, size: int, source: str) -> tuple[dict[str, Any], int]:
    """The safetensors JSON header (8-byte little-endian length, then JSON) and its length."""
    if len(prefix) < 8:
        raise _not_ours(
            source,
            prefix,
            f"too short to be a model file ({size} bytes); it is truncated or not a gradfit "
            "model file",
        )
    (length,) = struct.unpack("<Q", prefix)
    if length > size - 8 or length >= _MAX_HEADER_BYTES or length < 2:
        if length < _MAX_HEADER_BYTES and length >= 2 and _foreign(prefix) is None:
            raise ModelFileError(
                f"{source}: truncated: the header alone needs {length} bytes but only {size - 8} "
                "follow; the file was cut short, save the model again"
            )
        raise _not_ours(
            source, prefix, "not a safetensors model file (its header length is impossible)"
        )
    raw = fh.read(length)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _not_ours(
            source,
            prefix,
            "corrupt: the safetensors header is not valid JSON; save the model again",
        ) from None
    if not isinstance(header, dict):
        raise ModelFileError(f"{source}: corrupt: the safetensors header is not a JSON object")
    return header, length


def _check_entries(header: dict[str, Any], source: str) -> int:
    """Check each tensor entry of the header; return the size of the data section."""
    end = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        entry = entry if isinstance(entry, dict) else {}
        offsets: Any = entry.get("data_offsets")
        if (
            not isinstance(entry.get("dtype"), str)
            or not _int_list(entry.get("shape"))
            or not _int_list(offsets)
            or len(offsets) != 2
            or offsets[0] > offsets[1]
        ):
            raise ModelFileError(
                f"{source}: corrupt: the header entry for tensor {name!r} is malformed; "
                "save the model again"
            )
        end = max(end, offsets[1])
    return end


def _int_list(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(item, int) and not isinstance(item, bool) and item >= 0 for item in value
    )


def _gradfit_document(header: dict[str, Any], source: str) -> dict[str, Any]:
    """The gradfit JSON document, after the format, version and tensor-layout checks."""
    metadata = header.get("__metadata__")
    if not isinstance(metadata, dict) or _METADATA_KEY not in metadata:
        raise ModelFileError(
            f"{source}: not a gradfit model file (a safetensors file without gradfit metadata); "
            "save the model with gradfit"
        )
    try:
        document = json.loads(metadata[_METADATA_KEY])
    except (TypeError, json.JSONDecodeError):
        document = None
    if not isinstance(document, dict):
        raise ModelFileError(f"{source}: corrupt: the gradfit metadata is not a JSON object")
    if document.get("format") != FORMAT:
        raise ModelFileError(
            f"{source}: not a gradfit model file (format {document.get('format')!r}, expected "
            f"{FORMAT!r})"
        )
    version = document.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ModelFileError(
            f"{source}: corrupt: format_version must be a positive integer, got {version!r}"
        )
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{source}: written by a newer gradfit (format version {version}, this gradfit "
            f"reads up to {FORMAT_VERSION}); upgrade gradfit"
        )
    names = sorted(name for name in header if name != "__metadata__")
    if names != list(_TENSOR_NAMES):
        found = ", ".join(repr(name) for name in names) or "none"
        raise ModelFileError(
            f"{source}: expected exactly the tensors 'bias' and 'weight', found {found}; "
            "the file is corrupt or not a gradfit model"
        )
    for name in names:
        dtype = header[name]["dtype"]
        if dtype not in _FLOAT_DTYPES.values():
            raise ModelFileError(
                f"{source}: tensor {name!r} has dtype {dtype}; gradfit model tensors are F32 or F64"
            )
    return document


def _build(tensors: dict[str, torch.Tensor], document: dict[str, Any], source: str) -> SavedModel:
    def bad(key: str, expected: str) -> ModelFileError:
        got = document.get(key)
        shown = repr(got) if len(repr(got)) <= 60 else type(got).__name__
        return ModelFileError(f"{source}: corrupt metadata: {key} must be {expected}, got {shown}")

    def names(key: str) -> tuple[str, ...]:
        value = document.get(key)
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise bad(key, "a list of strings")
        return tuple(value)

    def number(value: Any) -> float:
        if isinstance(value, str) and value in _NON_FINITE:
            return _NON_FINITE[value]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ValueError(value)

    scaling = document.get("scaling")
    mean = scale = None
    if scaling is not None:
        try:
            mean = torch.tensor(scaling["mean"], dtype=torch.float64)
            scale = torch.tensor(scaling["scale"], dtype=torch.float64)
        except (TypeError, KeyError, ValueError, RuntimeError):
            raise bad("scaling", "null or {'mean': [...], 'scale': [...]}") from None
    try:
        loss = document.get("final_loss")
        final_loss = None if loss is None else number(loss)
    except ValueError:
        raise bad("final_loss", "a number or null") from None
    history = document.get("loss_history", [])
    try:
        if not isinstance(history, list):
            raise ValueError(history)
        loss_history = [number(item) for item in history]
    except ValueError:
        raise bad("loss_history", "a list of numbers") from None
    for key, kind in (("hyperparameters", dict), ("metrics", dict), ("versions", dict)):
        if not isinstance(document.get(key, {}), kind):
            raise bad(key, "a JSON object")
    for key in ("solver", "created"):
        if not isinstance(document.get(key, ""), (str, type(None))):
            raise bad(key, "a string")
    inference = document.get("inference")
    if inference is not None and (
        not isinstance(inference, dict)
        or not isinstance(inference.get("summary"), dict)
        or not isinstance(inference.get("text"), str)
    ):
        raise bad("inference", "null or {'predictor': {...}, 'summary': {...}, 'text': '...'}")
    try:
        model = SavedModel(
            weight=tensors["weight"],
            bias=tensors["bias"],
            feature_names=names("feature_names"),
            target_names=names("target_names"),
            solver=document.get("solver") or "",
            hyperparameters=document.get("hyperparameters", {}),
            scaling_mean=mean,
            scaling_scale=scale,
            final_loss=final_loss,
            loss_history=loss_history,
            metrics=document.get("metrics", {}),
            versions={str(k): str(v) for k, v in document.get("versions", {}).items()},
            created=document.get("created"),
            format_version=document["format_version"],
            inference=inference,
        )
    except ValidationError as exc:
        raise ModelFileError(
            f"{source}: {exc}; the file is corrupt or was not written by gradfit"
        ) from None
    if inference is not None:
        try:
            model.interval_predictor()  # checks the interval data against weight and bias
        except ModelFileError as exc:
            raise ModelFileError(
                f"{source}: corrupt interval data: {exc}; save the model again"
            ) from None
    return model
