"""gradfit.data.readers on real files: every format, every bad input, atomic writes."""

from __future__ import annotations

import gzip
import os
import random
import re
import stat
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv
import pyarrow.parquet as pq
import pytest

import gradfit.atomic
import gradfit.data
import gradfit.data.tables as tables
import gradfit.data.writers as writers
from gradfit.data import (
    Table,
    atomic_write,
    feature_matrix,
    left_out_columns,
    read_table,
    select,
    table_to_csv_text,
    write_table,
)
from gradfit.data.writers import _to_arrow
from gradfit.errors import DataError, GradfitError, ValidationError

CROPS = "region,temp,rainfall,humidity,apples\nr1,73,67,43,56\nr2,91,88,64,81\nr3,87,134,58,119\n"


def make(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def data_error(match: str | None = None) -> Any:
    """``pytest.raises(DataError, match=match)``; pair it with :func:`one_line`."""
    return pytest.raises(DataError, match=match)


def one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(exc.value)
    assert "\n" not in message and "\r" not in message, message
    return message


def printable_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    """:func:`one_line`, and nothing from the file that a terminal would act on."""
    message = one_line(exc)
    assert message.isprintable(), repr(message)
    return message


def random_bytes(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


def crops_table(tmp_path: Path, text: str = CROPS, name: str = "crops.csv") -> Table:
    return read_table(make(tmp_path, name, text))


# ---------------------------------------------------------------------------------------------
# reading: formats


def test_read_csv_types_order_and_source(tmp_path: Path) -> None:
    path = make(tmp_path, "crops.csv", CROPS)
    table = read_table(str(path))
    assert table.source == str(path)
    assert list(table.columns) == ["region", "temp", "rainfall", "humidity", "apples"]
    assert table.n_rows == 3
    assert table.numeric_columns == ("temp", "rainfall", "humidity", "apples")
    assert table.columns["temp"].dtype == np.int64  # integers are kept exact
    np.testing.assert_array_equal(table.columns["apples"], [56, 81, 119])
    assert table.columns["region"].dtype == object
    assert table.columns["region"].tolist() == ["r1", "r2", "r3"]
    assert table.types["temp"] == "int64" and table.types["region"] == "string"
    assert table.file_format == "csv"
    assert table.columns["temp"].flags.writeable


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("d.tsv", CROPS.replace(",", "\t")),
        ("d.csv", CROPS.replace(",", ";")),  # sniffed: semicolons
        ("d.csv", CROPS.replace(",", "|")),  # sniffed: pipes
        ("d.csv", CROPS.replace(",", "\t")),  # sniffed: tabs in a .csv
        ("d.tsv", CROPS),  # sniffed: commas in a .tsv
        ("d.csv", "\ufeff" + CROPS),  # UTF-8 byte-order mark
        ("d.csv", CROPS.replace("\n", "\r\n")),  # Windows line ends
        ("d.csv", CROPS.replace(",", ";").replace(";73;", "; 73 ;")),  # padded numbers
    ],
)
def test_read_delimited_variants(tmp_path: Path, name: str, text: str) -> None:
    table = read_table(make(tmp_path, name, text))
    assert list(table.columns) == ["region", "temp", "rainfall", "humidity", "apples"]
    np.testing.assert_array_equal(table.columns["temp"], [73.0, 91.0, 87.0])
    assert table.columns["region"].tolist() == ["r1", "r2", "r3"]


def test_sniffer_ignores_delimiters_inside_quotes(tmp_path: Path) -> None:
    table = read_table(make(tmp_path, "d.csv", '"a,b";c\n1;2\n3;4\n'))
    assert list(table.columns) == ["a,b", "c"]


def test_extension_delimiter_wins_when_present(tmp_path: Path) -> None:
    # A comma-delimited file whose header names contain semicolons stays comma-delimited.
    table = read_table(make(tmp_path, "d.csv", "a;1,b;2,c\n1,2,3\n"))
    assert list(table.columns) == ["a;1", "b;2", "c"]


def test_single_column_file(tmp_path: Path) -> None:
    table = read_table(make(tmp_path, "d.csv", "y\n1\n2\n"))
    assert list(table.columns) == ["y"]


@pytest.mark.parametrize("name", ["d.csv.gz", "d.tsv.gz", "disguised.csv"])
def test_read_gzip(tmp_path: Path, name: str) -> None:
    text = CROPS.replace(",", "\t") if name.startswith("d.tsv") else "\ufeff" + CROPS
    table = read_table(make(tmp_path, name, gzip.compress(text.encode("utf-8"))))
    assert next(iter(table.columns)) == "region"  # the BOM inside the gzip is gone too
    np.testing.assert_array_equal(table.columns["apples"], [56.0, 81.0, 119.0])


def test_plain_text_named_gz_is_read_as_text(tmp_path: Path) -> None:
    table = read_table(make(tmp_path, "d.csv.gz", CROPS))
    assert table.n_rows == 3


@pytest.mark.parametrize("name", ["d.parquet", "d.pq", "parquet-named.csv"])
def test_read_parquet(tmp_path: Path, name: str) -> None:
    arrow = pa.table(
        {
            "id": pa.array(["a", "b"]).dictionary_encode(),
            "x": pa.array([1, 2], type=pa.int32()),
            "f": pa.array([0.5, None], type=pa.float32()),
            "flag": [True, False],
        }
    )
    pq.write_table(arrow, tmp_path / name)
    table = read_table(tmp_path / name)
    assert table.file_format == "parquet"
    assert table.numeric_columns == ("x", "f")
    np.testing.assert_array_equal(table.columns["x"], [1.0, 2.0])
    assert np.isnan(table.columns["f"][1])
    assert table.columns["id"].tolist() == ["a", "b"]
    assert table.columns["flag"].dtype == object


