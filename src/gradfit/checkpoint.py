"""Checkpoints: the whole training state in one safetensors file, written atomically, so that a
fit killed at any moment (``kill -9`` included) resumes to bitwise the model of an uninterrupted
run.

What is saved, after every ``every``-th epoch and once at the end (``finished``):

* the :class:`~gradfit.solvers.state.TrainState` (its state dict: weights, velocity, epoch,
  learning rate and schedule position, the guards' counters, the loss history and the random
  generator's state) — a checkpoint is taken at the end of an epoch, where the data position is
  the start of the next pass and the shuffle buffer is empty, so the generator is all of the
  shuffle's state;
* with a group of processes, every process's generator (each shuffles its own shard);
* a **fingerprint** of the data and the settings: the rows, the column names, and a digest of
  the data's sufficient statistics (means and centred moments, each rounded at 1e-10 of its
  natural scale so that the order in which a group merged them does not matter:
  :func:`statistics_digest`), the solver settings, the
  seed, the dtype and the batch and shuffle-buffer sizes. Resuming with other data or settings
  is refused, naming what differs. The number of processes is not part of it: ``gd`` resumes
  exactly on any number (its steps come from the group's statistics), ``sgd`` too but with a
  note that its row order (each process shuffles its own shard) differs from there on; a
  checkpoint written before this rule (``processes`` among its settings) resumes alike.

The file is a safetensors file (tensors, and JSON in its metadata): loading one never runs code.
It is read as a model file is (:mod:`gradfit.tensorfile`): a regular file only (a named pipe or
a device is refused after an ``os.stat``, never opened), at most 2 GiB, its header bounded and
every declared tensor checked against the file size and against this fit's shapes (features,
targets, processes) before any tensor is built; a truncated, corrupt or foreign file gets a
one-line message that names it. With a group, rank 0 reads and writes the file and the bytes
are shared (so the path need only exist on rank 0's host).

**Format 2** (this gradfit) seals the file: the metadata key ``"gradfit_sha256"`` holds the
SHA-256 of the JSON document (key ``"gradfit"``) followed by the data section, checked before
resuming, so that a flipped bit is "checksum mismatch" naming the file, never a resumed fit
from damaged weights. Every field of the document is checked for type and range (the epoch an
integer from 0 to the fit's epochs, the loss curve one finite-or-inf number per epoch, the saved
state's settings those of the fit), and the weights must be finite. Format 1 checkpoints (no
checksum) still resume, unverified, and the notes say so.

**Recognising a checkpoint** by its header alone (both formats): the file starts with an 8-byte
little-endian length ``n`` (``2 <= n < 100_000_000`` and ``n <= size - 8``); the ``n`` bytes
after it are a JSON object whose ``"__metadata__"`` object has a string ``"gradfit"`` that is
itself a JSON object with ``"kind": "gradfit-checkpoint"`` (model files have
``"format": "gradfit-model"`` there instead).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as safetensors_load

from gradfit.atomic import atomic_write, remove_stale_temporaries
from gradfit.errors import GradfitError, ModelFileError, ValidationError
from gradfit.solvers import registry
from gradfit.solvers.collective import LOCAL, Communicator, guarded
from gradfit.solvers.config import SolverConfig
from gradfit.solvers.state import TrainState
from gradfit.solvers.stats import SufficientStats
from gradfit.storage import as_path
from gradfit.tensorfile import (
    DOCUMENT_KEY,
    TensorFile,
    check_in_range,
    header_document,
    parse_json,
    parse_tensor_file,
    read_tensor_file,
    seal,
)
from gradfit.tensorfile import shown as _shown

__all__ = [
    "CHECKPOINT_FORMAT",
    "Checkpoint",
    "check_solver",
    "checkpoint_identity",
    "data_fingerprint",
]

CHECKPOINT_FORMAT = 2  # 2: sealed with a checksum; 1 (no checksum) still resumes
_KIND = "gradfit-checkpoint"
_MAX_BYTES = 1 << 31  # a checkpoint holds O(d k) values; anything this large is not one
_MAX_GENERATOR_BYTES = 1 << 20  # a CPU generator's state is 5056 bytes
_WEIGHTS = ("weight", "bias", "velocity_w", "velocity_b", "best_weight", "best_bias")
_OPTIONAL = ("velocity_w", "velocity_b", "best_weight", "best_bias")
_DIGEST_PREFIX = "v2:"  # statistics_digest's; legacy_statistics_digest's have none
_NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


def checkpoint_solvers() -> tuple[str, ...]:
    """The solvers whose fits can be checkpointed: those that run epochs on the streaming
    engine (the registry's ``iterative`` flag and a streaming entry)."""
    return tuple(
        spec.name
        for spec in registry.REGISTRY.values()
        if spec.iterative and spec.stream_entry is not None
    )


def check_solver(solver: str) -> None:
    """Refuse, before any work, a checkpoint for a solver that cannot save its training
    state (:func:`checkpoint_solvers` can)."""
    able = checkpoint_solvers()
    if solver in able:
        return
    spec = registry.get(solver)
    why = "it has no epochs to checkpoint" if not spec.iterative else "it keeps no training state"
    raise ValidationError(
        f"--checkpoint works with solver {' or '.join(able)}, not with {solver} ({why}); leave "
        f"out --checkpoint or use --solver {' or '.join(able)}"
    )


def data_fingerprint(
    stats: SufficientStats,
    features: tuple[str, ...],
    targets: tuple[str, ...],
    weights: str | None = None,
) -> dict[str, Any]:
    """What identifies the training data: rows, columns, the column of row weights (None:
    unweighted) and a digest of their statistics (:func:`statistics_digest`)."""
    return {
        "rows": int(stats.n),
        "features": list(features),
        "targets": list(targets),
        "weights": weights,
        "statistics": statistics_digest(stats),
    }


def statistics_digest(stats: SufficientStats) -> str:
    """A digest of the statistics that does not depend on the order in which shards were
    merged (a group of another size merges them otherwise: a few ulps of difference).

    Each value is rounded at 1e-10 of its natural scale, not of itself: the variances
    (``Szz``'s diagonal, ``syy``) to 10 significant digits; a mean to 1e-10 of its own size
    plus its column's standard deviation; a covariance to 1e-10 of the product of its columns'
    standard deviations (a correlation to 10 decimals). A value that is zero but for rounding
    (a centred column's mean, the covariance of orthogonal columns: ``1e-17`` from one order of
    the sums, ``-3e-18`` from another) is then 0 whatever the order, where rounding it to 10
    significant digits of itself kept its noise."""
    zbar, ybar = stats.zbar.detach().double().cpu(), stats.ybar.detach().double().cpu()
    Szz, Szy = stats.Szz.detach().double().cpu(), stats.Szy.detach().double().cpu()
    syy = stats.syy.detach().double().cpu()
    zsd = Szz.diagonal().clamp(min=0).sqrt()
    ysd = syy.clamp(min=0).sqrt()

    def relative(values: torch.Tensor) -> str:
        return ",".join(f"{v:.9e}" for v in values.reshape(-1).tolist())

    def scaled(values: torch.Tensor, scale: torch.Tensor) -> str:
        ratio = torch.where(scale > 0, values / scale.where(scale > 0, 1.0), 0.0)
        return ",".join(str(round(r * 1e10)) for r in ratio.reshape(-1).tolist())

    off = ~torch.eye(len(zsd), dtype=torch.bool)
    parts = (
        relative(Szz.diagonal()),
        relative(syy),
        scaled(zbar, zbar.abs() + zsd),
        scaled(ybar, ybar.abs() + ysd),
        scaled(Szz[off], torch.outer(zsd, zsd)[off]),
        scaled(Szy, torch.outer(zsd, ysd)),
    )
    return _DIGEST_PREFIX + hashlib.sha256(";".join(parts).encode()).hexdigest()


def legacy_statistics_digest(stats: SufficientStats) -> str:
    """The digest of checkpoints written before :func:`statistics_digest` (their data's
    ``"statistics"``): every value rounded to 10 significant digits of itself."""
    digest = hashlib.sha256()
    for tensor in (stats.zbar, stats.ybar, stats.Szz, stats.Szy, stats.syy):
        values = tensor.detach().double().cpu().reshape(-1).tolist()
        digest.update(",".join(f"{v:.9e}" for v in values).encode())
        digest.update(b";")
    return digest.hexdigest()


def checkpoint_identity(path: str | Path) -> str:
    """What this process sees at ``path``: "none at PATH", or the file's size and the start of
    its SHA-256 (a checkpoint is small: O(d k) values). Processes of a group compare it before
    resuming (rank 0 reads the file; with c10d rendezvous rank 0 may start on any node, so a
    checkpoint on one node's local disk would be seen by some ranks only)."""
    file = as_path(path)  # a local path, or an object in a store (s3://...)
    try:
        if not file.exists():
            return f"no checkpoint at {path}"
        digest = hashlib.sha256()
        size = 0
        with file.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
                size += len(block)
    except FileNotFoundError:
        return f"no checkpoint at {path}"
    except OSError as exc:
        return f"{path} unreadable ({exc.strerror or exc})"
    except GradfitError as exc:  # a store's error (no bucket, access denied), in words
        return f"{path} unreadable ({exc})"
    return f"{path}: {size:,} bytes, sha256 {digest.hexdigest()[:16]}"


@dataclass
class Checkpoint:
    """A checkpoint file for one fit (a :class:`~gradfit.solvers.engine.Checkpointer`).

    ``path``: the file; ``every``: save after every ``every``-th epoch; ``resume``: continue
    from the file when it exists (when it does not, start afresh and say so through
    ``notes``); ``data`` and ``settings``: the fingerprint (see the module doc)."""

    path: Path
    data: dict[str, Any]
    settings: dict[str, Any]
    every: int = 1
    resume_from_file: bool = False
    comm: Communicator = LOCAL
    notes: list[str] = field(default_factory=list)
    legacy_statistics: str | None = None  # legacy_statistics_digest, for older checkpoints

    def __post_init__(self) -> None:
        if isinstance(self.every, bool) or not isinstance(self.every, int) or self.every < 1:
            raise ValidationError(
                f"checkpoint_every must be a positive integer, got {self.every!r}"
            )
        self.path = as_path(self.path)
        if self.resume_from_file and self.comm.rank == 0:
            # What a writer killed mid-write (kill -9) left beside the checkpoint.
            remove_stale_temporaries(self.path)
        self._settings = _canonical({k: v for k, v in self.settings.items() if k != "processes"})
        self._data = _canonical(self.data)

    # ------------------------------------------------------------------------- saving

    def save(self, state: TrainState, finished: bool, converged: bool) -> None:
        if not finished and state.epoch % self.every:
            return
        generators = self.comm.gather(state.generator.get_state())
        if self.comm.rank != 0:
            guarded(self.comm, lambda: None)
            return
        guarded(self.comm, lambda: self._write(state, generators, finished, converged))

    def _write(
        self,
        state: TrainState,
        generators: list[torch.Tensor],
        finished: bool,
        converged: bool,
    ) -> None:
        sd = state.state_dict()
        tensors = {name: t.detach().cpu().contiguous().clone() for name, t in sd["tensors"].items()}
        tensors["rank_generators"] = torch.stack([g.cpu() for g in generators])
        document = {
            "kind": _KIND,
            "format": CHECKPOINT_FORMAT,
            "finished": finished,
            "converged": converged,
            "world": self.comm.world,
            "state": sd["meta"],
            "data": self._data,
            "settings": self._settings,
        }
        blob = seal(tensors, json.dumps(document, allow_nan=False))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, lambda fh: fh.write(blob))

    # ------------------------------------------------------------------------- resuming

    def resume(self, state: TrainState) -> tuple[TrainState, bool, bool] | None:
        """The saved state, validated, with (finished, converged); None to start afresh."""
        if not self.resume_from_file:
            return None
        blob = (
            guarded(self.comm, self._read)
            if self.comm.rank == 0
            else guarded(self.comm, lambda: None)
        )
        data = self.comm.broadcast_bytes(blob)
        if not data:
            self.notes.append(f"no checkpoint at {self.path}; starting afresh")
            return None
        return guarded(self.comm, lambda: self._restore(data, state))

    def _read(self) -> bytes | None:
        """The file's bytes, None when there is none; its layout checked (see the module doc)."""
        try:
            return read_tensor_file(self.path, max_bytes=_MAX_BYTES).data
        except FileNotFoundError:
            return None
        except ModelFileError as exc:
            raise ModelFileError(_as_checkpoint(str(exc))) from None

    def _restore(self, data: bytes, fresh: TrainState) -> tuple[TrainState, bool, bool]:
        source = str(self.path)
        file, document, text = _parse(data, source)
        version = document.get("format")
        if isinstance(version, bool) or version not in (1, CHECKPOINT_FORMAT):
            newer = isinstance(version, int) and not isinstance(version, bool) and version > 1
            raise ModelFileError(
                f"{source}: checkpoint format {_shown(version)} is not {CHECKPOINT_FORMAT}; it "
                f"was written by {'a newer' if newer else 'another'} version of gradfit; delete "
                "it to start afresh"
            )
        if version == CHECKPOINT_FORMAT:
            try:
                file.verify(text)
            except ModelFileError as exc:
                raise ModelFileError(_as_checkpoint(str(exc))) from None
        else:
            self.notes.append(
                f"{self.path} was written by an older gradfit without a checksum; its contents "
                "cannot be verified"
            )
        saved_data = document.get("data")
        current_data = self._data
        saved_digest = saved_data.get("statistics") if isinstance(saved_data, dict) else None
        if (
            self.legacy_statistics is not None
            and isinstance(saved_digest, str)
            and not saved_digest.startswith(_DIGEST_PREFIX)
        ):  # written before statistics_digest: compared by the digest of its time
            current_data = {**self._data, "statistics": self.legacy_statistics}
        if isinstance(saved_data, dict) and "weights" not in saved_data:
            # Written before the weights were named (their statistics tell them apart).
            current_data = {k: v for k, v in current_data.items() if k != "weights"}
        _same_as_saved(source, "for other data", "data", saved_data, current_data)
        saved_settings = document.get("settings")
        if isinstance(saved_settings, dict):  # before processes were left out of the settings
            saved_settings = {k: v for k, v in saved_settings.items() if k != "processes"}
        _same_as_saved(source, "with other settings", "settings", saved_settings, self._settings)
        meta = self._check_document(document, source)
        self._check_tensors(file, fresh, source)
        try:
            tensors = safetensors_load(data)
        except Exception as exc:  # safetensors raises its own SafetensorError
            message = " ".join(str(exc).split())[:200]
            raise ModelFileError(f"{source}: corrupt tensor data ({message})") from None
        for name in _WEIGHTS:
            if name in tensors and not bool(torch.isfinite(tensors[name]).all()):
                raise ModelFileError(
                    f"{source}: corrupt: the saved {name} holds non-finite values (NaN or inf); "
                    "delete the checkpoint to start afresh"
                )
        generators = tensors.pop("rank_generators")
        if int(generators.shape[0]) != document["world"]:
            raise ModelFileError(
                f"{source}: corrupt checkpoint: {generators.shape[0]} generators' states for "
                f"{document['world']} processes; delete it to start afresh"
            )
        written = int(document["world"])
        if written != self.comm.world and self._settings.get("solver") == "sgd":
            self.notes.append(
                f"{self.path} was written by {written} process(es), this fit runs "
                f"{self.comm.world}: sgd continues from its state, but its row order (each "
                "process shuffles its own shard) differs from the uninterrupted fit's from "
                "here on"
            )
        try:
            state = TrainState.from_state_dict(
                {"tensors": dict(tensors), "meta": meta}, device=fresh.weight.device
            )
            state.generator.set_state(generators[self.comm.rank % written].clone())
            if self.comm.rank >= written:
                # A rank beyond those that wrote the checkpoint: a stream of its own, seeded
                # from a written rank's (reproducible, not a shifted copy of it).
                draw = torch.randint(1 << 62, (1,), generator=state.generator)
                state.generator.manual_seed(int(draw[0]) + self.comm.rank)
        except ValidationError as exc:
            raise ModelFileError(
                f"{source}: {exc}; delete the checkpoint to start afresh"
            ) from None
        except (KeyError, TypeError, ValueError, RuntimeError, OverflowError) as exc:
            message = " ".join(str(exc).split())[:200]
            raise ModelFileError(f"{source}: corrupt training state ({message})") from None
        finished = document["finished"]
        converged = document["converged"]
        self.notes.append(
            f"resumed from {self.path} at epoch {state.epoch}"
            + (" (that fit had finished)" if finished else "")
        )
        return state, finished, converged

    def _check_document(self, document: dict[str, Any], source: str) -> dict[str, Any]:
        """Every field the resume uses, checked for type and range (the data and settings
        already equal this fit's); the state's meta dict."""

        def bad(field: str, expected: str, got: Any) -> ModelFileError:
            return ModelFileError(
                f"{source}: corrupt checkpoint: {field} must be {expected}, got {_shown(got)}; "
                "delete it to start afresh"
            )

        for key in ("finished", "converged"):
            if not isinstance(document.get(key), bool):
                raise bad(key, "true or false", document.get(key))
        world = document.get("world")
        if isinstance(world, bool) or not isinstance(world, int) or not 1 <= world <= 1 << 20:
            raise bad("world", "a positive integer (the processes that wrote it)", world)
        meta = document.get("state")
        if not isinstance(meta, dict):
            raise bad("state", "a JSON object", meta)
        max_epochs = self._settings.get("max_epochs")
        epoch = meta.get("epoch")
        if (
            isinstance(epoch, bool)
            or not isinstance(epoch, int)
            or not isinstance(max_epochs, int)
            or not 0 <= epoch <= max_epochs
        ):
            raise bad("state.epoch", f"an integer from 0 to {max_epochs} (the fit's epochs)", epoch)
        curve = meta.get("loss_curve")
        if not isinstance(curve, list) or len(curve) != epoch or not all(map(_number, curve)):
            raise bad("state.loss_curve", f"a list of {epoch} numbers (one per epoch)", curve)
        scores = meta.get("validation_scores")
        if not isinstance(scores, list) or len(scores) > epoch or not all(map(_number, scores)):
            raise bad("state.validation_scores", f"a list of at most {epoch} numbers", scores)
        for key in ("learning_rate", "stable_lr", "lipschitz"):
            value: Any = meta.get(key)
            value = _NON_FINITE.get(value, value) if isinstance(value, str) else value
            if not _number(value) or not value >= 0:
                raise bad(f"state.{key}", "a non-negative number", meta.get(key))
        config = meta.get("config")
        expected = {name: self._settings.get(name) for name in SolverConfig.__dataclass_fields__}
        if config != expected:
            raise ModelFileError(
                f"{source}: corrupt checkpoint: state.config differs from the checkpoint's "
                "settings; delete it to start afresh"
            )
        return meta

    def _check_tensors(self, file: TensorFile, fresh: TrainState, source: str) -> None:
        """The tensors the header declares against this fit, before any is built: their
        names, dtypes and shapes (weights (k, d) in the fit's dtype, generators' states of
        bytes, one per process)."""
        k, d = (int(n) for n in fresh.weight.shape)
        dtype = {torch.float32: "F32", torch.float64: "F64"}.get(fresh.weight.dtype, "")
        expected: dict[str, tuple[tuple[str, ...], tuple[int, ...]]] = {
            "weight": ((dtype,), (k, d)),
            "bias": ((dtype,), (k,)),
            "velocity_w": ((dtype,), (k, d)),
            "velocity_b": ((dtype,), (k,)),
            "best_weight": ((dtype,), (k, d)),
            "best_bias": ((dtype,), (k,)),
            "scaler_mean": (("F32", "F64"), (d,)),
            "scaler_scale": (("F32", "F64"), (d,)),
            "generator": (("U8",), ()),  # shapes set below, from the generator's size
            "rank_generators": (("U8",), ()),
        }
        missing = [name for name in expected if name not in file.entries and name not in _OPTIONAL]
        unknown = [name for name in file.entries if name not in expected]
        if missing or unknown:
            what = (
                f"lacks {missing[0]!r}"
                if missing
                else f"holds an unknown tensor {_shown(unknown[0])}"
            )
            raise ModelFileError(
                f"{source}: corrupt checkpoint: it {what}; delete it to start afresh"
            )
        size = file.entries["generator"].shape
        if len(size) != 1 or not 0 < size[0] <= _MAX_GENERATOR_BYTES:
            raise ModelFileError(
                f"{source}: corrupt checkpoint: the generator's state has shape {size}; delete "
                "it to start afresh"
            )
        expected["generator"] = (("U8",), size)
        world = file.entries["rank_generators"].shape[:1] or (0,)
        expected["rank_generators"] = (("U8",), (max(1, world[0]), size[0]))
        for name, entry in file.entries.items():
            dtypes, shape = expected[name]
            if entry.dtype not in dtypes or entry.shape != shape:
                raise ModelFileError(
                    f"{source}: the saved {name} has shape {entry.shape} and dtype "
                    f"{entry.dtype}, this fit needs {shape} and {' or '.join(dtypes)}; delete "
                    "the checkpoint to start afresh"
                )


