"""gradfit.persistence: exact round trips, and refusal of every bad or foreign model file."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import pickle
import stat
import struct
import threading
from pathlib import Path
from typing import Any

import pytest
import safetensors.torch
import torch
from cli_helpers import rewrite_document

import gradfit
from gradfit import model_file, persistence
from gradfit.errors import ModelFileError, ValidationError
from gradfit.persistence import FORMAT_VERSION, SavedModel, load_model, save_model


def make_model(dtype: torch.dtype = torch.float32, **overrides: Any) -> SavedModel:
    fields: dict[str, Any] = {
        "weight": torch.tensor([[0.1, -2.5, 3e-39], [1.0 / 3.0, -0.0, 7.0]], dtype=dtype),
        "bias": torch.tensor([0.5, -1e-7], dtype=dtype),
        "feature_names": ("temp", "rainfall", "humidity"),
        "target_names": ("apples", "oranges"),
        "solver": "gd",
        "hyperparameters": {"lr": 1e-5, "epochs": 100, "schedule": {"kind": "step", "gamma": 0.5}},
        "scaling_mean": torch.tensor([80.0, 90.0, 55.0], dtype=torch.float64),
        "scaling_scale": torch.tensor([12.5, 30.25, 11.0], dtype=torch.float64),
        "final_loss": 1.2345678901234567,
        "loss_history": [1e4, float("inf"), 12.5, float("nan"), 1.2345678901234567],
        "metrics": {"apples": {"r2": 0.99, "mse": 1.5}, "n_rows": 15},
    }
    fields.update(overrides)
    return SavedModel(**fields)


def write_raw(
    path: Path,
    tensors: dict[str, torch.Tensor] | None = None,
    document: dict[str, Any] | None = None,
    metadata: dict[str, str] | None = None,
) -> Path:
    """A safetensors file with exactly the given tensors and gradfit document."""
    if tensors is None:
        tensors = {"weight": torch.ones(1, 2), "bias": torch.zeros(1)}
    if metadata is None:
        base: dict[str, Any] = {
            "format": "gradfit-model",
            "format_version": 1,
            "feature_names": ["a", "b"],
            "target_names": ["y"],
        }
        base.update(document or {})
        metadata = {"gradfit": json.dumps(base)}
    path.write_bytes(safetensors.torch.save(tensors, metadata=metadata))
    return path


def refused(path: Path, match: str) -> str:
    with pytest.raises(ModelFileError, match=match) as exc:
        load_model(path)
    message = str(exc.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    return message


# ---------------------------------------------------------------------------------------------
# round trip


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_round_trip_is_bit_identical(tmp_path: Path, dtype: torch.dtype) -> None:
    model = make_model(dtype)
    written = save_model(tmp_path / "model.safetensors", model)
    loaded = load_model(tmp_path / "model.safetensors")
    for name in ("weight", "bias", "scaling_mean", "scaling_scale"):
        original, back = getattr(model, name), getattr(loaded, name)
        assert back.dtype == original.dtype and back.shape == original.shape
        # Bit-identical, including -0.0 and subnormals: compare the raw bytes.
        assert back.numpy().tobytes() == original.numpy().tobytes()
    assert loaded.feature_names == model.feature_names
    assert loaded.target_names == model.target_names
    assert loaded.solver == "gd"
    assert loaded.hyperparameters == model.hyperparameters
    assert loaded.metrics == model.metrics
    assert loaded.final_loss == model.final_loss
    assert loaded.loss_history[:3] == [1e4, math.inf, 12.5]
    assert math.isnan(loaded.loss_history[3]) and loaded.loss_history[4] == model.final_loss
    assert loaded.format_version == FORMAT_VERSION == 4
    assert loaded.inference is None
    assert loaded.versions == written.versions
    assert loaded.versions["gradfit"] == gradfit.__version__
    assert loaded.versions["torch"] == str(torch.__version__)
    assert loaded.created == written.created and loaded.created is not None
    assert loaded.created.endswith("Z")


def test_file_layout(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    save_model(path, make_model())
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    assert sorted(header) == ["__metadata__", "bias", "weight"]
    assert sorted(header["__metadata__"]) == ["gradfit", "gradfit_sha256"]
    text = header["__metadata__"]["gradfit"]
    # The seal: SHA-256 of the document's text, the tensor table and the data section.
    table = {
        name: [e["dtype"], e["shape"], e["data_offsets"]]
        for name, e in header.items()
        if name != "__metadata__"
    }
    table_text = json.dumps(table, sort_keys=True, separators=(",", ":"))
    sealed = f"{text}\n{table_text}\n".encode() + data[8 + length :]
    seal = hashlib.sha256(sealed).hexdigest()
    assert header["__metadata__"]["gradfit_sha256"] == seal
    document = json.loads(text)
    assert document["format"] == "gradfit-model" and document["format_version"] == 4
    assert document["inference"] is None
    assert document["scaling"] == {"mean": [80.0, 90.0, 55.0], "scale": [12.5, 30.25, 11.0]}
    assert document["loss_history"][1] == "inf" and document["loss_history"][3] == "nan"
    assert set(document) >= {"solver", "hyperparameters", "final_loss", "metrics", "created"}


def test_minimal_model_and_predict(tmp_path: Path) -> None:
    model = SavedModel(torch.tensor([[2.0, -1.0]]), torch.tensor([0.5]), ("a", "b"), ("y",))
    save_model(tmp_path / "m.safetensors", model)
    loaded = load_model(tmp_path / "m.safetensors")
    assert loaded.scaling_mean is None and loaded.final_loss is None and loaded.loss_history == []
    X = torch.tensor([[1.0, 1.0], [0.0, 2.0]])
    torch.testing.assert_close(loaded.predict(X), torch.tensor([[1.5], [-1.5]]))
    assert loaded.to_linear_model().feature_names == ("a", "b")
    assert (loaded.n_features, loaded.n_targets) == (2, 1)


def test_views_and_non_contiguous_tensors_are_saved(tmp_path: Path) -> None:
    storage = torch.arange(8.0)
    weight = storage[:6].reshape(3, 2).T  # (2, 3), non-contiguous view
    bias = storage[6:]  # shares storage with weight
    model = make_model(weight=weight, bias=bias)
    save_model(tmp_path / "m.safetensors", model)
    loaded = load_model(tmp_path / "m.safetensors")
    assert torch.equal(loaded.weight, weight) and torch.equal(loaded.bias, bias)


def test_saved_model_validates_itself() -> None:
    with pytest.raises(ValidationError, match=r"weight has shape \(2, 3\) but 2 target"):
        make_model(feature_names=("a", "b"))
    with pytest.raises(ValidationError, match="feature name 'temp' appears more than once"):
        make_model(feature_names=("temp", "temp", "x"))
    with pytest.raises(ValidationError, match="non-empty strings"):
        make_model(target_names=("apples", ""))
    with pytest.raises(ValidationError, match="float32 or float64"):
        make_model(bias=torch.tensor([1, 2]))
    with pytest.raises(ValidationError, match="non-finite"):
        make_model(bias=torch.tensor([1.0, float("nan")]))
    with pytest.raises(ValidationError, match="together"):
        make_model(scaling_scale=None)
    with pytest.raises(ValidationError, match="scaling_scale must be positive"):
        make_model(scaling_scale=torch.tensor([1.0, 0.0, 1.0]))


def test_hyperparameters_must_be_json(tmp_path: Path) -> None:
    model = make_model(hyperparameters={"device": torch.device("cpu")})
    with pytest.raises(ValidationError, match=r"hyperparameters\['device'\] must be JSON"):
        save_model(tmp_path / "m.safetensors", model)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# saving: failures leave nothing behind


def test_save_into_missing_directory(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "m.safetensors"
    with pytest.raises(ModelFileError) as exc:
        save_model(path, make_model())
    assert str(exc.value) == (
        f"{path}: cannot write: directory '{path.parent}' does not exist; create it first"
    )


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_failed_save_leaves_no_file_and_keeps_the_old_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    old = tmp_path / "m.safetensors"
    save_model(old, make_model())
    before = old.read_bytes()

    def fail(*args: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, failing, fail)
    with pytest.raises(ModelFileError, match=r"m\.safetensors: cannot write \(No space left"):
        save_model(old, make_model(solver="other"))
    with pytest.raises(ModelFileError):
        save_model(tmp_path / "new.safetensors", make_model())
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]
    assert old.read_bytes() == before


def test_save_through_a_symlink_keeps_the_link(tmp_path: Path) -> None:
    real = tmp_path / "store" / "v1.safetensors"
    real.parent.mkdir()
    save_model(real, make_model())
    link = tmp_path / "current.safetensors"
    link.symlink_to(real)
    save_model(link, make_model(solver="newer"))
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert load_model(real).solver == "newer" and load_model(link).solver == "newer"
    assert sorted(p.name for p in real.parent.iterdir()) == ["v1.safetensors"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_save_into_a_fifo_writes_through_it(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.safetensors"
    os.mkfifo(fifo)
    received: list[bytes] = []

    def reader() -> None:
        with open(fifo, "rb") as fh:
            received.append(fh.read())

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    save_model(fifo, make_model())
    thread.join(timeout=10)
    assert not thread.is_alive() and stat.S_ISFIFO(os.stat(fifo).st_mode)
    copy = tmp_path / "copy.safetensors"
    copy.write_bytes(received[0])
    assert load_model(copy).feature_names == ("temp", "rainfall", "humidity")


# ---------------------------------------------------------------------------------------------
# loading: foreign files are refused without being unpickled


class SideEffect:
    """Unpickling this creates a directory: proof that the bytes were (or were not) unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.mkdir, (str(self.marker),))


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_pickle_disguised_as_model_is_not_unpickled(tmp_path: Path, protocol: int) -> None:
    marker = tmp_path / "unpickled"
    payload = pickle.dumps(SideEffect(marker), protocol=protocol)
    # The payload really has a side effect when unpickled (so this test can fail):
    pickle.loads(pickle.dumps(SideEffect(tmp_path / "control"), protocol=protocol))
    assert (tmp_path / "control").is_dir()

    path = tmp_path / "model.safetensors"
    path.write_bytes(payload)
    with pytest.raises(ModelFileError) as exc:
        load_model(path)
    assert not marker.exists()
    if protocol >= 2:
        assert str(exc.value) == (
            f"{path}: not a gradfit model file (it looks like a Python pickle; gradfit never "
            "unpickles files); save the model with gradfit"
        )