def test_non_numeric_csv_columns_keep_their_text(tmp_path: Path) -> None:
    text = "id,when,flag,x\n007,2020-01-02T10:00,TRUE,1\nab,2021-01-01,false,2\n"
    table = read_table(make(tmp_path, "d.csv", text))
    assert table.columns["when"].tolist() == ["2020-01-02T10:00", "2021-01-01"]
    assert table.columns["flag"].tolist() == ["TRUE", "false"]
    assert table.columns["id"].tolist() == ["007", "ab"]
    assert table.numeric_columns == ("x",)


def test_empty_cell_in_text_column_is_none(tmp_path: Path) -> None:
    table = read_table(make(tmp_path, "d.csv", "id,x\na,1\n,2\n"))
    assert table.columns["id"].tolist() == ["a", None]


def test_late_bad_value_beyond_the_first_block(tmp_path: Path) -> None:
    # pyarrow infers types block by block (1 MB): a bad cell after the first block must still
    # give a text column and an exact row number.
    rows = 300_000
    text = "x,y\n" + "1,2\n" * rows + "1.5,oops\n"
    table = read_table(make(tmp_path, "big.csv", text))
    assert table.columns["x"].dtype == np.float64 and table.columns["x"][-1] == 1.5
    with data_error() as exc:
        select(table, ["y"])
    assert (
        one_line(exc) == f"{table.source}: column 'y', row {rows + 1}: 'oops' is not a number; "
        "fix or remove that row"
    )


# ---------------------------------------------------------------------------------------------
# reading: bad files


def test_missing_file(tmp_path: Path) -> None:
    with data_error(r"nope\.csv: no such file; check the path") as exc:
        read_table(tmp_path / "nope.csv")
    one_line(exc)


def test_directory(tmp_path: Path) -> None:
    (tmp_path / "dir.csv").mkdir()
    with data_error(r"dir\.csv: is a directory") as exc:
        read_table(tmp_path / "dir.csv")
    one_line(exc)


def test_empty_file(tmp_path: Path) -> None:
    with data_error(r"empty\.csv: the file is empty \(0 bytes\)") as exc:
        read_table(make(tmp_path, "empty.csv", b""))
    one_line(exc)


@pytest.mark.parametrize("content", [b"\n\n\n", gzip.compress(b""), gzip.compress(b"\r\n \n")])
def test_blank_file(tmp_path: Path, content: bytes) -> None:
    with data_error(r"blank\.csv: the file holds no data") as exc:
        read_table(make(tmp_path, "blank.csv", content))
    one_line(exc)


@pytest.mark.parametrize("text", ["x,y\n", "x,y", "\ufeffx;y\r\n"])
def test_header_only(tmp_path: Path, text: str) -> None:
    with data_error(r"h\.csv: the file has a header but no data rows; add rows") as exc:
        read_table(make(tmp_path, "h.csv", text))
    one_line(exc)


def test_parquet_without_rows(tmp_path: Path) -> None:
    pq.write_table(pa.table({"x": pa.array([], type=pa.float64())}), tmp_path / "e.parquet")
    with data_error(r"e\.parquet: the file has a header but no data rows"):
        read_table(tmp_path / "e.parquet")


def test_row_with_too_many_fields(tmp_path: Path) -> None:
    path = make(tmp_path, "f.csv", "x,y\n1,2\n3,4\n5,6,7\n8,9\n")
    with data_error() as exc:
        read_table(path)
    assert one_line(exc) == (
        f"{path}: row 3 has 3 fields but the header has 2 (delimiter ','); fix that row, "
        "e.g. quote a value that contains the delimiter"
    )


def test_row_with_too_few_fields(tmp_path: Path) -> None:
    with data_error(r"f\.tsv: row 1 has 1 fields but the header has 2 \(delimiter tab\)") as exc:
        read_table(make(tmp_path, "f.tsv", "x\ty\n1\n"))
    one_line(exc)


def test_unsupported_extension(tmp_path: Path) -> None:
    with data_error(r"d\.txt: unsupported file type; use one of \.csv") as exc:
        read_table(make(tmp_path, "d.txt", CROPS))
    one_line(exc)


def test_excel_workbook_named_csv(tmp_path: Path) -> None:
    with data_error(
        r"book\.csv: not a CSV or Parquet file: it looks like a ZIP archive or an Excel"
    ):
        read_table(make(tmp_path, "book.csv", b"PK\x03\x04" + bytes(100)))


