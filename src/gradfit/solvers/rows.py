"""The row rule: which rows are held out, decided row by row from (seed, file, row) alone.

Early stopping holds out a fraction of the rows for validation. A row's fate is a seeded hash
of its address — the file's index in the source (0 for a table or arrays read whole) and its
data row number in that file, counted from 1 — so the same rows are held out whatever reads
them: the whole file in memory, a stream in batches of any size, in any order, sharded over any
number of processes. The training rows keep their file order (a boolean mask, not a
permutation), as a stream visits them; sgd's per-epoch ``randperm`` over them then visits rows
in the same order in memory as in a stream of one unit with a shuffle buffer holding every row.

The same hash picks cross-validation folds next (:func:`fold_ids`): a row's fold is its
uniform number cut into ``k`` equal parts, so that with the same seed fold 0 holds exactly the
rows that ``holdout_mask(..., fraction=1/k, ...)`` holds out.

The split's seed comes from the fit's through :func:`holdout_seed`, in memory and streamed
alike.

>>> holdout_mask(0, 1, 8, 0.5, 7).tolist() == np.concatenate(
...     [holdout_mask(0, 1, 3, 0.5, 7), holdout_mask(0, 4, 5, 0.5, 7)]
... ).tolist()
True
"""

from __future__ import annotations

import secrets

import numpy as np
import numpy.typing as npt

from gradfit.errors import ValidationError

__all__ = ["fold_ids", "holdout_mask", "holdout_seed", "resolve_seed", "row_uniform"]

# Mixed into the fit's seed so that the split does not reuse the shuffling generator's stream.
_HOLDOUT_SALT = 0x5EED

_MASK64 = (1 << 64) - 1


def resolve_seed(random_state: int | None) -> int:
    """The fit's seed: ``random_state``, or 63 bits of fresh entropy for None."""
    return secrets.randbits(63) if random_state is None else int(random_state)


def holdout_seed(random_state: int | None) -> int:
    """The seed of the hold-out rows for a fit seeded with ``random_state`` (None: fresh
    entropy, so call this once per fit and pass the result on)."""
    return resolve_seed(random_state) ^ _HOLDOUT_SALT


def row_uniform(file_index: int, first_row: int, m: int, seed: int) -> npt.NDArray[np.float64]:
    """One number in [0, 1) for each of the rows ``first_row .. first_row + m - 1`` (counted
    from 1) of file number ``file_index``: SplitMix64's finalizer of
    ``row + seed * φ + file_index * c`` (mod 2⁶⁴, φ and c odd 64-bit constants), its top 53 bits
    as a fraction. A function of (seed, file, row) alone."""
    u64 = np.uint64
    offset = (seed * 0x9E3779B97F4A7C15 + file_index * 0xD1B54A32D192ED03) & _MASK64
    z = np.arange(first_row, first_row + m, dtype=u64) + u64(offset)
    z = (z ^ (z >> u64(30))) * u64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> u64(27))) * u64(0x94D049BB133111EB)
    z ^= z >> u64(31)
    uniform: npt.NDArray[np.float64] = (z >> u64(11)).astype(np.float64) * 2.0**-53
    return uniform


def holdout_mask(
    file_index: int, first_row: int, m: int, fraction: float, seed: int
) -> npt.NDArray[np.bool_]:
    """Which of the rows ``first_row .. first_row + m - 1`` (counted from 1) of file number
    ``file_index`` are held out for early stopping's validation: each row independently with
    probability ``fraction`` (:func:`row_uniform` below ``fraction``). The same rows whatever
    the batch size, the order of reading, the sharding or the number of processes; about
    ``fraction * n`` of the n rows, and possibly none of a few rows."""
    mask: npt.NDArray[np.bool_] = row_uniform(file_index, first_row, m, seed) < fraction
    return mask


def fold_ids(file_index: int, first_row: int, m: int, k: int, seed: int) -> npt.NDArray[np.int64]:
    """The cross-validation fold (0 .. k-1) of each of the rows ``first_row .. first_row + m -
    1`` of file number ``file_index``: how many of the cut points ``1/k, 2/k, .. (k-1)/k`` the
    row's :func:`row_uniform` number reaches, each fold about n/k rows. Fold 0 is exactly the
    rows that ``holdout_mask`` holds out with ``fraction=1/k`` and the same seed."""
    if k < 1:
        raise ValidationError(f"the number of folds must be at least 1, got {k}")
    cuts = np.arange(1, k, dtype=np.float64) / k
    folds: npt.NDArray[np.int64] = np.searchsorted(
        cuts, row_uniform(file_index, first_row, m, seed), side="right"
    ).astype(np.int64)
    return folds
