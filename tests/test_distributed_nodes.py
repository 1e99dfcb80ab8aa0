"""A job whose processes agree, errors from every rank, the dead told from the slow, elastic
resumes, and what torchrun needs from its users (issue 22).

Two "nodes" are two torchrun launchers on this machine (``--nnodes 2``, one process each),
meeting by static rendezvous (``--master-port``, ``--node-rank``) or by c10d rendezvous (where
``--node-rank`` is ignored), each in a working directory of its own, so that a relative path
(``data/``, ``out/``, ``fit.ckpt``) names a node-local copy: what one node sees and the other
does not is made by what the two directories hold. Ports are free ones; every launcher runs in
a session of its own and the whole session is killed if it overstays. Short ``--dist-timeout``
values keep the dead-peer cases to seconds.

References: agreement cases are refusals (both processes non-zero, one line naming the first
difference and the ranks, nothing written); a resume on another number of processes must equal
the uninterrupted fit (gd: its steps come from the group's statistics, which differ by their
merge order only: 1e-12 relative).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pv
import pytest
import torch

from gradfit.checkpoint import Checkpoint, checkpoint_identity
from gradfit.cli import main
from gradfit.distributed import Watchdog
from gradfit.group_checks import _warn_small_batches
from gradfit.persistence import load_model
from gradfit.solvers.collective import Local, disagreement
from gradfit.solvers.config import SolverConfig
from gradfit.solvers.engine import init_state_from_stats
from gradfit.solvers.stats import SufficientStats
from gradfit.streaming import fit_stream
from gradfit.tensorfile import header_document

HELPERS = Path(__file__).parent / "helpers"
TIMEOUT = 150  # seconds for a whole job (two launchers); a hung one would otherwise stall CI


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    for name in [n for n in env if n.startswith(("SLURM_", "TORCHELASTIC_"))]:
        env.pop(name)
    env["OMP_NUM_THREADS"] = "1"
    src = str(Path(__file__).parents[1] / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return env


def _write_parts(directory: Path, parts: int = 4, rows: int = 300, seed: int = 0) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(parts):
        X = rng.normal(size=(rows, 2))
        y = X @ [1.5, -2.0] + 0.5 + rng.normal(size=rows) * 0.1
        pv.write_csv(pa.table({"a": X[:, 0], "b": X[:, 1], "y": y}), directory / f"p{i}.csv")


def _launcher(
    cwd: Path,
    node: int,
    port: int,
    rdzv: str,
    args: list[str],
    nnodes: str = "2",
    extra: list[str] | None = None,
) -> subprocess.Popen[str]:
    where = (
        ["--master-addr", "127.0.0.1", "--master-port", str(port), "--node-rank", str(node)]
        if rdzv == "static"
        else ["--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "t"]
    )
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", nnodes,
        "--nproc-per-node", "1", *where, *(extra or []), "-m", "gradfit", *args,
    ]  # fmt: skip
    with (cwd / "stderr.log").open("w") as err, (cwd / "stdout.log").open("w") as out:
        return subprocess.Popen(
            command, cwd=cwd, env=_env(), stdout=out, stderr=err, text=True, start_new_session=True
        )


def _finish(procs: list[subprocess.Popen[str]], timeout: float = TIMEOUT) -> list[int]:
    """Each launcher's exit code (bounded); a launcher still running at the deadline is killed
    with its whole session (its workers included)."""
    deadline = time.monotonic() + timeout
    codes: list[int] = []
    try:
        for proc in procs:
            codes.append(proc.wait(timeout=max(0.1, deadline - time.monotonic())))
    finally:
        for proc in procs:
            _kill_session(proc)
    return codes


def _kill_session(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def _errors(*nodes: Path) -> list[str]:
    lines = []
    for node in nodes:
        text = (node / "stderr.log").read_text()
        lines += [line for line in text.splitlines() if line.startswith("gradfit: error:")]
    return lines


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


# ----------------------------------------------------------------------------- a job that agrees


@pytest.mark.slow
@pytest.mark.parametrize("rdzv", ["static", "c10d"])
def test_ranks_that_see_other_files_are_refused_on_every_rank(tmp_path: Path, rdzv: str) -> None:
    """One node holds a file fewer: before, both exited 0 with a model of fewer rows."""
    nodes = [tmp_path / "node0", tmp_path / "node1"]
    for node in nodes:
        _write_parts(node / "data")
    (nodes[1] / "data" / "p3.csv").unlink()
    port = _free_port()
    args = ["fit", "data", "--target", "y", "--solver", "gd", "--out", "m.safetensors"]
    procs = [_launcher(node, i, port, rdzv, args) for i, node in enumerate(nodes)]
    codes = _finish(procs)
    assert all(code != 0 for code in codes), codes
    errors = _errors(*nodes)
    assert len(errors) == 1, errors
    assert "do not agree on the data" in errors[0] and "p3.csv" in errors[0], errors
    assert "rank 0" in errors[0] and "rank 1" in errors[0]
    assert not any((node / "m.safetensors").exists() for node in nodes)


@pytest.mark.slow
def test_ranks_that_see_other_columns_in_files_of_the_same_sizes_are_refused(
    tmp_path: Path,
) -> None:
    """Node 1's files have the same names and sizes, but its column b is called c: before,
    both exited 0 with a model whose "b" merged node 0's b with node 1's c."""
    nodes = [tmp_path / "node0", tmp_path / "node1"]
    for node in nodes:
        _write_parts(node / "data")
    for part in (nodes[1] / "data").iterdir():
        part.write_text(part.read_text().replace('"b"', '"c"', 1))
    assert [p.stat().st_size for p in sorted((nodes[0] / "data").iterdir())] == [
        p.stat().st_size for p in sorted((nodes[1] / "data").iterdir())
    ]
    port = _free_port()
    args = ["fit", "data", "--target", "y", "--solver", "gd", "--out", "m.safetensors"]
    codes = _finish([_launcher(node, i, port, "static", args) for i, node in enumerate(nodes)])
    assert all(code != 0 for code in codes), codes
    errors = _errors(*nodes)
    assert len(errors) == 1, errors
    assert "do not agree on the columns" in errors[0], errors
    assert "rank 0 sees b" in errors[0] and "rank 1 sees c" in errors[0]
    assert not any((node / "m.safetensors").exists() for node in nodes)


@pytest.mark.slow
def test_a_missing_out_folder_on_one_node_is_said_at_once(tmp_path: Path) -> None:
    """The --out folder exists on node 0 only: rank 0 says rank 1's error at once (before,
    rank 1's error was never shown and rank 0 waited the whole --dist-timeout)."""
    nodes = [tmp_path / "node0", tmp_path / "node1"]
    for node in nodes:
        _write_parts(node / "data")
    (nodes[0] / "out").mkdir()
    port = _free_port()
    args = [
        "fit", "data", "--target", "y", "--solver", "gd", "--out", "out/m.safetensors",
        "--dist-timeout", "120",
    ]  # fmt: skip
    start = time.monotonic()
    codes = _finish([_launcher(node, i, port, "c10d", args) for i, node in enumerate(nodes)])
    assert time.monotonic() - start < 100  # well before --dist-timeout
    assert all(code != 0 for code in codes), codes
    errors = _errors(*nodes)
    assert len(errors) == 1, errors
    assert "'out'" in errors[0] and "does not exist" in errors[0]
    assert (
        errors[0] in (nodes[0] / "stderr.log").read_text() + (nodes[1] / "stderr.log").read_text()
    )


