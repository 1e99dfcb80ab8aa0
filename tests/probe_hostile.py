"""A hostile user's probe of the command line and the library (not collected by pytest).

Run it by hand::

    PYTHONPATH=$PWD/src /work/main/.venv/bin/python tests/probe_hostile.py [-j 2] [-k PATTERN]

Each case runs in a fresh directory holding a few good files (a CSV, a Parquet file, model
files) plus whatever the case adds, with a 60 s timeout. A case fails when the command exits
other than 0 or 2 (or its expected signal code), hangs, prints a traceback or an internal error,
says more than one error line, prints a raw control character, changes an input file, leaves a
``.*.tmp`` file, leaves an output behind after failing, or grows past 4 GB resident.
Findings worth keeping become tests in ``tests/test_hostile_cases.py``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import gzip
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

PY = sys.executable
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
TIMEOUT = 60.0
MAX_RSS_KB = 4 * 1024 * 1024

Setup = Callable[[Path], None]


@dataclass
class Case:
    name: str
    argv: list[str | bytes]
    setup: Setup | None = None
    outputs: tuple[str, ...] = ()  # paths (relative) that the command may write
    codes: tuple[int, ...] = (0, 2)
    stdin: str | None = None  # relative file fed on stdin
    signal_after: tuple[float, int] | None = None
    library: bool = False  # argv[0] is python source run with the interpreter
    expect: int | None = None  # a required exit code


@dataclass
class Outcome:
    case: Case
    rc: int | None
    stdout: str
    stderr: str
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0


# ---------------------------------------------------------------- fixtures


def _base(root: Path) -> None:
    rows = ["x1,x2,y"]
    for i in range(40):
        x1 = i * 0.5
        x2 = (i * 7 % 11) * 0.3
        y = 2 * x1 - 3 * x2 + 1 + ((i * 13 % 5) - 2) * 0.01
        rows.append(f"{x1},{x2},{y:.6f}")
    (root / "good.csv").write_text("\n".join(rows) + "\n")
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    pq.write_table(pcsv.read_csv(root / "good.csv"), root / "good.parquet")
    env = dict(os.environ)
    for solver, name in (("lstsq", "model.safetensors"), ("gd", "gd.safetensors")):
        subprocess.run(
            [
                PY,
                "-m",
                "gradfit",
                "fit",
                "good.csv",
                "--target",
                "y",
                "--solver",
                solver,
                "--out",
                name,
                "--quiet",
            ],
            cwd=root,
            check=True,
            env=env,
            capture_output=True,
        )
    subprocess.run(
        [
            PY,
            "-m",
            "gradfit",
            "fit",
            "good.csv",
            "--target",
            "y",
            "--solver",
            "gd",
            "--epochs",
            "3",
            "--checkpoint",
            "ck.safetensors",
            "--out",
            "ckm.safetensors",
            "--quiet",
        ],
        cwd=root,
        check=True,
        env=env,
        capture_output=True,
    )
    os.remove(root / "ckm.safetensors")


def write(name: str, data: bytes | str) -> Setup:
    def setup(d: Path) -> None:
        p = d / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode() if isinstance(data, str) else data)

    return setup


def chain(*steps: Setup) -> Setup:
    def setup(d: Path) -> None:
        for s in steps:
            s(d)

    return setup


def parquet(name: str, make: Callable[[], object]) -> Setup:
    def setup(d: Path) -> None:
        import pyarrow.parquet as pq

        pq.write_table(make(), d / name)  # type: ignore[arg-type]

    return setup


def mutate_model(name: str, src: str, fn: Callable[[dict], dict]) -> Setup:
    """Rewrite a model's header JSON through fn."""

    def setup(d: Path) -> None:
        import json
        import struct

        raw = (d / src).read_bytes()
        (n,) = struct.unpack("<Q", raw[:8])
        head = json.loads(raw[8 : 8 + n])
        body = raw[8 + n :]
        head = fn(head)
        md = head.get("__metadata__")
        if isinstance(md, dict) and isinstance(md.get("gradfit"), str) and "gradfit_sha256" in md:
            # Seal the forged document again, so that its fields themselves are checked.
            from gradfit.tensorfile import _digest

            table = {
                k: [v["dtype"], v["shape"], v["data_offsets"]]
                for k, v in head.items()
                if k != "__metadata__"
            }
            md["gradfit_sha256"] = _digest(md["gradfit"], table, memoryview(body))
        text = json.dumps(head).encode()
        text += b" " * ((8 - len(text) % 8) % 8)
        (d / name).write_bytes(struct.pack("<Q", len(text)) + text + body)

    return setup


def meta(fn: Callable[[dict], None]) -> Callable[[dict], dict]:
    import json

    def outer(head: dict) -> dict:
        md = head["__metadata__"]
        key = "gradfit"
        doc = json.loads(md[key])
        fn(doc)
        md[key] = json.dumps(doc)
        return head

    return outer


def gf(*args: str | bytes) -> list[str | bytes]:
    return ["-m", "gradfit", *args]


# ---------------------------------------------------------------- cases


