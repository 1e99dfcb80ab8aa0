"""Model files and checkpoints read as a hostile or careless user would hand them over.

Regular files only (a named pipe, a device, a directory, a socket are refused after an
``os.stat``, never opened: a FIFO would block and ``/dev/zero`` never ends); headers bounded and
checked against the file size and the names before anything is allocated; a SHA-256 seal
verified on loading (files of the previous format load unverified, and ``info`` says so); every
metadata field checked for type and range. Every refusal is one line that names the file, exit
code 2, no traceback, within seconds.
"""

from __future__ import annotations

import json
import math
import os
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import safetensors.torch
import torch

from gradfit.checkpoint import Checkpoint, check_solver
from gradfit.cli import main
from gradfit.errors import ModelFileError, ValidationError
from gradfit.persistence import SavedModel, load_model, save_model
from gradfit.solvers.config import SolverConfig
from gradfit.solvers.engine import init_state_from_stats
from gradfit.solvers.stats import SufficientStats
from gradfit.tensorfile import header_document, seal

DATA = Path(__file__).parent / "data"
OLD_MODEL = DATA / "model-format2.safetensors"  # written by gradfit before checksums (format 2)
# The rows it was fitted on (lstsq, target y), and what its intervals were then.
TINY = """a,b,y
2.041,-2.556,11.155
0.418,-0.568,4.817
-0.453,-0.216,2.946
-2.02,-0.232,0.407
-0.865,3.323,-4.968
0.226,-0.353,4.145
-0.281,-0.668,3.826
-1.055,-0.391,2.17
0.482,-0.239,4.289
0.958,-0.2,4.895
0.024,1.546,-0.047
0.545,-0.505,4.895
"""
TIMEOUT = 120  # seconds for one gradfit process (importing torch on a busy machine included)


# ---------------------------------------------------------------------------------------------
# helpers


def cli(*argv: str | Path) -> tuple[int, str, str]:
    """``gradfit ARGV`` in this process: the exit code, stdout and stderr are captured by the
    caller's capsys; here only the code."""
    try:
        code = main([str(arg) for arg in argv])
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, "", ""


def refused_in_process(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> str:
    """Exit 2 and exactly one ``gradfit: error:`` line; that line."""
    capsys.readouterr()
    code, _, _ = cli(*argv)
    captured = capsys.readouterr()
    assert code == 2, (code, captured.err)
    assert captured.err.count("\n") == 1 and captured.err.startswith("gradfit: error: "), (
        captured.err
    )
    assert "Traceback" not in captured.err
    return captured.err.rstrip("\n")


def spawn(*argv: str | Path) -> subprocess.Popen[str]:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen(
        [sys.executable, "-m", "gradfit", *map(str, argv)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def one_line_exit_2(proc: subprocess.Popen[str], *says: str) -> str:
    """Wait (bounded: a hang fails the test) for exit 2 with one error line, no traceback."""
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError(f"gradfit {proc.args} did not return within {TIMEOUT} s") from None
    assert proc.returncode == 2, (proc.returncode, err[-2000:])
    assert out == "", out
    assert err.count("\n") == 1 and err.startswith("gradfit: error: "), err[-3000:]
    for bad in ("Traceback", "internal error", "Warning"):
        assert bad not in err, err
    for fragment in says:
        assert fragment in err, (fragment, err)
    return err.rstrip("\n")


def header_of(path: Path) -> tuple[dict[str, Any], bytes]:
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + length]), data[8 + length :]


def write_header(path: Path, header: dict[str, Any], body: bytes) -> None:
    raw = json.dumps(header).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + body)


def rewrite(
    path: Path, edit: Any = None, *, raw: tuple[str, str] | None = None, sealed: bool = True
) -> None:
    """Edit the gradfit document (``edit(document)`` in place, then ``raw``: text replaced in
    its JSON) and write the file again, sealed as gradfit seals it (a well-formed file that
    says something hostile), or with the seal left as it was (``sealed=False``: damaged)."""
    header, body = header_of(path)
    document = json.loads(header["__metadata__"]["gradfit"])
    if edit is not None:
        edit(document)
    text = json.dumps(document)
    if raw is not None:
        assert raw[0] in text, raw[0]
        text = text.replace(*raw)
    if sealed:
        path.write_bytes(seal(safetensors.torch.load(path.read_bytes()), text))
        return
    header["__metadata__"]["gradfit"] = text
    write_header(path, header, body)


