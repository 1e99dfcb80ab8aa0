"""Forged terminal output: user-supplied text (column names from a CSV header, cell values,
paths, names and settings stored in a model file) never reaches the terminal raw. Escape
sequences that would clear the screen or set the window title, bells, C1 controls, bidi
overrides and line separators are shown as ``repr``-style escapes by one function,
:func:`gradfit.cli.render.escape`, and every message stays on one line."""

from __future__ import annotations

import csv
import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gradfit.cli import main
from gradfit.cli.render import escape, escape_report, table
from gradfit.persistence import load_model, save_model

# Any raw control character a terminal could act on: C0 but newline, DEL, C1 (the 8-bit CSI
# \x9b included), bidi embeddings/overrides/isolates, line and paragraph separators.
RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
# As above, but a tab is allowed: R's summary layout has one ("Multiple R-squared: …,\t…").
RAW_CONTROL_BUT_TAB = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]"
)

CLEAR = "a\x1b[2J"  # clears the screen
TITLE = "b\x1b]0;pwned\x07"  # sets the window title (OSC ... BEL)
NEWLINE = "c\nforged: line"  # a quoted newline in the header
BIDI = "d\u202eevil"  # right-to-left override
CSI = "e\x9b31m"  # the 8-bit CSI
TARGET = "y\u2028z\x1b[1m"  # a line separator and bold
NAMES = (CLEAR, TITLE, NEWLINE, BIDI, CSI, TARGET)


def rows(n: int = 40) -> list[list[str]]:
    out = []
    for i in range(n):
        xs = [((i * 7 + j * 3) % 11) / 10 + j for j in range(5)]
        out.append([f"{x:.3f}" for x in xs] + [f"{sum(xs) + (i % 3) * 0.01:.4f}"])
    return out


def write_csv(path: Path, header: tuple[str, ...], body: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerows([list(header), *body])
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        assert isinstance(exc.code, int)
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_clean(text: str, *, tab: bool = False) -> None:
    pattern = RAW_CONTROL_BUT_TAB if tab else RAW_CONTROL
    found = pattern.search(text)
    assert found is None, f"raw {found.group()!r} in {text!r}"


def assert_messages(err: str) -> None:
    """stderr: clean, and every line is one whole message of its own."""
    assert_clean(err)
    assert "Traceback" not in err
    for line in err.splitlines():
        assert line.startswith("gradfit: "), err


@pytest.fixture()
def data(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "hostile.csv", NAMES, rows())


@pytest.fixture()
def model(tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    out = tmp_path / "m.safetensors"
    code, _, err = run(capsys, "fit", data, "--target", TARGET, "--solver", "lstsq", "--out", out)
    assert code == 0, err
    return out


# ----------------------------------------------------------------------------- the function


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain text, ünïcödé ✓", "plain text, ünïcödé ✓"),
        ("\x1b[2J", "\\x1b[2J"),
        ("a\nb\r\tc", "a\\nb\\r\\tc"),
        ("\x00\x07\x7f", "\\x00\\x07\\x7f"),
        ("\x9b1m\x85", "\\x9b1m\\x85"),
        ("\u202e\u2066\u2067\u2068\u2069\u200f", "\\u202e\\u2066\\u2067\\u2068\\u2069\\u200f"),
        ("\u2028\u2029", "\\u2028\\u2029"),
        ("bad\udcffbyte", "bad\\udcffbyte"),  # an undecodable byte of a file name
    ],
)
def test_escape_shows_every_control_character(raw: str, shown: str) -> None:
    assert escape(raw) == shown
    assert escape(shown) == shown  # idempotent: its output is printable
    assert escape(raw).isprintable()


def test_escape_keeps_only_what_it_is_told_to_keep() -> None:
    assert escape("a\nb\tc\x1b", keep="\n\t") == "a\nb\tc\\x1b"
    assert escape(ValueError("x\ny")) == "x\\ny"  # any object, by str()


def test_escape_report_escapes_names_so_they_cannot_forge_lines() -> None:
    report = f"Response {TARGET}:\n\n{NEWLINE}  1.0\nR:\t0.5"
    shown = escape_report(report, [NEWLINE, TARGET, "\n", ""])  # blank names are not looked for
    assert shown.splitlines() == [
        f"Response {escape(TARGET)}:",
        "",
        f"{escape(NEWLINE)}  1.0",
        "R:\t0.5",
    ]


