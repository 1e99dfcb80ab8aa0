"""Several processes (torch.distributed, gloo on this machine) and checkpoints.

Groups are started as separate processes that meet through a file store (tests/helpers/
dist_worker.py) or through ``torchrun --standalone`` (which picks a free port itself): never a
fixed port. Every process is waited for with a bounded timeout and killed if it overstays.

References: the single-process streamed fit of the same files (itself tested against the
in-memory fit and the closed form in test_streaming.py). gd, lstsq and ridge over a group must
equal it to float64 rounding (1e-10 relative: the group merges the same statistics or R factors
in another order, a few ulps); sgd takes other steps (each process shuffles its own shard) and
must reach the same optimum.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pv
import pyarrow.parquet as pq
import pytest
import torch

from gradfit.checkpoint import Checkpoint, data_fingerprint
from gradfit.errors import DataError, ModelFileError, ValidationError
from gradfit.persistence import load_model
from gradfit.solvers.collective import LOCAL, Local, guarded, merge_r_factors, merge_stats
from gradfit.solvers.config import SolverConfig
from gradfit.solvers.stats import SufficientStats
from gradfit.solvers.tsqr import merge_r
from gradfit.streaming import fit_stream

WORKER = Path(__file__).parent / "helpers" / "dist_worker.py"
TIMEOUT = 120  # seconds for a whole group; a hung collective would otherwise stall CI
N = 6000


def _table(seed: int = 0, n: int = N) -> pa.Table:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)) * [1.0, 3.0, 0.5] + [50.0, -2.0, 7.0]
    X[:, 2] += 0.6 * X[:, 0]  # correlated features
    W = np.array([[1.5, -2.0, 0.7], [0.3, 0.0, -1.1]])
    Y = X @ W.T + [4.0, -3.0] + rng.normal(size=(n, 2)) * 0.2
    cols = {f"x{i}": X[:, i] for i in range(3)}
    cols.update(y1=Y[:, 0], y2=Y[:, 1])
    return pa.table(cols)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("dist")
    table = _table()
    pq.write_table(table, root / "data.parquet", row_group_size=700)  # 9 row groups
    directory = root / "parts"
    directory.mkdir()
    # Five files of unequal sizes: shards of different lengths on every group size.
    cuts = [0, 500, 1800, 2600, 4700, N]
    for i, (a, b) in enumerate(itertools.pairwise(cuts)):
        pv.write_csv(table.slice(a, b - a), directory / f"part{i}.csv")
    pv.write_csv(table, root / "data.csv")
    return {"parquet": root / "data.parquet", "dir": directory, "csv": root / "data.csv"}


def _env() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    env["OMP_NUM_THREADS"] = "1"
    # This checkout's code in every child, wherever it runs (torchrun's children run in
    # tmp_path, where a relative PYTHONPATH=src would fall back on the installed gradfit).
    src = str(Path(__file__).parents[1] / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return env


def _wait_all(procs: list[subprocess.Popen[bytes]], timeout: float) -> list[int]:
    """Wait for every process (bounded); kill the ones still running at the deadline."""
    deadline = time.monotonic() + timeout
    codes: list[int] = []
    try:
        for proc in procs:
            codes.append(proc.wait(timeout=max(0.1, deadline - time.monotonic())))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return codes


def _group(
    tmp_path: Path, world: int, source: Path, solver: str, alpha: float = 0.0
) -> tuple[list[int], Path]:
    out = tmp_path / f"out-{solver}-{world}"
    out.mkdir()
    store = tmp_path / f"store-{solver}-{world}"
    procs = []
    for r in range(world):
        with (out / f"rank{r}.log").open("wb") as log:  # the child keeps its own descriptor
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        str(WORKER),
                        str(store),
                        str(r),
                        str(world),
                        str(out),
                        str(source),
                        solver,
                        str(alpha),
                    ],
                    env=_env(),
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
            )
    return _wait_all(procs, TIMEOUT), out


def _single(source: Path, solver: str, alpha: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    config = SolverConfig(solver=solver, alpha=alpha, max_epochs=300, tol=1e-9)
    report = fit_stream(source, ["y1", "y2"], None, config, seed=3, batch_rows=700)
    return report.result.weight.numpy(), report.result.bias.numpy()


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


# ----------------------------------------------------------------------------- exact solvers


@pytest.mark.slow
@pytest.mark.parametrize(
    ("solver", "alpha", "world", "kind"),
    [
        ("gd", 0.0, 2, "dir"),
        ("gd", 0.0, 3, "parquet"),
        ("lstsq", 0.0, 2, "parquet"),
        ("lstsq", 0.0, 3, "dir"),
        ("lstsq", 0.5, 2, "dir"),  # ridge: the closed form with a penalty
        ("gd", 0.5, 3, "dir"),  # ridge by gradient descent
    ],
)
def test_a_group_equals_one_process(
    tmp_path: Path, files: dict[str, Path], solver: str, alpha: float, world: int, kind: str
) -> None:
    codes, out = _group(tmp_path, world, files[kind], solver, alpha)
    assert codes == [0] * world, [p.read_text()[-2000:] for p in out.glob("*.*")]
    w1, b1 = _single(files[kind], solver, alpha)
    results = [np.load(out / f"rank{r}.npz") for r in range(world)]
    for res in results:
        assert int(res["n"]) == N
        # Identical on every process, bit for bit: the sums are made in rank order everywhere.
        np.testing.assert_array_equal(res["weight"], results[0]["weight"])
        np.testing.assert_array_equal(res["bias"], results[0]["bias"])
    assert _rel(results[0]["weight"], w1) <= 1e-10
    assert _rel(results[0]["bias"], b1) <= 1e-10


@pytest.mark.slow
def test_early_stopping_is_decided_together(tmp_path: Path, files: dict[str, Path]) -> None:
    """Each row is held out or not by a hash of its file and row, whatever process reads it:
    the group holds out the rows one process holds out, merges their statistics, and scores,
    stops and keeps the best epoch as one process does."""
    codes, out = _group(tmp_path, 2, files["dir"], "gd+early")
    assert codes == [0, 0], [p.read_text()[-2000:] for p in out.glob("*.*")]
    config = SolverConfig(
        solver="gd", max_epochs=300, tol=1e-9, early_stopping=True, validation_fraction=0.2
    )
    one = fit_stream(files["dir"], ["y1", "y2"], None, config, seed=3, batch_rows=700)
    r0, r1 = np.load(out / "rank0.npz"), np.load(out / "rank1.npz")
    np.testing.assert_array_equal(r0["weight"], r1["weight"])
    np.testing.assert_array_equal(r0["scores"], r1["scores"])
    assert int(r0["n"]) == one.n_samples < N  # the same rows held out
    assert _rel(r0["weight"], one.result.weight.numpy()) <= 1e-10
    scores = np.array(one.result.validation_scores)
    assert r0["scores"].shape == scores.shape
    np.testing.assert_allclose(r0["scores"], scores, rtol=1e-10)


@pytest.mark.slow
def test_robust_errors_from_a_group_equal_one_process(
    tmp_path: Path, files: dict[str, Path]
) -> None:
    """HC1 needs each row's residual: every process passes over its shard again and the
    sandwich sums are added over the group."""
    codes, out = _group(tmp_path, 3, files["dir"], "lstsq+hc1")
    assert codes == [0, 0, 0], [p.read_text()[-2000:] for p in out.glob("*.*")]
    config = SolverConfig(solver="lstsq", max_epochs=300, tol=1e-9)
    one = fit_stream(files["dir"], ["y1", "y2"], None, config, seed=3, inference="HC1")
    ranks = [np.load(out / f"rank{r}.npz") for r in range(3)]
    for res in ranks:
        np.testing.assert_array_equal(res["se"], ranks[0]["se"])
    assert one.inference is not None and one.inference.cov_type == "HC1"
    assert _rel(ranks[0]["se"], one.inference.weight_se.numpy()) <= 1e-10


@pytest.mark.slow
def test_sgd_over_a_group_reaches_the_same_optimum(tmp_path: Path, files: dict[str, Path]) -> None:
    codes, out = _group(tmp_path, 2, files["dir"], "sgd")
    assert codes == [0, 0], [p.read_text() for p in out.glob("*.err")]
    r0, r1 = np.load(out / "rank0.npz"), np.load(out / "rank1.npz")
    np.testing.assert_array_equal(r0["weight"], r1["weight"])  # synchronous steps
    # Its small batches are warned, from the width the fit has (3 features: 100,000 rows).
    log = (out / "rank0.log").read_text()
    assert "rows of 3 features per step" in log and "--batch-size 200704 or more" in log, log
    w_opt, _ = _single(files["dir"], "lstsq")
    # sgd stops on a plateau of its noisy loss: within 1% of the optimum's coefficients here
    # (the single-process sgd lands as far: it is checked alongside).
    w_one, _ = _single(files["dir"], "sgd")
    assert _rel(r0["weight"], w_opt) < 1e-2
    assert _rel(w_one, w_opt) < 1e-2


@pytest.mark.slow
def test_a_bad_shard_ends_every_process_with_its_message(
    tmp_path: Path, files: dict[str, Path]
) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in files["dir"].iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    # part1.csv is rank 1's (every 2nd file from rank 1); a bad cell deep inside it.
    lines = (bad / "part1.csv").read_text().splitlines()
    cells = lines[1001].split(",")
    cells[1] = "oops"
    lines[1001] = ",".join(cells)
    (bad / "part1.csv").write_text("\n".join(lines) + "\n")
    start = time.monotonic()
    codes, out = _group(tmp_path, 2, bad, "gd")
    assert time.monotonic() - start < 60
    assert codes == [2, 2]
    messages = [(out / f"rank{r}.err").read_text() for r in range(2)]
    assert messages[0] == messages[1]
    assert "part1.csv" in messages[0] and "row 1001" in messages[0] and "x1" in messages[0]
    assert "\n" not in messages[0]


# ----------------------------------------------------------------------------- torchrun, CLI


def _torchrun(tmp_path: Path, nproc: int, *args: object) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        str(nproc),
        "-m",
        "gradfit",
        *map(str, args),
    ]
    return subprocess.run(
        command, env=_env(), capture_output=True, text=True, timeout=TIMEOUT, cwd=tmp_path
    )


@pytest.mark.slow
def test_torchrun_fit_is_one_program(tmp_path: Path, files: dict[str, Path]) -> None:
    model = tmp_path / "model.safetensors"
    run = _torchrun(
        tmp_path, 2, "fit", files["parquet"], "--target", "y1,y2", "--solver", "lstsq",
        "--out", model, "--batch-rows", 700,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.count("model written to") == 1  # rank 0 reports, once
    w1, _ = _single(files["parquet"], "lstsq")
    saved = load_model(model)
    assert _rel(saved.weight.numpy(), w1) <= 1e-10
    assert not list(tmp_path.glob("*.tmp*"))


@pytest.mark.slow
def test_torchrun_bad_file_exit_2_one_message_nothing_written(
    tmp_path: Path, files: dict[str, Path]
) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in files["dir"].iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    (bad / "part3.csv").write_bytes((bad / "part3.csv").read_bytes()[:-1] + b"1,2\n")
    model = tmp_path / "model.safetensors"
    run = _torchrun(tmp_path, 2, "fit", bad, "--target", "y1,y2", "--solver", "sgd", "--out", model)
    assert run.returncode != 0
    errors = [line for line in run.stderr.splitlines() if line.startswith("gradfit: error:")]
    assert len(errors) == 1 and "part3.csv" in errors[0], run.stderr[-2000:]
    # torchrun prints its own report (a ChildFailedError traceback) when a process exits with a
    # non-zero code; gradfit's processes print no traceback of their own.
    assert "gradfit/" not in run.stderr and "exitcode  : 2" in run.stderr
    assert not model.exists()
    assert not list(tmp_path.glob("model*"))


# ----------------------------------------------------------------------------- checkpoints


def _fit_cli(tmp_path: Path, source: Path, out: Path, *extra: object) -> subprocess.Popen[str]:
    """The CLI in a process of its own; its output goes to files (read with _output)."""
    command = [
        sys.executable, "-m", "gradfit", "fit", str(source), "--target", "y1,y2",
        "--solver", "sgd", "--momentum", "0.9", "--batch-size", "32", "--epochs", "25",
        "--tol", "none", "--out", str(out), "--quiet", "--seed", "11", *map(str, extra),
    ]  # fmt: skip
    with (tmp_path / "stdout.log").open("w") as so, (tmp_path / "stderr.log").open("w") as se:
        return subprocess.Popen(command, env=_env(), stdout=so, stderr=se, text=True)


def _stderr(tmp_path: Path) -> str:
    return (tmp_path / "stderr.log").read_text()


@pytest.mark.slow
def test_kill_9_then_resume_is_bitwise_the_uninterrupted_fit(
    tmp_path: Path, files: dict[str, Path]
) -> None:
    source = files["parquet"]
    reference = tmp_path / "reference.safetensors"
    ref = _fit_cli(tmp_path, source, reference, "--stream")
    assert _wait_all([ref], TIMEOUT) == [0], _stderr(tmp_path)

    ckpt = tmp_path / "fit.ckpt"
    model = tmp_path / "model.safetensors"
    rng = random.Random()
    for _ in range(2):  # killed twice, at random moments after a checkpoint exists
        proc = _fit_cli(tmp_path, source, model, "--checkpoint", ckpt, "--resume")
        deadline = time.monotonic() + TIMEOUT
        while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=TIMEOUT)
    assert not model.exists() or load_model(model) is not None
    final = _fit_cli(tmp_path, source, model, "--checkpoint", ckpt, "--resume")
    assert _wait_all([final], TIMEOUT) == [0]
    a, b = load_model(reference), load_model(model)
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
    assert a.loss_history == b.loss_history
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


@pytest.mark.slow
def test_resume_refuses_other_settings_other_data_and_bad_files(
    tmp_path: Path, files: dict[str, Path]
) -> None:
    ckpt = tmp_path / "fit.ckpt"
    model = tmp_path / "m.safetensors"
    first = _fit_cli(tmp_path, files["parquet"], model, "--checkpoint", ckpt)
    assert _wait_all([first], TIMEOUT) == [0]

    def run(source: Path, *extra: object) -> tuple[int, str]:
        proc = _fit_cli(tmp_path, source, tmp_path / "other.safetensors", *extra)
        code = _wait_all([proc], TIMEOUT)[0]
        return code, _stderr(tmp_path)

    code, err = run(files["parquet"], "--checkpoint", ckpt, "--resume", "--lr", "0.001")
    assert code == 2 and "other settings" in err and "learning_rate" in err
    assert err.count("\n") == 1
    other = tmp_path / "other.parquet"
    pq.write_table(_table(seed=1), other)  # the same columns and rows, other values
    code, err = run(other, "--checkpoint", ckpt, "--resume")
    assert code == 2 and "other data" in err and "statistics" in err
    truncated = tmp_path / "cut.ckpt"
    truncated.write_bytes(ckpt.read_bytes()[:-10])
    code, err = run(files["parquet"], "--checkpoint", truncated, "--resume")
    assert code == 2 and "truncated" in err and "Traceback" not in err
    code, err = run(files["parquet"], "--checkpoint", model, "--resume")  # a model file
    assert code == 2 and "not a gradfit checkpoint" in err
    pickle = tmp_path / "pickle.ckpt"
    torch.save({"a": 1}, pickle)
    code, err = run(files["parquet"], "--checkpoint", pickle, "--resume")
    assert code == 2 and "never unpickles" in err
    assert not (tmp_path / "other.safetensors").exists()


@pytest.mark.slow
def test_centred_data_checkpointed_by_two_processes_resume_on_one(tmp_path: Path) -> None:
    """Columns centred before they were saved (means of 1e-17): the checkpoint of a fit by 2
    processes was refused on 1 as "written for other data" (the statistics' digest kept the
    rounding noise of the means, which the merge order changes)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1200, 2))
    X -= X.mean(0)
    y = X @ [0.7, 0.2] + 0.05 * rng.normal(size=1200)
    data = tmp_path / "data"
    data.mkdir()
    for i, (a, b) in enumerate(itertools.pairwise([0, 300, 700, 1200])):
        pv.write_csv(pa.table({"a": X[a:b, 0], "b": X[a:b, 1], "y": y[a:b]}), data / f"p{i}.csv")
    ckpt = tmp_path / "fit.ckpt"
    args = ("fit", data, "--target", "y", "--solver", "gd", "--epochs", "20")
    run = _torchrun(tmp_path, 2, *args, "--checkpoint", ckpt, "--out", tmp_path / "two.st")
    assert run.returncode == 0, run.stderr[-2000:]
    one = subprocess.run(
        [sys.executable, "-m", "gradfit", *map(str, args), "--checkpoint", str(ckpt), "--resume",
         "--out", str(tmp_path / "one.st")],
        env=_env(), capture_output=True, text=True, timeout=TIMEOUT, cwd=tmp_path,
    )  # fmt: skip
    assert one.returncode == 0, one.stderr
    assert f"resumed from {ckpt}" in one.stderr
    a, b = load_model(tmp_path / "two.st"), load_model(tmp_path / "one.st")
    assert _rel(a.weight.numpy(), b.weight.numpy()) <= 1e-12