def test_corrupt_parquet(tmp_path: Path) -> None:
    pq.write_table(pa.table({"x": np.arange(1000.0)}), tmp_path / "d.parquet")
    data = (tmp_path / "d.parquet").read_bytes()
    make(tmp_path, "cut.parquet", data[: len(data) // 2])
    with data_error(r"cut\.parquet: not a readable Parquet file \(.*\); it may be corrupt") as exc:
        read_table(tmp_path / "cut.parquet")
    one_line(exc)


def test_csv_named_parquet(tmp_path: Path) -> None:
    with data_error(r"d\.parquet: not a readable Parquet file"):
        read_table(make(tmp_path, "d.parquet", CROPS))


@pytest.mark.parametrize("cut", [12, 2000, -12])
def test_truncated_gzip(tmp_path: Path, cut: int) -> None:
    rng = np.random.default_rng(0)
    text = "x,y\n" + "".join(f"{a},{b}\n" for a, b in rng.random((5000, 2)))
    data = gzip.compress(text.encode())
    with data_error(r"cut\.csv\.gz: .*(corrupt|truncated)") as exc:
        read_table(make(tmp_path, "cut.csv.gz", data[:cut]))
    one_line(exc)


def test_not_utf8(tmp_path: Path) -> None:
    content = "name,x,y\nJos\xe9,1,2\nAnn,3,4\n".encode("latin-1")
    with data_error() as exc:
        read_table(make(tmp_path, "l.csv", content))
    assert printable_line(exc) == (
        f"{tmp_path / 'l.csv'}: not a UTF-8 text file (undecodable bytes near line 2); "
        "is it a CSV? Save it as UTF-8 text, or use Parquet"
    )


def test_not_utf8_beyond_the_checked_head_names_line_and_column(tmp_path: Path) -> None:
    content = b"name,x,y\n" + b"Ann,1,2\n" * 20_000 + "Jos\xe9,3,4\n".encode("latin-1")
    with data_error() as exc:
        read_table(make(tmp_path, "l.csv", content))
    assert printable_line(exc) == (
        f"{tmp_path / 'l.csv'}: not a UTF-8 text file (undecodable bytes near line 20002, in "
        "column 'name'); is it a CSV? Save it as UTF-8 text, or use Parquet"
    )


NOT_TEXT = {
    "random bytes": random_bytes(5000),
    "header, then random bytes": b"a,b,y\n1,2,3\n" + random_bytes(5000),
    "random bytes beyond the checked head": b"a,b,y\n" + b"1,2,3\n" * 20_000 + random_bytes(5000),
    "undecodable header": b"a,b\xff,y\n1,2,3\n",
    "NUL byte in a cell": b"a,b,y\n1,2\x00,3\n",
    "UTF-16 with BOM": "a,b,y\n1,2,3\n".encode("utf-16"),
    "UTF-16 without BOM": "a,b,y\n1,2,3\n".encode("utf-16-le"),
    "a character cut at the end": b"a,b,y\n1,2,3\n4,5,\xc3",
}


@pytest.mark.parametrize("name", ["d.csv", "d.csv.gz", "d.tsv"])
@pytest.mark.parametrize("content", NOT_TEXT.values(), ids=NOT_TEXT.keys())
def test_not_a_text_file(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], name: str, content: bytes
) -> None:
    data = gzip.compress(content) if name.endswith(".gz") else content
    with data_error() as exc:
        read_table(make(tmp_path, name, data))
    message = printable_line(exc)
    assert message.startswith(f"{tmp_path / name}: not a UTF-8 text file ("), message
    assert message.lower().endswith("save it as utf-8 text, or use parquet"), message
    # Nothing else: no "Exception ignored in ..." report of a UnicodeDecodeError from pyarrow.
    assert capfd.readouterr() == ("", "")


@pytest.mark.parametrize("name", ["model.bin", "data", "d.dat.gz"])
def test_binary_file_of_another_type_is_not_text_rather_than_unsupported(
    tmp_path: Path, name: str
) -> None:
    with data_error(r"not a UTF-8 text file \(undecodable bytes near line 1\)") as exc:
        read_table(make(tmp_path, name, random_bytes(300, seed=3)))
    printable_line(exc)
    with data_error(r"unsupported file type"):  # text, but neither CSV nor TSV by its name
        read_table(make(tmp_path, f"t-{name}", b"a,y\n1,2\n"))


def test_not_a_text_file_near_line(tmp_path: Path) -> None:
    content = b"a,b,y\n1,2,3\n4,5,6\n" + random_bytes(100)
    with data_error(r"not a UTF-8 text file \(undecodable bytes near line 4\)") as exc:
        read_table(make(tmp_path, "d.csv", content))
    printable_line(exc)
    with data_error(r"not a UTF-8 text file \(NUL bytes near line 3\)"):
        read_table(make(tmp_path, "n.csv", b"a,b,y\n1,2,3\n4,\x00,6\n"))


def test_control_characters_in_a_cell_are_escaped(tmp_path: Path) -> None:
    table = crops_table(tmp_path, "a,b,y\n1,2,3\n4,5\x1b[31m\x07,6\n7,8,9\n")
    with data_error() as exc:
        select(table, ["y"])
    assert printable_line(exc).endswith(
        "column 'b', row 2: '5\\x1b[31m\\x07' is not a number; fix or remove that row"
    )


def test_control_characters_in_names_and_types_are_escaped(tmp_path: Path) -> None:
    table = crops_table(tmp_path, '"a\x1b[2Jb",y\n1,2\n')
    with data_error() as exc:
        select(table, ["nope"])
    assert "'a\\x1b[2Jb'" in printable_line(exc)
    column = pa.array([{"k\x1b": 1}, {"k\x1b": 2}])
    pq.write_table(pa.table({"c": column, "y": [1.0, 2.0]}), tmp_path / "d.parquet")
    table = read_table(tmp_path / "d.parquet")
    for features in (None, ["c"]):
        with data_error(r"struct<k\\x1b: int64>") as exc:
            select(table, ["y"], features)
        printable_line(exc)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a non-root POSIX user")
def test_unreadable_file(tmp_path: Path) -> None:
    path = make(tmp_path, "secret.csv", CROPS)
    path.chmod(0)
    try:
        with data_error(r"secret\.csv: permission denied"):
            read_table(path)
    finally:
        path.chmod(0o600)


# ---------------------------------------------------------------------------------------------
# select


def test_select_defaults_to_other_numeric_columns(tmp_path: Path) -> None:
    X, Y, features, targets = select(crops_table(tmp_path), ["apples"])
    assert features == ("temp", "rainfall", "humidity") and targets == ("apples",)
    assert X.dtype == np.float64 and Y.dtype == np.float64
    np.testing.assert_array_equal(X, [[73, 67, 43], [91, 88, 64], [87, 134, 58]])
    np.testing.assert_array_equal(Y, [[56], [81], [119]])


def test_select_explicit_features_in_given_order_and_string_target(tmp_path: Path) -> None:
    X, Y, features, targets = select(crops_table(tmp_path), "apples", ["humidity", "temp"])
    assert features == ("humidity", "temp") and targets == ("apples",)
    np.testing.assert_array_equal(X[:, 0], [43, 64, 58])
    assert Y.shape == (3, 1)


def test_select_two_targets(tmp_path: Path) -> None:
    X, Y, features, targets = select(crops_table(tmp_path), ["apples", "humidity"])
    assert targets == ("apples", "humidity") and features == ("temp", "rainfall")
    assert X.shape == (3, 2) and Y.shape == (3, 2)


def test_unknown_target_lists_columns_and_suggests(tmp_path: Path) -> None:
    table = crops_table(tmp_path)
    with data_error() as exc:
        select(table, ["aples"])
    assert one_line(exc) == (
        f"{table.source}: no target column 'aples' (did you mean 'apples'?); available columns: "
        "'region', 'temp', 'rainfall', 'humidity', 'apples'"
    )


def test_unknown_feature(tmp_path: Path) -> None:
    with data_error(r"crops\.csv: no feature column 'wind'; available columns: 'region'") as exc:
        select(crops_table(tmp_path), ["apples"], ["temp", "wind"])
    one_line(exc)


def test_target_also_feature(tmp_path: Path) -> None:
    with data_error(r"column 'apples' is given both as a target and as a feature") as exc:
        select(crops_table(tmp_path), ["apples"], ["temp", "apples"])
    one_line(exc)


def test_target_given_twice(tmp_path: Path) -> None:
    with data_error(r"target column 'apples' is given more than once"):
        select(crops_table(tmp_path), ["apples", "apples"])


def test_duplicate_column_names(tmp_path: Path) -> None:
    table = crops_table(tmp_path, "x,x,y\n1,2,3\n4,5,6\n")
    assert table.duplicates == ("x",)
    with data_error(r"column name 'x' appears more than once in the header; rename") as exc:
        select(table, ["y"])
    one_line(exc)
    with data_error(r"column name 'x' appears more than once"):
        select(table, ["x"], ["y"])


def test_unused_duplicate_columns_are_harmless(tmp_path: Path) -> None:
    table = crops_table(tmp_path, "note,note,x,y\na,b,1,3\nc,d,4,6\n")
    _, _, features, _ = select(table, ["y"])
    assert features == ("x",)


def test_non_numeric_cell_names_column_row_and_value(tmp_path: Path) -> None:
    rows = "".join(f"{t},{t + 1}\n" for t in range(6)) + "abc,2\n8,9\n"
    table = crops_table(tmp_path, "temp,y\n" + rows, name="data.csv")
    with data_error() as exc:
        select(table, ["y"], ["temp"])
    assert one_line(exc) == (
        f"{table.source}: column 'temp', row 7: 'abc' is not a number; fix or remove that row"
    )


def test_non_numeric_target_cell(tmp_path: Path) -> None:
    with data_error(r"column 'y', row 2: 'n/a\?' is not a number"):
        select(crops_table(tmp_path, "x,y\n1,2\n3,n/a?\n"), ["y"], ["x"])


def test_long_bad_value_is_shortened_and_newline_escaped(tmp_path: Path) -> None:
    value = "bad\nvalue " + "z" * 100
    table = crops_table(tmp_path, f'x,y\n1,2\n"{value}",3\n')
    with data_error(r"column 'x', row 2: 'bad\\nvalue z+\.\.\.' is not a number") as exc:
        select(table, ["y"], ["x"])
    one_line(exc)


def test_decimal_comma_hint(tmp_path: Path) -> None:
    with data_error(r"row 1: '1,5' is not a number \(use '\.' as the decimal point\)"):
        select(crops_table(tmp_path, "x;y\n1,5;2\n3;4\n"), ["y"], ["x"])


@pytest.mark.parametrize("cell", ["", "NA", "NaN", "nan", "null"])
def test_missing_value(tmp_path: Path, cell: str) -> None:
    table = crops_table(tmp_path, f"x,y\n1,2\n3,4\n{cell},5\n")
    with data_error() as exc:
        select(table, ["y"])
    assert one_line(exc) == (
        f"{table.source}: column 'x', row 3: missing value (an empty cell, NA or NaN); "
        "fill it in or remove that row, or leave out the rows with a missing value with "
        "--missing drop (missing='drop')"
    )


def test_missing_value_in_text_column_before_bad_value(tmp_path: Path) -> None:
    with data_error(r"column 'x', row 1: missing value"):
        select(crops_table(tmp_path, "x,y\n,2\nabc,3\n"), ["y"], ["x"])


def test_bad_value_before_missing_value(tmp_path: Path) -> None:
    with data_error(r"column 'x', row 1: 'abc' is not a number"):
        select(crops_table(tmp_path, "x,y\nabc,2\n,3\n"), ["y"], ["x"])


@pytest.mark.parametrize(("cell", "shown"), [("inf", "inf"), ("-Infinity", "-inf")])
def test_infinite_value(tmp_path: Path, cell: str, shown: str) -> None:
    table = crops_table(tmp_path, f"x,y\n1,2\n3,{cell}\n")
    with data_error() as exc:
        select(table, ["y"])
    assert one_line(exc) == (
        f"{table.source}: column 'y', row 2: infinite value ({shown}); "
        "replace it or remove that row"
    )


def test_missing_value_in_parquet(tmp_path: Path) -> None:
    pq.write_table(pa.table({"x": [1.0, float("nan")], "y": [1.0, 2.0]}), tmp_path / "d.pq")
    with data_error(r"d\.pq: column 'x', row 2: missing value"):
        select(read_table(tmp_path / "d.pq"), ["y"])


def test_no_feature_columns_left(tmp_path: Path) -> None:
    table = crops_table(tmp_path, "id,y\na,1\nb,2\n")
    with data_error() as exc:
        select(table, ["y"])
    assert one_line(exc) == (
        f"{table.source}: no feature columns left: the other columns are not numeric "
        "('id' (string)); add numeric feature columns or fix the values that are not numbers"
    )


def test_no_feature_columns_when_all_are_targets(tmp_path: Path) -> None:
    with data_error(r"no feature columns left: every numeric column is a target"):
        select(crops_table(tmp_path, "a,b\n1,2\n3,4\n"), ["a", "b"])


def test_empty_feature_and_target_lists(tmp_path: Path) -> None:
    table = crops_table(tmp_path)
    with data_error(r"no feature column given"):
        select(table, ["apples"], [])
    with data_error(r"no target column given"):
        select(table, [])


def test_min_rows(tmp_path: Path) -> None:
    table = crops_table(tmp_path, "x,y\n1,2\n")
    X, _, _, _ = select(table, ["y"])  # min_rows=1: one row is fine
    assert X.shape == (1, 1)
    with data_error() as exc:
        select(table, ["y"], min_rows=2)
    assert one_line(exc) == (
        f"{table.source}: the file has 1 data row, at least 2 are needed to fit a model; "
        "add more rows"
    )
    with pytest.raises(ValidationError, match="min_rows"):
        select(table, ["y"], min_rows=0)


@pytest.mark.parametrize(
    ("column", "type_name"),
    [
        (pa.array(["1.5", "2.5"]), "string"),
        (pa.array([[1, 2], [3]]), "list<element: int64>"),
        (pa.array([{"a": 1}, {"a": 2}]), "struct<a: int64>"),
        (pa.array([True, False]), "bool"),
    ],
)
def test_parquet_non_numeric_used_column(tmp_path: Path, column: Any, type_name: str) -> None:
    pq.write_table(pa.table({"c": column, "y": [1.0, 2.0]}), tmp_path / "d.parquet")
    table = read_table(tmp_path / "d.parquet")
    assert "c" not in table.numeric_columns
    with data_error() as exc:
        select(table, ["y"], ["c"])
    assert one_line(exc) == (
        f"{table.source}: column 'c' has type {type_name}, not numbers; features and targets "
        "must be numeric columns"
    )


def test_select_on_table_built_in_code() -> None:
    table = Table({"a": np.array(["1", " 2.5 "], dtype=object), "y": np.array([1, 2])})
    X, Y, features, _ = select(table, ["y"], ["a"])
    np.testing.assert_array_equal(X, [[1.0], [2.5]])
    assert features == ("a",) and Y.dtype == np.float64


def test_object_column_of_numbers_in_code() -> None:
    table = Table({"a": np.array([1, 2.5, None], dtype=object), "y": np.zeros(3)})
    with data_error(r"<table>: column 'a', row 3: missing value"):
        select(table, ["y"], ["a"])
    X = feature_matrix(Table({"a": np.array([1, 2.5], dtype=object)}), ["a"])
    np.testing.assert_array_equal(X, [[1.0], [2.5]])


def test_left_out_columns_of_a_csv_file(tmp_path: Path) -> None:
    text = "id,when,x,flag,empty,y\nr1,2020-01-02,1,TRUE,,2\nr2,2021-01-01,2,false,,3\n"
    table = read_table(make(tmp_path, "d.csv", text))
    assert left_out_columns(table, ["y"]) == {
        "id": "text",
        "when": "text",
        "flag": "text",
        "empty": "empty (no values)",
    }
    assert list(left_out_columns(table, "x")) == ["id", "when", "flag", "empty"]


def test_left_out_columns_of_a_parquet_file(tmp_path: Path) -> None:
    columns = {
        "name": pa.array(["a", "b"]),
        "x": pa.array([1.0, 2.0]),
        "kind": pa.array(["p", "q"]).dictionary_encode(),
        "ok": pa.array([True, False]),
        "tags": pa.array([[1, 2], [3]]),
        "y": pa.array([1.0, 2.0]),
    }
    pq.write_table(pa.table(columns), tmp_path / "d.parquet")
    table = read_table(tmp_path / "d.parquet")
    assert left_out_columns(table, ["y"]) == {
        "name": "text",
        "kind": "text",
        "ok": "not numeric (type bool)",
        "tags": "not numeric (type list<element: int64>)",
    }
    X, _, features, _ = select(table, ["y"])
    assert features == ("x",) and X.shape == (2, 1)


def test_left_out_columns_none_left_out(tmp_path: Path) -> None:
    table = crops_table(tmp_path, "a,b,y\n1,2,3\n4,5,6\n")
    assert left_out_columns(table, ["y"]) == {}
    assert left_out_columns(table, ["a", "b", "y"]) == {}


def test_left_out_columns_of_a_table_built_in_code() -> None:
    table = Table(
        {
            "id": np.array(["r1", "r2"], dtype=object),
            "boxed": np.array([1.5, 2.0], dtype=object),
            "flag": np.array([True, False]),
            "x": np.array([1.0, 2.0]),
            "y": np.array([0.0, 1.0]),
        }
    )
    assert left_out_columns(table, ["y"]) == {
        "id": "text",
        "boxed": "numbers stored as Python objects (dtype object)",
        "flag": "not numeric (dtype bool)",
    }


def test_table_checks_its_columns() -> None:
    with pytest.raises(ValidationError, match="same length"):
        Table({"a": np.zeros(2), "b": np.zeros(3)})
    with pytest.raises(ValidationError, match="1-D"):
        Table({"a": np.zeros((2, 2))})


# ---------------------------------------------------------------------------------------------
# feature_matrix (prediction)


def test_feature_matrix_matches_names_in_any_order(tmp_path: Path) -> None:
    table = crops_table(tmp_path)
    X = feature_matrix(table, ["humidity", "temp"])
    np.testing.assert_array_equal(X, [[43, 73], [64, 91], [58, 87]])


def test_feature_matrix_missing_columns(tmp_path: Path) -> None:
    table = crops_table(tmp_path)
    with data_error() as exc:
        feature_matrix(table, ["temp", "wind", "sun"])
    assert one_line(exc) == (
        f"{table.source}: missing feature column(s) 'wind', 'sun' that the model needs; "
        "available columns: 'region', 'temp', 'rainfall', 'humidity', 'apples'"
    )


def test_feature_matrix_bad_cell(tmp_path: Path) -> None:
    with data_error(r"column 'x', row 2: missing value"):
        feature_matrix(crops_table(tmp_path, "x,z\n1,2\n,3\n"), ["x"])


# ---------------------------------------------------------------------------------------------
# writing


def test_write_csv_round_trip_is_exact(tmp_path: Path) -> None:
    values = np.array([0.1, 1 / 3, 1e300, -2.5e-308, 7.0, -0.0])
    ids = np.array(["a", 'say "hi"', "x,y", None, "é", " pad "], dtype=object)
    path = tmp_path / "out.csv"
    write_table(path, {"id": ids, "pred y": values})
    back = read_table(path)
    assert list(back.columns) == ["id", "pred y"]
    np.testing.assert_array_equal(back.columns["pred y"], values)
    assert back.columns["id"].tolist() == ids.tolist()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_numeric_columns_are_written_as_pa_array_makes_them(tmp_path: Path, suffix: str) -> None:
    """Numeric columns become Arrow over their buffer, not through pa.array (which imports
    pandas: issue 23): the same types and values, NaN a value (not a null), -0.0 kept; a
    strided view, a big-endian array and an empty column too."""
    x = np.array([0.1, np.nan, -0.0, 1e300, -2.5e-308, 7.0])
    columns = {
        "f8": x,
        "f4": np.array([0.1, np.nan, -0.0, 3e38, -1e-40, 7.0], dtype=np.float32),
        "big-endian": x.astype(">f8"),
        "strided": np.arange(18.0)[::3],
        "i8": np.arange(-3, 3),
        "u1": np.arange(6, dtype=np.uint8),
        "i4 big-endian": np.arange(6).astype(">i4"),
    }
    arrow = _to_arrow(columns)
    for name, values in columns.items():
        native = values.astype(values.dtype.newbyteorder("="))
        expected = pa.array(native)
        got = arrow.column(name).combine_chunks()
        assert got.type == expected.type and got.null_count == 0, name
        np.testing.assert_array_equal(got.to_numpy(), native)
        assert np.signbit(got.to_numpy()).tolist() == np.signbit(native).tolist()
    assert _to_arrow({"empty": np.zeros(0)}).num_rows == 0
    path = tmp_path / f"out{suffix}"
    write_table(path, columns)
    back = read_table(path)
    for name, values in columns.items():
        native = values.astype(values.dtype.newbyteorder("="))
        np.testing.assert_array_equal(back.columns[name].astype(native.dtype), native)


def _objects(*values: Any) -> np.ndarray:
    column = np.empty(len(values), dtype=object)
    column[:] = list(values)
    return column


TEXT_COLUMNS = {
    "plain": _objects("a", "b", "", " pad "),
    "nulls": _objects("a", None, "c", float("nan"), ""),
    "quotes and lines": _objects('say "hi"', "x,y", "two\nlines", "tab\there"),
    "unicode": _objects("é", "€", "😀", "日本"),
    "numpy str": np.array(["r1", "r22", "r333"]),
    "many": _objects(*(f"id{i:05d}" if i % 7 else None for i in range(20_000))),
    "separators": _objects("a\x1fb", "c\x00d", "\x1f", "e"),
    # pa.array's: other objects, no text, no rows
    "mixed": _objects("a", 1, 2.5),
    "only nulls": _objects(None, None),
    "empty": _objects(),
}


@pytest.mark.parametrize("name", sorted(TEXT_COLUMNS))
def test_text_columns_are_written_as_pa_array_makes_them(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """Text columns become Arrow without pa.array while pandas is not imported (which
    pa.array imports: issue 23; here it is, so the test forces the road): the same type,
    values and nulls (None and NaN) as pa.array(from_pandas=True), mixed objects as before."""
    monkeypatch.setattr(writers, "pandas_free", lambda cells: True)
    column = TEXT_COLUMNS[name]
    built = tables.text_array(column)
    if name in ("mixed", "only nulls", "empty"):
        assert built is None  # left to pa.array
    else:
        assert built is not None
        built.validate(full=True)
        assert built.equals(pa.array(column, from_pandas=column.dtype == object))
    got = _to_arrow({"t": column}).column("t")
    monkeypatch.setattr(writers, "pandas_free", lambda cells: False)
    assert got.equals(_to_arrow({"t": column}).column("t"))


def test_text_that_is_not_utf8_is_left_to_pa_array() -> None:
    # a lone surrogate has no UTF-8 encoding: pa.array's to refuse, as it always did
    for column in (_objects("a", "\ud800"), _objects(None, "\udfff")):
        assert tables.text_array(column) is None


def test_masked_numbers_are_nulls_without_pa_array() -> None:
    # predict --missing keep: a masked prediction is a null, the others their values
    values = np.ma.masked_invalid(np.array([1.5, np.nan, -0.0, np.nan, 7.0] * 3))
    got = _to_arrow({"y": values}).column("y").combine_chunks()
    got.validate(full=True)
    assert got.equals(pa.array(np.asarray(values), mask=np.ma.getmaskarray(values)))
    assert got.null_count == 6


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_text_columns_are_read_as_to_numpy_reads_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, suffix: str
) -> None:
    """Text, boolean and all-empty columns become NumPy objects without to_numpy while pandas
    is not imported (it imports pandas: issue 23): the same objects (str, bool, None)."""
    columns = {
        "id": _objects("a", None, "é", 'x,"y"', ""),
        "flag": _objects(True, False, None, True, False),
        "when": _objects("2020-01-02", None, "2021-12-31", "1999-01-01", "2000-02-29"),
        "x": np.array([1.0, 2.0, 3.0, 4.0, 5.0]),
    }
    path = tmp_path / f"t{suffix}"
    arrow = pa.table({name: pa.array(values, from_pandas=True) for name, values in columns.items()})
    arrow = arrow.set_column(2, "when", arrow.column("when").cast(pa.date32()))
    arrow = arrow.append_column("none", pa.nulls(5))
    if suffix == ".parquet":
        pq.write_table(arrow, path)
    else:
        pyarrow.csv.write_csv(arrow, path)
    monkeypatch.setattr(tables, "pandas_free", lambda cells: False)
    want = read_table(path)
    monkeypatch.setattr(tables, "pandas_free", lambda cells: True)
    got = read_table(path)
    assert got.types == want.types
    for name, values in want.columns.items():
        assert got.columns[name].dtype == values.dtype, name
        assert [type(v) for v in got.columns[name]] == [type(v) for v in values], name
        assert got.columns[name].tolist() == values.tolist(), name


def test_numbers_with_missing_values_are_read_as_to_numpy_reads_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # NaN where a value is missing, from the buffers (to_numpy imports pandas: issue 23);
    # chunks, a sliced chunk (an offset) and integers cast to float
    first = pa.array([1.5, None, -0.0, 4.0, None, 6.0])
    column = pa.chunked_array([first.slice(1), pa.array([7.0, 8.0]), pa.array([None, 1e300])])
    integers = pa.chunked_array([pa.array([1, None, 3]), pa.array([2**53 + 1, None])])
    monkeypatch.setattr(tables, "pandas_free", lambda cells: False)
    want = [tables.numbers_to_numpy(c, pa.float64(), safe=False) for c in (column, integers)]
    monkeypatch.setattr(tables, "pandas_free", lambda cells: True)
    got = [tables.numbers_to_numpy(c, pa.float64(), safe=False) for c in (column, integers)]
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)
        assert np.signbit(g).tolist() == np.signbit(w).tolist() and g.flags.writeable


