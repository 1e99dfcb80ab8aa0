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
  the data's sufficient statistics (means and centred moments, rounded to 10 significant digits
  so that the order in which a group merged them does not matter), the solver settings, the
  seed, the dtype, the batch and shuffle-buffer sizes and the number of processes. Resuming with
  other data or settings is refused, naming what differs.

The file is a safetensors file (tensors, and JSON in its metadata): loading one never runs code.
Its header is checked as a model file's is (:mod:`gradfit.persistence`) before anything is
read; a truncated, corrupt or foreign file gets a one-line message. With a group, rank 0 reads
and writes the file and the bytes are shared (so the path need only exist on rank 0's host).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as safetensors_load
from safetensors.torch import save as safetensors_save

from gradfit.atomic import atomic_write, remove_stale_temporaries
from gradfit.errors import ModelFileError, ValidationError
from gradfit.solvers.collective import LOCAL, Communicator, guarded
from gradfit.solvers.state import TrainState
from gradfit.solvers.stats import SufficientStats

__all__ = ["CHECKPOINT_FORMAT", "Checkpoint", "data_fingerprint"]

CHECKPOINT_FORMAT = 1
_KIND = "gradfit-checkpoint"
_MAX_BYTES = 1 << 31  # a checkpoint holds O(d k) values; anything this large is not one


def data_fingerprint(
    stats: SufficientStats, features: tuple[str, ...], targets: tuple[str, ...]
) -> dict[str, Any]:
    """What identifies the training data: rows, columns and a digest of their statistics."""
    digest = hashlib.sha256()
    for tensor in (stats.zbar, stats.ybar, stats.Szz, stats.Szy, stats.syy):
        values = tensor.detach().double().cpu().reshape(-1).tolist()
        digest.update(",".join(f"{v:.9e}" for v in values).encode())
        digest.update(b";")
    return {
        "rows": int(stats.n),
        "features": list(features),
        "targets": list(targets),
        "statistics": digest.hexdigest(),
    }


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

    def __post_init__(self) -> None:
        if isinstance(self.every, bool) or not isinstance(self.every, int) or self.every < 1:
            raise ValidationError(
                f"checkpoint_every must be a positive integer, got {self.every!r}"
            )
        self.path = Path(self.path)
        if self.resume_from_file and self.comm.rank == 0:
            # What a writer killed mid-write (kill -9) left beside the checkpoint.
            remove_stale_temporaries(self.path)
        self._settings = _canonical(self.settings)
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
        metadata = {"gradfit": json.dumps(document, allow_nan=False)}
        blob = safetensors_save(tensors, metadata=metadata)
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
        source = str(self.path)
        if not self.path.exists():
            return None
        if self.path.is_dir():
            raise ModelFileError(f"{source}: is a directory, not a checkpoint file")
        size = self.path.stat().st_size
        if size > _MAX_BYTES:
            raise ModelFileError(f"{source}: {size} bytes is too large for a gradfit checkpoint")
        try:
            return self.path.read_bytes()
        except OSError as exc:
            raise ModelFileError(f"{source}: cannot read ({exc.strerror or exc})") from None

    def _restore(self, data: bytes, fresh: TrainState) -> tuple[TrainState, bool, bool]:
        source = str(self.path)
        document, tensors = _parse(data, source)
        if document.get("format") != CHECKPOINT_FORMAT:
            raise ModelFileError(
                f"{source}: checkpoint format {document.get('format')!r} is not "
                f"{CHECKPOINT_FORMAT}; it was written by another version of gradfit"
            )
        saved_data = document.get("data")
        if saved_data != self._data:
            raise ValidationError(
                f"{source}: the checkpoint was written for other data "
                f"({_difference(saved_data, self._data)}); resume with the same data, or "
                "delete the checkpoint (or leave out --resume) to start afresh"
            )
        saved_settings = document.get("settings")
        if saved_settings != self._settings:
            raise ValidationError(
                f"{source}: the checkpoint was written with other settings "
                f"({_difference(saved_settings, self._settings)}); resume with the same "
                "settings, or delete the checkpoint (or leave out --resume) to start afresh"
            )
        generators = tensors.pop("rank_generators", None)
        if (
            generators is None
            or generators.dim() != 2
            or generators.shape[0] != self.comm.world
            or generators.dtype != torch.uint8
        ):
            raise ModelFileError(f"{source}: corrupt: the generators' states are malformed")
        try:
            state = TrainState.from_state_dict(
                {"tensors": dict(tensors), "meta": document["state"]},
                device=fresh.weight.device,
            )
            state.generator.set_state(generators[self.comm.rank].clone())
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise ModelFileError(f"{source}: corrupt training state ({exc})") from None
        except ValidationError as exc:
            raise ModelFileError(f"{source}: {exc}") from None
        if state.weight.shape != fresh.weight.shape or state.weight.dtype != fresh.weight.dtype:
            raise ModelFileError(
                f"{source}: the saved weights have shape {tuple(state.weight.shape)} and dtype "
                f"{state.weight.dtype}, this fit {tuple(fresh.weight.shape)} and "
                f"{fresh.weight.dtype}"
            )
        finished = document.get("finished") is True
        converged = document.get("converged") is True
        self.notes.append(
            f"resumed from {self.path} at epoch {state.epoch}"
            + (" (that fit had finished)" if finished else "")
        )
        return state, finished, converged


def _parse(data: bytes, source: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The checkpoint's JSON document and tensors, after the model files' header checks."""
    from gradfit.persistence import _check_entries, _read_header

    try:
        header, header_size = _read_header(io.BytesIO(data[8:]), data[:8], len(data), source)
        expected = 8 + header_size + _check_entries(header, source)
    except ModelFileError as exc:
        raise ModelFileError(_as_checkpoint(str(exc))) from None
    if len(data) != expected:
        raise ModelFileError(
            f"{source}: {'truncated' if len(data) < expected else 'corrupt'}: the file has "
            f"{len(data)} bytes but its header describes {expected}; delete it to start afresh"
        )
    metadata = header.get("__metadata__")
    text = metadata.get("gradfit") if isinstance(metadata, dict) else None
    try:
        document = json.loads(text) if isinstance(text, str) else None
    except json.JSONDecodeError:
        document = None
    if not isinstance(document, dict) or document.get("kind") != _KIND:
        raise ModelFileError(
            f"{source}: not a gradfit checkpoint (a model file, or another safetensors file?); "
            "give the path of a checkpoint, or leave out --resume"
        )
    try:
        tensors = safetensors_load(data)
    except Exception as exc:  # safetensors raises its own SafetensorError
        message = " ".join(str(exc).split())[:200]
        raise ModelFileError(f"{source}: corrupt tensor data ({message})") from None
    return document, tensors


def _as_checkpoint(message: str) -> str:
    return (
        message.replace("a gradfit model file", "a gradfit checkpoint")
        .replace("model file", "checkpoint")
        .replace("save the model again", "delete it to start afresh")
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


_MAX_HEADER_PEEK = 100 << 20  # safetensors' own bound on a header


def looks_like_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` is a regular file that starts as a gradfit checkpoint does: a
    safetensors header whose metadata names the kind ``gradfit-checkpoint``. Reads the header
    only (not the tensors), and never opens anything but a regular file (a FIFO would block).
    It tells a checkpoint that may be replaced from a file that must not be (a data file, a
    model), not a sound checkpoint from a damaged one: resuming checks the whole file."""
    import os
    import stat
    import struct

    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False
        with open(path, "rb") as fh:
            prefix = fh.read(8)
            if len(prefix) != 8:
                return False
            (size,) = struct.unpack("<Q", prefix)
            if size > _MAX_HEADER_PEEK:
                return False
            raw = fh.read(size)
    except OSError:
        return False
    try:
        header = json.loads(raw)
        metadata = header.get("__metadata__") if isinstance(header, dict) else None
        text = metadata.get("gradfit") if isinstance(metadata, dict) else None
        document = json.loads(text) if isinstance(text, str) else None
    except (ValueError, RecursionError):  # not JSON (UnicodeDecodeError is a ValueError)
        return False
    return isinstance(document, dict) and document.get("kind") == _KIND
