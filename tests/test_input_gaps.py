"""``gradfit fit`` on input that is not a UTF-8 CSV file, in a real process.

Binary data, a file that turns into garbage after a valid header, control characters inside a
cell: each must end in exit code 2 and one printable ``gradfit: error:`` line on stderr. No
traceback, no ``Exception ignored in ...`` report from deep inside the CSV reader, no raw bytes
of the file echoed to the terminal (an escape sequence would reach it), and no model file.
"""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

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