def test_pyarrows_conversions_past_the_pandas_free_size() -> None:
    assert not tables.pandas_free(tables.PANDAS_FREE_CELLS + 1)  # the import pays for itself
    assert tables.pandas_free(tables.PANDAS_FREE_CELLS) == ("pandas" not in sys.modules)


def test_write_csv_is_unquoted_when_nothing_needs_quotes(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    write_table(path, {"id": np.array(["r1", "r2"], dtype=object), "y": [0.5, 2.0]})
    assert path.read_text() == "id,y\nr1,0.5\nr2,2\n"


@pytest.mark.parametrize("name", ["out.tsv", "out.parquet", "out.pq", "out.csv.gz", "out.tsv.gz"])
def test_write_other_formats_round_trip(tmp_path: Path, name: str) -> None:
    columns = {"id": np.array(["a", "b\tc"], dtype=object), "y": np.array([0.1, 2.0])}
    write_table(tmp_path / name, columns)
    back = read_table(tmp_path / name)
    assert back.columns["id"].tolist() == ["a", "b\tc"]
    np.testing.assert_array_equal(back.columns["y"], columns["y"])


def test_write_replaces_existing_file(tmp_path: Path) -> None:
    path = make(tmp_path, "out.csv", "old\n")
    write_table(path, {"y": [1.0]})
    assert path.read_text() == "y\n1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_write_into_missing_directory(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "out.csv"
    with data_error() as exc:
        write_table(path, {"y": [1.0]})
    assert one_line(exc) == (
        f"{path}: cannot write: directory '{path.parent}' does not exist; create it first"
    )


def test_write_unsupported_extension(tmp_path: Path) -> None:
    with data_error(r"out\.xlsx: unsupported output file type"):
        write_table(tmp_path / "out.xlsx", {"y": [1.0]})
    assert list(tmp_path.iterdir()) == []


def test_write_to_a_directory(tmp_path: Path) -> None:
    (tmp_path / "d.csv").mkdir()
    with data_error(r"d\.csv: is a directory"):
        write_table(tmp_path / "d.csv", {"y": [1.0]})


def test_write_checks_columns(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="same length"):
        write_table(tmp_path / "o.csv", {"a": [1.0], "b": [1.0, 2.0]})
    with pytest.raises(ValidationError, match="1-D"):
        write_table(tmp_path / "o.csv", {"a": np.zeros((2, 2))})
    assert list(tmp_path.iterdir()) == []


def test_failed_write_leaves_nothing_and_keeps_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = make(tmp_path, "out.csv", "old\n")

    def failing_write_csv(table: Any, sink: Any, **kwargs: Any) -> None:
        sink.write(b"partial,data\n")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pyarrow.csv, "write_csv", failing_write_csv)
    with data_error(r"out\.csv: cannot write \(No space left on device\)") as exc:
        write_table(old, {"y": [1.0, 2.0]})
    one_line(exc)
    assert old.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]
    with data_error():
        write_table(tmp_path / "new.csv", {"y": [1.0]})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_atomic_write_removes_temp_on_any_exception(tmp_path: Path) -> None:
    def boom(fh: Any) -> None:
        fh.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "f.bin", boom)
    assert list(tmp_path.iterdir()) == []
    atomic_write(tmp_path / "f.bin", lambda fh: fh.write(b"whole"))
    assert (tmp_path / "f.bin").read_bytes() == b"whole"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_atomic_write_lives_in_its_own_module() -> None:
    assert gradfit.data.atomic_write is gradfit.atomic.atomic_write
    assert "atomic_write" in gradfit.data.__all__
    assert "left_out_columns" in gradfit.data.__all__