def test_resume_without_a_checkpoint_starts_afresh_and_says_so(
    tmp_path: Path, files: dict[str, Path]
) -> None:
    config = SolverConfig(solver="gd", max_epochs=50, tol=None)
    notes: list[str] = []
    ckpt = tmp_path / "new.ckpt"
    first = fit_stream(
        files["parquet"], ["y1", "y2"], None, config, checkpoint=ckpt, resume=True, notes=notes
    )
    assert notes == [f"no checkpoint at {ckpt}; starting afresh"]
    again_notes: list[str] = []
    again = fit_stream(
        files["parquet"], ["y1", "y2"], None, config, checkpoint=ckpt, resume=True,
        notes=again_notes,
    )  # fmt: skip
    assert again_notes == [f"resumed from {ckpt} at epoch 50 (that fit had finished)"]
    assert torch.equal(first.result.weight, again.result.weight)
    with pytest.raises(ValidationError, match="no epochs to checkpoint"):
        fit_stream(files["parquet"], ["y1"], None, SolverConfig(solver="lstsq"), checkpoint=ckpt)


# ----------------------------------------------------------------------------- pieces


def test_local_group_is_the_identity() -> None:
    t = torch.arange(3.0)
    assert LOCAL.sum(t) is t and LOCAL.gather(t)[0] is t
    assert LOCAL.broadcast_bytes(b"abc") == b"abc"
    with pytest.raises(DataError, match="bad"):
        guarded(LOCAL, lambda: (_ for _ in ()).throw(DataError("bad")))


