"""Settings with a home (:mod:`gradfit.settings`): each default written once, each bad value one
message, every field an option of the command line (generated from its metadata, the default
shown from the constant), one decision to stream, one resolution of the device.

Numbers: a fit given its settings as objects and the same fit given them keyword by keyword
run the same code on the same data, so their coefficients are compared bit for bit.
"""

from __future__ import annotations

import argparse
import inspect
from dataclasses import MISSING, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from cli_helpers import gradfit_cli

import gradfit
import gradfit.streaming
from gradfit.cli import build_parser
from gradfit.cli.config_options import (
    add_settings_arguments,
    flag_of,
    option_fields,
    settings_from_args,
)
from gradfit.cli.options import byte_size
from gradfit.errors import DataError, ValidationError
from gradfit.estimator import GradientDescentRegressor
from gradfit.fitting import fit_data
from gradfit.settings import (
    DEFAULT_BATCH_ROWS,
    DEFAULT_CHECKPOINT_EVERY,
    DEFAULT_DEVICE,
    DEFAULT_INFERENCE,
    DEFAULT_LEVEL,
    DEFAULT_MEMORY_LIMIT,
    DEFAULT_SEED,
    DEFAULT_SHUFFLE_BUFFER,
    ApplySettings,
    CheckpointSettings,
    ReadSettings,
    RunSettings,
    as_keywords,
    format_size,
    resolve_device,
)
from gradfit.solvers.config import SolverConfig
from gradfit.streaming import fit_stream, use_streaming

pytestmark = pytest.mark.usefixtures("one_thread")

SETTINGS = (ReadSettings, RunSettings, CheckpointSettings)
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")


def _help_of(command: str) -> dict[str, argparse.Action]:
    """The options of a subcommand by flag."""
    sub = build_parser()._subparsers._group_actions[0].choices[command]  # type: ignore[union-attr]
    return {flag: action for action in sub._actions for flag in action.option_strings}


# ----------------------------------------------------------------------------- defaults


def test_every_default_comes_from_its_constant() -> None:
    assert ReadSettings() == ReadSettings(
        stream=None,
        memory_limit=DEFAULT_MEMORY_LIMIT,
        batch_rows=DEFAULT_BATCH_ROWS,
        shuffle_buffer=DEFAULT_SHUFFLE_BUFFER,
    )
    run = RunSettings()
    assert (run.seed, run.dtype, run.device) == (DEFAULT_SEED, torch.float64, DEFAULT_DEVICE)
    assert (run.inference, run.level) == (DEFAULT_INFERENCE, DEFAULT_LEVEL)
    assert CheckpointSettings() == CheckpointSettings(None, DEFAULT_CHECKPOINT_EVERY, False)
    # The old homes of the constants are the same objects, not copies.
    for name in ("DEFAULT_BATCH_ROWS", "DEFAULT_MEMORY_LIMIT", "DEFAULT_SHUFFLE_BUFFER"):
        assert getattr(gradfit.streaming, name) is getattr(gradfit.settings, name)