def test_atomic_write_error_class(tmp_path: Path) -> None:
    class OwnError(GradfitError):
        pass

    with pytest.raises(OwnError, match="does not exist"):
        atomic_write(tmp_path / "missing" / "f", lambda fh: None, error=OwnError)


def test_table_to_csv_text() -> None:
    text = table_to_csv_text({"id": np.array(["r,1", "r2"], dtype=object), "a b": [1.5, -2.0]})
    assert text == 'id,a b\n"r,1",1.5\n"r2",-2\n'
    assert table_to_csv_text({"x,1": [1.0]}, delimiter="\t") == "x,1\n1\n"
    assert table_to_csv_text({"x,1": [1.0]}) == '"x,1"\n1\n'


def test_messages_never_contain_newlines_for_odd_names(tmp_path: Path) -> None:
    table = crops_table(tmp_path, '"a\nb",y\n1,2\n')
    with data_error() as exc:
        select(table, ["nope"])
    assert re.search(r"'a\\nb'", one_line(exc))


def test_default_features_refuse_a_numeric_column_with_a_typo(tmp_path: Path) -> None:
    # A column of numbers with one typo must not be silently dropped from the default features.
    path = tmp_path / "typo.csv"
    path.write_text("id,a,b,y\nr1,1,2,3\nr2,2,x,4\nr3,3,4,5\n")
    with pytest.raises(DataError, match=r"column 'b', row 2: 'x' is not a number"):
        select(read_table(path), ["y"])
    # An identifier column of text is still left out quietly.
    path.write_text("id,a,b,y\nr1,1,2,3\nr2,2,3,4\nr3,3,4,5\n")
    assert select(read_table(path), ["y"])[2] == ("a", "b")