def test_table_escapes_headers_and_cells() -> None:
    text = table(["target", CLEAR], [[NEWLINE, "1"]])
    assert_clean(text)
    assert len(text.splitlines()) == 3


# ----------------------------------------------------------------------------- commands


def test_fit_text_output_is_escaped(capsys: pytest.CaptureFixture[str], data: Path) -> None:
    out = data.parent / "m.safetensors"
    code, stdout, err = run(
        capsys, "fit", data, "--target", TARGET, "--solver", "lstsq", "--out", out
    )
    assert code == 0, err
    assert_clean(stdout, tab=True)
    assert_messages(err)
    for name in NAMES:
        assert escape(name) in stdout  # shown, escaped, in the coefficient table
    # Each coefficient row of the summary is one line: the newline did not forge one.
    assert not any(line.startswith("forged: line") for line in stdout.splitlines())


@pytest.mark.parametrize("solver", ["gd", "sgd"])
def test_fit_notes_and_warnings_are_escaped(
    capsys: pytest.CaptureFixture[str], data: Path, solver: str
) -> None:
    # A text column with a hostile name is left out (a note naming it); too few epochs to
    # converge (a warning).
    body = [[*r, "x"] for r in rows()]
    path = write_csv(data.parent / "text.csv", (*NAMES, "f\x1b[5mtext\x07"), body)
    code, stdout, err = run(
        capsys, "fit", path, "--target", TARGET, "--solver", solver, "--epochs", "1",
        "--tol", "0", "--out", data.parent / "m.safetensors",
    )  # fmt: skip
    assert code == 0, err
    assert "note: 1 column(s) left out" in err and "\\x1b[5mtext\\x07" in err
    assert_messages(err)
    assert_clean(stdout)


def test_fit_json_escapes_everything(capsys: pytest.CaptureFixture[str], data: Path) -> None:
    code, stdout, err = run(
        capsys, "fit", data, "--target", TARGET, "--solver", "lstsq", "--json",
        "--out", data.parent / "m.safetensors",
    )  # fmt: skip
    assert code == 0, err
    assert stdout.isascii()  # bidi and separators too, as \u escapes
    assert_clean(stdout)
    assert json.loads(stdout)["r2"].keys() == {TARGET}  # the names themselves, exact


@pytest.mark.parametrize("stream", ["--no-stream", "--stream"])
def test_bad_cell_error_is_one_escaped_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, stream: str
) -> None:
    body = rows()
    body[7][1] = "1.5\x1b[31m\u202e"
    # The streaming reader is given a header without a line break inside a name.
    header = tuple(n.replace("\n", " ") for n in NAMES) if stream == "--stream" else NAMES
    path = write_csv(tmp_path / "cell.csv", header, body)
    target = header[-1]
    code, stdout, err = run(
        capsys, "fit", path, "--target", target, stream, "--out", tmp_path / "m.safetensors"
    )
    assert (code, stdout) == (2, "")
    assert_messages(err)
    assert err.count("\n") == 1 and "1.5\\x1b[31m\\u202e" in err, err
    assert not (tmp_path / "m.safetensors").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["--target", "nope\x1b[2J"],  # an unknown target: the header's names listed
        ["--target", TARGET, "--features", "nope\u202e"],
        ["--target", TARGET, "--plot", "p\x1b[2J.bmp"],
        ["--target", TARGET, "--solver", "\x1b[2J"],  # a usage error from argparse
        ["--target", TARGET, "--epochs", "\x1b]0;t\x07"],
        ["--target", TARGET, "--bogus\x1b[2J"],
    ],
)
def test_errors_naming_hostile_values_are_one_escaped_line(
    capsys: pytest.CaptureFixture[str], data: Path, argv: list[str]
) -> None:
    code, stdout, err = run(capsys, "fit", data, *argv, "--out", data.parent / "m.safetensors")
    assert (code, stdout) == (2, "")
    assert_messages(err)
    assert err.count("\n") == 1, err


