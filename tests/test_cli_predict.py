"""`gradfit predict`: destinations (CSV, TSV, Parquet, stdout), Parquet input, `--keep`
copying identifiers exactly, and bad prediction inputs (exit 2, one line, nothing written)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from cli_helpers import TARGETS, fit_model, new_data, ok, read_csv_floats, user_error, write_csv

from gradfit.persistence import load_model


@pytest.mark.parametrize("destination", ["preds.csv", "preds.tsv", "preds.parquet", "-"])
def test_predict_destinations(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, train_csv: Path, destination: str
) -> None:
    model_path = fit_model(capsys, train_csv, tmp_path / "m.safetensors")
    X, columns = new_data()
    data = write_csv(tmp_path / "new.csv", columns)
    expected = load_model(model_path).predict(torch.from_numpy(X)).numpy()
    argv: list[str | Path] = ["predict", model_path, data, "--keep", "id", "--keep", "note"]
    if destination == "-":
        run = ok(capsys, *argv)
        header, got = read_csv_floats(run.out)
        values = {name: np.array([float(v) for v in got[name]]) for name in TARGETS}
        ids, notes = got["id"], got["note"]
    else:
        target = tmp_path / destination
        run = ok(capsys, *argv, "--out", target)
        assert run.out == "" and run.err == ""
        if destination.endswith(".parquet"):
            table = pq.read_table(target)
            header = table.column_names
            values = {name: table.column(name).to_numpy() for name in TARGETS}
            ids, notes = table.column("id").to_pylist(), table.column("note").to_pylist()
        else:
            text = target.read_text(encoding="utf-8").replace("\t", ",")
            header, got = read_csv_floats(text)
            values = {name: np.array([float(v) for v in got[name]]) for name in TARGETS}
            ids, notes = got["id"], got["note"]
    assert header == ["id", "note", *TARGETS]
    assert ids == columns["id"] and notes == columns["note"]
    for j, name in enumerate(TARGETS):
        np.testing.assert_array_equal(values[name], expected[:, j])
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_predict_from_parquet(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, train_csv: Path
) -> None:
    model_path = fit_model(capsys, train_csv, tmp_path / "m.safetensors")
    X, columns = new_data()
    data = tmp_path / "new.parquet"
    pq.write_table(pa.table(columns), data)
    _, got = read_csv_floats(ok(capsys, "predict", model_path, data).out)
    expected = load_model(model_path).predict(torch.from_numpy(X)).numpy()
    np.testing.assert_array_equal(np.array([float(v) for v in got["oranges"]]), expected[:, 1])


# ---------------------------------------------------------------------------------------------
# predict --keep copies identifiers exactly


BIG_ID = 2**53 + 1  # 9007199254740993; as a float64 it would be 9007199254740992


def keep_inputs(tmp_path: Path, form: str) -> tuple[Path, list[int], list[str]]:
    _, columns = new_data(4)
    ids = [BIG_ID, 2, -3, 2**63 - 1]
    codes = ["00123", "007", "1", "0"]
    columns = {**columns, "id": ids, "code": codes}
    if form == "parquet":
        path = tmp_path / "new.parquet"
        pq.write_table(pa.table(columns), path)
    else:
        lines = [",".join(columns)]
        lines += [",".join(str(columns[c][i]) for c in columns) for i in range(4)]
        path = tmp_path / "new.csv"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, ids, codes


@pytest.mark.parametrize("source", ["csv", "parquet"])
@pytest.mark.parametrize("destination", ["preds.csv", "preds.parquet", "-"])
def test_predict_keep_copies_identifiers_exactly(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    train_csv: Path,
    source: str,
    destination: str,
) -> None:
    model_path = fit_model(capsys, train_csv, tmp_path / "m.safetensors", "--solver", "lstsq")
    data, ids, codes = keep_inputs(tmp_path, source)
    argv: list[str | Path] = ["predict", model_path, data, "--keep", "id,code", "--keep", "id"]
    if destination == "-":
        _, got = read_csv_floats(ok(capsys, *argv).out)
        kept_ids, kept_codes = got["id"], got["code"]
    else:
        out = tmp_path / destination
        ok(capsys, *argv, "--out", out)
        if destination.endswith(".parquet"):
            arrow = pq.read_table(out)
            assert arrow.column_names == ["id", "code", *TARGETS]
            assert arrow.schema.field("id").type == pa.int64()  # still an integer column
            kept_ids = [str(v) for v in arrow.column("id").to_pylist()]
            kept_codes = arrow.column("code").to_pylist()
        else:
            _, got = read_csv_floats(out.read_text(encoding="utf-8"))
            kept_ids, kept_codes = got["id"], got["code"]
    assert kept_ids == [str(v) for v in ids]  # 9007199254740993, not 9.007199254740992e+15
    assert kept_codes == codes  # from a CSV file: the text as written, leading zeros included


# ---------------------------------------------------------------------------------------------
# bad prediction inputs


def test_predict_missing_feature_column(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, out_dir: Path, train_csv: Path
) -> None:
    model_path = fit_model(capsys, train_csv, tmp_path / "m.safetensors")
    _, columns = new_data()
    del columns["rainfall"]
    data = write_csv(tmp_path / "new.csv", columns)
    user_error(
        capsys,
        out_dir,
        "predict",
        model_path,
        data,
        "--out",
        out_dir / "p.csv",
        says=(
            f"{data}: missing feature column(s) 'rainfall' that the model needs",
            "available columns: 'humidity', 'note', 'id', 'temp', 'unused'",
        ),
    )


@pytest.mark.parametrize(
    ("edit", "argv", "says"),
    [
        (
            lambda c: c.update(temp=["73", "oops", *map(repr, c["temp"][2:])]),
            [],
            ("column 'temp', row 2: 'oops' is not a number",),
        ),
        (
            lambda c: c.update(temp=["", *map(repr, c["temp"][1:])]),
            [],
            ("column 'temp', row 1: missing value",),
        ),
        (lambda c: None, ["--keep", "region"], ("--keep column 'region' not found",)),
        (
            lambda c: c.update(apples=c["temp"]),
            ["--keep", "apples"],
            ("--keep column 'apples' has the name of a predicted column",),
        ),
        (lambda c: None, ["--out", "p.xlsx"], ("p.xlsx: unsupported output file type",)),
    ],
    ids=["non-numeric", "empty-cell", "unknown-keep", "keep-is-target", "bad-extension"],
)
def test_predict_bad_input(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    out_dir: Path,
    train_csv: Path,
    edit: Callable[[dict[str, Any]], None],
    argv: list[str],
    says: tuple[str, ...],
) -> None:
    model_path = fit_model(capsys, train_csv, tmp_path / "m.safetensors")
    _, columns = new_data()
    edit(columns)
    data = write_csv(tmp_path / "new.csv", columns)
    if "--out" in argv:
        argv = ["--out", str(out_dir / argv[1])]
    else:
        argv = [*argv, "--out", str(out_dir / "p.csv")]
    user_error(capsys, out_dir, "predict", model_path, data, *argv, says=says)


@pytest.mark.parametrize("destination", ["-", "p.csv", "p.parquet"])
def test_interval_of_a_target_named_as_another_targets_bound_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, destination: str
) -> None:
    """Targets y and y_lower: with --interval, y's lower bound and the target y_lower would be
    one column y_lower (the bound was silently overwritten); refused, nothing written. Without
    --interval the two predictions are written as before."""
    data = tmp_path / "d.csv"
    data.write_text("x,y,y_lower\n1,2.5,1\n2,4.1,2.2\n3,6.2,2.9\n4,8.3,4.4\n5,9.9,5.1\n")
    model = tmp_path / "m.safetensors"
    ok(capsys, "fit", data, "--target", "y,y_lower", "--features", "x", "--solver", "lstsq",
       "--out", model)  # fmt: skip
    outputs = tmp_path / "out"
    outputs.mkdir()
    out = [] if destination == "-" else ["--out", outputs / destination]
    user_error(
        capsys, outputs, "predict", model, data, "--interval", "confidence", *out,
        says=("'y_lower'", "lower bound of target 'y'", "--interval"),
    )  # fmt: skip
    run = ok(capsys, "predict", model, data)
    assert run.out.splitlines()[0] == "y,y_lower"
