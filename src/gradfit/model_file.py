"""A model file read and checked without torch: what :func:`gradfit.persistence.load_model`
builds its :class:`~gradfit.persistence.SavedModel` from, and all that ``gradfit info`` needs
(so that it answers at once: issue 23).

Every check that decides whether a file is a valid gradfit model lives here, once: the
safetensors layout (:mod:`gradfit.tensorfile`), the gradfit document (format and version, the
seal, every field's type and range), the tensors (names, dtype, shapes against the feature and
target names, finiteness), the scaling statistics, the design document and the interval data.
The tensors are decoded from the file's bytes as NumPy arrays (float32 or float64, as stored).
The checks of the model's own consistency (:func:`model_problem`) and of its interval data
(:func:`interval_parts`, :func:`estimability_parts`) take NumPy arrays, so that
:class:`~gradfit.persistence.SavedModel` and :class:`~gradfit.inference.OLSPredictor` run the
same code on the tensors a user gives them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gradfit.design.document import DesignDocument
from gradfit.errors import ModelFileError, ValidationError
from gradfit.settings import ALL_COV_TYPES
from gradfit.tensorfile import (
    DOCUMENT_KEY,
    TensorFile,
    check_in_range,
    check_version,
    parse_json,
    read_tensor_file,
)
from gradfit.tensorfile import shown as _shown

__all__ = [
    "CHECKSUM_SINCE",
    "FORMAT",
    "FORMAT_VERSION",
    "ModelRecord",
    "design_document",
    "estimability_parts",
    "interval_parts",
    "match_interval",
    "model_problem",
    "read_model",
]

FORMAT = "gradfit-model"
FORMAT_VERSION = 4
CHECKSUM_SINCE = 3  # the first format version whose files carry a checksum
TENSOR_NAMES = ("bias", "weight")
_NUMPY_DTYPES: dict[str, np.dtype[Any]] = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8")}
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}

# The interval data (gradfit.inference.OLSPredictor.to_dict)
INTERVAL_FORMAT = "gradfit-ols-intervals"
INTERVAL_VERSION = 1
MAX_DF_RESID = 2**53  # beyond, the t quantile is the normal one; a count no file holds


@dataclass(frozen=True, eq=False)
class ModelRecord:
    """A checked model file: ``weight`` (k, d) and ``bias`` (k,) as stored (float32 or
    float64 NumPy arrays), and ``fields``: the other :class:`~gradfit.persistence.SavedModel`
    arguments (``scaling_mean`` and ``scaling_scale`` as float64 arrays or None)."""

    weight: np.ndarray
    bias: np.ndarray
    fields: dict[str, Any]


def read_model(path: str | Path) -> ModelRecord:
    """Read and check a model file (see :func:`gradfit.persistence.load_model`, whose errors
    these are: a :class:`ModelFileError` whose one-line message starts with the path)."""
    source = str(path)
    try:
        file = read_tensor_file(path)
    except FileNotFoundError:
        raise ModelFileError(f"{source}: no such model file; check the path") from None
    document, text = _gradfit_document(file)
    if document["format_version"] >= CHECKSUM_SINCE:
        file.verify(text)
    fields = _fields(document, source)
    k, d = len(fields["target_names"]), len(fields["feature_names"])
    for name, shape in (("weight", (k, d)), ("bias", (k,))):
        declared = file.entries[name].shape
        if declared != shape:
            raise ModelFileError(
                f"{source}: {name} has shape {declared} but {k} target name(s) and {d} "
                f"feature name(s) need shape {shape}; the file is corrupt or was not written "
                "by gradfit"
            )
    weight, bias = (_decode(file, name) for name in ("weight", "bias"))
    problem = model_problem(
        weight,
        bias,
        fields["feature_names"],
        fields["target_names"],
        fields["scaling_mean"],
        fields["scaling_scale"],
        fields["rows_dropped"],
        fields["design"],
    )
    if problem is not None:
        raise ModelFileError(
            f"{source}: {problem}; the file is corrupt or was not written by gradfit"
        )
    inference = fields["inference"]
    if inference is not None:
        try:
            match_interval(interval_parts(inference.get("predictor")), weight, bias)
        except ModelFileError as exc:
            raise ModelFileError(
                f"{source}: corrupt interval data: {exc}; save the model again"
            ) from None
    return ModelRecord(weight, bias, fields)


def _decode(file: TensorFile, name: str) -> np.ndarray:
    """The tensor ``name`` as a NumPy array of its stored dtype (the layout is checked)."""
    entry = file.entries[name]
    dtype = _NUMPY_DTYPES[entry.dtype]
    array = np.frombuffer(
        file.data, dtype=dtype, count=math.prod(entry.shape), offset=file.data_start + entry.begin
    )
    return array.astype(dtype.newbyteorder("="), copy=True).reshape(entry.shape)


def _gradfit_document(file: TensorFile) -> tuple[dict[str, Any], str]:
    """The gradfit JSON document and its text, after the format, version, number-range and
    tensor-layout checks."""
    source = file.source
    text = file.metadata.get(DOCUMENT_KEY)
    if text is None:
        raise ModelFileError(
            f"{source}: not a gradfit model file (a safetensors file without gradfit metadata); "
            "save the model with gradfit"
        )
    try:
        document = parse_json(text)
    except ValueError as exc:
        raise ModelFileError(f"{source}: corrupt: the gradfit metadata {exc}") from None
    if not isinstance(document, dict):
        raise ModelFileError(f"{source}: corrupt: the gradfit metadata is not a JSON object")
    if document.get("kind") == "gradfit-checkpoint" and "format_version" not in document:
        raise ModelFileError(
            f"{source}: is a gradfit checkpoint (a fit's training state), not a model file; give "
            "the model file that fit wrote with --out, or finish the fit with --checkpoint "
            f"{source} --resume"
        )
    if document.get("format") != FORMAT:
        raise ModelFileError(
            f"{source}: not a gradfit model file (format {_shown(document.get('format'))}, "
            f"expected {FORMAT!r})"
        )
    check_version(
        document.get("format_version"),
        FORMAT_VERSION,
        corrupt=lambda v: (
            f"{source}: corrupt: format_version must be a positive integer, got {_shown(v)}"
        ),
        newer=lambda v: (
            f"{source}: written by a newer gradfit (format version {_shown(v)}, this "
            f"gradfit reads up to {FORMAT_VERSION}); upgrade gradfit"
        ),
    )
    check_in_range(
        document, source, "corrupt metadata", "the file is corrupt or was not written by gradfit"
    )
    names = sorted(file.entries)
    if names != list(TENSOR_NAMES):
        found = ", ".join(_shown(name) for name in names[:5]) or "none"
        raise ModelFileError(
            f"{source}: expected exactly the tensors 'bias' and 'weight', found {found}"
            f"{', ...' if len(names) > 5 else ''}; the file is corrupt or not a gradfit model"
        )
    for name in names:
        dtype = file.entries[name].dtype
        if dtype not in _NUMPY_DTYPES:
            raise ModelFileError(
                f"{source}: tensor {name!r} has dtype {dtype}; gradfit model tensors are F32 or F64"
            )
    return document, text


def _fields(document: dict[str, Any], source: str) -> dict[str, Any]:
    """Every field of the document checked for its type and range, as :class:`SavedModel`
    arguments (the tensors aside; the scaling statistics as float64 arrays)."""

    def bad(key: str, expected: str) -> ModelFileError:
        return ModelFileError(
            f"{source}: corrupt metadata: {key} must be {expected}, got {_shown(document.get(key))}"
        )

    def names(key: str) -> tuple[str, ...]:
        value = document.get(key)
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise bad(key, "a list of strings")
        return tuple(value)

    def number(value: Any) -> float:
        if isinstance(value, str) and value in _NON_FINITE:
            return _NON_FINITE[value]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)  # in range: number_out_of_range checked every number
        raise ValueError(value)

    def finite_list(value: Any) -> list[float]:
        if not isinstance(value, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
        ):
            raise ValueError(value)
        return [float(v) for v in value]

    fields: dict[str, Any] = {
        "feature_names": names("feature_names"),
        "target_names": names("target_names"),
        "format_version": document["format_version"],
    }
    scaling = document.get("scaling")
    fields["scaling_mean"] = fields["scaling_scale"] = None
    if scaling is not None:
        try:
            if not isinstance(scaling, dict):
                raise ValueError(scaling)
            fields["scaling_mean"] = np.array(finite_list(scaling["mean"]), dtype=np.float64)
            fields["scaling_scale"] = np.array(finite_list(scaling["scale"]), dtype=np.float64)
        except (KeyError, ValueError):
            raise bad("scaling", "null or {'mean': [...], 'scale': [...]}") from None
    try:
        loss = document.get("final_loss")
        fields["final_loss"] = None if loss is None else number(loss)
    except ValueError:
        raise bad("final_loss", "a number or null") from None
    history = document.get("loss_history", [])
    try:
        if not isinstance(history, list):
            raise ValueError(history)
        fields["loss_history"] = [number(item) for item in history]
    except ValueError:
        raise bad("loss_history", "a list of numbers") from None
    for key in ("hyperparameters", "metrics", "versions"):
        value = document.get(key, {})
        if not isinstance(value, dict):
            raise bad(key, "a JSON object")
        fields[key] = value
    fields["versions"] = {str(k): str(v) for k, v in fields["versions"].items()}
    for key in ("solver", "created"):
        if not isinstance(document.get(key), (str, type(None))):
            raise bad(key, "a string")
    fields["solver"] = document.get("solver") or ""
    fields["created"] = document.get("created")
    inference = document.get("inference")
    if inference is not None and (
        not isinstance(inference, dict)
        or not isinstance(inference.get("summary"), dict)
        or not isinstance(inference.get("text"), str)
    ):
        raise bad("inference", "null or {'predictor': {...}, 'summary': {...}, 'text': '...'}")
    if inference is not None and inference.get("estimability") is not None:
        # A rank-deficient fit's null space, for predict's warning: checked here, with the rest.
        try:
            estimability_parts(inference["estimability"], len(fields["feature_names"]))
        except ModelFileError as exc:
            raise ModelFileError(f"{source}: corrupt estimability data: {exc}") from None
    fields["inference"] = inference
    design = document.get("design")
    if design is not None and not isinstance(design, dict):
        raise bad("design", "null or a JSON object")
    fields["design"] = design
    dropped = document.get("rows_dropped", 0)
    if isinstance(dropped, bool) or not isinstance(dropped, int) or dropped < 0:
        raise bad("rows_dropped", "a count (an integer >= 0)")
    fields["rows_dropped"] = dropped
    return fields


def model_problem(
    weight: np.ndarray,
    bias: np.ndarray,
    feature_names: tuple[Any, ...],
    target_names: tuple[Any, ...],
    scaling_mean: np.ndarray | None,
    scaling_scale: np.ndarray | None,
    rows_dropped: Any,
    design: dict[str, Any] | None,
) -> str | None:
    """What is inconsistent in a model (its tensors as float NumPy arrays), or None."""
    for kind, names in (("feature", feature_names), ("target", target_names)):
        if not names:
            return f"a model needs at least one {kind} name"
        for name in names:
            if not isinstance(name, str) or not name:
                return f"{kind} names must be non-empty strings, got {name!r}"
        if len(set(names)) != len(names):
            repeated = next(name for name in names if names.count(name) > 1)
            return f"{kind} name {repeated!r} appears more than once; names must be unique"
    k, d = len(target_names), len(feature_names)
    for name, array, shape in (("weight", weight, (k, d)), ("bias", bias, (k,))):
        if tuple(array.shape) != shape:
            return (
                f"{name} has shape {tuple(array.shape)} but {k} target name(s) and {d} "
                f"feature name(s) need shape {shape}"
            )
        if not bool(np.isfinite(array).all()):
            return f"{name} holds non-finite values (NaN or inf)"
    if (scaling_mean is None) != (scaling_scale is None):
        return "scaling_mean and scaling_scale must be given together or not at all"
    for name, stats in (("scaling_mean", scaling_mean), ("scaling_scale", scaling_scale)):
        if stats is None:
            continue
        if tuple(stats.shape) != (d,):
            return f"{name} has shape {tuple(stats.shape)}, expected ({d},) for {d} features"
        if not bool(np.isfinite(stats).all()):
            return f"{name} holds non-finite values"
    if scaling_scale is not None and not bool((scaling_scale > 0).all()):
        return "scaling_scale must be positive"
    if isinstance(rows_dropped, bool) or not isinstance(rows_dropped, int):
        return f"rows_dropped must be an integer, got {rows_dropped!r}"
    if rows_dropped < 0:
        return f"rows_dropped must be >= 0, got {rows_dropped}"
    if design is not None:
        try:
            columns = design_document(design).columns
        except ValidationError as exc:
            return f"design: {exc}"
        if tuple(columns) != tuple(feature_names):
            return (
                f"the design's columns {list(columns)} are not the feature names "
                f"{list(feature_names)}"
            )
    return None


def design_document(design: dict[str, Any]) -> DesignDocument:
    """A model's design document, checked (a ValidationError saying what is wrong if it is not
    one), without formulaic: :meth:`gradfit.design.DesignDocument.from_json`, the checks of
    :meth:`gradfit.design.Design.from_json` too."""
    return DesignDocument.from_json(design)


# ---------------------------------------------------------------------------------------------
# the interval data (gradfit.inference.predictor)


def brief(value: Any) -> str:
    """``value``'s repr for a one-line message, or its type when that is long."""
    text = repr(value) if not isinstance(value, int) or abs(value) < 10**40 else "a huge int"
    return text if len(text) <= 40 else type(value).__name__