def deep_text(depth: int) -> str:
    """JSON lists nested ``depth`` levels (json.dumps itself could not write them)."""
    return "[" * depth + "1" + "]" * depth


def flip_bit(path: Path, tensor: str, bit: int = 3) -> None:
    """Flip one bit inside ``tensor``'s bytes (the header's offsets say where)."""
    header, _ = header_of(path)
    data = bytearray(path.read_bytes())
    (length,) = struct.unpack("<Q", data[:8])
    begin = 8 + length + header[tensor]["data_offsets"][0]
    data[begin] ^= 1 << bit
    path.write_bytes(bytes(data))


def small_model() -> SavedModel:
    return SavedModel(
        weight=torch.tensor([[1.5, -2.0]], dtype=torch.float64),
        bias=torch.tensor([3.0], dtype=torch.float64),
        feature_names=("a", "b"),
        target_names=("y",),
        solver="gd",
    )


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.csv"
    path.write_text(TINY, encoding="utf-8")
    return path


@pytest.fixture
def lstsq_model(tmp_path: Path, tiny: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    model = tmp_path / "m.safetensors"
    code, _, _ = cli("fit", tiny, "--target", "y", "--solver", "lstsq", "--out", model, "--quiet")
    assert code == 0, capsys.readouterr().err
    return model


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "pipe.safetensors"
    os.mkfifo(path)
    yield path


# ---------------------------------------------------------------------------------------------
# regular files only


def test_special_files_are_refused_without_being_opened(tmp_path: Path, fifo: Path) -> None:
    directory = tmp_path / "dir.safetensors"
    directory.mkdir()
    sock_path = tmp_path / "s.sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sock_path))
    try:
        cases = {
            fifo: "a named pipe (FIFO)",
            Path("/dev/zero"): "a character device",
            directory: "a directory",
            sock_path: "a socket",
        }
        for path, kind in cases.items():
            start = time.monotonic()
            with pytest.raises(ModelFileError) as exc:
                load_model(path)
            assert time.monotonic() - start < 5
            assert str(exc.value) == (f"{path}: is not a regular file ({kind}); give a model file")
    finally:
        sock.close()


def test_a_symlink_to_a_model_is_followed_but_one_to_a_fifo_is_not(
    tmp_path: Path, fifo: Path
) -> None:
    model = tmp_path / "m.safetensors"
    save_model(model, small_model())
    (tmp_path / "link").symlink_to(model)
    assert load_model(tmp_path / "link").n_features == 2
    (tmp_path / "pipe-link").symlink_to(fifo)
    with pytest.raises(ModelFileError, match=r"is not a regular file \(a named pipe \(FIFO\)\)"):
        load_model(tmp_path / "pipe-link")


def _keeper(path: Path, resume: bool = True) -> tuple[Checkpoint, Any]:
    Z = torch.arange(12.0, dtype=torch.float64).reshape(6, 2) ** 1.5
    stats = SufficientStats.compute(Z, Z.sum(1, keepdim=True))
    state = init_state_from_stats(stats, SolverConfig())
    return Checkpoint(path, {"rows": 6}, {"max_epochs": 10}, resume_from_file=resume), state


def test_a_checkpoint_that_is_a_fifo_or_a_device_is_refused(tmp_path: Path, fifo: Path) -> None:
    for path, kind in ((fifo, "a named pipe (FIFO)"), (Path("/dev/zero"), "a character device")):
        keeper, state = _keeper(path)
        start = time.monotonic()
        with pytest.raises(ModelFileError) as exc:
            keeper.resume(state)
        assert time.monotonic() - start < 5
        assert str(exc.value) == f"{path}: is not a regular file ({kind}); give a checkpoint"
    (tmp_path / "d.ckpt").mkdir()
    keeper, state = _keeper(tmp_path / "d.ckpt")
    with pytest.raises(ModelFileError, match=r"is not a regular file \(a directory\)"):
        keeper.resume(state)
    keeper, state = _keeper(tmp_path / "absent.ckpt")  # absent: a fresh start, said so
    assert keeper.resume(state) is None
    assert keeper.notes == [f"no checkpoint at {tmp_path / 'absent.ckpt'}; starting afresh"]


@pytest.mark.slow
def test_cli_on_a_fifo_and_on_dev_zero_returns_at_once(
    tmp_path: Path, fifo: Path, tiny: Path
) -> None:
    runs = [
        (spawn("info", fifo), str(fifo)),
        (spawn("predict", "/dev/zero", tiny), "/dev/zero"),
        (spawn("evaluate", fifo, tiny), str(fifo)),
        (
            spawn(
                "fit", tiny, "--target", "y", "--solver", "gd", "--checkpoint", fifo,
                "--resume", "--out", tmp_path / "m.safetensors",
            ),
            str(fifo),
        ),
    ]  # fmt: skip
    for proc, path in runs:
        line = one_line_exit_2(proc, path, "not a regular file")
        assert "named pipe" in line or "character device" in line
    assert not (tmp_path / "m.safetensors").exists()


# ---------------------------------------------------------------------------------------------
# bounded reads


def _crafted(tmp_path: Path) -> dict[str, Path]:
    """Hand-made model files whose headers lie about sizes."""
    doc = json.dumps(
        {
            "format": "gradfit-model",
            "format_version": 2,
            "feature_names": ["a", "b"],
            "target_names": ["y"],
        }
    )
    files: dict[str, Path] = {}

    def header(name: str, entries: dict[str, Any], body: bytes = b"\0" * 24) -> None:
        files[name] = tmp_path / f"{name}.safetensors"
        write_header(files[name], {"__metadata__": {"gradfit": doc}, **entries}, body)

    huge = [10**9, 10**9]
    header(
        "huge_shape",
        {
            "weight": {"dtype": "F64", "shape": huge, "data_offsets": [0, 16]},
            "bias": {"dtype": "F64", "shape": [1], "data_offsets": [16, 24]},
        },
    )
    header(
        "beyond_eof",
        {
            "weight": {"dtype": "F32", "shape": huge, "data_offsets": [0, 4 * 10**18]},
            "bias": {"dtype": "F32", "shape": [1], "data_offsets": [4 * 10**18, 4 * 10**18 + 4]},
        },
    )
    header(
        "foreign_dtype",
        {
            "weight": {"dtype": "U8", "shape": [4, 5], "data_offsets": [0, 20]},
            "bias": {"dtype": "U8", "shape": [4], "data_offsets": [20, 24]},
        },
    )
    header(
        "overlap",
        {
            "weight": {"dtype": "F64", "shape": [1, 2], "data_offsets": [0, 16]},
            "bias": {"dtype": "F64", "shape": [1], "data_offsets": [8, 16]},
        },
        b"\0" * 16,
    )
    # The same tensor twice: which entry counts would depend on the reader.
    entry = '{"dtype": "F64", "shape": [1], "data_offsets": [0, 8]}'
    raw = '{"bias": ' + entry + ', "bias": ' + entry + ', "weight": ' + entry + "}"
    files["repeated_key"] = tmp_path / "repeated_key.safetensors"
    files["repeated_key"].write_bytes(struct.pack("<Q", len(raw)) + raw.encode() + b"\0" * 8)
    files["length_2_62"] = tmp_path / "length_2_62.safetensors"
    files["length_2_62"].write_bytes(struct.pack("<Q", 2**62) + b"{}" + b"\0" * 100)
    files["length_over_size"] = tmp_path / "length_over_size.safetensors"
    files["length_over_size"].write_bytes(struct.pack("<Q", 5000) + b'{"a": 1}')
    return files


def test_lying_headers_are_refused_before_any_allocation(tmp_path: Path) -> None:
    files = _crafted(tmp_path)
    says = {
        "huge_shape": "declares shape [1000000000, 1000000000] of F64 (8000000000000000000 "
        "bytes) but its data offsets span 16 bytes",
        "beyond_eof": "truncated: the file has",
        "foreign_dtype": "has dtype U8; gradfit model tensors are F32 or F64",
        "overlap": "data offsets overlap or leave gaps",
        "length_2_62": "its header length is impossible",
        "repeated_key": "corrupt: the safetensors header repeats a key",
        "length_over_size": "truncated: the header alone needs 5000 bytes",
    }
    for name, path in files.items():
        start = time.monotonic()
        with pytest.raises(ModelFileError) as exc:
            load_model(path)
        assert time.monotonic() - start < 2, name
        message = str(exc.value)
        assert message.startswith(f"{path}: ") and "\n" not in message
        assert says[name] in message, (name, message)


def test_declared_shapes_are_checked_against_the_names_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    save_model(path, small_model())
    header, body = header_of(path)
    text = header["__metadata__"]["gradfit"]
    # (1, 2) declared (2, 1): byte-consistent, but the tensor table is sealed too.
    header["weight"]["shape"] = [2, 1]
    write_header(path, header, body)
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        load_model(path)
    # Sealed that way (a well-formed file): refused by the names, before any tensor is built.
    weight = torch.tensor([[1.5], [-2.0]], dtype=torch.float64)
    path.write_bytes(seal({"weight": weight, "bias": torch.zeros(1).double()}, text))
    with pytest.raises(ModelFileError) as exc:
        load_model(path)
    assert str(exc.value).startswith(
        f"{path}: weight has shape (2, 1) but 1 target name(s) and 2 feature name(s) need "
        "shape (1, 2)"
    )


@pytest.mark.slow
def test_lying_headers_keep_memory_small(tmp_path: Path) -> None:
    """In a process of its own: loading every crafted file leaves the peak RSS near that of
    importing gradfit (a [1e9, 1e9] float64 tensor would be 8 EB)."""
    files = _crafted(tmp_path)
    script = (
        "import resource, sys\n"
        "from gradfit.persistence import load_model\n"
        "from gradfit.errors import ModelFileError\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "for path in sys.argv[1:]:\n"
        "    try:\n"
        "        load_model(path)\n"
        "    except ModelFileError:\n"
        "        pass\n"
        "    else:\n"
        "        raise SystemExit('loaded ' + path)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, *map(str, files.values())],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) < 50_000, done.stdout  # KiB: under 50 MB more than the imports


@pytest.mark.slow
def test_cli_on_lying_headers(tmp_path: Path, tiny: Path) -> None:
    files = _crafted(tmp_path)
    runs = [spawn("info", files["huge_shape"]), spawn("predict", files["beyond_eof"], tiny)]
    one_line_exit_2(runs[0], str(files["huge_shape"]), "declares shape")
    one_line_exit_2(runs[1], str(files["beyond_eof"]), "truncated")


# ---------------------------------------------------------------------------------------------
# integrity


def test_a_flipped_bit_in_the_weights_is_a_checksum_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    save_model(path, small_model())
    assert load_model(path).has_checksum
    for tensor in ("weight", "bias"):
        save_model(path, small_model())
        flip_bit(path, tensor)
        with pytest.raises(ModelFileError) as exc:
            load_model(path)
        assert str(exc.value) == (
            f"{path}: checksum mismatch: the file is corrupted; refit or restore it"
        )


def test_a_changed_description_is_a_checksum_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    save_model(path, small_model())
    rewrite(path, lambda doc: doc.update(feature_names=["b", "a"]), sealed=False)
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        load_model(path)
    header, body = header_of(path)
    del header["__metadata__"]["gradfit_sha256"]
    write_header(path, header, body)
    with pytest.raises(ModelFileError, match=r"its checksum \(gradfit_sha256\) is missing"):
        load_model(path)


def test_cli_names_the_corrupted_model(
    capsys: pytest.CaptureFixture[str], lstsq_model: Path, tiny: Path
) -> None:
    flip_bit(lstsq_model, "weight", bit=0)  # the lowest bit: a silent 1e-16 change before
    for argv in (("predict", lstsq_model, tiny), ("info", lstsq_model)):
        line = refused_in_process(capsys, *argv)
        assert line == (
            f"gradfit: error: {lstsq_model}: checksum mismatch: the file is corrupted; refit or "
            "restore it"
        )


def test_a_model_of_the_previous_format_still_loads_unverified(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny: Path
) -> None:
    model = load_model(OLD_MODEL)
    assert model.format_version == 2 and not model.has_checksum  # before checksums (3)
    X = torch.tensor([[2.041, -2.556], [0.418, -0.568]], dtype=torch.float64)
    bounds = model.interval_predictor().predict(X, interval="prediction")
    # As gradfit printed them when the file was written (before checksums).
    np.testing.assert_allclose(
        bounds.lower.numpy()[:, 0], [11.004722541223577, 4.604816153099288], rtol=1e-12
    )
    np.testing.assert_allclose(
        bounds.upper.numpy()[:, 0], [11.463715636608393, 4.996750070583814], rtol=1e-12
    )
    capsys.readouterr()
    assert cli("info", OLD_MODEL)[0] == 0
    text = capsys.readouterr().out
    note = "written by an older gradfit without a checksum; its contents cannot be verified"
    assert text.count(note) == 1
    assert cli("info", OLD_MODEL, "--json")[0] == 0
    assert json.loads(capsys.readouterr().out)["checksum"] is False
    # A current file says nothing of the kind.
    current = tmp_path / "m.safetensors"
    save_model(current, small_model())
    assert cli("info", current)[0] == 0
    assert note not in capsys.readouterr().out
    # A bit flipped in an old file goes unseen (there is nothing to check it against): this is
    # what the note warns of.
    copy = tmp_path / "old.safetensors"
    copy.write_bytes(OLD_MODEL.read_bytes())
    flip_bit(copy, "weight", bit=0)
    assert load_model(copy).format_version == 2


# ---------------------------------------------------------------------------------------------
# hostile metadata


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def test_hostile_metadata_is_one_line_naming_the_file(tmp_path: Path) -> None:
    def model_with(edit: Any, name: str) -> Path:
        path = tmp_path / f"{name}.safetensors"
        save_model(path, small_model())
        rewrite(path, edit)
        return path

    deep = tmp_path / "deep.safetensors"
    save_model(deep, small_model())
    rewrite(deep, lambda doc: doc.update(hyperparameters={"x": "@"}), raw=('"@"', deep_text(10**5)))
    deep_ok_for_json = model_with(lambda doc: doc.update(metrics={"x": _nested(50)}), "deep50")
    big_int = tmp_path / "big_int.safetensors"
    save_model(big_int, small_model())
    header, body = header_of(big_int)
    header["__metadata__"]["gradfit"] = header["__metadata__"]["gradfit"].replace(
        '"solver":"gd"', '"solver":"gd","seed":' + "7" * 5000
    )
    write_header(big_int, header, body)
    int64 = model_with(lambda doc: doc.update(final_loss=10**40), "int64")
    header_deep = tmp_path / "header_deep.safetensors"
    save_model(header_deep, small_model())
    header, body = header_of(header_deep)
    header["__metadata__"]["extra"] = "x"
    raw = json.dumps(header).replace('"extra": "x"', '"extra": ' + "[" * 50_000 + "]" * 50_000)
    header_deep.write_bytes(struct.pack("<Q", len(raw)) + raw.encode() + body)
    cases = {
        deep: "corrupt: the gradfit metadata is nested more than 32 levels deep",
        deep_ok_for_json: "corrupt: the gradfit metadata is nested more than 32 levels deep",
        big_int: "corrupt: the gradfit metadata holds a number too long to read",
        int64: "corrupt metadata: final_loss holds a number out of range (an integer of about 41",
        header_deep: "corrupt: the safetensors header is nested more than 3 levels deep",
    }
    for path, says in cases.items():
        with pytest.raises(ModelFileError) as exc:
            load_model(path)
        message = str(exc.value)
        assert message.startswith(f"{path}: ") and says in message and "\n" not in message


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (lambda doc: doc.update(feature_names="ab"), "feature_names must be a list of strings"),
        (lambda doc: doc.update(scaling={"mean": [0, 1], "scale": ["x", 1]}), "scaling must be"),
        (lambda doc: doc.update(solver=["gd"]), "solver must be a string"),
        (lambda doc: doc.update(loss_history=[1.0, {"a": 1}]), "loss_history must be a list"),
        (lambda doc: doc.update(versions=[]), "versions must be a JSON object"),
        (lambda doc: doc.update(created=5), "created must be a string"),
    ],
)
def test_every_field_is_checked(tmp_path: Path, edit: Any, says: str) -> None:
    path = tmp_path / "m.safetensors"
    save_model(path, small_model())
    rewrite(path, edit)
    with pytest.raises(ModelFileError) as exc:
        load_model(path)
    assert str(exc.value).startswith(f"{path}: corrupt metadata: ") and says in str(exc.value)


