"""The training state of the engine, and its state dict (tensors and JSON-able values, no
pickle): what a warm start, ``partial_fit``, a pickled estimator or a checkpoint needs to
continue training exactly where it stopped.

``state_dict()`` returns ``{"tensors": {name: tensor}, "meta": {name: JSON-able value}}``, the
split a safetensors file wants (tensors in the body, the rest as JSON in its header);
``TrainState.from_state_dict`` validates and rebuilds it. Continuing from a rebuilt state gives,
on the CPU, bitwise the weights of an uninterrupted run: the generator's state, the velocity and
the guards' counters travel with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

import numpy as np
import torch

from gradfit.errors import ValidationError
from gradfit.scaling import Standardizer
from gradfit.solvers.config import SolverConfig
from gradfit.solvers.guards import DivergenceGuard, EarlyStopping, PlateauRule

__all__ = ["STATE_FORMAT", "StateDict", "TrainState"]

STATE_FORMAT = 1  # the layout of state_dict(); bumped on any incompatible change
StateDict = dict[str, dict[str, Any]]

_OPTIONAL_TENSORS = ("velocity_w", "velocity_b", "best_weight", "best_bias")


@dataclass
class TrainState:
    """Everything needed to continue training (warm start, ``partial_fit``, resume)."""

    config: SolverConfig
    scaler: Standardizer
    weight: torch.Tensor  # (k, d) on the internal (scaled) features
    bias: torch.Tensor  # (k,)
    learning_rate: float  # initial step (before the schedule)
    stable_lr: float  # the largest stable step for this solver and data
    lipschitz: float
    generator: torch.Generator
    divergence: DivergenceGuard
    plateau: PlateauRule
    early: EarlyStopping | None = None
    epoch: int = 0
    velocity_w: torch.Tensor | None = None
    velocity_b: torch.Tensor | None = None
    best_weight: torch.Tensor | None = None  # early stopping: the best validation epoch's
    best_bias: torch.Tensor | None = None
    loss_curve: list[float] = field(default_factory=list)
    validation_scores: list[float] = field(default_factory=list)

    # ------------------------------------------------------------------------- state dict

    def state_dict(self) -> StateDict:
        """Tensors (on their device, detached) and JSON-able values; see the module doc."""
        tensors: dict[str, torch.Tensor] = {
            "weight": self.weight.detach(),
            "bias": self.bias.detach(),
            "scaler_mean": self.scaler.mean,
            "scaler_scale": self.scaler.scale,
            "generator": self.generator.get_state(),
        }
        for name in _OPTIONAL_TENSORS:
            value = getattr(self, name)
            if value is not None:
                tensors[name] = value.detach()
        meta: dict[str, Any] = {
            "format": STATE_FORMAT,
            "config": self.config.as_dict(),
            "learning_rate": self.learning_rate,
            "stable_lr": self.stable_lr,
            "lipschitz": self.lipschitz,
            "epoch": self.epoch,
            "loss_curve": list(self.loss_curve),
            "validation_scores": list(self.validation_scores),
            "divergence": self.divergence.state_dict(),
            "plateau": self.plateau.state_dict(),
            "early": None if self.early is None else self.early.state_dict(),
        }
        return {"tensors": tensors, "meta": _strict_json(meta)}

    @classmethod
    def from_state_dict(cls, state: StateDict, device: torch.device | str = "cpu") -> TrainState:
        """Rebuild a state from :meth:`state_dict` (tensors may be NumPy arrays), validated:
        a foreign or inconsistent dict raises :class:`ValidationError`, never runs code."""
        try:
            tensors, meta = state["tensors"], _from_strict_json(state["meta"])
            if not isinstance(tensors, dict) or not isinstance(meta, dict):
                raise ValidationError(
                    "not a gradfit training state: tensors and meta must be dicts"
                )
            if meta.get("format") != STATE_FORMAT:
                raise ValidationError(
                    f"training state format {meta.get('format')!r} is not {STATE_FORMAT}; it "
                    "was written by another version of gradfit"
                )

            def ten(name: str) -> torch.Tensor:
                return _tensor(tensors[name]).to(device)

            config = SolverConfig.from_dict(dict(meta["config"]))
            weight, bias = ten("weight"), ten("bias")
            mean, scale = ten("scaler_mean"), ten("scaler_scale")
            k, d = weight.shape
            if bias.shape != (k,) or mean.shape != (d,) or scale.shape != (d,):
                raise ValidationError("training state tensors have inconsistent shapes")
            generator = torch.Generator()
            generator.set_state(_tensor(tensors["generator"]).cpu())
            early = meta["early"]
            result = cls(
                config=config,
                scaler=Standardizer(mean=mean.double(), scale=scale.double()),
                weight=weight,
                bias=bias,
                learning_rate=_finite(meta["learning_rate"], "learning_rate"),
                stable_lr=float(meta["stable_lr"]),
                lipschitz=float(meta["lipschitz"]),
                generator=generator,
                divergence=_guard(DivergenceGuard, meta["divergence"]),
                plateau=_guard(PlateauRule, meta["plateau"]),
                early=None if early is None else _guard(EarlyStopping, early),
                epoch=int(meta["epoch"]),
                loss_curve=[float(v) for v in meta["loss_curve"]],
                validation_scores=[float(v) for v in meta["validation_scores"]],
            )
            shapes = {"velocity_w": (k, d), "best_weight": (k, d), "velocity_b": (k,)}
            shapes["best_bias"] = (k,)
            for name in _OPTIONAL_TENSORS:
                if name in tensors:
                    value = ten(name)
                    if tuple(value.shape) != shapes[name]:
                        raise ValidationError(
                            f"training state tensor {name} has shape {tuple(value.shape)}, "
                            f"expected {shapes[name]}"
                        )
                    setattr(result, name, value)
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
            if isinstance(exc, ValidationError):
                raise
            raise ValidationError(f"not a gradfit training state: {exc}") from None
        return result


_NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


def _strict_json(value: Any) -> Any:
    """``value`` with non-finite floats spelled as strings ("inf", "-inf", "nan"): strict JSON
    has no Infinity or NaN (a fresh plateau rule's best loss is +inf)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {key: _strict_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_strict_json(item) for item in value]
    return value


def _from_strict_json(value: Any) -> Any:
    if isinstance(value, str) and value in _NON_FINITE:
        return _NON_FINITE[value]
    if isinstance(value, dict):
        return {key: _from_strict_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_from_strict_json(item) for item in value]
    return value


G = TypeVar("G", DivergenceGuard, PlateauRule, EarlyStopping)


def _guard(kind: type[G], values: Any) -> G:
    """A guard from its state dict, each field converted to its declared type (a foreign value
    fails here, not epochs later)."""
    if not isinstance(values, dict):
        raise ValidationError(f"training state {kind.__name__} must be a dict")
    converted: dict[str, Any] = {}
    for f in fields(kind):
        if f.name not in values:
            continue
        value, declared = values[f.name], str(f.type)
        if value is None and "None" in declared:
            converted[f.name] = None
        elif declared.startswith("bool"):
            if not isinstance(value, bool):
                raise ValidationError(f"training state {kind.__name__}.{f.name} is not a bool")
            converted[f.name] = value
        elif declared.startswith("int"):
            converted[f.name] = int(value)
        else:
            converted[f.name] = float(value)
    unknown = set(values) - {f.name for f in fields(kind)}
    if unknown:
        raise ValidationError(
            f"training state {kind.__name__} has unknown fields {sorted(unknown)}"
        )
    return kind(**converted)


def _tensor(value: Any) -> torch.Tensor:
    """A private copy of a tensor or an array (never shares memory with the state dict)."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    return torch.from_numpy(np.array(value, copy=True))


def _finite(value: Any, name: str) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValidationError(f"training state {name} is not finite: {value!r}")
    return number
