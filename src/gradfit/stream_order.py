"""The order of a streamed epoch's rows: the shuffle buffer and the cut into mini-batches.

Functions of iterators of (X, Y) chunks, rows in, rows out; :class:`gradfit.stream_data.StreamData`
feeds them its units in the order of step 1 below, and sgd steps on the mini-batches.

**The order of sgd's rows** (reproducible for a seed). Each epoch:

1. the stream's units (a Parquet row group; a whole CSV file) are taken in the order of one
   ``torch.randperm(n_units, generator)`` (no draw when there is a single unit);
2. rows flow, in that order, through a shuffle buffer of ``shuffle_buffer`` rows: incoming
   batches are appended to a pool; whenever the pool holds more than ``shuffle_buffer`` rows,
   one ``torch.randperm(len(pool), generator)`` is drawn, the rows at its first
   ``len(pool) - shuffle_buffer`` positions are emitted in that order and the rest stay; at
   the end of the pass the pool is emitted in the order of one more permutation;
3. emitted rows are cut into mini-batches of ``batch_size`` in emission order (the last one
   may be short).

``generator`` is the training state's. With one unit and ``shuffle_buffer >= n`` the epoch is a
single ``randperm(n)`` of the rows in file order: exactly the in-memory epoch, bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import torch

from gradfit.errors import DataError

__all__ = ["shuffled"]


def shuffled(
    chunks: Iterable[tuple[torch.Tensor, torch.Tensor]],
    capacity: int,
    generator: torch.Generator,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The shuffle buffer of the module doc (step 2): chunks of rows in, chunks of rows out."""
    pool_x: list[torch.Tensor] = []
    pool_y: list[torch.Tensor] = []
    held = 0
    for X, Y in chunks:
        pool_x.append(X)
        pool_y.append(Y)
        held += X.shape[0]
        if held <= capacity:
            continue
        px, py = torch.cat(pool_x), torch.cat(pool_y)
        perm = torch.randperm(held, generator=generator).to(px.device)
        out = held - capacity
        yield px.index_select(0, perm[:out]), py.index_select(0, perm[:out])
        pool_x, pool_y = [px.index_select(0, perm[out:])], [py.index_select(0, perm[out:])]
        held = capacity
    if held:
        px, py = torch.cat(pool_x), torch.cat(pool_y)
        perm = torch.randperm(held, generator=generator).to(px.device)
        yield px.index_select(0, perm), py.index_select(0, perm)


def _minibatches(
    chunks: Iterable[tuple[torch.Tensor, torch.Tensor]], batch_size: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Rows in, mini-batches of ``batch_size`` rows out, in order (the last may be short).
    Every batch is memory of its own (the engine standardizes it in place)."""
    carry_x: torch.Tensor | None = None
    carry_y: torch.Tensor | None = None
    for X, Y in chunks:
        if carry_x is not None and carry_y is not None:
            X, Y = torch.cat([carry_x, X]), torch.cat([carry_y, Y])
            carry_x = carry_y = None
        whole = X.shape[0] - X.shape[0] % batch_size
        for start in range(0, whole, batch_size):
            yield X[start : start + batch_size].clone(), Y[start : start + batch_size].clone()
        if whole < X.shape[0]:
            carry_x, carry_y = X[whole:], Y[whole:]
    if carry_x is not None and carry_y is not None:
        yield carry_x.clone(), carry_y.clone()


def _cut(
    chunks: Iterable[tuple[torch.Tensor, torch.Tensor]],
    sizes: Sequence[int],
    d: int,
    k: int,
    dtype: torch.dtype,
    device: torch.device,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Rows in, batches of exactly ``sizes`` rows out (each its own memory; a size 0 gives an
    empty batch). Rows beyond, or missing from, ``sum(sizes)`` mean the files changed since the
    statistics pass: a DataError."""
    source = iter(chunks)
    pending_x: list[torch.Tensor] = []
    pending_y: list[torch.Tensor] = []
    held = 0
    for size in sizes:
        while held < size:
            nxt = next(source, None)
            if nxt is None:
                raise DataError(
                    "the data files gave fewer rows than when the fit began; were they changed "
                    "during the fit?"
                )
            pending_x.append(nxt[0])
            pending_y.append(nxt[1])
            held += nxt[0].shape[0]
        if size == 0:
            yield (
                torch.empty(0, d, dtype=dtype, device=device),
                torch.empty(0, k, dtype=dtype, device=device),
            )
            continue
        X, Y = torch.cat(pending_x), torch.cat(pending_y)
        yield X[:size].clone(), Y[:size].clone()
        pending_x, pending_y = ([X[size:]], [Y[size:]]) if held > size else ([], [])
        held -= size
    if held or next(source, None) is not None:
        raise DataError(
            "the data files gave more rows than when the fit began; were they changed during "
            "the fit?"
        )