def test_hostile_paths_are_escaped(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for argv in (
        ["fit", tmp_path / "no\x1b[2Jfile.csv", "--target", "y", "--out", tmp_path / "m"],
        ["info", tmp_path / "no\nsuch\u202emodel"],
        ["predict", tmp_path / "m\udcff.safetensors", tmp_path / "d.csv"],
    ):
        code, stdout, err = run(capsys, *argv)
        assert (code, stdout) == (2, "")
        assert_messages(err)
        assert err.count("\n") == 1, err


def test_info_is_escaped(capsys: pytest.CaptureFixture[str], model: Path) -> None:
    code, stdout, err = run(capsys, "info", model)
    assert code == 0, err
    assert_clean(stdout, tab=True)
    assert err == ""
    assert f"features used (5): {', '.join(escape(n) for n in NAMES[:-1])}" in stdout
    assert not any(line.startswith("forged: line") for line in stdout.splitlines())
    code, stdout, _ = run(capsys, "info", model, "--json")
    assert code == 0 and stdout.isascii()
    assert json.loads(stdout)["features"] == list(NAMES[:-1])


def test_info_escapes_hand_written_metadata(
    capsys: pytest.CaptureFixture[str], model: Path
) -> None:
    """A model file written through the library with hostile solver name, settings and
    stored summary text (not from gradfit fit): info shows them escaped."""
    saved = load_model(model)
    assert saved.inference is not None
    hostile = dataclasses.replace(
        saved,
        solver="lstsq\x1b]0;title\x07",
        hyperparameters={"note\x1b[2J": "x\ny\u202e", "data": "/tmp/\x9bfile"},
        inference={**saved.inference, "text": saved.inference["text"] + "\n\x1b[2J\x07end\x85"},
    )
    path = model.parent / "hostile.safetensors"
    save_model(path, hostile)
    code, stdout, err = run(capsys, "info", path)
    assert code == 0, err
    assert_clean(stdout, tab=True)
    assert "solver: lstsq\\x1b]0;title\\x07;" in stdout
    assert "note\\x1b[2J=x\\ny\\u202e" in stdout and "/tmp/\\x9bfile" in stdout
    assert "\\x1b[2J\\x07end\\x85" in stdout


def test_evaluate_is_escaped(capsys: pytest.CaptureFixture[str], model: Path, data: Path) -> None:
    for stream in ("--no-stream", "--stream"):
        code, stdout, err = run(capsys, "evaluate", model, data, stream)
        if stream == "--stream" and code == 2:
            # The streaming reader cannot take a line break inside a header name (a separate
            # fault): whatever it says is one escaped line.
            assert_messages(err)
            continue
        assert code == 0, err
        assert_clean(stdout)
        assert escape(TARGET) in stdout and err == ""


def test_predict_keep_csv_is_data_and_messages_are_escaped(
    capsys: pytest.CaptureFixture[str], model: Path, data: Path
) -> None:
    # CSV to stdout is data, not terminal text: the kept column keeps its exact name and
    # values (a newline inside a name is quoted, as CSV writes it).
    code, stdout, err = run(capsys, "predict", model, data, "--keep", CLEAR)
    assert code == 0 and err == "", err
    header = next(csv.reader([stdout.split("\n", 1)[0]]))
    assert header == [CLEAR, TARGET]
    # A missing --keep column: the error lists the hostile names, escaped, on one line.
    code, stdout, err = run(capsys, "predict", model, data, "--keep", "zz\x1b[2J")
    assert (code, stdout) == (2, "")
    assert_messages(err)
    assert err.count("\n") == 1


@pytest.mark.slow
def test_a_real_terminal_gets_no_raw_control_bytes(data: Path) -> None:
    """As a subprocess: the bytes written to stdout and stderr, not Python's strings."""
    out = data.parent / "m.safetensors"
    for argv in (
        ["fit", data, "--target", TARGET, "--solver", "lstsq", "--out", out],
        ["info", out],
        ["fit", data, "--target", "nope\x1b[2J", "--out", out],
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "gradfit", *map(str, argv)], capture_output=True, timeout=120
        )
        assert proc.returncode in (0, 2), proc.stderr
        for stream in (proc.stdout, proc.stderr):
            text = stream.decode("utf-8")
            assert_clean(text, tab=True)
        assert b"Traceback" not in proc.stderr