@pytest.mark.slow
def test_cv_ranks_that_see_other_files_are_refused_on_every_rank(tmp_path: Path) -> None:
    """``--alpha cv`` agrees as plain fit does: one node holds a file fewer, both launchers
    exit non-zero with one line (before, the fold statistics of fewer rows were merged)."""
    nodes = [tmp_path / "node0", tmp_path / "node1"]
    for node in nodes:
        _write_parts(node / "data")
    (nodes[1] / "data" / "p3.csv").unlink()
    port = _free_port()
    args = [
        "fit", "data", "--target", "y", "--alpha", "cv", "--alphas", "10", "--seed", "3",
        "--out", "m.safetensors", "--dist-timeout", "120",
    ]  # fmt: skip
    codes = _finish([_launcher(node, i, port, "static", args) for i, node in enumerate(nodes)])
    assert all(code != 0 for code in codes), codes
    errors = _errors(*nodes)
    assert len(errors) == 1, errors
    assert "do not agree on the data" in errors[0] and "p3.csv" in errors[0], errors
    assert "rank 0" in errors[0] and "rank 1" in errors[0]
    assert errors[0] in (nodes[0] / "stderr.log").read_text()  # said by rank 0 (node 0)
    assert not any((node / "m.safetensors").exists() for node in nodes)