def _interval_edit(key: str, value: Any) -> Any:
    def edit(doc: dict[str, Any]) -> None:
        doc["inference"]["predictor"][key] = value

    return edit


@pytest.mark.slow
def test_hostile_metadata_through_the_cli(tmp_path: Path, tiny: Path, lstsq_model: Path) -> None:
    """Each refusal in a real process: exit 2, one line naming the file, nothing else."""
    good = lstsq_model.read_bytes()

    def variant(name: str, edit: Any, raw: tuple[str, str] | None = None) -> Path:
        path = tmp_path / f"{name}.safetensors"
        path.write_bytes(good)
        rewrite(path, edit, raw=raw)
        return path

    df_inf = variant("df_inf", None, raw=('"df_resid": 9', '"df_resid": 1e400'))
    df_huge = variant("df_huge", _interval_edit("df_resid", 10**18))
    deep = variant("deep", lambda d: d.update(metrics={"m": "@"}), raw=('"@"', deep_text(5000)))
    digits = variant("digits", None, raw=('"solver": "lstsq"', '"n": ' + "9" * 5000))
    runs = [
        (spawn("predict", df_inf, tiny, "--interval", "prediction"), df_inf, "df_resid"),
        (spawn("predict", df_huge, tiny, "--interval", "confidence"), df_huge, "df_resid"),
        (spawn("info", deep), deep, "nested more than 32 levels deep"),
        (spawn("info", digits), digits, "a number too long to read"),
    ]
    for proc, path, says in runs:
        one_line_exit_2(proc, f"gradfit: error: {path}: ", says)


