"""What the solvers need from a group of processes, and the single-process group.

A solver that runs data-parallel (each process holding a shard of the rows) needs four
collective operations, all called by every process in the same order:

* :meth:`Communicator.gather`: every process's tensor of the same shape, in rank order;
* :meth:`Communicator.sum`: the sum over processes, computed in rank order from the gathered
  tensors, so that it is **bitwise the same on every process** (an all-reduce may add in an
  order that differs between processes; identical iterates on every rank need identical sums);
* :meth:`Communicator.broadcast_bytes`: rank 0's bytes on every process (a checkpoint read
  once);
* :meth:`Communicator.check`: agree on failure. A process that met an error (a bad file in its
  shard, say) must not leave the others waiting in the next collective: it passes the error
  to ``check``, which every process calls at the same point; if any process failed, every
  process raises the first failing rank's error, with the same one-line message.

:class:`Local` is the group of one process: ``gather`` is ``[t]``, ``sum`` is ``t`` itself (no
copy), ``check`` re-raises the local error; a solver given it computes exactly what it does
without a group. The implementation over ``torch.distributed`` is :mod:`gradfit.distributed`
(an edge module: this one imports nothing of it).

Helpers here combine the solvers' mergeable pieces across processes: the sufficient statistics
(:func:`merge_stats`, Chan et al.'s pairwise merge in rank order) and the TSQR R factors
(:func:`merge_r_factors`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

import torch

from gradfit.errors import DataError, DivergenceError, GradfitError, ValidationError
from gradfit.solvers.stats import SufficientStats

__all__ = [
    "LOCAL",
    "Communicator",
    "Local",
    "agree",
    "disagreement",
    "error_from_wire",
    "error_to_wire",
    "gather_bytes",
    "guarded",
    "merge_r_factors",
    "merge_stats",
]

T = TypeVar("T")

# Errors travel between processes as (kind, message); the kinds a solver raises on purpose.
_KINDS: dict[str, type[GradfitError]] = {
    "data": DataError,
    "validation": ValidationError,
    "divergence": DivergenceError,
    "error": GradfitError,
}


class Communicator(Protocol):
    """A group of ``world`` processes, this one being ``rank`` (see the module doc)."""

    rank: int
    world: int

    def gather(self, tensor: torch.Tensor) -> list[torch.Tensor]: ...

    def sum(self, tensor: torch.Tensor) -> torch.Tensor: ...

    def broadcast_bytes(self, data: bytes | None) -> bytes: ...

    def check(self, error: BaseException | None) -> None: ...


class Local:
    """The group of one process."""

    rank = 0
    world = 1

    def gather(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        return [tensor]

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor

    def broadcast_bytes(self, data: bytes | None) -> bytes:
        return b"" if data is None else data

    def check(self, error: BaseException | None) -> None:
        if error is not None:
            raise error


LOCAL = Local()


def error_to_wire(error: BaseException) -> tuple[str, str]:
    """(kind, message) of an error, for :func:`error_from_wire` on another process."""
    for kind, cls in _KINDS.items():
        if isinstance(error, cls):
            return kind, str(error)
    return "error", f"{type(error).__name__}: {error}"


def error_from_wire(kind: str, message: str) -> GradfitError:
    """The error another process met, to raise here (a :class:`DivergenceError` without its
    result: the weights it refers to are the group's, identical on every process)."""
    cls = _KINDS.get(kind, GradfitError)
    if cls is DivergenceError:
        return DivergenceError(message)
    return cls(message)


def guarded(comm: Communicator, work: Callable[[], T]) -> T:
    """``work()`` on this process, then agreement: if it, or the same step on any other
    process, raised a :class:`GradfitError` or an ``OSError``, every process raises the
    first failing rank's error (see :meth:`Communicator.check`)."""
    try:
        value = work()
    except (GradfitError, OSError) as exc:
        comm.check(exc)
        raise  # not reached: check raises
    comm.check(None)
    return value


def gather_bytes(comm: Communicator, data: bytes) -> list[bytes]:
    """Every process's ``data``, in rank order, on every process (lengths first, then the
    bytes padded to the longest): e.g. the JSON of each rank's levels
    (:class:`gradfit.design.LevelGatherer`), to merge exactly."""
    if comm.world == 1:
        return [data]
    lengths = [int(n[0]) for n in comm.gather(torch.tensor([len(data)], dtype=torch.int64))]
    mine = torch.zeros(max(max(lengths), 1), dtype=torch.uint8)
    if data:
        mine[: len(data)] = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    parts = comm.gather(mine)
    return [bytes(part[:n].numpy().tobytes()) for part, n in zip(parts, lengths, strict=True)]


def agree(comm: Communicator, view: Mapping[str, Any], advice: Mapping[str, str]) -> None:
    """Every process's ``view`` (JSON: e.g. its ordered list of data units with their sizes,
    the checkpoint it sees, its settings), compared on every process: if any differs, every
    process raises the same :class:`ValidationError`, one line naming the first difference
    and the ranks on each side (:func:`disagreement`), with ``advice[key]`` for what to do."""
    if comm.world == 1:
        return
    mine = json.dumps(view, sort_keys=False, allow_nan=True, default=str).encode()
    views = [json.loads(part) for part in gather_bytes(comm, mine)]
    problem = disagreement(views, advice)
    if problem is not None:
        raise ValidationError(problem)


def disagreement(views: list[Any], advice: Mapping[str, str]) -> str | None:
    """The first difference between the ranks' views (dicts of the same keys, each a list of
    strings, a string, or a dict of values), as one line; None when all are equal."""
    if all(v == views[0] for v in views[1:]):
        return None
    for key in views[0]:
        values = [v.get(key) for v in views]
        if all(x == values[0] for x in values[1:]):
            continue
        where, shown = _first_difference(values)
        sides: dict[str, list[int]] = {}
        for rank, value in enumerate(shown):
            sides.setdefault(value, []).append(rank)
        told = "; ".join(
            f"{_ranks(ranks)} {'sees' if len(ranks) == 1 else 'see'} {value}"
            for value, ranks in sides.items()
        )
        tail = f"; {advice[key]}" if key in advice else ""
        return f"the processes do not agree on {key}{where}: {told}{tail}"
    return "the processes do not agree on what to do"  # not reached: some key differs


def _first_difference(values: list[Any]) -> tuple[str, list[str]]:
    """Where the values first differ (" (item N)", " (name)" or "") and each rank's value
    there, shown."""
    if all(isinstance(v, list) for v in values):
        longest = max(len(v) for v in values)
        for i in range(longest):
            items = [v[i] if i < len(v) else None for v in values]
            if any(x != items[0] for x in items[1:]):
                shown = [
                    _shown(x) if x is not None else f"nothing (a list of {len(v)}, not {longest})"
                    for x, v in zip(items, values, strict=True)
                ]
                return f" (item {i + 1} of {longest})", shown
    if all(isinstance(v, dict) for v in values):
        for name in dict.fromkeys(k for v in values for k in v):
            items = [v.get(name) for v in values]
            if any(x != items[0] for x in items[1:]):
                return f" ({name})", [_shown(x) for x in items]
    return "", [_shown(v) for v in values]


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _ranks(ranks: list[int]) -> str:
    if len(ranks) == 1:
        return f"rank {ranks[0]}"
    if len(ranks) > 4:
        return f"ranks {ranks[0]}, {ranks[1]}, ... {ranks[-1]} ({len(ranks)})"
    return "ranks " + ", ".join(map(str, ranks))


# ----------------------------------------------------------------------------- mergeable pieces


_HEAD = 5  # n, weighted (0 or 1), Σ w, rows of weight > 0, Σ log w


def _flatten(stats: SufficientStats | None, d: int, k: int) -> torch.Tensor:
    """n, the weights' totals, zbar, ybar, Szz, Szy, syy in one float64 vector (zeros for no
    rows)."""
    if stats is None or stats.n == 0:
        return torch.zeros(_HEAD + d + k + d * d + d * k + k, dtype=torch.float64)
    head = [
        float(stats.n),
        float(stats.weighted),
        stats.total,
        float(stats.n_positive),
        stats.log_weight_sum,
    ]
    parts = [
        torch.tensor(head, dtype=torch.float64),
        stats.zbar,
        stats.ybar,
        stats.Szz.reshape(-1),
        stats.Szy.reshape(-1),
        stats.syy,
    ]
    return torch.cat([p.detach().double().cpu().reshape(-1) for p in parts])


def _unflatten(flat: torch.Tensor, d: int, k: int, device: torch.device) -> SufficientStats:
    sizes = [_HEAD, d, k, d * d, d * k, k]
    head, zbar, ybar, Szz, Szy, syy = torch.split(flat.to(device), sizes)
    n, weighted, weight_sum, positive, log_weight_sum = head.tolist()
    return SufficientStats(
        n=round(n),
        zbar=zbar.clone(),
        ybar=ybar.clone(),
        Szz=Szz.reshape(d, d).clone(),
        Szy=Szy.reshape(d, k).clone(),
        syy=syy.clone(),
        weight_sum=weight_sum if weighted else None,
        positive=round(positive) if weighted else None,
        log_weight_sum=log_weight_sum if weighted else 0.0,
    )


def merge_stats(
    comm: Communicator,
    stats: SufficientStats | None,
    d: int,
    k: int,
    device: torch.device | None = None,
) -> SufficientStats:
    """The statistics of every process's rows: gathered, then merged in rank order (the same
    result, bit for bit, on every process). ``stats`` None or ``n == 0``: this process has no
    rows. One gather of ``5 + d + k + d² + dk + k`` float64 values per process. Weighted
    statistics merge alike (by their total weights)."""
    if comm.world == 1 and stats is not None:
        return stats
    dev = device if device is not None else torch.device("cpu")
    total: SufficientStats | None = None
    for flat in comm.gather(_flatten(stats, d, k)):
        part = _unflatten(flat.cpu(), d, k, dev)
        if part.n == 0:
            continue
        total = part if total is None else total.merge(part)
    if total is None:
        return _unflatten(_flatten(None, d, k), d, k, dev)
    return total


def merge_r_factors(
    comm: Communicator, R: torch.Tensor | None, p: int, merge: Callable[..., torch.Tensor]
) -> torch.Tensor | None:
    """The R factor of every process's rows (TSQR's last level): the (p, p) factors gathered
    and stacked in rank order, then ``merge(None, stacked)`` (a QR). ``R`` None: no rows here.
    Returns None when no process had rows."""
    if comm.world == 1:
        return R
    local = torch.zeros(p + 1, p, dtype=torch.float64)
    if R is not None:
        local[0, 0] = 1.0  # the first row marks "has rows"; the factor follows
        local[1:] = R.double().cpu()
    blocks = [g[1:] for g in comm.gather(local) if float(g[0, 0]) == 1.0]
    if not blocks:
        return None
    return merge(None, torch.cat(blocks))
