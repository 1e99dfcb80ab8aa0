"""What a hostile or careless user found (``tests/probe_hostile.py``), each kept as a test.

Every case ends with exit 0 or exit 2 and one line, never an internal error:

* data files whose names are bytes that are not UTF-8 (pyarrow takes a path only as UTF-8
  text): CSV and Parquet, read whole and streamed, fit, predict and evaluate;
* plots whose title or labels hold such a name, or a column name with ``$...$`` (which
  matplotlib would parse as mathtext and fail on).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from gradfit.cli import main

CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
UNDECODABLE = os.fsdecode(b"\xff")  # how Python names the byte 0xff in a file name


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    """``gradfit ARGV`` in this process: exit code, stdout, stderr."""
    capsys.readouterr()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        assert isinstance(exc.code, int)
        code = exc.code
    captured = capsys.readouterr()
    for text in (captured.out, captured.err):
        assert CONTROL.search(text) is None, text
    assert "internal error" not in captured.err
    return code, captured.out, captured.err


def one_error(err: str, *fragments: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gradfit: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


CSV = "x1,x2,y\n1,2,3\n2,3,1\n4,1,2\n5,5,7\n3,1,0\n"


@pytest.fixture
def odd(tmp_path: Path) -> Path:
    """A directory holding a good CSV and Parquet file whose names are not UTF-8."""
    import pyarrow.csv as pv
    import pyarrow.parquet as pq

    (tmp_path / f"g{UNDECODABLE}.csv").write_text(CSV)
    (tmp_path / "plain.csv").write_text(CSV)
    pq.write_table(pv.read_csv(tmp_path / "plain.csv"), tmp_path / "plain.parquet")
    os.rename(tmp_path / "plain.parquet", tmp_path / f"g{UNDECODABLE}.parquet")
    return tmp_path


@pytest.mark.skipif(os.name != "posix", reason="file names of raw bytes are POSIX")
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize("stream", ["--no-stream", "--stream"])
def test_data_name_not_utf8(
    capsys: pytest.CaptureFixture[str], odd: Path, suffix: str, stream: str
) -> None:
    data = odd / f"g{UNDECODABLE}{suffix}"
    model = odd / "m.safetensors"
    code, out, err = run_cli(capsys, "fit", data, "--target", "y", "--out", model, stream)
    assert code == 0, err
    assert model.is_file()
    code, out, err = run_cli(capsys, "predict", model, data, stream)
    assert code == 0, err
    assert out.splitlines()[0] == "y" and len(out.splitlines()) == 6
    code, out, err = run_cli(capsys, "evaluate", model, data, stream)
    assert code == 0, err
    written = odd / f"o{UNDECODABLE}{suffix}"
    code, out, err = run_cli(capsys, "predict", model, data, "--out", written, stream)
    assert code == 0, err
    assert written.is_file()


@pytest.mark.skipif(os.name != "posix", reason="file names of raw bytes are POSIX")
def test_data_name_not_utf8_bad_cell(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = tmp_path / f"b{UNDECODABLE}\x1b.csv"
    data.write_text("x1,y\n1,2\n2,a\x1b[31m\n")
    before = data.read_bytes()
    code, _, err = run_cli(capsys, "fit", data, "--target", "y", "--out", tmp_path / "m.sf")
    assert code == 2
    one_error(err, "\\udcff")
    assert data.read_bytes() == before
    assert not (tmp_path / "m.sf").exists()


@pytest.mark.skipif(os.name != "posix", reason="file names of raw bytes are POSIX")
def test_plot_of_data_name_not_utf8(capsys: pytest.CaptureFixture[str], odd: Path) -> None:
    pytest.importorskip("matplotlib")
    plot = odd / f"p{UNDECODABLE}.png"
    code, _, err = run_cli(
        capsys, "fit", odd / f"g{UNDECODABLE}.csv", "--target", "y", "--out", odd / "m.sf",
        "--plot", plot, "--epochs", "3", "--quiet",
    )  # fmt: skip
    assert code == 0, err
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_plot_of_target_with_dollar_signs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """``$\\frac{$`` is a name, not a formula (matplotlib's mathtext would fail on it)."""
    pytest.importorskip("matplotlib")
    data = tmp_path / "d$x$.csv"
    data.write_text(CSV.replace(",y\n", ",$\\frac{$\n", 1))
    plot = tmp_path / "p.png"
    code, _, err = run_cli(
        capsys, "fit", data, "--target", "$\\frac{$", "--out", tmp_path / "m.sf",
        "--plot", plot, "--epochs", "3", "--quiet",
    )  # fmt: skip
    assert code == 0, err
    assert plot.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("kind", ["list", "struct"])
def test_parquet_nested_column_streamed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, kind: str
) -> None:
    """A list or struct column is left out of the features when streamed, as in memory (it has
    no text form for the streamed head's type check)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    nested = pa.array([[1.0]] * 6) if kind == "list" else pa.array([{"a": 1}] * 6)
    data = tmp_path / "d.parquet"
    pq.write_table(
        pa.table({"n": nested, "x": [0.5, 1, 0, 2, 1, 3], "y": [1.0, 2, 3, 4, 5, 7]}), data
    )
    model = tmp_path / "m.sf"
    for stream in ("--no-stream", "--stream"):
        code, _, err = run_cli(capsys, "fit", data, "--target", "y", "--out", model, stream)
        assert code == 0, err
        assert "'n' (not numeric" in err
        code, out, err = run_cli(capsys, "predict", model, data, stream)
        assert code == 0, err
        assert len(out.splitlines()) == 7
        code, _, err = run_cli(
            capsys, "fit", data, "--target", "y", "--features", "n", "--out", model, stream
        )
        assert code == 2
        one_error(err, "column 'n'", "not numbers")


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
@pytest.mark.parametrize("stream", ["--no-stream", "--stream"])
def test_predict_to_terminal_escapes_kept_cells(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, stream: str
) -> None:
    """``predict --keep`` copies cells exactly into a file or a pipe, but a terminal sees their
    control characters as escapes (a cell cannot clear the screen or forge a line)."""
    import subprocess
    import sys

    data = tmp_path / "d.csv"
    data.write_text('id,x1,x2,y\n"a\x1b[2Jb",1,2,3\n"q\u202e",2,3,1\n"r",4,1,2\n"s",5,5,7\n')
    model = tmp_path / "m.sf"
    code, _, err = run_cli(capsys, "fit", data, "--target", "y", "--out", model, "--quiet")
    assert code == 0, err
    capsys.readouterr()
    assert main(["predict", str(model), str(data), "--keep", "id", stream]) == 0
    assert "a\x1b[2Jb" in capsys.readouterr().out  # not a terminal: the data, exactly
    argv = [sys.executable, "-m", "gradfit", "predict", model, data, "--keep", "id", stream]
    leader, follower = os.openpty()
    try:
        process = subprocess.run(argv, stdout=follower, stderr=subprocess.PIPE, timeout=60)
        os.close(follower)
        follower = -1
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the terminal's other end is closed and drained
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(leader)
        if follower != -1:
            os.close(follower)
    assert process.returncode == 0, process.stderr
    text = shown.decode().replace("\r\n", "\n")
    assert "a\\x1b[2Jb" in text and "q\\u202e" in text
    assert CONTROL.search(text) is None


@pytest.mark.parametrize("kind", ["list", "struct"])
@pytest.mark.parametrize("out", ["stdout", "p.csv", "p.parquet"])
def test_keeping_a_nested_column_names_it_or_writes_parquet(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, kind: str, out: str
) -> None:
    """A list or struct column kept through ``predict --keep`` has no CSV form: the error names
    the column and the way out (Parquet), which writes it as it is."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    nested = pa.array([[1.0]] * 6) if kind == "list" else pa.array([{"a": 1}] * 6)
    data = tmp_path / "d.parquet"
    pq.write_table(
        pa.table({"n": nested, "x": [0.5, 1, 0, 2, 1, 3], "y": [1.0, 2, 3, 4, 5, 7]}), data
    )
    model = tmp_path / "m.sf"
    assert run_cli(capsys, "fit", data, "--target", "y", "--out", model)[0] == 0
    target = [] if out == "stdout" else ["--out", tmp_path / out]
    code, _, err = run_cli(capsys, "predict", model, data, "--keep", "n", *target)
    if out == "p.parquet":
        assert code == 0, err
        assert pq.read_table(tmp_path / out).column("n").to_pylist() == nested.to_pylist()
    else:
        assert code == 2
        one_error(err, "column 'n' holds", "which CSV cannot hold", "write Parquet")
        assert not (tmp_path / out).exists()


def _fitted(capsys: pytest.CaptureFixture[str], data: Path, *argv: str) -> dict[str, float]:
    """The coefficients (name: estimate) of ``fit DATA --target y --solver lstsq ARGV``."""
    import json

    model = data.parent / "m.sf"
    code, out, err = run_cli(
        capsys, "fit", data, "--target", "y", "--solver", "lstsq", "--out", model, "--json",
        "--quiet", *argv,
    )  # fmt: skip
    assert code == 0, err
    target = json.loads(out)["inference"]["targets"]["y"]
    return {name: c["estimate"] for name, c in target["coefficients"].items()}


def _same_fit(whole: dict[str, float], streamed: dict[str, float]) -> None:
    assert sorted(whole) == sorted(streamed)
    for name, value in whole.items():
        assert streamed[name] == pytest.approx(value, rel=1e-10, abs=1e-10), name


def _rows(n: int = 12) -> dict[str, list[float]]:
    x1 = [float(i) for i in range(n)]
    x2 = [float(i * 7 % 5) for i in range(n)]
    y = [2 * a - b + (i * 3 % 4) * 0.1 for i, (a, b) in enumerate(zip(x1, x2, strict=True))]
    return {"x1": x1, "x2": x2, "y": y}


@pytest.mark.parametrize("kind", ["dictionary", "string"])
def test_parquet_of_one_row_groups_chooses_the_features_streamed_as_read_whole(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, kind: str
) -> None:
    """The default features of a stream come from its first 65,536 rows across row groups (a
    file of one-row groups once gave one row: its text column 'a single value', left out)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    g = pa.array(["a", "b", "c"] * 4)
    table = pa.table({**_rows(), "g": g.dictionary_encode() if kind == "dictionary" else g})
    data = tmp_path / "d.parquet"
    pq.write_table(table, data, row_group_size=1)
    whole = _fitted(capsys, data, "--no-stream")
    assert {"gb", "gc"} <= set(whole)
    _same_fit(whole, _fitted(capsys, data, "--stream"))


@pytest.mark.parametrize("kind", ["date", "binary", "string_view"])
def test_a_parquet_column_that_is_not_text_is_left_out_streamed_as_read_whole(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, kind: str
) -> None:
    """A Parquet column keeps its stored type in the head of a stream, as read whole: a date or
    binary column with repeated values is left out of the default features on both roads (the
    head once made it text, a categorical column streamed only, and a binary one failed with
    "level b'a' was not seen in training")."""
    import datetime

    import pyarrow as pa
    import pyarrow.parquet as pq

    values = {
        "date": pa.array([datetime.date(2020, 1, 1 + i % 3) for i in range(12)]),
        "binary": pa.array([b"a", b"b", b"c"] * 4),
        "string_view": pa.array(["a", "b", "c"] * 4, pa.string_view()),
    }[kind]
    data = tmp_path / "d.parquet"
    pq.write_table(pa.table({**_rows(), "o": values}), data)
    whole = _fitted(capsys, data, "--no-stream")
    assert sorted(whole) == ["(Intercept)", "x1", "x2"]
    _same_fit(whole, _fitted(capsys, data, "--stream"))
    for stream in ("--no-stream", "--stream"):
        code, _, err = run_cli(
            capsys, "fit", data, "--target", "y", "--features", "x1,o", "--out",
            tmp_path / "m.sf", stream,
        )  # fmt: skip
        assert code == 2
        one_error(err, "column 'o' has type", "not numbers")


@pytest.mark.parametrize("source", ["parquet", "csv"])
def test_missing_drop_with_no_row_left_in_the_first_batch_streams_as_read_whole(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, source: str
) -> None:
    """``--missing drop`` streamed freezes its design from the first batch with a row left: a
    first batch all of missing rows (a one-row Parquet row group, a CSV file's first 1,500
    rows) once ended the fit with "no rows left to make the design from", which the rows read
    whole have."""
    import pyarrow as pa
    import pyarrow.csv as pv
    import pyarrow.parquet as pq

    n, gone = (12, 2) if source == "parquet" else (2000, 1500)  # a CSV batch: 4 kB at least
    rows = _rows(n)
    table = pa.table({**rows, "x1": pa.array([None] * gone + rows["x1"][gone:], pa.float64())})
    if source == "parquet":
        data = tmp_path / "d.parquet"
        pq.write_table(table, data, row_group_size=1)
    else:
        data = tmp_path / "d.csv"
        pv.write_csv(table, data)
    whole = _fitted(capsys, data, "--missing", "drop", "--no-stream")
    streamed = _fitted(capsys, data, "--missing", "drop", "--stream", "--batch-rows", "2")
    _same_fit(whole, streamed)
    every = tmp_path / f"none.{source}"
    odd = [v if i % 2 else None for i, v in enumerate(rows["x1"])]  # every row missing one
    even = [None if i % 2 else v for i, v in enumerate(rows["x2"])]
    table = table.set_column(0, "x1", pa.array(odd, pa.float64()))
    table = table.set_column(1, "x2", pa.array(even, pa.float64()))
    pq.write_table(table, every) if source == "parquet" else pv.write_csv(table, every)
    for stream in ("--no-stream", "--stream"):
        code, _, err = run_cli(
            capsys, "fit", every, "--target", "y", "--features", "x1,x2", "--missing", "drop",
            "--out", tmp_path / "m.sf", stream, "--batch-rows", "2",
        )  # fmt: skip
        assert code == 2
        one_error(err, "no rows left")


def test_a_csv_of_carriage_returns_alone_streamed_says_so(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Lines ending in a CR alone (classic Mac OS) are read whole by pyarrow; the stream, whose
    batches are cut at line feeds, said "the file has a header but no data rows". It names the
    line ends and the ways out, for a file and a directory (always streamed); a CR inside a
    quoted header name, and CRLF, stream as before."""
    data = tmp_path / "d.csv"
    data.write_bytes(CSV.replace("\n", "\r").encode())
    model = tmp_path / "m.sf"
    code, _, err = run_cli(capsys, "fit", data, "--target", "y", "--out", model, "--no-stream")
    assert code == 0, err
    parts = tmp_path / "parts"
    parts.mkdir()
    (parts / "a.csv").write_bytes(data.read_bytes())
    for argv in (
        ("fit", data, "--target", "y", "--out", tmp_path / "n.sf", "--stream"),
        ("fit", parts, "--target", "y", "--out", tmp_path / "n.sf"),
        ("predict", model, data, "--stream"),
    ):
        code, out, err = run_cli(capsys, *argv)
        assert code == 2 and out == ""
        one_error(
            err, "d.csv" if argv[1] != parts else "a.csv", "carriage return alone", "--no-stream"
        )
        assert not (tmp_path / "n.sf").exists()
    for text in (CSV.replace("\n", "\r\n"), '"x\r1",x2,y' + CSV[CSV.index("\n") :]):
        data.write_bytes(text.encode())
        code, _, err = run_cli(capsys, "fit", data, "--target", "y", "--out", model, "--stream")
        assert code == 0, err