# ---------------------------------------------------------------------------------------------
# extreme interval data


@pytest.mark.slow
def test_extreme_interval_data_give_one_line_and_no_warnings(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny: Path, lstsq_model: Path
) -> None:
    model = load_model(lstsq_model)
    assert model.inference is not None
    covariance = model.inference["predictor"]["covariance"]
    huge = tmp_path / "huge.safetensors"
    huge.write_bytes(lstsq_model.read_bytes())
    p = len(covariance[0])
    rewrite(huge, _interval_edit("covariance", [[[1e308] * p] * p] * len(covariance)))
    tiny_sigma = tmp_path / "sigma.safetensors"
    tiny_sigma.write_bytes(lstsq_model.read_bytes())
    rewrite(tiny_sigma, _interval_edit("sigma", [1e200]))
    proc = spawn("predict", huge, tiny, "--interval", "prediction")
    one_line_exit_2(proc, "the prediction interval is not finite in float64", "row 1 of 12")
    line = refused_in_process(capsys, "info", tiny_sigma)
    assert f"{tiny_sigma}: corrupt interval data: sigma is too large" in line
    # Finite but extreme features: one line, no NumPy RuntimeWarning.
    far = tmp_path / "far.csv"
    far.write_text("a,b\n1e200,1e200\n1,2\n", encoding="utf-8")
    proc = spawn("predict", lstsq_model, far, "--interval", "confidence")
    one_line_exit_2(proc, "the confidence interval is not finite", "1 row(s) (the first is row 1")