def _number(value: Any) -> bool:
    """A JSON number (strict JSON's "inf", "-inf", "nan" included), not a bool."""
    if isinstance(value, str):
        return value in _NON_FINITE
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _parse(data: bytes, source: str) -> tuple[TensorFile, dict[str, Any], str]:
    """The checkpoint's checked layout, its JSON document and the document's text."""
    try:
        file = parse_tensor_file(data, source)
    except ModelFileError as exc:
        raise ModelFileError(_as_checkpoint(str(exc))) from None
    text = file.metadata.get(DOCUMENT_KEY)
    try:
        document = parse_json(text) if text is not None else None
    except ValueError as exc:
        raise ModelFileError(
            f"{source}: corrupt checkpoint: its document {exc}; delete it to start afresh"
        ) from None
    if not isinstance(document, dict) or document.get("kind") != _KIND or text is None:
        raise ModelFileError(
            f"{source}: not a gradfit checkpoint (a model file, or another safetensors file?); "
            "give the path of a checkpoint, or leave out --resume"
        )
    check_in_range(document, source, "corrupt checkpoint", "delete it to start afresh")
    return file, document, text


def _same_as_saved(source: str, written: str, what: str, saved: Any, current: Any) -> None:
    """Resume only with the checkpoint's own data and settings: a difference is refused,
    naming it."""
    if saved != current:
        raise ValidationError(
            f"{source}: the checkpoint was written {written} "
            f"({_difference(saved, current)}); resume with the same {what}, or "
            "delete the checkpoint (or leave out --resume) to start afresh"
        )