def plain_array(value: Any, ndim: int, key: str) -> np.ndarray:
    """A nested list of finite numbers (not bools) of the given depth, as float64."""

    def check(item: Any, depth: int) -> None:
        if depth == 0:
            if isinstance(item, bool) or not isinstance(item, (int, float)):
                raise ModelFileError(f"{key} must hold numbers, got {brief(item)}")
            return
        if not isinstance(item, list):
            raise ModelFileError(f"{key} must be a {ndim}-level nested list, got {brief(item)}")
        for inner in item:
            check(inner, depth - 1)

    check(value, ndim)
    try:
        array = np.array(value, dtype=np.float64)
    except OverflowError:  # an integer beyond float64
        raise ModelFileError(f"{key} must hold finite numbers") from None
    except ValueError:  # ragged lists
        raise ModelFileError(f"{key} must be a rectangular {ndim}-level nested list") from None
    if array.ndim != ndim:
        raise ModelFileError(f"{key} must be a rectangular {ndim}-level nested list")
    if not bool(np.all(np.isfinite(array))):
        raise ModelFileError(f"{key} must hold finite numbers")
    return array


@dataclass(frozen=True)
class IntervalParts:
    """The interval data of :func:`interval_parts`, checked."""

    fit_intercept: bool
    cov_type: str
    df_resid: int
    center: np.ndarray  # (d,)
    sigma: np.ndarray  # (k,)
    covariance: np.ndarray  # (k, p, p)


