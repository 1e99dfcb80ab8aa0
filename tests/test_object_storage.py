"""Data, model files, checkpoints and outputs in object storage (s3://), against a real S3
server: moto's server mode, started once per session on a free port (conftest.py's ``s3``
fixture), reached through pyarrow's S3 filesystem with the endpoint from AWS_ENDPOINT_URL.

What is read from a store must give the same model as the same bytes read from local disk
(to the bit: the same parser sees the same bytes); what is written to a store must be the
bytes the local write gives, appear whole or not at all, never replace an input, and every
failure is one line naming the URI and what is missing, exit 2.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from cli_helpers import gradfit_cli, ok, one_error_line, training_columns, write_csv
from conftest import S3Server

from gradfit import storage
from gradfit.atomic import atomic_write
from gradfit.checkpoint import Checkpoint
from gradfit.errors import DataError
from gradfit.persistence import load_model

TARGETS = ("--target", "apples,oranges", "--features", "temp,rainfall,humidity")


def _csv_bytes(tmp_path: Path, rows: slice = slice(None)) -> bytes:
    columns = {name: values[rows] for name, values in training_columns().items()}
    return write_csv(tmp_path / f"part-{rows.start}.csv", columns).read_bytes()


def _weights(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    model = load_model(path)
    return model.weight, model.bias


def _download(s3: S3Server, bucket: str, key: str, to: Path) -> Path:
    to.write_bytes(s3.get(bucket, key))
    return to


def _same_model(a: Path, b: Path) -> None:
    wa, ba = _weights(a)
    wb, bb = _weights(b)
    assert torch.equal(wa, wb) and torch.equal(ba, bb), (wa, wb)


# ----------------------------------------------------------------------------- the seam


def test_a_uri_keeps_its_two_slashes_and_is_never_a_local_path() -> None:
    path = storage.as_path("s3://bucket/data/part-1.csv")
    assert str(path) == "s3://bucket/data/part-1.csv"
    assert str(path.parent) == "s3://bucket/data" and path.name == "part-1.csv"
    assert str(path.parent / "b.csv") == "s3://bucket/data/b.csv"
    assert path.store_path() == "bucket/data/part-1.csv"  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="not a local path"):
        os.fspath(path)
    assert storage.as_path("file:///tmp/a%20b.csv") == Path("/tmp/a b.csv")
    assert storage.as_path("data/a.csv") == Path("data/a.csv")


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("https://example.com/d.csv", "https:// is not a filesystem"),
        ("ftp://example.com/d.csv", "unsupported URI scheme ftp://"),
        ("file://otherhost/d.csv", "file:///path"),
    ],
)
def test_a_scheme_without_a_filesystem_is_one_line(uri: str, says: str) -> None:
    with pytest.raises(DataError) as caught:
        storage.as_path(uri)
    assert str(caught.value).startswith(uri) and says in str(caught.value)
    assert "s3://" in str(caught.value) or "file:///" in str(caught.value)


@pytest.mark.parametrize(
    ("pattern", "matches", "not_matches"),
    [
        ("*.csv", ["a.csv"], ["d/a.csv", "a.csv.gz"]),
        ("d/*.csv", ["d/a.csv"], ["a.csv", "d/e/a.csv"]),
        ("**/*.csv", ["a.csv", "d/a.csv", "d/e/a.csv"], ["a.pq"]),
        ("part-?.csv", ["part-1.csv"], ["part-12.csv"]),
        ("part-[12].csv", ["part-1.csv"], ["part-3.csv"]),
        ("part-[!12].csv", ["part-3.csv"], ["part-1.csv"]),
    ],
)
def test_glob_patterns_match_as_the_shell_does(
    pattern: str, matches: list[str], not_matches: list[str]
) -> None:
    import re

    regex = re.compile(storage._glob_regex(pattern))
    assert all(regex.fullmatch(name) for name in matches)
    assert not any(regex.fullmatch(name) for name in not_matches)


# ----------------------------------------------------------------------------- reading


def test_fit_from_s3_csv_equals_the_local_fit_and_writes_the_model_there(
    s3: S3Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _csv_bytes(tmp_path)
    local = tmp_path / "d.csv"
    local.write_bytes(data)
    bucket = s3.bucket()
    uri = s3.put(bucket, "in/d.csv", data)
    ok(capsys, "fit", local, *TARGETS, "--solver", "lstsq", "--out", tmp_path / "local.safetensors")
    run = ok(
        capsys, "fit", uri, *TARGETS, "--solver", "lstsq", "--out", f"s3://{bucket}/m.safetensors"
    )
    assert "s3:/" + bucket not in run.out + run.err  # never the mangled s3:/bucket
    assert s3.keys(bucket) == ["in/d.csv", "m.safetensors"]  # no temporary left
    remote = _download(s3, bucket, "m.safetensors", tmp_path / "remote.safetensors")
    _same_model(tmp_path / "local.safetensors", remote)
    # and predict reads the model from the store, writes its predictions there
    ok(capsys, "predict", f"s3://{bucket}/m.safetensors", local, "--out", tmp_path / "p.csv")
    ok(capsys, "predict", f"s3://{bucket}/m.safetensors", uri, "--out", f"s3://{bucket}/out/p.csv")
    assert s3.get(bucket, "out/p.csv") == (tmp_path / "p.csv").read_bytes()
    # evaluate and info read the model (and the data) from the store as from disk
    local_model = tmp_path / "local.safetensors"
    for command in (("evaluate", "--json"), ("info", "--json")):
        tail = (uri,) if command[0] == "evaluate" else ()
        here = ok(capsys, *command, local_model, *((local,) if tail else ()))
        there = ok(capsys, *command, f"s3://{bucket}/m.safetensors", *tail)
        if command[0] == "evaluate":
            a, b = json.loads(here.out), json.loads(there.out)
            assert (b["model"], b["data"]) == (f"s3://{bucket}/m.safetensors", uri)
            assert {**a, "model": "", "data": ""} == {**b, "model": "", "data": ""}
        else:
            assert '"created"' in there.out


def test_parquet_a_prefix_and_a_glob_read_as_the_same_files_on_disk(
    s3: S3Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = s3.bucket()
    local_dir = tmp_path / "parts"
    local_dir.mkdir()
    halves = (slice(0, 8), slice(8, None))
    for i, rows in enumerate(halves):
        data = _csv_bytes(tmp_path, rows)
        (local_dir / f"part-{i}.csv").write_bytes(data)
        s3.put(bucket, f"parts/part-{i}.csv", data)
    s3.put(bucket, "parts/README.txt", b"not data")  # not a data file: left out, as on disk
    table = pa.csv.read_csv(io.BytesIO(_csv_bytes(tmp_path)))
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=5)
    (tmp_path / "d.parquet").write_bytes(sink.getvalue())
    s3.put(bucket, "d.parquet", sink.getvalue())
    for local, remote in [
        (local_dir, f"s3://{bucket}/parts"),
        (local_dir, f"s3://{bucket}/parts/"),
        (str(local_dir / "part-*.csv"), f"s3://{bucket}/parts/part-*.csv"),
        (tmp_path / "d.parquet", f"s3://{bucket}/d.parquet"),
    ]:
        a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
        ok(capsys, "fit", local, *TARGETS, "--solver", "gd", "--epochs", "30", "--out", a)
        ok(
            capsys,
            "fit",
            remote,
            *TARGETS,
            "--solver",
            "gd",
            "--epochs",
            "30",
            "--out",
            f"s3://{bucket}/b.safetensors",
        )
        _same_model(a, _download(s3, bucket, "b.safetensors", b))


@pytest.mark.parametrize("kind", ["csv.gz", "parquet"])
def test_a_streamed_fit_reads_the_store_in_batches(
    s3: S3Server, tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    """--stream with batches of 4 rows (a gzip CSV read in chunks through the store's reader;
    a Parquet file of row groups of 5 rows read group by group): the same model as the same
    streamed fit of the file on disk."""
    bucket = s3.bucket()
    data = _csv_bytes(tmp_path)
    if kind == "csv.gz":
        content = gzip.compress(data, mtime=0)
    else:
        sink = io.BytesIO()
        pq.write_table(pa.csv.read_csv(io.BytesIO(data)), sink, row_group_size=5)
        content = sink.getvalue()
    (tmp_path / f"d.{kind}").write_bytes(content)
    uri = s3.put(bucket, f"d.{kind}", content)
    options = ("--stream", "--batch-rows", "4", "--memory-limit", "1M", "--solver", "sgd",
               "--epochs", "5", "--batch-size", "4")  # fmt: skip
    ok(
        capsys,
        "fit",
        tmp_path / f"d.{kind}",
        *TARGETS,
        *options,
        "--out",
        tmp_path / "a.safetensors",
    )
    ok(capsys, "fit", uri, *TARGETS, *options, "--out", f"s3://{bucket}/b.safetensors")
    _same_model(
        tmp_path / "a.safetensors",
        _download(s3, bucket, "b.safetensors", tmp_path / "b.safetensors"),
    )


# ----------------------------------------------------------------------------- writing


def test_checkpoint_in_the_store_and_resume_from_it(
    s3: S3Server,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A fit of 12 epochs checkpointed to s3:// and stopped after epoch 6 (the process dies
    there), resumed from the store: the model of 12 epochs in one go (bitwise: the resumed
    state is the saved one)."""
    bucket = s3.bucket()
    uri = s3.put(bucket, "d.csv", _csv_bytes(tmp_path))
    ckpt = f"s3://{bucket}/run/ckpt.safetensors"
    common = (*TARGETS, "--solver", "gd", "--epochs", "12", "--checkpoint-every", "1")
    ok(
        capsys,
        "fit",
        uri,
        *common,
        "--checkpoint",
        tmp_path / "c.safetensors",
        "--out",
        tmp_path / "whole.safetensors",
    )
    save = Checkpoint.save

    def dies_after_epoch_6(self: Checkpoint, state: Any, finished: bool, converged: bool) -> None:
        save(self, state, finished, converged)
        if state.epoch == 6:
            raise KeyboardInterrupt  # as Ctrl-C there: the checkpoint of epoch 6 is written

    with monkeypatch.context() as patch:
        patch.setattr(Checkpoint, "save", dies_after_epoch_6)
        assert (
            gradfit_cli(
                capsys,
                "fit",
                uri,
                *common,
                "--checkpoint",
                ckpt,
                "--out",
                f"s3://{bucket}/m.safetensors",
            ).code
            != 0
        )
    assert s3.keys(bucket) == ["d.csv", "run/ckpt.safetensors"]
    run = ok(
        capsys,
        "fit",
        uri,
        *common,
        "--checkpoint",
        ckpt,
        "--resume",
        "--out",
        f"s3://{bucket}/m.safetensors",
    )
    assert f"resumed from {ckpt} at epoch 6" in run.err
    assert s3.keys(bucket) == ["d.csv", "m.safetensors", "run/ckpt.safetensors"]
    _same_model(
        tmp_path / "whole.safetensors",
        _download(s3, bucket, "m.safetensors", tmp_path / "m.safetensors"),
    )