def test_gradfit_fit_takes_every_field_with_its_default() -> None:
    """gradfit.fit's keywords are the settings' fields (the command line passes them by name,
    :func:`as_keywords`), each with the field's default."""
    parameters = inspect.signature(gradfit.fit).parameters
    for kind in SETTINGS:
        for f in fields(kind):
            assert parameters[f.name].kind is inspect.Parameter.KEYWORD_ONLY, f.name
            default = f.default
            if f.name == "dtype":  # the field holds the name (no torch at import: issue 23)
                default = getattr(torch, default)
            assert parameters[f.name].default == default, f.name
    assert set(as_keywords(ReadSettings(), RunSettings(), CheckpointSettings())) <= set(parameters)


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kind", "values", "message"),
    [
        (ReadSettings, {"stream": "yes"}, "stream must be True, False or None"),
        (ReadSettings, {"memory_limit": -1}, "memory_limit must be a number of bytes >= 0"),
        (ReadSettings, {"memory_limit": 1.5}, "memory_limit must be a number of bytes >= 0"),
        (ReadSettings, {"batch_rows": 0}, "batch_rows must be a positive integer up to 2**63 - 1"),
        (ReadSettings, {"batch_rows": 2**63}, "batch_rows must be a positive integer up to"),
        (ReadSettings, {"shuffle_buffer": True}, "shuffle_buffer must be a positive integer"),
        (RunSettings, {"seed": -1}, "seed must be an integer from 0 to 2**63 - 1, or None"),
        (RunSettings, {"seed": 2**63}, "seed must be an integer from 0 to 2**63 - 1, or None"),
        (RunSettings, {"seed": 1.0}, "seed must be an integer from 0 to 2**63 - 1, or None"),
        (RunSettings, {"dtype": "float16"}, "dtype must be 'float32' or 'float64', got 'float16'"),
        (RunSettings, {"dtype": torch.int64}, "dtype must be 'float32' or 'float64'"),
        (RunSettings, {"device": 0}, "device must be 'auto', 'cpu', 'cuda' or a torch.device"),
        (RunSettings, {"inference": 1}, "inference must be a covariance type"),
        (RunSettings, {"level": 1.0}, "level must be strictly between 0 and 1 (e.g. 0.95)"),
        (RunSettings, {"level": "0.9"}, "level must be a number strictly between 0 and 1"),
        (CheckpointSettings, {"checkpoint": 3}, "checkpoint must be a path or None, got int"),
        (CheckpointSettings, {"checkpoint_every": 0}, "checkpoint_every must be a positive"),
        (CheckpointSettings, {"resume": 1}, "resume must be True or False, got 1"),
    ],
)
def test_a_bad_setting_is_one_message(
    kind: type[Any], values: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError) as info:
        kind(**values)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_the_library_refuses_a_bad_setting_before_reading(tmp_path: Path) -> None:
    missing = tmp_path / "nothing.csv"  # never read: the settings are refused first
    with pytest.raises(ValidationError, match="batch_rows must be a positive integer"):
        gradfit.fit(missing, ["y"], batch_rows=0)
    with pytest.raises(ValidationError, match="seed must be an integer"):
        gradfit.fit(missing, ["y"], seed=-3)


def test_dtype_is_taken_by_name_too() -> None:
    assert RunSettings(dtype="float32").dtype is torch.float32
    assert RunSettings(dtype="float64") == RunSettings()


# ----------------------------------------------------------------------------- command line

# The command that carries each settings class's options: fit all of them; predict and evaluate
# the reading options but the shuffle buffer (they do not train), and how a model is applied.
COMMANDS = {
    "fit": {kind: [f.name for f in fields(kind)] for kind in SETTINGS},
    "predict": {
        ReadSettings: ["stream", "memory_limit", "batch_rows"],
        ApplySettings: ["missing", "unknown_level"],
    },
    "evaluate": {
        ReadSettings: ["stream", "memory_limit", "batch_rows"],
        ApplySettings: ["missing", "unknown_level"],
    },
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_field_has_an_option_showing_its_default(command: str) -> None:
    options = _help_of(command)
    for kind, names in COMMANDS[command].items():
        for f in option_fields(kind):
            if f.name not in names:
                assert flag_of(f) not in options, f.name
                continue
            action = options[flag_of(f)]
            cli = f.metadata["cli"]
            default = cli["default"] if cli["default"] is not None else f.default
            shown = {
                "byte_size": lambda v: format_size(v),
                "dtype": lambda v: str(v).removeprefix("torch."),
            }.get(cli["kind"], lambda v: v)(default)
            if cli["show_default"]:
                assert f"({shown})" in (action.help or ""), (f.name, action.help)
    assert set(option_fields(RunSettings)) == set(fields(RunSettings))  # every field has one


def test_the_help_renders_the_defaults_from_the_constants() -> None:
    options = _help_of("fit")
    assert options["--memory-limit"].help.endswith(f"({format_size(DEFAULT_MEMORY_LIMIT)})")  # type: ignore[union-attr]
    assert format_size(DEFAULT_MEMORY_LIMIT) == "256M"
    assert options["--batch-rows"].help.endswith(f"({DEFAULT_BATCH_ROWS})")  # type: ignore[union-attr]
    assert options["--shuffle-buffer"].help.endswith(f"({DEFAULT_SHUFFLE_BUFFER})")  # type: ignore[union-attr]
    assert options["--checkpoint-every"].help.endswith(f"({DEFAULT_CHECKPOINT_EVERY})")  # type: ignore[union-attr]
    assert f"--json ({DEFAULT_LEVEL})" in (options["--level"].help or "")
    assert options["--device"].help.endswith("(auto)")  # type: ignore[union-attr]


def test_an_option_default_is_the_field_default_as_the_command_line_writes_it() -> None:
    """The help and the default are generated from the field, not written beside it."""
    parser = argparse.ArgumentParser()
    add_settings_arguments(parser, ReadSettings)
    (memory,) = [a for a in parser._actions if "--memory-limit" in a.option_strings]
    assert memory.default == "256M" and (memory.help or "").endswith("(256M)")
    assert parser.parse_args([]).read_memory_limit == DEFAULT_MEMORY_LIMIT  # parsed by the type
    assert settings_from_args(ReadSettings, parser.parse_args([])) == ReadSettings()


@pytest.mark.parametrize(
    ("size", "text"),
    [(256 * 2**20, "256M"), (2**30, "1G"), (1536 * 2**10, "1536K"), (1000, "1000")],
)
def test_format_size_is_what_byte_size_reads(size: int, text: str) -> None:
    assert format_size(size) == text and byte_size(text) == size


def _parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["fit", "crops", "--target", "apples", "--out", "m", *argv])


