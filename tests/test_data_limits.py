"""Reading data within bounds, with gradfit's own messages (issue 17, data reading).

A named pipe or a device as the data never blocks or reads forever; a gzip file is measured by
what it inflates to; a bad cell in a streamed file is named from its chunk alone; a table too
wide for its d x d statistics is refused before it is parsed; the column-kind checks are linear
in the width; the streamed reader names rows as the whole-file reader does (wrong field
counts, quoted line breaks, cells longer than pyarrow's block); a column without a name and an
early-stopping hold-out that leaves nothing to train on are refused with the file named; a
constant target prints no NumPy warning.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import gradfit.data.stream as stream_module
import gradfit.stream_decision as stream_decision
from gradfit.cli import main
from gradfit.data import Table, column_names, left_out_columns, open_stream, read_table, select
from gradfit.errors import DataError, ValidationError
from gradfit.fitting import check_width, fit_data, statistics_bytes
from gradfit.solvers.config import SolverConfig
from gradfit.streaming import DEFAULT_MEMORY_LIMIT, fit_stream, memory_estimate, use_streaming

# ----------------------------------------------------------------------------- helpers


def write_rows(path: Path, n: int, *, header: str = "a,b,c,y", seed: int = 0) -> list[str]:
    """A CSV file of n data rows y = a + 2b - c + noise; returns its lines (header first)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)).round(4)
    y = X @ [1.0, 2.0, -1.0] + rng.normal(scale=0.1, size=n).round(4)
    lines = [header] + [f"{a},{b},{c},{t:.4f}" for (a, b, c), t in zip(X, y, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return lines


def cli(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str]:
    """``gradfit ARGV`` in this process: (exit code, stderr)."""
    capsys.readouterr()
    code = main([str(arg) for arg in argv])
    return code, capsys.readouterr().err


def one_error(code: int, err: str) -> str:
    assert code == 2, err
    assert err.startswith("gradfit: error: ") and err.count("\n") == 1, err
    return err.rstrip("\n").removeprefix("gradfit: error: ")


def subprocess_fit(tmp_path: Path, *argv: str | Path) -> subprocess.CompletedProcess[str]:
    """``gradfit fit ARGV --out model`` in a real process, which must answer within a minute
    (a named pipe opened for reading would block it for ever)."""
    return subprocess.run(
        [sys.executable, "-m", "gradfit", "fit", *map(str, argv), "--out", "m.safetensors"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )


# ----------------------------------------------------------------------------- 1. regular files


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
@pytest.mark.parametrize("mode", ["--no-stream", "--stream"])
def test_a_named_pipe_as_the_data_is_refused_without_blocking(tmp_path: Path, mode: str) -> None:
    pipe = tmp_path / "data.csv"
    os.mkfifo(pipe)
    done = subprocess_fit(tmp_path, pipe, "--target", "y", mode)
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        f"gradfit: error: {pipe}: is a named pipe (FIFO), not a regular file; gradfit reads "
        "data from regular files only: save the data to a file and give its path\n"
    )
    assert not (tmp_path / "m.safetensors").exists()


@pytest.mark.slow
@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_a_device_as_the_data_is_refused_without_reading_it(tmp_path: Path) -> None:
    done = subprocess_fit(tmp_path, "/dev/zero", "--target", "y")
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("gradfit: error: /dev/zero: is a character device, not a ")
    assert done.stderr.count("\n") == 1


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_named_pipe_in_a_directory_or_glob_is_named_not_skipped(tmp_path: Path) -> None:
    write_rows(tmp_path / "a.csv", 10)
    os.mkfifo(tmp_path / "b.csv")
    for source in (tmp_path, tmp_path / "*.csv"):
        with pytest.raises(DataError, match=r"b\.csv: is a named pipe \(FIFO\), not a regular"):
            open_stream(str(source))


# ----------------------------------------------------------------------------- 2. gzip


@pytest.fixture
def gzip_bomb(tmp_path: Path) -> Path:
    """A gzip file of about 30 KB holding 20 MB of CSV text."""
    path = tmp_path / "bomb.csv.gz"
    with gzip.open(path, "wb", compresslevel=9) as fh:
        fh.write(b"a,b,c,y\n1,2,3,7\n2,1,0,4\n")
        fh.write(b"1,2,3,6\n" * 2_500_000)
    assert path.stat().st_size < 100_000
    return path


def test_a_gzip_file_is_measured_by_what_it_inflates_to(gzip_bomb: Path) -> None:
    limit = 1 << 20
    # Its compressed size would pass the limit; its text does not, so it is streamed.
    assert gzip_bomb.stat().st_size * 16 < 2 * limit
    assert memory_estimate(gzip_bomb, limit) > limit
    assert use_streaming(str(gzip_bomb), SolverConfig(), memory_limit=limit)
    assert not use_streaming(str(gzip_bomb), SolverConfig(), memory_limit=200 << 20)
    # The measure stops soon after the limit, in small blocks: a few MB traced, not 20 MB.
    tracemalloc.start()
    try:
        inflated = stream_decision._inflated_size(gzip_bomb, limit // 4)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert limit // 4 < inflated <= limit // 4 + (1 << 20)
    assert peak < 4 << 20
    assert stream_decision._inflated_size(gzip_bomb, None) == 24 + 8 * 2_500_000


def test_a_gzip_file_over_the_limit_is_streamed_or_refused(
    gzip_bomb: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    model = tmp_path / "m.safetensors"
    args: list[str | Path] = ["fit", gzip_bomb, "--target", "y", "--memory-limit", "1M"]
    args += ["--out", model]
    code, err = cli(capsys, *args, "--quiet")
    assert code == 0, err
    assert model.exists()
    model.unlink()
    message = one_error(*cli(capsys, *args, "--solver", "scratch"))
    assert message.startswith(
        f"{gzip_bomb} needs more than the memory limit of 1 MiB in memory, but "
        "solver='scratch' trains on data in memory"
    )
    assert not model.exists()


# ----------------------------------------------------------------------------- 3. bad last cell


def test_a_bad_cell_in_a_streamed_file_is_named_from_its_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "d.csv"
    lines = write_rows(path, 5_000)
    lines[-1] = lines[-1].replace(",", ",abc", 1)
    path.write_text("\n".join(lines) + "\n")
    opened: list[Path] = []
    real = stream_module._text

    def counting(f: stream_module._File) -> object:
        opened.append(f.path)
        return real(f)

    monkeypatch.setattr(stream_module, "_text", counting)
    stream = open_stream(path, batch_rows=100)
    with pytest.raises(DataError) as exc:
        for _ in stream.batches(["a", "b", "c", "y"]):
            pass
    assert str(exc.value) == (
        f"{path}: column 'b', row 5000: {lines[-1].split(',')[1]!r} is not a number; fix or "
        "remove that row"
    )
    assert opened == [path]  # one pass: the message comes without reading the file again


# ----------------------------------------------------------------------------- 4. width


def test_the_column_kind_checks_look_at_the_columns_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    width = 300
    columns = {f"x{j}": np.arange(4.0) + j for j in range(width)}
    columns["id"] = np.array(["r1", "r2", "r3", "r4"], dtype=object)
    columns["y"] = np.arange(4.0)
    table = Table(columns)
    calls = 0
    real = Table.numeric_columns

    def counting(self: Table) -> tuple[str, ...]:
        nonlocal calls
        calls += 1
        return real.fget(self)  # type: ignore[attr-defined,no-any-return]

    monkeypatch.setattr(Table, "numeric_columns", property(counting))
    X, _, names, _ = select(table, ["y"])
    assert X.shape == (4, width) and len(names) == width
    assert left_out_columns(table, ["y"]) == {"id": "text"}
    assert calls <= 4  # not once per column


def test_a_moderately_wide_file_fits(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 300)).round(3)
    header = ",".join([f"c{j}" for j in range(300)] + ["y"])
    rows = [",".join(map(str, row)) + f",{row[:3].sum():.3f}" for row in X]
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    report = fit_data(
        str(path), ["y"], config=SolverConfig(solver="lstsq", alpha=1e-3), memory_limit=256 << 20
    )
    assert report.model.weight.shape == (1, 300)


@pytest.fixture
def very_wide(tmp_path: Path) -> Path:
    path = tmp_path / "wide.csv"
    width = 100_000
    header = ",".join(f"c{j}" for j in range(width)) + ",y"
    rows = [",".join([str((i * j) % 7) for j in range(width)]) + f",{i}" for i in range(1, 5)]
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


@pytest.mark.parametrize("mode", ["--no-stream", "--stream"])
def test_a_table_too_wide_for_its_statistics_is_refused_before_reading(
    very_wide: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path, mode: str
) -> None:
    model = tmp_path / "m.safetensors"
    message = one_error(*cli(capsys, "fit", very_wide, "--target", "y", mode, "--out", model))
    assert message == (
        f"{very_wide}: 100,001 columns, 100,000 of them features by default, need about "
        "76,295 MiB in memory for the 100,001 x 100,001 statistics of a fit, above the memory "
        "limit of 256 MiB; choose fewer columns with --features, or raise --memory-limit"
    )
    assert not model.exists()


@pytest.mark.parametrize("mode", ["--no-stream", "--stream"])
def test_a_formula_too_wide_is_refused_naming_the_formula_not_features(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, mode: str
) -> None:
    # fit --formula refuses --features: the refusal says to write the formula narrower.
    data = tmp_path / "d.csv"
    data.write_text("y,a,g\n" + "".join(f"{i},{i * i % 5},{'uvw'[i % 3]}\n" for i in range(9)))
    model = tmp_path / "m.safetensors"
    argv = ("fit", data, "--formula", "y ~ a + C(g)", "--memory-limit", "100", mode)
    message = one_error(*cli(capsys, *argv, "--out", model))
    assert message == (
        f"{data}: 3 feature columns need about 128 bytes in memory for the 4 x 4 statistics of "
        "a fit, above the memory limit of 100 bytes; write the formula 'y ~ a + C(g)' with fewer "
        "columns (fewer terms or interactions; C(x) makes about a column per level), or raise "
        "--memory-limit"
    )
    assert not model.exists()


def test_the_width_check_weighs_the_statistics_against_the_limit() -> None:
    assert statistics_bytes(1999) == 2000**2 * 8
    check_width("d.csv", 1999, statistics_bytes(1999))  # fits exactly
    check_width("d.csv", 2000, DEFAULT_MEMORY_LIMIT)  # 2,000 columns fit by default
    with pytest.raises(DataError, match=r"d\.csv: 6,000 feature columns need about 275 MiB"):
        check_width("d.csv", 6000, 256 << 20)
    check_width("d.csv", 10**6, None)  # no limit: a library call without one


def test_chosen_features_of_a_very_wide_file_fit(very_wide: Path) -> None:
    config = SolverConfig(solver="lstsq")
    kwargs = {"features": ["c1", "c2"], "config": config, "memory_limit": 1 << 20}
    assert fit_stream(str(very_wide), ["y"], **kwargs).model.feature_names == ("c1", "c2")  # type: ignore[arg-type]


def test_a_header_longer_than_the_first_block_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    names = [f"column_{j}" for j in range(20_000)]  # about 250 KB of header
    path.write_text(",".join(names) + "\n" + ",".join(["1"] * len(names)) + "\n")
    assert column_names(path) == tuple(names)
    assert open_stream(path).columns == tuple(names)


# ----------------------------------------------------------------------------- 5. streamed rows


@pytest.mark.parametrize("rows", [300, 20_000])  # the head's rows; rows past the head
def test_a_row_with_an_extra_field_is_named_alike_streamed_and_in_memory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rows: int
) -> None:
    path = tmp_path / "d.csv"
    lines = write_rows(path, rows)
    bad = rows - 180
    lines[bad] += ",9"
    path.write_text("\n".join(lines) + "\n")
    expected = (
        f"{path}: row {bad} has 5 fields but the header has 4 (delimiter ','); fix that row, "
        "e.g. quote a value that contains the delimiter"
    )
    out = tmp_path / "m.safetensors"
    for mode in (["--no-stream"], ["--stream", "--batch-rows", "50"]):
        assert one_error(*cli(capsys, "fit", path, "--target", "y", *mode, "--out", out)) == (
            expected
        )


def test_a_quoted_line_break_across_a_streamed_chunk_names_its_row(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    lines = write_rows(path, 3_000, header="id,a,b,c,y")
    lines = [lines[0]] + [f"r{i},{line}" for i, line in enumerate(lines[1:], start=1)]
    for row in range(5, 3_000, 7):  # a line break in a quoted id, every 7 rows
        lines[row] = f'"r{row}\nx",' + lines[row].split(",", 1)[1]
    path.write_text("\n".join(lines) + "\n")
    whole = read_table(path)  # in one block: read whole, the quoted line breaks are values
    assert whole.n_rows == 3_000 and whole.columns["id"][4] == "r5\nx"
    stream = open_stream(path, batch_rows=40)
    with pytest.raises(DataError) as exc:
        for _ in stream.batches(["a", "b", "c", "y"]):
            pass
    message = str(exc.value)
    row = int(message.split(": row ")[1].split(" ")[0])
    assert row % 7 == 5  # a row with a quoted line break
    assert message == (
        f"{path}: row {row} ends inside a quoted value (a line break in a quoted cell, or a "
        "quote never closed); remove line breaks from quoted cells, or close the quote"
    )


@pytest.mark.parametrize("where", [1, 300])  # in the head that types are inferred from; later
def test_a_cell_longer_than_pyarrows_block_is_read(tmp_path: Path, where: int) -> None:
    path = tmp_path / "d.csv"
    lines = write_rows(path, 400, header="id,a,b,c,y")
    lines = [lines[0]] + [f"r{i},{line}" for i, line in enumerate(lines[1:], start=1)]
    lines[where] = "z" * (3 << 20) + "," + lines[where].split(",", 1)[1]  # 3 MB > 1 MB block
    path.write_text("\n".join(lines) + "\n")
    assert read_table(path).columns["id"][where - 1] == "z" * (3 << 20)
    rows = sum(b.n_rows for b in open_stream(path, batch_rows=50).batches(["a", "y"], ["id"]))
    assert rows == 400


def test_a_row_longer_than_the_bound_is_refused_with_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stream_module, "_MAX_ROW", 1 << 20)
    path = tmp_path / "d.csv"
    lines = write_rows(path, 400)
    lines[200] = "9" * (3 << 20) + "," + lines[200].split(",", 1)[1]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as exc:
        for _ in open_stream(path, batch_rows=50).batches(["a", "y"]):
            pass
    assert str(exc.value).startswith(f"{path}: a row longer than 1 MiB at line ")
    line = int(str(exc.value).split(" at line ")[1].split(";")[0])
    assert 2 <= line <= 201  # at or before the long line (201 of the file)


# ----------------------------------------------------------------------------- 6. column names


@pytest.mark.parametrize("mode", ["--no-stream", "--stream"])
def test_a_column_without_a_name_is_refused_at_read_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    path = tmp_path / "d.csv"
    write_rows(path, 50, header="a, ,c,y")
    out = tmp_path / "m.safetensors"
    assert one_error(*cli(capsys, "fit", path, "--target", "y", mode, "--out", out)) == (
        f"{path}: column 2 has no name in the header; give it a name in the header (or remove "
        "the column)"
    )
    assert not out.exists()


@pytest.mark.parametrize("mode", ["--no-stream", "--stream"])
def test_a_duplicated_column_name_is_refused_when_used(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    path = tmp_path / "d.csv"
    write_rows(path, 50, header="a,b,a,y")
    out = tmp_path / "m.safetensors"
    assert one_error(*cli(capsys, "fit", path, "--target", "y", mode, "--out", out)) == (
        f"{path}: column name 'a' appears more than once in the header; rename the columns so "
        "that each name is unique"
    )


# ----------------------------------------------------------------------------- 7. hold-out


@pytest.mark.parametrize("mode", ["--no-stream", "--stream"])
def test_a_hold_out_that_leaves_no_training_rows_names_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    path = tmp_path / "d.csv"
    write_rows(path, 300)
    args = ["--early-stopping", "--validation-fraction", "0.999", mode]
    out = tmp_path / "m.safetensors"
    assert one_error(*cli(capsys, "fit", path, "--target", "y", *args, "--out", out)) == (
        f"{path}: early stopping holds out 300 of 300 rows (--validation-fraction 0.999), "
        "leaving 0 to train on, and at least 2 are needed; lower --validation-fraction, or add "
        "rows"
    )


def test_the_hold_out_message_is_one_for_both_roads(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    write_rows(path, 300)
    config = SolverConfig(early_stopping=True, validation_fraction=0.999)
    with pytest.raises(ValidationError) as whole:
        fit_data(str(path), ["y"], config=config)
    with pytest.raises(ValidationError) as streamed:
        fit_stream(str(path), ["y"], config=config)
    assert str(whole.value) == str(streamed.value)
    # One row left to train on is refused too, on both roads: the row rule (a seeded coin per
    # row, gradfit.solvers.rows) holds out 299 of these 300 rows with 0.998 and seed 0.
    config = SolverConfig(early_stopping=True, validation_fraction=0.998)
    with pytest.raises(ValidationError, match=r"holds out 299 of 300 rows .* leaving 1 to"):
        fit_data(str(path), ["y"], config=config)
    with pytest.raises(ValidationError, match=r"holds out 299 of 300 rows .* leaving 1 to"):
        fit_stream(str(path), ["y"], config=config)


# ----------------------------------------------------------------------------- 8. constant target


@pytest.fixture
def constant_target(tmp_path: Path) -> Path:
    path = tmp_path / "const.csv"
    rng = np.random.default_rng(0)
    rows = [f"{a:.3f},{b:.3f},5" for a, b in rng.normal(size=(200, 2))]
    path.write_text("a,b,y\n" + "\n".join(rows) + "\n")
    return path


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["--no-stream", "--stream"])
def test_a_constant_target_prints_no_numpy_warning(
    constant_target: Path, tmp_path: Path, mode: str
) -> None:
    done = subprocess_fit(tmp_path, constant_target, "--target", "y", mode)
    assert done.returncode == 0, done.stderr
    assert "RuntimeWarning" not in done.stderr and "All-NaN" not in done.stderr, done.stderr
    assert "warning" not in done.stderr, done.stderr
    assert "R² y                      1.000000" in done.stdout  # predicted exactly: 1 (documented)


def test_a_constant_target_is_fitted_without_warnings(constant_target: Path) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for solver in ("gd", "sgd", "lstsq"):
            report = fit_stream(str(constant_target), ["y"], config=SolverConfig(solver=solver))
            assert report.metrics.r2[0] in (0.0, 1.0)