def test_plot_to_the_store(
    s3: S3Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    bucket = s3.bucket()
    uri = s3.put(bucket, "d.csv", _csv_bytes(tmp_path))
    ok(
        capsys,
        "fit",
        uri,
        *TARGETS,
        "--solver",
        "lstsq",
        "--out",
        f"s3://{bucket}/m.safetensors",
        "--plot",
        f"s3://{bucket}/plots/fit.png",
    )
    assert s3.get(bucket, "plots/fit.png").startswith(b"\x89PNG\r\n\x1a\n")


def test_diagnose_reads_the_model_and_data_from_the_store_and_writes_there(
    s3: S3Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """diagnose --out and --plot go through the same writer: the same bytes as on disk."""
    pytest.importorskip("matplotlib")
    bucket = s3.bucket()
    data = _csv_bytes(tmp_path)
    (tmp_path / "d.csv").write_bytes(data)
    uri = s3.put(bucket, "d.csv", data)
    model = f"s3://{bucket}/m.safetensors"
    ok(
        capsys,
        "fit",
        uri,
        "--target",
        "apples",
        "--features",
        "temp,rainfall,humidity",
        "--solver",
        "lstsq",
        "--out",
        model,
    )
    local_model = _download(s3, bucket, "m.safetensors", tmp_path / "m.safetensors")
    ok(capsys, "diagnose", local_model, tmp_path / "d.csv", "--out", tmp_path / "diag.csv")
    ok(
        capsys,
        "diagnose",
        model,
        uri,
        "--out",
        f"s3://{bucket}/diag.csv",
        "--plot",
        f"s3://{bucket}/diag.png",
    )
    assert s3.get(bucket, "diag.csv") == (tmp_path / "diag.csv").read_bytes()
    assert s3.get(bucket, "diag.png").startswith(b"\x89PNG")


def test_file_uris_are_local_paths(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """file:///path reads and writes the local file, with every local check: an output that
    is an input (named once as a URI, once plainly) is refused."""
    data = tmp_path / "d.csv"
    data.write_bytes(_csv_bytes(tmp_path))
    ok(capsys, "fit", data, *TARGETS, "--solver", "lstsq", "--out", tmp_path / "a.safetensors")
    ok(
        capsys,
        "fit",
        data.as_uri(),
        *TARGETS,
        "--solver",
        "lstsq",
        "--out",
        (tmp_path / "b.safetensors").as_uri(),
    )
    _same_model(tmp_path / "a.safetensors", tmp_path / "b.safetensors")
    ok(
        capsys,
        "predict",
        (tmp_path / "b.safetensors").as_uri(),
        data.as_uri(),
        "--out",
        (tmp_path / "p.csv").as_uri(),
    )
    assert (tmp_path / "p.csv").read_text().startswith("apples")
    line = one_error_line(gradfit_cli(capsys, "fit", data, *TARGETS, "--out", data.as_uri()))
    assert f"--out {data.as_uri()}: is the data file {data}" in line
    assert not (tmp_path / "file:").exists()


def test_hdfs_without_java_is_one_line() -> None:
    """This pyarrow has HDFS, but the machine has no Java: one line saying what HDFS needs."""
    with pytest.raises(DataError) as caught:
        storage.as_path("hdfs://namenode:8020/data/d.csv").stat()
    message = str(caught.value)
    assert message.startswith("hdfs://namenode:8020/data/d.csv: ") and "\n" not in message
    assert "HDFS needs Java and Hadoop's libhdfs" in message


def test_a_failed_write_leaves_no_object_and_the_old_one_whole(s3: S3Server) -> None:
    bucket = s3.bucket()
    target = f"s3://{bucket}/m.bin"

    def fails(fh: object) -> None:
        fh.write(b"half of it")  # type: ignore[attr-defined]
        raise RuntimeError("disk full, say")

    with pytest.raises(RuntimeError):
        atomic_write(target, fails)
    assert s3.keys(bucket) == []
    atomic_write(target, lambda fh: fh.write(b"whole"))
    with pytest.raises(RuntimeError):
        atomic_write(target, fails)
    assert s3.keys(bucket) == ["m.bin"] and s3.get(bucket, "m.bin") == b"whole"


def test_a_failed_upload_leaves_no_object(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """An object larger than one PutObject (9 MiB) goes through a temporary object: written
    whole, it replaces the target; the connection lost mid-upload (the store's stream fails
    after part of it was sent, and pyarrow completes what was sent when the stream closes),
    no object is left, neither the target nor the temporary one."""
    bucket = s3.bucket()
    big = bytes(range(256)) * (9 << 12)
    atomic_write(f"s3://{bucket}/big.bin", lambda fh: fh.write(big))
    assert s3.keys(bucket) == ["big.bin"] and s3.get(bucket, "big.bin") == big
    fs = storage.as_path(f"s3://{bucket}/x").filesystem()  # type: ignore[attr-defined]
    real = type(fs).open_output_stream

    class Broken:
        def __init__(self, stream: object) -> None:
            self.stream = stream

        def __enter__(self) -> Broken:
            return self

        def __exit__(self, *exc: object) -> None:
            self.stream.close()  # type: ignore[attr-defined]  # what was sent is completed

        def write(self, data: bytes) -> None:
            self.stream.write(data[:10])  # type: ignore[attr-defined]
            raise OSError("AWS Error NETWORK_CONNECTION during UploadPart: connection reset")

    monkeypatch.setattr(storage, "_filesystem", lambda path: _Wrapped(fs, real, Broken))
    with pytest.raises(DataError) as caught:
        atomic_write(f"s3://{bucket}/m.bin", lambda fh: fh.write(big))
    assert str(caught.value).startswith(f"s3://{bucket}/m.bin: cannot reach the store")
    assert s3.keys(bucket) == ["big.bin"]


def test_uploads_leave_exactly_their_object(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``prefix/`` marker object is left beside what was written: pyarrow's S3 delete puts
    one for the deleted object's parent, so the temporary object of a large upload lives at
    the bucket's top level (where the parent is the bucket and no marker is put). Small (one
    PutObject) and large (temporary object, copy), new and replacing, and a failed upload."""
    bucket = s3.bucket()
    small, big = b"small" * 200, bytes(range(256)) * (9 << 12)
    written = {}
    for key, data in [
        ("models/run1/small.bin", small),
        ("models/run1/big.bin", big),
        ("models/run2/deep/big.bin", big),
        ("models/run1/big.bin", big[::-1]),  # over an existing object
        ("top.bin", big),
    ]:
        atomic_write(f"s3://{bucket}/{key}", lambda fh, data=data: fh.write(data))
        written[key] = data
        assert s3.keys(bucket) == sorted(written), key
    for key, data in written.items():
        assert s3.get(bucket, key) == data
    fs = storage.as_path(f"s3://{bucket}/x").filesystem()  # type: ignore[attr-defined]
    real = type(fs).open_output_stream

    class Broken:
        def __init__(self, stream: object) -> None:
            self.stream = stream

        def __enter__(self) -> Broken:
            return self

        def __exit__(self, *exc: object) -> None:
            self.stream.close()  # type: ignore[attr-defined]

        def write(self, data: bytes) -> None:
            self.stream.write(data[:10])  # type: ignore[attr-defined]
            raise OSError("AWS Error NETWORK_CONNECTION during UploadPart: connection reset")

    monkeypatch.setattr(storage, "_filesystem", lambda path: _Wrapped(fs, real, Broken))
    for key in ("models/run3/big.bin", "models/run1/big.bin"):
        with pytest.raises(DataError, match="cannot reach the store"):
            atomic_write(f"s3://{bucket}/{key}", lambda fh: fh.write(big))
        assert s3.keys(bucket) == sorted(written), key
    assert s3.get(bucket, "models/run1/big.bin") == big[::-1]


def test_a_refused_top_level_temporary_goes_beside_the_target(
    s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where a policy allows writing under a prefix only, the temporary object goes beside the
    target (pyarrow's delete then leaves the ``prefix/`` marker); other failures are not
    retried."""
    bucket = s3.bucket()
    big = bytes(range(256)) * (9 << 12)
    fs = storage.as_path(f"s3://{bucket}/x").filesystem()  # type: ignore[attr-defined]
    real = type(fs).open_output_stream
    tried: list[str] = []

    def refusing(message: str) -> type:
        class Refused:
            def __init__(self, stream: object, path: str) -> None:
                self.stream, self.path = stream, path
                tried.append(path)

            def __enter__(self) -> object:
                if "/" not in self.path.removeprefix(f"{bucket}/"):  # the top level
                    self.stream.close()  # type: ignore[attr-defined]  # nothing written yet
                    raise OSError(message)
                return self.stream

            def __exit__(self, *exc: object) -> None:
                self.stream.close()  # type: ignore[attr-defined]

        return Refused

    class Wrapped(_Wrapped):
        def open_output_stream(self, path: str) -> object:
            return self._broken(self._real(self._fs, path), path)  # type: ignore[operator]

    denied = refusing("AWS Error ACCESS_DENIED during CreateMultipartUpload: Access Denied")
    monkeypatch.setattr(storage, "_filesystem", lambda path: Wrapped(fs, real, denied))
    atomic_write(f"s3://{bucket}/team/m.bin", lambda fh: fh.write(big))
    assert s3.get(bucket, "team/m.bin") == big
    assert set(s3.keys(bucket)) <= {"team/", "team/m.bin"}
    assert len(tried) == 2 and tried[1].startswith(f"{bucket}/team/.m.bin.")
    tried.clear()
    other = refusing("AWS Error SLOW_DOWN during CreateMultipartUpload: Please reduce rate")
    monkeypatch.setattr(storage, "_filesystem", lambda path: Wrapped(fs, real, other))
    with pytest.raises(DataError, match="cannot write"):
        atomic_write(f"s3://{bucket}/team/n.bin", lambda fh: fh.write(big))
    assert len(tried) == 1 and "team/n.bin" not in s3.keys(bucket)


class _Wrapped:
    """A filesystem whose output streams break (see above); everything else is the real one."""

    def __init__(self, fs: object, real: object, broken: type) -> None:
        self._fs, self._real, self._broken = fs, real, broken

    def open_output_stream(self, path: str) -> object:
        return self._broken(self._real(self._fs, path))  # type: ignore[operator]

    def __getattr__(self, name: str) -> object:
        return getattr(self._fs, name)


def test_outputs_never_replace_inputs_or_foreign_objects(
    s3: S3Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = s3.bucket()
    data = _csv_bytes(tmp_path)
    uri = s3.put(bucket, "parts/d.csv", data)
    for out in (uri, f"s3://{bucket}//parts/d.csv"):
        line = one_error_line(
            gradfit_cli(capsys, "fit", f"s3://{bucket}/parts", *TARGETS, "--out", out)
        )
        assert f"--out {out}: is the data file {uri}" in line
    line = one_error_line(
        gradfit_cli(
            capsys,
            "fit",
            uri,
            *TARGETS,
            "--solver",
            "gd",
            "--checkpoint",
            uri,
            "--out",
            f"s3://{bucket}/m.safetensors",
        )
    )
    assert f"--checkpoint {uri}: is the data file" in line
    s3.put(bucket, "notes.csv", data)
    line = one_error_line(
        gradfit_cli(
            capsys,
            "fit",
            uri,
            *TARGETS,
            "--solver",
            "gd",
            "--checkpoint",
            f"s3://{bucket}/notes.csv",
            "--out",
            f"s3://{bucket}/m.safetensors",
        )
    )
    assert "is not a gradfit checkpoint and would be replaced" in line
    line = one_error_line(
        gradfit_cli(capsys, "fit", uri, *TARGETS, "--out", f"s3://{bucket}/parts")
    )
    assert "is a prefix with objects under it" in line
    assert s3.get(bucket, "parts/d.csv") == data and s3.get(bucket, "notes.csv") == data
    assert s3.keys(bucket) == ["notes.csv", "parts/d.csv"]


def test_an_output_spelled_otherwise_is_still_the_input(
    s3: S3Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """S3:// is s3:// (the scheme is case-insensitive), and the HTTP client resolves '..'
    before the request (s3://b/x/../d.csv is the object d.csv): both once wrote the
    predictions over the data they were made from."""
    bucket = s3.bucket()
    data = _csv_bytes(tmp_path)
    uri = s3.put(bucket, "d.csv", data)
    ok(capsys, "fit", uri, *TARGETS, "--solver", "lstsq", "--out", tmp_path / "m.safetensors")
    line = one_error_line(
        gradfit_cli(
            capsys, "predict", tmp_path / "m.safetensors", uri, "--out", f"S3://{bucket}/d.csv"
        )
    )
    assert f"--out S3://{bucket}/d.csv: is the data file {uri}" in line
    dotted = f"s3://{bucket}/x/../d.csv"
    for argv in (
        ("predict", tmp_path / "m.safetensors", uri, "--out", dotted),
        ("predict", tmp_path / "m.safetensors", dotted),
    ):
        line = one_error_line(gradfit_cli(capsys, *argv))
        assert line.startswith(f"gradfit: error: {dotted}: a '..' in an object's name"), line
    assert s3.get(bucket, "d.csv") == data and s3.keys(bucket) == ["d.csv"]


def test_tensorboard_into_a_store_is_refused_not_a_local_s3_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--tensorboard s3://b/tb once made the local directory s3:/b/tb in the working
    directory and reported success; file:///path is the local directory."""
    monkeypatch.chdir(tmp_path)
    data = write_csv(tmp_path / "d.csv", training_columns())
    line = one_error_line(
        gradfit_cli(
            capsys, "fit", data, *TARGETS, "--solver", "gd", "--tensorboard", "s3://b/tb",
            "--out", tmp_path / "m.safetensors",
        )
    )  # fmt: skip
    assert line.startswith("gradfit: error: s3://b/tb: TensorBoard's event files are written")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv"]
    pytest.importorskip("tensorboard")
    from gradfit.observers import check_tensorboard

    assert check_tensorboard(f"file://{tmp_path}/tb") == tmp_path / "tb"


# ----------------------------------------------------------------------------- errors


def test_missing_bucket_key_and_pattern_are_one_line_naming_the_uri(
    s3: S3Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = s3.bucket()
    uri = s3.put(bucket, "d.csv", _csv_bytes(tmp_path))
    out = ("--out", tmp_path / "m.safetensors")
    cases = [
        (
            ("fit", "s3://no-such-bucket/d.csv", *TARGETS, *out),
            "s3://no-such-bucket/d.csv: no bucket 'no-such-bucket'",
        ),
        (
            ("fit", f"s3://{bucket}/nothing.csv", *TARGETS, *out),
            f"s3://{bucket}/nothing.csv: no such object",
        ),
        (
            ("fit", f"s3://{bucket}/x/*.csv", *TARGETS, *out),
            f"s3://{bucket}/x/*.csv: no object matches",
        ),
        (
            ("fit", uri, *TARGETS, "--out", "s3://no-such-bucket/m.safetensors"),
            "s3://no-such-bucket/m.safetensors: no bucket 'no-such-bucket'",
        ),
        (("predict", f"s3://{bucket}/none.safetensors", uri), f"s3://{bucket}/none.safetensors"),
        (
            ("fit", "https://example.com/d.csv", *TARGETS, *out),
            "https://example.com/d.csv: unsupported URI scheme https://",
        ),
        (
            ("fit", uri, *TARGETS, "--out", "gopher://h/m.safetensors"),
            "gopher://h/m.safetensors: unsupported URI scheme",
        ),
    ]
    for argv, says in cases:
        line = one_error_line(gradfit_cli(capsys, *argv))
        assert says in line, (says, line)
    assert s3.keys(bucket) == ["d.csv"]
    assert not (tmp_path / "m.safetensors").exists()


def test_bad_credentials_are_one_line_naming_the_uri_and_the_variables(
    s3: S3Server,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """moto checks signatures once authentication is switched on (its /moto-api/reset-auth):
    a key it never issued is refused, as AWS refuses it."""
    bucket = s3.bucket()
    uri = s3.put(bucket, "d.csv", _csv_bytes(tmp_path))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG0")
    s3.authenticate(True)
    try:
        line = one_error_line(
            gradfit_cli(capsys, "fit", uri, *TARGETS, "--out", tmp_path / "m.safetensors")
        )
    finally:
        s3.authenticate(False)
    assert line.startswith(f"gradfit: error: {uri}: access denied")
    assert "AWS_ACCESS_KEY_ID" in line and s3.endpoint in line


def test_a_read_refused_after_its_object_was_found_is_one_line(
    s3: S3Server,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The object's HEAD allowed, its GET denied (a user of moto's IAM whose policy denies
    s3:GetObject on it, as a KMS key policy does on AWS): reading it whole (anova, fit) went
    through the object's Python stream and ended in an internal error with pyarrow's
    OSError, exit 1; it is the access-denied line, exit 2, as for a refused HEAD."""
    import uuid

    import boto3

    bucket = s3.bucket()
    uri = s3.put(bucket, "d.csv", _csv_bytes(tmp_path))
    iam = boto3.client(
        "iam",
        endpoint_url=s3.endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    user = f"reader-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    statements = [
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/d.csv"},
    ]
    iam.put_user_policy(
        UserName=user,
        PolicyName="no-get",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
    )
    key = iam.create_access_key(UserName=user)["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    s3.authenticate(True)
    try:
        lines = [
            one_error_line(gradfit_cli(capsys, *argv))
            for argv in (
                ("anova", "--formula", "apples ~ temp", uri),
                ("fit", uri, *TARGETS, "--solver", "lstsq", "--out", tmp_path / "m.safetensors"),
            )
        ]
    finally:
        s3.authenticate(False)
    for line in lines:
        assert line.startswith(f"gradfit: error: {uri}: access denied by the store"), line
    assert not (tmp_path / "m.safetensors").exists()


def test_an_unreachable_endpoint_is_one_line(
    s3: S3Server,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    line = one_error_line(
        gradfit_cli(capsys, "fit", "s3://b/d.csv", *TARGETS, "--out", tmp_path / "m.safetensors")
    )
    assert line.startswith(
        f"gradfit: error: s3://b/d.csv: cannot reach the store at http://127.0.0.1:{port}"
    )


def test_the_s3_endpoint_of_its_own_wins_over_the_general_one(
    s3: S3Server,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """AWS_ENDPOINT_URL_S3 before AWS_ENDPOINT_URL, as the AWS tools read them."""
    bucket = s3.bucket()
    uri = s3.put(bucket, "d.csv", _csv_bytes(tmp_path))
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # the discard port: nothing
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3.endpoint)
    ok(capsys, "fit", uri, *TARGETS, "--solver", "lstsq", "--out", f"s3://{bucket}/m.safetensors")
    assert "m.safetensors" in s3.keys(bucket)


# ----------------------------------------------------------------------------- torchrun


@pytest.mark.slow
def test_torchrun_two_processes_read_and_write_the_store(s3: S3Server, tmp_path: Path) -> None:
    """Two processes under torchrun read a prefix of two files from s3:// and write the model
    and the checkpoint there: the model of one process reading the same files on disk (gd: the
    same to 1e-12; the sum over shards changes the order of additions)."""
    bucket = s3.bucket()
    local_dir = tmp_path / "parts"
    local_dir.mkdir()
    for i, rows in enumerate((slice(0, 8), slice(8, None))):
        data = _csv_bytes(tmp_path, rows)
        (local_dir / f"part-{i}.csv").write_bytes(data)
        s3.put(bucket, f"parts/part-{i}.csv", data)
    options = (*TARGETS, "--solver", "gd", "--epochs", "40")
    env = {
        **os.environ,
        **s3.env,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).parents[1] / "src"), os.environ.get("PYTHONPATH", "")]
        ),
    }
    one = subprocess.run(
        [
            sys.executable,
            "-m",
            "gradfit",
            "fit",
            str(local_dir),
            *options,
            "--out",
            str(tmp_path / "one.safetensors"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert one.returncode == 0, one.stderr
    two = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            "-m",
            "gradfit",
            "fit",
            f"s3://{bucket}/parts",
            *options,
            "--checkpoint",
            f"s3://{bucket}/ckpt.safetensors",
            "--out",
            f"s3://{bucket}/m.safetensors",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert two.returncode == 0, two.stderr
    assert "s3:/" + bucket not in two.stderr
    assert s3.keys(bucket) == [
        "ckpt.safetensors",
        "m.safetensors",
        "parts/part-0.csv",
        "parts/part-1.csv",
    ]
    wa, ba = _weights(tmp_path / "one.safetensors")
    wb, bb = _weights(_download(s3, bucket, "m.safetensors", tmp_path / "two.safetensors"))
    torch.testing.assert_close(wb, wa, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(bb, ba, rtol=1e-12, atol=1e-12)
