"""Items made ahead of their use, in a thread: reading, decoding and converting data overlap the
work of the caller on the item before (pyarrow and NumPy release the GIL while they work)."""

from __future__ import annotations

from collections import deque
from collections.abc import Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["read_ahead"]

T = TypeVar("T")
_END: Any = object()  # the end of the items read ahead


def read_ahead(items: Iterator[T], depth: int = 1) -> Generator[T, None, None]:
    """``items``, up to ``depth`` of them made ahead in a thread while the caller uses the
    current one (pyarrow releases the GIL while decoding, NumPy while copying): reading,
    decoding and converting overlap the caller's work. ``items`` is closed at the end, or when
    the caller stops early (what was made ahead is then dropped)."""
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        ahead = deque(pool.submit(next, items, _END) for _ in range(depth))
        while True:
            item = ahead.popleft().result()
            if item is _END:
                return
            ahead.append(pool.submit(next, items, _END))
            yield item
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        close = getattr(items, "close", None)
        if close is not None:
            close()