def _as_checkpoint(message: str) -> str:
    return (
        message.replace("a gradfit model file", "a gradfit checkpoint")
        .replace("model file", "checkpoint")
        .replace("save the model again", "delete it to start afresh")
        .replace("refit or restore it", "restore it, or delete it to start afresh")
    )


def _canonical(value: Any) -> Any:
    """``value`` as JSON would give it back (tuples as lists, finite floats)."""
    return json.loads(json.dumps(value, allow_nan=True, default=str))


def _difference(saved: Any, current: Any) -> str:
    """The first few keys whose values differ, ``key: saved -> now``."""
    if not isinstance(saved, Mapping) or not isinstance(current, Mapping):
        return "the checkpoint has no fingerprint"
    keys = [k for k in dict.fromkeys([*saved, *current]) if saved.get(k) != current.get(k)]
    parts = [f"{k}: {_short(saved.get(k))} -> {_short(current.get(k))}" for k in keys[:3]]
    return "; ".join(parts) + ("; ..." if len(keys) > 3 else "")


def _short(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 40 else text[:37] + "..."


def looks_like_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` is a regular file that starts as a gradfit checkpoint does: a
    safetensors header whose metadata names the kind ``gradfit-checkpoint``. Reads the header
    only (not the tensors), and never opens anything but a regular file (a FIFO would block).
    It tells a checkpoint that may be replaced from a file that must not be (a data file, a
    model), not a sound checkpoint from a damaged one: resuming checks the whole file."""
    document = header_document(path)
    return document is not None and document.get("kind") == _KIND
