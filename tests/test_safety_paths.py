"""Outputs never overwrite inputs, signals end a command cleanly, and what a killed writer
left goes at the next write.

* Every output (``fit --out/--checkpoint/--plot``, ``predict --out``, standard output appended
  to a file) that is, by any spelling (a symbolic link, a hard link, ``dir/../x``, a member of a
  directory or glob), an input or another output is refused before any work: exit 2, one line,
  and the input's bytes unchanged (hashed before and after).
* ``--checkpoint`` never replaces a file that is not a gradfit checkpoint.
* SIGTERM is handled as Ctrl-C: clean-up, one line, exit 143; Ctrl-C even during the first
  imports gives one line and exit 130; repeated Ctrl-C on a streamed ``predict --out`` never
  aborts (SIGABRT) and never leaves a temporary file.
* ``kill -9`` leaves ``.NAME.PID-HEX.tmp``; the next write of NAME removes it (its writer is
  gone) but never a live writer's.
* Standard output on a full disk is one line and exit 2.
"""

from __future__ import annotations

import errno
import hashlib
import inspect
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Generator, Iterator
from pathlib import Path

import numpy as np
import pytest

from gradfit.atomic import atomic_write, remove_stale_temporaries
from gradfit.checkpoint import looks_like_checkpoint
from gradfit.cli import main

LINUX = sys.platform.startswith("linux")