@pytest.mark.slow
def test_cv_a_missing_out_folder_on_one_node_is_said_at_once(tmp_path: Path) -> None:
    """``--alpha cv``: the --out folder is missing on node 1 only; rank 0 (node 0, static
    rendezvous) says rank 1's error at once (before, the group formed after the checks, and
    rank 0 waited the whole --dist-timeout)."""
    nodes = [tmp_path / "node0", tmp_path / "node1"]
    for node in nodes:
        _write_parts(node / "data")
    (nodes[0] / "out").mkdir()
    port = _free_port()
    args = [
        "fit", "data", "--target", "y", "--alpha", "cv", "--alphas", "10",
        "--out", "out/m.safetensors", "--dist-timeout", "120",
    ]  # fmt: skip
    start = time.monotonic()
    codes = _finish([_launcher(node, i, port, "static", args) for i, node in enumerate(nodes)])
    assert time.monotonic() - start < 100  # well before --dist-timeout
    assert all(code != 0 for code in codes), codes
    errors = _errors(*nodes)
    assert len(errors) == 1, errors
    assert "'out'" in errors[0] and "does not exist" in errors[0], errors
    assert errors[0] in (nodes[0] / "stderr.log").read_text()  # rank 0 says rank 1's error
    assert not (nodes[0] / "out" / "m.safetensors").exists()