def cases() -> list[Case]:
    C: list[Case] = []
    add = C.append
    fit = ["fit", "good.csv", "--target", "y", "--quiet"]

    # -- outputs onto inputs, odd output paths
    add(Case("out=data", gf(*fit, "--out", "good.csv")))
    add(
        Case(
            "out=hardlink",
            gf(*fit, "--out", "hl.csv"),
            lambda d: os.link(d / "good.csv", d / "hl.csv"),
        )
    )
    add(
        Case(
            "out=./good.csv", gf(*fit, "--out", "./sub/../good.csv"), lambda d: (d / "sub").mkdir()
        )
    )
    add(
        Case(
            "data=/dev/stdin out=data",
            gf("fit", "/dev/stdin", "--target", "y", "--out", "good.csv", "--quiet"),
            stdin="good.csv",
        )
    )
    add(
        Case(
            "data=/proc/self/fd/0 out=data",
            gf("fit", "/proc/self/fd/0", "--target", "y", "--out", "good.csv", "--quiet"),
            stdin="good.csv",
        )
    )
    add(Case("out=/dev/stdout", gf(*fit, "--out", "/dev/stdout")))
    add(Case("out=/dev/null", gf(*fit, "--out", "/dev/null")))
    add(Case("out=/dev/full", gf(*fit, "--out", "/dev/full")))
    add(
        Case(
            "predict out=/dev/full",
            gf("predict", "model.safetensors", "good.csv", "--out", "/dev/full"),
        )
    )
    add(
        Case(
            "predict out=/dev/stdout",
            gf("predict", "model.safetensors", "good.csv", "--out", "/dev/stdout"),
        )
    )
    add(
        Case(
            "predict out=model",
            gf("predict", "model.safetensors", "good.csv", "--out", "model.safetensors"),
        )
    )
    add(
        Case(
            "predict out=data", gf("predict", "model.safetensors", "good.csv", "--out", "good.csv")
        )
    )
    add(
        Case(
            "predict stream out=data",
            gf("predict", "model.safetensors", "good.csv", "--out", "good.csv", "--stream"),
        )
    )
    add(
        Case(
            "predict out=data parquet",
            gf("predict", "model.safetensors", "good.parquet", "--out", "good.parquet"),
        )
    )
    add(
        Case(
            "predict glob matches out",
            gf("predict", "model.safetensors", "d/*.csv", "--out", "d/out.csv"),
            chain(write("d/a.csv", "x1,x2\n1,2\n"), write("d/out.csv", "x1,x2\n3,4\n")),
        )
    )
    add(
        Case(
            "predict glob will match out",
            gf("predict", "model.safetensors", "d/*.csv", "--out", "d/new.csv"),
            write("d/a.csv", "x1,x2\n1,2\n"),
            outputs=("d/new.csv",),
        )
    )
    add(
        Case(
            "fit dir out in dir",
            gf("fit", "d", "--target", "y", "--out", "d/m.csv", "--quiet"),
            chain(
                lambda d: (d / "d").mkdir(), lambda d: shutil.copy(d / "good.csv", d / "d/m.csv")
            ),
        )
    )
    add(Case("out parent is file", gf(*fit, "--out", "good.csv/m.safetensors")))
    add(Case("out missing dir", gf(*fit, "--out", "nodir/m.safetensors")))
    add(
        Case(
            "out is dir",
            gf(*fit, "--out", "."),
        )
    )
    add(Case("out empty", gf(*fit, "--out", "")))
    add(Case("out /proc", gf(*fit, "--out", "/proc/m.safetensors")))
    add(Case("out /sys", gf(*fit, "--out", "/sys/m.safetensors")))
    add(Case("out escape name", gf(*fit, "--out", "no\x1b[2J\ndir/m\u202e.safetensors")))
    add(Case("out nonutf8 name missing dir", gf(*fit, "--out", b"no\xff\xfe/m.safetensors")))
    add(
        Case(
            "out nonutf8 name ok",
            gf(*fit, "--out", b"m\xff.safetensors"),
            outputs=("m\udcff.safetensors",),
        )
    )
    add(Case("plot=out", gf(*fit, "--out", "m.safetensors", "--plot", "m.safetensors")))
    add(Case("plot=data", gf(*fit, "--out", "m.safetensors", "--plot", "good.csv")))
    add(Case("plot parent file", gf(*fit, "--out", "m.safetensors", "--plot", "good.csv/p.png")))
    add(Case("plot dev full", gf(*fit, "--out", "m.safetensors", "--plot", "/dev/full")))
    add(Case("checkpoint=data", gf(*fit, "--out", "m.safetensors", "--checkpoint", "good.csv")))
    add(Case("checkpoint=out", gf(*fit, "--out", "m.safetensors", "--checkpoint", "m.safetensors")))
    add(
        Case(
            "checkpoint=model file",
            gf(*fit, "--out", "m.safetensors", "--checkpoint", "model.safetensors"),
        )
    )
    add(
        Case(
            "checkpoint=plot",
            gf(*fit, "--out", "m.safetensors", "--checkpoint", "p.png", "--plot", "p.png"),
        )
    )
    add(
        Case(
            "checkpoint parent file",
            gf(*fit, "--out", "m.safetensors", "--checkpoint", "good.csv/ck"),
        )
    )
    add(
        Case("checkpoint dev null", gf(*fit, "--out", "m.safetensors", "--checkpoint", "/dev/null"))
    )
    add(
        Case(
            "checkpoint dev zero resume",
            gf(*fit, "--out", "m.safetensors", "--checkpoint", "/dev/zero", "--resume"),
        )
    )
    add(
        Case(
            "checkpoint scratch",
            gf(*fit, "--out", "m.safetensors", "--checkpoint", "c", "--solver", "scratch"),
        )
    )
    add(
        Case(
            "checkpoint lstsq",
            gf(*fit, "--out", "m.safetensors", "--checkpoint", "c", "--solver", "lstsq"),
        )
    )
    add(
        Case(
            "resume no checkpoint",
            gf(*fit, "--out", "m.safetensors", "--resume"),
            outputs=("m.safetensors",),
        )
    )
    add(
        Case(
            "resume other data",
            gf(
                "fit",
                "o.csv",
                "--target",
                "y",
                "--solver",
                "gd",
                "--epochs",
                "5",
                "--checkpoint",
                "ck.safetensors",
                "--resume",
                "--out",
                "m.safetensors",
                "--quiet",
            ),
            write("o.csv", "x1,x2,y\n1,2,3\n2,1,4\n3,3,1\n5,1,0\n"),
            outputs=("m.safetensors", "ck.safetensors"),
        )
    )
    add(
        Case(
            "resume other solver",
            gf(
                *fit,
                "--solver",
                "sgd",
                "--epochs",
                "5",
                "--checkpoint",
                "ck.safetensors",
                "--resume",
                "--out",
                "m.safetensors",
            ),
            outputs=("m.safetensors", "ck.safetensors"),
        )
    )
    add(
        Case(
            "resume truncated ck",
            gf(*fit, "--epochs", "5", "--checkpoint", "t.ck", "--resume", "--out", "m.safetensors"),
            lambda d: (d / "t.ck").write_bytes((d / "ck.safetensors").read_bytes()[:100]),
            outputs=("m.safetensors",),
        )
    )
    add(
        Case(
            "resume model as ck",
            gf(
                *fit,
                "--epochs",
                "5",
                "--checkpoint",
                "model.safetensors",
                "--resume",
                "--out",
                "m.safetensors",
            ),
        )
    )
    add(
        Case(
            "resume fewer epochs",
            gf(
                *fit,
                "--epochs",
                "1",
                "--checkpoint",
                "ck.safetensors",
                "--resume",
                "--out",
                "m.safetensors",
            ),
            outputs=("m.safetensors", "ck.safetensors"),
        )
    )

    # -- data file names and kinds
    add(
        Case(
            "data missing escape name",
            gf("fit", "no\x1b]0;pwn\x07\n.csv", "--target", "y", "--out", "m.safetensors"),
        )
    )
    add(
        Case(
            "data missing nonutf8",
            gf("fit", b"no\xff.csv", "--target", "y", "--out", "m.safetensors"),
        )
    )
    add(
        Case(
            "data nonutf8 bad content",
            gf("fit", b"b\xff\x1b.csv", "--target", "y", "--out", "m.safetensors"),
            write("b\udcff\x1b.csv", "x1,y\n1,a\x1b[31m\n"),
        )
    )
    add(
        Case(
            "data symlink loop",
            gf("fit", "loop.csv", "--target", "y", "--out", "m.safetensors"),
            lambda d: os.symlink("loop.csv", d / "loop.csv"),
        )
    )
    add(
        Case(
            "data dangling link",
            gf("fit", "dl.csv", "--target", "y", "--out", "m.safetensors"),
            lambda d: os.symlink("nothere.csv", d / "dl.csv"),
        )
    )
    add(
        Case(
            "data empty dir",
            gf("fit", "e", "--target", "y", "--out", "m.safetensors"),
            lambda d: (d / "e").mkdir(),
        )
    )
    add(
        Case(
            "data dir of dirs",
            gf("fit", "e", "--target", "y", "--out", "m.safetensors"),
            lambda d: (d / "e/f").mkdir(parents=True),
        )
    )
    add(
        Case(
            "data dir with loop",
            gf("fit", "e", "--target", "y", "--out", "m.safetensors", "--quiet"),
            chain(
                lambda d: (d / "e").mkdir(),
                lambda d: shutil.copy(d / "good.csv", d / "e/a.csv"),
                lambda d: os.symlink("l.csv", d / "e/l.csv"),
            ),
            outputs=("m.safetensors",),
        )
    )
    add(
        Case(
            "data dir mixed columns",
            gf("fit", "e", "--target", "y", "--out", "m.safetensors", "--quiet"),
            chain(
                lambda d: (d / "e").mkdir(),
                lambda d: shutil.copy(d / "good.csv", d / "e/a.csv"),
                write("e/b.csv", "x1,z,y\n1,2,3\n"),
            ),
        )
    )
    add(
        Case(
            "data dir csv+parquet",
            gf("fit", "e", "--target", "y", "--out", "m.safetensors", "--quiet"),
            chain(
                lambda d: (d / "e").mkdir(),
                lambda d: shutil.copy(d / "good.csv", d / "e/a.csv"),
                lambda d: shutil.copy(d / "good.parquet", d / "e/b.parquet"),
            ),
            outputs=("m.safetensors",),
        )
    )
    add(Case("glob nothing", gf("fit", "zz*.csv", "--target", "y", "--out", "m.safetensors")))
    add(Case("glob matches model", gf("predict", "model.safetensors", "*.safetensors")))
    add(Case("data dev zero", gf("fit", "/dev/zero", "--target", "y", "--out", "m.safetensors")))
    add(
        Case(
            "data fifo",
            gf("fit", "f.csv", "--target", "y", "--out", "m.safetensors"),
            lambda d: os.mkfifo(d / "f.csv"),
        )
    )
    add(
        Case(
            "data proc status",
            gf("fit", "/proc/self/status", "--target", "y", "--out", "m.safetensors"),
        )
    )
    add(Case("data proc environ", gf("predict", "model.safetensors", "/proc/self/environ")))
    add(
        Case(
            "data directory csv name",
            gf("fit", "dd.csv", "--target", "y", "--out", "m.safetensors"),
            lambda d: (d / "dd.csv").mkdir(),
        )
    )
    add(
        Case(
            "crops file in cwd",
            gf("fit", "crops", "--target", "y", "--out", "m.safetensors"),
            write("crops", "x1,y\n1,2\n2,3\n3,5\n"),
            outputs=("m.safetensors",),
        )
    )
    add(Case("crops bad target", gf("fit", "crops", "--target", "nope", "--out", "m.safetensors")))

    # -- CSV content
    def csv(
        name: str,
        text: str | bytes,
        *extra: str,
        outputs: tuple[str, ...] = ("m.sf",),
        cmd: str = "fit",
    ) -> None:
        if cmd == "fit":
            argv = gf("fit", "c.csv", "--target", "y", "--out", "m.sf", "--quiet", *extra)
        elif cmd == "stream":
            argv = gf(
                "fit", "c.csv", "--target", "y", "--out", "m.sf", "--quiet", "--stream", *extra
            )
        elif cmd == "predict":
            argv = gf("predict", "model.safetensors", "c.csv", *extra)
        elif cmd == "evaluate":
            argv = gf("evaluate", "model.safetensors", "c.csv", *extra)
        else:
            raise ValueError(cmd)
        add(Case(f"csv[{cmd}] {name}", argv, write("c.csv", text), outputs=outputs))

    bad_texts: list[tuple[str, str | bytes]] = [
        ("empty", ""),
        ("newline only", "\n"),
        ("header only", "x1,x2,y\n"),
        ("header only no nl", "x1,x2,y"),
        ("bom", "\ufeffx1,x2,y\n1,2,3\n2,3,1\n4,1,2\n5,5,5\n"),
        ("crlf", "x1,x2,y\r\n1,2,3\r\n2,3,1\r\n4,1,2\r\n5,5,5\r\n"),
        ("cr only", "x1,x2,y\r1,2,3\r2,3,1\r4,1,2\r5,5,5\r"),
        ("semicolons", "x1;x2;y\n1;2;3\n2;3;1\n4;1;2\n5;5;5\n"),
        ("mixed delims", "x1,x2;y\n1,2;3\n2;3,1\n"),
        ("one column", "y\n1\n2\n3\n"),
        ("target twice", "y,x1,y\n1,2,3\n2,3,1\n4,1,2\n5,5,5\n"),
        ("feature twice", "x1,x1,y\n1,2,3\n2,3,1\n4,1,2\n5,5,5\n"),
        ("nan cells", "x1,x2,y\n1,nan,3\n2,3,1\n4,1,2\n5,5,5\n6,1,1\n"),
        ("NaN strings", "x1,x2,y\n1,NaN,3\n2,3,NA\n4,1,2\n5,5,5\n6,1,1\n"),
        ("inf", "x1,x2,y\n1,inf,3\n2,3,1\n4,1,2\n5,5,5\n"),
        ("-inf target", "x1,x2,y\n1,2,-inf\n2,3,1\n4,1,2\n5,5,5\n"),
        ("1e309", "x1,x2,y\n1,1e309,3\n2,3,1\n4,1,2\n5,5,5\n"),
        ("1e308 all", "x1,x2,y\n1e308,1e308,1e308\n-1e308,1e308,-1e308\n1e308,-1e308,0\n1,2,3\n"),
        ("huge int", "x1,x2,y\n1,123456789012345678901234567890,3\n2,3,1\n4,1,2\n5,5,5\n"),
        ("huge int 400", "x1,x2,y\n1," + "9" * 400 + ",3\n2,3,1\n4,1,2\n5,5,5\n"),
        ("int64 min", "x1,x2,y\n1,-9223372036854775808,3\n2,3,1\n4,1,2\n5,5,5\n"),
        ("thousands", 'x1,x2,y\n"1,234",2,3\n2,3,1\n4,1,2\n5,5,5\n'),
        ("quoted numbers", 'x1,x2,y\n"1","2","3"\n"2",3,1\n4,1,2\n5,5,5\n'),
        ("text in feature", "x1,x2,y\n1,abc,3\n2,3,1\n4,1,2\n5,5,5\n"),
        ("text in target", "x1,x2,y\n1,2,abc\n2,3,1\n4,1,2\n5,5,5\n"),
        ("escape in cell", "x1,x2,y\n1,2,\x1b[2J\x1b]0;x\x07\n2,3,1\n4,1,2\n5,5,5\n"),
        ("bidi in cell", "x1,x2,y\n1,2,\u202eabc\n2,3,1\n"),
        ("escape in header", "x\x1b[31m1,x\n2,y\n1,2,3\n2,3,1\n4,1,2\n5,5,5\n"),
        ("newline header quoted", '"x\n1","x\u20282",y\n1,2,3\n2,3,1\n4,1,2\n5,5,5\n'),
        ("empty header name", "x1,,y\n1,2,3\n2,3,1\n4,1,2\n5,5,5\n"),
        ("extra field", "x1,x2,y\n1,2,3\n2,3,1,9\n4,1,2\n5,5,5\n"),
        ("missing field", "x1,x2,y\n1,2,3\n2,3\n4,1,2\n5,5,5\n"),
        ("blank lines", "x1,x2,y\n\n1,2,3\n\n2,3,1\n4,1,2\n5,5,5\n\n\n"),
        ("whitespace only", "   \n  \n"),
        ("nul bytes", b"x1,x2,y\n1,2\x00,3\n2,3,1\n4,1,2\n5,5,5\n"),
        ("binary", bytes(range(256)) * 20),
        ("gzip inside .csv", gzip.compress(b"x1,x2,y\n1,2,3\n2,3,1\n4,1,2\n5,5,5\n")),
        ("latin1", "x1,x2,y\xe9\n1,2,3\n2,3,1\n".encode("latin-1")),
        ("unterminated quote", 'x1,x2,y\n1,"2,3\n2,3,1\n4,1,2\n'),
        ("one row", "x1,x2,y\n1,2,3\n"),
        ("two rows", "x1,x2,y\n1,2,3\n2,3,1\n"),
        ("constant all", "x1,x2,y\n1,1,1\n1,1,1\n1,1,1\n1,1,1\n"),
        ("all nan target", "x1,x2,y\n1,2,\n2,3,\n4,1,\n5,5,\n"),
        ("bool column", "x1,x2,y\ntrue,2,3\nfalse,3,1\ntrue,1,2\nfalse,5,5\n"),
        ("date column", "x1,x2,y\n2020-01-01,2,3\n2020-01-02,3,1\n2020-01-03,1,2\n"),
        ("long name", "x" * 200000 + ",x2,y\n1,2,3\n2,3,1\n4,1,2\n"),
        ("tabs in csv", "x1\tx2\ty\n1\t2\t3\n2\t3\t1\n4\t1\t2\n5\t5\t5\n"),
        ("hex floats", "x1,x2,y\n0x1p3,2,3\n2,3,1\n4,1,2\n5,5,5\n"),
        ("plus signs", "x1,x2,y\n+1,2,3\n2,+3,1\n4,1,2\n5,5,5\n"),
    ]
    for name, text in bad_texts:
        csv(name, text)
    for name, text in bad_texts[::3]:
        csv(name, text, cmd="stream")
    for name in (
        "empty",
        "header only",
        "text in feature",
        "escape in cell",
        "extra field",
        "nul bytes",
        "binary",
        "missing field",
        "bom",
        "target twice",
        "nan cells",
        "1e309",
        "huge int 400",
        "escape in header",
        "one row",
    ):
        text = dict(bad_texts)[name]
        csv(name, text, cmd="predict", outputs=())
        csv(name, text, "--stream", cmd="predict", outputs=())
        csv(name, text, cmd="evaluate", outputs=())

    csv("target=feature", "x1,x2,y\n1,2,3\n2,3,1\n4,1,2\n5,5,5\n", "--features", "y,x1")
    csv("features empty", "x1,x2,y\n1,2,3\n2,3,1\n4,1,2\n5,5,5\n", "--features", "")
    csv("target empty", "x1,x2,y\n1,2,3\n2,3,1\n4,1,2\n5,5,5\n", "--target", "")
    csv("target comma", "x1,x2,y\n1,2,3\n2,3,1\n4,1,2\n5,5,5\n", "--target", ",")
    csv("features ,,", "x1,x2,y\n1,2,3\n2,3,1\n4,1,2\n5,5,5\n", "--features", "x1,,x2")
    csv("feature missing", "x1,x2,y\n1,2,3\n2,3,1\n4,1,2\n5,5,5\n", "--features", "zz\x1b[1m")
    csv("feature twice arg", "x1,x2,y\n1,2,3\n2,3,1\n4,1,2\n5,5,5\n", "--features", "x1,x1")
    csv(
        "target twice arg",
        "x1,x2,y\n1,2,3\n2,3,1\n4,1,2\n5,5,5\n",
        "--target",
        "y",
        "--target",
        "y",
    )
    csv("text feature named", "x1,x2,y\n1,a,3\n2,b,1\n4,c,2\n5,d,5\n", "--features", "x1,x2")
    csv(
        "stream batch-rows 1",
        "x1,x2,y\n1,2,3\n2,3,1\n4,1,2\n5,5,5\n",
        "--batch-rows",
        "1",
        cmd="stream",
    )
    csv(
        "many columns",
        ",".join(f"c{i}" for i in range(3000))
        + ",y\n"
        + "\n".join(",".join(str((i * j) % 7) for i in range(3001)) for j in range(4))
        + "\n",
        "--solver",
        "lstsq",
    )
    csv(
        "wide memory limit",
        ",".join(f"c{i}" for i in range(3000)) + ",y\n" + ",".join("1" for i in range(3001)) + "\n",
        "--memory-limit",
        "10M",
    )

    # -- gzip / parquet
    good_text = None

    def gz(name: str, make: Callable[[Path], bytes], *extra: str) -> None:
        def setup(d: Path) -> None:
            (d / "g.csv.gz").write_bytes(make(d))

        add(
            Case(
                f"gz {name}",
                gf("fit", "g.csv.gz", "--target", "y", "--out", "m.sf", "--quiet", *extra),
                setup,
                outputs=("m.sf",),
            )
        )

    gz("truncated", lambda d: gzip.compress((d / "good.csv").read_bytes())[:-30])
    gz("truncated stream", lambda d: gzip.compress((d / "good.csv").read_bytes())[:-30], "--stream")
    gz("not gzip", lambda d: (d / "good.csv").read_bytes())
    gz("empty", lambda d: b"")
    gz("gzip of empty", lambda d: gzip.compress(b""))
    gz("double gzip", lambda d: gzip.compress(gzip.compress((d / "good.csv").read_bytes())))
    gz("trailing garbage", lambda d: gzip.compress((d / "good.csv").read_bytes()) + b"junk")
    gz(
        "bomb",
        lambda d: gzip.compress(b"x1,x2,y\n" + b"1,2,3\n" * 30_000_000, 9),
        "--memory-limit",
        "20M",
    )
    del good_text

    def pa_case(name: str, make: Callable[[], object], *extra: str, cmd: str = "fit") -> None:
        if cmd == "fit":
            argv = gf("fit", "p.parquet", "--target", "y", "--out", "m.sf", "--quiet", *extra)
        else:
            argv = gf("predict", "model.safetensors", "p.parquet", *extra)
        add(Case(f"parquet[{cmd}] {name}", argv, parquet("p.parquet", make), outputs=("m.sf",)))

    def tbl(**cols: object) -> Callable[[], object]:
        def make() -> object:
            import pyarrow as pa

            return pa.table(cols)

        return make

    def pa_cols() -> dict[str, Callable[[], object]]:
        import datetime
        import decimal

        import pyarrow as pa

        n = 6
        y = pa.array([1.0, 2, 3, 4, 5, 7])
        x2 = pa.array([0.5, 1, 0, 2, 1, 3])
        return {
            "list": lambda: pa.table({"x1": pa.array([[1.0]] * n), "x2": x2, "y": y}),
            "struct": lambda: pa.table({"x1": pa.array([{"a": 1}] * n), "x2": x2, "y": y}),
            "dictionary": lambda: pa.table(
                {"x1": pa.array(["a", "b"] * 3).dictionary_encode(), "x2": x2, "y": y}
            ),
            "dict ints": lambda: pa.table(
                {"x1": pa.array([1, 2, 3, 1, 2, 3]).dictionary_encode(), "x2": x2, "y": y}
            ),
            "decimal": lambda: pa.table(
                {
                    "x1": pa.array([decimal.Decimal("1.5")] * 3 + [decimal.Decimal("2.25")] * 3),
                    "x2": x2,
                    "y": y,
                }
            ),
            "decimal256": lambda: pa.table(
                {
                    "x1": pa.array([decimal.Decimal("1.5")] * n, pa.decimal256(40, 2)),
                    "x2": x2,
                    "y": y,
                }
            ),
            "timestamp": lambda: pa.table(
                {
                    "x1": pa.array([datetime.datetime(2020, 1, i + 1) for i in range(n)]),
                    "x2": x2,
                    "y": y,
                }
            ),
            "bool": lambda: pa.table({"x1": pa.array([True, False] * 3), "x2": x2, "y": y}),
            "bool target": lambda: pa.table({"x1": x2, "x2": x2, "y": pa.array([True] * n)}),
            "string target": lambda: pa.table({"x1": x2, "x2": x2, "y": pa.array(["1"] * n)}),
            "null column": lambda: pa.table({"x1": pa.nulls(n), "x2": x2, "y": y}),
            "float16": lambda: pa.table(
                {
                    "x1": pa.array([1, 2, 3, 4, 5, 6], pa.float16()) if False else x2,
                    "x2": x2,
                    "y": y,
                }
            ),
            "uint64 big": lambda: pa.table(
                {"x1": pa.array([2**64 - 1] * n, pa.uint64()), "x2": x2, "y": y}
            ),
            "zero rows": lambda: pa.table(
                {
                    "x1": pa.array([], pa.float64()),
                    "x2": pa.array([], pa.float64()),
                    "y": pa.array([], pa.float64()),
                }
            ),
            "dup names": lambda: pa.Table.from_arrays([x2, x2, y], names=["x1", "x1", "y"]),
            "empty name": lambda: pa.Table.from_arrays([x2, x2, y], names=["", "x2", "y"]),
            "escape name": lambda: pa.Table.from_arrays(
                [x2, x2, y], names=["x\x1b[2J", "x\n2", "y"]
            ),
            "nan inf": lambda: pa.table(
                {
                    "x1": pa.array([float("nan"), 1, 2, 3, 4, 5]),
                    "x2": pa.array([float("inf"), 1, 2, 3, 4, 5]),
                    "y": y,
                }
            ),
            "large_string": lambda: pa.table(
                {"x1": pa.array(["1"] * n, pa.large_string()), "x2": x2, "y": y}
            ),
            "binary": lambda: pa.table({"x1": pa.array([b"\x00"] * n), "x2": x2, "y": y}),
            "duration": lambda: pa.table(
                {"x1": pa.array([datetime.timedelta(1)] * n), "x2": x2, "y": y}
            ),
        }

    for name, make in pa_cols().items():
        pa_case(name, make)
    for name in (
        "list",
        "struct",
        "dictionary",
        "decimal",
        "dup names",
        "zero rows",
        "escape name",
        "nan inf",
        "bool",
    ):
        pa_case(name, pa_cols()[name], cmd="predict")
        pa_case(name + " stream", pa_cols()[name], "--stream")

    def zero_groups(d: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pa.schema([("x1", pa.float64()), ("x2", pa.float64()), ("y", pa.float64())])
        with pq.ParquetWriter(d / "p.parquet", schema):
            pass

    add(
        Case(
            "parquet zero row groups",
            gf("fit", "p.parquet", "--target", "y", "--out", "m.sf"),
            zero_groups,
        )
    )
    add(
        Case(
            "parquet zero row groups stream",
            gf("fit", "p.parquet", "--target", "y", "--out", "m.sf", "--stream"),
            zero_groups,
        )
    )
    add(
        Case(
            "parquet zero row groups predict",
            gf("predict", "model.safetensors", "p.parquet"),
            zero_groups,
        )
    )
    for cut in (4, 100, -8, -20):
        add(
            Case(
                f"parquet truncated {cut}",
                gf("fit", "p.parquet", "--target", "y", "--out", "m.sf"),
                lambda d, cut=cut: (d / "p.parquet").write_bytes(
                    (d / "good.parquet").read_bytes()[:cut]
                ),
            )
        )
    add(
        Case(
            "parquet is csv",
            gf("fit", "p.parquet", "--target", "y", "--out", "m.sf"),
            lambda d: shutil.copy(d / "good.csv", d / "p.parquet"),
        )
    )
    add(
        Case(
            "csv is parquet",
            gf("fit", "p.csv", "--target", "y", "--out", "m.sf", "--quiet"),
            lambda d: shutil.copy(d / "good.parquet", d / "p.csv"),
            outputs=("m.sf",),
        )
    )
    add(
        Case(
            "unknown extension",
            gf("fit", "p.xlsx", "--target", "y", "--out", "m.sf", "--quiet"),
            lambda d: shutil.copy(d / "good.csv", d / "p.xlsx"),
            outputs=("m.sf",),
        )
    )
    add(
        Case(
            "npy data",
            gf("fit", "p.npy", "--target", "y", "--out", "m.sf"),
            write("p.npy", b"\x93NUMPY\x01\x00v\x00{'descr': '<f8'}"),
        )
    )

    # -- models
    def model_case(name: str, setup: Setup, *cmds: str) -> None:
        for cmd in cmds or ("info", "predict", "evaluate"):
            argv = gf("info", "bad.sf") if cmd == "info" else gf(cmd, "bad.sf", "good.csv")
            add(Case(f"model[{cmd}] {name}", argv, setup))

    model_case("zero bytes", write("bad.sf", b""))
    model_case(
        "truncated",
        lambda d: (d / "bad.sf").write_bytes((d / "model.safetensors").read_bytes()[:-4]),
    )
    model_case(
        "truncated header",
        lambda d: (d / "bad.sf").write_bytes((d / "model.safetensors").read_bytes()[:40]),
    )
    model_case("huge header len", write("bad.sf", (2**63).to_bytes(8, "little") + b"{}"))
    model_case("header len > file", write("bad.sf", (1000).to_bytes(8, "little") + b"{}"))
    model_case("header not json", write("bad.sf", (8).to_bytes(8, "little") + b"\xff\xfe{[\x00abc"))
    model_case("header array", write("bad.sf", (8).to_bytes(8, "little") + b"[1,2,3] "))
    model_case(
        "deep json", write("bad.sf", (200000).to_bytes(8, "little") + b"[" * 100000 + b"]" * 100000)
    )
    model_case("csv as model", lambda d: shutil.copy(d / "good.csv", d / "bad.sf"))
    model_case("dir as model", lambda d: (d / "bad.sf").mkdir())
    model_case("pickle", write("bad.sf", b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01."))
    model_case("checkpoint as model", lambda d: shutil.copy(d / "ck.safetensors", d / "bad.sf"))

    def flip(offset: int) -> Setup:
        def setup(d: Path) -> None:
            raw = bytearray((d / "model.safetensors").read_bytes())
            raw[offset] ^= 0x10
            (d / "bad.sf").write_bytes(bytes(raw))

        return setup

    model_case("flip last byte", flip(-1))
    model_case("flip header byte", flip(30))

    def foreign(d: Path) -> None:
        import torch
        from safetensors.torch import save_file

        save_file(
            {"weight": torch.ones(1, 2), "bias": torch.zeros(1)},
            str(d / "bad.sf"),
            metadata={"format": "pt"},
        )

    model_case("foreign safetensors", foreign)

    def foreign_big(d: Path) -> None:
        import json
        import struct

        head = {"weight": {"dtype": "F32", "shape": [1 << 40, 1 << 20], "data_offsets": [0, 8]}}
        text = json.dumps(head).encode()
        (d / "bad.sf").write_bytes(struct.pack("<Q", len(text)) + text + b"\0" * 8)

    model_case("declared huge tensor", foreign_big)
    model_case(
        "meta features int",
        mutate_model(
            "bad.sf", "model.safetensors", meta(lambda m: m.__setitem__("feature_names", 5))
        ),
    )
    model_case(
        "meta features collide",
        mutate_model(
            "bad.sf",
            "model.safetensors",
            meta(lambda m: m.__setitem__("feature_names", ["x1", "x1"])),
        ),
    )
    model_case(
        "meta feature = target",
        mutate_model(
            "bad.sf",
            "model.safetensors",
            meta(lambda m: m.__setitem__("feature_names", ["x1", "y"])),
        ),
    )
    model_case(
        "meta escape names",
        mutate_model(
            "bad.sf",
            "model.safetensors",
            meta(lambda m: m.__setitem__("target_names", ["y\x1b[2J\n"])),
        ),
    )
    model_case(
        "meta format str",
        mutate_model("bad.sf", "model.safetensors", meta(lambda m: m.__setitem__("format", "3"))),
    )
    model_case(
        "meta format 99",
        mutate_model("bad.sf", "model.safetensors", meta(lambda m: m.__setitem__("format", 99))),
    )
    model_case(
        "meta format bool",
        mutate_model("bad.sf", "model.safetensors", meta(lambda m: m.__setitem__("format", True))),
    )
    model_case(
        "meta all null",
        mutate_model(
            "bad.sf", "model.safetensors", meta(lambda m: [m.__setitem__(k, None) for k in list(m)])
        ),
    )
    model_case(
        "meta all list",
        mutate_model(
            "bad.sf",
            "model.safetensors",
            meta(lambda m: [m.__setitem__(k, [[]]) for k in list(m) if k != "format"]),
        ),
    )
    model_case(
        "meta all nested dict",
        mutate_model(
            "bad.sf",
            "model.safetensors",
            meta(lambda m: [m.__setitem__(k, {"a": {}}) for k in list(m) if k != "format"]),
        ),
    )
    model_case(
        "meta all strings",
        mutate_model(
            "bad.sf",
            "model.safetensors",
            meta(lambda m: [m.__setitem__(k, "x\x1b") for k in list(m) if k != "format"]),
        ),
    )
    model_case(
        "meta all huge",
        mutate_model(
            "bad.sf",
            "model.safetensors",
            meta(lambda m: [m.__setitem__(k, 1e308) for k in list(m) if k != "format"]),
        ),
    )
    model_case(
        "meta all negative",
        mutate_model(
            "bad.sf",
            "model.safetensors",
            meta(lambda m: [m.__setitem__(k, -1) for k in list(m) if k != "format"]),
        ),
    )
    model_case(
        "meta missing",
        mutate_model(
            "bad.sf",
            "model.safetensors",
            lambda h: {k: v for k, v in h.items() if k != "__metadata__"},
        ),
    )
    model_case(
        "meta not str",
        mutate_model(
            "bad.sf", "model.safetensors", lambda h: {**h, "__metadata__": {"gradfit": 5}}
        ),
    )
    model_case(
        "dtype change",
        mutate_model(
            "bad.sf",
            "model.safetensors",
            lambda h: {
                k: ({**v, "dtype": "I8"} if isinstance(v, dict) and "dtype" in v else v)
                for k, v in h.items()
            },
        ),
    )
    model_case(
        "shape change",
        mutate_model(
            "bad.sf",
            "model.safetensors",
            lambda h: {
                k: ({**v, "shape": [0]} if isinstance(v, dict) and "shape" in v else v)
                for k, v in h.items()
            },
        ),
    )
    model_case(
        "gd meta feature collide",
        mutate_model(
            "bad.sf", "gd.safetensors", meta(lambda m: m.__setitem__("feature_names", ["y", "y"]))
        ),
    )
    add(Case("model dev zero", gf("predict", "/dev/zero", "good.csv")))
    add(Case("model fifo", gf("info", "f.sf"), lambda d: os.mkfifo(d / "f.sf")))
    add(Case("model escape missing", gf("info", "m\x1b[2J\u2028.sf")))
    add(Case("model nonutf8 missing", gf("info", b"m\xff.sf")))
    add(Case("model /dev/stdin pipe", gf("info", "/dev/stdin")))

    # -- predict options
    pr = ["predict", "model.safetensors", "good.csv"]
    for extra in (
        ["--keep", "nope"],
        ["--keep", "y"],
        ["--keep", "x1,x1"],
        ["--keep", ""],
        ["--keep", "x1", "--out", "o.parquet"],
        ["--out", "o.txt"],
        ["--out", "o.tsv"],
        ["--out", "o.csv.gz"],
        ["--out", "o.PARQUET"],
        ["--interval", "confidence", "--level", "0"],
        ["--interval", "prediction", "--level", "1"],
        ["--interval", "prediction", "--level", "nan"],
        ["--interval", "prediction", "--level", "0.9999999999999999"],
        ["--interval", "prediction", "--level", "1e-300"],
        ["--level", "0.5"],
        ["--batch-rows", "0"],
        ["--batch-rows", "1", "--stream"],
        ["--memory-limit", "0"],
        ["--memory-limit", "1"],
        ["--memory-limit", "-5"],
        ["--memory-limit", "1e400"],
        ["--memory-limit", "1P"],
        ["--memory-limit", "abc"],
        ["--memory-limit", "1K"],
        ["--stream", "--out", "o.parquet"],
    ):
        add(
            Case(
                f"predict {' '.join(extra)}",
                gf(*pr, *extra),
                outputs=("o.parquet", "o.txt", "o.tsv", "o.csv.gz", "o.PARQUET"),
            )
        )
    add(
        Case(
            "predict gd interval",
            gf("predict", "gd.safetensors", "good.csv", "--interval", "confidence"),
        )
    )
    add(
        Case(
            "predict missing feature",
            gf("predict", "model.safetensors", "c.csv"),
            write("c.csv", "x1,y\n1,2\n"),
        )
    )
    add(
        Case(
            "predict keep string parquet",
            gf("predict", "model.safetensors", "c.csv", "--keep", "id", "--out", "o.parquet"),
            write("c.csv", "id,x1,x2\n007,1,2\nab\x1b,2,3\n"),
            outputs=("o.parquet",),
        )
    )
    add(
        Case(
            "predict keep str stdout",
            gf("predict", "model.safetensors", "c.csv", "--keep", "id"),
            write("c.csv", 'id,x1,x2\n"a\x1b[2Jb",1,2\n"q\n",2,3\n'),
        )
    )
    add(
        Case(
            "predict interval collinear",
            gf("predict", "model.safetensors", "c.csv", "--interval", "prediction"),
            write("c.csv", "x1,x2\n1e300,1e300\n-1e308,1e308\n"),
        )
    )
    add(
        Case(
            "evaluate target missing",
            gf("evaluate", "model.safetensors", "c.csv"),
            write("c.csv", "x1,x2\n1,2\n"),
        )
    )
    add(
        Case(
            "evaluate one row",
            gf("evaluate", "model.safetensors", "c.csv", "--json"),
            write("c.csv", "x1,x2,y\n1,2,3\n"),
        )
    )
    add(
        Case(
            "evaluate constant y",
            gf("evaluate", "model.safetensors", "c.csv", "--json"),
            write("c.csv", "x1,x2,y\n1,2,3\n2,2,3\n"),
        )
    )

    # -- fit options
    opts: list[list[str]] = []
    for solver in ("scratch", "builtin", "gd", "sgd", "lstsq"):
        opts += [
            ["--solver", solver, "--stream"],
            ["--solver", solver, "--cov", "HC3"],
            ["--solver", solver, "--alpha", "1", "--cov", "HC1"],
            ["--solver", solver, "--alpha", "1", "--l1-ratio", "1"],
            ["--solver", solver, "--alpha", "1e30", "--l1-ratio", "0.5"],
            ["--solver", solver, "--early-stopping", "--validation-fraction", "0.999"],
            ["--solver", solver, "--early-stopping", "--validation-fraction", "1e-9"],
            ["--solver", solver, "--dtype", "float32", "--epochs", "3"],
            ["--solver", solver, "--device", "cuda"],
            ["--solver", solver, "--level", "1e-300", "--json"],
            ["--solver", solver, "--batch-size", "100000", "--epochs", "2"],
            ["--solver", solver, "--no-fit-intercept", "--no-standardize", "--epochs", "2"],
            ["--solver", solver, "--json", "--plot", "p.png", "--epochs", "2"],
            ["--solver", solver, "--lr", "1e38", "--epochs", "5"],
            ["--solver", solver, "--momentum", "0.999999", "--nesterov", "--epochs", "5"],
            [
                "--solver",
                solver,
                "--schedule",
                "step",
                "--decay-every",
                "1",
                "--decay-rate",
                "1e-300",
                "--epochs",
                "5",
            ],
            ["--solver", solver, "--tol", "none", "--epochs", "3", "--stream", "--batch-rows", "7"],
        ]
    opts += [
        ["--alpha", "nan"],
        ["--alpha", "-1"],
        ["--alpha", "inf"],
        ["--l1-ratio", "2"],
        ["--l1-ratio", "nan"],
        ["--level", "1"],
        ["--level", "nan"],
        ["--epochs", "0"],
        ["--epochs", "-1"],
        ["--epochs", "1e30"],
        ["--seed", "-1"],
        ["--seed", "2**64"],
        ["--lr", "0"],
        ["--lr", "-1"],
        ["--lr", "nan"],
        ["--lr", "auto", "--alpha", "1e30"],
        ["--validation-fraction", "0", "--early-stopping"],
        ["--validation-fraction", "1", "--early-stopping"],
        ["--batch-rows", "0", "--stream"],
        ["--batch-rows", "1e20", "--stream"],
        ["--shuffle-buffer", "0", "--stream", "--solver", "sgd"],
        ["--shuffle-buffer", "1", "--stream", "--solver", "sgd", "--epochs", "2"],
        ["--checkpoint-every", "0", "--checkpoint", "c.ck"],
        ["--divergence-factor", "1"],
        ["--divergence-factor", "1.0000001", "--lr", "1"],
        ["--dtype", "float32", "--solver", "lstsq"],
        ["--memory-limit", "1"],
        ["--memory-limit", "100"],
        ["--device", "auto"],
        ["--device", "mps"],
        ["--cov", "hc3"],
        ["--solver", "nope"],
    ]
    for extra in opts:
        add(
            Case(
                f"fit {' '.join(extra)}",
                gf(*fit, "--out", "m.sf", *extra),
                outputs=("m.sf", "p.png", "c.ck"),
            )
        )
    add(
        Case(
            "fit float32 overflow",
            gf("fit", "c.csv", "--target", "y", "--out", "m.sf", "--dtype", "float32", "--quiet"),
            write("c.csv", "x1,y\n1e39,1\n2,3\n4,1\n"),
            outputs=("m.sf",),
        )
    )
    add(
        Case(
            "fit float32 overflow gd stream",
            gf(
                "fit",
                "c.csv",
                "--target",
                "y",
                "--out",
                "m.sf",
                "--dtype",
                "float32",
                "--stream",
                "--quiet",
            ),
            write("c.csv", "x1,y\n1e39,1\n2,3\n4,1\n"),
            outputs=("m.sf",),
        )
    )
    add(
        Case(
            "fit n<d lstsq",
            gf(
                "fit",
                "c.csv",
                "--target",
                "y",
                "--out",
                "m.sf",
                "--solver",
                "lstsq",
                "--quiet",
                "--cov",
                "HC2",
            ),
            write("c.csv", "a,b,c,d,y\n1,2,3,4,5\n2,1,3,0,4\n"),
            outputs=("m.sf",),
        )
    )
    add(
        Case(
            "fit huge values gd",
            gf("fit", "c.csv", "--target", "y", "--out", "m.sf", "--quiet"),
            write("c.csv", "x1,y\n1e300,1e300\n-1e300,1\n1e-300,-1e300\n"),
            outputs=("m.sf",),
        )
    )

    # -- demo
    for extra in (
        [],
        ["--epochs", "0"],
        ["--epochs", "-1"],
        ["--lr", "1e30"],
        ["--lr", "nan"],
        ["--rows", "5", "--epochs", "1e9"],
        ["--seed", "-1"],
    ):
        add(Case(f"demo {' '.join(extra)}", gf("demo", *extra)))

    # -- signals
    add(
        Case(
            "SIGINT fit",
            gf(
                "fit",
                "big.csv",
                "--target",
                "y",
                "--out",
                "m.sf",
                "--epochs",
                "100000",
                "--tol",
                "none",
                "--checkpoint",
                "c.ck",
            ),
            write("big.csv", "x1,x2,y\n" + "1,2,3\n2,3,1\n4,1,2\n" * 3000),
            codes=(130,),
            signal_after=(6.0, signal.SIGINT),
            outputs=("c.ck",),
        )
    )
    add(
        Case(
            "SIGTERM predict stream",
            gf(
                "predict",
                "model.safetensors",
                "big.csv",
                "--out",
                "o.csv",
                "--stream",
                "--batch-rows",
                "10",
            ),
            write("big.csv", "x1,x2\n" + "1,2\n" * 2_000_000),
            codes=(143,),
            signal_after=(5.0, signal.SIGTERM),
        )
    )
    add(
        Case(
            "SIGHUP fit",
            gf(
                "fit",
                "big.csv",
                "--target",
                "y",
                "--out",
                "m.sf",
                "--epochs",
                "100000",
                "--tol",
                "none",
            ),
            write("big.csv", "x1,x2,y\n" + "1,2,3\n2,3,1\n4,1,2\n" * 3000),
            codes=(129, 130, 143, 2),
            signal_after=(5.0, signal.SIGHUP),
        )
    )
    add(
        Case(
            "SIGINT early",
            gf("info", "model.safetensors"),
            codes=(0, 130),
            signal_after=(0.3, signal.SIGINT),
        )
    )

    # -- library
    lib = [
        ("ols nan", "gradfit.ols(np.array([[1.0],[np.nan],[2]]), np.array([1.0,2,3]))"),
        ("ols empty", "gradfit.ols(np.zeros((0,2)), np.zeros(0))"),
        ("ols 1d X", "gradfit.ols(np.array([1.0,2,3]), np.array([1.0,2,3]))"),
        ("ols mismatch", "gradfit.ols(np.ones((3,2)), np.ones(4))"),
        ("ols strings", "gradfit.ols(np.array([['a'],['b']]), np.array([1.0,2]))"),
        ("ols object", "gradfit.ols(np.array([[None],[1]], dtype=object), np.array([1.0,2]))"),
        ("ols 3d", "gradfit.ols(np.ones((2,2,2)), np.ones(2))"),
        (
            "ols int32 NA",
            "gradfit.ols(np.array([[1],[-2**31],[3]],dtype=np.int32), np.array([1.0,2,3]))",
        ),
        ("ols complex", "gradfit.ols(np.ones((3,1))*1j, np.ones(3))"),
        (
            "ols names wrong count",
            "gradfit.ols(np.ones((3,1)), np.arange(3.0), feature_names=['a','b'])",
        ),
        ("ols names int", "gradfit.ols(np.ones((3,1)), np.arange(3.0), feature_names=[1])"),
        (
            "ols names dup",
            "gradfit.ols(np.random.rand(5,2), np.arange(5.0), feature_names=['a','a'])",
        ),
        ("ols level bad", "gradfit.ols(np.random.rand(5,1), np.arange(5.0)).conf_int(level=2)"),
        (
            "ols pandas dup",
            "import pandas as pd; gradfit.ols(pd.DataFrame(np.random.rand(5,2),"
            " columns=['a','a']), np.arange(5.0))",
        ),
        ("ols bool", "gradfit.ols(np.array([[True],[False],[True]]), np.arange(3.0))"),
        ("ols huge", "gradfit.ols(np.array([[1e308],[-1e308],[1e308]]), np.array([1e308,0,1]))"),
        (
            "ols predict wrong width",
            "gradfit.ols(np.random.rand(5,2), np.arange(5.0)).predict(np.ones((2,3)))",
        ),
        (
            "ols weights neg",
            "gradfit.ols(np.random.rand(5,2), np.arange(5.0), weights=-np.ones(5))",
        ),
        ("ols cov bad", "gradfit.ols(np.random.rand(5,2), np.arange(5.0), cov_type='HC9')"),
        (
            "est inf",
            "gradfit.GradientDescentRegressor().fit(np.array([[np.inf],[1]]), np.array([1.0,2]))",
        ),
        (
            "est lr str",
            "gradfit.GradientDescentRegressor(learning_rate='fast')"
            ".fit(np.ones((3,1)), np.ones(3))",
        ),
        (
            "est solver bad",
            "gradfit.GradientDescentRegressor(solver='x').fit(np.ones((3,1)), np.ones(3))",
        ),
        ("est predict unfitted", "gradfit.GradientDescentRegressor().predict(np.ones((3,1)))"),
        (
            "est partial_fit width",
            "m=gradfit.GradientDescentRegressor(); "
            "m.partial_fit(np.ones((3,1)), np.ones(3)); m.partial_fit(np.ones((3,2)), np.ones(3))",
        ),
        ("load_model dir", "from gradfit.persistence import load_model; load_model('.')"),
        ("load_model csv", "from gradfit.persistence import load_model; load_model('good.csv')"),
        (
            "load_model dev zero",
            "from gradfit.persistence import load_model; load_model('/dev/zero')",
        ),
        (
            "save_model to dir",
            "from gradfit.persistence import load_model, save_model; "
            "save_model('.', load_model('model.safetensors'))",
        ),
        (
            "save_model onto csv",
            "from gradfit.persistence import load_model, save_model; "
            "save_model('sub/x/m.sf', load_model('model.safetensors'))",
        ),
        ("predict fn bad", "gradfit.predict(None, np.ones((2,2)))"),
        ("least_squares nan", "gradfit.least_squares(np.array([[np.nan]]), np.array([1.0]))"),
        ("least_squares empty", "gradfit.least_squares(np.zeros((0,0)), np.zeros(0))"),
        (
            "fit_stream missing",
            "from gradfit.streaming import fit_stream; fit_stream('nope.csv', target=['y'])",
        ),
        ("r2 mismatch", "gradfit.r2_score(np.ones(3), np.ones(4))"),
        ("metrics empty", "gradfit.regression_metrics(np.ones(0), np.ones(0))"),
        ("load_crops", "gradfit.load_crops()"),
    ]
    for name, code in lib:
        src = (
            "import sys, warnings, numpy as np, gradfit\n"
            "try:\n"
            f"    {code}\n"
            "except gradfit.GradfitError as e:\n"
            "    m = str(e)\n"
            "    print('GradfitError:', ascii(m)); sys.exit(2 if '\\n' not in m else 3)\n"
            "except (TypeError, ValueError) as e:\n"
            "    print('plain', type(e).__name__, ascii(str(e))); sys.exit(2)\n"
        )
        add(Case(f"lib {name}", ["-c", src], library=True))
    return C


# ---------------------------------------------------------------- running


def _hashes(root: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            if p.is_symlink() or not p.is_file():
                continue
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _threads(pid: int) -> str:
    """Each thread of a hung process: its name and where it waits in the kernel."""
    shown = []
    with contextlib.suppress(OSError):
        for tid in sorted(os.listdir(f"/proc/{pid}/task")):
            base = f"/proc/{pid}/task/{tid}"
            with contextlib.suppress(OSError):
                comm = Path(base, "comm").read_text().strip()
                wchan = Path(base, "wchan").read_text().strip()
                state = Path(base, "stat").read_text().split(") ", 1)[1][:1]
                shown.append(f"{comm}:{state}:{wchan}")
    return ", ".join(shown)


def _default_signals() -> None:
    for number in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(number, signal.SIG_DFL)


def run_case(case: Case, base: Path, keep: bool = False) -> Outcome:
    work = Path(tempfile.mkdtemp(prefix="gfprobe-"))
    d = work / "w"
    shutil.copytree(base, d, symlinks=True)
    problems: list[str] = []
    if case.setup:
        try:
            case.setup(d)
        except Exception as exc:  # the probe's own fault: say so, go on
            return Outcome(case, None, "", "", [f"SETUP {exc!r}"[:300]])
    before = _hashes(d)
    listing_before = set(os.listdir(d))
    out_f = open(work / "stdout", "wb")  # noqa: SIM115
    err_f = open(work / "stderr", "wb")  # noqa: SIM115
    stdin = open(d / case.stdin, "rb") if case.stdin else subprocess.DEVNULL  # noqa: SIM115
    argv = [os.fsencode(PY)] + [a if isinstance(a, bytes) else os.fsencode(a) for a in case.argv]
    start = time.monotonic()
    proc = subprocess.Popen(
        argv,
        cwd=d,
        stdout=out_f,
        stderr=err_f,
        stdin=stdin,
        start_new_session=True,
        # A shell's background job ignores SIGINT, nohup SIGHUP; the command gets them again.
        preexec_fn=_default_signals,
    )
    rc: int | None = None
    rss = 0
    sent = False
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            rc = os.waitstatus_to_exitcode(status)
            rss = usage.ru_maxrss
            proc.returncode = rc
            break
        elapsed = time.monotonic() - start
        if case.signal_after and not sent and elapsed >= case.signal_after[0]:
            os.kill(proc.pid, case.signal_after[1])
            sent = True
        if elapsed > TIMEOUT:
            problems.append("threads: " + _threads(proc.pid))
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            problems.append("HANG (timeout)")
            break
        time.sleep(0.05)
    seconds = time.monotonic() - start
    out_f.close()
    err_f.close()
    if case.stdin:
        stdin.close()  # type: ignore[union-attr]
    stdout = (work / "stdout").read_bytes().decode("utf-8", "replace")
    stderr = (work / "stderr").read_bytes().decode("utf-8", "replace")
    if rc is not None:
        allowed = (case.expect,) if case.expect is not None else case.codes
        if rc not in allowed:
            problems.append(f"exit {rc}")
    if "Traceback" in stderr or "Traceback" in stdout:
        problems.append("traceback")
    if "internal error" in stderr.lower():
        problems.append("internal error")
    errors = [ln for ln in stderr.splitlines() if ln.startswith("gradfit: error")]
    if len(errors) > 1:
        problems.append("several error lines")
    if rc == 2 and not case.library and len(errors) != 1:
        problems.append("exit 2 without one 'gradfit: error' line")
    if rc == 2 and not case.library:
        others = [ln for ln in stderr.splitlines() if not ln.startswith("gradfit:")]
        if others:
            problems.append(f"stray stderr lines: {others[:2]!r}")
    if case.library and rc == 3:
        problems.append("multi-line GradfitError")
    if case.library and "plain" in stdout:
        problems.append("plain exception (not GradfitError)")
    for label, text in (("stdout", stdout), ("stderr", stderr)):
        m = CONTROL.search(text)
        if m:
            problems.append(f"control char {m.group()!r} in {label}")
    after = _hashes(d)
    for name, h in before.items():
        if name in case.outputs:
            continue
        if name not in after:
            problems.append(f"input {name!r} removed")
        elif after[name] != h:
            problems.append(f"input {name!r} changed")
    for _dirpath, _dirs, files in os.walk(d):
        for f in files:
            if f.endswith(".tmp"):
                problems.append(f"leftover temp {f!r}")
    if rc not in (0, None) and not case.signal_after:
        new = set(os.listdir(d)) - listing_before
        if new:
            problems.append(f"outputs left after failure: {sorted(new)!r}")
    if rss > MAX_RSS_KB:
        problems.append(f"rss {rss // 1024} MB")
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return Outcome(case, rc, stdout, stderr, problems, seconds)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("-j", type=int, default=2)
    ap.add_argument("-k", default="")
    ap.add_argument("-v", action="store_true")
    ap.add_argument("--start", default="", help="skip the cases before the first so named")
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="gfprobe-base-"))
    # The cases run a snapshot of the sources, so that editing them meanwhile changes nothing.
    snapshot = Path(tempfile.mkdtemp(prefix="gfprobe-src-")) / "src"
    shutil.copytree(Path(__file__).resolve().parent.parent / "src", snapshot)
    os.environ["PYTHONPATH"] = str(snapshot)
    _base(base)
    selected = [c for c in cases() if args.k in c.name]
    if args.start:
        first = next(i for i, c in enumerate(selected) if args.start in c.name)
        selected = selected[first:]
    print(f"{len(selected)} cases", flush=True)
    failures = 0
    with concurrent.futures.ThreadPoolExecutor(args.j) as pool:
        futures = [pool.submit(run_case, c, base) for c in selected]
        for future in concurrent.futures.as_completed(futures):
            o = future.result()
            tag = "FAIL" if o.problems else "ok  "
            if o.problems:
                failures += 1
            if o.problems or args.v:
                print(f"{tag} [{o.rc}] {o.seconds:5.1f}s {o.case.name}: {'; '.join(o.problems)}")
                tail = (o.stderr.strip().splitlines() or [""])[-3:]
                for ln in tail:
                    print("      err:", ascii(ln)[:300])
                if o.case.library or "traceback" in o.problems:
                    print("      out:", ascii(o.stdout.strip()[-300:]))
            sys.stdout.flush()
    print(f"{failures} of {len(selected)} cases failed")
    shutil.rmtree(base, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
