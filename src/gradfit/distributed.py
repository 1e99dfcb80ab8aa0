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
error message travels as UTF-8 bytes in a tensor (no pickle).

**The dead, not the slow.** A process that is alive but still reading (uneven shards: one
rank's share takes an hour, another's a minute) must not fail the job, and one that died
(``kill -9``, its node lost) or hangs (``SIGSTOP``, a stuck file system) must be noticed within
``timeout``. So the collectives run in a group of their own whose timeout is long
(:data:`COLLECTIVE_TIMEOUT`: waiting on a slow reader is legitimate), and a :class:`Watchdog`
thread on every process keeps a heartbeat in the group's store (a counter it raises every
``timeout / 5`` seconds, at most every second) and watches its two neighbours' on the ring of
ranks (a few store requests per process and heartbeat, whatever the size of the group). A peer
whose counter has not moved for ``timeout`` seconds, and which did not say it ended, is dead or
hung: the first process to see it writes the verdict into the store (``compare_set``: one
verdict per job); the lowest-numbered process still alive prints it, one line, and every
survivor exits 1 at once (``os._exit``: the main thread may be blocked inside a collective that
will never return). A collective that fails in the main thread (gloo's "Connection reset by
peer" when a peer's process is gone) waits for that verdict, or for the peer's own word that it
ended early, instead of being reported as an internal error. When the launcher itself dies
(``kill -9`` of torchrun), its workers end too (``PR_SET_PDEATHSIG`` on Linux, and the watchdog
notices the parent gone).
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch.distributed.distributed_c10d import PrefixStore
from torch.distributed.rendezvous import rendezvous

from gradfit.errors import GradfitError, ValidationError
from gradfit.solvers.collective import (
    LOCAL,
    Communicator,
    error_from_wire,
    error_to_wire,
)

__all__ = [
    "COLLECTIVE_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "ProcessGroupError",
    "TorchCommunicator",
    "Watchdog",
    "end_with_launcher",
    "from_environment",
    "launched",
    "shutdown",
]

DEFAULT_TIMEOUT = 300.0  # seconds to form the group, and of silence before a peer is dead
# What a collective may wait for a peer that is alive (its heartbeat moves) but still reading:
# a week; the watchdog, not this, ends a job whose peer died.
COLLECTIVE_TIMEOUT = 7 * 24 * 3600.0
_HEARTBEAT = 1.0  # seconds between two heartbeats (at most; timeout / 5 when shorter)

T = TypeVar("T")


class ProcessGroupError(GradfitError):
    """An error of the group itself (it cannot form; a peer died or hangs), not of the data:
    ``exit_code`` 1 for a lost peer (2 for a group that cannot form), and ``shown_here``
    whether this process prints it (one process per job where they can agree on who; every
    process where they cannot, as when the group never formed)."""

    def __init__(self, message: str, *, exit_code: int = 2, shown_here: bool = True) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.shown_here = shown_here


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

    def __init__(
        self,
        group: object | None = None,
        device: torch.device | None = None,
        watchdog: Watchdog | None = None,
    ) -> None:
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
        self.watchdog = watchdog

    def _collective(self, run: Callable[[], T]) -> T:
        """``run()`` (a collective); its failure (a peer's process gone) becomes the
        watchdog's verdict on who died, one line (see the module doc)."""
        try:
            return run()
        except RuntimeError as exc:  # gloo and NCCL raise RuntimeError (DistBackendError)
            if self.watchdog is None:
                raise
            raise self.watchdog.lost(exc) from None

    def gather(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        local = tensor.detach().to(self.device).contiguous()
        out = [torch.empty_like(local) for _ in range(self.world)]
        self._collective(lambda: dist.all_gather(out, local, group=self.group))
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
        self._collective(lambda: dist.broadcast(local, src=0, group=self.group))  # type: ignore[arg-type]
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


class Watchdog:
    """The heartbeat of this process and the watch on its peers' (see the module doc).

    ``store``: the group's key-value store (torchrun's TCPStore, or a FileStore); ``timeout``:
    seconds of silence after which a peer is dead or hung. Keys live under ``prefix`` (one per
    launch: torchrun's restart count), so that a restarted job does not read the last one's."""

    def __init__(
        self,
        store: Any,
        rank: int,
        world: int,
        timeout: float,
        prefix: str = "gradfit/",
        *,
        report: Callable[[str], None] | None = None,
        exit: Callable[[int], None] = os._exit,
    ) -> None:
        self.store, self.rank, self.world, self.timeout = store, rank, world, timeout
        self.prefix = prefix
        self.period = min(_HEARTBEAT, timeout / 5)
        self._exit = exit
        self._report = report if report is not None else _to_stderr
        self._stop = threading.Event()
        self._parent = os.getppid()
        self._thread = threading.Thread(target=self._run, name="gradfit-watchdog", daemon=True)
        self.verdict: str | None = None

    def _key(self, what: str, rank: int | None = None) -> str:
        return f"{self.prefix}{what}" + ("" if rank is None else f"/{rank}")

    def start(self) -> Watchdog:
        self.store.add(self._key("beat", self.rank), 1)
        self._thread.start()
        return self

    def stop(self, ended: bool = True) -> None:
        """Stop watching; ``ended``: tell the peers this process ended on purpose (it exits
        now; its silence from here on is not a death)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=2 * self.period + 1)
        if ended:
            with contextlib.suppress(Exception):
                self.store.set(self._key("ended", self.rank), "1")

    # ------------------------------------------------------------------------- the thread

    def _run(self) -> None:
        seen: dict[int, tuple[int, float]] = {}
        store_failed: float | None = None
        while not self._stop.wait(self.period):
            now = time.monotonic()
            if os.getppid() != self._parent:
                self._launcher_gone()
                return
            try:
                self.store.add(self._key("beat", self.rank), 1)
                verdict = self._verdict()
                silent = None if verdict is not None else self._silent(seen, now)
                store_failed = None
            except Exception as exc:  # the store's host is gone (its launcher died)
                store_failed = now if store_failed is None else store_failed
                if now - store_failed >= self.timeout:
                    self._end(self._store_lost(exc), printer=_local_rank() == 0)
                    return
                continue
            if verdict is not None:  # another process saw a peer die
                self._end(verdict, printer=None)
                return
            if silent is not None:
                self._end(self._decide(silent), printer=None)
                return

    def _verdict(self) -> str | None:
        key = self._key("verdict")
        if not self.store.check([key]):
            return None
        return bytes(self.store.get(key)).decode("utf-8", "replace") or None

    def _watched(self) -> list[int]:
        """The peers this process watches: its neighbours on the ring of ranks (every process
        is watched by two, and learns another's verdict from the store), so that the store
        serves a few requests per process and heartbeat, not one per pair of processes."""
        return sorted({(self.rank - 1) % self.world, (self.rank + 1) % self.world} - {self.rank})

    def _silent(self, seen: dict[int, tuple[int, float]], now: float) -> int | None:
        """The first watched peer whose heartbeat has not moved for ``timeout`` seconds and
        that did not say it ended; None while they live."""
        for peer in self._watched():
            beats = int(self.store.add(self._key("beat", peer), 0))
            last = seen.get(peer)
            if last is None or last[0] != beats:
                seen[peer] = (beats, now)
                continue
            if now - last[1] >= self.timeout and not self._ended(peer):
                return peer
        return None

    def _ended(self, peer: int) -> bool:
        return bool(self.store.check([self._key("ended", peer)]))

    def _decide(self, peer: int) -> str:
        """The job's verdict: the first one written to the store (this one if first)."""
        text = (
            f"{peer}\nrank {peer} stopped answering (no heartbeat for {self.timeout:g} s, "
            f"--dist-timeout {self.timeout:g}): its process died or hangs, or its node was lost; "
            "see its own output, and rerun (with --checkpoint and --resume a fit continues)"
        )
        stored = self.store.compare_set(self._key("verdict"), "", text)
        return bytes(stored).decode("utf-8", "replace")

    def _store_lost(self, exc: BaseException) -> str:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        return (
            f"-1\nlost the group's store for {self.timeout:g} s (--dist-timeout; {first}): the "
            "node that hosts the rendezvous, or its launcher, is gone; rerun the job"
        )

    def _end(self, verdict: str, printer: bool | None) -> None:
        """Print the verdict where this process is its printer; exit 1 now."""
        dead, _, message = verdict.partition("\n")
        self.verdict = message
        if printer is None:
            printer = self.rank == _lowest_alive(self.world, int(dead))
        if printer:
            with contextlib.suppress(Exception):
                self._report(message)
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        self._exit(1)

    def _launcher_gone(self) -> None:
        """The launcher died (torchrun killed): end as on SIGTERM (the main thread cleans up),
        or at once when the main thread is blocked in a collective."""
        with contextlib.suppress(OSError):
            os.kill(os.getpid(), signal.SIGTERM)
        if not self._stop.wait(5.0):
            self._exit(128 + signal.SIGTERM)

    # ------------------------------------------------------------------------- the main thread

    def lost(self, exc: BaseException) -> ProcessGroupError:
        """A collective failed in the main thread: wait (at most ``timeout`` and a little) for
        the verdict (the watchdog then ends this process) or for a peer that said it ended
        (it met an error of its own, shown by it); the error to raise otherwise."""
        deadline = time.monotonic() + self.timeout + 4 * self.period + 1
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                ended = [p for p in range(self.world) if p != self.rank and self._ended(p)]
                if ended:
                    peer = ended[0]
                    return ProcessGroupError(
                        f"rank {peer} left the job early (its own error is in its output); the "
                        "others end too",
                        exit_code=1,
                        shown_here=self.rank == _lowest_alive(self.world, peer),
                    )
            time.sleep(self.period / 2)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        return ProcessGroupError(
            f"a collective operation failed ({first}); a peer may have died", exit_code=1
        )


def _to_stderr(message: str) -> None:
    """A lost peer, said by the library (the command line passes its own way to say it)."""
    sys.stderr.write(f"gradfit: error: {message}\n")
    sys.stderr.flush()


def _lowest_alive(world: int, dead: int) -> int:
    return next(r for r in range(world) if r != dead)


def _local_rank() -> int:
    try:
        return int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError:
        return 0


_PR_SET_PDEATHSIG = 1


def end_with_launcher(environ: Mapping[str, str] | None = None) -> bool:
    """Under torchrun (``TORCHELASTIC_RUN_ID`` set), ask Linux to send this process SIGTERM
    when its parent, the launcher, dies (``prctl(PR_SET_PDEATHSIG)``); whether it was set.
    Elsewhere (not Linux, not launched), nothing."""
    env = os.environ if environ is None else environ
    if "TORCHELASTIC_RUN_ID" not in env or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    return True


def from_environment(
    device: torch.device | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    report: Callable[[str], None] | None = None,
) -> Communicator:
    """The group this process was launched into (see the module doc), or the single-process
    :data:`~gradfit.solvers.collective.LOCAL` when it was launched alone. Initialises the
    default process group (gloo, or NCCL when ``device`` is CUDA) if it is not already, with
    ``timeout`` to form it; the collectives then run in a group of their own with
    :data:`COLLECTIVE_TIMEOUT`, watched by a :class:`Watchdog` with ``timeout`` (a group
    initialised by the caller is used as it is, unwatched). ``report``: how the watchdog says
    that a peer was lost, one line, on the one process that says it (default: stderr)."""
    end_with_launcher()
    if not launched():
        return LOCAL
    if not dist.is_available():
        raise ProcessGroupError("this PyTorch build has no torch.distributed; run one process")
    cuda = device is not None and device.type == "cuda"
    if dist.is_initialized():
        where = torch.device("cuda", torch.cuda.current_device()) if cuda else None
        return TorchCommunicator(device=where)
    if cuda and device is not None:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local if device.index is None else device.index)
    limit = datetime.timedelta(seconds=timeout)
    try:
        # The rendezvous that init_process_group would do itself (env://: MASTER_ADDR,
        # MASTER_PORT, RANK, WORLD_SIZE, or torchrun's agent store), done here so that the
        # group's store, which the watchdog shares, comes through public API.
        base, rank, world = next(rendezvous("env://", timeout=limit))
        base.set_timeout(limit)
        store = PrefixStore("default_pg", base)
        dist.init_process_group(
            backend="nccl" if cuda else "gloo",
            store=store,
            rank=rank,
            world_size=world,
            timeout=limit,
        )
        group = dist.new_group(timeout=datetime.timedelta(seconds=max(timeout, COLLECTIVE_TIMEOUT)))
    except (RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ProcessGroupError(
            f"cannot join the process group ({first}); check MASTER_ADDR, MASTER_PORT "
            "and that every process was started"
        ) from None
    prefix = f"gradfit/{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}/"
    global _WATCHDOG
    _WATCHDOG = Watchdog(store, rank, world, timeout, prefix, report=report).start()
    where = torch.device("cuda", torch.cuda.current_device()) if cuda else None
    return TorchCommunicator(group=group, device=where, watchdog=_WATCHDOG)


_WATCHDOG: Watchdog | None = None


def shutdown() -> None:
    """Leave the process group, if this process joined one (the watchdog stopped first, and
    the peers told that this process ended on purpose)."""
    global _WATCHDOG
    if _WATCHDOG is not None:
        _WATCHDOG.stop()
        _WATCHDOG = None
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