def interval_parts(data: Any) -> IntervalParts:
    """The interval data (:meth:`gradfit.inference.OLSPredictor.to_dict`), checked (then
    :func:`match_interval` against the model's tensors); anything malformed or inconsistent
    raises :class:`~gradfit.errors.ModelFileError` naming the entry."""
    if not isinstance(data, Mapping):
        raise ModelFileError(f"interval data must be a mapping, got {type(data).__name__}")
    required = ("format", "version", "fit_intercept", "cov_type", "df_resid", "center")
    missing = [key for key in (*required, "sigma", "covariance") if key not in data]
    if missing:
        raise ModelFileError(f"interval data lack {', '.join(missing)}")
    if data["format"] != INTERVAL_FORMAT:
        raise ModelFileError(
            f"interval data have format {brief(data['format'])}, expected {INTERVAL_FORMAT!r}"
        )
    check_version(
        data["version"],
        INTERVAL_VERSION,
        corrupt=lambda v: f"interval data version must be a positive integer, got {brief(v)}",
        newer=lambda v: (
            f"interval data version {v} is newer than this gradfit reads "
            f"({INTERVAL_VERSION}); upgrade gradfit"
        ),
    )
    fit_intercept = data["fit_intercept"]
    if not isinstance(fit_intercept, bool):
        raise ModelFileError(f"fit_intercept must be true or false, got {brief(fit_intercept)}")
    cov_type = data["cov_type"]
    if cov_type not in ALL_COV_TYPES:
        raise ModelFileError(
            f"cov_type must be one of {', '.join(ALL_COV_TYPES)}, got {brief(cov_type)}"
        )
    df_resid = data["df_resid"]
    if (
        isinstance(df_resid, bool)
        or not isinstance(df_resid, int)
        or not 1 <= df_resid <= MAX_DF_RESID
    ):
        raise ModelFileError(
            f"df_resid must be an integer from 1 to {MAX_DF_RESID}, got {brief(df_resid)}"
        )
    center = plain_array(data["center"], 1, "center")
    sigma = plain_array(data["sigma"], 1, "sigma")
    covariance = plain_array(data["covariance"], 3, "covariance")
    with np.errstate(all="ignore"):
        squares_finite = bool(np.all(np.isfinite(sigma**2)))
    if not squares_finite:
        raise ModelFileError("sigma is too large: its square overflows float64")
    d, k = center.shape[0], sigma.shape[0]
    p = d + int(fit_intercept)
    if covariance.shape != (k, p, p):
        raise ModelFileError(
            f"covariance must have shape ({k}, {p}, {p}) for {k} target(s) and {d} "
            f"feature(s){' and an intercept' if fit_intercept else ''}, got "
            f"{covariance.shape}"
        )
    if bool(np.any(sigma < 0)) or bool(np.any(np.diagonal(covariance, 0, 1, 2) < 0)):
        raise ModelFileError("sigma and the covariance's diagonal must be non-negative")
    with np.errstate(all="ignore"):
        symmetric = np.allclose(covariance, covariance.transpose(0, 2, 1), rtol=1e-12, atol=0)
    if not symmetric:
        raise ModelFileError("covariance must be symmetric")
    return IntervalParts(fit_intercept, cov_type, df_resid, center, sigma, covariance)