def test_no_option_gives_the_library_defaults_but_the_device() -> None:
    args = _parse()
    assert settings_from_args(ReadSettings, args) == ReadSettings()
    assert settings_from_args(RunSettings, args) == RunSettings(device="auto")
    assert settings_from_args(CheckpointSettings, args) == CheckpointSettings()
    assert args.run_inference is None and args.run_level is None  # not given: no confint table


def test_options_round_trip_into_the_same_settings() -> None:
    reading = ReadSettings(stream=False, memory_limit=3 * 2**30, batch_rows=7, shuffle_buffer=9)
    run = RunSettings(seed=2**63 - 1, dtype="float32", device="cpu", inference="HC3", level=0.9)
    checkpointing = CheckpointSettings("state.ckpt", 4, True)
    args = _parse(
        *["--no-stream", "--memory-limit", "3G", "--batch-rows", "7", "--shuffle-buffer", "9"],
        *["--seed", str(2**63 - 1), "--dtype", "float32", "--device", "cpu"],
        *["--cov", "HC3", "--level", "0.9"],
        *["--checkpoint", "state.ckpt", "--checkpoint-every", "4", "--resume"],
    )
    assert settings_from_args(ReadSettings, args) == reading
    assert settings_from_args(RunSettings, args) == run
    assert settings_from_args(CheckpointSettings, args) == checkpointing
    assert _parse("--stream").read_stream is True


def test_predict_reads_its_reading_options() -> None:
    args = build_parser().parse_args(["predict", "m", "d", "--stream", "--batch-rows", "5"])
    assert settings_from_args(ReadSettings, args) == ReadSettings(stream=True, batch_rows=5)


