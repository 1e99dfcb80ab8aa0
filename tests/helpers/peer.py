"""One process of a bare gradfit group, for tests/test_distributed_nodes.py.

Usage (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set): python peer.py MODE
Joins the group by :func:`gradfit.distributed.from_environment` (--dist-timeout 2 s), then
gathers every rank's number and prints ``gathered [...]``. MODE ``slow``: rank 1 first "reads"
for 6 s (alive: its watchdog beats); ``hung``: rank 1 stops itself (SIGSTOP) instead.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import torch

from gradfit.distributed import from_environment, shutdown


def main() -> int:
    mode = sys.argv[1]
    comm = from_environment(timeout=2.0)
    if comm.rank == 1 and mode == "slow":
        time.sleep(6.0)
    if comm.rank == 1 and mode == "hung":
        os.kill(os.getpid(), signal.SIGSTOP)
    parts = comm.gather(torch.tensor([comm.rank]))
    print("gathered", [int(p[0]) for p in parts], flush=True)
    shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