# ----------------------------------------------------------------------------- helpers


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    """``gradfit ARGV`` in this process: exit code, stdout, stderr."""
    capsys.readouterr()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        assert isinstance(exc.code, int)
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def one_error_line(err: str, *fragments: str) -> None:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("gradfit: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, err)


def temporaries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def write_data(path: Path, rows: int = 40, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 2))
    y = x @ np.array([1.5, -2.0]) + 0.25 + 0.01 * rng.normal(size=rows)
    lines = ["a,b,y", *(f"{p:.6f},{q:.6f},{r:.6f}" for (p, q), r in zip(x, y, strict=True))]
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory (also the working directory) with data.csv, a directory of two parts, links
    to data.csv, and a model fitted on it."""
    monkeypatch.chdir(tmp_path)
    write_data(tmp_path / "data.csv")
    (tmp_path / "parts").mkdir()
    write_data(tmp_path / "parts" / "p1.csv", seed=1)
    write_data(tmp_path / "parts" / "p2.csv", seed=2)
    (tmp_path / "link.csv").symlink_to("data.csv")
    (tmp_path / "link.png").symlink_to("data.csv")
    os.link(tmp_path / "data.csv", tmp_path / "hard.csv")
    assert main(["fit", "data.csv", "--target", "y", "--solver", "lstsq", "--out", "m.st"]) == 0
    return tmp_path


def inputs_of(work: Path) -> dict[Path, str]:
    files = [work / "data.csv", work / "parts/p1.csv", work / "parts/p2.csv", work / "m.st"]
    return {f: digest(f) for f in files}


FIT = ("fit", "data.csv", "--target", "y", "--solver", "lstsq")

# (argv, fragments of the one error line)
REFUSED = [
    ((*FIT, "--out", "data.csv"), ["--out data.csv: is the data file data.csv"]),
    ((*FIT, "--out", "link.csv"), ["--out link.csv: is the data file data.csv"]),
    ((*FIT, "--out", "hard.csv"), ["--out hard.csv: is the data file data.csv"]),
    ((*FIT, "--out", "parts/../data.csv"), ["is the data file data.csv"]),
    ((*FIT, "--out", "m2.st", "--checkpoint", "link.csv"), ["--checkpoint link.csv", "data"]),
    ((*FIT, "--out", "m2.st", "--plot", "link.png"), ["--plot link.png: is the data file"]),
    (
        ("fit", "parts", "--target", "y", "--solver", "gd", "--out", "parts/p2.csv"),
        ["parts/p2.csv", "one of the data files of parts"],
    ),
    (
        ("fit", "parts/*.csv", "--target", "y", "--out", "./parts/../parts/p1.csv"),
        ["one of the data files of parts/*.csv"],
    ),
    ((*FIT, "--out", "x.st", "--checkpoint", "x.st"), ["--checkpoint x.st", "same file as --out"]),
    ((*FIT, "--out", "x.png", "--plot", "./x.png"), ["--plot ./x.png", "same file as --out"]),
    (
        (*FIT, "--out", "x.st", "--checkpoint", "y.png", "--plot", "y.png"),
        ["--plot y.png", "same file as --checkpoint"],
    ),
    (("predict", "m.st", "data.csv", "--out", "data.csv"), ["--out data.csv: is the data file"]),
    (
        ("predict", "m.st", "data.csv", "--out", "link.csv", "--stream"),
        ["--out link.csv: is the data file data.csv"],
    ),
    (
        ("predict", "m.st", "parts", "--out", "parts/p1.csv"),
        ["one of the data files of parts"],
    ),
    (("predict", "m.st", "data.csv", "--out", "m.st"), ["--out m.st: is the model file m.st"]),
    (("predict", "m.st", "data.csv", "--out", "m.st", "--stream"), ["is the model file"]),
    (("predict", "m.st", "data.csv", "--out", ""), ["--out: an empty path; give a file name"]),
    ((*FIT, "--out", ""), ["--out: an empty path; give a file name"]),
    ((*FIT, "--out", "x.st", "--plot", ""), ["--plot: an empty path; give a file name"]),
]


@pytest.mark.parametrize(("argv", "fragments"), REFUSED, ids=[" ".join(a) for a, _ in REFUSED])
def test_an_output_that_is_an_input_or_another_output_is_refused_before_any_work(
    work: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], fragments: list[str]
) -> None:
    before = inputs_of(work)
    listing = sorted(p.name for p in work.rglob("*"))
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == ""
    one_error_line(err, *fragments)
    assert inputs_of(work) == before
    assert sorted(p.name for p in work.rglob("*")) == listing  # nothing written, no temporary


@pytest.mark.slow
def test_standard_output_appended_to_the_data_is_refused(work: Path) -> None:
    before = inputs_of(work)
    for argv in (("predict", "m.st", "data.csv"), ("evaluate", "m.st", "data.csv")):
        with (work / "data.csv").open("ab") as stdout:
            proc = subprocess.run(
                [sys.executable, "-m", "gradfit", *argv],
                stdout=stdout,
                stderr=subprocess.PIPE,
                text=True,
                timeout=120,
            )
        assert proc.returncode == 2
        one_error_line(proc.stderr, "standard output is the data file data.csv")
    assert inputs_of(work) == before


def test_outputs_that_differ_from_every_input_are_written(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "predict", "m.st", "parts", "--out", "parts/new.csv")
    assert code == 0, err
    assert (work / "parts/new.csv").read_text().startswith("y\n")


# ----------------------------------------------------------------------------- --checkpoint


CKPT_FIT = ("fit", "data.csv", "--target", "y", "--solver", "gd", "--epochs", "3", "--quiet")


def test_checkpoint_never_replaces_a_file_that_is_not_a_checkpoint(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (work / "notes.txt").write_text("my notes\n")
    for name in ("notes.txt", "m.st"):  # any file, and a model (a safetensors file, not a ckpt)
        before = digest(work / name)
        code, _, err = run_cli(capsys, *CKPT_FIT, "--out", "x.st", "--checkpoint", name)
        assert code == 2
        one_error_line(
            err, f"--checkpoint {name}: the file there is not a gradfit checkpoint", "remove"
        )
        assert digest(work / name) == before and not (work / "x.st").exists()
    assert not temporaries(work)


def test_checkpoint_replaces_a_checkpoint_or_an_empty_file(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (work / "run.ckpt").write_bytes(b"")  # e.g. made by mktemp: nothing to lose
    assert not looks_like_checkpoint(work / "run.ckpt")
    for _ in range(2):  # the second run replaces the first run's checkpoint
        code, _, err = run_cli(capsys, *CKPT_FIT, "--out", "x.st", "--checkpoint", "run.ckpt")
        assert code == 0, err
        assert looks_like_checkpoint(work / "run.ckpt")
    assert not looks_like_checkpoint(work / "x.st")  # a model file
    assert not looks_like_checkpoint(work / "data.csv")
    assert not looks_like_checkpoint(work / "missing")
    assert not looks_like_checkpoint(work)  # a directory


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_checkpoint_at_a_named_pipe_is_refused_without_blocking(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    os.mkfifo(work / "pipe")
    assert not looks_like_checkpoint(work / "pipe")  # returns: it never opens the pipe
    code, _, err = run_cli(capsys, *CKPT_FIT, "--out", "x.st", "--checkpoint", "pipe")
    assert code == 2
    one_error_line(err, "--checkpoint pipe: is a named pipe (FIFO), not a regular file")


# ----------------------------------------------------------------------------- temporaries


def dead_pid() -> int:
    """The id of a process that has just exited."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.slow