def test_predictor_computes_without_numpy_warnings(lstsq_model: Path) -> None:
    predictor = load_model(lstsq_model).interval_predictor()
    with np.errstate(all="raise"):  # any NumPy floating-point warning would raise here
        with pytest.raises(ValidationError, match="interval is not finite"):
            predictor.predict(np.array([[1e300, 1e300]]), interval="prediction")
        bounds = predictor.predict(np.array([[1.0, 2.0]]), interval="prediction")
    assert bool(torch.isfinite(bounds.lower).all())


# ---------------------------------------------------------------------------------------------
# checkpoints


@pytest.fixture
def checkpointed(
    tmp_path: Path, tiny: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[Path, list[str]]:
    """A finished gd fit with its checkpoint; the command that resumes it."""
    ckpt = tmp_path / "fit.ckpt"
    argv = [
        "fit", str(tiny), "--target", "y", "--solver", "gd", "--lr", "0.05", "--epochs", "40",
        "--tol", "none", "--out", str(tmp_path / "m.safetensors"), "--quiet",
        "--checkpoint", str(ckpt),
    ]  # fmt: skip
    assert cli(*argv)[0] == 0, capsys.readouterr().err
    return ckpt, [*argv, "--resume"]


def _reseal(path: Path, edit_document: Any = None, edit_tensors: Any = None) -> None:
    """Change a checkpoint's document or tensors and seal it again (well-formed, hostile)."""
    header, _ = header_of(path)
    document = json.loads(header["__metadata__"]["gradfit"])
    tensors = safetensors.torch.load(path.read_bytes())
    if edit_document is not None:
        edit_document(document)
    if edit_tensors is not None:
        edit_tensors(tensors)
    text = json.dumps(document).replace('"@deep@"', deep_text(10_000))
    path.write_bytes(seal(tensors, text))


def test_a_flipped_bit_in_a_checkpoint_stops_the_resume(
    capsys: pytest.CaptureFixture[str], checkpointed: tuple[Path, list[str]]
) -> None:
    ckpt, argv = checkpointed
    assert cli(*argv)[0] == 0  # intact: it resumes
    flip_bit(ckpt, "weight", bit=6)
    line = refused_in_process(capsys, *argv)
    assert line == (
        f"gradfit: error: {ckpt}: checksum mismatch: the file is corrupted; restore it, or "
        "delete it to start afresh"
    )


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (lambda d: d["state"].update(epoch=-5), "state.epoch must be an integer from 0 to 40"),
        (lambda d: d["state"].update(epoch=2.5), "state.epoch must be an integer"),
        (lambda d: d["state"].update(epoch="3"), "state.epoch must be an integer"),
        (lambda d: d["state"].update(epoch=41), "state.epoch must be an integer from 0 to 40"),
        (lambda d: d["state"].update(loss_curve=[0.1]), "state.loss_curve must be a list of 40"),
        (lambda d: d["state"].update(learning_rate=-1.0), "state.learning_rate must be a non-neg"),
        (lambda d: d["state"]["config"].update(max_epochs=10**6), "state.config differs"),
        (lambda d: d["state"]["plateau"].update(patience="x"), "not a gradfit training state"),
        (lambda d: d.update(finished="yes"), "finished must be true or false"),
        (lambda d: d.update(state="@deep@"), "nested more than 32 levels deep"),
        (lambda d: d["state"].update(lipschitz=10**100), "holds a number out of range"),
    ],
)
def test_hostile_checkpoint_documents_are_refused_naming_the_file(
    capsys: pytest.CaptureFixture[str],
    checkpointed: tuple[Path, list[str]],
    edit: Any,
    says: str,
) -> None:
    ckpt, argv = checkpointed
    _reseal(ckpt, edit)
    line = refused_in_process(capsys, *argv)
    assert line.startswith(f"gradfit: error: {ckpt}: ") and says in line, line


