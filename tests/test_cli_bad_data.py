"""Bad data files given to `gradfit fit`: exit 2, one line naming the file, column and row,
nothing written — in process, and (for input that is not UTF-8 text) in a real process whose
terminal must see no traceback and no raw bytes of the file."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cli_helpers import ok, user_error

from gradfit.persistence import SavedModel, load_model

SMALL = "a,b,y\n1,2,3\n2,1,4\n3,5,8\n4,3,9\n"


@pytest.mark.parametrize(
    ("content", "argv", "says"),
    [
        pytest.param(None, [], ("no such file", "check the path"), id="missing"),
        pytest.param(b"", [], ("empty (0 bytes)",), id="empty"),
        pytest.param("a,b,y\n", [], ("header but no data rows", "add rows"), id="header-only"),
        pytest.param(
            "a,b,y\n1,2,3\n", [], ("1 data row", "at least 2", "add more rows"), id="one-row"
        ),
        pytest.param(
            SMALL,
            ["--target", "yy"],
            ("no target column 'yy'", "did you mean 'y'", "available columns: 'a', 'b', 'y'"),
            id="unknown-target",
        ),
        pytest.param(
            SMALL,
            ["--features", "a,c"],
            ("no feature column 'c'", "available columns: 'a', 'b', 'y'"),
            id="unknown-feature",
        ),
        pytest.param(
            SMALL,
            ["--features", "a,y"],
            ("column 'y' is given both as a target and as a feature",),
            id="target-as-feature",
        ),
        pytest.param(
            "a,a,y\n1,2,3\n2,1,4\n3,5,8\n",
            [],
            ("column name 'a' appears more than once", "rename"),
            id="duplicate-columns",
        ),
        pytest.param(
            "a,b,y\n1,2,3\n2,x,4\n3,5,8\n",
            ["--features", "a,b"],
            ("column 'b', row 2: 'x' is not a number", "fix or remove that row"),
            id="non-numeric-feature",
        ),
        pytest.param(
            "a,b,y\n1,2,3\n2,1,4\n3,5,eight\n",
            [],
            ("column 'y', row 3: 'eight' is not a number",),
            id="non-numeric-target",
        ),
        pytest.param(
            "a,b,y\n1,2,3\n2,,4\n3,5,8\n",
            [],
            ("column 'b', row 2: missing value", "fill it in or remove that row"),
            id="empty-cell",
        ),
        pytest.param(
            "a,b,y\n1,2,3\n2,1,4\n3,NaN,8\n",
            [],
            ("column 'b', row 3: missing value",),
            id="nan",
        ),
        pytest.param(
            "a,b,y\n1,2,3\n2,1,4\n3,5,inf\n",
            [],
            ("column 'y', row 3: infinite value", "replace it or remove that row"),
            id="inf",
        ),
        pytest.param(
            "a,b,y\n1,2,3\n2,1,4\n3,5,8,9\n",
            [],
            ("row 3 has 4 fields but the header has 3",),
            id="ragged-row",
        ),
    ],
)
def test_fit_bad_csv(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    out_dir: Path,
    content: str | bytes | None,
    argv: list[str],
    says: tuple[str, ...],
) -> None:
    data = tmp_path / "data.csv"
    if isinstance(content, str):
        data.write_text(content, encoding="utf-8")
    elif isinstance(content, bytes):
        data.write_bytes(content)
    if "--target" not in argv:
        argv = ["--target", "y", *argv]
    line = user_error(
        capsys,
        out_dir,
        "fit",
        data,
        *argv,
        "--out",
        out_dir / "m.safetensors",
        "--plot",
        out_dir / "p.png",
        says=says,
    )
    assert line.startswith(f"gradfit: error: {data}: ") or "data.csv" in line


def test_fit_directory_as_data(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, out_dir: Path
) -> None:
    (tmp_path / "data.csv").mkdir()
    user_error(
        capsys,
        out_dir,
        "fit",
        tmp_path / "data.csv",
        "--target",
        "y",
        "--out",
        out_dir / "m.safetensors",
        says=(f"{tmp_path / 'data.csv'}: is a directory",),
    )


@pytest.mark.parametrize(
    ("column", "says"),
    [
        # A text column named as a feature is categorical (issue 19): tests/test_fit_formula.py
        (pa.array([[1], [2], [3], [4]]), "column 's' has type list<"),
        (
            pa.array([{"u": 1}, {"u": 2}, {"u": 3}, {"u": 4}]),
            "column 's' has type struct<",
        ),
    ],
    ids=["list", "struct"],
)
def test_fit_parquet_with_non_numeric_column(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, out_dir: Path, column: Any, says: str
) -> None:
    data = tmp_path / "data.parquet"
    pq.write_table(pa.table({"a": [1.0, 2.0, 3.0, 4.0], "s": column, "y": [1.0, 3, 2, 5]}), data)
    user_error(
        capsys,
        out_dir,
        "fit",
        data,
        "--target",
        "y",
        "--features",
        "a,s",
        "--out",
        out_dir / "m.safetensors",
        says=(f"{data}: {says}",),
    )
    # Left to the default, such a column is simply not a feature.
    model = fit_model_small(capsys, data, out_dir / "ok.safetensors")
    assert model.feature_names == ("a",)


def fit_model_small(capsys: pytest.CaptureFixture[str], data: Path, model: Path) -> SavedModel:
    ok(capsys, "fit", data, "--target", "y", "--out", model, "--quiet")
    return load_model(model)


# ---------------------------------------------------------------------------------------------
# input that is not UTF-8 text, in a real process

HEADER = b"a,b,y\n1,2,3\n"


def garbage(n: int, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(n)


CASES: dict[str, tuple[str, bytes, str]] = {
    # name: (file name, content, what stderr says after "gradfit: error: <file>: ")
    "random bytes": ("d.csv", garbage(4000), "not a UTF-8 text file (undecodable bytes near"),
    "random bytes named .bin": (
        "some.bin",
        garbage(4000),
        "not a UTF-8 text file (undecodable bytes near",
    ),
    "header then garbage": (
        "d.csv",
        HEADER + garbage(4000),
        "not a UTF-8 text file (undecodable bytes near line 3)",
    ),
    "garbage beyond the first 64 KiB": (
        "d.csv",
        b"a,b,y\n" + b"1,2,3\n" * 20_000 + garbage(4000),
        "not a UTF-8 text file (undecodable bytes near line 20002)",
    ),
    "NUL in a cell": (
        "d.csv",
        b"a,b,y\n1,2,3\n4,5\x00,6\n7,8,9\n",
        "not a UTF-8 text file (NUL bytes near line 3)",
    ),
    "escape sequence in a cell": (
        "d.csv",
        b"a,b,y\n1,2,3\n4,5\x1b[2J\x1b[31m,6\n7,8,9\n",
        "column 'b', row 2: '5\\x1b[2J\\x1b[31m' is not a number",
    ),
    "UTF-16": ("d.csv", "a,b,y\n1,2,3\n4,5,6\n".encode("utf-16"), "not a UTF-8 text file ("),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_fit_on_a_file_that_is_not_utf8_text(tmp_path: Path, case: str) -> None:
    name, content, says = CASES[case]
    path = tmp_path / name
    path.write_bytes(content)
    model = tmp_path / "m.safetensors"
    done = subprocess.run(
        [sys.executable, "-m", "gradfit", "fit", path, "--target", "y", "--out", str(model)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        cwd=tmp_path,
        timeout=120,
        start_new_session=True,  # no controlling terminal
        check=False,
    )
    stderr = done.stderr.decode("utf-8")  # strict: no raw bytes of the file
    assert done.returncode == 2, stderr
    assert done.stdout == b""
    assert stderr.endswith("\n") and stderr.count("\n") == 1, stderr
    line = stderr[:-1]
    assert line.isprintable(), repr(line)
    assert "Traceback" not in line and "Exception ignored" not in line
    assert line.startswith(f"gradfit: error: {path}: {says}"), line
    assert not model.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
