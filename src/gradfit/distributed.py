"""gradfit as several processes: :class:`~gradfit.solvers.collective.Communicator` over
``torch.distributed``, and the launch environment.

Launched by ``torchrun`` (or any launcher that sets ``WORLD_SIZE``, ``RANK`` and
``MASTER_ADDR``/``MASTER_PORT``, or ``TORCHELASTIC_*``), :func:`from_environment` joins the
process group: gloo for the CPU, NCCL for CUDA devices. A library user who already holds a
process group wraps it with :class:`TorchCommunicator` and passes it to
:func:`gradfit.streaming.fit_stream` (``comm=``).

Collectives are all-gathers: the solvers sum the gathered tensors in rank order themselves, so
that every process holds bitwise the same sums and takes bitwise the same steps. The tensors are
small (the statistics, d² + dk + ... values, once per fit; a gradient, (d + 1)k + 3 values, per
sgd step), so an all-gather costs what an all-reduce would.

Errors: :meth:`TorchCommunicator.check` is the point where processes agree on failure; an
error message travels as UTF-8 bytes in a tensor (no pickle). A process that dies without
reaching it (kill -9) leaves the others waiting at most ``timeout`` seconds, after which
``torch.distributed`` raises and they end.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Mapping

import torch
import torch.distributed as dist

from gradfit.errors import GradfitError, ValidationError
from gradfit.solvers.collective import (
    LOCAL,
    Communicator,
    error_from_wire,
    error_to_wire,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "TorchCommunicator",
    "from_environment",
    "launched",
    "shutdown",
]

DEFAULT_TIMEOUT = 300.0  # seconds a collective waits for the other processes


def launched(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this process was started as one of several (``WORLD_SIZE`` > 1)."""
    env = os.environ if environ is None else environ
    try:
        return int(env.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


class TorchCommunicator:
    """A :class:`~gradfit.solvers.collective.Communicator` over an initialised
    ``torch.distributed`` process group (the default group when ``group`` is None).
    ``device``: where the collectives' tensors live (CUDA for NCCL, the CPU for gloo)."""

    def __init__(self, group: object | None = None, device: torch.device | None = None) -> None:
        if not dist.is_available() or not dist.is_initialized():
            raise ValidationError(
                "torch.distributed has no process group; call "
                "torch.distributed.init_process_group first (or launch with torchrun)"
            )
        self.group = group
        self.rank = dist.get_rank(group)  # type: ignore[arg-type]
        self.world = dist.get_world_size(group)  # type: ignore[arg-type]
        if device is None:
            backend = str(dist.get_backend(group)).lower()  # type: ignore[arg-type]
            device = (
                torch.device("cuda", torch.cuda.current_device())
                if backend == "nccl"
                else torch.device("cpu")
            )
        self.device = device

    def gather(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        local = tensor.detach().to(self.device).contiguous()
        out = [torch.empty_like(local) for _ in range(self.world)]
        dist.all_gather(out, local, group=self.group)
        return [t.to(tensor.device) for t in out]

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        parts = self.gather(tensor)
        total = parts[0].clone()
        for part in parts[1:]:
            total += part
        return total

    def broadcast_bytes(self, data: bytes | None) -> bytes:
        size = torch.tensor([0 if data is None else len(data)], dtype=torch.int64)
        size = self._broadcast(size)
        buf = torch.zeros(int(size[0]), dtype=torch.uint8)
        if self.rank == 0 and data:
            buf = torch.frombuffer(bytearray(data), dtype=torch.uint8)
        return bytes(self._broadcast(buf).numpy().tobytes()) if int(size[0]) else b""

    def _broadcast(self, tensor: torch.Tensor) -> torch.Tensor:
        local = tensor.to(self.device).contiguous()
        dist.broadcast(local, src=0, group=self.group)  # type: ignore[arg-type]
        return local.cpu()

    def check(self, error: BaseException | None) -> None:
        flags = torch.tensor([0 if error is None else 1], dtype=torch.int64)
        failed = [int(f[0]) for f in self.gather(flags)]
        if not any(failed):
            return
        first = failed.index(1)
        kind, message = error_to_wire(error) if error is not None else ("error", "")
        encoded = f"{kind}\n{message}".encode()
        # The first failing rank's message, to everyone: lengths, then padded bytes.
        lengths = self.gather(torch.tensor([len(encoded)], dtype=torch.int64))
        width = max(int(n[0]) for n in lengths)
        mine = torch.zeros(width, dtype=torch.uint8)
        if encoded:
            mine[: len(encoded)] = torch.frombuffer(bytearray(encoded), dtype=torch.uint8)
        texts = self.gather(mine)
        chosen = bytes(texts[first][: int(lengths[first][0])].numpy().tobytes())
        kind, _, message = chosen.decode("utf-8", "replace").partition("\n")
        if error is not None and first == self.rank:
            raise error
        raise error_from_wire(kind, message)


def from_environment(
    device: torch.device | None = None, timeout: float = DEFAULT_TIMEOUT
) -> Communicator:
    """The group this process was launched into (see the module doc), or the single-process
    :data:`~gradfit.solvers.collective.LOCAL` when it was launched alone. Initialises the
    default process group (gloo, or NCCL when ``device`` is CUDA) if it is not already."""
    if not launched():
        return LOCAL
    if not dist.is_available():
        raise GradfitError("this PyTorch build has no torch.distributed; run one process")
    cuda = device is not None and device.type == "cuda"
    if not dist.is_initialized():
        if cuda and device is not None:
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local if device.index is None else device.index)
        try:
            dist.init_process_group(
                backend="nccl" if cuda else "gloo",
                timeout=datetime.timedelta(seconds=timeout),
            )
        except (RuntimeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise GradfitError(
                f"cannot join the process group ({first}); check MASTER_ADDR, MASTER_PORT "
                "and that every process was started"
            ) from None
    where = torch.device("cuda", torch.cuda.current_device()) if cuda else None
    return TorchCommunicator(device=where)


def shutdown() -> None:
    """Leave the process group, if this process joined one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