def test_a_finished_checkpoint_with_nan_weights_is_refused_naming_the_file(
    capsys: pytest.CaptureFixture[str], checkpointed: tuple[Path, list[str]]
) -> None:
    ckpt, argv = checkpointed

    def poison(tensors: dict[str, torch.Tensor]) -> None:
        tensors["weight"][0, 0] = math.nan

    _reseal(ckpt, edit_tensors=poison)
    line = refused_in_process(capsys, *argv)
    assert line == (
        f"gradfit: error: {ckpt}: corrupt: the saved weight holds non-finite values (NaN or "
        "inf); delete the checkpoint to start afresh"
    )


def test_checkpoint_tensors_are_checked_against_the_fit(
    capsys: pytest.CaptureFixture[str], checkpointed: tuple[Path, list[str]]
) -> None:
    ckpt, argv = checkpointed
    original = ckpt.read_bytes()

    def wide(tensors: dict[str, torch.Tensor]) -> None:
        tensors["weight"] = torch.zeros(1, 3, dtype=torch.float64)

    _reseal(ckpt, edit_tensors=wide)
    line = refused_in_process(capsys, *argv)
    assert f"{ckpt}: the saved weight has shape (1, 3)" in line and "needs (1, 2)" in line
    ckpt.write_bytes(original)

    def extra(tensors: dict[str, torch.Tensor]) -> None:
        tensors["payload"] = torch.zeros(4)

    _reseal(ckpt, edit_tensors=extra)
    assert "holds an unknown tensor 'payload'" in refused_in_process(capsys, *argv)


