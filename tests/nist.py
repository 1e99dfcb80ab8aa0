"""Reader for the NIST StRD linear-regression reference files, and the accuracy table.

The 11 files are kept in ``tests/data/nist-strd/`` (NIST Statistical Reference Datasets, public
domain; see ``tests/data/README.md``), so every test runs in a bare clone.

Each file states in its header where its certified values and its data are::

    Certified Values  (lines 31 to 51)
    Data              (lines 61 to 76)

Certified values are one ``B<i>  estimate  standard-deviation`` line per parameter, then the
residual standard deviation and R². Data rows are ``y x1 x2 ...``. Files whose model has more
slopes than x columns (Pontius, Filip, Wampler1-5) are polynomials in one x: the design is built
from the powers x^1..x^p. Files without ``B0`` (NoInt1, NoInt2) have no intercept.

Accuracy is the log relative error (LRE) used by NIST and by McCullough's software reviews:
``-log10(max_i |b_i - c_i| / |c_i|)``, capped at 15 (the certified values have 15 digits).

Run ``python tests/nist.py`` for the table of digits gradfit and NumPy get on every file.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "NIST_DIR",
    "NIST_NAMES",
    "NistProblem",
    "digits_table",
    "load",
    "lre",
    "numpy_lstsq",
]

# The reference files are part of the repository (public domain, see tests/data/README.md): a
# missing file is an error, never a reason to skip.
NIST_DIR = Path(__file__).parent / "data" / "nist-strd"

NIST_NAMES = (
    "Norris",
    "Pontius",
    "NoInt1",
    "NoInt2",
    "Filip",
    "Longley",
    "Wampler1",
    "Wampler2",
    "Wampler3",
    "Wampler4",
    "Wampler5",
)

LRE_CAP = 15.0

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_LINES = re.compile(r"(Certified Values|Data)\s*\(lines\s+(\d+)\s+to\s+(\d+)\)")
_PARAM = re.compile(rf"^\s*B(\d+)\s+({_NUMBER})\s+({_NUMBER})\s*$")
_RESID_SD = re.compile(rf"Residual\s+Standard Deviation\s+({_NUMBER})")
_R2 = re.compile(rf"R-Squared\s+({_NUMBER})")


@dataclass(frozen=True)
class NistProblem:
    """One StRD linear-regression problem.

    ``X`` (n, d) is the design *without* a column of ones; ``certified`` (p,) holds the certified
    estimates in file order (``B0`` first when ``fit_intercept``), ``certified_sd`` their standard
    deviations.
    """

    name: str
    X: np.ndarray  # (n, d) float64
    y: np.ndarray  # (n,) float64
    fit_intercept: bool
    polynomial_degree: int | None  # p for the power-column files, None otherwise
    certified: np.ndarray  # (p,) B0.. or B1..
    certified_sd: np.ndarray  # (p,)
    residual_sd: float
    r_squared: float

    @property
    def certified_intercept(self) -> float:
        return float(self.certified[0]) if self.fit_intercept else 0.0

    @property
    def certified_weight(self) -> np.ndarray:
        """(d,) certified slopes, B1..Bd."""
        return self.certified[1:] if self.fit_intercept else self.certified

    def design_with_ones(self) -> np.ndarray:
        """(n, p): [1, X] with an intercept, X without, in the order of ``certified``."""
        if not self.fit_intercept:
            return self.X
        return np.column_stack([np.ones(len(self.y)), self.X])


def load(name: str, directory: Path = NIST_DIR) -> NistProblem:
    """Parse ``<directory>/<name>.dat``."""
    path = directory / f"{name}.dat"
    lines = path.read_text(encoding="ascii").splitlines()
    header = "\n".join(lines[:15])
    spans = {kind: (int(a), int(b)) for kind, a, b in _LINES.findall(header)}
    if set(spans) != {"Certified Values", "Data"}:
        raise ValueError(f"{path}: no 'Certified Values'/'Data (lines A to B)' header")

    c0, c1 = spans["Certified Values"]
    certified_block = lines[c0 - 1 : c1]  # the header's line numbers count from 1
    params: dict[int, tuple[float, float]] = {}
    for line in certified_block:
        match = _PARAM.match(line)
        if match:
            params[int(match.group(1))] = (float(match.group(2)), float(match.group(3)))
    text = "\n".join(certified_block)
    resid = _RESID_SD.search(text)
    r2 = _R2.search(text)
    if not params or resid is None or r2 is None:
        raise ValueError(f"{path}: certified values incomplete")
    indices = sorted(params)
    fit_intercept = indices[0] == 0
    if indices != list(range(indices[0], indices[-1] + 1)):
        raise ValueError(f"{path}: parameters not consecutive: {indices}")

    d0, d1 = spans["Data"]
    data = np.array(
        [[float(v) for v in line.split()] for line in lines[d0 - 1 : d1] if line.strip()],
        dtype=np.float64,
    )
    y, x = data[:, 0], data[:, 1:]
    n_slopes = indices[-1]
    degree: int | None = None
    if x.shape[1] == n_slopes:
        X = x
    elif x.shape[1] == 1 and n_slopes > 1:
        degree = n_slopes
        X = x[:, 0:1] ** np.arange(1, degree + 1)  # (n, 1) ** (p,) -> (n, p): x, x², .., x^p
    else:
        raise ValueError(f"{path}: {x.shape[1]} x column(s) for {n_slopes} slope(s)")
    return NistProblem(
        name=name,
        X=X,
        y=y,
        fit_intercept=fit_intercept,
        polynomial_degree=degree,
        certified=np.array([params[i][0] for i in indices]),
        certified_sd=np.array([params[i][1] for i in indices]),
        residual_sd=float(resid.group(1)),
        r_squared=float(r2.group(1)),
    )


def lre(estimate: np.ndarray, certified: np.ndarray) -> float:
    """Digits of agreement: ``-log10`` of the largest relative error, capped at 15."""
    err = np.max(np.abs(np.asarray(estimate) - certified) / np.abs(certified))
    return LRE_CAP if err == 0 else min(LRE_CAP, -math.log10(err))


def numpy_lstsq(problem: NistProblem) -> np.ndarray:
    """NumPy's answer on the same design, with an explicit column of ones: (p,) like certified."""
    return np.linalg.lstsq(problem.design_with_ones(), problem.y, rcond=None)[0]


def gradfit_estimate(problem: NistProblem) -> np.ndarray:
    """gradfit's answer as (p,), in the order of ``certified``."""
    from gradfit import least_squares

    result = least_squares(problem.X, problem.y, fit_intercept=problem.fit_intercept)
    weight = result.weight.numpy()[0]
    if problem.fit_intercept:
        return np.concatenate([result.bias.numpy(), weight])
    return weight


def digits_table(directory: Path = NIST_DIR) -> list[tuple[str, float, float]]:
    """``(name, gradfit LRE, numpy.linalg.lstsq LRE)`` for every file, in ``NIST_NAMES`` order."""
    rows = []
    for name in NIST_NAMES:
        problem = load(name, directory)
        rows.append(
            (
                name,
                lre(gradfit_estimate(problem), problem.certified),
                lre(numpy_lstsq(problem), problem.certified),
            )
        )
    return rows


if __name__ == "__main__":
    print(f"{'file':<10} {'gradfit':>8} {'numpy':>8}")
    for name, ours, theirs in digits_table():
        print(f"{name:<10} {ours:8.2f} {theirs:8.2f}")
