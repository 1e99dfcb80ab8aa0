"""One process of a gradfit group, for tests/test_distributed.py.

Usage: python dist_worker.py STORE RANK WORLD OUT SOURCE SOLVER ALPHA
(SOLVER may end in +early: early stopping on held-out rows.)
Joins a gloo group through a file store (no port), fits ``SOURCE`` with
gradfit.streaming.fit_stream(comm=TorchCommunicator()), and writes this rank's weight and bias
to OUT/rank{RANK}.npz, or the error's one line to OUT/rank{RANK}.err (exit 2).
"""

from __future__ import annotations

import datetime
import sys
from pathlib import Path

import numpy as np
import torch.distributed as dist


def main() -> int:
    store, rank, world, out, source, solver, alpha = sys.argv[1:8]
    dist.init_process_group(
        "gloo",
        init_method=f"file://{store}",
        rank=int(rank),
        world_size=int(world),
        timeout=datetime.timedelta(seconds=60),
    )
    from gradfit.distributed import TorchCommunicator
    from gradfit.errors import GradfitError
    from gradfit.solvers.config import SolverConfig
    from gradfit.streaming import fit_stream

    comm = TorchCommunicator()
    early = solver.endswith("+early")  # early stopping on held-out rows
    cov = "HC1" if solver.endswith("+hc1") else "nonrobust"  # the covariance of the table
    config = SolverConfig(
        solver=solver.removesuffix("+early").removesuffix("+hc1"),
        alpha=float(alpha),
        max_epochs=300,
        tol=1e-9,
        early_stopping=early,
        validation_fraction=0.2,
    )
    try:
        report = fit_stream(
            source, ["y1", "y2"], None, config, seed=3, batch_rows=700, comm=comm, inference=cov
        )
    except GradfitError as exc:
        (Path(out) / f"rank{rank}.err").write_text(str(exc))
        return 2
    finally:
        dist.destroy_process_group()
    np.savez(
        Path(out) / f"rank{rank}.npz",
        weight=report.result.weight.numpy(),
        bias=report.result.bias.numpy(),
        n=report.n_samples,
        scores=np.array(report.result.validation_scores or []),
        se=report.inference.weight_se.numpy() if report.inference is not None else np.zeros(0),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
