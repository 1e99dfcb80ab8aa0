"""The README's runnable claims, kept true: its Python examples run as written, the output it
shows is what gradfit prints, every option of the command-line synopsis exists, every file of
Layout exists (and every module is in it), and the NIST StRD digits it quotes are measured.

The numbers it quotes were measured on x86-64 with NumPy 2.4.6 and torch 2.13.0's CPU wheel;
the NIST digits are compared within half a digit (what another BLAS build moves them by, as
tests/test_inference.py's floors allow), everything else exactly.
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
from pathlib import Path

import pytest
from nist import digits_table

import gradfit
from gradfit.cli import main

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
SRC = ROOT / "src" / "gradfit"


def _section(heading: str) -> str:
    """The text from ``heading`` (a whole line) to the next heading of its level or above."""
    level = len(heading) - len(heading.lstrip("#"))
    start = README.index(f"\n{heading}\n")
    end = re.compile(rf"\n#{{1,{level}}} ").search(README, start + len(heading) + 2)
    return README[start : end.start() if end else len(README)]


def _blocks(text: str, language: str = "") -> list[str]:
    """The fenced code blocks of ``text`` in ``language`` (``""``: those with no language)."""
    return re.findall(rf"^```{language}\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)


def _run(code: str) -> str:
    """Run a README block as a script; what it prints."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    return out.getvalue()


def test_the_quick_start_python_example_prints_what_its_comment_says() -> None:
    block = _blocks(_section("### From Python"), "python")[0]
    printed = _run(block)
    shown = re.findall(r"print\(.*\)\s+# (tensor\(.*\))$", block, flags=re.MULTILINE)
    assert shown == ["tensor([[53.4228, 67.1162]])"]
    # The tensor is float64: torch prints its dtype on the line after the values.
    assert shown[0][:-1] in printed


def test_the_demo_prints_the_readme_summary_table(capsys: pytest.CaptureFixture[str]) -> None:
    """`make demo` is `gradfit demo`: the default seed's summary table. The closed form
    (float64) to every digit; the two float32 training paths to 1e-3 relative, which leaves
    room for another CPU's or torch's float32 sums (the README's are torch 2.13.0's, x86-64)."""
    table = next(b for b in _blocks(_section("## A short tour")) if b.startswith("path "))
    assert main(["demo"]) == 0
    printed = capsys.readouterr().out
    assert table.splitlines()[:2] == printed[printed.index("path ") :].splitlines()[:2]

    def rows(text: str) -> dict[str, list[float]]:
        found = re.findall(r"^(from scratch|built-ins|closed form) +(.*)$", text, re.MULTILINE)
        return {path: [float(v.rstrip("x")) for v in values.split()] for path, values in found}

    quoted, measured = rows(table), rows(printed)
    assert set(quoted) == set(measured) == {"from scratch", "built-ins", "closed form"}
    closed_form = next(line for line in table.splitlines() if line.startswith("closed form"))
    assert closed_form in printed.splitlines()
    for path, values in quoted.items():
        assert values == pytest.approx(measured[path], rel=1e-3), path


def test_the_estimator_example_runs() -> None:
    block = _blocks(_section("## The estimator: `gradfit.GradientDescentRegressor`"), "python")[0]
    _run(block)


def test_the_file_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The blocks on files and tables in memory, on the crop data written as the files they
    name."""
    monkeypatch.chdir(tmp_path)
    crops = gradfit.load_crops()
    names = [*crops.feature_names, *crops.target_names]
    rows = [x + y for x, y in zip(crops.data.tolist(), crops.target.tolist(), strict=True)]
    with open("crops.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([names, *rows])
    Path("parts").mkdir()
    for part in ("parts/a.csv", "new_regions.csv"):
        with open(part, "w", newline="") as fh:
            regions = [["north", *rows[0][:3]], ["south", *rows[1][:3]]]
            csv.writer(fh).writerows([["region", *crops.feature_names], *regions])
    assert main(["fit", "crops", "--target", "apples,oranges", "--out", "crops.safetensors",
                 "--quiet"]) == 0  # fmt: skip
    blocks = _blocks(_section("### From Python"), "python")
    assert len(blocks) == 3
    _run("import gradfit\n" + blocks[1] + blocks[2])


def test_every_option_of_the_synopsis_exists(capsys: pytest.CaptureFixture[str]) -> None:
    synopsis = _blocks(_section("## The command line"), "sh")[0]
    options: dict[str, set[str]] = {}
    command = ""
    for line in synopsis.splitlines():
        start = re.match(r"gradfit (\w+)", line)
        command = start.group(1) if start else command
        options.setdefault(command, set()).update(re.findall(r"--[a-z][a-z0-9-]*", line))
    commands = {"demo", "fit", "predict", "evaluate", "diagnose", "anova", "path", "info"}
    assert set(options) == commands
    for command, named in options.items():
        with pytest.raises(SystemExit):
            main([command, "--help"])
        helped = set(re.findall(r"--[a-z][a-z0-9-]*", capsys.readouterr().out))
        assert named <= helped, (command, sorted(named - helped))


def _layout_files() -> set[str]:
    """The files the Layout block names, as paths under src/gradfit/."""
    block = _blocks(_section("## Layout"))[0]
    named: set[str] = set()
    folder = ""
    for line in block.splitlines()[1:]:  # after src/gradfit/
        indent = len(line) - len(line.lstrip())
        first = line.split()[0]
        if indent == 2:
            folder = first if first.endswith("/") else ""
        files = re.findall(r"(?<![\w/.])([\w/]+\.py)\b", line)
        named.update(f if "/" in f else folder + f for f in files)
    return named


def test_layout_names_every_module_and_only_existing_files() -> None:
    named = _layout_files()
    modules = {p.relative_to(SRC).as_posix() for p in SRC.rglob("*.py")}
    assert named <= modules, sorted(named - modules)
    packages = {m for m in modules if m.endswith("/__init__.py")}
    assert modules - packages <= named, sorted(modules - packages - named)


def test_the_nist_digits_are_measured() -> None:
    section = _section("## Closed-form accuracy: NIST StRD")
    quoted = {
        name: (float(ours), float(theirs.replace("−", "-")))
        for name, ours, theirs in re.findall(
            r"^\| (\w+) \| \w+ \| ([−\d.]+) \| ([−\d.]+) \|$", section, flags=re.MULTILINE
        )
    }
    measured = {name: (ours, theirs) for name, ours, theirs in digits_table()}
    assert set(quoted) == set(measured)
    for name, (ours, theirs) in measured.items():
        assert abs(quoted[name][0] - ours) <= 0.5, (name, quoted[name][0], round(ours, 2))
        assert abs(quoted[name][1] - theirs) <= 0.5, (name, quoted[name][1], round(theirs, 2))