def test_a_checkpoint_of_the_previous_format_resumes_unverified(
    capsys: pytest.CaptureFixture[str], checkpointed: tuple[Path, list[str]]
) -> None:
    ckpt, argv = checkpointed
    header, _ = header_of(ckpt)
    document = json.loads(header["__metadata__"]["gradfit"])
    assert document["format"] == 2 and document["kind"] == "gradfit-checkpoint"
    document["format"] = 1
    tensors = safetensors.torch.load(ckpt.read_bytes())
    # As gradfit wrote it before checksums: the document alone in the metadata.
    ckpt.write_bytes(safetensors.torch.save(tensors, metadata={"gradfit": json.dumps(document)}))
    capsys.readouterr()
    assert cli(*[a for a in argv if a != "--quiet"])[0] == 0  # the notes are shown
    err = capsys.readouterr().err
    assert "without a checksum; its contents cannot be verified" in err
    assert "resumed from" in err


def test_checkpoint_needs_a_solver_that_supports_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny: Path
) -> None:
    for solver, why in (("scratch", "keeps no training state"), ("lstsq", "no epochs")):
        line = refused_in_process(
            capsys, "fit", tiny, "--target", "y", "--solver", solver, "--checkpoint",
            tmp_path / "c.ckpt", "--out", tmp_path / "m.safetensors",
        )  # fmt: skip
        assert line == (
            f"gradfit: error: --checkpoint works with solver gd or sgd, not with {solver} (it "
            f"{'keeps no training state' if solver == 'scratch' else 'has no epochs to checkpoint'}"
            "); leave out --checkpoint or use --solver gd or sgd"
        )
        assert why in line and "memory limit" not in line
    check_solver("gd")
    check_solver("sgd")
    assert not list(tmp_path.glob("*.ckpt")) and not (tmp_path / "m.safetensors").exists()


def test_a_checkpoint_is_recognised_by_its_header_alone(
    tmp_path: Path, fifo: Path, checkpointed: tuple[Path, list[str]]
) -> None:
    ckpt, _ = checkpointed
    document = header_document(ckpt)
    assert document is not None and document["kind"] == "gradfit-checkpoint"
    model = tmp_path / "m.safetensors"
    save_model(model, small_model())
    assert (header_document(model) or {}).get("format") == "gradfit-model"
    (tmp_path / "data.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    start = time.monotonic()
    for path in (fifo, Path("/dev/zero"), tmp_path, tmp_path / "absent", tmp_path / "data.csv"):
        assert header_document(path) is None, path
    assert time.monotonic() - start < 5
    for path in _crafted(tmp_path).values():
        document = header_document(path)
        assert document is None or document.get("kind") != "gradfit-checkpoint"