def test_torch_save_archive_is_not_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    path = tmp_path / "model.safetensors"
    torch.save({"weight": torch.ones(1, 2), "evil": SideEffect(marker)}, path)
    refused(
        path, r"it looks like a ZIP archive such as torch\.save writes; gradfit never unpickles"
    )
    assert not marker.exists()


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", r"too short to be a model file \(0 bytes\)"),
        (b"\x01\x02\x03", r"too short to be a model file \(3 bytes\)"),
        (b'{"weight": [1, 2]}\n', r"not a gradfit model file \(it looks like a text file\)"),
        (b"\xff" * 64, r"not a safetensors model file \(its header length is impossible\)"),
        (struct.pack("<Q", 5) + b"{nope", r"corrupt: the safetensors header is not valid JSON"),
        (struct.pack("<Q", 2) + b"[]", r"corrupt: the safetensors header is not a JSON object"),
    ],
)
def test_foreign_or_garbage_bytes(tmp_path: Path, content: bytes, match: str) -> None:
    refused(make_file(tmp_path, content), match)


def make_file(tmp_path: Path, content: bytes) -> Path:
    path = tmp_path / "model.safetensors"
    path.write_bytes(content)
    return path


def test_missing_file_and_directory(tmp_path: Path) -> None:
    refused(tmp_path / "nope.safetensors", r"no such model file; check the path")
    (tmp_path / "dir.safetensors").mkdir()
    refused(
        tmp_path / "dir.safetensors",
        r"is not a regular file \(a directory\); give a model file$",
    )


