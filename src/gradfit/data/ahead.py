"""Items made ahead of their use, in a thread: reading, decoding and converting data overlap the
work of the caller on the item before (pyarrow and NumPy release the GIL while they work).

Stopping is the delicate part: Ctrl-C or SIGTERM raises in the caller's thread at any moment,
even while the worker thread is being started or is inside pyarrow. So the worker thread alone
ever touches the items (it makes them and closes them: a generator cannot be closed while
another thread runs it, "generator already executing"), unless it never started, in which case
the caller closes them; and the caller, when it stops, tells the worker to stop and waits for it
(a bounded wait: a worker deep in a long read finishes that item, closes the items and ends by
itself).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator
from typing import Any, TypeVar

__all__ = ["read_ahead"]

T = TypeVar("T")
_END: Any = object()  # the end of the items read ahead
_JOIN_SECONDS = 30.0  # how long a caller that stops waits for the worker's item in progress


class _Shared:
    """What the caller and the worker share: who owns the items, and whether to stop."""

    def __init__(self, depth: int) -> None:
        self.lock = threading.Lock()
        self.taken = False  # the worker has started: it alone touches the items
        self.abandoned = False  # the caller has stopped: a worker not yet started must not
        self.stop = threading.Event()
        self.slots = threading.Semaphore(depth)  # items that may be made ahead
        self.made: queue.SimpleQueue[tuple[Any, BaseException | None]] = queue.SimpleQueue()


def read_ahead(items: Iterator[T], depth: int = 1) -> Generator[T, None, None]:
    """``items``, up to ``depth`` of them made ahead in a thread while the caller uses the
    current one (pyarrow releases the GIL while decoding, NumPy while copying): reading,
    decoding and converting overlap the caller's work. ``items`` is closed at the end, or when
    the caller stops early (what was made ahead is then dropped); an exception raised by
    ``items`` reaches the caller. See the module doc for how stopping stays safe when an
    interrupt (Ctrl-C, SIGTERM) lands anywhere.

    >>> list(read_ahead(iter(range(5)), depth=2))
    [0, 1, 2, 3, 4]
    """
    shared = _Shared(depth)
    # A daemon thread: one left waiting for a slot by a caller that never closed this generator
    # must not keep the interpreter from exiting (it holds no file open mid-write).
    worker = threading.Thread(
        target=_make, args=(items, shared), name="gradfit-read-ahead", daemon=True
    )
    try:
        worker.start()
        while True:
            item, error = shared.made.get()
            if item is _END:
                if error is not None:
                    raise error
                return
            shared.slots.release()  # the worker may make one more
            yield item
    finally:
        with shared.lock:
            started = shared.taken
            shared.abandoned = True
        if not started:  # never started, never will touch the items: close them here
            close = getattr(items, "close", None)
            if close is not None:
                close()
        else:
            shared.stop.set()
            shared.slots.release()  # wake a worker waiting for a slot
            worker.join(_JOIN_SECONDS)


def _make(items: Iterator[Any], shared: _Shared) -> None:
    """The worker: make items while there are slots, until the end, an error or a stop; then
    close ``items`` (in this thread, the only one that ran them) and say so."""
    with shared.lock:
        if shared.abandoned:
            return
        shared.taken = True
    error: BaseException | None = None
    try:
        while True:
            shared.slots.acquire()
            if shared.stop.is_set():
                break
            try:
                item = next(items)
            except StopIteration:
                break
            shared.made.put((item, None))
    except BaseException as exc:  # reaches the caller, re-raised there
        error = exc
    finally:
        close = getattr(items, "close", None)
        if close is not None:
            try:
                close()
            except BaseException as exc:
                error = error or exc
        shared.made.put((_END, error))