def test_the_next_write_removes_a_killed_writers_temporaries_but_not_a_live_ones(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out.csv"
    stale = [
        tmp_path / f".out.csv.{dead_pid()}-0123456789ab.tmp",  # its writer is gone
        tmp_path / ".out.csv.ba9876543210.tmp",  # an earlier version's name: no writer named
    ]
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as live:
        kept = [
            tmp_path / f".out.csv.{live.pid}-00000000000a.tmp",  # a live writer's
            tmp_path / f".out.csv.{os.getpid()}-00000000000b.tmp",  # this process's
            tmp_path / f".other.csv.{dead_pid()}-0123456789ab.tmp",  # another file's
            tmp_path / f".out.csv.{dead_pid()}-xyz.tmp",  # not atomic_write's name
        ]
        for path in (*stale, *kept):
            path.write_bytes(b"partial")
        atomic_write(out, lambda fh: fh.write(b"whole"))
        assert out.read_bytes() == b"whole"
        assert not any(p.exists() for p in stale)
        assert all(p.exists() for p in kept)
        live.kill()
    live.wait()
    assert remove_stale_temporaries(out) == 1  # the live writer's, now that it is gone
    assert not kept[0].exists()


def test_a_write_names_its_temporary_with_its_process_id(tmp_path: Path) -> None:
    seen: list[str] = []

    def write(fh: object) -> None:
        seen.extend(temporaries(tmp_path))

    atomic_write(tmp_path / "f.bin", write)
    assert len(seen) == 1 and seen[0].startswith(f".f.bin.{os.getpid()}-")


# ----------------------------------------------------------------------------- standard output


def test_standard_output_that_fails_is_one_line_and_exit_2(
    work: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    class Full:
        def write(self, text: str) -> int:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def flush(self) -> None:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(sys, "stdout", Full())
    code = main(["predict", "m.st", "data.csv"])
    assert code == 2
    assert capsys.readouterr().err == (
        "gradfit: error: cannot write to standard output (No space left on device)\n"
    )


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize(
    "argv",
    [
        ("predict", "m.st", "data.csv"),
        ("predict", "m.st", "data.csv", "--stream"),
        ("fit", "data.csv", "--target", "y", "--solver", "lstsq", "--out", "m2.st"),
    ],
    ids=["predict", "predict-stream", "fit"],
)
def test_standard_output_on_a_full_disk(work: Path, argv: tuple[str, ...]) -> None:
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "gradfit", *argv],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 2
    assert proc.stderr == (
        "gradfit: error: cannot write to standard output (No space left on device)\n"
    )


@pytest.mark.slow
def test_a_closed_pipe_on_standard_output_ends_quietly(tmp_path: Path) -> None:
    write_data(tmp_path / "big.csv", rows=20_000)
    assert (
        main(
            [
                "fit",
                str(tmp_path / "big.csv"),
                "--target",
                "y",
                "--solver",
                "lstsq",
                "--out",
                str(tmp_path / "m.st"),
            ]
        )
        == 0
    )
    with subprocess.Popen(
        [sys.executable, "-m", "gradfit", "predict", tmp_path / "m.st", tmp_path / "big.csv"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.read(2) == b"y\n"
        proc.stdout.close()  # the reader goes away after a few bytes (as `| head -1`)
        err = proc.stderr.read()
        assert proc.wait(timeout=120) == 0
    assert err == b""


# ----------------------------------------------------------------------------- disk full, --plot


def test_a_full_disk_with_plot_names_the_model_path_not_a_temporary(
    work: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("matplotlib")

    def full(descriptor: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    code, _, err = run_cli(capsys, *FIT, "--out", "new.st", "--plot", "new.png")
    assert code == 2
    one_error_line(err, "new.st: cannot write (No space left on device)")
    assert ".tmp" not in err
    assert not (work / "new.st").exists() and not (work / "new.png").exists()
    assert not temporaries(work)


# ----------------------------------------------------------------------------- signals


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A CSV of 300,000 rows (about 10 MB) and a model for it: a streamed predict of it in small
    batches takes a few seconds, time enough to be interrupted."""
    directory = tmp_path_factory.mktemp("large")
    rng = np.random.default_rng(0)
    block = rng.normal(size=(1000, 3))
    text = "".join(f"{a:.6f},{b:.6f},{a + 2 * b + c:.6f}\n" for a, b, c in block)
    with (directory / "big.csv").open("w") as fh:
        fh.write("a,b,y\n")
        fh.write(text * 300)
    code = main(
        [
            "fit",
            str(directory / "big.csv"),
            "--target",
            "y",
            "--solver",
            "lstsq",
            "--out",
            str(directory / "big.st"),
            "--quiet",
        ]
    )
    assert code == 0
    yield directory


def start_predict(directory: Path, out: Path) -> subprocess.Popen[bytes]:
    """A streamed ``predict --out`` of the large file, once its temporary file exists (the
    command is then at work, its clean-up armed)."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gradfit",
            "predict",
            directory / "big.st",
            directory / "big.csv",
            "--stream",
            "--batch-rows",
            "500",
            "--out",
            out,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while not any(name.startswith(f".{out.name}.") for name in os.listdir(out.parent)):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.005)
    return proc


@pytest.mark.slow
def test_sigterm_cleans_up_and_exits_143(large: Path, tmp_path: Path) -> None:
    before = digest(large / "big.csv")
    out = tmp_path / "pred.csv"
    proc = start_predict(large, out)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert (proc.returncode, err) == (143, b"gradfit: terminated\n")
    assert not out.exists() and not temporaries(tmp_path)
    assert digest(large / "big.csv") == before


@pytest.mark.slow
def test_kill_9_leaves_a_temporary_that_the_next_write_removes(
    large: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "pred.csv"
    proc = start_predict(large, out)
    proc.kill()
    proc.communicate(timeout=60)
    assert len(temporaries(tmp_path)) == 1 and not out.exists()
    (tmp_path / "small.csv").write_text("a,b,y\n1,2,5\n")
    small = tmp_path / "small.csv"
    code, _, err = run_cli(capsys, "predict", large / "big.st", small, "--out", out)
    assert code == 0, err
    assert not temporaries(tmp_path) and out.exists()


@pytest.mark.slow
def test_repeated_ctrl_c_on_a_streamed_predict_never_aborts(large: Path, tmp_path: Path) -> None:
    """Ctrl-C at different moments of the work: always one line and exit 130; never SIGABRT
    ("terminate called without an active exception") from a read-ahead thread still in native
    code, never a temporary file left."""
    out = tmp_path / "pred.csv"
    for delay in (0.0, 0.05, 0.15, 0.3):
        proc = start_predict(large, out)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        assert b"terminate called" not in err
        if proc.returncode == 0:  # finished before the signal (a very fast machine)
            out.unlink()
            continue
        assert (proc.returncode, err) == (130, b"gradfit: interrupted\n")
        assert not out.exists() and not temporaries(tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(not LINUX, reason="watches /proc/PID/maps for the import of torch")
@pytest.mark.parametrize(
    ("signum", "code", "line"),
    [
        (signal.SIGINT, 130, b"gradfit: interrupted\n"),
        (signal.SIGTERM, 143, b"gradfit: terminated\n"),
    ],
    ids=["SIGINT", "SIGTERM"],
)
def test_a_signal_during_the_first_imports_is_one_line(
    tmp_path: Path, signum: int, code: int, line: bytes
) -> None:
    """Sent while PyTorch is being imported (its library appears in the process's maps): one
    line and the signal's exit code, never a traceback. The command (a demo of a million
    epochs) runs for minutes after the imports, so a signal that lands a little later than
    meant (a loaded machine) still finds it running, and the outcome cannot depend on timing."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "gradfit", "demo", "--epochs", "1000000"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if "torch" in Path(f"/proc/{proc.pid}/maps").read_text():
                break
        except OSError:
            pass
        time.sleep(0.002)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert b"Traceback" not in err
    assert (proc.returncode, err) == (code, line)


# ----------------------------------------------------------------------------- read-ahead


def counted_source(log: list[str], n: int = 50) -> Generator[int, None, None]:
    try:
        for i in range(n):
            time.sleep(0.001)
            yield i
    finally:
        log.append(f"closed in {threading.current_thread().name}")


@pytest.mark.parametrize("started", [True, False], ids=["after-start", "before-start"])
def test_read_ahead_interrupted_while_its_thread_starts(
    monkeypatch: pytest.MonkeyPatch, started: bool
) -> None:
    """Ctrl-C landing inside ``Thread.start`` (its wait for the new thread): the items are
    closed once, by whichever thread owns them, never while running ("generator already
    executing"); the interrupt reaches the caller."""
    from gradfit.data.ahead import read_ahead

    real_start = threading.Thread.start

    def interrupted_start(self: threading.Thread) -> None:
        if started:
            real_start(self)
        raise KeyboardInterrupt

    monkeypatch.setattr(threading.Thread, "start", interrupted_start)
    log: list[str] = []
    source = counted_source(log)
    with pytest.raises(KeyboardInterrupt):
        next(read_ahead(source))
    deadline = time.monotonic() + 10
    while inspect.getgeneratorstate(source) != "GEN_CLOSED" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert inspect.getgeneratorstate(source) == "GEN_CLOSED"
    # Closed once, in the thread that ran it (a source never started has nothing to close).
    assert log in ([], ["closed in gradfit-read-ahead"] if started else [])


def test_read_ahead_stopped_early_waits_for_its_thread() -> None:
    from gradfit.data.ahead import read_ahead

    log: list[str] = []
    items = read_ahead(counted_source(log), depth=2)
    assert next(items) == 0
    before = {t.name for t in threading.enumerate()}
    assert "gradfit-read-ahead" in before
    items.close()
    assert log == ["closed in gradfit-read-ahead"]
    assert "gradfit-read-ahead" not in {t.name for t in threading.enumerate()}