def test_only_feature_with_a_typo_names_the_cell_not_no_features_left(tmp_path: Path) -> None:
    # The only candidate feature is text because of one typo: name that cell.
    table = crops_table(tmp_path, "temp,apples\n1,2\nabc,3\n3,5\n")
    with data_error() as exc:
        select(table, ["apples"])
    assert one_line(exc) == (
        f"{table.source}: column 'temp', row 2: 'abc' is not a number; fix or remove that row"
    )


# ---------------------------------------------------------------------------------------------
# integers and identifiers are kept exact

BIG = 2**53 + 1  # 9007199254740993: the nearest float64 is 9007199254740992


def test_integer_columns_are_exact_int64_and_features_float64(tmp_path: Path) -> None:
    table = crops_table(tmp_path, f"id,x,y\n{BIG},1.5,2\n-7,2.5,4\n3,3.5,7\n")
    assert table.columns["id"].dtype == np.int64
    assert table.columns["id"].tolist() == [BIG, -7, 3]
    assert table.numeric_columns == ("id", "x", "y")
    X, Y, names, _ = select(table, ["y"], ["id", "x"])
    assert X.dtype == np.float64 and Y.dtype == np.float64 and names == ("id", "x")
    np.testing.assert_array_equal(Y[:, 0], [2.0, 4.0, 7.0])
    assert feature_matrix(table, ["y"]).dtype == np.float64
    out = tmp_path / "out.csv"
    write_table(out, {"id": table.columns["id"]})
    assert out.read_text() == f"id\n{BIG}\n-7\n3\n"


