"""Shared fixtures: the tutorial's crop data in float64, a seeded NumPy generator, and one
intra-op thread for modules of tiny problems; the command-line tests' training file and empty
output directory; and the rule that only tests marked ``slow`` start Python processes."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from cli_helpers import training_columns, write_csv

import gradfit


def pytest_configure(config: pytest.Config) -> None:
    """Child processes (the CLI, torchrun's workers) import the gradfit this session tests:
    its ``src`` first on an absolute PYTHONPATH. A relative ``PYTHONPATH=src`` (a worktree's
    checkout) would not resolve in the ``cwd=tmp_path`` of torchrun's children, which then
    imported the installed gradfit instead, in silence."""
    src = str(Path(gradfit.__file__).resolve().parents[1])
    given = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    entries = [src, *(str(Path(p).resolve()) for p in given)]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(entries))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240611)


@pytest.fixture
def crops64() -> tuple[torch.Tensor, torch.Tensor]:
    """The 15-row crop data as float64 tensors X (15, 3), Y (15, 2)."""
    crops = gradfit.load_crops()
    return crops.data.double(), crops.target.double()


@pytest.fixture
def train_csv(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "train.csv", training_columns())


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    """An empty directory for every output: a test asserts what it holds afterwards."""
    path = tmp_path / "out"
    path.mkdir()
    return path


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """For modules of tiny problems (``pytestmark = pytest.mark.usefixtures("one_thread")``):
    intra-op threads only add latency, and on a shared 2-core machine MKL's threaded small
    matmuls were seen to stall for milliseconds per call (a 0.1 s fit took 2-10 s). One thread
    keeps the run time steady; results do not depend on it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _only_slow_tests_start_python(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that starts a Python process (``python -m gradfit``, a worker of a process group,
    torchrun) is marked ``@pytest.mark.slow``: each such process pays the imports (PyTorch:
    seconds), and ``make test-fast`` leaves these tests out. An unmarked one fails here at its
    first start, naming the rule. Other programs (a library asking ``lscpu`` or ``fc-list``)
    are not this rule's business and pass."""
    if request.node.get_closest_marker("slow") is not None:
        yield
        return
    start = subprocess.Popen.__init__

    def refuse_python(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
        program = args if isinstance(args, (str, bytes, os.PathLike)) else next(iter(args), "")
        name = os.path.basename(os.fsdecode(program).split()[0]) if program else ""
        if os.fsdecode(program) == sys.executable or name.startswith(("python", "torchrun")):
            raise AssertionError(
                f"{request.node.nodeid} starts a Python process ({name}): mark it "
                "@pytest.mark.slow (`make test-fast` leaves such tests out)"
            )
        start(self, args, *rest, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(subprocess.Popen, "__init__", refuse_python)
        yield


# ----------------------------------------------------------------------------- object storage


@dataclass(frozen=True)
class S3Server:
    """A real S3 server (moto's server mode) on a free port of this machine, for the tests of
    object storage: ``endpoint`` its URL, ``env`` the variables that point gradfit (and any
    process the test starts) at it, ``client`` a boto3 client of it."""

    endpoint: str
    env: dict[str, str]
    client: Any

    def bucket(self) -> str:
        """A new, empty bucket of its own for one test."""
        name = f"gradfit-{uuid.uuid4().hex[:12]}"
        self.client.create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> list[str]:
        """Every object's key in ``bucket``, temporaries included."""
        listed = self.client.list_objects_v2(Bucket=bucket)
        return sorted(item["Key"] for item in listed.get("Contents", []))

    def authenticate(self, on: bool) -> None:
        """Switch moto's checking of signatures on (a key it never issued is refused, as AWS
        refuses it) or off (any key is taken, the default), through its /moto-api/."""
        request = urllib.request.Request(
            f"{self.endpoint}/moto-api/reset-auth",
            data=b"0" if on else b"inf",
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        urllib.request.urlopen(request, timeout=30).close()

    def put(self, bucket: str, key: str, data: bytes) -> str:
        self.client.put_object(Bucket=bucket, Key=key, Body=data)
        return f"s3://{bucket}/{key}"

    def get(self, bucket: str, key: str) -> bytes:
        body: bytes = self.client.get_object(Bucket=bucket, Key=key)["Body"].read()
        return body


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server, started once per session in a thread of this process, on a free port
    (it answers this process and the processes the tests start), stopped at the end."""
    moto_server = pytest.importorskip("moto.server", reason="moto[server] (the dev extra)")
    boto3 = pytest.importorskip("boto3")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a line per request otherwise
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    try:
        yield S3Server(endpoint, env, client)
    finally:
        server.stop()


@pytest.fixture
def s3(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The session's S3 server, with this test's environment pointing at it (and no other AWS
    settings of the machine: a profile or session token would be sent along)."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    return s3_server
