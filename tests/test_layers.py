"""The dependency graph stays in sight: imports inside functions only where listed here.

The layers themselves (command line → jobs → job helpers → results → work and data → files →
maths → errors) are import-linter contracts in ``pyproject.toml``, checked by ``make layers``
(part of ``make test``). import-linter sees an import inside a function as well as one at the
top; what it cannot say is *why* an import was put inside a function. An import there hides a
dependency from a reader of the module's head, so each one is allowed only with a reason,
written once, below: a measured import time that the caller must not pay (a heavy or optional
library, or the command line's first instant, when Ctrl-C must already be caught), or a cycle.
The list may only shrink (issue 18 moved about thirty others, of no measured use, to the top
of their modules).

Import times: CPU seconds (``time.process_time``) of the import in a fresh interpreter that has
already imported the importing module, best of two, on the development machine (2 cores,
shared with other work, so a guide to within tens of percent). For scale, in a bare interpreter:
``import torch`` 2.0 s, ``sklearn`` 1.5 s, ``scipy.stats`` 0.96 s, ``matplotlib`` (figure and
Agg) 0.64 s, ``numba`` 0.37 s, ``scipy.special`` 0.34 s, ``pyarrow`` 0.14 s; ``import
gradfit`` and ``import gradfit.cli`` 0.01 and 0.03 s.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "gradfit"

# (importing module, imported module) -> why the import is inside a function. The figure is the
# CPU time of the import in a fresh interpreter that holds the importing module already.
ALLOWED: dict[tuple[str, str], str] = {
    # The command line's first instant: `gradfit` installs its signal handlers, then imports
    # the commands and with them torch: Ctrl-C or SIGTERM during that import prints one line,
    # not a traceback (test_safety_paths.py::test_a_signal_during_the_first_imports_is_one_line).
    ("gradfit.cli", "gradfit.cli.data_commands"): "Ctrl-C from the first import: 1.39 s",
    ("gradfit.cli", "gradfit.cli.demo"): "Ctrl-C from the first import: 1.38 s",
    ("gradfit.cli", "gradfit.cli.diagnose_commands"): "Ctrl-C from the first import (as above)",
    ("gradfit.cli", "gradfit.cli.path_command"): "Ctrl-C from the first import (as above)",
    ("gradfit.cli", "gradfit.cli.options"): "Ctrl-C from the first import: 1.29 s",
    ("gradfit.cli", "gradfit.cli.render"): "Ctrl-C from the first import: 1.32 s",
    # Commands that answer at once (issue 23): the parser's modules import no torch, so that
    # `gradfit --version`, `--help`, `fit --help` and a usage error take 0.2 s, not 2
    # (tests/test_startup.py); each command imports its work when it runs. The figures: the
    # import after the command's module (torch, or pyarrow, included).
    **{
        ("gradfit.cli.data_commands", module): f"a command's work, not the parser's: {cost}"
        for module, cost in (
            ("gradfit.checkpoint", "1.66 s"),
            ("gradfit.data", "pyarrow, 0.27 s"),
            ("gradfit.distributed", "1.49 s"),
            ("gradfit.fitting", "2.10 s"),
            ("gradfit.inference", "2.29 s"),
            ("gradfit.jobs", "2.12 s"),
            ("gradfit.observers", "torch, as gradfit.solvers: about 2 s"),
            ("gradfit.outputs", "1.86 s"),
            ("gradfit.persistence", "2.08 s"),
            ("gradfit.report", "1.79 s"),
            ("gradfit.solvers.collective", "torch: about 2 s"),
            ("gradfit.streaming", "2.02 s"),
            ("numpy", "0.11 s, predict --missing keep only"),
        )
    },
    # `fit --alpha cv` (moved out of gradfit.cli.data_commands, the figures measured there).
    **{
        ("gradfit.cli.cv_command", module): f"a command's work, not the parser's: {cost}"
        for module, cost in (
            ("gradfit.cv_fit", "2.00 s"),
            ("gradfit.distributed", "1.49 s"),
            ("gradfit.outputs", "1.86 s"),
            ("gradfit.persistence", "2.08 s"),
            ("gradfit.report", "1.79 s"),
            ("gradfit.solvers.collective", "torch: about 2 s"),
            ("gradfit.streaming", "2.02 s"),
        )
    },
    ("gradfit.cli.common", "gradfit.distributed"): (
        "a command's work, not the parser's: 1.49 s (joining a torchrun group; moved out of "
        "gradfit.cli.data_commands)"
    ),
    **{
        ("gradfit.cli.diagnose_commands", module): f"a command's work, not the parser's: {cost}"
        for module, cost in (
            ("gradfit.data", "pyarrow, 0.34 s"),
            ("gradfit.diagnostics", "1.89 s"),
            ("gradfit.fitting", "1.94 s"),
            ("gradfit.inference", "1.88 s"),
            ("gradfit.inference.anova", "as gradfit.inference"),
            ("gradfit.outputs", "2.29 s"),
            ("gradfit.persistence", "2.12 s"),
            ("gradfit.report", "1.82 s"),
            ("gradfit.stream_anova", "as gradfit.streaming"),
            ("gradfit.streaming", "2.35 s"),
        )
    },
    **{
        ("gradfit.cli.path_command", module): f"a command's work, not the parser's: {cost}"
        for module, cost in (
            ("numpy", "0.11 s"),
            ("gradfit.cv_fit", "torch: about 2 s"),
            ("gradfit.data", "pyarrow, 0.3 s"),
            ("gradfit.outputs", "about 2 s"),
            ("gradfit.report", "about 2 s"),
        )
    },
    ("gradfit.inference.formula", "gradfit.design"): (
        "formulaic and pandas, for a formula only: 0.73 s (ols of matrices never loads them). "
        "A module-level `import gradfit.design` (a light package) would do, but any "
        "`import gradfit.x` there makes mypy report `anova` redefined in gradfit/__init__.py"
    ),
    ("gradfit.inference.formula", "gradfit.design.columns"): (
        "pandas, for a weights= or groups= column named in a formula's data only (as "
        "lm(weights = w)): 0.36 s"
    ),
    ("gradfit.cli.render", "tqdm"): (
        "a progress bar on a terminal only: 0.07 s (importlib.metadata, email), of `--help`'s 0.2"
    ),
    ("gradfit.settings", "torch"): (
        "a RunSettings' dtype and device, not the parser that reads the fields: 2.03 s"
    ),
    ("gradfit.settings", "numpy"): "a level or alphas given as NumPy values: 0.11 s",
    # Heavy or optional libraries, paid only by the code that uses them.
    ("gradfit.inference.distributions", "scipy"): "scipy.special, for p-values only: 0.23 s",
    # gradfit info reads a model file without torch or pyarrow (issue 23, test_startup.py):
    # what the model-file and output-path modules need for other work is imported there.
    ("gradfit.cli.data_commands", "gradfit.model_file"): (
        "a command's work, not the parser's: NumPy, 0.1 s"
    ),
    ("gradfit.tensorfile", "safetensors.torch"): (
        "torch, for writing a model or checkpoint only: about 2 s (2.7-7 s on a loaded machine)"
    ),
    ("gradfit.outputs", "gradfit.checkpoint"): (
        "torch, for a --checkpoint path only: about 2 s (5 s on a loaded machine)"
    ),
    ("gradfit.outputs", "gradfit.data.stream"): (
        "pyarrow, for a command that reads data only: 0.3 s (0.8 s on a loaded machine)"
    ),
    ("gradfit.outputs", "gradfit.datasets"): (
        "torch, for a command that reads data only: about 2 s (3.4 s on a loaded machine)"
    ),
    ("gradfit.observers", "torch.utils.tensorboard"): (
        "the optional [tensorboard] extra, for --tensorboard only: 0.29 s"
    ),
    ("gradfit.storage", "pyarrow.fs"): (
        "pyarrow's filesystems, for a URI (s3://, gs://, ...) only: 0.06 s beyond pyarrow; "
        "gradfit.atomic imports gradfit.storage, and a local path never loads them"
    ),
    ("gradfit.storage", "pyarrow"): "pyarrow itself (0.37 s), for a URI only (as above)",
    ("gradfit.report", "matplotlib.figure"): "the optional [plot] extra: 0.42 s",
    ("gradfit.report", "matplotlib.backends.backend_agg"): "the optional [plot] extra: 0.27 s",
    ("gradfit.solvers.compiled", "gradfit.solvers.numba_epoch"): (
        "numba: 0.24 s, then compiling; short fits never load it (test_compiled.py)"
    ),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_gradfit_module(name: str) -> bool:
    relative = Path(*name.split("."))
    return (PACKAGE.parent / relative).with_suffix(".py").is_file() or (
        PACKAGE.parent / relative / "__init__.py"
    ).is_file()


def imported_modules(node: ast.Import | ast.ImportFrom, importer: str, path: Path) -> set[str]:
    """The modules one import statement loads: ``from gradfit.solvers import compiled`` is
    gradfit.solvers.compiled; ``from gradfit.data import read_table`` is gradfit.data."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    base = node.module or ""
    if node.level:  # relative: from the importing module's package
        package = importer.split(".") if path.name == "__init__.py" else importer.split(".")[:-1]
        base = ".".join([*package[: len(package) - node.level + 1], *filter(None, [base])])
    names = set()
    for alias in node.names:
        submodule = f"{base}.{alias.name}"
        names.add(submodule if is_gradfit_module(submodule) else base)
    return names