@pytest.mark.slow
def test_a_node_local_checkpoint_seen_by_one_rank_is_refused(tmp_path: Path) -> None:
    """c10d rendezvous puts rank 0 on either node: a checkpoint on one node's disk is seen by
    one rank only; refused (before: "no checkpoint; starting afresh" on the other node)."""
    nodes = [tmp_path / "node0", tmp_path / "node1"]
    for node in nodes:
        _write_parts(node / "data")
    common = ["--target", "y", "--solver", "gd", "--epochs", "5", "--tol", "none", "--quiet"]
    first = subprocess.run(
        [sys.executable, "-m", "gradfit", "fit", "data", *common, "--out", "m.safetensors",
         "--checkpoint", "fit.ckpt"],
        cwd=nodes[0], env=_env(), capture_output=True, text=True, timeout=TIMEOUT,
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    args = ["fit", "data", *common, "--out", "m2.safetensors", "--checkpoint", "fit.ckpt",
            "--resume"]  # fmt: skip
    port = _free_port()
    codes = _finish([_launcher(node, i, port, "c10d", args) for i, node in enumerate(nodes)])
    assert all(code != 0 for code in codes), codes
    errors = _errors(*nodes)
    assert len(errors) == 1, errors
    assert "do not agree on the checkpoint" in errors[0], errors
    assert "no checkpoint at fit.ckpt" in errors[0] and "sha256" in errors[0]
    assert not any((node / "m2.safetensors").exists() for node in nodes)


@pytest.mark.slow
def test_a_group_that_cannot_form_is_said_by_each_process(tmp_path: Path) -> None:
    """Rank 1 of 2 whose rank 0 never comes: it says its own error (not left to rank 0, which
    is not there), within --dist-timeout, exit 2."""
    _write_parts(tmp_path / "data", parts=1, rows=20)
    env = _env() | {
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(_free_port()),
        "RANK": "1",
        "WORLD_SIZE": "2",
        "LOCAL_RANK": "0",
    }
    run = subprocess.run(
        [sys.executable, "-m", "gradfit", "fit", "data", "--target", "y", "--out", "m.st",
         "--dist-timeout", "2"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT,
    )  # fmt: skip
    assert run.returncode == 2
    # (c10d logs its own line about the socket first.)
    ours = [line for line in run.stderr.splitlines() if line.startswith("gradfit:")]
    assert len(ours) == 1 and ours[0].startswith("gradfit: error: cannot join the process group")
    assert "Traceback" not in run.stderr


# ----------------------------------------------------------------------------- dead, not slow


@pytest.mark.slow
def test_a_killed_peer_is_one_line_naming_its_rank_exit_1(tmp_path: Path) -> None:
    """kill -9 of one node's worker mid-fit: the other says so once, names the rank and
    --dist-timeout, exits 1, no internal error (before: "internal error ... Connection reset
    by peer ... please report it" from every survivor)."""
    nodes = [tmp_path / "node0", tmp_path / "node1"]
    for node in nodes:
        _write_parts(node / "data", rows=2000)
    port = _free_port()
    args = [
        "fit", "data", "--target", "y", "--solver", "sgd", "--batch-size", "64", "--epochs",
        "100000", "--tol", "none", "--out", "m.safetensors", "--dist-timeout", "4",
        "--checkpoint", "fit.ckpt", "--quiet",
    ]  # fmt: skip
    procs = [_launcher(node, i, port, "static", args) for i, node in enumerate(nodes)]
    try:
        deadline = time.monotonic() + TIMEOUT
        while not (nodes[0] / "fit.ckpt").exists() and time.monotonic() < deadline:
            assert all(p.poll() is None for p in procs), _errors(*nodes)
            time.sleep(0.1)
        workers = _children(procs[1].pid)
        assert workers, "node 1's worker not found"
        killed = time.monotonic()
        os.kill(workers[0], signal.SIGKILL)
        code = procs[0].wait(timeout=60)
        assert time.monotonic() - killed < 4 + 20  # --dist-timeout and a start-up's slack
    finally:
        _finish(procs, timeout=30)
    assert code != 0
    text = (nodes[0] / "stderr.log").read_text()
    assert "internal error" not in text and "report it" not in text
    errors = _errors(nodes[0])
    assert len(errors) == 1, text[-3000:]
    assert "rank 1 stopped answering" in errors[0] and "--dist-timeout 4" in errors[0]
    assert "exitcode  : 1" in text  # torchrun's report of the worker's exit code


def _group_script(tmp_path: Path, world: int, script: str, *extra: str) -> list[str]:
    """Processes of tests/helpers/peer.py over a TCPStore on a free port: each one's exit code
    and output (rank 0 waited for; the others killed once it ended, or at the deadline)."""
    port = _free_port()
    procs = []
    for rank in range(world):
        env = _env() | {
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "RANK": str(rank),
            "WORLD_SIZE": str(world),
            "LOCAL_RANK": str(rank),
        }
        log = (tmp_path / f"peer{rank}.log").open("w")
        procs.append(
            subprocess.Popen(
                [sys.executable, str(HELPERS / "peer.py"), script, *extra],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
        )
        log.close()
    try:
        codes = [procs[0].wait(timeout=90)]
        deadline = time.monotonic() + 10
        for proc in procs[1:]:
            try:
                codes.append(proc.wait(timeout=max(0.1, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                codes.append(-9)
    finally:
        for proc in procs:
            _kill_session(proc)
    return [f"{code}:" + (tmp_path / f"peer{r}.log").read_text() for r, code in enumerate(codes)]


@pytest.mark.slow
def test_a_slow_reader_does_not_fail_the_job_but_a_hung_one_does(tmp_path: Path) -> None:
    """Rank 1 "reads" for 3 times --dist-timeout (alive: its heartbeat moves) while rank 0
    waits in a gather: the job succeeds (before, --dist-timeout bounded how uneven shards could
    be). Then rank 1 hangs (SIGSTOP of itself) before the gather: rank 0 says so once, exit 1."""
    (tmp_path / "hung").mkdir()
    slow = _group_script(tmp_path, 2, "slow")
    assert slow == ["0:gathered [0, 1]\n", "0:gathered [0, 1]\n"], slow
    hung = _group_script(tmp_path / "hung", 2, "hung")
    assert hung[0].startswith("1:gradfit: error: rank 1 stopped answering"), hung
    assert hung[0].count("\n") == 1 and "--dist-timeout 2" in hung[0]


# ----------------------------------------------------------------------------- elastic


@pytest.mark.slow
def test_workers_end_when_their_launcher_is_killed(tmp_path: Path) -> None:
    """kill -9 of the torchrun launcher (2 processes, mid-fit): its workers end too (before,
    they ran to the end and wrote the model afterwards)."""
    _write_parts(tmp_path / "data", rows=1500)
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "gradfit", "fit", "data", "--target", "y", "--solver", "gd", "--epochs", "800",
        "--tol", "none", "--quiet", "--out", "m.safetensors", "--checkpoint", "fit.ckpt",
        "--checkpoint-every", "1",
    ]  # fmt: skip
    with (tmp_path / "stderr.log").open("w") as err:
        launcher = subprocess.Popen(
            command, cwd=tmp_path, env=_env(), stdout=subprocess.DEVNULL, stderr=err,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + TIMEOUT
        while not (tmp_path / "fit.ckpt").exists() and time.monotonic() < deadline:
            assert launcher.poll() is None, (tmp_path / "stderr.log").read_text()
            time.sleep(0.05)
        workers = _children(launcher.pid)
        assert len(workers) == 2
        launcher.send_signal(signal.SIGKILL)
        launcher.wait()
        end = time.monotonic() + 30
        while any(map(_alive, workers)) and time.monotonic() < end:
            time.sleep(0.1)
        assert not any(map(_alive, workers)), "the workers outlived their launcher"
    finally:
        _kill_session(launcher)  # type: ignore[arg-type]
    assert not (tmp_path / "m.safetensors").exists()


@pytest.mark.slow
def test_an_elastic_job_survives_losing_a_node(tmp_path: Path) -> None:
    """c10d rendezvous, --nnodes 1:2 --max-restarts 1: node 1 (launcher and worker) is killed
    mid-fit; node 0's worker notices (--dist-timeout), torchrun restarts it alone, and the fit
    resumes from the checkpoint on one process: gd ends at the uninterrupted fit (1e-12)."""
    shared = tmp_path / "shared"
    _write_parts(shared / "data", rows=1500)
    nodes = [tmp_path / "node0", tmp_path / "node1"]
    for node in nodes:
        node.mkdir()
    common = ["--target", "y", "--solver", "gd", "--lr", "0.01", "--epochs", "800", "--tol",
              "none", "--quiet"]  # fmt: skip
    reference = subprocess.run(
        [sys.executable, "-m", "gradfit", "fit", str(shared / "data"), *common, "--out",
         str(tmp_path / "ref.safetensors")],
        env=_env(), capture_output=True, text=True, timeout=TIMEOUT,
    )  # fmt: skip
    assert reference.returncode == 0, reference.stderr
    args = [
        "fit", str(shared / "data"), *common, "--out", str(shared / "m.safetensors"),
        "--checkpoint", str(shared / "fit.ckpt"), "--checkpoint-every", "1", "--resume",
        "--dist-timeout", "4",
    ]  # fmt: skip
    port = _free_port()
    elastic = ["--max-restarts", "1", "--rdzv-conf",
               "last_call_timeout=10,keep_alive_interval=1,keep_alive_max_attempt=3"]  # fmt: skip
    procs = [_launcher(nodes[0], 0, port, "c10d", args, nnodes="1:2", extra=elastic)]
    # Node 0 hosts the rendezvous store; node 1 joins its first round (last_call_timeout 10 s:
    # with 1 s a loaded machine let node 0 start alone, and the round that node 1's late
    # arrival forced timed out in torch's own rendezvous, before gradfit ran).
    time.sleep(2.0)
    procs.append(_launcher(nodes[1], 1, port, "c10d", args, nnodes="1:2", extra=elastic))
    try:
        deadline = time.monotonic() + TIMEOUT
        while not (shared / "fit.ckpt").exists() and time.monotonic() < deadline:
            assert all(p.poll() is None for p in procs), _errors(*nodes)
            time.sleep(0.05)
        os.killpg(procs[1].pid, signal.SIGKILL)  # node 1 lost: its launcher and its worker
        code = procs[0].wait(timeout=TIMEOUT)
    finally:
        _finish(procs, timeout=10)
    text = (nodes[0] / "stderr.log").read_text()
    assert code == 0, text[-3000:]
    assert "internal error" not in text
    # The last checkpoint is the restarted group's, of one process.
    document = header_document(shared / "fit.ckpt")
    assert document is not None and document["world"] == 1
    a, b = load_model(tmp_path / "ref.safetensors"), load_model(shared / "m.safetensors")
    rel = float((a.weight - b.weight).abs().max() / a.weight.abs().max())
    assert rel <= 1e-12


# ----------------------------------------------------------------------------- pieces


def test_disagreement_names_the_first_difference_and_the_ranks() -> None:
    advice = {"the data": "share the files"}
    views = [
        {"the data": ["a.csv: 10 bytes", "b.csv: 20 bytes"], "the settings": {"lr": 1}},
        {"the data": ["a.csv: 10 bytes"], "the settings": {"lr": 2}},
        {"the data": ["a.csv: 10 bytes", "b.csv: 20 bytes"], "the settings": {"lr": 1}},
    ]
    text = disagreement(views, advice)
    assert text == (
        "the processes do not agree on the data (item 2 of 2): ranks 0, 2 see b.csv: 20 bytes; "
        "rank 1 sees nothing (a list of 1, not 2); share the files"
    )
    views[1]["the data"] = views[0]["the data"]
    assert disagreement(views, advice) == (
        "the processes do not agree on the settings (lr): ranks 0, 2 see 1; rank 1 sees 2"
    )
    assert disagreement([views[0], views[0]], advice) is None


def test_checkpoint_identity_tells_files_apart(tmp_path: Path) -> None:
    path = tmp_path / "fit.ckpt"
    assert checkpoint_identity(path) == f"no checkpoint at {path}"
    path.write_bytes(b"a" * 10)
    one = checkpoint_identity(path)
    path.write_bytes(b"b" * 10)
    assert one != checkpoint_identity(path) and "10 bytes" in one


class _Store:
    """A store (the calls the watchdog makes) in memory, thread-safe."""

    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}
        self.lock = threading.Lock()

    def add(self, key: str, n: int) -> int:
        with self.lock:
            value = int(self.values.get(key, b"0")) + n
            self.values[key] = str(value).encode()
            return value

    def check(self, keys: list[str]) -> bool:
        with self.lock:
            return all(k in self.values for k in keys)

    def get(self, key: str) -> bytes:
        with self.lock:
            return self.values[key]

    def set(self, key: str, value: str) -> None:
        with self.lock:
            self.values[key] = value.encode()

    def compare_set(self, key: str, expected: str, desired: str) -> bytes:
        with self.lock:
            current = self.values.get(key, b"")
            if current == expected.encode():
                self.values[key] = desired.encode()
            return self.values[key]


def test_watchdog_tells_a_silent_peer_from_one_that_ended() -> None:
    """Three processes' watchdogs over one store: rank 2 ends on purpose (no verdict); rank 1
    then falls silent: one verdict naming rank 1, said by rank 0 alone, every survivor exits 1."""
    store = _Store()
    said: list[tuple[int, str]] = []
    exits: list[tuple[int, int]] = []
    dogs = [
        Watchdog(
            store,
            r,
            3,
            0.5,
            report=lambda m, r=r: said.append((r, m)),
            exit=lambda code, r=r: exits.append((r, code)),
        )
        for r in range(3)
    ]
    for dog in dogs:
        dog.start()
    dogs[2].stop()  # ended on purpose
    time.sleep(1.2)
    assert not said and not exits
    dogs[1].stop(ended=False)  # silent: dead or hung
    deadline = time.monotonic() + 10
    while len(exits) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    dogs[0].stop(ended=False)
    assert exits == [(0, 1)], exits
    assert len(said) == 1 and said[0][0] == 0
    assert said[0][1].startswith("rank 1 stopped answering (no heartbeat for 0.5 s")


def test_srun_without_torchrun_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], train_csv: Path
) -> None:
    for name in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SLURM_NTASKS", "4")
    monkeypatch.setenv("SLURM_PROCID", "0")
    assert main(["fit", str(train_csv), "--target", "y", "--out", "m.safetensors"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "srun" in err and "torchrun" in err
    monkeypatch.setenv("SLURM_PROCID", "3")  # the other tasks exit alike, silently
    assert main(["fit", str(train_csv), "--target", "y", "--out", "m.safetensors"]) == 2
    assert capsys.readouterr().err == ""


def test_small_sgd_batches_over_a_group_are_warned() -> None:
    # The threshold is 400,000 values (rows x (features + 1)) per process per step, where the
    # arithmetic of a step overtakes its exchange (benchmarks/bench_sgd_exchange.py): 36,364
    # rows of 10 features, 400 rows of 999, rounded up to a multiple of 1,024 for the group.
    with pytest.warns(UserWarning, match=r"--batch-size 73728 or more \(about 36,364 rows"):
        _warn_small_batches(SolverConfig(solver="sgd", batch_size=32), 2, 10)
    with pytest.warns(UserWarning, match=r"--batch-size 1024 or more \(about 400 rows"):
        _warn_small_batches(SolverConfig(solver="sgd", batch_size=512), 2, 999)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _warn_small_batches(SolverConfig(solver="sgd", batch_size=73728), 2, 10)
        _warn_small_batches(SolverConfig(solver="sgd", batch_size=1024), 2, 999)
        _warn_small_batches(SolverConfig(solver="sgd", batch_size=8192), 2, 1000)
        _warn_small_batches(SolverConfig(solver="gd"), 2, 10)


def test_sgd_resumed_on_more_processes_says_its_row_order_changes(tmp_path: Path) -> None:
    """A one-process sgd checkpoint resumed by rank 1 of 2: the state continues (the epoch as
    saved) with a note, and the new rank's generator is a stream of its own."""
    _write_parts(tmp_path / "data", parts=2, rows=200)
    config = SolverConfig(solver="sgd", max_epochs=3, tol=None, batch_size=16, learning_rate=0.01)
    ckpt = tmp_path / "fit.ckpt"
    fit_stream(tmp_path / "data", ["y"], None, config, checkpoint=ckpt, seed=1)
    document = header_document(ckpt)
    assert document is not None

    class Rank1Of2(Local):
        rank, world = 1, 2

        def broadcast_bytes(self, data: bytes | None) -> bytes:
            return ckpt.read_bytes()  # rank 0's read

    keeper = Checkpoint(
        ckpt, document["data"], document["settings"], resume_from_file=True, comm=Rank1Of2()
    )
    stats = SufficientStats.compute(torch.ones(4, 2).cumsum(0), torch.ones(4, 1))
    restored = keeper.resume(init_state_from_stats(stats, config, max_row_norm2=1.0))
    assert restored is not None
    state, finished, _ = restored
    assert finished and state.epoch == 3
    assert any("row order" in note and "1 process(es)" in note for note in keeper.notes)
    saved = Checkpoint(ckpt, document["data"], document["settings"], resume_from_file=True)
    first = saved.resume(init_state_from_stats(stats, config, max_row_norm2=1.0))
    assert first is not None and not saved.notes[:-1]
    assert not torch.equal(first[0].generator.get_state(), state.generator.get_state())