def match_interval(parts: IntervalParts, weight: np.ndarray, bias: np.ndarray) -> None:
    """Check the interval data against the model's ``weight`` (k, d) and ``bias`` (k,)."""
    d, k = parts.center.shape[0], parts.sigma.shape[0]
    if tuple(weight.shape) != (k, d) or tuple(bias.shape) != (k,):
        raise ModelFileError(
            f"weight {tuple(weight.shape)} and bias ({bias.shape[0]},) do not match the interval "
            f"data of {k} target(s) and {d} feature(s)"
        )
    if not parts.fit_intercept and bool((bias != 0).any()):
        raise ModelFileError("a model without an intercept must have a zero bias")


def estimability_parts(
    data: Any, d: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    """The estimability data (:meth:`gradfit.inference.Estimability.to_dict`) of a model of
    ``d`` features, checked: center (d,), scale (d,), basis (d, m) and the aliased names;
    anything malformed raises :class:`~gradfit.errors.ModelFileError` naming the entry."""
    if not isinstance(data, Mapping):
        raise ModelFileError(f"estimability data must be a mapping, got {type(data).__name__}")
    missing = [key for key in ("center", "scale", "basis", "aliased") if key not in data]
    if missing:
        raise ModelFileError(f"estimability data lack {', '.join(missing)}")
    center = plain_array(data["center"], 1, "estimability center")
    scale = plain_array(data["scale"], 1, "estimability scale")
    basis = plain_array(data["basis"], 2, "estimability basis")
    aliased = data["aliased"]
    if not isinstance(aliased, list) or not all(isinstance(a, str) for a in aliased):
        raise ModelFileError(f"estimability aliased must be a list of names, got {aliased!r}")
    if center.shape != (d,) or scale.shape != (d,) or basis.shape[0] != d:
        raise ModelFileError(
            f"estimability data must describe {d} feature(s): center {center.shape}, "
            f"scale {scale.shape}, basis {basis.shape}"
        )
    if not bool(np.all(scale > 0)):
        raise ModelFileError("estimability scale must be positive")
    return center, scale, basis, tuple(aliased)