# ----------------------------------------------------------------------------- the decision


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A file of 40 rows (~500 bytes, ~2 KB estimated in memory) and a directory of two."""
    root = tmp_path_factory.mktemp("sources")
    rows = "".join(f"{i},{i % 3},{2 * i + 1}\n" for i in range(40))
    (root / "one.csv").write_text("a,b,y\n" + rows)
    (root / "parts").mkdir()
    for i in range(2):
        (root / "parts" / f"{i}.csv").write_text("a,b,y\n" + rows)
    return {"file": str(root / "one.csv"), "dir": str(root / "parts"), "builtin": "crops"}


LARGE = 100  # bytes: the file's estimate (4x its ~500 bytes) is above it
SMALL = DEFAULT_MEMORY_LIMIT
GROUP_REFUSED = "several processes stream their shards of the data; leave out stream=False"
CHECKPOINT_REFUSED = "a checkpointed fit streams the data; leave out stream=False"
# Not a file: it was looked for as one, "crops: no such file; check the path".
BUILTIN_REFUSED = "the built-in data set is read whole, never streamed; leave out --stream"

# (stream, source, memory limit, by) -> streamed, or the error (type, words of its message);
# by: "" alone, "group" several processes, "checkpoint" a checkpointed fit.
TABLE: list[tuple[bool | None, str, int, str, object]] = [
    (None, "file", SMALL, "", False),
    (None, "file", LARGE, "", True),
    (None, "dir", SMALL, "", True),
    (None, "builtin", LARGE, "", False),
    (True, "file", SMALL, "", True),
    (True, "builtin", SMALL, "", (ValidationError, BUILTIN_REFUSED)),
    (False, "file", LARGE, "", False),
    (False, "dir", SMALL, "", (DataError, "not a single file")),
    (None, "file", SMALL, "group", True),
    (None, "builtin", SMALL, "group", (ValidationError, "and the built-in data set is read")),
    (True, "file", SMALL, "group", True),
    (False, "file", SMALL, "group", (ValidationError, GROUP_REFUSED)),
    (False, "dir", LARGE, "group", (ValidationError, GROUP_REFUSED)),
    (None, "file", SMALL, "checkpoint", True),
    (True, "dir", SMALL, "checkpoint", True),
    (False, "file", SMALL, "checkpoint", (ValidationError, CHECKPOINT_REFUSED)),
]


@pytest.mark.parametrize(("stream", "source", "limit", "by", "expected"), TABLE)
def test_the_stream_decision_table(
    sources: dict[str, str], stream: bool | None, source: str, limit: int, by: str, expected: object
) -> None:
    reading = ReadSettings(stream=stream, memory_limit=limit)

    def decide() -> bool:
        return use_streaming(
            sources[source],
            SolverConfig(),
            reading,
            group=by == "group",
            checkpoint=by == "checkpoint",
        )

    if isinstance(expected, tuple):
        error, words = expected
        with pytest.raises(error) as info:  # type: ignore[call-overload]
            decide()
        assert str(info.value).startswith(sources[source]) and words in str(info.value)
    else:
        assert decide() is expected
        # The old keywords reach the same decision.
        if not by:
            assert (
                use_streaming(sources[source], None, stream=stream, memory_limit=limit) is expected
            )


@pytest.mark.parametrize(
    ("stream", "source", "limit", "why"),
    [
        (None, "file", LARGE, "needs more than the memory limit of 0 MiB in memory"),
        (None, "dir", SMALL, "is several files, read by streaming"),
        (True, "file", SMALL, "is streamed"),
    ],
)
def test_a_solver_that_cannot_stream_is_refused_where_streaming_is_decided(
    sources: dict[str, str], stream: bool | None, source: str, limit: int, why: str
) -> None:
    reading = ReadSettings(stream=stream, memory_limit=limit)
    with pytest.raises(ValidationError, match="trains on data in memory") as info:
        use_streaming(sources[source], SolverConfig(solver="scratch"), reading)
    assert why in str(info.value)
    assert use_streaming(sources[source], None, reading)  # predict and evaluate always can


def test_no_memory_limit_reads_a_single_file_whole(sources: dict[str, str]) -> None:
    assert not use_streaming(sources["file"], SolverConfig(), ReadSettings(memory_limit=None))
    assert use_streaming(sources["dir"], SolverConfig(), ReadSettings(memory_limit=None))


def test_the_decision_refuses_unknown_options(sources: dict[str, str]) -> None:
    with pytest.raises(TypeError, match="use_streaming\\(\\) got an unexpected keyword argument"):
        use_streaming(sources["file"], None, memory=3)


def test_the_command_line_refuses_a_checkpoint_without_streaming(
    capsys: pytest.CaptureFixture[str], sources: dict[str, str], tmp_path: Path
) -> None:
    run = gradfit_cli(
        capsys,
        *["fit", sources["file"], "--target", "y", "--out", tmp_path / "m.safetensors"],
        *["--checkpoint", tmp_path / "state.ckpt", "--no-stream"],
    )
    assert run.code == 2 and run.out == ""
    assert run.err == f"gradfit: error: {sources['file']}: {CHECKPOINT_REFUSED} (--no-stream)\n"


# ----------------------------------------------------------------------------- the fits


def test_settings_objects_and_keywords_fit_alike(sources: dict[str, str]) -> None:
    """fit_data and fit_stream take their settings as objects or keyword by keyword: the same
    fit, to the bit; a keyword that names no setting is Python's TypeError."""
    config = SolverConfig(solver="sgd", max_epochs=3)
    run = RunSettings(seed=7, dtype="float32")
    a = fit_data(sources["file"], ["y"], None, config, run=run)
    b = fit_data(sources["file"], ["y"], None, config, seed=7, dtype=torch.float32)
    c = fit_data(sources["file"], ["y"], None, config, run=replace(run, seed=1), seed=7)
    for other in (b, c):
        assert torch.equal(a.result.weight, other.result.weight)
    assert a.model.hyperparameters["dtype"] == "float32" and a.model.hyperparameters["seed"] == 7
    reading = ReadSettings(batch_rows=9, shuffle_buffer=11)
    d = fit_stream(sources["dir"], ["y"], None, config, reading=reading, run=run)
    e = fit_stream(sources["dir"], ["y"], None, config, batch_rows=9, shuffle_buffer=11, seed=7,
                   dtype="float32")  # fmt: skip
    assert torch.equal(d.result.weight, e.result.weight)
    f = gradfit.fit(sources["dir"], ["y"], None, config, batch_rows=9, shuffle_buffer=11, seed=7,
                    dtype="float32")  # fmt: skip
    assert torch.equal(d.result.weight, f.result.weight)
    with pytest.raises(TypeError, match="fit_data\\(\\) got an unexpected keyword argument 'sed'"):
        fit_data(sources["file"], ["y"], sed=7)
    with pytest.raises(TypeError, match="fit_stream\\(\\) got an unexpected keyword argument"):
        fit_stream(sources["file"], ["y"], batchrows=7)


