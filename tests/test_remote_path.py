"""``RemotePath`` (an object in a store as a ``pathlib.Path``) behaves alike on Python 3.10 to
3.13: the checks of tests/remote_path_checks.py, in this process, then under each other of
those interpreters found on this machine (``python3.X`` on PATH, or pyenv's), which need
nothing but the standard library. pathlib's subclassing changed in 3.12 and its layout in 3.13
(see :class:`gradfit.storage.RemotePath`); a version not found is skipped, by name."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from remote_path_checks import check_remote_paths

ROOT = Path(__file__).resolve().parent.parent
VERSIONS = [(3, 10), (3, 11), (3, 12), (3, 13)]


def test_remote_path_behaviour_in_this_process() -> None:
    check_remote_paths()


def _interpreter(version: tuple[int, int]) -> str | None:
    """An interpreter of ``version`` that runs, or None."""
    name = f"python{version[0]}.{version[1]}"
    pyenv = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates = [shutil.which(name) or ""]
    candidates += sorted(glob.glob(f"{pyenv}/versions/{version[0]}.{version[1]}.*/bin/{name}"))
    for candidate in filter(None, candidates):
        try:
            run = subprocess.run(
                [candidate, "-c", "import sys; print(sys.version_info[:2])"],
                capture_output=True,
                text=True,
                timeout=60,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if run.returncode == 0 and run.stdout.strip() == str(version):
            return candidate
    return None


@pytest.mark.slow
@pytest.mark.parametrize("version", VERSIONS, ids=lambda v: f"{v[0]}.{v[1]}")
def test_remote_path_behaviour_on_each_python(version: tuple[int, int]) -> None:
    if version == sys.version_info[:2]:
        pytest.skip("this interpreter: the test above")
    python = _interpreter(version)
    if python is None:
        pytest.skip(f"no Python {version[0]}.{version[1]} on this machine")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests")])}
    env.pop("PYTHONHOME", None)
    run = subprocess.run(
        [python, "-B", str(ROOT / "tests" / "remote_path_checks.py")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"passed on Python {version[0]}.{version[1]}" in run.stdout