def test_parquet_integers_are_exact(tmp_path: Path) -> None:
    arrow = pa.table(
        {
            "id": pa.array([BIG, 2], type=pa.int64()),
            "u": pa.array([2**64 - 1, 0], type=pa.uint64()),
            "small": pa.array([1, 2], type=pa.int16()),
            "gap": pa.array([BIG, None], type=pa.int64()),
        }
    )
    pq.write_table(arrow, tmp_path / "d.parquet")
    table = read_table(tmp_path / "d.parquet")
    assert table.columns["id"].dtype == np.int64 and table.columns["id"].tolist() == [BIG, 2]
    assert table.columns["u"].dtype == np.uint64 and table.columns["u"][0] == 2**64 - 1
    assert table.columns["small"].dtype == np.int64
    # With a missing cell the column is float64 (NaN marks the gap), as before.
    assert table.columns["gap"].dtype == np.float64 and np.isnan(table.columns["gap"][1])
    write_table(tmp_path / "out.parquet", {"id": table.columns["id"]})
    assert pq.read_table(tmp_path / "out.parquet").column("id").to_pylist() == [BIG, 2]


def test_text_columns_are_kept_as_written(tmp_path: Path) -> None:
    path = make(tmp_path, "d.csv", f"code,id,x,name,y\n00123,{BIG},1.50,a,1\n7,2,2,b,2\n")
    table = read_table(path, text_columns=["code", "id", "x", "name", "absent"])
    assert table.columns["code"].tolist() == ["00123", "7"]  # leading zeros kept
    assert table.columns["x"].tolist() == ["1.50", "2"]  # not 1.5
    assert table.columns["id"].dtype == np.int64  # plain integers: int64, exact
    assert table.columns["id"].tolist() == [BIG, 2]
    assert table.columns["name"].tolist() == ["a", "b"]
    assert table.types["code"] == "string" and table.types["id"] == "int64"
    # Text columns still serve as features when named.
    np.testing.assert_array_equal(feature_matrix(table, ["code", "x"]), [[123, 1.5], [7, 2]])
    assert (
        table_to_csv_text(table.columns) == f"code,id,x,name,y\n00123,{BIG},1.50,a,1\n7,2,2,b,2\n"
    )
    # Without text_columns pyarrow's inference drops the zeros.
    assert read_table(path).columns["code"].tolist() == [123, 7]