class _Gathered(Local):
    """A stand-in group whose gather returns given per-rank tensors (merge order checks)."""

    def __init__(self, parts: list[torch.Tensor]) -> None:
        self.parts = parts
        self.world = len(parts)

    def gather(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        return self.parts


def test_merged_statistics_and_r_factors_of_shards_equal_the_whole() -> None:
    rng = np.random.default_rng(5)
    Z = torch.from_numpy(rng.normal(size=(900, 4)) + 1e4)
    Y = torch.from_numpy(rng.normal(size=(900, 2)) - 3e3)
    whole = SufficientStats.compute(Z, Y)
    shards = [(Z[:200], Y[:200]), (Z[200:200], Y[200:200]), (Z[200:], Y[200:])]  # one empty
    from gradfit.solvers.collective import _flatten

    parts = [_flatten(SufficientStats.compute(z, y) if len(z) else None, 4, 2) for z, y in shards]
    merged = merge_stats(_Gathered(parts), None, 4, 2)
    assert merged.n == 900
    assert float((merged.zbar - whole.zbar).abs().max() / whole.zbar.abs().max()) < 1e-15
    # Moments relative to their natural scale (the variances: ~1 here), since the cross-moments
    # of independent columns are near zero: 1e-12 is ~5000 ulps of a variance.
    scale = float(torch.sqrt(whole.Szz.diagonal().max() * whole.syy.max()))
    assert float((merged.Szz - whole.Szz).abs().max()) < 1e-12 * float(whole.Szz.max())
    assert float((merged.Szy - whole.Szy).abs().max()) < 1e-12 * scale
    A = torch.cat([Z - Z.mean(0), Y - Y.mean(0)], 1)
    blocks = []
    for z, y in shards:
        block = torch.zeros(7, 6, dtype=torch.float64)
        if len(z):
            block[0, 0] = 1.0
            block[1:] = merge_r(None, torch.cat([z - Z.mean(0), y - Y.mean(0)], 1))
        blocks.append(block)
    R = merge_r_factors(_Gathered(blocks), None, 6, merge_r)
    assert R is not None
    # R is unique up to the signs of its rows: compare RᵀR with AᵀA.
    assert float((R.T @ R - A.T @ A).abs().max() / (A.T @ A).abs().max()) < 1e-12


def test_checkpoint_fingerprint_ignores_merge_order_but_not_the_data() -> None:
    rng = np.random.default_rng(1)
    Z, Y = torch.from_numpy(rng.normal(size=(500, 3))), torch.from_numpy(rng.normal(size=(500, 1)))
    one = SufficientStats.compute(Z, Y)
    two = SufficientStats.compute(Z[:123], Y[:123]).merge(SufficientStats.compute(Z[123:], Y[123:]))
    names = (("a", "b", "c"), ("y",))
    assert data_fingerprint(one, *names) == data_fingerprint(two, *names)
    Z2 = Z.clone()
    Z2[17, 1] += 1e-3
    assert data_fingerprint(SufficientStats.compute(Z2, Y), *names) != data_fingerprint(one, *names)


def test_checkpoint_fingerprint_of_centred_columns_ignores_merge_order() -> None:
    """Centred columns (a mean of 0 but for rounding) and orthogonal ones (a covariance of 0):
    rounded to 10 significant digits of themselves, 3e-18 and -1e-17 differed, and a fit
    resumed on another number of processes was refused as "other data"."""
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(1200, 3))
    Z -= Z.mean(0)
    Z[:, 2] = np.where(np.arange(1200) % 2 == 0, 0.1, -0.1)  # orthogonal-ish, mean 0
    Y = Z @ [[0.7], [0.2], [1.0]] + 0.05 * rng.normal(size=(1200, 1))
    Y -= Y.mean(0)
    Zt, Yt = torch.from_numpy(Z), torch.from_numpy(Y)
    names = (("a", "b", "c"), ("y",))
    cuts = [0, 300, 700, 1200]
    parts = [SufficientStats.compute(Zt[a:b], Yt[a:b]) for a, b in itertools.pairwise(cuts)]
    orders = [(0, 1, 2), (0, 2, 1), (1, 0, 2), (2, 1, 0)]
    prints = set()
    for order in orders:
        total = parts[order[0]]
        for i in order[1:]:
            total = total.merge(parts[i])
        prints.add(json.dumps(data_fingerprint(total, *names)))
    prints.add(json.dumps(data_fingerprint(SufficientStats.compute(Zt, Yt), *names)))
    assert len(prints) == 1
    Z2 = Zt.clone()
    Z2[17, 2] += 1e-6  # still sensitive to the data
    other = data_fingerprint(SufficientStats.compute(Z2, Yt), *names)
    assert json.dumps(other) not in prints