def test_truncated_at_every_interesting_point(tmp_path: Path) -> None:
    good = tmp_path / "good.safetensors"
    save_model(good, make_model())
    data = good.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    cuts = {1, 7, 8, 9, 8 + length // 2, 8 + length - 1, 8 + length, 8 + length + 1, len(data) - 1}
    for cut in sorted(cuts):
        path = make_file(tmp_path, data[:cut])
        message = refused(path, r"truncated|too short")
        assert "save the model again" in message or "truncated" in message


def test_extra_bytes_after_data(tmp_path: Path) -> None:
    save_model(tmp_path / "m.safetensors", make_model())
    with (tmp_path / "m.safetensors").open("ab") as fh:
        fh.write(b"junk")
    refused(tmp_path / "m.safetensors", r"corrupt: 4 unexpected bytes after the tensor data")


def test_corrupted_header_byte(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    save_model(path, make_model())
    data = bytearray(path.read_bytes())
    data[8] = ord("[")  # the header's opening brace
    path.write_bytes(bytes(data))
    refused(path, r"corrupt: the safetensors header is not valid JSON")


def test_corrupt_tensor_entry(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    save_model(path, make_model())
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = data[8 : 8 + length].replace(b'"shape":[2,3]', b'"shape":[3,2]')
    path.write_bytes(data[:8] + header + data[8 + length :])
    refused(path, r"checksum mismatch: the file is corrupted; refit or restore it$")  # sealed
    # In a file without a seal (format 1), shape (3, 2) no longer matches 3 features and 2
    # targets.
    names = {"feature_names": ["a", "b", "c"], "target_names": ["y", "z"]}
    write_raw(path, {"weight": torch.ones(2, 3), "bias": torch.zeros(2)}, names)
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = data[8 : 8 + length].replace(b'"shape":[2,3]', b'"shape":[3,2]')
    path.write_bytes(data[:8] + header + data[8 + length :])
    refused(path, r"weight has shape \(3, 2\) but 2 target name\(s\) and 3 feature name\(s\)")


def test_tensor_bytes_inconsistent_with_header(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    save_model(path, make_model())
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = data[8 : 8 + length].replace(b'"shape":[2,3]', b'"shape":[2,4]')
    path.write_bytes(data[:8] + header + data[8 + length :])
    refused(
        path,
        r"corrupt: tensor 'weight' declares shape \[2, 4\] of F32 \(32 bytes\) but its data "
        r"offsets span 24 bytes",
    )


# ---------------------------------------------------------------------------------------------
# loading: well-formed safetensors files that are not valid gradfit models


def test_future_format_version(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "model.safetensors", document={"format_version": 7})
    message = refused(path, "newer")
    assert message == (
        f"{path}: written by a newer gradfit (format version 7, this gradfit reads up to 4); "
        "upgrade gradfit"
    )


@pytest.mark.parametrize("version", [0, "1", True, None, 1.0])
def test_invalid_format_version(tmp_path: Path, version: Any) -> None:
    path = write_raw(tmp_path / "m.safetensors", document={"format_version": version})
    refused(path, r"corrupt: format_version must be a positive integer")


def test_safetensors_without_gradfit_metadata(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    path.write_bytes(safetensors.torch.save({"weight": torch.ones(1, 2), "bias": torch.ones(1)}))
    refused(path, r"not a gradfit model file \(a safetensors file without gradfit metadata\)")


def test_wrong_format_name(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "m.safetensors", document={"format": "other-model"})
    refused(path, r"not a gradfit model file \(format 'other-model', expected 'gradfit-model'\)")


def test_a_checkpoint_given_as_a_model_says_it_is_a_checkpoint(tmp_path: Path) -> None:
    """It said "not a gradfit model file (format 2, expected 'gradfit-model')": the format of a
    checkpoint's own, and nothing of what the file is or what to give instead."""
    from gradfit.solvers.config import SolverConfig
    from gradfit.streaming import fit_stream

    data = tmp_path / "d.csv"
    data.write_text("x,y\n" + "".join(f"{i},{2 * i + 1 + (i % 3) / 10}\n" for i in range(40)))
    ckpt = tmp_path / "fit.ckpt"
    fit_stream(data, ["y"], None, SolverConfig(solver="gd", max_epochs=3), checkpoint=ckpt)
    message = refused(ckpt, r"is a gradfit checkpoint \(a fit's training state\), not a model")
    assert "--out" in message and f"--checkpoint {ckpt} --resume" in message


def test_metadata_not_json(tmp_path: Path) -> None:
    path = write_raw(tmp_path / "m.safetensors", metadata={"gradfit": "{not json"})
    refused(path, r"corrupt: the gradfit metadata is not valid JSON$")


@pytest.mark.parametrize(
    ("tensors", "found"),
    [
        ({"w": torch.ones(1, 2), "b": torch.ones(1)}, "'b', 'w'"),
        ({"weight": torch.ones(1, 2)}, "'weight'"),
        ({"weight": torch.ones(1, 2), "bias": torch.ones(1), "extra": torch.ones(1)}, "'bias'"),
    ],
)
def test_wrong_tensor_names(tmp_path: Path, tensors: dict[str, torch.Tensor], found: str) -> None:
    path = write_raw(tmp_path / "m.safetensors", tensors)
    message = refused(path, r"expected exactly the tensors 'bias' and 'weight', found ")
    assert found in message


@pytest.mark.parametrize("dtype", [torch.int64, torch.float16, torch.bfloat16])
def test_wrong_dtype(tmp_path: Path, dtype: torch.dtype) -> None:
    tensors = {"weight": torch.ones(1, 2, dtype=dtype), "bias": torch.zeros(1)}
    refused(write_raw(tmp_path / "m.safetensors", tensors), r"tensor 'weight' has dtype \w+; ")


@pytest.mark.parametrize(
    ("tensors", "document", "match"),
    [
        (
            {"weight": torch.ones(1, 3), "bias": torch.zeros(1)},
            {},
            r"weight has shape \(1, 3\) but 1 target name\(s\) and 2 feature name\(s\)",
        ),
        (
            {"weight": torch.ones(1, 2), "bias": torch.zeros(2)},
            {},
            r"bias has shape \(2,\) but 1 target",
        ),
        (
            {"weight": torch.ones(2), "bias": torch.zeros(1)},
            {},
            r"weight has shape \(2,\)",
        ),
        (
            {"weight": torch.ones(2, 2), "bias": torch.zeros(2)},
            {"target_names": ["y", "y"]},
            r"target name 'y' appears more than once",
        ),
        (None, {"feature_names": ["a", ""]}, r"feature names must be non-empty strings"),
        (None, {"feature_names": ["a", 3]}, r"feature_names must be a list of strings"),
        (None, {"target_names": "y"}, r"target_names must be a list of strings"),
        (
            {"weight": torch.tensor([[1.0, float("inf")]]), "bias": torch.zeros(1)},
            {},
            r"weight holds non-finite values",
        ),
        (None, {"scaling": {"mean": [0.0, 1.0]}}, r"scaling must be null or"),
        (None, {"scaling": {"mean": [0.0], "scale": [1.0]}}, r"scaling_mean has shape \(1,\)"),
        (None, {"loss_history": [1.0, "lots"]}, r"loss_history must be a list of numbers"),
        (None, {"final_loss": "small"}, r"final_loss must be a number or null"),
        (None, {"hyperparameters": [1]}, r"hyperparameters must be a JSON object"),
    ],
)
def test_inconsistent_contents(
    tmp_path: Path, tensors: dict[str, torch.Tensor] | None, document: dict[str, Any], match: str
) -> None:
    path = write_raw(tmp_path / "m.safetensors", tensors, document)
    refused(path, match)


def test_public_api() -> None:
    assert persistence.__all__ == [
        "FORMAT",
        "FORMAT_VERSION",
        "SavedModel",
        "load_model",
        "save_model",
    ]


# a model of a formula (format version 4): the design and the rows dropped travel with it


def _design_model() -> SavedModel:
    import pandas as pd

    from gradfit.design import Design

    data = pd.DataFrame({"y": [1.0, 2.0, 3.0, 5.0], "x": [0.0, 1.0, 2.0, 4.0], "g": list("abab")})
    design = Design.from_formula("y ~ x + g", data)
    return SavedModel(
        torch.tensor([[2.0, -1.0]], dtype=torch.float64),
        torch.tensor([0.5], dtype=torch.float64),
        design.columns,
        design.targets,
        design=design.to_dict(),
        rows_dropped=3,
    )


def test_the_design_and_the_rows_dropped_round_trip(tmp_path: Path) -> None:
    model = _design_model()
    assert model.feature_names == ("x", "gb")
    save_model(tmp_path / "m.safetensors", model)
    loaded = load_model(tmp_path / "m.safetensors")
    assert loaded.design == model.design and loaded.rows_dropped == 3
    encoding = loaded.encoding()
    assert encoding is not None and encoding.levels == {"g": ("a", "b")}
    assert _plain_model().encoding() is None and _plain_model().rows_dropped == 0


def _plain_model() -> SavedModel:
    return SavedModel(torch.tensor([[2.0]]), torch.tensor([0.5]), ("a",), ("y",))


def test_a_design_whose_columns_are_not_the_features_is_refused() -> None:
    model = _design_model()
    with pytest.raises(ValidationError, match=r"the design's columns \['x', 'gb'\] are not"):
        SavedModel(model.weight, model.bias, ("x", "gc"), ("y",), design=model.design)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"design": [1]}, "corrupt metadata: design must be null or a JSON object"),
        ({"design": {"format": "x"}}, "design: not a valid gradfit design"),
        ({"rows_dropped": -1}, "corrupt metadata: rows_dropped must be a count"),
        ({"rows_dropped": True}, "corrupt metadata: rows_dropped must be a count"),
    ],
)
def test_a_bad_design_or_count_in_a_file_is_one_line(
    tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    path = tmp_path / "m.safetensors"
    save_model(path, _design_model())
    rewrite_document(path, **changes)
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    assert str(info.value).startswith(f"{path}: ") and message in str(info.value)
    assert "\n" not in str(info.value)


def test_load_model_checks_the_model_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """read_model checks the file and its design (gradfit.model_file.model_problem); the
    SavedModel that load_model builds from it is not checked again. A SavedModel made any other
    way (by hand, by dataclasses.replace of a loaded one) still is."""
    path = tmp_path / "m.safetensors"
    save_model(path, _design_model())
    seen: list[dict[str, Any]] = []
    original = model_file.design_document

    def counted(design: dict[str, Any]) -> Any:
        seen.append(design)
        return original(design)

    monkeypatch.setattr(model_file, "design_document", counted)
    loaded = load_model(path)
    assert len(seen) == 1 and loaded.feature_names == ("x", "gb")
    with pytest.raises(ValidationError, match="design: not a valid gradfit design"):
        dataclasses.replace(loaded, design={**loaded.design, "version": 2})
    with pytest.raises(ValidationError, match="bias holds non-finite values"):
        dataclasses.replace(loaded, bias=torch.tensor([math.nan], dtype=torch.float64))
    assert len(seen) == 2  # the design of the first replace; the second stopped before it