def test_a_streamed_fit_called_alone_has_no_memory_limit(sources: dict[str, str]) -> None:
    """As before the settings had a home: fit_stream weighs no limit unless given one, while
    gradfit.fit gives it the default (the limit is checked against the statistics' size)."""
    report = fit_stream(sources["file"], ["y"], reading=ReadSettings(memory_limit=None))
    assert report.n_samples == 40
    with pytest.raises(DataError, match="above the memory limit"):
        fit_stream(sources["file"], ["y"], memory_limit=10)


# ----------------------------------------------------------------------------- the device


def test_cpu_and_auto_resolve_without_cuda() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert RunSettings(device="auto").torch_device().type == expected
    with pytest.raises(ValidationError, match="device must be 'auto', 'cpu', 'cuda' or a torch"):
        resolve_device("gpu")


CUDA_MISSING = "no CUDA device is available; use cpu or auto (--device cpu, or device='cpu' in"


@NO_CUDA
@pytest.mark.parametrize("device", ["cuda", "cuda:1", torch.device("cuda")])
def test_cuda_without_cuda_is_one_message(device: str | torch.device) -> None:
    with pytest.raises(ValidationError) as info:
        resolve_device(device)
    assert str(info.value) == f"device {str(device)!r}: {CUDA_MISSING} Python)"


@NO_CUDA
def test_every_face_resolves_the_device_alike(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The estimator, the library and the command line say the same."""
    X, y = np.arange(20.0).reshape(10, 2), np.arange(10.0)
    with pytest.raises(ValidationError, match=CUDA_MISSING.replace("(", "\\(")):
        GradientDescentRegressor(device="cuda").fit(X, y)
    with pytest.raises(ValidationError, match=CUDA_MISSING.replace("(", "\\(")):
        gradfit.fit("crops", ["apples"], device="cuda")
    run = gradfit_cli(
        capsys, "fit", "crops", "--target", "apples", "--out", tmp_path / "m", "--device", "cuda"
    )
    assert run.code == 2 and run.err == f"gradfit: error: device 'cuda': {CUDA_MISSING} Python)\n"


def test_auto_is_the_library_default_nowhere() -> None:
    """The library trains on the CPU unless told otherwise; the command line's default is
    auto (a field whose option has a default of its own)."""
    device = next(f for f in fields(RunSettings) if f.name == "device")
    assert device.default == "cpu" and device.metadata["cli"]["default"] == "auto"
    assert device.default is not MISSING