# ---------------------------------------------------------------------------------------------
# writing through links and into pipes


def test_write_through_a_symlink_keeps_the_link(tmp_path: Path) -> None:
    real = make(tmp_path, "real.csv", "old\n")
    (tmp_path / "sub").mkdir()
    link = tmp_path / "sub" / "link.csv"
    link.symlink_to(real)
    write_table(link, {"y": [1.0, 2.5]})
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert real.read_text() == "y\n1\n2.5\n"
    # The temporary file was made beside the real file, and removed.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["real.csv", "sub"]
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["link.csv"]
    # A dangling link: the file it names is created.
    dangling = tmp_path / "sub" / "dangling.csv"
    dangling.symlink_to(tmp_path / "new.csv")
    write_table(dangling, {"y": [3.0]})
    assert dangling.is_symlink() and (tmp_path / "new.csv").read_text() == "y\n3\n"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_write_into_a_fifo_writes_through_it(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    received: list[bytes] = []

    def reader() -> None:
        with open(fifo, "rb") as fh:
            received.append(fh.read())

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    write_table(fifo, {"id": np.array(["r1", "r2"], dtype=object), "y": [0.5, 2.0]})
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert received == [b"id,y\nr1,0.5\nr2,2\n"]
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)  # still a pipe, not replaced by a file
    assert [p.name for p in tmp_path.iterdir()] == ["pipe.csv"]