def test_checkpoint_with_the_former_statistics_digest_still_resumes(
    tmp_path: Path, files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from safetensors.torch import load as safetensors_load

    import gradfit.streaming
    from gradfit.tensorfile import DOCUMENT_KEY, parse_tensor_file, seal

    legacy: list[str] = []
    former = gradfit.streaming.legacy_statistics_digest

    def recorded(stats: SufficientStats) -> str:
        legacy.append(former(stats))
        return legacy[-1]

    monkeypatch.setattr(gradfit.streaming, "legacy_statistics_digest", recorded)
    config = SolverConfig(solver="gd", max_epochs=30, tol=None)
    ckpt = tmp_path / "fit.ckpt"
    first = fit_stream(files["parquet"], ["y1", "y2"], None, config, checkpoint=ckpt)
    blob = ckpt.read_bytes()
    document = json.loads(parse_tensor_file(blob, str(ckpt)).metadata[DOCUMENT_KEY])
    assert document["data"]["statistics"].startswith("v2:")
    # As a gradfit of before the scaled digest wrote it: the digest of every value's digits.
    document["data"]["statistics"] = legacy[-1]
    ckpt.write_bytes(seal(safetensors_load(blob), json.dumps(document)))
    notes: list[str] = []
    again = fit_stream(
        files["parquet"], ["y1", "y2"], None, config, checkpoint=ckpt, resume=True, notes=notes
    )
    assert notes == [f"resumed from {ckpt} at epoch 30 (that fit had finished)"]
    assert torch.equal(first.result.weight, again.result.weight)
    document["data"]["statistics"] = "0" * 64  # a former digest of other data: refused
    ckpt.write_bytes(seal(safetensors_load(blob), json.dumps(document)))
    with pytest.raises(ValidationError, match="other data"):
        fit_stream(files["parquet"], ["y1", "y2"], None, config, checkpoint=ckpt, resume=True)


def test_resume_names_the_weights_column_that_differs(tmp_path: Path) -> None:
    """A checkpoint of a weighted fit resumed without --weights was refused naming only a
    digest of statistics; it names the weights now. One written before they were named (no
    "weights" in its data) still resumes."""
    from safetensors.torch import load as safetensors_load

    from gradfit.tensorfile import DOCUMENT_KEY, parse_tensor_file, seal

    rng = np.random.default_rng(3)
    x = rng.normal(size=300)
    table = pa.table({"x": x, "w": rng.uniform(0.5, 2.0, 300), "y": 2 * x + rng.normal(size=300)})
    data = tmp_path / "d.parquet"
    pq.write_table(table, data)
    config = SolverConfig(solver="gd", max_epochs=20, tol=None)
    ckpt = tmp_path / "fit.ckpt"
    first = fit_stream(data, ["y"], ["x"], config, checkpoint=ckpt, weights="w")
    with pytest.raises(ValidationError, match=r"other data \(weights: w -> null; statistics"):
        fit_stream(data, ["y"], ["x"], config, checkpoint=ckpt, resume=True)
    blob = ckpt.read_bytes()
    document = json.loads(parse_tensor_file(blob, str(ckpt)).metadata[DOCUMENT_KEY])
    del document["data"]["weights"]  # as a gradfit of before wrote it
    ckpt.write_bytes(seal(safetensors_load(blob), json.dumps(document)))
    notes: list[str] = []
    again = fit_stream(
        data, ["y"], ["x"], config, checkpoint=ckpt, resume=True, weights="w", notes=notes
    )
    assert notes == [f"resumed from {ckpt} at epoch 20 (that fit had finished)"]
    assert torch.equal(first.result.weight, again.result.weight)
    with pytest.raises(ValidationError, match=r"other data \(statistics"):  # told by the digest
        fit_stream(data, ["y"], ["x"], config, checkpoint=ckpt, resume=True)


def test_checkpoint_rejects_a_foreign_file(tmp_path: Path) -> None:
    path = tmp_path / "x.ckpt"
    path.write_text("hello, this is text\n")
    keeper = Checkpoint(path, {}, {}, resume_from_file=True)
    stats = SufficientStats.compute(torch.ones(3, 1).cumsum(0), torch.ones(3, 1))
    from gradfit.solvers.engine import init_state_from_stats

    state = init_state_from_stats(stats, SolverConfig())
    with pytest.raises(ModelFileError, match="not a gradfit checkpoint"):
        keeper.resume(state)


def test_resume_removes_what_a_killed_writer_left(tmp_path: Path) -> None:
    """kill -9 in the middle of an atomic write leaves its temporary file; the run that
    resumes removes those of its checkpoint and model (and nothing else)."""
    from gradfit.atomic import remove_stale_temporaries

    ckpt = tmp_path / "fit.ckpt"
    stale = [tmp_path / ".fit.ckpt.0123456789ab.tmp", tmp_path / ".fit.ckpt.ba9876543210.tmp"]
    kept = [
        tmp_path / ".fit.ckpt.xyz.tmp",  # not atomic_write's name
        tmp_path / ".other.ckpt.0123456789ab.tmp",  # another file's
        tmp_path / "fit.ckpt.0123456789ab.tmp",  # not hidden
    ]
    for path in (*stale, *kept):
        path.write_bytes(b"partial")
    assert remove_stale_temporaries(ckpt) == 2
    assert not any(p.exists() for p in stale) and all(p.exists() for p in kept)
    stale[0].write_bytes(b"partial")
    Checkpoint(ckpt, {"rows": 1}, {"a": 1}, resume_from_file=True)
    assert not stale[0].exists()
    stale[0].write_bytes(b"partial")
    Checkpoint(ckpt, {"rows": 1}, {"a": 1})  # a fresh start leaves other runs' files alone
    assert stale[0].exists()


@pytest.mark.slow
def test_children_import_the_gradfit_under_test(tmp_path: Path) -> None:
    """From any working directory (torchrun's children run in tmp_path), a child process
    imports the gradfit this session tests (conftest's absolute PYTHONPATH), not another
    installed one."""
    import gradfit

    child = subprocess.run(
        [sys.executable, "-c", "import gradfit; print(gradfit.__file__)"],
        env={k: v for k, v in os.environ.items()}, capture_output=True, text=True,
        timeout=TIMEOUT, cwd=tmp_path,
    )  # fmt: skip
    assert child.returncode == 0, child.stderr
    assert Path(child.stdout.strip()).resolve() == Path(gradfit.__file__).resolve()