def imports_in_function_bodies(
    tree: ast.Module, importer: str, path: Path
) -> dict[tuple[str, str], list[int]]:
    """The import statements in the function and method bodies of one module, at any depth:
    (importer, imported module) -> line numbers."""
    found: dict[tuple[str, str], list[int]] = {}
    for function in ast.walk(tree):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for statement in function.body:
            for node in ast.walk(statement):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    for imported in imported_modules(node, importer, path):
                        lines = found.setdefault((importer, imported), [])
                        if node.lineno not in lines:  # a nested function is walked twice
                            lines.append(node.lineno)
    return found


def imports_inside_functions() -> dict[tuple[str, str], list[str]]:
    """Every import inside a function in src/gradfit: (importer, imported module) -> the
    places ("gradfit/x.py:12") where it is written."""
    found: dict[tuple[str, str], list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        importer = module_name(path)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for pair, lines in imports_in_function_bodies(tree, importer, path).items():
            where = path.relative_to(PACKAGE.parent)
            found[pair] = [f"{where}:{line}" for line in lines]
    return found


def test_imports_inside_functions_are_the_listed_ones() -> None:
    found = imports_inside_functions()
    new = {pair: places for pair, places in found.items() if pair not in ALLOWED}
    assert not new, (
        "imports inside functions that tests/test_layers.py does not list: "
        + "; ".join(f"{a} imports {b} at {', '.join(p)}" for (a, b), p in sorted(new.items()))
        + ". Import at the top of the module; or, if the import time is measured and must not "
        "be paid there (or there is a cycle), add the pair to ALLOWED with the figure."
    )


def test_every_listed_import_inside_a_function_still_exists() -> None:
    """The list only shrinks: an import moved to the top leaves the list with it."""
    stale = sorted(set(ALLOWED) - set(imports_inside_functions()))
    assert not stale, f"no longer imported inside a function, remove from ALLOWED: {stale}"


def test_every_reason_is_written() -> None:
    assert all(reason.strip() for reason in ALLOWED.values())


def test_the_scan_sees_imports_inside_functions(tmp_path: Path) -> None:
    """The scanner itself: a method's import, a nested function's, a relative one; not the
    module's own head or a class body."""
    source = (
        "import os\n"
        "class A:\n"
        "    import sys\n"
        "    def m(self):\n"
        "        from gradfit.solvers import compiled\n"
        "        def inner():\n"
        "            from . import errors\n"
        "        return inner\n"
    )
    found = imports_in_function_bodies(ast.parse(source), "gradfit.fitting", PACKAGE / "fitting.py")
    assert found == {
        ("gradfit.fitting", "gradfit.solvers.compiled"): [5],
        ("gradfit.fitting", "gradfit.errors"): [7],
    }
